"""rosbag2 recordings -> a dataset (one bag = one episode), resampled to the control rate.

Why this shape: a policy is trained on rows at its control rate (10 Hz by default), each row
holding the camera image, the MEASURED joint state and the COMMANDED joints (the action, as
VITRA supervises with commanded, not measured, joints). Topics arrive at their own rates, so
each row at time ``t`` (a grid ``t0 + k / rate``) takes:

* the image and the joint state whose header stamps are nearest to ``t``, if within
  ``sync_tolerance_s`` (approximate time synchronisation by header stamps);
* the newest command at or before ``t``, if not older than ``action_max_age_s`` (a command
  holds until the next one).

Several joint topics can make one vector (an arm and a hand: ``extra_state_topics``,
``extra_action_topics``); each topic is synchronised on its own and the columns follow the
embodiment's joint order, or the topics' order when no embodiment is named.

Rows where a stream has no sample are dropped; the longest gap-free run becomes the episode
(a warning says how many were dropped). Header stamps of zero fall back to the bag's receive
stamps. A bag that cannot be converted (truncated storage, unknown message type, missing
topic, clock jump, duplicate stamps, nothing to sync) is reported with the reason and the
other bags still convert. A folder that is not a bag but holds bags (a ``hvp record`` session
with ``episode_000NNN/``) stands for those bags, in name order. The task text comes from the
bag (what ``hvp record --instruction`` stored) unless the configuration gives one. A bag whose
storage files are partly damaged converts from its readable files, with a warning naming what
was lost (:func:`read_bag_episode`).

Images: a camera topic the bag lacks is looked for as its image_transport twin
(``<topic>/compressed`` for a raw topic, the raw topic for a ``/compressed`` one), which is what
``hvp record`` stores by default; both give the same feature key (:func:`camera_key`), or the
preset's ``camera_keys``.
``hvp record --preset NAME`` records :func:`recording_topics` of the same preset, so the two
commands cannot disagree on topics.

Output: the dataset is written into a hidden staging folder beside ``out_dir`` and moved into
place only when at least one bag converted; a conversion that converts nothing (or fails)
leaves nothing behind. An existing non-empty ``out_dir`` is refused once, before any bag is
read, unless ``overwrite`` (then only a dataset folder is replaced, and only on success).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from human_video_policy.data.bag_repair import CUSTOM_PREFIX, read_custom_data, readable_view
from human_video_policy.data.bags import BagReader, BagStorageError
from human_video_policy.data.dataset_format import (
    DatasetSpec,
    FeatureSpec,
    vector_feature,
    video_feature,
)
from human_video_policy.data.dataset_writer import DatasetWriter, VideoEncoding
from human_video_policy.data.embodiment import EMBODIMENTS
from human_video_policy.errors import ConfigError, HvpError, InputError
from human_video_policy.policies.action_spaces import JOINT_POSITION
from human_video_policy.validation import check_positive

_IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
_JOINT_TYPE = "sensor_msgs/msg/JointState"
_COLOUR_ENCODINGS = {"rgb8": (3, False), "bgr8": (3, True), "rgba8": (4, False), "bgra8": (4, True)}


@dataclass(frozen=True)
class BagConversionConfig:
    """How bags become episodes.

    Fields:
        rate_hz: control rate of the dataset (rows per second); VITRA and the policy node use 10.
        camera_topics: sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) or CompressedImage
            topics; each becomes ``observation.images.<topic without /compressed and
            /image_raw, '/' -> '_'>`` (:func:`camera_key`) unless ``camera_keys`` names it. A
            raw topic missing from a bag is read from ``<topic>/compressed`` (what ``hvp
            record`` stores) and vice versa. Empty: a dataset without cameras.
        camera_keys: the feature key of each camera topic (same order), e.g.
            ``observation.images.camera_color``, the key human datasets use, so the robot's
            camera and the human video share one key in a mixed batch. Empty: derived from the
            topics.
        state_topic: measured joints (sensor_msgs/JointState) -> ``observation.state``.
        action_topic: commanded joints (sensor_msgs/JointState positions) -> ``action``.
        extra_state_topics: more measured-joint topics whose joints join ``observation.state``
            (e.g. ``/hand/joint_states`` next to the arm's); each is synchronised on its own.
        extra_action_topics: more command topics whose joints join ``action`` (e.g.
            ``/hand/joint_commands``); each holds its newest command on its own.
        instruction: the task text of every episode, overriding the bags'. ``""``: each bag's
            own (``hvp.instruction`` in its metadata.yaml, else its last /task/instruction
            message), or ``"unspecified task"`` with a warning when it carries none.
        embodiment: id from :mod:`human_video_policy.data.embodiment`; its joint names pick and
            order the columns (from whichever topic has each joint). ``""``: ``joint_names``.
        robot_type: LeRobot's ``robot_type`` in meta/info.json: a robot of
            ``robots/spec.py`` (``hvp dataset info`` then describes it) or any id of your own.
            ``""``: the embodiment's id (``widowx``, ``rm75_xhand``...), else ``unknown``.
        joint_names: with no embodiment, the joints (and their order) of both the action and the
            state columns, e.g. the robot's ``RM75_XHAND_JOINTS``; each comes from whichever
            topic has it. Empty: every joint of the first message of each topic, topics in the
            order above (a topic that lists its joints in another order than its twin then
            gives action and state columns in different orders).
        sync_tolerance_s: largest |header stamp - row time| for images and states.
        action_max_age_s: oldest command (s before the row time) that still counts.
        max_clock_jump_s: a gap between consecutive stamps of a state or camera topic larger
            than this (or a step back larger than ``sync_tolerance_s`` on any topic) fails the
            bag as a clock jump. Command topics may pause (deadman released, IK refusing a
            target): their stale rows are dropped by ``action_max_age_s`` instead.
        image_size: (height, width) to resize images to (centre crop to the aspect first), or
            None to keep them (they must then have even sides, as yuv420p needs).
        min_frames: fewest rows an episode may have.
        video: MP4 encoding settings.
        record_topics: more topics ``hvp record --preset`` records that the conversion does not
            read, e.g. /sim/episode and /policy/action_chunk, which ``hvp replay`` needs.
    """

    rate_hz: float = 10.0
    camera_topics: tuple[str, ...] = ("/camera/camera/color/image_raw",)
    camera_keys: tuple[str, ...] = ()
    state_topic: str = "/arm/joint_states"
    action_topic: str = "/arm/joint_commands"
    extra_state_topics: tuple[str, ...] = ()
    extra_action_topics: tuple[str, ...] = ()
    instruction: str = ""
    embodiment: str = "widowx"
    robot_type: str = ""
    joint_names: tuple[str, ...] = ()
    sync_tolerance_s: float = 0.05
    action_max_age_s: float = 0.5
    max_clock_jump_s: float = 1.0
    image_size: tuple[int, int] | None = None
    min_frames: int = 2
    video: VideoEncoding = field(default_factory=VideoEncoding)
    record_topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_positive("rate_hz", self.rate_hz)
        check_positive("sync_tolerance_s", self.sync_tolerance_s)
        check_positive("action_max_age_s", self.action_max_age_s)
        check_positive("max_clock_jump_s", self.max_clock_jump_s)
        if self.min_frames < 1:
            raise ConfigError(f"min_frames={self.min_frames!r} is invalid: must be >= 1")
        for name in (
            "camera_topics",
            "camera_keys",
            "extra_state_topics",
            "extra_action_topics",
            "joint_names",
            "record_topics",
        ):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise ConfigError(f"{name}={value!r} is invalid: must be a list of topics")
            object.__setattr__(self, name, tuple(value))  # a YAML list becomes a tuple
        topics = [*self.camera_topics, *self.state_topics, *self.action_topics]
        for t in [*topics, *self.record_topics]:
            if not isinstance(t, str) or not t.startswith("/"):
                raise ConfigError(f"topic {t!r} is invalid: must start with '/'")
        if len(set(topics)) != len(topics):
            raise ConfigError(f"topics {topics} are invalid: each stream needs its own topic")
        if self.camera_keys:
            keys = list(self.camera_keys)
            if len(keys) != len(self.camera_topics):
                raise ConfigError(
                    f"camera_keys={keys} is invalid: one key per camera topic "
                    f"{list(self.camera_topics)}, or [] to derive them from the topics"
                )
            for k in keys:
                if (
                    not isinstance(k, str)
                    or not k.startswith("observation.images.")
                    or k == "observation.images."
                    or "/" in k
                ):
                    raise ConfigError(
                        f"camera_keys: {k!r} is invalid: 'observation.images.<name>', no '/'"
                    )
            if len(set(keys)) != len(keys):
                raise ConfigError(f"camera_keys={keys} is invalid: repeated key")
        if self.embodiment and self.embodiment not in EMBODIMENTS:
            raise ConfigError(
                f"embodiment={self.embodiment!r} is invalid: must be '' or one of "
                f"{sorted(EMBODIMENTS)}"
            )
        if not isinstance(self.robot_type, str) or (
            self.robot_type and not self.robot_type.isidentifier()
        ):
            raise ConfigError(
                f"robot_type={self.robot_type!r} is invalid: a robot id such as 'rm75' (robots/"
                "spec.py), or '' for the embodiment's"
            )
        if self.joint_names and self.embodiment:
            raise ConfigError(
                f"joint_names={list(self.joint_names)} with embodiment={self.embodiment!r} is "
                "invalid: the embodiment names the joints; set embodiment '' to use joint_names"
            )
        if len(set(self.joint_names)) != len(self.joint_names) or not all(
            isinstance(n, str) and n for n in self.joint_names
        ):
            raise ConfigError(f"joint_names={list(self.joint_names)} is invalid: repeated or empty")
        if not isinstance(self.instruction, str) or (
            self.instruction and not self.instruction.strip()
        ):
            raise ConfigError(
                f"instruction={self.instruction!r} is invalid: give the task text, or '' for "
                "the one each bag carries"
            )
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(self.image_size))
            h, w = self.image_size
            if h < 2 or w < 2 or h % 2 or w % 2:
                raise ConfigError(
                    f"image_size={self.image_size!r} is invalid: even height and width >= 2"
                )

    @property
    def robot(self) -> str:
        """The dataset's ``robot_type``: ``robot_type``, else the embodiment, else unknown."""
        return self.robot_type or self.embodiment or "unknown"

    @property
    def feature_keys(self) -> tuple[str, ...]:
        """The dataset feature key of each camera topic, in ``camera_topics`` order."""
        return self.camera_keys or tuple(camera_key(t) for t in self.camera_topics)

    @property
    def state_topics(self) -> tuple[str, ...]:
        """Every measured-joint topic, in column order when no embodiment orders them."""
        return (self.state_topic, *self.extra_state_topics)

    @property
    def action_topics(self) -> tuple[str, ...]:
        """Every command topic, in column order when no embodiment orders them."""
        return (self.action_topic, *self.extra_action_topics)


def conversion_preset(name_or_path: str | Path, **overrides: Any) -> BagConversionConfig:
    """A :class:`BagConversionConfig` from ``config/datasets/<name>.yaml`` (or a YAML file).

    The file maps field names to values (topic lists, ``image_size: [H, W]``...), after those of
    the preset named by its ``inherits`` key, if any; ``overrides``
    (field=value) replace what it says (overriding ``camera_topics`` drops the file's
    ``camera_keys`` unless they are overridden too). Unknown keys are a :class:`ConfigError`
    naming them. The same file gives ``hvp record --preset`` its topics
    (:func:`recording_topics`).
    """
    data, path = _preset_fields(name_or_path, ())
    if "camera_topics" in overrides and "camera_keys" not in overrides:
        data.pop("camera_keys", None)
    data.update(overrides)
    fields = set(BagConversionConfig.__dataclass_fields__) - {"video"}
    if unknown := sorted(set(data) - fields):
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    return BagConversionConfig(**data)


def _preset_fields(name_or_path: str | Path, seen: tuple[Path, ...]) -> tuple[dict, Path]:
    """The fields a preset file sets, after those of the preset it names in ``inherits``
    (a graph that records what another records says so instead of repeating it)."""
    import yaml

    from human_video_policy.resources import share_dir

    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = share_dir() / "config" / "datasets" / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"preset {name_or_path!r} not found ({path}); known: {preset_names()}, or a YAML file"
        )
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'inherits' makes a cycle ({' -> '.join(map(str, seen))})")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must map BagConversionConfig fields to values")
    base = data.pop("inherits", None)
    if base is None:
        return data, path
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: inherits={base!r} must name a preset")
    fields, _ = _preset_fields(base, (*seen, path.resolve()))
    return {**fields, **data}, path


