"""Finger joint angles (15 MANO joints x 3 Euler angles) and the VITRA 51-d per-hand action.

Joint angle formula (VITRA-style, from keypoints). Along each finger chain (wrist -> MCP -> PIP
-> DIP -> tip; thumb: wrist -> CMC -> MCP -> IP -> tip) every bone gets a frame
``F = [e1 e2 e3]`` with ``e1`` = unit bone vector. The first bone's frame is a per-finger base
frame turned by the smallest rotation onto the bone; each next bone's frame is the previous frame
turned by the smallest rotation taking the parent bone direction ``u`` onto the child bone
direction ``v`` (parallel transport, so no reference axis can become degenerate). The joint
rotation (a pure swing of angle ``arccos(u.v)``) is written in the reordered bone frames
``G = [e2 e3 e1]`` as ``G_parent^T G_child`` = intrinsic xyz Euler angles
``(flexion, abduction, twist)`` (see :mod:`.rotations`; the first angle has the full +-180 degree
range, so PIP flexion beyond 90 degrees stays continuous):

- ``flexion``: rotation about ``e2``; **positive = bending toward the palm**. A straight joint
  gives 0; a joint bent by 90 degrees toward the palm gives +90 degrees.
- ``abduction``: rotation about ``e3``; positive toward ``e2`` (the thumb side for fingers, away
  from the fingers for the thumb).
- ``twist``: roll about the bone. It is not observable from keypoints and is ~0 (it only carries
  the small roll that the xyz split of a combined flexion + abduction swing produces).

Base frames are expressed in the wrist frame of :mod:`.wrist_pose` (x: wrist -> middle MCP,
z: palm normal toward the palm). Keypoints are first moved into that frame; a **left** hand is
additionally mirrored (local ``y -> -y``) so left and right hands give the same angles for the
same anatomical posture. Fingers start from ``[x, -y, -z]`` (``-y`` = thumb side of a right
hand); the thumb starts from ``[unit(x - y), unit(-x - y), -z]`` (its nominal direction, toward
the thumb side and forward), so the same sign rules hold.

MANO joint order (15 joints, index/middle/pinky/ring/thumb, as in MANO's kinematic tree) and the
MediaPipe keypoint that plays each joint (its parent and child keypoints define the bones)::

    MANO   name      MediaPipe joint (parent -> joint -> child)
     0     index1    5  INDEX_MCP   (0 -> 5 -> 6)
     1     index2    6  INDEX_PIP   (5 -> 6 -> 7)
     2     index3    7  INDEX_DIP   (6 -> 7 -> 8)
     3     middle1   9  MIDDLE_MCP  (0 -> 9 -> 10)
     4     middle2  10  MIDDLE_PIP  (9 -> 10 -> 11)
     5     middle3  11  MIDDLE_DIP  (10 -> 11 -> 12)
     6     pinky1   17  PINKY_MCP   (0 -> 17 -> 18)
     7     pinky2   18  PINKY_PIP   (17 -> 18 -> 19)
     8     pinky3   19  PINKY_DIP   (18 -> 19 -> 20)
     9     ring1    13  RING_MCP    (0 -> 13 -> 14)
    10     ring2    14  RING_PIP    (13 -> 14 -> 15)
    11     ring3    15  RING_DIP    (14 -> 15 -> 16)
    12     thumb1    1  THUMB_CMC   (0 -> 1 -> 2)
    13     thumb2    2  THUMB_MCP   (1 -> 2 -> 3)
    14     thumb3    3  THUMB_IP    (2 -> 3 -> 4)

51-d action (VITRA eq. 3, one hand), in the camera frame of the current observation:
``[dt (3), dr (3), theta (45)]`` with ``dt = p_next - p_prev``, ``dr`` = Euler xyz of
``dR = R_next @ R_prev^T`` (so ``R_next = dR @ R_prev``) and ``theta`` = the 15 x 3 joint angles
of the next frame flattened joint-major (``theta[3 * j + k]``).
"""

from __future__ import annotations

import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.hands.keypoints import (
    PARENT,
    check_handedness,
    check_keypoint_sequence,
    check_keypoints,
)
from human_video_policy.hands.rotations import (
    check_rotation,
    euler_xyz_from_matrix,
    hat,
    matrix_from_euler_xyz,
)
from human_video_policy.hands.wrist_pose import wrist_poses_from_keypoints

