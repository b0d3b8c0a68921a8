"""MediaPipe 21-joint hand layout and keypoint-array validation.

Order (MediaPipe Hands, also used by WiLoR/HaMeR exports in this project)::

    0 WRIST
    1 THUMB_CMC   2 THUMB_MCP   3 THUMB_IP    4 THUMB_TIP
    5 INDEX_MCP   6 INDEX_PIP   7 INDEX_DIP   8 INDEX_TIP
    9 MIDDLE_MCP 10 MIDDLE_PIP 11 MIDDLE_DIP 12 MIDDLE_TIP
   13 RING_MCP   14 RING_PIP   15 RING_DIP   16 RING_TIP
   17 PINKY_MCP  18 PINKY_PIP  19 PINKY_DIP  20 PINKY_TIP
"""

from __future__ import annotations

import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.validation import check_choice

NUM_KEYPOINTS = 21

WRIST = 0
THUMB_CMC, THUMB_MCP, THUMB_IP, THUMB_TIP = 1, 2, 3, 4
INDEX_MCP, INDEX_PIP, INDEX_DIP, INDEX_TIP = 5, 6, 7, 8
MIDDLE_MCP, MIDDLE_PIP, MIDDLE_DIP, MIDDLE_TIP = 9, 10, 11, 12
RING_MCP, RING_PIP, RING_DIP, RING_TIP = 13, 14, 15, 16
PINKY_MCP, PINKY_PIP, PINKY_DIP, PINKY_TIP = 17, 18, 19, 20

#: Each finger as its chain from the wrist to the tip (wrist included).
FINGER_CHAINS: dict[str, tuple[int, ...]] = {
    "thumb": (WRIST, THUMB_CMC, THUMB_MCP, THUMB_IP, THUMB_TIP),
    "index": (WRIST, INDEX_MCP, INDEX_PIP, INDEX_DIP, INDEX_TIP),
    "middle": (WRIST, MIDDLE_MCP, MIDDLE_PIP, MIDDLE_DIP, MIDDLE_TIP),
    "ring": (WRIST, RING_MCP, RING_PIP, RING_DIP, RING_TIP),
    "pinky": (WRIST, PINKY_MCP, PINKY_PIP, PINKY_DIP, PINKY_TIP),
}

#: Parent of every keypoint along its finger chain (the wrist is the root: -1).
PARENT: tuple[int, ...] = (
    -1,
    *(WRIST, THUMB_CMC, THUMB_MCP, THUMB_IP),
    *(WRIST, INDEX_MCP, INDEX_PIP, INDEX_DIP),
    *(WRIST, MIDDLE_MCP, MIDDLE_PIP, MIDDLE_DIP),
    *(WRIST, RING_MCP, RING_PIP, RING_DIP),
    *(WRIST, PINKY_MCP, PINKY_PIP, PINKY_DIP),
)

HANDEDNESS = ("right", "left")


def check_handedness(handedness: str) -> str:
    """``'right'`` or ``'left'`` (raises ConfigError otherwise)."""
    return check_choice("handedness", handedness, HANDEDNESS)


def _as_float_array(name: str, value: object) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a numeric array: {exc}") from exc
    return arr


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise InputError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s), first at index "
            f"{tuple(int(i) for i in where)}"
        )


def check_keypoints(kp: object, name: str = "keypoints") -> np.ndarray:
    """One frame of keypoints: returns a float64 ``(21, 3)`` copy or raises InputError."""
    arr = _as_float_array(name, kp)
    if arr.shape != (NUM_KEYPOINTS, 3):
        raise InputError(f"{name} must have shape (21, 3) (MediaPipe order), got {arr.shape}")
    _check_finite(name, arr)
    return arr


def check_keypoint_sequence(kp: object, name: str = "keypoints", min_frames: int = 1) -> np.ndarray:
    """A sequence of keypoints: returns a float64 ``(T, 21, 3)`` copy or raises InputError."""
    arr = _as_float_array(name, kp)
    if arr.ndim != 3 or arr.shape[1:] != (NUM_KEYPOINTS, 3):
        raise InputError(
            f"{name} must have shape (T, 21, 3) (frames, MediaPipe joints, xyz), got {arr.shape}"
        )
    if arr.shape[0] < min_frames:
        raise InputError(f"{name} must have at least {min_frames} frame(s), got {arr.shape[0]}")
    _check_finite(name, arr)
    return arr


def check_points(value: object, name: str, min_frames: int = 1) -> np.ndarray:
    """A ``(T, 3)`` trajectory of 3D points (finite), as float64."""
    arr = _as_float_array(name, value)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"{name} must have shape (T, 3), got {arr.shape}")
    if arr.shape[0] < min_frames:
        raise InputError(f"{name} must have at least {min_frames} frame(s), got {arr.shape[0]}")
    _check_finite(name, arr)
    return arr
