"""The project's dataset format: LeRobotDataset v3.0 plus a few extra columns.

Why LeRobot v3: a dataset the project writes loads in LeRobot unchanged (export is the
identity), and LeRobot v3 datasets load here. docs/dataset_format.md cites the LeRobot sources
each rule below comes from.

Layout (paths relative to the dataset root)::

    meta/info.json                                   schema, fps, totals, path templates
    meta/stats.json                                  per-feature min/max/mean/std/count
    meta/tasks.parquet                               task string (index) -> task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode
    data/chunk-000/file-000.parquet                  one row per frame, many episodes per file
    videos/<camera key>/chunk-000/file-000.mp4       many episodes per file, h264/yuv420p

Project additions (LeRobot ignores unknown columns and keys). Their names start with neither
``observation`` nor ``action``, so LeRobot's ``dataset_to_policy_features`` leaves them out of a
stock policy's inputs and outputs:

* frame columns ``mask.action`` / ``mask.observation.state`` (float32 0/1 per dimension),
  ``segment_index`` (int64, motion segment within the episode) and, for human data,
  ``human.hand_keypoints`` (float32 (126,) = [2 hands (left, right), 21 MediaPipe joints, xyz m]
  flattened, NaN-free: missing hands are zero with a zero mask). Flat, because LeRobot 0.4.4's
  edit tools (split, merge, delete) stop on multi-dimensional (Array2D/Array3D) columns, LeRobot's
  own included;
* episode columns ``hvp/embodiment``, ``hvp/action_space``, ``hvp/prompt_video`` (path or URI of
  a prompt video, "" when none) and ``hvp/source`` (the bag or video it came from);
* ``info.json["hvp"]``: format version, embodiment, action space, state/action joint names and
  the camera topics and intrinsics.

Format version 1 named these ``action.mask``, ``observation.state.mask`` and
``observation.hand_keypoints`` (2, 21, 3); the reader maps those names (LEGACY_FEATURE_KEYS).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.pipeline.episode_format import KEYPOINT_NAMES
from human_video_policy.validation import check_int_range, check_positive

CODEBASE_VERSION = "v3.0"
HVP_FORMAT_VERSION = 2

MASK_PREFIX = "mask."
HAND_KEYPOINTS_KEY = "human.hand_keypoints"
HAND_KEYPOINTS_SHAPE = (2, 21, 3)  # hands (left, right) x MediaPipe joints x xyz
HANDS = ("left", "right")
#: Format-version-1 names of the project's columns -> today's names.
LEGACY_FEATURE_KEYS: dict[str, str] = {
    "action.mask": MASK_PREFIX + "action",
    "observation.state.mask": MASK_PREFIX + "observation.state",
    "observation.hand_keypoints": HAND_KEYPOINTS_KEY,
}


def mask_key(feature: str) -> str:
    """The column holding the 0/1 validity mask of ``feature`` (``mask.action``...)."""
    return MASK_PREFIX + feature


ACTION_MASK_KEY = mask_key("action")
STATE_MASK_KEY = mask_key("observation.state")
DEFAULT_CHUNK_SIZE = 1000  # files per chunk folder
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 500

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE_PATTERN + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"

#: Columns every LeRobot frame row has (name -> dtype); shape (1,), names None.
DEFAULT_FEATURES: dict[str, str] = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}

#: Keys LeRobot writes into info.json (create_empty_dataset_info) and their JSON types.
INFO_KEYS: dict[str, type | tuple[type, ...]] = {
    "codebase_version": str,
    "robot_type": (str, type(None)),
    "total_episodes": int,
    "total_frames": int,
    "total_tasks": int,
    "chunks_size": int,
    "data_files_size_in_mb": (int, float),
    "video_files_size_in_mb": (int, float),
    "fps": (int, float),
    "splits": dict,
    "data_path": str,
    "video_path": (str, type(None)),
    "features": dict,
}

#: Episode-table columns LeRobot v3 reads (per video key add VIDEO_EPISODE_COLUMNS).
EPISODE_COLUMNS: dict[str, pa.DataType] = {
    "episode_index": pa.int64(),
    "tasks": pa.list_(pa.string()),
    "length": pa.int64(),
    "data/chunk_index": pa.int64(),
    "data/file_index": pa.int64(),
    "dataset_from_index": pa.int64(),
    "dataset_to_index": pa.int64(),
    "meta/episodes/chunk_index": pa.int64(),
    "meta/episodes/file_index": pa.int64(),
}
VIDEO_EPISODE_COLUMNS: dict[str, pa.DataType] = {
    "chunk_index": pa.int64(),
    "file_index": pa.int64(),
    "from_timestamp": pa.float64(),
    "to_timestamp": pa.float64(),
}
HVP_EPISODE_COLUMNS: dict[str, pa.DataType] = {
    "hvp/embodiment": pa.string(),
    "hvp/action_space": pa.string(),
    "hvp/prompt_video": pa.string(),
    "hvp/source": pa.string(),
}

NUMERIC_DTYPES = ("float32", "float64", "int64", "int32", "bool")
FEATURE_DTYPES = (*NUMERIC_DTYPES, "video", "image", "string")
VIDEO_CODEC = "h264"
VIDEO_PIX_FMT = "yuv420p"


def data_file(chunk_index: int, file_index: int) -> str:
    return DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)


def video_file(video_key: str, chunk_index: int, file_index: int) -> str:
    return VIDEO_PATH.format(video_key=video_key, chunk_index=chunk_index, file_index=file_index)


def episodes_file(chunk_index: int, file_index: int) -> str:
    return EPISODES_PATH.format(chunk_index=chunk_index, file_index=file_index)


@dataclass(frozen=True)
class FeatureSpec:
    """One column of the frame table (or one camera), as listed in ``info.json["features"]``.

    Fields:
        key: column name; LeRobot forbids '/' in it (``observation.images.<camera>`` for
            cameras, ``observation.state``, ``action``...).
        dtype: numpy dtype name, or ``"video"`` for a camera stored as MP4.
        shape: per-frame shape; (1,) for scalars; (height, width, 3) for video.
        names: one name per dimension (joint names), or per axis for video; None if unnamed.
        info: video properties (``video.fps``, ``video.codec``...); None for other features.
    """

    key: str
    dtype: str
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None
    info: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.key or "/" in self.key:
            raise ConfigError(f"feature key={self.key!r} is invalid: non-empty, no '/'")
        if self.dtype not in FEATURE_DTYPES:
            raise ConfigError(
                f"feature {self.key}: dtype={self.dtype!r} is invalid: must be one of "
                f"{list(FEATURE_DTYPES)}"
            )
        if not self.shape or any(not isinstance(d, int) or d < 1 for d in self.shape):
            raise ConfigError(f"feature {self.key}: shape={self.shape!r} must be positive ints")
        if len(self.shape) > MAX_FEATURE_DIMS:
            raise ConfigError(
                f"feature {self.key}: shape={self.shape!r} has {len(self.shape)} dimensions; "
                f"LeRobot datasets hold at most {MAX_FEATURE_DIMS}"
            )
        if self.dtype == "video" and (len(self.shape) != 3 or self.shape[2] != 3):
            raise ConfigError(
                f"feature {self.key}: video shape must be (H, W, 3), got {self.shape}"
            )
        if (
            self.names is not None
            and self.dtype != "video"
            and len(self.shape) == 1
            and len(self.names) != self.shape[0]
        ):
            raise ConfigError(f"feature {self.key}: {len(self.names)} names for shape {self.shape}")

    @property
    def is_video(self) -> bool:
        return self.dtype == "video"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dtype": self.dtype,
            "shape": list(self.shape),
            "names": list(self.names) if self.names is not None else None,
        }
        if self.info is not None:
            out["info"] = dict(self.info)
        return out

    @classmethod
    def from_json(cls, key: str, entry: Mapping[str, Any]) -> FeatureSpec:
        try:
            names = entry.get("names")
            if isinstance(names, dict):  # LeRobot v2 style {"motors": [...]} names
                names = next(iter(names.values()), None)
            return cls(
                key=key,
                dtype=str(entry["dtype"]),
                shape=tuple(int(d) for d in entry["shape"]),
                names=tuple(str(n) for n in names) if names is not None else None,
                info=entry.get("info"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"info.json feature {key!r} is malformed: {exc}") from exc


def video_feature(key: str, height: int, width: int, fps: float) -> FeatureSpec:
    """A camera stored as h264/yuv420p MP4 (height and width must be even for yuv420p)."""
    return FeatureSpec(
        key=key,
        dtype="video",
        shape=(height, width, 3),
        names=("height", "width", "channels"),
        info={
            "video.height": height,
            "video.width": width,
            "video.codec": VIDEO_CODEC,
            "video.pix_fmt": VIDEO_PIX_FMT,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    )


def vector_feature(key: str, names: Sequence[str], dtype: str = "float32") -> FeatureSpec:
    return FeatureSpec(key=key, dtype=dtype, shape=(len(names),), names=tuple(names))


def hand_keypoints_feature() -> FeatureSpec:
    """``human.hand_keypoints``: (126,) = [2 hands (left, right), 21 MediaPipe joints, xyz m]
    flattened; names ``left.wrist.x`` ... ``right.pinky_tip.z``."""
    names = tuple(f"{h}.{j}.{a}" for h in HANDS for j in KEYPOINT_NAMES for a in "xyz")
    return FeatureSpec(key=HAND_KEYPOINTS_KEY, dtype="float32", shape=(len(names),), names=names)


def hand_keypoints_array(values: np.ndarray) -> np.ndarray:
    """Hand keypoints of ``T`` frames as ``(T, 2, 21, 3)``, from the stored ``(T, 126)`` (or a
    format-1 ``(T, 2, 21, 3)``) column."""
    a = np.asarray(values)
    size = int(np.prod(HAND_KEYPOINTS_SHAPE))
    if a.ndim < 1 or a.size != a.shape[0] * size:
        raise InputError(
            f"{HAND_KEYPOINTS_KEY}: rows of shape {a.shape[1:]}; expected ({size},) or "
            f"{HAND_KEYPOINTS_SHAPE}"
        )
    return a.reshape(a.shape[0], *HAND_KEYPOINTS_SHAPE)


def default_features() -> list[FeatureSpec]:
    return [FeatureSpec(k, dt, (1,)) for k, dt in DEFAULT_FEATURES.items()]


@dataclass(frozen=True)
class DatasetSpec:
    """Everything fixed for a whole dataset: rate, robot, columns and the project's extras.

    Fields:
        fps: frames per second of every stream (the control rate, 10 Hz by default).
        robot_type: LeRobot's robot id (the embodiment name here).
        features: frame columns and cameras beyond LeRobot's default five (which are added).
        embodiment: embodiment id (:mod:`human_video_policy.data.embodiment`).
        action_space: id of the ``action`` columns (ActionChunk.action_space).
        cameras: camera key -> extra description (ROS topic, intrinsics) for info.json.
        chunks_size: files per chunk folder (LeRobot default 1000).
        data_files_size_in_mb / video_files_size_in_mb: a new data/video file starts when the
            current one is larger (LeRobot defaults 100 / 500).
    """

    fps: float
    robot_type: str
    features: tuple[FeatureSpec, ...]
    embodiment: str
    action_space: str
    cameras: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    chunks_size: int = DEFAULT_CHUNK_SIZE
    data_files_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB
    video_files_size_in_mb: float = DEFAULT_VIDEO_FILE_SIZE_IN_MB

    def __post_init__(self) -> None:
        check_positive("fps", self.fps)
        check_int_range("chunks_size", self.chunks_size, 1)
        check_positive("data_files_size_in_mb", self.data_files_size_in_mb)
        check_positive("video_files_size_in_mb", self.video_files_size_in_mb)
        keys = [f.key for f in self.features]
        if dup := sorted({k for k in keys if keys.count(k) > 1}):
            raise ConfigError(f"features: duplicate keys {dup}")
        if clash := sorted(set(keys) & set(DEFAULT_FEATURES)):
            raise ConfigError(f"features: {clash} are LeRobot's default columns; do not list them")
        if "action" not in keys:
            raise ConfigError("features: an 'action' feature is required")

    @property
    def all_features(self) -> dict[str, FeatureSpec]:
        return {f.key: f for f in (*self.features, *default_features())}

    @property
    def video_keys(self) -> list[str]:
        return [f.key for f in self.features if f.is_video]

    @property
    def numeric_keys(self) -> list[str]:
        return [f.key for f in self.features if f.dtype in NUMERIC_DTYPES]

    def info(self, total_episodes: int, total_frames: int, total_tasks: int) -> dict[str, Any]:
        """``meta/info.json`` content (LeRobot's create_empty_dataset_info + totals + hvp)."""
        feats = self.all_features
        action = feats["action"]
        state = feats.get("observation.state")
        fps: int | float = int(self.fps) if float(self.fps).is_integer() else float(self.fps)
        return {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": total_episodes,
            "total_frames": total_frames,
            "total_tasks": total_tasks,
            "chunks_size": self.chunks_size,
            "data_files_size_in_mb": self.data_files_size_in_mb,
            "video_files_size_in_mb": self.video_files_size_in_mb,
            "fps": fps,
            "splits": {"train": f"0:{total_episodes}"} if total_episodes else {},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if self.video_keys else None,
            "features": {k: f.to_json() for k, f in feats.items()},
            "hvp": {
                "format_version": HVP_FORMAT_VERSION,
                "embodiment": self.embodiment,
                "action_space": self.action_space,
                "action_names": list(action.names or ()),
                "state_names": list(state.names or ()) if state else [],
                "cameras": {k: dict(v) for k, v in self.cameras.items()},
            },
        }

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> DatasetSpec:
        features = tuple(
            FeatureSpec.from_json(k, v)
            for k, v in info["features"].items()
            if k not in DEFAULT_FEATURES
        )
        hvp = info.get("hvp", {})
        return cls(
            fps=info["fps"],
            robot_type=info.get("robot_type") or "unknown",
            features=features,
            embodiment=hvp.get("embodiment", info.get("robot_type") or "unknown"),
            action_space=hvp.get("action_space", "unknown"),
            cameras=hvp.get("cameras", {}),
            chunks_size=info.get("chunks_size", DEFAULT_CHUNK_SIZE),
            data_files_size_in_mb=info.get("data_files_size_in_mb", DEFAULT_DATA_FILE_SIZE_IN_MB),
            video_files_size_in_mb=info.get(
                "video_files_size_in_mb", DEFAULT_VIDEO_FILE_SIZE_IN_MB
            ),
        )


_ARRAY_TYPES = {2: "Array2D", 3: "Array3D", 4: "Array4D", 5: "Array5D"}
MAX_FEATURE_DIMS = 5  # datasets (and so LeRobot) has ArrayND types up to 5-D


def arrow_type(spec: FeatureSpec) -> pa.DataType:
    """Arrow type of a frame column as LeRobot writes it through ``datasets``: a scalar for
    shape (1,), a fixed-size list for (n,), and nested lists for 2-5 dimensions (the storage of
    ``datasets``' Array2D..Array5D extension types, whose name :func:`arrow_field` adds)."""
    base = pa.from_numpy_dtype(spec.dtype) if spec.dtype != "string" else pa.string()
    if spec.shape == (1,):
        return base
    if len(spec.shape) == 1:
        return pa.list_(base, spec.shape[0])
    t: pa.DataType = base
    for _ in spec.shape:
        t = pa.list_(t)
    return t


def arrow_field(spec: FeatureSpec) -> pa.Field:
    """The parquet field of a frame column; multi-dimensional ones carry the ``datasets``
    extension name and metadata (``ARROW:extension:*``) so ``datasets`` (and LeRobot) read them
    as Array2D..Array5D, while plain pyarrow reads the nested lists."""
    t = arrow_type(spec)
    if len(spec.shape) < 2:
        return pa.field(spec.key, t)
    name = f"datasets.features.features.{_ARRAY_TYPES[len(spec.shape)]}ExtensionType"
    meta = {
        b"ARROW:extension:name": name.encode(),
        b"ARROW:extension:metadata": json.dumps([list(spec.shape), spec.dtype]).encode(),
    }
    return pa.field(spec.key, t, metadata=meta)


def huggingface_feature(spec: FeatureSpec) -> dict[str, Any]:
    """The ``datasets`` feature description of a frame column (as LeRobot's
    ``get_hf_features_from_features`` makes it, serialised by datasets 4)."""
    if spec.shape == (1,):
        return {"dtype": spec.dtype, "_type": "Value"}
    if len(spec.shape) == 1:
        value = {"dtype": spec.dtype, "_type": "Value"}
        return {"feature": value, "length": spec.shape[0], "_type": "List"}
    return {"shape": list(spec.shape), "dtype": spec.dtype, "_type": _ARRAY_TYPES[len(spec.shape)]}


def huggingface_schema_metadata(specs: Sequence[FeatureSpec]) -> dict[bytes, bytes]:
    """The ``huggingface`` schema metadata LeRobot's data files carry (``datasets`` reads the
    column types from it)."""
    info = {"info": {"features": {s.key: huggingface_feature(s) for s in specs}}}
    return {b"huggingface": json.dumps(info).encode()}


def column_type_problem(spec: FeatureSpec, column_type: pa.DataType) -> str | None:
    """Why ``column_type`` cannot hold ``spec``, or None when it is a layout LeRobot writes:
    scalars, fixed-size or variable lists (pandas rewrites the former as the latter in
    ``lerobot-edit-dataset merge``), nested lists with or without the ``datasets`` extension
    type. Variable list lengths are checked when the rows are read."""
    t = column_type.storage_type if isinstance(column_type, pa.ExtensionType) else column_type
    sizes: list[int | None] = []
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        sizes.append(t.list_size if pa.types.is_fixed_size_list(t) else None)
        t = t.value_type
    leaf = pa.from_numpy_dtype(spec.dtype) if spec.dtype != "string" else pa.string()
    if not t.equals(leaf):
        return f"values are {t}, expected {leaf}"
    want: list[int] = [] if spec.shape == (1,) else list(spec.shape)
    if spec.shape == (1,) and sizes in ([1], [None]):
        return None
    if len(sizes) != len(want):
        return f"{len(sizes)} list level(s) for shape {spec.shape}"
    for level, (got, expected) in enumerate(zip(sizes, want, strict=True)):
        if got is not None and got != expected:
            return f"list level {level} has fixed size {got}, shape {spec.shape} needs {expected}"
    return None


def episode_schema(
    video_keys: Sequence[str], stats_columns: Mapping[str, pa.DataType]
) -> pa.Schema:
    cols = dict(EPISODE_COLUMNS)
    for key in video_keys:
        for name, t in VIDEO_EPISODE_COLUMNS.items():
            cols[f"videos/{key}/{name}"] = t
    cols.update(HVP_EPISODE_COLUMNS)
    cols.update(stats_columns)
    return pa.schema(list(cols.items()))


# --------------------------------------------------------------------------------------------
# tasks.parquet: LeRobot writes a pandas DataFrame whose index holds the task strings and whose
# one column is task_index. Written here with pyarrow and the pandas schema metadata, so
# pandas.read_parquet gives back the same DataFrame (index named "task").


def write_tasks(path: Path, tasks: Sequence[str]) -> None:
    table = pa.table(
        {
            "task_index": pa.array(range(len(tasks)), pa.int64()),
            "task": pa.array(list(tasks), pa.string()),
        }
    )
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }  # fmt: skip
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_parquet(path: Path, *, memory_map: bool = False) -> pa.Table:
    """``pq.read_table`` raising InputError that names the file (a truncated one included).

    Why: pyarrow's own error ("Parquet magic bytes not found in footer") does not say which
    file, and escaped the CLI as a traceback.
    """
    try:
        return pq.read_table(path, memory_map=memory_map)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(_parquet_problem(path, exc)) from exc


