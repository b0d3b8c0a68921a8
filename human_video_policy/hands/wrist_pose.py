"""Method A wrist 6D pose from 21 keypoints (human_video_prompt_policy, stage 2).

- position ``p`` = wrist keypoint ``W``.
- ``x`` = unit(``M - W``), ``M`` = middle-finger MCP (keypoint 9).
- ``z`` = unit normal of the plane (``W``, ``I``, ``M``), ``I`` = index MCP (keypoint 5),
  oriented **toward the palm** (the side the fingers flex to).
- ``y = z x x`` (right-handed), ``R = [x y z]`` (columns), so ``R`` maps wrist-frame vectors
  into the keypoints' frame (usually the camera frame) and ``p`` is the wrist origin there.

Palm side. The raw normal ``n = (I - W) x (M - W)`` depends on which side of the middle finger
the index lies, which is mirrored between hands. For a **right** hand ``n`` points out of the
palm (palm-ward); for a **left** hand it points out of the back of the hand. So
``z = +unit(n)`` for ``handedness='right'`` and ``z = -unit(n)`` for ``'left'``. Check: right hand
palm down on a table, fingers along +X (forward), thumb toward +Y (left): ``I ~ (0.9, 0.2, 0)``,
``M ~ (1, 0, 0)``, ``n = (0, 0, -0.2)`` -> down, into the table = palm side. The handedness is the
anatomical hand (what a detector such as WiLoR/MediaPipe reports after un-mirroring), not the
image side.

Consequence: ``y`` points from the index side toward the pinky side for a right hand and from the
pinky side toward the index/thumb side for a left hand (both frames are right-handed).
"""

from __future__ import annotations

import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.hands.keypoints import (
    INDEX_MCP,
    MIDDLE_MCP,
    WRIST,
    check_handedness,
    check_keypoint_sequence,
    check_keypoints,
)
from human_video_policy.hands.rotations import orthonormalize

#: Bones shorter than this (metres, or whatever unit the keypoints use) are degenerate.
MIN_BONE = 1e-6


def _frames(kp: np.ndarray, handedness: str, name: str) -> np.ndarray:
    sign = 1.0 if check_handedness(handedness) == "right" else -1.0
    w, i, m = kp[:, WRIST], kp[:, INDEX_MCP], kp[:, MIDDLE_MCP]
    wm = m - w
    wm_len = np.linalg.norm(wm, axis=-1)
    n = np.cross(i - w, wm)
    n_len = np.linalg.norm(n, axis=-1)
    bad = (wm_len < MIN_BONE) | (n_len < MIN_BONE * np.maximum(wm_len, MIN_BONE))
    if bad.any():
        t = int(np.argmax(bad))
        raise InputError(
            f"{name}: wrist, index MCP and middle MCP are coincident or collinear at frame {t}; "
            "the wrist orientation is undefined"
        )
    x = wm / wm_len[:, None]
    z = sign * n / n_len[:, None]
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=-1)
    return orthonormalize(R)


def wrist_poses_from_keypoints(
    kp: object, handedness: str, name: str = "keypoints"
) -> tuple[np.ndarray, np.ndarray]:
    """Batched method A: ``(T, 21, 3)`` -> ``R (T, 3, 3)``, ``p (T, 3)``."""
    arr = check_keypoint_sequence(kp, name)
    return _frames(arr, handedness, name), arr[:, WRIST].copy()


def wrist_pose_from_keypoints(
    kp: object, handedness: str, name: str = "keypoints"
) -> tuple[np.ndarray, np.ndarray]:
    """Method A for one frame: ``(21, 3)`` -> ``R (3, 3)``, ``p (3,)``."""
    arr = check_keypoints(kp, name)
    R, p = wrist_poses_from_keypoints(arr[None], handedness, name)
    return R[0], p[0]


#: dex-retargeting's operator -> MANO rotation for a right hand (+Z fingers, +Y thumb side).
OPERATOR_TO_MANO_RIGHT = np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]], dtype=np.float64)


def to_mano_wrist_frame(kp_wrist_relative: object) -> np.ndarray:
    """Right-hand wrist-relative ``(21, 3)`` keypoints in the MANO wrist frame as dex-retargeting
    estimates it (SVD plane of wrist, index MCP, middle MCP, then its operator -> MANO turn).

    This is the frame of the reference keypoints in ../shared/data/human_video/dexret_hand and
    the input frame dex-retargeting expects, so the project's tracker and retargeting can be
    compared with it without any per-frame alignment.
    """
    kp = check_keypoints(kp_wrist_relative, "kp_wrist_relative")
    pts = kp[[WRIST, INDEX_MCP, MIDDLE_MCP]]
    x_vec = pts[0] - pts[2]
    pts = pts - pts.mean(axis=0)
    normal = np.linalg.svd(pts)[2][2].copy()
    x = x_vec - (x_vec @ normal) * normal
    x /= np.linalg.norm(x)
    z = np.cross(x, normal)
    if z @ (pts[1] - pts[2]) < 0:
        normal, z = -normal, -z
    return kp @ np.stack([x, normal, z], axis=1) @ OPERATOR_TO_MANO_RIGHT
