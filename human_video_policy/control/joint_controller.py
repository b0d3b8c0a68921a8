"""The controller core: one driver, one safety layer, one tick per control period.

:class:`JointController` owns a :class:`~human_video_policy.drivers.base.JointDriver` and a
:class:`~human_video_policy.safety.layer.SafetyLayer`. Each :meth:`JointController.tick` reads
the driver's state, asks the layer for the command that may be sent (given the newest command
that arrived since the last tick) and sends it. It publishes nothing: it returns what a node
publishes (the state, the command sent) and keeps counters for /diagnostics, so it runs the
same under rclpy, in a test or in a fuzzer.

A :class:`~human_video_policy.drivers.base.DriverError` on a tick is caught, counted and
reported (``last_driver_error``); the layer is told to hold, so when the driver answers again
the robot holds where it was commanded last instead of resuming an old command. Commands and
e-stop changes may come from another thread (ROS callbacks): they are handed over under a lock.

A state is used (and returned for publishing) only when every position is finite and within
the joint's limits widened by :data:`~human_video_policy.drivers.plausible.POSITION_MARGIN_RAD`
(the serial drivers check the same range as they decode), and velocities and efforts are
finite; anything else is a counted driver error, never a joint state.

Link loss: a :class:`~human_video_policy.drivers.base.DriverConnectionError`, or driver errors
on every tick for ``reconnect_after_s``, closes the driver and reconnects it in a background
thread (so ticks never wait for it) with exponential backoff from ``reconnect_delay_s`` to
``reconnect_max_delay_s``. After a reconnect the controller reads and reports states but sends
nothing and refuses commands until :meth:`JointController.request_enable` (the node's
``~/enable`` service): a robot whose controller rebooted must not move again on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from human_video_policy.drivers.base import (
    DriverConnectionError,
    DriverError,
    DriverProtocolError,
    JointDriver,
    JointState,
)
from human_video_policy.drivers.plausible import (
    check_plausible,
    range_arrays,
    widened_ranges,
)
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.safety.layer import (
    JointCommand,
    SafetyCounters,
    SafetyDecision,
    SafetyLayer,
)


@dataclass
class ControllerCounters:
    """Driver-side counts of a :class:`JointController` (the layer keeps its own)."""

    ticks: int = 0
    commands_sent: int = 0
    driver_errors: int = 0
    state_reads_failed: int = 0
    sends_failed: int = 0
    commands_replaced: int = 0
    implausible_states: int = 0
    link_losses: int = 0
    reconnect_attempts: int = 0
    reconnects: int = 0
    enables: int = 0
    commands_refused_disabled: int = 0


@dataclass(frozen=True)
class ControllerTick:
    """The outcome of one tick: ``state`` read (None when the read failed), ``decision`` of the
    layer and whether it was ``sent`` to the driver, ``error`` (the driver error text, or "")."""

    state: JointState | None
    decision: SafetyDecision | None
    sent: bool
    error: str = ""


# Link states of a JointController.
LINK_UP = "up"
LINK_RECONNECTING = "reconnecting"
LINK_AWAITING_ENABLE = "awaiting_enable"
LINK_ENABLING = "enabling"
# An enable request is honoured only within this time, and only for the reconnect it was made
# after: a request that could not be carried out never enables the robot later on its own.
ENABLE_REQUEST_TTL_S = 2.0


class JointController:
    """Driver + safety layer, ticked by the caller at the layer's control rate."""

    def __init__(
        self,
        driver: JointDriver,
        layer: SafetyLayer,
        reconnect_delay_s: float = 0.5,
        reconnect_max_delay_s: float = 5.0,
        reconnect_after_s: float = 1.0,
    ) -> None:
        if not 0 < reconnect_delay_s <= reconnect_max_delay_s:
            raise ConfigError(
                f"reconnect delays must satisfy 0 < reconnect_delay_s ({reconnect_delay_s}) <= "
                f"reconnect_max_delay_s ({reconnect_max_delay_s})"
            )
        if not reconnect_after_s > 0:
            raise ConfigError(f"reconnect_after_s={reconnect_after_s} is invalid: must be > 0")
        if tuple(driver.joint_names) != tuple(layer.joint_names):
            raise ConfigError(
                f"driver {driver.name} joints {list(driver.joint_names)} differ from the "
                f"safety limits' joints {list(layer.joint_names)} (same names, same order)"
            )
        self.driver = driver
        self.layer = layer
        self.counters = ControllerCounters()
        self.last_driver_error = ""
        self.last_state: JointState | None = None
        self._lock = threading.Lock()
        self._pending: JointCommand | None = None
        self._estop_input: bool | None = None
        self._reset_requested = False
        self._started = False
        self._plausible_low, self._plausible_high = range_arrays(
            self.joint_names, widened_ranges(layer.config.limits)
        )
        self.reconnect_delay_s = reconnect_delay_s
        self.reconnect_max_delay_s = reconnect_max_delay_s
        self.reconnect_after_s = reconnect_after_s
        self.link = LINK_UP
        self._failing_since: float | None = None
        # Reconnect and enable run in a background worker, so no tick waits for them.
        self._worker: threading.Thread | None = None
        self._worker_error: DriverError | None = None
        self._worker_state: JointState | None = None
        self._next_attempt_s = 0.0
        self._delay_s = reconnect_delay_s
        self._enable_generation: int | None = None  # the reconnect count a request is for
        self._enable_requested_at = 0.0

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.layer.joint_names

    @property
    def safety_counters(self) -> SafetyCounters:
        return self.layer.counters

    # -- inputs (any thread) ---------------------------------------------------------------
    def submit(self, positions: np.ndarray, stamp_s: float) -> None:
        """Hand over a command (joint_names order); the newest one is used on the next tick."""
        with self._lock:
            if self.link != LINK_UP:
                self.counters.commands_refused_disabled += 1
                return
            if self._pending is not None:
                self.counters.commands_replaced += 1
            self._pending = JointCommand(np.array(positions, dtype=np.float64), float(stamp_s))

    def set_estop(self, asserted: bool) -> None:
        """The e-stop input; applied at once (asserting it latches the layer's e-stop)."""
        with self._lock:
            self.layer.set_estop_input(asserted)

    def reset_estop(self) -> tuple[bool, str]:
        """Release a latched e-stop (refused while the input is still asserted)."""
        with self._lock:
            self._pending = None  # a command from before the reset never moves the robot
            return self.layer.reset_estop()

    def request_enable(self) -> tuple[bool, str]:
        """Ask for the driver to be enabled after a reconnect (any thread, never blocks).

        Accepted only while the link is ``awaiting_enable``; carried out by the next tick (in
        the background worker) within ENABLE_REQUEST_TTL_S, for this reconnect only. The
        outcome shows in :attr:`link` (``up`` when done) and :attr:`last_driver_error`.
        """
        with self._lock:
            if self.link == LINK_UP:
                return True, "driver is enabled"
            if self.link == LINK_ENABLING:
                return True, "driver is being enabled"
            if self.link != LINK_AWAITING_ENABLE:
                return False, f"driver is {self.link}: enable once it is connected"
            self._enable_generation = self.counters.reconnects
            self._enable_requested_at = time.monotonic()
        return True, "enable requested: carried out on the next control tick (watch link)"

    # -- life cycle (the control thread) ---------------------------------------------------
    def start(self) -> JointState:
        """Connect and enable the driver and seed the layer from the measured state."""
        if not self.driver.is_connected:
            self.driver.connect()
        self.driver.enable()
        state = self._checked(self.driver.read_state())
        with self._lock:
            self.layer.reseed(self._positions(state))
        self.last_state = state
        self._started = True
        return state

    def reseed(self) -> None:
        """The robot was moved by something else than this controller (a simulator's episode
        reset): drop the pending command and start the layer again from the measured state,
        holding until a new command arrives."""
        state = self._checked(self.driver.read_state())
        with self._lock:
            self._pending = None
            self.layer.reseed(self._positions(state))
        self.last_state = state

    def stop(self) -> None:
        """Disable and close the driver (errors are counted, not raised: we are leaving)."""
        self._started = False
        thread = self._worker
        if thread is not None:
            thread.join(timeout=5.0)  # connect() and enable() have their own timeouts
        try:
            if self.driver.is_connected:
                self.driver.disable()
        except DriverError as exc:
            self._count_error(exc)
        finally:
            self.driver.close()

    def _positions(self, state: JointState) -> np.ndarray:
        if tuple(state.names) == self.joint_names:
            return state.positions
        index = {n: i for i, n in enumerate(state.names)}
        missing = [n for n in self.joint_names if n not in index]
        if missing:
            raise InputError(f"driver {self.driver.name} state lacks joints {missing}")
        return state.positions[[index[n] for n in self.joint_names]]

    def tick(self, now_s: float) -> ControllerTick:
        """Read the state, run the safety layer, send its command; never raises DriverError."""
        if not self._started:
            raise InputError("JointController.tick() before start()")
        self.counters.ticks += 1
        if self.link == LINK_RECONNECTING:
            return self._tick_reconnecting()
        if self.link == LINK_ENABLING:
            return self._tick_enabling()
        try:
            state = self._checked(self.driver.read_state())
        except DriverError as exc:
            self.counters.state_reads_failed += 1
            return self._failed(exc)
        self.last_state = state
        if self.link == LINK_AWAITING_ENABLE:
            return self._tick_awaiting_enable(state)
        with self._lock:
            command, self._pending = self._pending, None
            try:
                decision = self.layer.step(now_s, self._positions(state), command)
            except InputError as exc:  # first tick with an unusable state: send nothing
                return ControllerTick(state, None, False, str(exc))
        try:
            self.driver.send_positions(decision.positions)
        except DriverError as exc:
            self.counters.sends_failed += 1
            with self._lock:
                self.layer.discard_last()  # the robot did not get it: continue from the one before
            return self._failed(exc, state, decision)
        self._failing_since = None
        self.counters.commands_sent += 1
        return ControllerTick(state, decision, True)

    def _checked(self, state: JointState) -> JointState:
        """``state`` if its values are finite and plausible, else DriverProtocolError."""
        try:
            check_plausible(
                self.driver.name,
                self.joint_names,
                self._positions(state),
                self._plausible_low,
                self._plausible_high,
            )
            for name in ("velocities", "efforts"):
                values = getattr(state, name)
                if values is not None and not np.all(np.isfinite(values)):
                    raise DriverProtocolError(f"{self.driver.name}: {name} in the state not finite")
        except DriverProtocolError:
            self.counters.implausible_states += 1
            raise
        return state

    def _failed(
        self,
        exc: DriverError,
        state: JointState | None = None,
        decision: SafetyDecision | None = None,
    ) -> ControllerTick:
        """Count a driver error, hold, and start a reconnect when the link looks lost."""
        self._count_error(exc)
        with self._lock:
            self.layer.hold("driver error")
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        lost = isinstance(exc, DriverConnectionError) or not self.driver.is_connected
        if lost or now - self._failing_since >= self.reconnect_after_s:
            self.counters.link_losses += 1
            with self._lock:
                self.link = LINK_RECONNECTING
                self._pending = None
                self._enable_generation = None  # a pending enable was for the lost link
            self._delay_s = self.reconnect_delay_s
            self._next_attempt_s = now  # first attempt at once
        return ControllerTick(state, decision, False, str(exc))

    def _start_worker(self, target: Callable[[], None]) -> None:
        self._worker_error = None
        self._worker_state = None

        def run() -> None:
            try:
                target()
            except DriverError as exc:
                self._worker_error = exc
            except Exception as exc:  # a driver bug must not vanish with the thread
                self._worker_error = DriverError(f"{type(exc).__name__}: {exc}")

        self._worker = threading.Thread(target=run, name="driver-link", daemon=True)
        self._worker.start()

    def _tick_reconnecting(self) -> ControllerTick:
        thread = self._worker
        now = time.monotonic()
        if thread is not None and thread.is_alive():
            return ControllerTick(None, None, False, "connection lost: reconnecting")
        if thread is not None:  # an attempt finished
            self._worker = None
            if self._worker_error is None:
                self.counters.reconnects += 1
                with self._lock:
                    self.link = LINK_AWAITING_ENABLE
                self._failing_since = None
                return ControllerTick(
                    None, None, False, "reconnected: holding until ~/enable is called"
                )
            self._count_error(self._worker_error)
            self._next_attempt_s = now + self._delay_s
            self._delay_s = min(2.0 * self._delay_s, self.reconnect_max_delay_s)
        if now >= self._next_attempt_s:
            self.counters.reconnect_attempts += 1
            self._start_worker(self._reconnect)
        wait = max(0.0, self._next_attempt_s - now)
        return ControllerTick(
            None,
            None,
            False,
            f"connection lost: {self.last_driver_error} (next try in {wait:.1f} s)",
        )

    def _reconnect(self) -> None:
        """One reconnect attempt (worker thread; ticks do not touch the driver meanwhile)."""
        self.driver.close()
        self.driver.connect()

    def _enable(self) -> None:
        """Enable and read the state to start from (worker thread)."""
        self.driver.enable()
        self._worker_state = self._checked(self.driver.read_state())

    def _tick_awaiting_enable(self, state: JointState) -> ControllerTick:
        self._failing_since = None  # the read worked
        with self._lock:
            self._pending = None
            requested = (
                self._enable_generation == self.counters.reconnects
                and time.monotonic() - self._enable_requested_at <= ENABLE_REQUEST_TTL_S
            )
            self._enable_generation = None if requested else self._enable_generation
            if requested:
                self.link = LINK_ENABLING
        if not requested:
            return ControllerTick(
                state, None, False, "reconnected: holding until ~/enable is called"
            )
        self._start_worker(self._enable)
        return ControllerTick(state, None, False, "enabling the driver")

    def _tick_enabling(self) -> ControllerTick:
        thread = self._worker
        if thread is not None and thread.is_alive():
            return ControllerTick(None, None, False, "enabling the driver")
        self._worker = None
        error, state = self._worker_error, self._worker_state
        if error is None and state is not None:
            try:
                with self._lock:
                    self.layer.reseed(self._positions(state))
                    self.link = LINK_UP
            except InputError as exc:
                error = DriverProtocolError(f"{self.driver.name}: enable: {exc}")
        if error is not None:
            with self._lock:
                self.link = LINK_AWAITING_ENABLE
            return self._failed(error)
        self.counters.enables += 1
        self.last_state = state
        return ControllerTick(state, None, False)

    def _count_error(self, exc: DriverError) -> None:
        self.counters.driver_errors += 1
        self.last_driver_error = str(exc)