def preset_names() -> list[str]:
    """The presets shipped in ``config/datasets/`` (one per graph of ``config/graphs/``)."""
    from human_video_policy.resources import share_dir

    return sorted(p.stem for p in (share_dir() / "config" / "datasets").glob("*.yaml"))


COMPRESSED_SUFFIX = "/compressed"


def raw_image_topic(topic: str) -> str:
    """``/camera/camera/color/image_raw/compressed`` -> ``/camera/camera/color/image_raw``
    (others as given)."""
    if topic.endswith(COMPRESSED_SUFFIX) and topic != COMPRESSED_SUFFIX:
        return topic[: -len(COMPRESSED_SUFFIX)]
    return topic


def camera_info_topic(image_topic: str) -> str:
    """The CameraInfo topic beside an image topic (``.../color/image_raw`` -> ``.../color/
    camera_info``), as realsense-ros and image_transport name them."""
    return raw_image_topic(image_topic).rsplit("/", 1)[0] + "/camera_info"


def recording_topics(cfg: BagConversionConfig) -> list[str]:
    """The topics to record so that converting with ``cfg`` finds every stream: each camera
    topic and its camera_info, the measured-joint and the command topics (in that order).

    A raw camera topic stays raw here: the recorder compresses it and stores it on
    ``<topic>/compressed``, which :func:`read_bag_episode` finds by itself.
    """
    out: list[str] = []
    for topic in cfg.camera_topics:
        out += [topic, camera_info_topic(topic)]
    out += [*cfg.state_topics, *cfg.action_topics, *cfg.record_topics]
    return list(dict.fromkeys(out))


