"""Write a dataset (LeRobot v3 layout, see :mod:`dataset_format`) one episode at a time.

Why streaming: an episode's rows go to the open parquet file as one row group, its camera
frames are piped into an ``ffmpeg`` process per camera (libx264, yuv420p) and statistics are
merged as they pass, so memory holds one episode, never the dataset. Episodes share files as in
LeRobot v3; a new data (video) file starts once the current one exceeds
``data_files_size_in_mb`` (``video_files_size_in_mb``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from human_video_policy.data.dataset_format import (
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    DatasetSpec,
    FeatureSpec,
    arrow_field,
    data_file,
    episode_schema,
    episodes_file,
    huggingface_schema_metadata,
    video_file,
    write_tasks,
)
from human_video_policy.data.dataset_stats import (
    QUANTILE_KEYS,
    aggregate_stats,
    decimate_for_stats,
    episode_stats,
    image_episode_stats,
    sample_indices,
)
from human_video_policy.data.normalization import STAT_NAMES, FeatureStats, stats_to_json
from human_video_policy.errors import ConfigError, HvpError, InputError
from human_video_policy.validation import check_int_range


@dataclass(frozen=True)
class VideoEncoding:
    """How cameras are encoded.

    Fields:
        crf: x264 constant rate factor, 0 (lossless) .. 51; 18 is visually lossless (PSNR of
            natural images above ~40 dB).
        preset: x264 speed preset (``ultrafast`` .. ``veryslow``); faster = larger files.
        gop: frames between keyframes; smaller = faster random access, larger files.
    """

    crf: int = 18
    preset: str = "superfast"
    gop: int = 10

    def __post_init__(self) -> None:
        check_int_range("crf", self.crf, 0, 51)
        check_int_range("gop", self.gop, 1)
        presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")
        if self.preset not in presets:
            raise ConfigError(f"preset={self.preset!r} is invalid: must be one of {presets}")


class _VideoStream:
    """One ffmpeg process encoding raw RGB frames into one MP4 file."""

    def __init__(self, path: Path, height: int, width: int, fps: float, enc: VideoEncoding):
        if shutil.which("ffmpeg") is None:
            raise HvpError("ffmpeg is not on PATH: it is needed to write camera streams")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.frames = 0
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        cmd = [
            "ffmpeg", "-y", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps}",
            "-i", "-",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(enc.crf),
            "-preset", enc.preset, "-g", str(enc.gop), "-threads", "1",
            "-movflags", "+faststart", str(path),
        ]  # fmt: skip
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._log)
        self.shape = (height, width, 3)

    def write(self, frame: np.ndarray) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError as exc:
            raise HvpError(f"ffmpeg stopped while writing {self.path}: {self._error()}") from exc
        self.frames += 1

    def _error(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-500:]

    def close(self) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self._proc.wait()
        err = self._error()
        self._log.close()
        if code != 0:
            raise HvpError(f"ffmpeg failed ({code}) writing {self.path}: {err}")

    def size_mb(self) -> float:
        return self.path.stat().st_size / 2**20 if self.path.exists() else 0.0


def _next_file(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    return (chunk + 1, 0) if file == chunks_size - 1 else (chunk, file + 1)


class DatasetWriter:
    """Create a dataset at ``root`` (must not exist, or be an empty folder).

    Use as a context manager, or call :meth:`finalize`; ``add_episode`` once per episode.
    """

    def __init__(
        self, root: str | Path, spec: DatasetSpec, encoding: VideoEncoding | None = None
    ) -> None:
        self.root = Path(root)
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise InputError(f"dataset folder {self.root} exists and is not empty; choose another")
        self.spec = spec
        self.encoding = encoding or VideoEncoding()
        self.root.mkdir(parents=True, exist_ok=True)
        self._features = spec.all_features
        self._numeric = [k for k in spec.numeric_keys]
        order = self._column_order()
        self._schema = pa.schema(
            [arrow_field(self._features[k]) for k in order],
            metadata=huggingface_schema_metadata([self._features[k] for k in order]),
        )
        self._tasks: list[str] = []
        self._episodes: list[dict[str, Any]] = []
        # Per-episode statistics of every numeric column and camera (LeRobot computes them for
        # all, integer columns included), combined in finalize() as LeRobot combines them.
        self._stats_keys = [*order, *spec.video_keys]
        self._episode_stats: dict[str, list[FeatureStats]] = {k: [] for k in self._stats_keys}
        self._frames = 0
        self._data_pos = (0, 0)
        self._data_writer: pq.ParquetWriter | None = None
        self._data_bytes = 0
        self._video_pos = dict.fromkeys(spec.video_keys, (0, 0))
        self._videos: dict[str, _VideoStream] = {}
        self._finalized = False
        for key in spec.video_keys:
            h, w, _ = self._features[key].shape
            if h % 2 or w % 2:
                raise InputError(
                    f"camera {key}: {w}x{h} pixels; h264/yuv420p needs even width and height "
                    "(crop or resize the images)"
                )

    @property
    def total_frames(self) -> int:
        """Frames written so far (all episodes)."""
        return self._frames

    @property
    def total_episodes(self) -> int:
        return len(self._episodes)

    def _column_order(self) -> list[str]:
        first = ["index", "episode_index", "frame_index", "timestamp", "task_index"]
        return first + [k for k in self._numeric if k not in first]

    # -- episodes -----------------------------------------------------------------------------

    def add_episode(
        self,
        frames: Mapping[str, np.ndarray],
        task: str,
        videos: Mapping[str, np.ndarray | Iterable[np.ndarray]] | None = None,
        *,
        source: str = "",
        prompt_video: str = "",
    ) -> int:
        """Append one episode; returns its episode_index.

        ``frames`` maps every numeric feature (``action``, ``observation.state``, masks...) to
        an array ``(T, *shape)``; ``timestamp`` may be given (else ``frame_index / fps``).
        ``videos`` maps every camera key to ``T`` RGB uint8 frames (an array or an iterable).
        """
        if self._finalized:
            raise InputError(f"dataset {self.root} is finalized; open a new writer")
        if not task:
            raise InputError("task='' is invalid: every episode needs an instruction")
        arrays, length = self._check_frames(frames)
        self._check_videos(videos or {}, length)
        ep_index = len(self._episodes)
        if task not in self._tasks:
            self._tasks.append(task)
        task_index = self._tasks.index(task)
        timestamps = arrays.pop("timestamp", None)
        if timestamps is None:
            timestamps = np.arange(length, dtype=np.float32) / np.float32(self.spec.fps)
        columns: dict[str, Any] = {
            "index": np.arange(self._frames, self._frames + length, dtype=np.int64),
            "episode_index": np.full(length, ep_index, np.int64),
            "frame_index": np.arange(length, dtype=np.int64),
            "timestamp": timestamps.astype(np.float32).reshape(length),
            "task_index": np.full(length, task_index, np.int64),
        }
        for key in self._numeric:
            if key not in columns:
                columns[key] = arrays[key]
        ep_stats = {key: episode_stats(columns[key], name=key) for key in self._schema.names}
        video_rows = self._write_videos(videos or {}, length, ep_stats)
        data_pos = self._write_rows(columns, length)
        row: dict[str, Any] = {
            "episode_index": ep_index,
            "tasks": [task],
            "length": length,
            "data/chunk_index": data_pos[0],
            "data/file_index": data_pos[1],
            "dataset_from_index": self._frames,
            "dataset_to_index": self._frames + length,
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
            **video_rows,
            "hvp/embodiment": self.spec.embodiment,
            "hvp/action_space": self.spec.action_space,
            "hvp/prompt_video": prompt_video,
            "hvp/source": source,
        }
        for key, st in ep_stats.items():
            self._episode_stats[key].append(st)
            for name, value in st.to_json().items():
                row[f"stats/{key}/{name}"] = value
        self._episodes.append(row)
        self._frames += length
        return ep_index

    def _check_frames(self, frames: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        missing = [k for k in self._numeric if k not in frames and k != "timestamp"]
        missing = [k for k in missing if k not in ("index", "episode_index", "frame_index")]
        missing = [k for k in missing if k != "task_index"]
        if missing:
            raise InputError(f"episode lacks feature(s) {missing}")
        allowed = set(self._numeric) | {"timestamp"}
        if extra := sorted(set(frames) - allowed):
            raise InputError(f"episode has features {extra} the dataset spec does not list")
        arrays: dict[str, np.ndarray] = {}
        lengths: set[int] = set()
        for key, value in frames.items():
            spec: FeatureSpec = self._features[key]
            a = np.asarray(value).astype(spec.dtype, copy=False)
            want = spec.shape if spec.shape != (1,) else ()
            if a.ndim >= 1 and a.shape[1:] == (1,) and want == ():
                a = a.reshape(-1)
            if a.shape[1:] != want:
                raise InputError(f"feature {key}: rows of shape {a.shape[1:]}, expected {want}")
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                bad = np.unique(np.nonzero(~np.isfinite(a.reshape(len(a), -1)))[0])
                raise InputError(f"feature {key}: NaN or inf in frame(s) {bad[:10].tolist()}")
            arrays[key] = a
            lengths.add(a.shape[0])
        if len(lengths) != 1:
            raise InputError(f"features have different frame counts: {sorted(lengths)}")
        length = lengths.pop()
        if length == 0:
            raise InputError("episode has no frames: an empty episode cannot be written")
        return arrays, length

    def _write_rows(self, columns: dict[str, Any], length: int) -> tuple[int, int]:
        arrays = []
        for name in self._schema.names:
            t = self._schema.field(name).type
            value = columns[name]
            if isinstance(t, pa.FixedSizeListType | pa.ListType):
                flat = np.ascontiguousarray(value).reshape(-1)
                arr: pa.Array = pa.array(flat, type=_leaf(t))
                for d in reversed(self._features[name].shape):
                    if isinstance(t, pa.FixedSizeListType):
                        arr = pa.FixedSizeListArray.from_arrays(arr, d)
                    else:  # datasets' ArrayND storage: nested variable lists of fixed length
                        offsets = pa.array(np.arange(0, len(arr) + 1, d, dtype=np.int32))
                        arr = pa.ListArray.from_arrays(offsets, arr)
                arrays.append(arr)
            else:
                arrays.append(pa.array(value, type=t))
        table = pa.Table.from_arrays(arrays, schema=self._schema)
        if (
            self._data_writer is not None
            and self._data_bytes > self.spec.data_files_size_in_mb * 2**20
        ):
            self._data_writer.close()
            self._data_writer = None
            self._data_pos = _next_file(*self._data_pos, self.spec.chunks_size)
        if self._data_writer is None:
            path = self.root / data_file(*self._data_pos)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._data_writer = pq.ParquetWriter(path, self._schema)
            self._data_bytes = 0
        self._data_writer.write_table(table)
        self._data_bytes += table.nbytes
        return self._data_pos

    def _check_videos(
        self, videos: Mapping[str, np.ndarray | Iterable[np.ndarray]], length: int
    ) -> None:
        keys = self.spec.video_keys
        if missing := sorted(set(keys) - set(videos)):
            raise InputError(f"episode lacks camera(s) {missing}")
        if extra := sorted(set(videos) - set(keys)):
            raise InputError(f"episode has camera(s) {extra} the dataset spec does not list")
        for key in keys:
            v = videos[key]
            want = (length, *self._features[key].shape)
            if isinstance(v, np.ndarray) and (v.shape != want or v.dtype != np.uint8):
                raise InputError(f"camera {key}: frames {v.shape} {v.dtype}, expected {want} uint8")

    def _write_videos(
        self,
        videos: Mapping[str, np.ndarray | Iterable[np.ndarray]],
        length: int,
        ep_stats: dict[str, FeatureStats],
    ) -> dict[str, Any]:
        keys = self.spec.video_keys
        rows: dict[str, Any] = {}
        for key in keys:
            stream = self._videos.get(key)
            limit = self.spec.video_files_size_in_mb
            if stream is not None and stream.size_mb() > limit:
                stream.close()
                del self._videos[key]
                self._video_pos[key] = _next_file(*self._video_pos[key], self.spec.chunks_size)
                stream = None
            if stream is None:
                h, w, _ = self._features[key].shape
                path = self.root / video_file(key, *self._video_pos[key])
                stream = _VideoStream(path, h, w, self.spec.fps, self.encoding)
                self._videos[key] = stream
            start = stream.frames
            sampled = set(sample_indices(length).tolist())
            stats_frames: list[np.ndarray] = []
            count = 0
            for frame in videos[key]:
                f = np.asarray(frame)
                if f.shape != stream.shape or f.dtype != np.uint8:
                    raise InputError(
                        f"camera {key} frame {count}: {f.shape} {f.dtype}, expected "
                        f"{stream.shape} uint8 RGB"
                    )
                stream.write(f)
                if count in sampled:
                    stats_frames.append(decimate_for_stats(f).copy())
                count += 1
            if count != length:
                raise InputError(f"camera {key}: {count} frames for an episode of {length} rows")
            ep_stats[key] = image_episode_stats(stats_frames, name=key)
            rows[f"videos/{key}/chunk_index"] = self._video_pos[key][0]
            rows[f"videos/{key}/file_index"] = self._video_pos[key][1]
            rows[f"videos/{key}/from_timestamp"] = start / self.spec.fps
            rows[f"videos/{key}/to_timestamp"] = (start + count) / self.spec.fps
        return rows

    # -- finishing ----------------------------------------------------------------------------

    def finalize(self) -> Path:
        """Close files and write meta/ (episodes, tasks, stats, info). Idempotent."""
        if self._finalized:
            return self.root
        self._finalized = True
        if self._data_writer is not None:
            self._data_writer.close()
        for stream in self._videos.values():
            stream.close()
        self._write_episodes()
        write_tasks(self.root / TASKS_PATH, self._tasks)
        stats = {k: aggregate_stats(v, name=k) for k, v in self._episode_stats.items() if v}
        (self.root / STATS_PATH).write_text(json.dumps(stats_to_json(stats), indent=4) + "\n")
        info = self.spec.info(len(self._episodes), self._frames, len(self._tasks))
        (self.root / INFO_PATH).write_text(json.dumps(info, indent=4) + "\n", encoding="utf-8")
        return self.root

    def _write_episodes(self) -> None:
        stats_cols: dict[str, pa.DataType] = {}
        for key in self._stats_keys:
            depth = 3 if key in self.spec.video_keys else 1  # (3, 1, 1) camera statistics
            value_type: pa.DataType = pa.float64()
            for _ in range(depth):
                value_type = pa.list_(value_type)
            for name in (*STAT_NAMES, *QUANTILE_KEYS):
                stats_cols[f"stats/{key}/{name}"] = (
                    pa.list_(pa.int64()) if name == "count" else value_type
                )
        schema = episode_schema(self.spec.video_keys, stats_cols)
        cols = {name: [row.get(name) for row in self._episodes] for name in schema.names}
        table = pa.table({n: pa.array(v, schema.field(n).type) for n, v in cols.items()})
        path = self.root / episodes_file(0, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.cast(schema), path)

    def abort(self) -> None:
        """Stop encoders without writing meta/ (used when a conversion fails midway)."""
        self._finalized = True
        if self._data_writer is not None:
            self._data_writer.close()
        for stream in self._videos.values():
            try:
                stream.close()
            except HvpError:
                pass

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def num_frames(self) -> int:
        return self._frames

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self.abort()


def _leaf(t: pa.DataType) -> pa.DataType:
    while isinstance(t, pa.FixedSizeListType | pa.ListType):
        t = t.value_type
    return t


__all__ = ["DatasetWriter", "VideoEncoding"]
