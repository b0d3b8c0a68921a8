"""One RobotSpec per robot (robots/spec.py): the facts agree with the URDF, the sim and IK."""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.drivers.sim import MujocoJointDriver, sim_driver_config
from human_video_policy.errors import ConfigError
from human_video_policy.kinematics.robots import ee_position_function, robot_forward_kinematics
from human_video_policy.robots import rm75, widowx, xhand
from human_video_policy.robots import spec as spec_module
from human_video_policy.robots.spec import (
    RobotSpec,
    SimModel,
    controller_robot_names,
    get_robot,
    register_robot,
    robot_names,
)


def test_the_registry_names_every_robot_and_refuses_unknown_ones() -> None:
    assert robot_names() == ["widowx", "xhand", "rm75", "rm75_xhand"]
    assert controller_robot_names() == ["widowx", "xhand", "rm75"]  # rm75_xhand: two controllers
    with pytest.raises(ConfigError, match=r"robot='ur5'.*'widowx', 'xhand', 'rm75', 'rm75_xhand'"):
        get_robot("ur5")
    assert get_robot("widowx") is get_robot("widowx")  # built once


@pytest.mark.parametrize("name", ["widowx", "xhand", "rm75", "rm75_xhand"])
def test_each_spec_matches_its_urdf_and_kinematics(name: str) -> None:
    spec = get_robot(name)
    limits = spec.limits()
    assert limits.names == spec.command_joints
    assert limits.contains(spec.home())
    assert spec.urdf_path.is_file() and (spec.mjcf_path is None or spec.mjcf_path.is_file())
    fk = robot_forward_kinematics(spec)
    assert fk.input_joints == spec.command_joints
    assert {spec.base_frame, spec.ee_frame} <= set(fk.frame_names)
    position = ee_position_function(name)(spec.home())
    assert position.shape == (3,) and np.all(np.isfinite(position))
    assert set(spec.ik_joints) <= set(spec.command_joints)


def test_the_specs_carry_the_robot_modules_facts() -> None:
    w = get_robot("widowx")
    assert w.command_joints == widowx.WIDOWX_COMMAND_JOINTS
    assert w.state_joints == widowx.WIDOWX_STATE_JOINTS
    assert np.array_equal(w.home(), widowx.HOME_POSITION)
    assert w.limits().names == widowx.widowx_joint_limits().names
    assert np.array_equal(w.limits().upper, widowx.widowx_joint_limits().upper)
    assert get_robot("xhand").command_joints == xhand.XHAND_JOINTS
    assert np.array_equal(get_robot("rm75").home(), rm75.HOME_ARM_POSITION)
    both = get_robot("rm75_xhand")
    assert both.command_joints == rm75.RM75_XHAND_JOINTS and both.parts == ("rm75", "xhand")
    assert np.array_equal(both.home(), rm75.HOME_POSITION)


def test_the_composite_robot_holds_home_on_its_sim() -> None:
    spec = get_robot("rm75_xhand")
    now = [0.0]
    driver = MujocoJointDriver(sim_driver_config(spec), clock=lambda: now[0])
    driver.connect()
    try:
        driver.enable()
        driver.send_positions(spec.home())
        now[0] = 0.5
        state = driver.read_state()
    finally:
        driver.close()
    assert driver.joint_names == spec.command_joints
    assert np.allclose(state.positions, spec.home(), atol=0.02), state.positions - spec.home()


def test_register_robot_refuses_duplicates_and_misnamed_specs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a registry of this test's own, so the robot added here does not outlive it
    monkeypatch.setattr(spec_module, "_FACTORIES", dict(spec_module._FACTORIES))
    monkeypatch.setattr(spec_module, "_SPECS", {})
    with pytest.raises(ConfigError, match="already registered"):
        register_robot("widowx", lambda: get_robot("widowx"))
    register_robot("misnamed_test_robot", lambda: get_robot("xhand"))
    with pytest.raises(ConfigError, match="spec named 'xhand'"):
        get_robot("misnamed_test_robot")
    register_robot("misnamed_test_robot", lambda: get_robot("xhand"), replace=True)
    assert "misnamed_test_robot" in robot_names()


def test_a_spec_refuses_inconsistent_facts() -> None:
    w = get_robot("widowx")
    base = dict(
        name="bad",
        description="",
        command_joints=("a", "b"),
        state_joints=("a", "b"),
        urdf_path=w.urdf_path,
        base_frame="base",
        ee_frame="ee",
        home_position=(0.0, 0.0),
        action_spaces=("bad_joint_position",),
        sim=SimModel(w.urdf_path, ("a", "b"), (0.0, 0.0)),
    )
    RobotSpec(**base)
    for change, message in (
        ({"home_position": (0.0,)}, "home_position has 1 values"),
        ({"state_joints": ("b", "a")}, "must start with the command joints"),
        ({"command_joints": ("a", "a")}, "no repeats"),
        ({"ik_joints": ("c",)}, r"ik_joints \['c'\]"),
        ({"action_spaces": ()}, "joint action space"),
    ):
        with pytest.raises(ConfigError, match=message):
            RobotSpec(**{**base, **change})
    with pytest.raises(ConfigError, match="2 joints"):
        SimModel(w.urdf_path, ("a", "b"), (0.0,))