def find_bags(paths: Sequence[str | Path]) -> list[Path]:
    """Each path that is a bag (has metadata.yaml) as it is; a folder of bags (a ``hvp record``
    session) as its bags in name order; anything else as it is, so converting reports it."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not (p / "metadata.yaml").is_file():
            inner = sorted(
                c
                for c in p.iterdir()
                if c.is_dir() and not c.name.startswith(".") and (c / "metadata.yaml").is_file()
            )
            if inner:
                out.extend(inner)
                continue
        out.append(p)
    return out


def camera_key(topic: str) -> str:
    """``/camera/camera/color/image_raw`` (or its ``/compressed`` twin) ->
    ``observation.images.camera_color``: realsense-ros's doubled namespace/name (``camera/camera``)
    counts once, so its topics and the older ``/camera/color/...`` give the human datasets' key."""
    name = topic.strip("/")
    for suffix in ("/compressed", "/image_raw", "/image"):
        if name.endswith(suffix) and name != suffix.strip("/"):
            name = name[: -len(suffix)]
    parts = name.split("/")
    if len(parts) > 2 and parts[0] == parts[1]:
        parts = parts[1:]
    return "observation.images." + "_".join(parts)


@dataclass
class EpisodeOutcome:
    """What happened to one bag."""

    source: str
    ok: bool
    frames: int = 0
    episode_index: int = -1
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    lost_files: list[str] = field(default_factory=list)