def read_parquet_schema(path: Path) -> tuple[pa.Schema, int]:
    """The schema and row count of a parquet file, or InputError naming the file."""
    try:
        return pq.read_schema(path), pq.read_metadata(path).num_rows
    except (pa.ArrowException, OSError) as exc:
        raise InputError(_parquet_problem(path, exc)) from exc


def _parquet_problem(path: Path, exc: BaseException) -> str:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    reason = reason.split(". Either the file")[0]  # pyarrow's guess follows; ours is below
    reason = re.sub(r"^Could not open Parquet input source '.*?': ", "", reason)
    return f"{path}: not a readable parquet file ({reason}); truncated or corrupt?"


def read_tasks(path: Path) -> list[str]:
    """Task strings ordered by task_index (accepts the index column named 'task' or pandas'
    default '__index_level_0__')."""
    if not path.is_file():
        raise InputError(f"{path} is missing: every LeRobot v3 dataset has meta/tasks.parquet")
    table = read_parquet(path)
    names = table.column_names
    text_col = next((c for c in ("task", "__index_level_0__") if c in names), None)
    if text_col is None or "task_index" not in names:
        raise InputError(f"{path}: needs columns task_index and task (index); has {names}")
    pairs = sorted(
        zip(table.column("task_index").to_pylist(), table.column(text_col).to_pylist(), strict=True)
    )
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise InputError(f"{path}: task_index must be 0..{len(pairs) - 1} without gaps")
    return [str(t) for _, t in pairs]


