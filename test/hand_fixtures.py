"""Constructed MediaPipe-ordered hands shared by the test_hand_* tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA_RIGHT = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "human_video"
    / "dexret_hand"
    / "human_joint_right.npy"
)

# Right hand in its own wrist frame (x: wrist -> middle MCP, z: toward the palm, y = z x x, so
# the thumb/index side is -y). Every finger is straight along its metacarpal direction.
_MCP = {
    "index": np.array([0.085, -0.022, 0.0]),
    "middle": np.array([0.09, 0.0, 0.0]),
    "ring": np.array([0.083, 0.02, 0.0]),
    "pinky": np.array([0.075, 0.038, 0.0]),
}
_THUMB_DIR = np.array([1.0, -1.2, 0.0]) / np.linalg.norm([1.0, -1.2, 0.0])
_BONES = (0.04, 0.025, 0.02)
FINGER_START = {"thumb": 1, "index": 5, "middle": 9, "ring": 13, "pinky": 17}


def canonical_right_hand() -> np.ndarray:
    kp = np.zeros((21, 3))
    for name, mcp in _MCP.items():
        start = FINGER_START[name]
        d = mcp / np.linalg.norm(mcp)
        kp[start] = mcp
        for k, length in enumerate(_BONES):
            kp[start + k + 1] = kp[start + k] + length * d
    for k, dist in enumerate((0.025, 0.06, 0.09, 0.115)):
        kp[1 + k] = dist * _THUMB_DIR
    return kp


def bend_finger(kp: np.ndarray, finger: str, joint: int, angle: float) -> np.ndarray:
    """Rotate the part of ``finger`` after chain joint ``joint`` (0 = MCP, 1 = PIP, 2 = DIP) by
    ``angle`` toward the palm (+z) about the axis perpendicular to the finger and z."""
    out = kp.copy()
    start = FINGER_START[finger]
    pivot = out[start + joint]
    d = out[start + 1] - out[start]
    d /= np.linalg.norm(d)
    axis = np.cross(np.array([0.0, 0.0, 1.0]), d)  # rotating d about axis by +a moves it to +z
    axis = -axis
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    R = np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K
    for i in range(start + joint + 1, start + 4):
        out[i] = pivot + R @ (out[i] - pivot)
    return out


def mirror_to_left(kp: np.ndarray) -> np.ndarray:
    """Anatomical left hand: the right hand reflected through the y = 0 plane."""
    out = kp.copy()
    out[..., 1] *= -1.0
    return out


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def load_real_right() -> np.ndarray:
    assert DATA_RIGHT.is_file(), (
        f"real hand data missing: {DATA_RIGHT} (expected the shared dexret_hand keypoints, "
        "621 x 21 x 3 float32)"
    )
    return np.load(DATA_RIGHT)
