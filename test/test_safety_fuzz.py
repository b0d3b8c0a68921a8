"""Fuzzing the controller core: JointController + SafetyLayer + the MuJoCo sim driver.

Random, NaN, inf, out-of-range, huge-step, stale, future, wrongly shaped and out-of-workspace
commands, gaps, e-stop presses and resets and injected driver faults, tick after tick (fixed
numpy seeds). A recording driver, itself a real JointDriver wrapping the MuJoCo sim driver,
keeps every command that reached "the robot"; the checks run on that record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from human_video_policy.control import JointController
from human_video_policy.drivers.base import (
    DriverTimeoutError,
    DriverWrapper,
    JointDriver,
    JointState,
)
from human_video_policy.drivers.sim import MujocoDriverConfig, MujocoJointDriver
from human_video_policy.kinematics.robots import robot_forward_kinematics
from human_video_policy.robots.joint_limits import JointLimits
from human_video_policy.robots.widowx import (
    EE_FRAME,
    HOME_POSITION,
    WIDOWX_COMMAND_JOINTS,
    widowx_joint_limits,
)
from human_video_policy.robots.xhand import (
    SIM_JOINT_DYNAMICS,
    SIM_SERVO_KP,
    XHAND_JOINTS,
    xhand_joint_limits,
    xhand_urdf_path,
)
from human_video_policy.safety import SafetyConfig, SafetyLayer, WorkspaceBox

RATE_HZ = 100.0
DT = 1.0 / RATE_HZ
WATCHDOG_PERIODS = 2


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingDriver(DriverWrapper):
    """A JointDriver that forwards to another one and records every command it sends.

    ``fail_next_read`` / ``fail_next_send`` make the next call raise DriverTimeoutError, as a
    robot that stops answering would.
    """

    def __init__(self, inner: JointDriver) -> None:
        super().__init__(inner)
        self.sent: list[np.ndarray] = []
        self.fail_next_read = False
        self.fail_next_send = False

    @property
    def name(self) -> str:
        return f"recording({self.inner.name})"

    def read_state(self) -> JointState:
        if self.fail_next_read:
            self.fail_next_read = False
            raise DriverTimeoutError(f"{self.name}: no state reply within 10 ms")
        return self.inner.read_state()

    def send_positions(self, positions: np.ndarray) -> None:
        if self.fail_next_send:
            self.fail_next_send = False
            raise DriverTimeoutError(f"{self.name}: no acknowledgement within 10 ms")
        self.inner.send_positions(positions)
        self.sent.append(np.array(positions, dtype=np.float64))


@dataclass
class Scenario:
    name: str
    limits: JointLimits
    home: np.ndarray
    driver_config: MujocoDriverConfig
    ticks: int
    seed: int
    acceleration: float | tuple[float, ...] = 10.0
    workspace: WorkspaceBox | None = None
    ee_position: object = None


def _widowx_ee():
    fk = robot_forward_kinematics("widowx")
    return lambda q: fk.frame_position(q, EE_FRAME)


def _scenarios() -> list[Scenario]:
    widowx = widowx_joint_limits()
    home = np.array(HOME_POSITION)
    xhand = xhand_joint_limits()
    xhand_home = (np.asarray(xhand.lower) + np.asarray(xhand.upper)) / 2
    return [
        Scenario(
            "widowx_workspace",
            widowx,
            home,
            MujocoDriverConfig(),
            ticks=6000,
            seed=1,
            # x_max just beyond the home pose's 0.199 m: waist swings bulge out of it
            workspace=WorkspaceBox((0.0, -0.3, 0.06), (0.21, 0.3, 0.32)),
            ee_position=_widowx_ee(),
        ),
        Scenario(
            "widowx_free",
            widowx,
            home,
            MujocoDriverConfig(),
            ticks=4000,
            seed=2,
            acceleration=(4.0, 6.0, 8.0, 20.0, 20.0, 30.0, 2.0),
        ),
        Scenario(
            "xhand",
            xhand,
            xhand_home,
            MujocoDriverConfig(
                model_path=str(xhand_urdf_path()),
                joint_names=XHAND_JOINTS,
                initial_positions=tuple(xhand_home),
                added_actuator_kp=SIM_SERVO_KP,
                joint_dynamics=SIM_JOINT_DYNAMICS,
                gravity_compensation=True,
                contacts=False,
            ),
            ticks=2500,
            seed=3,
            acceleration=30.0,
        ),
    ]


class CommandFuzzer:
    """Fuzz cases, one per tick: mostly a stream toward a goal that changes now and then (so
    long moves happen), interrupted by huge steps, out-of-range, NaN, inf, stale, future and
    wrongly shaped commands, each a new command with its own values."""

    def __init__(self, rng: np.random.Generator, scenario: Scenario) -> None:
        self.rng = rng
        self.scenario = scenario
        self.lower = np.asarray(scenario.limits.lower)
        self.upper = np.asarray(scenario.limits.upper)
        self.goal = np.array(scenario.home)
        self.side = 1.0

    def _new_goal(self, current: np.ndarray) -> None:
        rng, n = self.rng, len(self.lower)
        r = rng.random()
        if self.scenario.workspace is not None and r < 0.4:
            # swing the waist across: the gripper's arc bulges out of the box on the way
            self.side = -self.side  # alternate sides, so most swings cross the middle
            self.goal = current.copy()
            self.goal[0] = self.side * rng.uniform(0.3, 1.0)
            self.goal[1] = rng.uniform(-0.2, 0.5)
        elif r < 0.7:
            self.goal = np.clip(current + rng.normal(0.0, 0.4, n), self.lower, self.upper)
        else:
            self.goal = rng.uniform(self.lower, self.upper)

    def case(self, current: np.ndarray, now: float):
        """(positions, stamp, kind) of this tick's case, or None for a tick without one."""
        rng, lower, upper = self.rng, self.lower, self.upper
        n = len(lower)
        if rng.random() < 0.02:
            self._new_goal(current)
        r = rng.random()
        stamp = now - rng.uniform(0.0, 0.05)
        if r < 0.10:
            return None
        if r < 0.55:  # the stream toward the goal, with a little noise
            return self.goal + rng.normal(0.0, 1e-3, n), stamp, "stream"
        if r < 0.63:  # anywhere within the limits: huge steps
            return rng.uniform(lower, upper), stamp, "huge"
        if r < 0.71:  # out of range, up to 10 rad (m) beyond
            return rng.uniform(lower - 10.0, upper + 10.0), stamp, "out_of_range"
        if r < 0.77:
            q = self.goal.copy()
            q[rng.integers(n)] = np.nan
            return q, stamp, "nan"
        if r < 0.83:
            q = self.goal.copy()
            q[rng.integers(n)] = rng.choice([np.inf, -np.inf])
            return q, stamp, "inf"
        if r < 0.90:
            return rng.uniform(lower, upper), now - rng.uniform(0.21, 100.0), "stale"
        if r < 0.94:
            return rng.uniform(lower, upper), now + rng.uniform(0.21, 100.0), "future"
        return rng.uniform(-1.0, 1.0, n + rng.choice([-1, 1])), stamp, "shape"


