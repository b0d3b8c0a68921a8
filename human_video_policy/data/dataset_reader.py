"""Read a dataset in the LeRobot v3 layout lazily, and validate it.

Why lazy: training touches random frames of datasets larger than memory. Parquet files are
memory-mapped by pyarrow and opened only when a frame in them is asked for; camera frames are
decoded on demand, one episode's stretch of the MP4 at a time (a small cache keeps the
last decoded episodes, because a loader asks for neighbouring frames).

:meth:`DatasetReader.validate` checks every episode (row counts, frame indices, timestamps
against fps, NaN, video files and their frame counts) and returns a report listing broken
episodes instead of raising at the first one.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from human_video_policy.data.dataset_format import (
    INFO_PATH,
    LEGACY_FEATURE_KEYS,
    TASKS_PATH,
    DatasetSpec,
    data_file,
    read_parquet,
    read_tasks,
    video_file,
)
from human_video_policy.data.normalization import FeatureStats, load_stats
from human_video_policy.errors import InputError
from human_video_policy.runtime.image_ops import center_crop_to_aspect
from human_video_policy.video.stream_decoder import StreamDecoder


@dataclass
class EpisodeProblem:
    """One thing wrong with one episode (``episode`` -1: the dataset as a whole)."""

    episode: int
    problem: str

    def __str__(self) -> str:
        where = "dataset" if self.episode < 0 else f"episode {self.episode}"
        return f"{where}: {self.problem}"


@dataclass
class ValidationReport:
    """Result of :meth:`DatasetReader.validate`."""

    episodes: int
    frames: int
    problems: list[EpisodeProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def broken_episodes(self) -> list[int]:
        return sorted({p.episode for p in self.problems if p.episode >= 0})


class DatasetReader:
    """A dataset folder opened for reading (``meta/`` is read at once, the rest lazily).

    ``video_cache_episodes``: how many decoded episode stretches per camera stay in memory.
    """

    def __init__(self, root: str | Path, *, video_cache_episodes: int = 2) -> None:
        self.root = Path(root)
        info_path = self.root / INFO_PATH
        if not info_path.is_file():
            raise InputError(f"{self.root} is not a dataset: {INFO_PATH} is missing")
        try:
            self.info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{info_path} is not valid JSON: {exc}") from exc
        version = self.info.get("codebase_version")
        if version != "v3.0":
            raise InputError(
                f"{self.root}: codebase_version={version!r}; only LeRobot v3.0 datasets are read"
            )
        if not isinstance(self.info.get("features"), dict):
            raise InputError(f"{info_path}: 'features' is missing or not an object")
        self._column_of = self._map_legacy_names()
        try:
            self.spec = DatasetSpec.from_info(self.info)
        except (KeyError, TypeError) as exc:
            raise InputError(f"{info_path}: malformed ({exc})") from exc
        self.fps = float(self.info["fps"])
        self.tasks = read_tasks(self.root / TASKS_PATH)
        self.episodes = self._load_episodes()
        self._tables: dict[tuple[int, int], pa.Table] = {}
        self._video_cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._video_cache_size = max(1, video_cache_episodes)
        self._decoders: dict[Path, StreamDecoder] = {}
        self._numeric = [k for k in self.info["features"] if self.feature_dtype(k) != "video"]

    # -- metadata -----------------------------------------------------------------------------

    def _map_legacy_names(self) -> dict[str, str]:
        """Format-1 datasets name the project's columns ``mask.action`` etc.: present them
        under today's names (LEGACY_FEATURE_KEYS); returns today's name -> stored column."""
        hvp = self.info.get("hvp")
        if not isinstance(hvp, dict) or int(hvp.get("format_version", 1)) >= 2:
            return {}
        feats = self.info["features"]
        column_of: dict[str, str] = {}
        for old, new in LEGACY_FEATURE_KEYS.items():
            if old in feats and new not in feats:
                feats[new] = feats.pop(old)
                column_of[new] = old
        return column_of

    def _load_episodes(self) -> list[dict[str, Any]]:
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        rows: list[dict[str, Any]] = []
        for path in files:
            table = read_parquet(path, memory_map=True)
            keep = [c for c in table.column_names if not c.startswith("stats/")]
            rows += table.select(keep).to_pylist()
        rows.sort(key=lambda r: r["episode_index"])
        expected = int(self.info.get("total_episodes", 0))
        if len(rows) != expected:
            raise InputError(
                f"{self.root}: episodes table has {len(rows)} rows but info.json says "
                f"total_episodes={expected}"
            )
        return rows

    def feature_dtype(self, key: str) -> str:
        return str(self.info["features"][key]["dtype"])

    @property
    def video_keys(self) -> list[str]:
        return self.spec.video_keys

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def num_frames(self) -> int:
        return int(self.info.get("total_frames", 0))

    def stats(self) -> dict[str, FeatureStats]:
        """meta/stats.json, under today's feature names (see LEGACY_FEATURE_KEYS)."""
        stats = load_stats(self.root)
        for new, old in self._column_of.items():
            if old in stats:
                stats[new] = stats.pop(old)
        return stats

    def names(self, key: str) -> list[str]:
        names = self.info["features"][key].get("names")
        return list(names) if isinstance(names, list) else []

    # -- rows ---------------------------------------------------------------------------------

    def _table(self, chunk: int, file: int) -> pa.Table:
        key = (chunk, file)
        if key not in self._tables:
            path = self.root / data_file(chunk, file)
            if not path.is_file():
                raise InputError(f"{self.root}: data file {path.relative_to(self.root)} missing")
            self._tables[key] = read_parquet(path, memory_map=True)
        return self._tables[key]

    def _episode(self, episode: int) -> dict[str, Any]:
        if not 0 <= episode < len(self.episodes):
            raise InputError(f"episode {episode} does not exist: {len(self.episodes)} episodes")
        return self.episodes[episode]

    def episode_rows(self, episode: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """All rows of one episode, as arrays ``(T, *shape)`` per numeric feature."""
        ep = self._episode(episode)
        table = self._table(ep["data/chunk_index"], ep["data/file_index"])
        idx = table.column("index").to_numpy()
        lo = int(np.searchsorted(idx, ep["dataset_from_index"]))
        hi = int(np.searchsorted(idx, ep["dataset_to_index"]))
        part = table.slice(lo, hi - lo)
        out: dict[str, np.ndarray] = {}
        for key in keys or self._numeric:
            column = self._column_of.get(key, key)
            if column not in part.column_names:
                raise InputError(f"{self.root}: episode {episode} has no column {key!r}")
            feature = self.info["features"].get(key)
            if feature is None:
                raise InputError(f"{self.root}: {key!r} is not a feature of this dataset")
            try:
                out[key] = _column_array(part.column(column), feature, key)
            except InputError as exc:
                raise InputError(f"{self.root}: episode {episode}: {exc}") from exc
        return out

    def frame(self, index: int, *, with_video: bool = True) -> dict[str, Any]:
        """One frame by global ``index`` (0..num_frames-1): features, task and camera images."""
        if not 0 <= index < self.num_frames:
            raise InputError(f"frame index {index} out of range 0..{self.num_frames - 1}")
        ep_i = self.episode_of(index)
        rows = self.episode_rows(ep_i)
        i = index - self.episodes[ep_i]["dataset_from_index"]
        out: dict[str, Any] = {k: v[i] for k, v in rows.items()}
        out["task"] = self.tasks[int(out["task_index"])]
        if with_video:
            for key in self.video_keys:
                out[key] = self.video_frames(ep_i, key)[i]
        return out

    def episode_of(self, index: int) -> int:
        """The episode holding global frame ``index`` (a binary search over episode starts)."""
        starts = self.__dict__.get("_starts")
        if starts is None:
            starts = np.array([e["dataset_from_index"] for e in self.episodes], np.int64)
            self._starts = starts
        return int(np.searchsorted(starts, index, side="right") - 1)

    # -- video --------------------------------------------------------------------------------

    def video_path(self, episode: int, key: str) -> Path:
        ep = self._episode(episode)
        return self.root / video_file(
            key, ep[f"videos/{key}/chunk_index"], ep[f"videos/{key}/file_index"]
        )

    def video_frames(self, episode: int, key: str) -> np.ndarray:
        """All frames of camera ``key`` in ``episode``: (T, H, W, 3) uint8 RGB (cached)."""
        cache_key = (key, episode)
        if cache_key in self._video_cache:
            self._video_cache.move_to_end(cache_key)
            return self._video_cache[cache_key]
        ep = self._episode(episode)
        frames = self._decode(episode, key, ep)  # exactly `length` frames, or InputError
        self._video_cache[cache_key] = frames
        while len(self._video_cache) > self._video_cache_size * max(1, len(self.video_keys)):
            self._video_cache.popitem(last=False)
        return frames

    def decode_episode(
        self, episode: int, key: str, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """All frames of camera ``key`` in ``episode``, decoded front to back in one pass and,
        with ``size`` = (height, width), centre-cropped to that aspect and resized with
        ``cv2.INTER_AREA`` frame by frame (so the full-size stretch is never held). Not cached:
        callers that reuse frames keep them at the size they need (the training loader does)."""
        ep = self._episode(episode)
        return self._decode(episode, key, ep, size)  # exactly `length` frames, or InputError

    def video_frame(self, episode: int, key: str, frame_index: int) -> np.ndarray:
        """One frame (H, W, 3) uint8 RGB: from the cache if the episode is decoded, else by
        seeking in the MP4 (decodes from the previous keyframe only)."""
        cached = self._video_cache.get((key, episode))
        if cached is not None:
            return cached[frame_index]
        ep = self._episode(episode)
        if not 0 <= frame_index < ep["length"]:
            raise InputError(
                f"frame {frame_index} outside episode {episode} (0..{ep['length'] - 1})"
            )
        path = self.video_path(episode, key)
        decoder = self._decoders.get(path)
        if decoder is None:
            if not path.is_file():
                raise InputError(f"{self.root}: video {path.relative_to(self.root)} is missing")
            decoder = StreamDecoder(path)
            self._decoders[path] = decoder
        start = self._video_start(episode, key, ep) + frame_index / self.fps
        return decoder.frames(start, 1, self.fps, expect_size=self._camera_size(key))[0]

    def _video_start(self, episode: int, key: str, ep: dict[str, Any]) -> float:
        """The episode's ``from_timestamp`` in the camera's MP4, checked finite and >= 0."""
        raw = ep.get(f"videos/{key}/from_timestamp")
        start = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else -1.0
        if not np.isfinite(start) or start < 0:
            raise InputError(
                f"{self.root}: episode {episode}: videos/{key}/from_timestamp={raw!r} is not a "
                "finite time >= 0 s"
            )
        return start

    def _camera_size(self, key: str) -> tuple[int, int]:
        shape = self.info["features"][key]["shape"]
        return int(shape[0]), int(shape[1])

    def __getstate__(self) -> dict[str, Any]:  # picklable for DataLoader workers
        state = dict(self.__dict__)
        state["_decoders"] = {}
        state["_video_cache"] = OrderedDict()
        return state

    def close(self) -> None:
        for decoder in self._decoders.values():
            decoder.close()
        self._decoders.clear()

    def _decode(
        self,
        episode: int,
        key: str,
        ep: dict[str, Any],
        size: tuple[int, int] | None = None,
    ) -> np.ndarray:
        path = self.video_path(episode, key)
        if not path.is_file():
            raise InputError(f"{self.root}: video {path.relative_to(self.root)} is missing")
        start = self._video_start(episode, key, ep)

        def resize(frame: np.ndarray) -> np.ndarray:
            return resize_area(frame, *size) if size is not None else frame

        with StreamDecoder(path) as decoder:
            return decoder.frames(
                start, int(ep["length"]), self.fps, resize, expect_size=self._camera_size(key)
            )

    # -- validation ---------------------------------------------------------------------------

    def validate(
        self, *, check_videos: bool = True, time_tolerance_s: float | None = None
    ) -> ValidationReport:
        """Check every episode; broken ones are listed, not raised.

        Checks: data file present, row count = length, frame_index 0..T-1, global index
        contiguous, timestamps equal ``frame_index / fps`` within ``time_tolerance_s`` (default
        1/(4 fps)), no NaN/inf, task index known, and (``check_videos``) each camera decodes to
        ``length`` frames.
        """
        tol = time_tolerance_s if time_tolerance_s is not None else 0.25 / self.fps
        report = ValidationReport(episodes=self.num_episodes, frames=self.num_frames)
        add = report.problems.append
        total = 0
        for i, ep in enumerate(self.episodes):
            if ep["episode_index"] != i:
                add(EpisodeProblem(i, f"episode_index {ep['episode_index']} out of order"))
            if ep["dataset_from_index"] != total:
                add(EpisodeProblem(i, f"dataset_from_index {ep['dataset_from_index']} != {total}"))
            total += int(ep["length"])
            try:
                rows = self.episode_rows(i)
            except InputError as exc:
                add(EpisodeProblem(i, str(exc)))
                continue
            n = len(rows["index"])
            if n != ep["length"]:
                add(EpisodeProblem(i, f"{n} rows in the data file, length says {ep['length']}"))
                continue
            if not np.array_equal(rows["frame_index"], np.arange(n)):
                missing = sorted(set(range(n)) - set(rows["frame_index"].tolist()))
                add(EpisodeProblem(i, f"frame_index not 0..{n - 1} (missing {missing[:10]})"))
            expected = rows["frame_index"] / self.fps
            jumps = np.nonzero(np.abs(rows["timestamp"] - expected) > tol)[0]
            if jumps.size:
                j = int(jumps[0])
                add(
                    EpisodeProblem(
                        i,
                        f"time jump: frame {j} at {rows['timestamp'][j]:.3f} s, expected "
                        f"{expected[j]:.3f} s at {self.fps:g} fps ({jumps.size} frame(s) off)",
                    )
                )
            for key, value in rows.items():
                if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    bad = np.unique(np.nonzero(~np.isfinite(value.reshape(n, -1)))[0])
                    add(EpisodeProblem(i, f"NaN/inf in {key} at frame(s) {bad[:10].tolist()}"))
            if np.any(rows["task_index"] >= len(self.tasks)) or np.any(rows["task_index"] < 0):
                add(EpisodeProblem(i, "task_index outside meta/tasks.parquet"))
            if check_videos:
                for key in self.video_keys:
                    try:
                        self.video_frames(i, key)
                    except InputError as exc:
                        add(EpisodeProblem(i, str(exc)))
        if total != self.num_frames:
            add(EpisodeProblem(-1, f"episodes hold {total} frames, info says {self.num_frames}"))
        return report


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop ``image`` (H, W, C) to the aspect ``height:width`` (as the runtime's
    ``prepare_rgb`` does) and resize it with ``cv2.INTER_AREA``: ~0.2-0.5 ms per frame where
    the runtime's numpy resize takes ~8 ms. Integer down-scaling gives the same block means
    (rounding may differ by 1 level); other factors differ from its bilinear resize by a few
    levels (docs/dataset_format.md)."""
    image = center_crop_to_aspect(image, height, width)
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _column_array(column: pa.ChunkedArray, feature: dict[str, Any], key: str) -> np.ndarray:
    """An arrow column -> numpy ``(T, *shape)`` of the feature's dtype.

    Accepts every layout LeRobot writes (scalars, fixed-size lists, variable lists as pandas
    rewrites them, nested lists with or without ``datasets``' ArrayND extension type) and
    checks each list level holds exactly the feature's size (a ragged or short row is an error
    naming the column, never a silently reshaped array)."""
    shape = tuple(feature["shape"])
    dtype = feature["dtype"]
    arr = column.combine_chunks()
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    n = len(arr)
    if arr.null_count:
        raise InputError(f"column {key}: {arr.null_count} null row(s)")
    flat: pa.Array = arr
    dims = [] if shape == (1,) else list(shape)
    level = 0
    while (
        pa.types.is_fixed_size_list(flat.type)
        or pa.types.is_list(flat.type)
        or (pa.types.is_large_list(flat.type))
    ):
        want = dims[level] if level < len(dims) else 1
        if pa.types.is_fixed_size_list(flat.type):
            sizes_ok = flat.type.list_size == want
        else:
            lengths = pc.list_value_length(flat)
            sizes_ok = len(lengths) == 0 or (
                pc.min(lengths).as_py() == want and pc.max(lengths).as_py() == want
            )
        if not sizes_ok:
            raise InputError(
                f"column {key}: list level {level} does not hold {want} values in every row "
                f"(feature shape {shape}); ragged or truncated rows"
            )
        flat = flat.flatten()
        level += 1
    allowed = (0, 1) if shape == (1,) else (len(dims),)  # a scalar may sit in a 1-list
    if level not in allowed:
        raise InputError(f"column {key}: {level} list level(s) for feature shape {shape}")
    if flat.null_count:
        raise InputError(f"column {key}: {flat.null_count} null value(s)")
    if dtype == "string":  # LeRobot's text features: Python strings
        values = np.asarray(flat.to_pylist(), dtype=object)
        return values.reshape((n, *shape)) if shape != (1,) else values.reshape(n)
    values = flat.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return values.reshape((n, *shape)) if shape != (1,) else values.reshape(n)


__all__ = ["DatasetReader", "EpisodeProblem", "ValidationReport", "resize_area"]
