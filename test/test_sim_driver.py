"""The MuJoCo sim driver: the JointDriver life cycle and errors, tracking, its own time."""

from __future__ import annotations

import time

import numpy as np
import pytest

from human_video_policy.drivers.base import (
    DriverCommandError,
    DriverConnectionError,
    JointDriver,
)
from human_video_policy.drivers.sim import MujocoDriverConfig, MujocoJointDriver
from human_video_policy.errors import ConfigError
from human_video_policy.robots.widowx import HOME_POSITION, WIDOWX_COMMAND_JOINTS
from human_video_policy.robots.xhand import (
    SIM_JOINT_DYNAMICS,
    SIM_SERVO_KP,
    XHAND_JOINTS,
    xhand_joint_limits,
    xhand_urdf_path,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run_for(driver: MujocoJointDriver, clock: ManualClock, seconds: float) -> None:
    """Advance the clock in 10 ms ticks, reading the state each tick like a controller."""
    for _ in range(round(seconds / 0.01)):
        clock.now += 0.01
        driver.read_state()


def test_is_a_joint_driver_with_the_documented_life_cycle() -> None:
    clock = ManualClock()
    driver = MujocoJointDriver(clock=clock)
    assert isinstance(driver, JointDriver)
    assert driver.joint_names == WIDOWX_COMMAND_JOINTS
    assert driver.name == "mujoco:wx250s_reach_scene.xml"
    with pytest.raises(DriverConnectionError, match="not connected"):
        driver.read_state()
    driver.close()  # safe before connect
    driver.connect()
    state = driver.read_state()
    assert state.names == WIDOWX_COMMAND_JOINTS and not state.enabled
    assert np.allclose(state.positions, HOME_POSITION)
    with pytest.raises(DriverCommandError, match="disabled"):
        driver.send_positions(HOME_POSITION)
    driver.enable()
    with pytest.raises(DriverCommandError, match="NaN"):
        driver.send_positions(np.full(7, np.nan))
    with pytest.raises(DriverCommandError, match="shape"):
        driver.send_positions(np.zeros(6))
    driver.close()
    driver.close()
    assert not driver.is_connected


def test_follows_position_commands_in_its_own_time() -> None:
    clock = ManualClock()
    with MujocoJointDriver(clock=clock) as driver:
        driver.enable()
        target = np.array(HOME_POSITION)
        target[0], target[2], target[6] = 0.5, 0.2, 0.02
        driver.send_positions(target)
        _run_for(driver, clock, 1.5)
        state = driver.read_state()
        assert driver.sim_time == pytest.approx(1.5, abs=0.003)
        assert state.stamp_s == clock.now
        assert np.allclose(state.positions, target, atol=0.02), state.positions - target
        assert np.all(np.abs(state.velocities) < 0.05)
        assert np.allclose(driver.commanded_positions(), target)


def test_a_stalled_caller_makes_the_sim_fall_behind_not_jump() -> None:
    clock = ManualClock()
    driver = MujocoJointDriver(MujocoDriverConfig(max_catch_up_s=0.05), clock=clock)
    driver.connect()
    clock.now += 5.0
    driver.read_state()
    assert driver.sim_time == pytest.approx(0.05, abs=0.003)
    clock.now += 0.02
    driver.read_state()
    assert driver.sim_time == pytest.approx(0.07, abs=0.003)


def test_runs_in_real_time_on_the_monotonic_clock() -> None:
    driver = MujocoJointDriver()
    driver.connect()
    start = time.monotonic()
    while time.monotonic() - start < 0.3:
        driver.read_state()
        time.sleep(0.005)
    elapsed = time.monotonic() - start
    driver.read_state()
    assert driver.sim_time == pytest.approx(elapsed, abs=0.05)
    driver.close()


def test_disable_turns_the_actuators_off() -> None:
    clock = ManualClock()
    driver = MujocoJointDriver(clock=clock)
    driver.connect()
    driver.enable()
    target = np.array(HOME_POSITION)
    target[0] = 1.0
    driver.send_positions(target)
    _run_for(driver, clock, 0.05)
    assert np.abs(driver.read_state().efforts[0]) > 1.0  # the waist servo pushes
    driver.disable()
    _run_for(driver, clock, 1.0)
    state = driver.read_state()
    assert not state.enabled
    assert np.all(state.efforts == 0.0)
    assert abs(state.positions[0] - 1.0) > 0.1  # nothing holds it at the target: it coasts
    driver.close()


def test_drives_a_bare_urdf_by_adding_position_actuators() -> None:
    limits = xhand_joint_limits()
    middle = (np.asarray(limits.lower) + np.asarray(limits.upper)) / 2
    config = MujocoDriverConfig(
        model_path=str(xhand_urdf_path()),
        joint_names=XHAND_JOINTS,
        initial_positions=tuple(np.asarray(limits.lower)),
        added_actuator_kp=5.0,
        contacts=False,
    )
    clock = ManualClock()
    with MujocoJointDriver(config, clock=clock) as hand:
        assert hand.name == "mujoco:xhand_right.urdf"
        hand.enable()
        hand.send_positions(middle)
        _run_for(hand, clock, 4.0)  # the URDF effort limits and joint friction make it slow
        positions = hand.read_state().positions
    assert np.allclose(positions, middle, atol=0.05), positions - middle


def test_project_xhand_servos_settle_a_step_like_the_real_fingers() -> None:
    """The hand controller's sim XHand (SIM_SERVO_KP, SIM_JOINT_DYNAMICS, gravity compensation)
    settles a 0.3 rad step on every joint within 0.3 s; the URDF's own placeholder dynamics
    (and gravity) leave it far off."""

    def settle(dynamics: tuple[float, float, float] | None) -> np.ndarray:
        limits = xhand_joint_limits()
        start = np.clip(0.3, limits.lower, limits.upper)
        goal = np.clip(start + 0.3, limits.lower, limits.upper)
        config = MujocoDriverConfig(
            model_path=str(xhand_urdf_path()),
            joint_names=XHAND_JOINTS,
            initial_positions=tuple(start),
            added_actuator_kp=SIM_SERVO_KP,
            joint_dynamics=dynamics,
            gravity_compensation=dynamics is not None,
            contacts=False,
        )
        clock = ManualClock()
        with MujocoJointDriver(config, clock=clock) as hand:
            hand.enable()
            hand.send_positions(goal)
            _run_for(hand, clock, 0.3)
            return np.abs(hand.read_state().positions - goal)

    assert settle(SIM_JOINT_DYNAMICS).max() < 0.01
    assert np.median(settle(None)) > 0.1  # the override is what makes the difference


def test_model_problems_name_the_joint() -> None:
    bare = MujocoDriverConfig(
        model_path=str(xhand_urdf_path()), joint_names=XHAND_JOINTS, initial_positions=None
    )
    with pytest.raises(DriverConnectionError, match=r"right_hand_thumb_bend_joint.*no actuator"):
        MujocoJointDriver(bare).connect()
    unknown = MujocoDriverConfig(joint_names=("waist", "elbowz"), initial_positions=None)
    with pytest.raises(DriverConnectionError, match="no joint 'elbowz'"):
        MujocoJointDriver(unknown).connect()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model_path": "/nonexistent/scene.xml"}, "model_path"),
        ({"joint_names": ()}, "joint_names"),
        ({"joint_names": ("waist", "waist"), "initial_positions": None}, "joint_names"),
        ({"initial_positions": (0.0, 1.0)}, "initial_positions"),
        ({"realtime_factor": 0.0}, "realtime_factor"),
        ({"added_actuator_kp": -1.0}, "added_actuator_kp"),
        ({"joint_dynamics": (0.05, -0.1, 0.0)}, "joint_dynamics"),
        ({"joint_dynamics": (0.05, float("nan"), 0.0)}, "joint_dynamics"),
        ({"joint_dynamics": (0.05, 0.005)}, "joint_dynamics"),
    ],
)
def test_bad_settings_are_refused(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        MujocoDriverConfig(**overrides)