# --------------------------------------------------------------------------------------------
# Conformance to LeRobot's documented v3 schema


def check_conformance(root: str | Path) -> list[str]:
    """Every way ``root`` departs from the LeRobot v3.0 layout, field by field (empty = ok)."""
    root = Path(root)
    problems: list[str] = []
    info_path = root / INFO_PATH
    if not info_path.is_file():
        return [f"{INFO_PATH} is missing"]
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [f"{INFO_PATH} is not JSON: {exc}"]
    for key, typ in INFO_KEYS.items():
        if key not in info:
            problems.append(f"info.json: key {key!r} is missing")
        elif isinstance(info[key], bool) or not isinstance(info[key], typ):
            problems.append(f"info.json: {key}={info[key]!r} has the wrong type")
    if problems:
        return problems
    if info["codebase_version"] != CODEBASE_VERSION:
        problems.append(f"info.json: codebase_version={info['codebase_version']!r}, not v3.0")
    if info["data_path"] != DATA_PATH:
        problems.append(f"info.json: data_path={info['data_path']!r}, expected {DATA_PATH!r}")
    feats = info["features"]
    video_keys = [k for k, f in feats.items() if isinstance(f, dict) and f.get("dtype") == "video"]
    if video_keys and info["video_path"] != VIDEO_PATH:
        problems.append(f"info.json: video_path={info['video_path']!r}, expected {VIDEO_PATH!r}")
    for key, dtype in DEFAULT_FEATURES.items():
        f = feats.get(key)
        if f is None:
            problems.append(f"features: default column {key!r} is missing")
        elif f.get("dtype") != dtype or list(f.get("shape", [])) != [1]:
            problems.append(f"features: {key} must be {dtype} shape [1], got {f}")
    for key, f in feats.items():
        if "/" in key:
            problems.append(f"features: key {key!r} contains '/'")
        if not isinstance(f, dict) or not {"dtype", "shape", "names"} <= set(f):
            problems.append(f"features: {key} needs dtype, shape and names, got {f}")
            continue
        if f["dtype"] not in FEATURE_DTYPES:
            problems.append(f"features: {key} dtype {f['dtype']!r} is not a LeRobot dtype")
        if f["dtype"] == "video":
            vinfo = f.get("info") or {}
            for k in ("video.fps", "video.codec", "video.pix_fmt", "video.height", "video.width"):
                if k not in vinfo:
                    problems.append(f"features: video {key} info lacks {k!r}")
    if problems:
        return problems
    # tasks
    try:
        tasks = read_tasks(root / TASKS_PATH)
        if len(tasks) != info["total_tasks"]:
            problems.append(
                f"tasks.parquet has {len(tasks)} tasks, info says {info['total_tasks']}"
            )
    except InputError as exc:
        problems.append(str(exc))
    # episodes
    ep_files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if info["total_episodes"] and not ep_files:
        problems.append("meta/episodes/chunk-*/file-*.parquet is missing")
    required = dict(EPISODE_COLUMNS)
    for key in video_keys:
        required.update({f"videos/{key}/{n}": t for n, t in VIDEO_EPISODE_COLUMNS.items()})
    n_eps = 0
    ep_unreadable = False
    for path in ep_files:
        try:
            schema, rows = read_parquet_schema(path)
        except InputError as exc:
            problems.append(str(exc))
            ep_unreadable = True
            continue
        n_eps += rows
        for name, t in required.items():
            if name not in schema.names:
                problems.append(f"{path.relative_to(root)}: column {name!r} is missing")
            elif not schema.field(name).type.equals(t):
                problems.append(
                    f"{path.relative_to(root)}: column {name} is {schema.field(name).type}, "
                    f"expected {t}"
                )
    if ep_files and n_eps != info["total_episodes"] and not ep_unreadable:
        problems.append(f"episodes table has {n_eps} rows, info says {info['total_episodes']}")
    # data
    n_frames = 0
    unreadable = False
    for path in sorted((root / "data").glob("chunk-*/file-*.parquet")):
        try:
            schema, rows = read_parquet_schema(path)
        except InputError as exc:
            problems.append(str(exc))
            unreadable = True
            continue
        n_frames += rows
        for key, f in feats.items():
            if f["dtype"] == "video":
                continue
            if key not in schema.names:
                problems.append(f"{path.relative_to(root)}: column {key!r} is missing")
                continue
            spec = FeatureSpec.from_json(key, f)
            got = schema.field(key).type
            if why := column_type_problem(spec, got):
                problems.append(
                    f"{path.relative_to(root)}: column {key} is {got}, expected "
                    f"{arrow_type(spec)} or a list layout LeRobot writes ({why})"
                )
    if n_frames != info["total_frames"] and not unreadable:
        problems.append(f"data files hold {n_frames} frames, info says {info['total_frames']}")
    # stats
    stats_path = root / STATS_PATH
    if info["total_frames"]:
        if not stats_path.is_file():
            problems.append(f"{STATS_PATH} is missing")
        else:
            try:
                stats = json.loads(stats_path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                problems.append(f"{stats_path}: not valid JSON ({exc}); truncated or corrupt?")
                return problems
            for key, f in feats.items():
                if f["dtype"] not in ("float32", "float64") or key not in stats:
                    if f["dtype"] in ("float32", "float64") and key not in stats:
                        problems.append(f"stats.json: no entry for {key}")
                    continue
                for s in ("min", "max", "mean", "std", "count"):
                    if s not in stats[key]:
                        problems.append(f"stats.json: {key} lacks {s}")
    return problems


__all__ = [
    "ACTION_MASK_KEY",
    "CODEBASE_VERSION",
    "DATA_PATH",
    "DEFAULT_FEATURES",
    "EPISODES_PATH",
    "HAND_KEYPOINTS_KEY",
    "HAND_KEYPOINTS_SHAPE",
    "INFO_PATH",
    "LEGACY_FEATURE_KEYS",
    "STATE_MASK_KEY",
    "STATS_PATH",
    "TASKS_PATH",
    "VIDEO_PATH",
    "DatasetSpec",
    "FeatureSpec",
    "arrow_field",
    "arrow_type",
    "check_conformance",
    "column_type_problem",
    "data_file",
    "episode_schema",
    "episodes_file",
    "hand_keypoints_array",
    "hand_keypoints_feature",
    "huggingface_schema_metadata",
    "mask_key",
    "read_parquet",
    "read_parquet_schema",
    "read_tasks",
    "vector_feature",
    "video_feature",
    "video_file",
    "write_tasks",
]
