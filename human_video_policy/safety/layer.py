"""The safety layer: turns the newest joint command into the one that may reach the driver.

Called once per control tick with the time, the measured joint positions and the command that
arrived since the last tick (if any), :meth:`SafetyLayer.step` returns the positions to send.
Every emitted command, whatever came in, is:

- inside the joint position limits;
- at most ``max_step`` (velocity bound) away from the previous command, and its step differs
  from the previous step by at most ``max_step_change`` (acceleration bound), so a long move is
  interpolated over many ticks (trapezoidal velocity profile) and even a stop is a ramp (while
  an e-stop brakes the bound is ``estop_step_change``, from ``estop_deceleration`` >= the
  acceleration bound);
- inside the workspace box (end-effector position by forward kinematics), together with the
  whole path the layer would need to stop from it, so the box holds even while braking.

Commands are refused (counted, never followed) when they contain NaN/inf or have the wrong
shape, when their stamp is older than ``max_command_age_s`` (or as far in the future), when
their target puts the end effector outside the box, and while the e-stop is latched. The layer
holds position (brakes to rest at the acceleration bound, then commands that position) when:
no fresh valid command arrived for ``watchdog_periods`` ticks, the e-stop is engaged (latched
until :meth:`SafetyLayer.reset_estop`, which is refused while the e-stop input is still
asserted), a target is refused for the workspace, or the caller asks (:meth:`SafetyLayer.hold`,
e.g. on a driver error). Motion resumes only with a command that arrives after the hold began.

Not thread-safe: one controller thread owns a layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.safety.config import SafetyConfig

# Clamps smaller than this (rad or m) are applied but not counted (float rounding of targets
# that sit exactly on a limit).
CLAMP_REPORT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class JointCommand:
    """A joint position target as it arrived.

    ``positions``: in ``SafetyConfig.limits.names`` order (rad, m); may hold anything (NaN,
    wrong length): the layer checks it. ``stamp_s``: the command's time stamp on the same
    clock as the ``now_s`` given to :meth:`SafetyLayer.step`.
    """

    positions: np.ndarray
    stamp_s: float


@dataclass(frozen=True)
class SafetyDecision:
    """What the layer lets through on one tick.

    ``positions``: the command to send to the driver (limits.names order), always safe to send.
    ``holding``: True when the layer is holding (braking to rest or at rest) instead of
    following a command; ``reason`` says why (e.g. ``"watchdog"``, ``"e-stop"``).
    """

    positions: np.ndarray
    holding: bool
    reason: str


@dataclass
class SafetyCounters:
    """Everything the layer refused, clamped or limited since it was built (for /diagnostics)."""

    ticks: int = 0
    commands_received: int = 0
    commands_accepted: int = 0
    refused_invalid: int = 0
    refused_nonfinite: int = 0
    refused_stale: int = 0
    refused_future: int = 0
    refused_workspace: int = 0
    refused_estop: int = 0
    position_clamps: int = 0
    velocity_limited_ticks: int = 0
    acceleration_limited_ticks: int = 0
    workspace_brakes: int = 0
    watchdog_trips: int = 0
    estop_engagements: int = 0
    estop_resets: int = 0
    estop_resets_refused: int = 0
    holds_requested: int = 0
    commands_discarded: int = 0
    invalid_states: int = 0
    clock_jumps_back: int = 0
    holding_ticks: int = 0


def stoppable_step(distance: np.ndarray, step_change: np.ndarray) -> np.ndarray:
    """Largest per-tick step from which a stop fits within ``distance`` (elementwise, >= 0).

    Stopping from step s takes the steps s, s - A, s - 2A, ... while positive (A =
    ``step_change``), covering S(s) = n s - A n (n - 1) / 2 with n = ceil(s / A). S is
    increasing and piecewise linear, so its inverse is exact: with n the smallest integer with
    A n (n + 1) / 2 >= d, s = (d / A + n (n - 1) / 2) A / n. Taking at most this step keeps a
    stop before ``distance`` possible on every later tick, one deceleration step at a time.
    """
    d = np.maximum(np.asarray(distance, dtype=np.float64), 0.0) / step_change
    n = np.maximum(np.ceil(np.sqrt(0.25 + 2.0 * d) - 0.5), 1.0)
    return (d + n * (n - 1.0) / 2.0) / n * step_change


class SafetyLayer:
    """Limits, watchdog, e-stop and workspace checks between a controller and a driver; see the
    module docstring."""

    def __init__(self, config: SafetyConfig) -> None:
        self.config = config
        self.counters = SafetyCounters()
        self._names = config.limits.names
        self._lower = np.asarray(config.limits.lower, dtype=np.float64)
        self._upper = np.asarray(config.limits.upper, dtype=np.float64)
        self._max_step = config.max_step
        self._max_change = config.max_step_change
        self._estop_change = config.estop_step_change
        self._watchdog_s = (config.watchdog_periods - 0.5) * config.period_s
        self._position: np.ndarray | None = None  # the last emitted command
        self._step = np.zeros(len(self._names))  # its difference to the one before
        self._before: tuple[np.ndarray, np.ndarray] | None = None  # for discard_last()
        self._goal: np.ndarray | None = None
        self._hold_reason = "no command yet"
        self._last_fresh_s = -math.inf
        self._last_now_s = -math.inf
        self._estop_input = False
        self._estop_latched = False
        self._hard_stop_checked = False
        self.estop_braking = False  # the last tick braked at estop_deceleration

    # -- state -------------------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def estop_latched(self) -> bool:
        return self._estop_latched

    @property
    def holding(self) -> bool:
        return self._goal is None

    @property
    def hold_reason(self) -> str:
        return "" if self._goal is not None else self._hold_reason

    @property
    def last_command(self) -> np.ndarray | None:
        """The last emitted command (copy), or None before the first tick."""
        return None if self._position is None else self._position.copy()

    # -- inputs besides commands -----------------------------------------------------------
    def hold(self, reason: str) -> None:
        """Stop following the current command (brake to rest and hold) until a new one."""
        if self._goal is not None:
            self.counters.holds_requested += 1
        self._enter_hold(reason)

    def set_estop_input(self, asserted: bool) -> None:
        """The e-stop input (e.g. /safety/estop). Asserting it latches the e-stop."""
        self._estop_input = bool(asserted)
        if self._estop_input and not self._estop_latched:
            self._estop_latched = True
            self.counters.estop_engagements += 1
            self._enter_hold("e-stop")

    def reset_estop(self) -> tuple[bool, str]:
        """Release a latched e-stop; refused while its input is still asserted.

        The layer keeps holding after a reset until a command arrives after it.
        """
        if not self._estop_latched:
            return True, "e-stop was not engaged"
        if self._estop_input:
            self.counters.estop_resets_refused += 1
            return False, "e-stop input is still asserted: release it before resetting"
        self._estop_latched = False
        self.counters.estop_resets += 1
        self._enter_hold("e-stop reset: waiting for a new command")
        return True, "e-stop reset: holding until a new command arrives"

    def discard_last(self) -> None:
        """Forget the last emitted command: it never reached the robot (a failed send).

        The next command then continues from the one before, so the robot never sees a step
        of two ticks. Call :meth:`hold` as well when the failure means the robot is in doubt.
        """
        if self._before is not None:
            self._position, self._step = self._before
            self._before = None
            self.counters.commands_discarded += 1

    def reseed(self, measured: np.ndarray) -> None:
        """Start again from measured positions at rest (after a driver reconnect or enable)."""
        self._position = None
        self._before = None
        self._step = np.zeros(len(self._names))
        self._enter_hold("reseeded from the measured state")
        self._initialise(measured)

    def _enter_hold(self, reason: str) -> None:
        self._goal = None
        self._hold_reason = reason
        self._last_fresh_s = -math.inf

    def _initialise(self, measured: np.ndarray) -> None:
        q = np.asarray(measured, dtype=np.float64)
        if q.shape != (len(self._names),) or not np.all(np.isfinite(q)):
            raise InputError(
                f"cannot start the safety layer from measured positions {q.tolist()}: need "
                f"{len(self._names)} finite values for {list(self._names)}"
            )
        self._position = np.clip(q, self._lower, self._upper)
        self._step = np.zeros(len(self._names))

    # -- the tick ----------------------------------------------------------------------------
    def step(
        self, now_s: float, measured: np.ndarray, command: JointCommand | None = None
    ) -> SafetyDecision:
        """One control tick: the command that may reach the driver now.

        ``measured``: measured positions (limits.names order); the first tick starts from
        them (clamped into the limits), later ticks only check them. ``command``: the command
        that arrived since the last tick, or None. Raises InputError only on the first tick,
        when the measured positions are not usable.
        """
        counters = self.counters
        counters.ticks += 1
        if self._position is None:
            self._initialise(measured)
        elif np.shape(measured) != (len(self._names),) or not np.all(np.isfinite(measured)):
            counters.invalid_states += 1
        if not now_s >= self._last_now_s:  # time went back (or is NaN): trust no age
            counters.clock_jumps_back += 1
            self._enter_hold("clock jumped back")
        self._last_now_s = now_s if math.isfinite(now_s) else self._last_now_s
        if command is not None:
            self._accept(now_s, command)
        if self._goal is not None and not now_s - self._last_fresh_s <= self._watchdog_s:
            counters.watchdog_trips += 1
            self._enter_hold("watchdog: no fresh command")
        self._advance()
        if self._goal is None:
            counters.holding_ticks += 1
        assert self._position is not None
        return SafetyDecision(self._position.copy(), self._goal is None, self.hold_reason)

    def _accept(self, now_s: float, command: JointCommand) -> None:
        counters = self.counters
        counters.commands_received += 1
        if self._estop_latched:
            counters.refused_estop += 1
            return
        try:
            target = np.asarray(command.positions, dtype=np.float64)
            stamp = float(command.stamp_s)
        except (TypeError, ValueError):
            counters.refused_invalid += 1
            return
        if target.shape != (len(self._names),) or not math.isfinite(stamp):
            counters.refused_invalid += 1
            return
        if not np.all(np.isfinite(target)):
            counters.refused_nonfinite += 1
            return
        max_age = self.config.max_command_age_s
        if max_age > 0:
            if now_s - stamp > max_age:
                counters.refused_stale += 1
                return
            if stamp - now_s > max_age:
                counters.refused_future += 1
                return
        clipped = np.clip(target, self._lower, self._upper)
        if np.any(np.abs(clipped - target) > CLAMP_REPORT_TOLERANCE):
            counters.position_clamps += 1
        if self.config.workspace is not None and not self._in_workspace(clipped[None, :]):
            counters.refused_workspace += 1
            self._enter_hold("workspace: target outside the box")
            return
        counters.commands_accepted += 1
        self._goal = clipped
        self._last_fresh_s = now_s

    def _advance(self) -> None:
        """Move the emitted command one tick toward the goal (or to rest), within the bounds."""
        position, step = self._position, self._step
        assert position is not None
        self._before = (position, step)
        change = self._max_change
        # An e-stop brakes at estop_deceleration; a stop begun that way ends that way (even if
        # the e-stop is reset meanwhile), since only its own path was checked against the box.
        hard_braking = self._estop_latched or (self._hard_stop_checked and bool(np.any(step)))
        if not hard_braking:
            self._hard_stop_checked = False
        elif self._hard_stop_allowed(position, step):
            change = self._estop_change
        self.estop_braking = change is self._estop_change
        brake = np.clip(0.0, step - change, step + change)
        if self._goal is None or hard_braking:
            wanted = np.zeros_like(step)
        else:
            error = self._goal - position
            reach = np.minimum(self._max_step, stoppable_step(np.abs(error), change))
            if np.any(np.abs(error) > self._max_step + CLAMP_REPORT_TOLERANCE):
                self.counters.velocity_limited_ticks += 1
            wanted = np.sign(error) * reach
        # Never head for a joint limit faster than a stop before it allows.
        wanted = np.clip(
            wanted,
            -stoppable_step(position - self._lower, change),
            stoppable_step(self._upper - position, change),
        )
        new_step = np.clip(wanted, step - change, step + change)
        if self._goal is not None and np.any(np.abs(new_step - wanted) > CLAMP_REPORT_TOLERANCE):
            self.counters.acceleration_limited_ticks += 1
        if (
            self.config.workspace is not None
            and np.any(new_step != brake)
            and not self._in_workspace(self._stopping_path(position + new_step, new_step))
        ):
            self.counters.workspace_brakes += 1
            new_step = brake  # its path was checked on the tick that produced (position, step)
        self._position = np.clip(position + new_step, self._lower, self._upper)
        self._step = self._position - position

    def _hard_stop_allowed(self, position: np.ndarray, step: np.ndarray) -> bool:
        """May the e-stop brake at ``estop_deceleration`` from here? Always without a box.

        With a box, the hard stop's path differs from the (checked) soft one: joints stop at
        other times relative to each other. It is taken once its whole path from here is in
        the box (then every later tick follows the rest of that same path); until then the
        layer brakes at ``max_acceleration``, whose path was checked on an earlier tick.
        """
        if self.config.workspace is None or self._hard_stop_checked:
            return True
        hard = np.clip(0.0, step - self._estop_change, step + self._estop_change)
        path = self._stopping_path(position + hard, hard, self._estop_change)
        self._hard_stop_checked = self._in_workspace(path)
        if not self._hard_stop_checked:
            self.counters.workspace_brakes += 1
        return self._hard_stop_checked

    def _stopping_path(
        self, position: np.ndarray, step: np.ndarray, change: np.ndarray | None = None
    ) -> np.ndarray:
        """(K + 1, n) commands from ``position`` while braking from ``step`` to rest (at
        ``change`` per tick, default the acceleration bound)."""
        change = self._max_change if change is None else change
        ticks = int(np.max(np.ceil(np.abs(step) / change))) if np.any(step) else 0
        k = np.arange(1, ticks + 1)[:, None]
        steps = np.sign(step) * np.maximum(np.abs(step) - k * change, 0.0)
        return np.vstack([position, position + np.cumsum(steps, axis=0)])

    def _in_workspace(self, positions: np.ndarray) -> bool:
        workspace, fk = self.config.workspace, self.config.ee_position
        assert workspace is not None and fk is not None
        for q in positions:
            try:
                inside = workspace.contains(fk(q))
            except (InputError, ValueError):
                inside = False
            if not inside:
                return False
        return True
