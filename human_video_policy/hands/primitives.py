"""RAD-style per-frame hand labels and an offline captioner (rad_action_free_reasoning.txt).

- Gripper position = mean of the thumb tip (4) and index tip (8).
- Move primitive per frame from the displacement of the gripper position over a centred window
  of ``window_s`` seconds: ``"stop"`` when its speed is below ``stop_speed`` (m/s), otherwise the
  direction of the dominant axis (largest absolute component).
- Gripper state from the thumb-index tip distance with hysteresis: it becomes ``"closed"`` when
  the distance drops below ``close_below`` and ``"open"`` again only when it rises above
  ``open_above`` (metres).

Axis conventions (:data:`AXES`, pick with ``MotionLabelConfig.axes``):

- ``"camera"`` (default, optical frame): +x right, +y down, +z forward (away from the camera).
- ``"base"`` (REP-103 robot base): +x forward, +y left, +z up.

Keypoints must already be in that frame (rotate camera points into a base frame before calling
with ``axes="base"``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.keypoints import (
    INDEX_TIP,
    THUMB_TIP,
    check_handedness,
    check_keypoint_sequence,
    check_points,
)
from human_video_policy.validation import check_choice, check_non_negative, check_positive

#: For each frame convention: the words for (+x, -x, +y, -y, +z, -z).
AXES: dict[str, tuple[str, str, str, str, str, str]] = {
    "camera": ("right", "left", "down", "up", "forward", "backward"),
    "base": ("forward", "backward", "left", "right", "up", "down"),
}

STOP = "stop"
OPEN = "open"
CLOSED = "closed"


@dataclass(frozen=True)
class MotionLabelConfig:
    fps: float
    window_s: float = 0.2
    stop_speed: float = 0.03
    close_below: float = 0.03
    open_above: float = 0.05
    axes: str = "camera"

    def __post_init__(self) -> None:
        check_positive("fps", self.fps)
        check_positive("window_s", self.window_s)
        check_non_negative("stop_speed", self.stop_speed)
        check_positive("close_below", self.close_below)
        check_positive("open_above", self.open_above)
        if self.open_above < self.close_below:
            raise ConfigError(
                f"open_above={self.open_above!r} is invalid: must be >= close_below="
                f"{self.close_below!r} (hysteresis band)"
            )
        check_choice("axes", self.axes, AXES)

    @property
    def half_window(self) -> int:
        return max(1, round(self.window_s * self.fps / 2.0))


def gripper_positions(kp: object) -> np.ndarray:
    """``(T, 21, 3)`` -> ``(T, 3)`` mean of thumb tip and index tip."""
    arr = check_keypoint_sequence(kp)
    return 0.5 * (arr[:, THUMB_TIP] + arr[:, INDEX_TIP])


def pinch_distances(kp: object) -> np.ndarray:
    """``(T, 21, 3)`` -> ``(T,)`` thumb-tip to index-tip distance."""
    arr = check_keypoint_sequence(kp)
    return np.linalg.norm(arr[:, THUMB_TIP] - arr[:, INDEX_TIP], axis=-1)


def direction_word(displacement: np.ndarray, axes: str = "camera") -> str:
    """Word for the dominant axis of one displacement vector (ties: lowest axis index)."""
    words = AXES[check_choice("axes", axes, AXES)]
    i = int(np.argmax(np.abs(displacement)))
    return words[2 * i + (0 if displacement[i] >= 0 else 1)]


def move_primitives(positions: object, config: MotionLabelConfig) -> list[str]:
    """Per-frame move primitive (``"stop"`` or a direction word) of a ``(T, 3)`` trajectory."""
    p = check_points(positions, "positions", min_frames=2)
    T, h = p.shape[0], config.half_window
    lo = np.clip(np.arange(T) - h, 0, T - 1)
    hi = np.clip(np.arange(T) + h, 0, T - 1)
    disp = p[hi] - p[lo]
    span = (hi - lo) / config.fps
    speed = np.linalg.norm(disp, axis=1) / span
    return [
        STOP if speed[t] < config.stop_speed else direction_word(disp[t], config.axes)
        for t in range(T)
    ]


def gripper_states(distances: object, config: MotionLabelConfig) -> list[str]:
    """Per-frame ``"open"``/``"closed"`` from pinch distances with hysteresis.

    The first frame is closed if its distance is below the middle of the hysteresis band.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not np.isfinite(d).all():
        raise InputError(f"distances must be a finite non-empty (T,) array, got shape {d.shape}")
    state = CLOSED if d[0] < 0.5 * (config.close_below + config.open_above) else OPEN
    out = []
    for x in d:
        if state == OPEN and x < config.close_below:
            state = CLOSED
        elif state == CLOSED and x > config.open_above:
            state = OPEN
        out.append(state)
    return out


@dataclass(frozen=True)
class SegmentLabels:
    """What a captioner gets for one segment of one hand."""

    handedness: str
    start: int
    end: int
    moves: tuple[str, ...]  #: per-frame move primitives in [start, end)
    gripper: tuple[str, ...]  #: per-frame gripper states in [start, end)

    def dominant_move(self) -> str:
        """Most frequent non-stop primitive if moving at least a third of the time, else stop."""
        moving = [m for m in self.moves if m != STOP]
        if not moving or 3 * len(moving) < len(self.moves):
            return STOP
        return Counter(moving).most_common(1)[0][0]

    def gripper_change(self) -> str | None:
        """``"close"``/``"open"`` if the state differs between the first and last frame."""
        if not self.gripper or self.gripper[0] == self.gripper[-1]:
            return None
        return "close" if self.gripper[-1] == CLOSED else "open"


class Captioner(Protocol):
    """Turns one segment's labels into an imperative instruction (a VLM can implement this)."""

    def caption(self, labels: SegmentLabels) -> str: ...


class TemplateCaptioner:
    """Offline captions such as ``"move the right hand forward and close it"``."""

    def caption(self, labels: SegmentLabels) -> str:
        hand = f"the {check_handedness(labels.handedness)} hand"
        move, grip = labels.dominant_move(), labels.gripper_change()
        if move == STOP:
            return f"{grip} {hand}" if grip else f"keep {hand} still"
        text = f"move {hand} {move}"
        return f"{text} and {grip} it" if grip else text


def label_segments(
    kp: object,
    segments: list[tuple[int, int]],
    handedness: str,
    config: MotionLabelConfig,
    captioner: Captioner | None = None,
) -> list[tuple[SegmentLabels, str]]:
    """Label and caption each ``[start, end)`` segment of a ``(T, 21, 3)`` keypoint sequence."""
    arr = check_keypoint_sequence(kp, min_frames=2)
    check_handedness(handedness)
    moves = move_primitives(gripper_positions(arr), config)
    grip = gripper_states(pinch_distances(arr), config)
    captioner = captioner or TemplateCaptioner()
    out = []
    for s, e in segments:
        if not 0 <= s < e <= arr.shape[0]:
            raise ConfigError(f"segment ({s}, {e}) is invalid: need 0 <= start < end <= {len(arr)}")
        labels = SegmentLabels(handedness, s, e, tuple(moves[s:e]), tuple(grip[s:e]))
        out.append((labels, captioner.caption(labels)))
    return out
