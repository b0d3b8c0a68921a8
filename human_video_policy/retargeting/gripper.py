"""Human pinch -> WidowX 250s gripper opening (RAD's thumb-index distance).

RAD labels "close gripper"/"open gripper" from the thumb-tip to index-tip distance of the
tracked hand. This maps that distance to the command of the WidowX ``left_finger`` joint
(metres, GRIPPER_CLOSED .. GRIPPER_OPEN, the limits of robots/widowx.py):

- ``"binary"``: open or closed with hysteresis, as hands/primitives.py labels it: closes when
  the distance drops below ``close_below`` and reopens only above ``open_above``, so tracker
  noise around one threshold cannot make the gripper chatter.
- ``"proportional"``: linear from ``close_below`` (closed) to ``open_above`` (open), clamped;
  monotone non-decreasing in the distance, no state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.keypoints import INDEX_TIP, THUMB_TIP, check_keypoints
from human_video_policy.hands.primitives import pinch_distances
from human_video_policy.robots.widowx import widowx_joint_limits
from human_video_policy.validation import check_choice, check_positive

GRIPPER_MODES = ("binary", "proportional")


@dataclass(frozen=True)
class GripperMappingConfig:
    """Fields:
    mode: ``"binary"`` (open/closed with hysteresis) or ``"proportional"`` (linear, clamped).
    close_below: pinch distance (m) under which the gripper closes (RAD/primitives: 0.03).
    open_above: pinch distance (m) above which it opens (0.05); must be > close_below.
    """

    mode: str = "binary"
    close_below: float = 0.03
    open_above: float = 0.05

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, GRIPPER_MODES)
        check_positive("close_below", self.close_below)
        check_positive("open_above", self.open_above)
        if self.open_above <= self.close_below:
            raise ConfigError(
                f"open_above={self.open_above!r} is invalid: must be > close_below="
                f"{self.close_below!r}"
            )


class GripperMapping:
    """Stateful pinch-distance -> ``left_finger`` command (m) mapping; :meth:`reset` between
    episodes. The output always lies in the WidowX gripper joint's URDF limits."""

    def __init__(self, config: GripperMappingConfig | None = None) -> None:
        self.config = config or GripperMappingConfig()
        limits = widowx_joint_limits()
        k = limits.names.index("left_finger")
        self.closed = float(limits.lower[k])
        self.opened = float(limits.upper[k])
        self._is_closed: bool | None = None

    def reset(self) -> None:
        self._is_closed = None

    @property
    def is_closed(self) -> bool | None:
        """Binary mode state (None before the first distance)."""
        return self._is_closed

    def __call__(self, distance_m: float) -> float:
        """One pinch distance (m) -> gripper opening (m)."""
        try:
            d = float(distance_m)
        except (TypeError, ValueError):
            raise InputError(f"pinch distance must be a number, got {distance_m!r}") from None
        if not math.isfinite(d) or d < 0.0:
            raise InputError(f"pinch distance must be finite and >= 0 m, got {d}")
        c = self.config
        if c.mode == "proportional":
            u = (d - c.close_below) / (c.open_above - c.close_below)
            return self.closed + min(max(u, 0.0), 1.0) * (self.opened - self.closed)
        if self._is_closed is None:
            self._is_closed = d < 0.5 * (c.close_below + c.open_above)
        elif not self._is_closed and d < c.close_below:
            self._is_closed = True
        elif self._is_closed and d > c.open_above:
            self._is_closed = False
        return self.closed if self._is_closed else self.opened

    def opening_from_keypoints(self, keypoints: object) -> float:
        """One frame of ``(21, 3)`` keypoints (m) -> opening (m), keeping the hysteresis state
        (for live use)."""
        kp = check_keypoints(keypoints)
        return self(float(np.linalg.norm(kp[THUMB_TIP] - kp[INDEX_TIP])))

    def map_sequence(self, distances_m: object) -> np.ndarray:
        """``(T,)`` distances -> ``(T,)`` openings, starting from a reset state."""
        d = np.asarray(distances_m, dtype=np.float64)
        if d.ndim != 1 or d.size == 0:
            raise InputError(f"distances must be a non-empty (T,) array, got shape {d.shape}")
        self.reset()
        return np.array([self(x) for x in d])

    def map_keypoints(self, keypoints: object) -> np.ndarray:
        """``(T, 21, 3)`` keypoints (m) -> ``(T,)`` openings from the thumb-index distance."""
        return self.map_sequence(pinch_distances(keypoints))