NUM_MANO_JOINTS = 15
ACTION_DIM = 51

MANO_JOINT_NAMES: tuple[str, ...] = (
    *("index1", "index2", "index3"),
    *("middle1", "middle2", "middle3"),
    *("pinky1", "pinky2", "pinky3"),
    *("ring1", "ring2", "ring3"),
    *("thumb1", "thumb2", "thumb3"),
)

#: MediaPipe keypoint acting as each MANO joint (same order as MANO_JOINT_NAMES).
MANO_TO_MEDIAPIPE: tuple[int, ...] = (5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3)

#: Names of the three Euler components per joint.
ANGLE_NAMES = ("flexion", "abduction", "twist")

_MIN_LEN = 1e-9
_SQ2 = np.sqrt(2.0)
#: Base frames [e1 e2 e3] (columns, in the right-hand wrist frame) that the chains start from.
_FINGER_BASE = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]).T
_THUMB_BASE = np.array(
    [[1 / _SQ2, -1 / _SQ2, 0.0], [-1 / _SQ2, -1 / _SQ2, 0.0], [0.0, 0.0, -1.0]]
).T
_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 5, 6, 7, 8),
    (0, 9, 10, 11, 12),
    (0, 17, 18, 19, 20),
    (0, 13, 14, 15, 16),
    (0, 1, 2, 3, 4),
)


def _min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vectors ``a`` to ``b`` (batched, not for a = -b)."""
    c = np.sum(a * b, axis=-1)[..., None, None]
    K = hat(np.cross(a, b))
    return np.eye(3) + K + (K @ K) / (1.0 + c)


def local_keypoints(kp: object, handedness: str, name: str = "keypoints") -> np.ndarray:
    """``(T, 21, 3)`` keypoints in the wrist frame (left hands mirrored to right-hand form)."""
    arr = check_keypoint_sequence(kp, name)
    R, p = wrist_poses_from_keypoints(arr, handedness, name)
    local = np.einsum("tij,tki->tkj", R, arr - p[:, None, :])
    if handedness == "left":
        local[..., 1] *= -1.0
    return local


def joint_angles_sequence(kp: object, handedness: str, name: str = "keypoints") -> np.ndarray:
    """``(T, 21, 3)`` keypoints -> ``(T, 15, 3)`` MANO-ordered ``(flexion, abduction, twist)``."""
    check_handedness(handedness)
    local = local_keypoints(kp, handedness, name)
    joints = np.array(MANO_TO_MEDIAPIPE)
    parents = np.array([PARENT[j] for j in joints])
    children = joints + 1
    u = local[:, joints] - local[:, parents]
    v = local[:, children] - local[:, joints]
    short = (np.linalg.norm(u, axis=-1) < _MIN_LEN) | (np.linalg.norm(v, axis=-1) < _MIN_LEN)
    if short.any():
        t, j = (int(i) for i in np.argwhere(short)[0])
        raise InputError(
            f"{name}: zero-length bone at frame {t} around joint {MANO_JOINT_NAMES[j]} "
            f"(MediaPipe {MANO_TO_MEDIAPIPE[j]})"
        )
    out = np.empty((local.shape[0], NUM_MANO_JOINTS, 3))
    for f, chain in enumerate(_CHAINS):
        base = _THUMB_BASE if chain[1] == 1 else _FINGER_BASE
        F = np.broadcast_to(base, (local.shape[0], 3, 3))
        for k in range(4):
            bone = local[:, chain[k + 1]] - local[:, chain[k]]
            bone = bone / np.linalg.norm(bone, axis=-1, keepdims=True)
            F_next = _min_rotation(F[..., 0], bone) @ F
            if k > 0:
                # Columns reordered to [e2, e3, e1]: xyz Euler = (flexion, abduction, twist).
                G, G_next = F[..., [1, 2, 0]], F_next[..., [1, 2, 0]]
                rel = np.swapaxes(G, -1, -2) @ G_next
                out[:, 3 * f + k - 1] = euler_xyz_from_matrix(rel)
            F = F_next
    return out


def joint_angles(kp: object, handedness: str, name: str = "keypoints") -> np.ndarray:
    """One frame ``(21, 3)`` -> ``(15, 3)`` joint angles (radians)."""
    arr = check_keypoints(kp, name)
    return joint_angles_sequence(arr[None], handedness, name)[0]


def _check_pose(name: str, pose: object) -> tuple[np.ndarray, np.ndarray]:
    try:
        R, p = pose  # type: ignore[misc]
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a (R 3x3, p 3) pair: {exc}") from exc
    R = check_rotation(f"{name}[R]", R, tol=1e-5)
    if R.shape != (3, 3):
        raise InputError(f"{name}[R] must have shape (3, 3), got {R.shape}")
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (3,) or not np.isfinite(p).all():
        raise InputError(f"{name}[p] must be a finite (3,) vector, got shape {p.shape}")
    return R, p


def _check_angles(name: str, angles: object) -> np.ndarray:
    a = np.asarray(angles, dtype=np.float64)
    if a.shape == (45,):
        a = a.reshape(NUM_MANO_JOINTS, 3)
    if a.shape != (NUM_MANO_JOINTS, 3):
        raise InputError(f"{name} must have shape (15, 3) or (45,), got {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN/inf")
    return a


def hand_action_51(
    prev_pose: tuple[np.ndarray, np.ndarray],
    next_pose: tuple[np.ndarray, np.ndarray],
    prev_angles: object,
    next_angles: object,
) -> np.ndarray:
    """VITRA per-hand action between two frames: ``[dt, dr, theta_next]`` (51,).

    ``prev_angles`` is validated but, as in VITRA, the action carries the *absolute* joint angles
    of the next frame (not a delta), so an action is decodable from the previous wrist pose
    alone.
    """
    R0, p0 = _check_pose("prev_pose", prev_pose)
    R1, p1 = _check_pose("next_pose", next_pose)
    _check_angles("prev_angles", prev_angles)
    a1 = _check_angles("next_angles", next_angles)
    dr = euler_xyz_from_matrix(R1 @ R0.T)
    return np.concatenate([p1 - p0, dr, a1.reshape(-1)])


def apply_hand_action_51(
    pose: tuple[np.ndarray, np.ndarray], action: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`hand_action_51`: ``(R, p)`` + action -> ``(R_next, p_next, angles)``."""
    R0, p0 = _check_pose("pose", pose)
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (ACTION_DIM,):
        raise InputError(f"action must have shape (51,), got {a.shape}")
    if not np.isfinite(a).all():
        raise InputError("action contains NaN/inf")
    R1 = matrix_from_euler_xyz(a[3:6]) @ R0
    return R1, p0 + a[:3], a[6:].reshape(NUM_MANO_JOINTS, 3).copy()


