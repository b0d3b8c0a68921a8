"""Settings of the safety layer, checked once at start-up.

A wrong safety setting (NaN acceleration, a workspace box with min > max, a watchdog of zero
periods) must stop the controller before it moves anything, with a message naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from human_video_policy.errors import ConfigError
from human_video_policy.robots.joint_limits import JointLimits
from human_video_policy.validation import (
    check_int_range,
    check_non_negative,
    check_positive,
    check_range,
)

EndEffectorPosition = Callable[[np.ndarray], np.ndarray]
"""``fk(q) -> (3,)``: end-effector position (m, base frame) for joint positions ``q`` given in
the order of ``SafetyConfig.limits.names``."""


def _vector3(name: str, value: Sequence[float]) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={value!r} is invalid: must be 3 numbers (m)") from exc
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name}={value!r} is invalid: must be 3 finite numbers (x, y, z in m)")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class WorkspaceBox:
    """An axis-aligned box in the robot's base frame that the end effector must stay inside.

    Attributes:
        minimum: (x, y, z) lower corner, metres, base frame (REP-103: x forward, y left, z up).
        maximum: (x, y, z) upper corner, metres; every component must be > the minimum's.
    """

    minimum: Sequence[float]
    maximum: Sequence[float]

    def __post_init__(self) -> None:
        low = _vector3("WorkspaceBox.minimum", self.minimum)
        high = _vector3("WorkspaceBox.maximum", self.maximum)
        if not np.all(high > low):
            raise ConfigError(
                f"WorkspaceBox.maximum={high.tolist()} must be > minimum={low.tolist()} "
                "in every axis"
            )
        object.__setattr__(self, "minimum", low)
        object.__setattr__(self, "maximum", high)

    def contains(self, point: np.ndarray) -> bool:
        """True when ``point`` (3,) lies inside the box (boundary included); False for NaN."""
        p = np.asarray(point, dtype=np.float64)
        return bool(np.all((p >= self.minimum) & (p <= self.maximum)))


@dataclass(eq=False)
class SafetyConfig:
    """Settings of :class:`~human_video_policy.safety.layer.SafetyLayer`.

    Attributes:
        limits: joint names (the command order), position bounds and URDF velocity limits
            (rad, rad/s; m, m/s for prismatic joints). No command outside [lower, upper] is
            ever emitted; targets outside are clamped into it and counted.
        control_rate_hz: rate of :meth:`SafetyLayer.step` calls (Hz). Sets the control period
            dt, hence the per-tick step bounds and the watchdog time.
        velocity_scale: fraction (0, 1] of ``limits.max_velocity`` a command may use: the
            command moves at most ``velocity_scale * max_velocity * dt`` per tick.
        max_acceleration: acceleration bound (rad/s^2, m/s^2), one value for every joint or
            one per joint in ``limits.names`` order: consecutive per-tick steps differ by at
            most ``max_acceleration * dt^2``. It also sets how fast the layer stops (a hold
            brakes at this rate, so the stopping distance from speed v is about v^2 / 2a):
            pick it high enough for the robot to stop in time, low enough for the hardware.
            Long moves are interpolated over several ticks by these two bounds (a trapezoidal
            velocity profile that brakes to arrive at the target), never sent as a jump.
        estop_deceleration: how hard an e-stop brakes (rad/s^2, m/s^2), one value or one per
            joint; None = ``max_acceleration``. At least ``max_acceleration`` (a stop is never
            softer than normal motion): the e-stop stopping distance from speed v is about
            v^2 / (2 estop_deceleration), plus the servo's lag. Watchdog and other holds brake
            at ``max_acceleration``. docs/safety.md has the measured distances per robot.
        watchdog_periods: hold position when no fresh valid command arrived for this many
            control periods (N >= 1). Above the command publisher's period, e.g. 5 at 100 Hz
            for a 50 Hz executor (50 ms).
        max_command_age_s: refuse a command whose stamp is older than this when it arrives,
            or more than this in the future (clock skew), seconds; 0 disables the check.
        workspace: box the end effector must stay inside (base frame), or None for no box.
            A target whose end effector lies outside is refused (the layer holds), and no
            intermediate command whose end effector, or whose stopping path, would leave the
            box is emitted (the layer brakes instead).
        ee_position: forward kinematics for the workspace check (see
            :data:`EndEffectorPosition`); required with ``workspace``, unused without it.
    """

    limits: JointLimits
    control_rate_hz: float = 100.0
    velocity_scale: float = 0.5
    max_acceleration: float | Sequence[float] = 10.0
    estop_deceleration: float | Sequence[float] | None = None
    watchdog_periods: int = 5
    max_command_age_s: float = 0.5
    workspace: WorkspaceBox | None = None
    ee_position: EndEffectorPosition | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.limits, JointLimits):
            raise ConfigError(f"limits={self.limits!r} is invalid: must be a JointLimits")
        check_range("control_rate_hz", self.control_rate_hz, 1.0, 10000.0)
        check_range("velocity_scale", self.velocity_scale, 1e-6, 1.0)
        self._acceleration = self._per_joint("max_acceleration", self.max_acceleration)
        if self.estop_deceleration is None:
            self._estop_deceleration = self._acceleration
        else:
            self._estop_deceleration = self._per_joint(
                "estop_deceleration", self.estop_deceleration
            )
            softer = [
                name
                for name, d, a in zip(
                    self.limits.names, self._estop_deceleration, self._acceleration, strict=True
                )
                if d < a
            ]
            if softer:
                raise ConfigError(
                    f"estop_deceleration={self.estop_deceleration!r} is invalid: must be >= "
                    f"max_acceleration for every joint (an e-stop never brakes softer than "
                    f"normal motion); lower for {softer}"
                )
        check_int_range("watchdog_periods", self.watchdog_periods, 1, 100000)
        check_non_negative("max_command_age_s", self.max_command_age_s)
        if self.workspace is not None:
            if not isinstance(self.workspace, WorkspaceBox):
                raise ConfigError(
                    f"workspace={self.workspace!r} is invalid: must be a WorkspaceBox"
                )
            if not callable(self.ee_position):
                raise ConfigError(
                    f"ee_position={self.ee_position!r} is invalid: a workspace box needs a "
                    "forward-kinematics callable q -> (3,) end-effector position"
                )

    def _per_joint(self, name: str, value: object) -> np.ndarray:
        """One number > 0, or one per joint, as a read-only per-joint vector."""
        n = len(self.limits)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            check_positive(name, value)
            vector = np.full(n, float(value))
        else:
            try:
                vector = np.array(value, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{name}={value!r} is invalid: {exc}") from exc
            if vector.shape != (n,) or not np.all(np.isfinite(vector)) or np.any(vector <= 0):
                raise ConfigError(
                    f"{name}={value!r} is invalid: must be one number > 0 or {n} "
                    f"finite numbers > 0 for {list(self.limits.names)}"
                )
        vector.setflags(write=False)
        return vector

    @property
    def period_s(self) -> float:
        """Control period dt (s)."""
        return 1.0 / self.control_rate_hz

    @property
    def acceleration(self) -> np.ndarray:
        """Per-joint acceleration bound (read-only array, limits.names order)."""
        return self._acceleration

    @property
    def max_step(self) -> np.ndarray:
        """Per-joint bound on one tick's step: velocity_scale * max_velocity * dt."""
        return self.limits.max_velocity * self.velocity_scale * self.period_s

    @property
    def max_step_change(self) -> np.ndarray:
        """Per-joint bound on the change between consecutive steps: max_acceleration * dt^2."""
        return self._acceleration * self.period_s**2

    @property
    def estop_step_change(self) -> np.ndarray:
        """Per-joint bound on the step change while an e-stop brakes: estop_deceleration * dt^2."""
        return self._estop_deceleration * self.period_s**2
