"""The 21-keypoint hand (MediaPipe order) as viewers draw it: names and bones."""

from __future__ import annotations

from human_video_policy.hands.keypoints import FINGER_CHAINS, PARENT

#: Keypoint names in MediaPipe order: wrist, thumb_1..4, index_1..4, ... (1 = base, 4 = tip).
KEYPOINT_NAMES: tuple[str, ...] = (
    "wrist",
    *(f"{finger}_{j}" for finger in FINGER_CHAINS for j in range(1, 5)),
)
#: (parent, child) keypoint index pairs: the 20 bones.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENT) if p >= 0)
#: RGB in 0..1 per handedness (right orange, left blue).
HAND_COLOURS = {"right": (1.0, 0.55, 0.1), "left": (0.2, 0.75, 1.0)}