def hand_actions_51(R: object, p: object, angles: object) -> np.ndarray:
    """Batched actions along a trajectory: ``R (T,3,3)``, ``p (T,3)``, ``angles (T,15,3)``
    -> ``(T-1, 51)``, row ``t`` going from frame ``t`` to ``t + 1``."""
    Rs = check_rotation("R", R, tol=1e-5)
    ps = np.asarray(p, dtype=np.float64)
    ang = np.asarray(angles, dtype=np.float64)
    T = Rs.shape[0] if Rs.ndim == 3 else -1
    if Rs.ndim != 3 or ps.shape != (T, 3) or ang.shape != (T, NUM_MANO_JOINTS, 3) or T < 2:
        raise InputError(
            "expected R (T, 3, 3), p (T, 3), angles (T, 15, 3) with T >= 2, got "
            f"{Rs.shape}, {ps.shape}, {ang.shape}"
        )
    if not (np.isfinite(ps).all() and np.isfinite(ang).all()):
        raise InputError("p or angles contain NaN/inf")
    dr = euler_xyz_from_matrix(Rs[1:] @ np.swapaxes(Rs[:-1], -1, -2))
    return np.concatenate([ps[1:] - ps[:-1], dr, ang[1:].reshape(T - 1, -1)], axis=-1)


__all__ = [
    "ACTION_DIM",
    "ANGLE_NAMES",
    "MANO_JOINT_NAMES",
    "MANO_TO_MEDIAPIPE",
    "NUM_MANO_JOINTS",
    "apply_hand_action_51",
    "hand_action_51",
    "hand_actions_51",
    "joint_angles",
    "joint_angles_sequence",
    "local_keypoints",
]