def _check_record(
    layer: SafetyLayer, sent: np.ndarray, scenario: Scenario, estop_braking: np.ndarray
) -> None:
    """``estop_braking[k]``: the e-stop was latched when ``sent[k]`` was computed (its step
    change may use the e-stop deceleration instead of the acceleration bound)."""
    config = layer.config
    lower, upper = np.asarray(config.limits.lower), np.asarray(config.limits.upper)
    assert np.all(np.isfinite(sent))
    assert np.all((sent >= lower) & (sent <= upper)), "a command outside the position limits"
    steps = np.diff(sent, axis=0)
    assert np.all(np.abs(steps) <= config.max_step + 1e-12), "a step above the velocity bound"
    changes = np.abs(np.diff(steps, axis=0))
    bound = np.where(estop_braking[2:, None], config.estop_step_change, config.max_step_change)
    assert np.all(changes <= bound + 1e-12), "a step above the accel bound"
    assert np.any(estop_braking), "no e-stop braking was fuzzed"
    if scenario.workspace is not None:
        fk = scenario.ee_position
        outside = [k for k, q in enumerate(sent) if not scenario.workspace.contains(fk(q))]
        assert outside == [], f"workspace violated at sent commands {outside[:10]}"


@pytest.mark.parametrize("scenario", _scenarios(), ids=lambda s: s.name)
def test_fuzzed_commands_never_reach_the_driver_unsafely(scenario: Scenario) -> None:
    rng = np.random.default_rng(scenario.seed)
    clock = ManualClock()
    driver = RecordingDriver(MujocoJointDriver(scenario.driver_config, clock=clock))
    layer = SafetyLayer(
        SafetyConfig(
            limits=scenario.limits,
            control_rate_hz=RATE_HZ,
            velocity_scale=1.0,
            max_acceleration=scenario.acceleration,
            estop_deceleration=4.0 * np.asarray(scenario.acceleration),
            watchdog_periods=WATCHDOG_PERIODS,
            max_command_age_s=0.2,
            workspace=scenario.workspace,
            ee_position=scenario.ee_position,
        )
    )
    controller = JointController(driver, layer)
    controller.start()
    counters = layer.counters
    estop_pressed = False
    estop_since: int | None = None
    last_fresh_tick = -(10**9)
    previous_step = np.zeros(len(scenario.limits))
    kinds: dict[str, int] = {}
    gap = 0
    fault_ticks = 0
    fuzzer = CommandFuzzer(rng, scenario)
    estop_braking: list[bool] = []
    for tick in range(scenario.ticks):
        clock.now = (tick + 1) * DT
        now = clock.now
        current = layer.last_command
        assert current is not None
        # e-stop presses, releases and reset attempts
        event = rng.random()
        if event < (0.05 if estop_pressed else 0.002):
            estop_pressed = not estop_pressed
            controller.set_estop(estop_pressed)
            if estop_pressed and estop_since is None:
                estop_since = tick
        elif event < 0.08 and estop_since is not None:
            ok, message = controller.reset_estop()
            assert ok is (not estop_pressed), message
            if ok:
                estop_since = None
        elif 0.08 < event < 0.083:
            driver.fail_next_read = True
            fault_ticks += 1
        elif 0.083 < event < 0.085:
            driver.fail_next_send = True
            fault_ticks += 1
        elif 0.085 < event < 0.09:
            gap = int(rng.integers(1, 8))  # a pause of the command stream
        command = None
        if gap > 0:
            gap -= 1
        else:
            command = fuzzer.case(current, now)
        accepted_before = counters.commands_accepted
        received_before = counters.commands_received
        nonfinite_before = counters.refused_nonfinite
        latched_before = layer.estop_latched
        if command is not None:
            positions, stamp, kind = command
            kinds[kind] = kinds.get(kind, 0) + 1
            controller.submit(positions, stamp)
        sent_before = len(driver.sent)
        result = controller.tick(now)
        accepted = counters.commands_accepted > accepted_before
        if command is not None and kind in ("nan", "inf", "stale", "future", "shape"):
            assert not accepted, f"a {kind} command was accepted"
            reached = counters.commands_received > received_before
            if kind in ("nan", "inf") and reached and not latched_before:
                assert counters.refused_nonfinite == nonfinite_before + 1
        if accepted:
            last_fresh_tick = tick
            assert estop_since is None, "a command was accepted while the e-stop was latched"
            if scenario.workspace is not None:  # its target must be inside the box
                target = np.clip(positions, scenario.limits.lower, scenario.limits.upper)
                assert scenario.workspace.contains(scenario.ee_position(target))
        decision = result.decision
        if decision is None:  # the driver failed this tick: nothing was sent
            assert result.error and len(driver.sent) == sent_before
            continue
        if result.sent:
            estop_braking.append(layer.estop_braking)
            step = driver.sent[-1] - (driver.sent[-2] if len(driver.sent) > 1 else current)
        if tick - last_fresh_tick >= WATCHDOG_PERIODS:
            assert decision.holding, f"tick {tick}: no hold {tick - last_fresh_tick} ticks after"
        if estop_since is not None:
            assert decision.holding and layer.estop_latched
        if decision.holding and result.sent:
            # holding = braking to rest: each step no larger, never reversed
            assert np.all(np.abs(step) <= np.abs(previous_step) + 1e-15)
            assert np.all(step * previous_step >= 0.0)
        if result.sent:
            previous_step = step
    sent = np.array(driver.sent)
    _check_record(layer, sent, scenario, np.array(estop_braking))
    print(f"{scenario.name}: {scenario.ticks} ticks, {sum(kinds.values())} commands {kinds}")
    print(f"{scenario.name}: {counters}")
    controller.stop()
    assert not driver.is_connected
    # The fuzz really covered every kind of case and every path.
    assert sum(kinds.values()) >= 0.8 * scenario.ticks
    for kind in ("stream", "huge", "out_of_range", "nan", "inf", "stale", "future", "shape"):
        assert kinds.get(kind, 0) > 20, kinds
    assert counters.refused_nonfinite > 0 and counters.refused_stale > 0
    assert counters.refused_future > 0 and counters.refused_invalid > 0
    assert counters.commands_accepted > 0.2 * scenario.ticks, counters
    assert counters.position_clamps > 0 and counters.velocity_limited_ticks > 0
    assert counters.acceleration_limited_ticks > 0 and counters.watchdog_trips > 0
    assert counters.estop_engagements > 0 and counters.estop_resets > 0
    assert controller.counters.driver_errors == fault_ticks > 0
    if scenario.workspace is not None:
        assert counters.refused_workspace > 0 and counters.workspace_brakes > 0
    assert len(sent) >= scenario.ticks - fault_ticks


