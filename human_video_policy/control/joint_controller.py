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
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from human_video_policy.drivers.base import DriverError, JointDriver, JointState
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


@dataclass(frozen=True)
class ControllerTick:
    """The outcome of one tick: ``state`` read (None when the read failed), ``decision`` of the
    layer and whether it was ``sent`` to the driver, ``error`` (the driver error text, or "")."""

    state: JointState | None
    decision: SafetyDecision | None
    sent: bool
    error: str = ""


class JointController:
    """Driver + safety layer, ticked by the caller at the layer's control rate."""

    def __init__(self, driver: JointDriver, layer: SafetyLayer) -> None:
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

    # -- life cycle (the control thread) ---------------------------------------------------
    def start(self) -> JointState:
        """Connect and enable the driver and seed the layer from the measured state."""
        if not self.driver.is_connected:
            self.driver.connect()
        self.driver.enable()
        state = self.driver.read_state()
        with self._lock:
            self.layer.reseed(self._positions(state))
        self.last_state = state
        self._started = True
        return state

    def stop(self) -> None:
        """Disable and close the driver (errors are counted, not raised: we are leaving)."""
        self._started = False
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
        try:
            state = self.driver.read_state()
        except DriverError as exc:
            self.counters.state_reads_failed += 1
            self._count_error(exc)
            with self._lock:
                self.layer.hold("driver error")
            return ControllerTick(None, None, False, str(exc))
        self.last_state = state
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
            self._count_error(exc)
            with self._lock:
                self.layer.discard_last()  # the robot did not get it: continue from the one before
                self.layer.hold("driver error")
            return ControllerTick(state, decision, False, str(exc))
        self.counters.commands_sent += 1
        return ControllerTick(state, decision, True)

    def _count_error(self, exc: DriverError) -> None:
        self.counters.driver_errors += 1
        self.last_driver_error = str(exc)
