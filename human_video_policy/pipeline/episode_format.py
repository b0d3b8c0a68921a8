"""On-disk layout of processed hand videos: one folder per video, one ``.npz`` per hand episode.

::

    OUT/
      index.jsonl                 one line per video (summary of its video.json)
      <video_id>/
        video.json                status ok|empty|failed, error, source, size, fps, hands found,
                                  config hash, stage timings, episode file names
        episode_000_right.npz     one hand track piece (see EPISODE_FIELDS)
        episode_001_left.npz

An episode file is self-describing: besides the arrays it holds ``meta`` (a JSON string) with
the format name and version, the units and frames of every field, joint names, the camera
intrinsics and the lifting method, so a converter (e.g. to LeRobot) needs nothing else.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``), so a
killed run never leaves a half-written file under its final name.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.hands.joint_angles import ANGLE_NAMES, MANO_JOINT_NAMES
from human_video_policy.hands.keypoints import HANDEDNESS

EPISODE_FORMAT = "hvp.hand_episode"
FORMAT_VERSION = 1
VIDEO_STATUSES = ("ok", "empty", "failed")
VIDEO_RECORD_NAME = "video.json"
INDEX_NAME = "index.jsonl"

#: MediaPipe keypoint names in order (see human_video_policy.hands.keypoints).
KEYPOINT_NAMES: tuple[str, ...] = (
    "wrist",
    *("thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip"),
    *("index_mcp", "index_pip", "index_dip", "index_tip"),
    *("middle_mcp", "middle_pip", "middle_dip", "middle_tip"),
    *("ring_mcp", "ring_pip", "ring_dip", "ring_tip"),
    *("pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip"),
)


@dataclass(frozen=True)
class FieldSpec:
    """One array of an episode: shape after the time axis, dtype kind, unit, frame, meaning.

    ``kind``: numpy dtype kind (``f`` float64, ``i`` int64, ``b`` bool, ``U`` text).
    ``finite``: float values must be finite (else NaN is allowed where documented).
    ``per_frame``: first axis is the episode's T frames (else ``per_segment``: S segments).
    """

    tail: tuple[int, ...]
    kind: str
    unit: str
    frame: str
    description: str
    finite: bool = True
    per_segment: bool = False


#: Every array in an episode file. T = frames of the episode, S = segments.
EPISODE_FIELDS: dict[str, FieldSpec] = {
    "frame_index": FieldSpec((), "i", "frame", "-", "frame number in the source video"),
    "stamps_s": FieldSpec((), "f", "s", "-", "presentation time from the video start"),
    "keypoints_px": FieldSpec(
        (21, 2),
        "f",
        "px",
        "image (x right, y down, origin top-left pixel centre 0,0)",
        "tracked 2D keypoints, MediaPipe order; NaN on frames the tracker missed (filled)",
        finite=False,
    ),
    "keypoints_cam": FieldSpec(
        (21, 3),
        "f",
        "m",
        "camera optical (x right, y down, z forward)",
        "lifted 3D keypoints after gap filling / outlier repair",
    ),
    "filled": FieldSpec((), "b", "-", "-", "frame interpolated (the tracker missed the hand)"),
    "outlier": FieldSpec((), "b", "-", "-", "frame's keypoints replaced as an outlier"),
    "wrist_rotation": FieldSpec(
        (3, 3), "f", "-", "camera optical", "wrist frame axes as columns (method A)"
    ),
    "wrist_position": FieldSpec((3,), "f", "m", "camera optical", "wrist keypoint"),
    "joint_angles": FieldSpec(
        (15, 3),
        "f",
        "rad",
        "bone frames",
        "MANO joints (mano_joint_names) x (flexion, abduction, twist)",
    ),
    "actions_51": FieldSpec(
        (51,),
        "f",
        "m, rad",
        "camera optical",
        "VITRA action from frame t to t+1: [dp (3), dR Euler xyz (3), next joint angles (45)];"
        " last row is zeros (see action_mask)",
    ),
    "action_mask": FieldSpec((), "b", "-", "-", "actions_51 row is valid (False on the last)"),
    "xhand_joints": FieldSpec(
        (12,), "f", "rad", "XHand joints", "retargeted XHand joints (xhand_joint_names order)"
    ),
    "fingertip_error_m": FieldSpec(
        (5,), "f", "m", "-", "retargeting fingertip error (thumb, index, middle, ring, pinky)"
    ),
    "gripper": FieldSpec(
        (), "f", "m", "-", "WidowX gripper command (left_finger position) from the pinch"
    ),
    "segment_id": FieldSpec((), "i", "-", "-", "index into segments of each frame"),
    "move_primitive": FieldSpec(
        (), "U", "-", "camera optical axes", "RAD move word per frame (stop/left/right/...)"
    ),
    "gripper_state": FieldSpec((), "U", "-", "-", "RAD gripper state per frame (open/closed)"),
    "segments": FieldSpec(
        (2,), "i", "frame", "episode", "[start, end) of each atomic segment", per_segment=True
    ),
    "captions": FieldSpec(
        (), "U", "-", "-", "template instruction of each segment", per_segment=True
    ),
}


@dataclass
class HandEpisode:
    """One continuous track piece of one hand, with everything derived from it.

    ``arrays`` maps every name of :data:`EPISODE_FIELDS` to its array. ``video_id`` names the
    source video folder; ``handedness`` is ``'left'``/``'right'``; ``piece`` counts the track
    pieces of the video (all hands); ``fps`` is the video frame rate; ``intrinsics`` is
    ``{width, height, fx, fy, cx, cy}`` (px) of the camera model used to lift the keypoints;
    ``lift_method`` names how 3D was obtained; ``xhand_joint_names`` the 12 XHand joints;
    ``extra`` holds free-form JSON metadata (e.g. the retargeting settings).
    """

    video_id: str
    handedness: str
    piece: int
    fps: float
    intrinsics: dict[str, float]
    lift_method: str
    xhand_joint_names: tuple[str, ...]
    arrays: dict[str, np.ndarray]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.arrays["stamps_s"].shape[0])

    @property
    def file_name(self) -> str:
        return f"episode_{self.piece:03d}_{self.handedness}.npz"

    def meta(self) -> dict[str, Any]:
        """The JSON metadata stored in the file next to the arrays."""
        return {
            "format": EPISODE_FORMAT,
            "version": FORMAT_VERSION,
            "video_id": self.video_id,
            "handedness": self.handedness,
            "piece": self.piece,
            "fps": self.fps,
            "num_frames": self.num_frames,
            "intrinsics": self.intrinsics,
            "lift_method": self.lift_method,
            "keypoint_names": list(KEYPOINT_NAMES),
            "mano_joint_names": list(MANO_JOINT_NAMES),
            "joint_angle_names": list(ANGLE_NAMES),
            "xhand_joint_names": list(self.xhand_joint_names),
            "fields": {
                name: {
                    "shape": ["S" if spec.per_segment else "T", *spec.tail],
                    "unit": spec.unit,
                    "frame": spec.frame,
                    "description": spec.description,
                }
                for name, spec in EPISODE_FIELDS.items()
            },
            "extra": self.extra,
        }

    def validate(self, where: str = "episode") -> None:
        """Raise InputError naming the field if anything is missing, misshapen or inconsistent."""
        if self.handedness not in HANDEDNESS:
            raise InputError(f"{where}: handedness must be one of {HANDEDNESS}")
        if not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps) and self.fps > 0):
            raise InputError(f"{where}: fps must be a finite number > 0, got {self.fps!r}")
        if len(self.xhand_joint_names) != 12:
            raise InputError(f"{where}: xhand_joint_names must name 12 joints")
        missing = sorted(set(EPISODE_FIELDS) - set(self.arrays))
        if missing:
            raise InputError(f"{where}: missing arrays {missing}")
        T = self.num_frames
        S = int(np.asarray(self.arrays["segments"]).shape[0])
        if T < 2:
            raise InputError(f"{where}: an episode needs at least 2 frames, got {T}")
        for name, spec in EPISODE_FIELDS.items():
            arr = self.arrays[name]
            lead = S if spec.per_segment else T
            if arr.shape != (lead, *spec.tail):
                raise InputError(
                    f"{where}: {name} must have shape {(lead, *spec.tail)}, got {arr.shape}"
                )
            if arr.dtype.kind != spec.kind:
                raise InputError(f"{where}: {name} must have dtype kind {spec.kind!r}")
            if spec.kind == "f" and spec.finite and not np.isfinite(arr).all():
                raise InputError(f"{where}: {name} contains NaN/inf")
        self._validate_consistency(where, T)

    def _validate_consistency(self, where: str, T: int) -> None:
        a = self.arrays
        if np.any(np.diff(a["stamps_s"]) <= 0) or np.any(np.diff(a["frame_index"]) <= 0):
            raise InputError(f"{where}: stamps_s and frame_index must increase strictly")
        seen = ~a["filled"]
        if not np.isfinite(a["keypoints_px"][seen]).all():
            raise InputError(f"{where}: keypoints_px must be finite on frames that are not filled")
        segs = a["segments"]
        if (
            segs.shape[0] == 0
            or segs[0, 0] != 0
            or segs[-1, 1] != T
            or np.any(segs[:, 1] <= segs[:, 0])
            or np.any(segs[1:, 0] != segs[:-1, 1])
        ):
            raise InputError(f"{where}: segments must tile [0, {T}) in order, got {segs.tolist()}")
        expected_ids = np.repeat(np.arange(segs.shape[0]), segs[:, 1] - segs[:, 0])
        if not np.array_equal(a["segment_id"], expected_ids):
            raise InputError(f"{where}: segment_id disagrees with segments")
        mask = a["action_mask"]
        if mask[-1] or not mask[:-1].all():
            raise InputError(f"{where}: action_mask must be True except on the last frame")


def _atomic_write_bytes(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    _atomic_write_bytes(Path(path), lambda fh: fh.write(text.encode()))


def write_text_atomic(path: str | Path, text: str) -> None:
    _atomic_write_bytes(Path(path), lambda fh: fh.write(text.encode()))


def write_episode(folder: str | Path, episode: HandEpisode) -> Path:
    """Validate and write ``episode`` into ``folder`` (atomically); returns the file path."""
    path = Path(folder) / episode.file_name
    episode.validate(str(path))
    payload = {name: np.asarray(episode.arrays[name]) for name in EPISODE_FIELDS}
    payload["meta"] = np.array(json.dumps(episode.meta(), allow_nan=False))
    _atomic_write_bytes(path, lambda fh: np.savez_compressed(fh, **payload))
    return path


def read_episode(path: str | Path) -> HandEpisode:
    """Read and validate an episode file (InputError naming the file and the problem)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"episode file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a readable episode .npz ({exc})") from exc
    if "meta" not in arrays:
        raise InputError(f"{path}: no 'meta' entry (not a {EPISODE_FORMAT} file)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: 'meta' is not JSON ({exc})") from exc
    if meta.get("format") != EPISODE_FORMAT or meta.get("version") != FORMAT_VERSION:
        raise InputError(
            f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}, expected "
            f"{EPISODE_FORMAT!r} version {FORMAT_VERSION}"
        )
    try:
        episode = HandEpisode(
            video_id=str(meta["video_id"]),
            handedness=str(meta["handedness"]),
            piece=int(meta["piece"]),
            fps=float(meta["fps"]),
            intrinsics={k: float(v) for k, v in meta["intrinsics"].items()},
            lift_method=str(meta["lift_method"]),
            xhand_joint_names=tuple(meta["xhand_joint_names"]),
            arrays=arrays,
            extra=dict(meta.get("extra", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: incomplete metadata ({exc!r})") from exc
    episode.validate(str(path))
    return episode


def read_video_record(folder: str | Path) -> dict[str, Any] | None:
    """The ``video.json`` of a video folder, or None if absent or unreadable."""
    path = Path(folder) / VIDEO_RECORD_NAME
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("status") in VIDEO_STATUSES else None


def index_line(record: dict[str, Any]) -> dict[str, Any]:
    """The summary of one video record kept in ``index.jsonl``."""
    keys = ("video_id", "status", "source", "error", "frames", "fps", "frames_with_hand")
    line = {k: record.get(k) for k in keys}
    line["episodes"] = [e["file"] for e in record.get("episodes", [])]
    return line


def write_index(out_dir: str | Path) -> Path:
    """Rebuild ``OUT/index.jsonl`` from every ``OUT/*/video.json`` (sorted by video id)."""
    out = Path(out_dir)
    lines = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        record = read_video_record(folder)
        if record is not None:
            lines.append(json.dumps(index_line(record), sort_keys=True))
    path = out / INDEX_NAME
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    return path
