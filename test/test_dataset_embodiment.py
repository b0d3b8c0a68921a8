"""Embodiments: robot actions into the 102-d human hand space (nearest joint, rest masked) and
back, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.data.embodiment import (
    EMBODIMENTS,
    HUMAN_ACTION_NAMES,
    EmbodimentSpec,
    JointMapping,
    embodiment,
    human_dim,
)
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.robots.widowx import GRIPPER_CLOSED, GRIPPER_OPEN
from human_video_policy.robots.xhand import XHAND_JOINTS


def test_human_space_layout() -> None:
    assert len(HUMAN_ACTION_NAMES) == 102 == len(set(HUMAN_ACTION_NAMES))
    assert HUMAN_ACTION_NAMES[:6] == (
        "left.dt_x", "left.dt_y", "left.dt_z", "left.dr_x", "left.dr_y", "left.dr_z",
    )  # fmt: skip
    assert HUMAN_ACTION_NAMES[6] == "left.index1.flexion"
    assert HUMAN_ACTION_NAMES[51] == "right.dt_x"
    assert human_dim("right", "thumb3", "twist") == 101
    with pytest.raises(InputError, match="not a human action dimension"):
        human_dim("right", "toe1", "flexion")


def test_xhand_round_trip_and_mask() -> None:
    xh = embodiment("xhand")
    rng = np.random.default_rng(0)
    q = rng.uniform(-1, 1, (16, 12)).astype(np.float32)
    human, mask = xh.to_human(q)
    assert human.shape == (16, 102) and mask.shape == (102,)
    assert mask.sum() == 12 and mask[:51].sum() == 0  # right hand only
    assert np.all(human[:, mask == 0] == 0)
    idx = XHAND_JOINTS.index("right_hand_index_joint1")
    np.testing.assert_array_equal(human[:, human_dim("right", "index1", "flexion")], q[:, idx])
    np.testing.assert_array_equal(xh.from_human(human), q)  # exact inverse
    assert xh.unmapped_joints == ()


def test_widowx_gripper_maps_to_a_pinch_and_arm_needs_fill() -> None:
    wx = EMBODIMENTS["widowx"]
    q = np.array([0.1, -0.2, 0.3, 0.0, 0.5, -0.1, GRIPPER_CLOSED], np.float32)
    human, mask = wx.to_human(q)
    assert mask.sum() == 1
    assert human[human_dim("right", "index1", "flexion")] == pytest.approx(1.0)
    open_q = q.copy()
    open_q[6] = GRIPPER_OPEN
    assert wx.to_human(open_q)[0][human_dim("right", "index1", "flexion")] == pytest.approx(
        0.0, abs=1e-6
    )
    with pytest.raises(InputError, match="no human counterpart"):
        wx.from_human(human)
    back = wx.from_human(human, fill=np.zeros(7))
    assert back[6] == pytest.approx(GRIPPER_CLOSED, rel=1e-6) and np.all(back[:6] == 0)


def test_human_hand_is_the_identity() -> None:
    hh = embodiment("human_hand")
    x = np.random.default_rng(1).standard_normal((3, 102)).astype(np.float32)
    human, mask = hh.to_human(x)
    np.testing.assert_array_equal(human, x)
    assert mask.sum() == 102
    np.testing.assert_array_equal(hh.from_human(human), x)


def test_bad_input_and_bad_specs() -> None:
    xh = embodiment("xhand")
    with pytest.raises(InputError, match=r"shape \(\.\.\., 12\)"):
        xh.to_human(np.zeros(7))
    with pytest.raises(InputError, match="NaN"):
        xh.to_human(np.full(12, np.nan))
    with pytest.raises(ConfigError, match="embodiment='ur5'"):
        embodiment("ur5")
    with pytest.raises(ConfigError, match="'elbow' is not one of action_names"):
        EmbodimentSpec("r", "x", ("a",), ("a",), (JointMapping("elbow", 0),))
    with pytest.raises(ConfigError, match="human_index=0"):
        EmbodimentSpec("r", "x", ("a", "b"), ("a",), (JointMapping("a", 0), JointMapping("b", 0)))
    with pytest.raises(ConfigError, match="non-zero scale"):
        EmbodimentSpec("r", "x", ("a",), ("a",), (JointMapping("a", 0, scale=0.0),))