@dataclass
class ConversionReport:
    """All bags of one conversion; ``dataset`` is the folder asked for, ``written`` whether it
    now holds the converted episodes (False when no bag converted: nothing was left there)."""

    dataset: Path
    outcomes: list[EpisodeOutcome] = field(default_factory=list)
    source_seconds: float = 0.0
    written: bool = False

    @property
    def episodes(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def failed(self) -> list[EpisodeOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def frames(self) -> int:
        return sum(o.frames for o in self.outcomes if o.ok)

    def summary(self) -> str:
        text = (
            f"{self.episodes}/{len(self.outcomes)} bag(s) converted, {self.frames} frames, "
            f"{len(self.failed)} failed"
        )
        if damaged := [o for o in self.outcomes if o.ok and o.lost_files]:
            files = sum(len(o.lost_files) for o in damaged)
            text += f", {len(damaged)} converted without {files} damaged storage file(s)"
        if not self.written:
            text += "; nothing written (no bag converted)"
        return text


# --------------------------------------------------------------------------------------------
# Reading one bag


@dataclass
class _Stream:
    stamps: np.ndarray  # int64 ns, sorted
    values: list[Any]


def _header_stamp_cdr(raw: bytes) -> int:
    """Header stamp of a CDR message whose first field is std_msgs/Header (Image, JointState)."""
    if len(raw) < 12:
        raise InputError(f"message of {len(raw)} bytes is too short to hold a header")
    little = raw[1] == 1  # encapsulation id 0x0001 = CDR little endian
    sec, nsec = struct.unpack("<iI" if little else ">iI", raw[4:12])
    return sec * 1_000_000_000 + nsec


def _check_stamps(
    topic: str, stamps: np.ndarray, cfg: BagConversionConfig, check_gaps: bool = True
) -> np.ndarray:
    """Sort stamps (small reorderings are normal), fail on duplicates and clock jumps (a step
    back always; a long gap only with ``check_gaps``, i.e. for continuous streams)."""
    if stamps.size == 0:
        return np.arange(0)
    steps = np.diff(stamps)
    back = np.nonzero(steps < -cfg.sync_tolerance_s * 1e9)[0]
    if back.size:
        i = int(back[0])
        raise InputError(
            f"clock jump on {topic}: header stamp goes back {-steps[i] / 1e9:.3f} s at "
            f"message {i + 1} (sim time reset or a clock change during recording?)"
        )
    order = np.argsort(stamps, kind="stable")
    s = stamps[order]
    gaps = np.diff(s)
    dup = np.nonzero(gaps == 0)[0]
    if dup.size:
        raise InputError(
            f"duplicate header stamps on {topic}: {dup.size} message(s) repeat a stamp, first "
            f"at {s[dup[0]] / 1e9:.9f} s (a publisher not setting header.stamp?)"
        )
    jump = np.nonzero(gaps > cfg.max_clock_jump_s * 1e9)[0] if check_gaps else np.arange(0)
    if jump.size:
        i = int(jump[0])
        raise InputError(
            f"clock jump on {topic}: {gaps[i] / 1e9:.3f} s without a message at "
            f"{s[i] / 1e9:.3f} s (limit max_clock_jump_s={cfg.max_clock_jump_s})"
        )
    return order


def _joint_positions(
    msg: Any, names: Sequence[str] | None, topic: str, stamp: int
) -> tuple[list[str], np.ndarray]:
    got = list(msg.name)
    pos = np.asarray(msg.position, dtype=np.float64)
    if len(got) != pos.size:
        raise InputError(
            f"{topic} at {stamp / 1e9:.3f} s: {len(got)} joint names but {pos.size} positions"
        )
    if names is None:
        return got, pos
    index = {n: i for i, n in enumerate(got)}
    if missing := [n for n in names if n not in index]:
        raise InputError(f"{topic} at {stamp / 1e9:.3f} s lacks joint(s) {missing}; has {got}")
    return list(names), pos[[index[n] for n in names]]


def _decode_image(msg: Any, msgtype: str, topic: str) -> np.ndarray:
    if msgtype.endswith("CompressedImage"):
        bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"{topic}: compressed image ({msg.format}) cannot be decoded")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w, step, enc = int(msg.height), int(msg.width), int(msg.step), str(msg.encoding)
    data = np.asarray(msg.data, dtype=np.uint8)
    if enc == "mono8":
        channels, swap = 1, False
    elif enc in _COLOUR_ENCODINGS:
        channels, swap = _COLOUR_ENCODINGS[enc]
    else:
        raise InputError(
            f"{topic}: image encoding {enc!r} is not supported (rgb8, bgr8, rgba8, bgra8, mono8)"
        )
    if h == 0 or w == 0 or step < w * channels or data.size < step * h:
        raise InputError(f"{topic}: {enc} image {w}x{h} step {step} with {data.size} bytes")
    pixels = data[: step * h].reshape(h, step)[:, : w * channels].reshape(h, w, channels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    rgb = pixels[:, :, :3]
    return np.ascontiguousarray(rgb[:, :, ::-1] if swap else rgb)


def _resize(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return image
    from human_video_policy.runtime.image_ops import prepare_rgb

    return prepare_rgb(image, size[0], size[1])


def _nearest(stamps: np.ndarray, times: np.ndarray, tol_ns: float) -> np.ndarray:
    """Index of the nearest stamp to each time, -1 where none is within ``tol_ns``."""
    pos = np.clip(np.searchsorted(stamps, times), 1, len(stamps) - 1) if len(stamps) > 1 else None
    if pos is None:
        idx = np.zeros(len(times), np.int64)
    else:
        left = pos - 1
        idx = np.where(np.abs(stamps[left] - times) <= np.abs(stamps[pos] - times), left, pos)
    ok = np.abs(stamps[idx] - times) <= tol_ns
    return np.where(ok, idx, -1)


def _latest(stamps: np.ndarray, times: np.ndarray, max_age_ns: float) -> np.ndarray:
    """Index of the newest stamp <= each time, -1 where none or older than ``max_age_ns``."""
    idx = np.searchsorted(stamps, times, side="right") - 1
    ok = (idx >= 0) & (times - stamps[np.maximum(idx, 0)] <= max_age_ns)
    return np.where(ok, idx, -1)


def _longest_run(valid: np.ndarray) -> tuple[int, int]:
    best, start, best_range = 0, None, (0, 0)
    for i, v in enumerate([*valid.tolist(), False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start > best:
                best, best_range = i - start, (start, i)
            start = None
    return best_range


@dataclass
class BagEpisode:
    """One bag resampled to rows: arrays ready for :class:`DatasetWriter`."""

    action: np.ndarray  # (T, A) float32, commanded joints
    state: np.ndarray  # (T, S) float32, measured joints
    images: dict[str, np.ndarray]  # camera key -> (T, H, W, 3) uint8
    action_names: list[str]
    state_names: list[str]
    times_ns: np.ndarray  # (T,) row times
    camera_info: dict[str, dict[str, Any]]
    duration_s: float
    warnings: list[str]
    instruction: str = ""  # the task text of the episode (the config's or the bag's)
    lost_files: list[str] = field(default_factory=list)
    camera_sources: dict[str, str] = field(default_factory=dict)  # key -> topic read


def _columns(
    first: dict[str, list[str]], wanted: Sequence[str] | None, what: str
) -> list[tuple[str, str]]:
    """(topic, joint) of each column: ``wanted``'s joints from whichever topic has each, or
    every joint of each topic's first message, topics in order."""
    if wanted is None:
        cols = [(t, n) for t, names in first.items() for n in names]
        seen: dict[str, str] = {}
        for t, n in cols:
            if n in seen:
                raise InputError(f"{what}: joint {n!r} is on both {seen[n]} and {t}")
            seen[n] = t
        return cols
    cols = []
    for n in wanted:
        owners = [t for t, names in first.items() if n in names]
        if len(owners) > 1:
            raise InputError(f"{what}: joint {n!r} is on several topics {owners}")
        cols.extend((t, n) for t in owners)
    if missing := [n for n in wanted if n not in {c[1] for c in cols}]:
        have = {t: names for t, names in first.items()}
        raise InputError(f"{what}: {list(first)} lack joint(s) {missing}; they have {have}")
    return cols


def _joint_matrix(
    streams: dict[str, _Stream], picks: dict[str, np.ndarray], cols: list[tuple[str, str]]
) -> np.ndarray:
    """(T, len(cols)) positions: per topic, its joints of the picked messages, by name."""
    out = np.empty((len(next(iter(picks.values()))), len(cols)), np.float64)
    for topic, pick in picks.items():
        at = [j for j, (t, _) in enumerate(cols) if t == topic]
        names = [cols[j][1] for j in at]
        s = streams[topic]
        for row, i in enumerate(pick.tolist()):
            _, out[row, at] = _joint_positions(s.values[i], names, topic, int(s.stamps[i]))
    return out


def bag_instruction(path: Path, bag: BagReader) -> str:
    """The task text a bag carries: ``hvp.instruction`` in its metadata.yaml (``hvp record``),
    else its last /task/instruction message; ``""`` when neither."""
    from human_video_policy.data.recorder import INSTRUCTION_TOPIC

    text = read_custom_data(path).get(f"{CUSTOM_PREFIX}instruction", "").strip()
    if text or INSTRUCTION_TOPIC not in bag.topics:
        return text
    texts = [str(m.data).strip() for _, _, m in bag.messages([INSTRUCTION_TOPIC])]
    return next((t for t in reversed(texts) if t), "")


def read_bag_episode(path: str | Path, cfg: BagConversionConfig) -> BagEpisode:
    """Read and resample one bag (raises :class:`InputError` naming what is wrong).

    A bag with damaged storage files (one truncated split of 16, say) is converted from its
    readable files, as ``hvp record repair`` would keep them; the first warning then names each
    file left out, the messages it held and its time span (``lost_files`` lists them).
    """
    try:
        return _read_bag_episode(Path(path), cfg)
    except BagStorageError as exc:
        damage = exc
    with tempfile.TemporaryDirectory(prefix="hvp_bag_view_") as tmp:
        try:
            view = readable_view(path, tmp)
        except InputError:
            raise damage from None
        if not view.lost:  # every file reads alone: the damage is elsewhere
            raise damage
        episode = _read_bag_episode(view.path, cfg)
    episode.warnings.insert(0, view.summary())
    episode.lost_files = [f.path for f in view.lost]
    return episode


def _camera_source(topic: str, topics: dict[str, Any]) -> str:
    """The topic a bag holds camera ``topic`` on: itself, else its image_transport twin (the
    ``/compressed`` topic of a raw one, or the raw topic of a ``/compressed`` one)."""
    if topic in topics:
        return topic
    raw = raw_image_topic(topic)
    twin = raw if raw != topic else f"{topic}{COMPRESSED_SUFFIX}"
    return twin if twin in topics else topic


def _read_bag_episode(path: Path, cfg: BagConversionConfig) -> BagEpisode:
    spec = EMBODIMENTS.get(cfg.embodiment) if cfg.embodiment else None
    warnings: list[str] = []
    with BagReader(path, on_unknown="raise") as bag:
        topics = bag.topics
        joint_topics = [*cfg.action_topics, *cfg.state_topics]
        # each configured camera -> the topic this bag holds it on (raw or compressed twin)
        cameras = {t: _camera_source(t, topics) for t in cfg.camera_topics}
        camera_topics = list(cameras.values())
        keys = dict(zip(camera_topics, cfg.feature_keys, strict=True))
        wanted = [*joint_topics, *camera_topics]
        if missing := [t for t in wanted if t not in topics]:
            have = ", ".join(f"{n} ({s.msgtype})" for n, s in topics.items()) or "nothing"
            twins = [f"{t}{COMPRESSED_SUFFIX}" for t in missing if t in camera_topics]
            nor = f" (nor {twins})" if twins else ""
            raise InputError(f"bag has no topic(s) {missing}{nor}; it holds {have}")
        if unknown := {t: bag.unknown_topics[t] for t in wanted if t in bag.unknown_topics}:
            raise InputError(
                f"unknown message type(s) {unknown}: neither a ROS 2 Jazzy or project type nor "
                "defined in the bag"
            )
        for t in joint_topics:
            if topics[t].msgtype != _JOINT_TYPE:
                raise InputError(f"{t} carries {topics[t].msgtype}, expected {_JOINT_TYPE}")
        for t in camera_topics:
            if topics[t].msgtype not in _IMAGE_TYPES:
                raise InputError(f"{t} carries {topics[t].msgtype}, expected one of {_IMAGE_TYPES}")
        if empty := [t for t in wanted if topics[t].count == 0]:
            raise InputError(f"empty episode: no messages on {empty}")
        duration_s = bag.duration_ns / 1e9
        instruction = cfg.instruction or bag_instruction(Path(path), bag)
        if not instruction:
            instruction = "unspecified task"
            warnings.append("the bag carries no instruction: task 'unspecified task'")
        end_reason = read_custom_data(Path(path)).get(f"{CUSTOM_PREFIX}end_reason", "")
        if end_reason in ("recording", "interrupted", "disk_full"):
            warnings.append(f"the recording of this episode did not end cleanly ({end_reason})")

        # pass 1: joint messages in full, image header stamps only
        joints: dict[str, tuple[list[int], list[Any]]] = {t: ([], []) for t in joint_topics}
        image_stamps: dict[str, list[int]] = {t: [] for t in camera_topics}
        info_topics = {
            camera_info_topic(t): t for t in camera_topics if camera_info_topic(t) in topics
        }
        camera_info: dict[str, dict[str, Any]] = {}
        for topic, stamp, msg in bag.messages([*joints, *info_topics]):
            if topic in info_topics:
                key = keys[info_topics[topic]]
                camera_info.setdefault(
                    key,
                    {
                        "width": int(msg.width),
                        "height": int(msg.height),
                        "k": [float(v) for v in msg.k],
                        "frame_id": str(msg.header.frame_id),
                    },
                )
                continue
            hs = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            joints[topic][0].append(hs or stamp)
            joints[topic][1].append(msg)
        if camera_topics:
            for topic, stamp, raw in bag.messages(camera_topics, raw=True):
                image_stamps[topic].append(_header_stamp_cdr(raw) or stamp)

        streams: dict[str, _Stream] = {}
        for topic, (stamps, msgs) in joints.items():
            arr = np.asarray(stamps, np.int64)
            order = _check_stamps(topic, arr, cfg, check_gaps=topic not in cfg.action_topics)
            streams[topic] = _Stream(arr[order], [msgs[i] for i in order])
        image_order: dict[str, np.ndarray] = {}
        for topic, stamps in image_stamps.items():
            arr = np.asarray(stamps, np.int64)
            order = _check_stamps(topic, arr, cfg)
            image_order[topic] = order
            streams[topic] = _Stream(arr[order], [])

        t0 = max(int(s.stamps[0]) for s in streams.values())
        t1 = min(int(s.stamps[-1]) for s in streams.values())
        dt_ns = 1e9 / cfg.rate_hz
        if t1 < t0:
            raise InputError(
                "empty episode: the topics do not overlap in time "
                + ", ".join(
                    f"{t} {s.stamps[0] / 1e9:.3f}..{s.stamps[-1] / 1e9:.3f} s"
                    for t, s in streams.items()
                )
            )
        times = t0 + np.round(np.arange(int((t1 - t0) // dt_ns) + 1) * dt_ns).astype(np.int64)
        tol = cfg.sync_tolerance_s * 1e9
        pick = {
            t: _latest(streams[t].stamps, times, cfg.action_max_age_s * 1e9)
            for t in cfg.action_topics
        }
        for topic in [*cfg.state_topics, *camera_topics]:
            pick[topic] = _nearest(streams[topic].stamps, times, tol)
        valid = np.all([p >= 0 for p in pick.values()], axis=0)
        lo, hi = _longest_run(valid)
        if hi - lo < cfg.min_frames:
            worst = max(pick, key=lambda t: int(np.sum(pick[t] < 0)))
            raise InputError(
                f"empty episode: {hi - lo} row(s) at {cfg.rate_hz:g} Hz have every stream within "
                f"tolerance (min_frames={cfg.min_frames}); {worst} misses "
                f"{int(np.sum(pick[worst] < 0))}/{len(times)} rows"
            )
        if hi - lo < len(times):
            warnings.append(
                f"kept rows {lo}..{hi - 1} of {len(times)}: {len(times) - (hi - lo)} row(s) lack a "
                f"sample within tolerance on some stream"
            )
        times = times[lo:hi]
        pick = {t: p[lo:hi] for t, p in pick.items()}

        names = cfg.joint_names or None
        action_cols = _columns(
            {t: list(streams[t].values[0].name) for t in cfg.action_topics},
            spec.action_names if spec else names,
            "action",
        )
        state_cols = _columns(
            {t: list(streams[t].values[0].name) for t in cfg.state_topics},
            spec.state_names if spec else names,
            "state",
        )
        action = _joint_matrix(streams, {t: pick[t] for t in cfg.action_topics}, action_cols)
        state = _joint_matrix(streams, {t: pick[t] for t in cfg.state_topics}, state_cols)
        action_names = [n for _, n in action_cols]
        state_names = [n for _, n in state_cols]
        for name, arr in (("action", action), ("state", state)):
            if not np.all(np.isfinite(arr)):
                bad = np.unique(np.nonzero(~np.isfinite(arr))[0])
                raise InputError(
                    f"{name}: NaN or inf joint positions at row(s) {bad[:10].tolist()}"
                )

        # pass 2: decode only the images the rows use
        images: dict[str, np.ndarray] = {}
        for topic in camera_topics:
            # message number in bag order of each chosen (sorted) image
            wanted_msg = image_order[topic][pick[topic]]
            needed: dict[int, list[int]] = {}
            for row, m in enumerate(wanted_msg.tolist()):
                needed.setdefault(m, []).append(row)
            out: np.ndarray | None = None
            msgtype = topics[topic].msgtype
            for k, (_, _, raw) in enumerate(bag.messages([topic], raw=True)):
                rows = needed.get(k)
                if rows is None:
                    continue
                try:
                    msg = bag.typestore.deserialize_cdr(raw, msgtype)
                except Exception as exc:  # rosbags raises its own error types
                    raise InputError(
                        f"{topic}: image message {k} cannot be deserialized: {exc}"
                    ) from exc
                img = _resize(_decode_image(msg, msgtype, topic), cfg.image_size)
                if out is None:
                    out = np.empty((len(times), *img.shape), np.uint8)
                if img.shape != out.shape[1:]:
                    raise InputError(
                        f"{topic}: image size changed from {out.shape[1:3]} to {img.shape[:2]}"
                    )
                out[rows] = img
            assert out is not None
            h, w = out.shape[1:3]
            if h % 2 or w % 2:
                raise InputError(
                    f"{topic}: images are {w}x{h}; h264/yuv420p needs even sides: pass "
                    "image_size (--image-size WxH)"
                )
            images[keys[topic]] = out

    return BagEpisode(
        action=action.astype(np.float32),
        state=state.astype(np.float32),
        images=images,
        action_names=action_names,
        state_names=state_names,
        times_ns=times,
        camera_info=camera_info,
        duration_s=duration_s,
        warnings=warnings,
        instruction=instruction,
        camera_sources={keys[t]: t for t in camera_topics},
    )


def episode_spec(
    cfg: BagConversionConfig,
    action_names: Sequence[str],
    state_names: Sequence[str],
    image_shapes: dict[str, tuple[int, int]],
    camera_info: dict[str, dict[str, Any]] | None = None,
    camera_sources: dict[str, str] | None = None,
) -> DatasetSpec:
    """The dataset spec of bags converted with ``cfg`` (robot columns + masks + cameras);
    ``camera_sources`` (key -> topic read) names the topic each camera came from."""
    feats: list[FeatureSpec] = [
        vector_feature("observation.state", state_names),
        vector_feature("action", action_names),
        vector_feature("mask.action", action_names),
        vector_feature("mask.observation.state", state_names),
        FeatureSpec("segment_index", "int64", (1,)),
    ]
    cams: dict[str, dict[str, Any]] = {}
    for topic, key in zip(cfg.camera_topics, cfg.feature_keys, strict=True):
        if key in image_shapes:
            h, w = image_shapes[key]
            feats.append(video_feature(key, h, w, cfg.rate_hz))
            source = (camera_sources or {}).get(key, topic)
            cams[key] = {"topic": source, **((camera_info or {}).get(key, {}))}
    spec = EMBODIMENTS.get(cfg.embodiment)
    return DatasetSpec(
        fps=cfg.rate_hz,
        robot_type=cfg.robot,
        features=tuple(feats),
        embodiment=cfg.embodiment or "unknown",
        action_space=spec.action_space if spec else JOINT_POSITION,
        cameras=cams,
    )


def convert_bags(
    bags: Sequence[str | Path],
    out_dir: str | Path,
    cfg: BagConversionConfig | None = None,
    *,
    progress: Callable[[EpisodeOutcome], None] | None = None,
    overwrite: bool = False,
) -> ConversionReport:
    """Convert ``bags`` (one episode each) into a new dataset at ``out_dir``.

    A folder of bags (a ``hvp record`` session) stands for its bags (:func:`find_bags`). Every
    bag gets an :class:`EpisodeOutcome`; failing bags do not stop the others.

    ``out_dir`` must not exist or be empty; a non-empty one raises :class:`InputError` once,
    before any bag is read, unless ``overwrite`` (which replaces only a dataset folder, one
    with ``meta/info.json``). The dataset is written into a hidden staging folder beside
    ``out_dir`` and moved into place when at least one bag converted (``report.written``);
    when none did, or on an error, the staging folder and any parent folder made for it are
    removed and ``out_dir`` is left as it was: nothing is left behind, and an overwritten
    dataset survives a failed conversion.
    """
    cfg = cfg or BagConversionConfig()
    if not bags:
        raise InputError("no bags given")
    out = Path(out_dir)
    check_output_folder(out, overwrite)
    bags = find_bags(bags)
    report = ConversionReport(dataset=out)
    writer: DatasetWriter | None = None
    spec: DatasetSpec | None = None
    created = [d for d in (out.parent, *out.parent.parents) if not d.exists()]  # deepest first
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the dataset's parent folder {out.parent}: {exc}") from exc
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for bag in bags:
            outcome = EpisodeOutcome(source=str(bag), ok=False)
            try:
                ep = read_bag_episode(bag, cfg)
                report.source_seconds += ep.duration_s
                shapes = {k: (v.shape[1], v.shape[2]) for k, v in ep.images.items()}
                this = episode_spec(
                    cfg, ep.action_names, ep.state_names, shapes, ep.camera_info,
                    ep.camera_sources,
                )  # fmt: skip
                if writer is None:
                    spec = this
                    writer = DatasetWriter(staging, spec, cfg.video)
                else:
                    assert spec is not None
                    _check_same_spec(spec, this)
                n = len(ep.action)
                frames = {
                    "observation.state": ep.state,
                    "action": ep.action,
                    "mask.action": np.ones_like(ep.action),
                    "mask.observation.state": np.ones_like(ep.state),
                    "segment_index": np.zeros(n, np.int64),
                    "timestamp": ((ep.times_ns - ep.times_ns[0]) / 1e9).astype(np.float32),
                }
                outcome.episode_index = writer.add_episode(
                    frames, ep.instruction, ep.images, source=str(Path(bag).resolve())
                )
                outcome.ok, outcome.frames, outcome.warnings = True, n, ep.warnings
                outcome.lost_files = ep.lost_files
            except HvpError as exc:
                outcome.error = str(exc)
            report.outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
        if writer is not None and writer.num_episodes:
            writer.finalize()
            move_into_place(staging, out)
            report.written = True
        elif writer is not None:
            writer.abort()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not report.written:  # the parent folders made for a dataset that was not written
            for folder in created:
                with contextlib.suppress(OSError):  # (something else put a file there)
                    folder.rmdir()
    return report


def check_output_folder(out: Path, overwrite: bool = False) -> None:
    """Refuse (InputError, naming the fix) a dataset folder that is not new: a file, a
    non-empty folder without ``overwrite``, or with it one that is not a dataset."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"dataset folder {out} is a file; choose another output folder")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise InputError(
            f"dataset folder {out} exists and is not empty: choose another output folder, or "
            "pass --overwrite to replace it (replaced only if at least one bag converts)"
        )
    if not (out / "meta" / "info.json").is_file():
        raise InputError(
            f"dataset folder {out} is not empty and is not a dataset (no meta/info.json): "
            "--overwrite replaces only a dataset; choose another output folder"
        )


def move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished ``staging`` dataset to ``out``, replacing an empty folder or (after
    :func:`check_output_folder` allowed it) an old dataset."""
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        else:
            out.rmdir()
    staging.rename(out)
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


def _check_same_spec(first: DatasetSpec, this: DatasetSpec) -> None:
    a = {f.key: (f.shape, f.names) for f in first.features}
    b = {f.key: (f.shape, f.names) for f in this.features}
    if a != b:
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise InputError(
            f"bag does not match the dataset's first episode in {diff} (joint names or image "
            "size differ; pass --image-size or convert it into another dataset)"
        )


__all__ = [
    "BagConversionConfig",
    "BagEpisode",
    "ConversionReport",
    "EpisodeOutcome",
    "bag_instruction",
    "camera_info_topic",
    "camera_key",
    "check_output_folder",
    "conversion_preset",
    "convert_bags",
    "episode_spec",
    "find_bags",
    "move_into_place",
    "preset_names",
    "raw_image_topic",
    "read_bag_episode",
    "recording_topics",
]