def test_the_fuzz_adds_up_to_at_least_ten_thousand_cases() -> None:
    # each scenario submits a command on >= 80 % of its ticks (asserted above)
    assert 0.8 * sum(s.ticks for s in _scenarios()) >= 10_000


def test_driver_errors_hold_and_are_reported() -> None:
    clock = ManualClock()
    driver = RecordingDriver(MujocoJointDriver(MujocoDriverConfig(), clock=clock))
    layer = SafetyLayer(SafetyConfig(widowx_joint_limits(), control_rate_hz=RATE_HZ))
    controller = JointController(driver, layer)
    controller.start()
    target = np.array(HOME_POSITION)
    target[0] = 1.0
    for tick in range(20):
        clock.now = (tick + 1) * DT
        controller.submit(target, clock.now)
        controller.tick(clock.now)
    assert not layer.holding
    driver.fail_next_send = True
    clock.now += DT
    controller.submit(target, clock.now)
    result = controller.tick(clock.now)
    assert not result.sent and "acknowledgement" in result.error
    assert controller.counters.driver_errors == 1
    assert "acknowledgement" in controller.last_driver_error
    assert layer.holding and layer.hold_reason == "driver error"
    for _ in range(40):  # the driver answers again: the controller brakes and holds
        clock.now += DT
        result = controller.tick(clock.now)
        assert result.sent and result.decision.holding
    assert np.all(driver.sent[-1] == driver.sent[-2])
    assert driver.sent[-1][0] < 1.0
    controller.stop()


def test_controller_refuses_a_driver_with_other_joints() -> None:
    from human_video_policy.errors import ConfigError

    driver = MujocoJointDriver(
        MujocoDriverConfig(joint_names=WIDOWX_COMMAND_JOINTS[:6], initial_positions=None)
    )
    layer = SafetyLayer(SafetyConfig(widowx_joint_limits()))
    with pytest.raises(ConfigError, match="differ"):
        JointController(driver, layer)
