"""drivers/mujoco_joints.py: the one binding of named position-controlled joints that the sim
driver and the simulated worlds share (same addresses, same clamping, same refusals)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from human_video_policy.drivers.mujoco_joints import MujocoJoints
from human_video_policy.drivers.sim import MujocoJointDriver
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS
from human_video_policy.sim.widowx_world import WidowXWorld, WidowXWorldConfig

MODEL = """
<mujoco>
  <worldbody>
    <body name="a"><joint name="hinge" type="hinge"/><geom size="0.05" mass="1"/>
      <body name="b" pos="0 0 0.2"><joint name="slide" type="slide"/><geom size="0.05" mass="1"/>
        <body name="c" pos="0 0 0.2"><joint name="loose" type="hinge"/><geom size="0.05"/>
        </body>
      </body>
    </body>
    <body name="free" pos="1 0 0"><freejoint name="float"/><geom size="0.05"/></body>
  </worldbody>
  <actuator>
    <position name="p_hinge" joint="hinge" kp="10" ctrlrange="-1 1"/>
    <position name="p_slide" joint="slide" kp="10"/>
  </actuator>
</mujoco>
"""


@pytest.fixture
def model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(MODEL)


def test_binds_names_in_order_and_clamps_only_limited_actuators(model) -> None:
    data = mujoco.MjData(model)
    joints = MujocoJoints(model, ["slide", "hinge"])
    assert list(joints.actuators) == [1, 0]
    assert list(joints.qpos) == [model.joint("slide").qposadr[0], model.joint("hinge").qposadr[0]]
    applied = joints.set_command(data, np.array([5.0, 5.0]))
    assert applied.tolist() == [5.0, 1.0]  # the slide's actuator has no range: not clamped
    assert joints.command(data).tolist() == [5.0, 1.0]
    data.qpos[joints.qpos] = [0.1, -0.2]
    assert joints.positions(data).tolist() == pytest.approx([0.1, -0.2])
    assert joints.velocities(data).shape == (2,) and joints.efforts(data).shape == (2,)
    state = MujocoJoints(model, ["loose"], actuated=False)  # state joints need no actuator
    assert state.actuators.size == 0


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["nope"], "has no joint 'nope'"),
        (["float"], "'float' is not a 1-DoF"),
        (["loose"], "'loose' has no actuator"),
        ([], "at least one joint"),
    ],
)
def test_refuses_what_cannot_be_driven(model, names, message) -> None:
    with pytest.raises(ConfigError, match=message):
        MujocoJoints(model, names)


def test_refuses_bad_commands_and_leaves_the_targets(model) -> None:
    data = mujoco.MjData(model)
    joints = MujocoJoints(model, ["hinge", "slide"])
    joints.set_command(data, np.array([0.5, 0.2]))
    for bad, message in (([np.nan, 0.0], "NaN"), ([0.0], "shape"), ([[0.0, 0.0]], "shape")):
        with pytest.raises(InputError, match=message):
            joints.set_command(data, np.array(bad))
    assert joints.command(data).tolist() == [0.5, 0.2]


def test_the_driver_and_the_world_bind_the_widowx_the_same_way() -> None:
    clock = [0.0]
    with MujocoJointDriver(clock=lambda: clock[0]) as driver:
        world = WidowXWorld(WidowXWorldConfig(image_width=32, image_height=32))
        try:
            bound = MujocoJoints(world.model, WIDOWX_COMMAND_JOINTS)
            assert list(world._actuator_index) == list(bound.actuators)
            driven = driver._joints
            assert driven.names == bound.names
            assert list(driven.actuators) == list(bound.actuators)
            assert list(driven.qpos) == list(bound.qpos)
            assert driven.ctrl_low == pytest.approx(world._ctrl_low)
            assert driven.ctrl_high == pytest.approx(world._ctrl_high)
        finally:
            world.close()
