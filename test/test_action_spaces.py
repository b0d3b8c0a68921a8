"""The action-space registry (policies/action_spaces.py) and how robots and embodiments use it."""

from __future__ import annotations

import pytest

from human_video_policy.data.embodiment import EMBODIMENTS, HUMAN_ACTION_NAMES, EmbodimentSpec
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.policies import action_spaces
from human_video_policy.policies.action_spaces import (
    HUMAN_HAND_102,
    JOINT_POSITION,
    RM75_JOINT_POSITION,
    WIDOWX_EE_DELTA,
    WIDOWX_JOINT_POSITION,
    XHAND_JOINT_POSITION,
    XHAND_WRIST_METHOD_A,
    ActionSpace,
    action_space_names,
    get_action_space,
    register_action_space,
)
from human_video_policy.robots.rm75 import RM75_ARM_JOINTS
from human_video_policy.robots.spec import get_robot, robot_names
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS


def test_the_registry_holds_the_project_spaces() -> None:
    expected = {
        WIDOWX_JOINT_POSITION: 7,
        XHAND_JOINT_POSITION: 12,
        RM75_JOINT_POSITION: 7,
        HUMAN_HAND_102: 102,
        XHAND_WRIST_METHOD_A: 21,
        WIDOWX_EE_DELTA: 7,
        JOINT_POSITION: 0,
    }
    assert set(expected) <= set(action_space_names())
    for name, dims in expected.items():
        space = get_action_space(name)
        assert space.name == name and space.dims == dims == len(space.units), name
    assert get_action_space(WIDOWX_JOINT_POSITION).names == WIDOWX_COMMAND_JOINTS
    assert get_action_space(WIDOWX_JOINT_POSITION).units[-1] == "m"  # the prismatic finger
    assert get_action_space(RM75_JOINT_POSITION).names == RM75_ARM_JOINTS
    assert get_action_space(JOINT_POSITION).is_open
    with pytest.raises(ConfigError, match=r"'ur5_joint_position' is unknown; known: \[.*'widowx"):
        get_action_space("ur5_joint_position")


def test_method_a_is_fingers_then_rot6d_then_position_in_the_base_frame() -> None:
    space = get_action_space(XHAND_WRIST_METHOD_A)
    assert space.names[:12] == XHAND_JOINTS
    assert space.names[12:] == (
        *(f"wrist_rot6d_{i}" for i in range(6)), "wrist_x", "wrist_y", "wrist_z",
    )  # fmt: skip
    assert space.group("fingers") == slice(0, 12)
    assert space.group("wrist_rotation") == slice(12, 18)
    assert space.group("wrist_position") == slice(18, 21)
    assert space.frame == "robot base" and space.units[18:] == ("m", "m", "m")
    with pytest.raises(ConfigError, match="no group 'wrist'"):
        space.group("wrist")


def test_the_human_space_is_the_embodiment_maps_space() -> None:
    space = get_action_space(HUMAN_HAND_102)
    assert space.names == HUMAN_ACTION_NAMES
    assert space.names[51] == "right.dt_x" and space.group("right") == slice(51, 102)


def test_every_robot_and_embodiment_names_registered_spaces() -> None:
    for robot in robot_names():
        spec = get_robot(robot)
        for name in spec.action_spaces:
            get_action_space(name)  # registered
        assert get_action_space(spec.joint_action_space).names == spec.command_joints, robot
        assert get_action_space(spec.joint_action_space).kind == "joint_position"
    for emb in EMBODIMENTS.values():
        get_action_space(emb.action_space).check_names(emb.action_names)
    with pytest.raises(ConfigError, match="action space 'x' is unknown"):
        EmbodimentSpec("r", "x", ("a",), ("a",))
    with pytest.raises(ConfigError, match="differ from the dims of action space xhand_joint"):
        EmbodimentSpec("r", XHAND_JOINT_POSITION, ("a",), ("a",))


def test_check_names_says_which_dimension_differs() -> None:
    space = get_action_space(WIDOWX_JOINT_POSITION)
    space.check_names(list(WIDOWX_COMMAND_JOINTS))
    get_action_space(JOINT_POSITION).check_names(["anything"])
    swapped = list(WIDOWX_COMMAND_JOINTS)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    with pytest.raises(InputError, match="dim 1 is 'elbow', action space widowx_joint_position"):
        space.check_names(swapped, "dataset actions")
    with pytest.raises(InputError, match="have 6 dims, action space widowx_joint_position has 7"):
        space.check_names(WIDOWX_COMMAND_JOINTS[:6])


def test_bad_spaces_and_duplicates_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(action_spaces, "_SPACES", dict(action_spaces._SPACES))
    good = dict(name="s", names=("a", "b"), description="", kind="joint_position", units=("m",) * 2)
    register_action_space(ActionSpace(**good))
    with pytest.raises(ConfigError, match="'s' is already registered"):
        register_action_space(ActionSpace(**good))
    register_action_space(ActionSpace(**{**good, "description": "new"}), replace=True)
    assert get_action_space("s").description == "new"
    for change, message in (
        ({"name": "Bad-Name"}, "lower_case id"),
        ({"names": ("a", "a")}, "names repeat"),
        ({"units": ("m",)}, "1 units for 2 names"),
        ({"kind": "torque"}, "kind='torque' is invalid"),
        ({"groups": (("x", 0, 1), ("y", 2, 2))}, "group 'y'"),
        ({"groups": (("x", 0, 1),)}, "groups end at 1"),
    ):
        with pytest.raises(ConfigError, match=message):
            ActionSpace(**{**good, **change})
