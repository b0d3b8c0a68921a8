"""Teleoperation cores: the clutched wrist mapping and the leader -> follower mapping.

Pure numpy; every expected value is computed from the mapping's definition (module docstrings
of human_video_policy/teleop/), not copied from a run.
"""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.rotations import (
    axis_angle_from_matrix,
    matrix_from_axis_angle,
    rot_x,
    rot_z,
)
from human_video_policy.teleop.keyboard_deadman import KeyHold
from human_video_policy.teleop.leader_follower import (
    GripperMap,
    LeaderFollower,
    LeaderFollowerConfig,
    LeaderReading,
)
from human_video_policy.teleop.wrist_mapping import WristClutch, WristTeleopConfig

# A camera looking at the robot from its front-left, tilted down: optical z forward, x right.
R_BC = rot_z(0.7) @ rot_x(-2.2)
EE0 = np.eye(4)
EE0[:3, :3] = rot_x(np.pi)  # hand pointing down
EE0[:3, 3] = (0.35, 0.05, 0.3)
WRIST_R0 = rot_z(0.3) @ rot_x(0.4)
WRIST_P0 = np.array([0.05, -0.02, 0.6])


def _unfiltered(**overrides: object) -> WristTeleopConfig:
    values: dict = dict(R_base_camera=R_BC, smoothing=1.0, max_step_m=10.0, max_step_rad=np.pi)
    values.update(overrides)
    return WristTeleopConfig(**values)


def _engaged(config: WristTeleopConfig) -> WristClutch:
    clutch = WristClutch(config)
    clutch.engage(WRIST_R0, WRIST_P0, EE0)
    return clutch


def _angle(R: np.ndarray) -> float:
    return float(np.linalg.norm(axis_angle_from_matrix(R)))


# -- wrist clutch --------------------------------------------------------------------------
def test_a_still_hand_keeps_the_ee_where_it_was_at_engage() -> None:
    clutch = _engaged(WristTeleopConfig(R_base_camera=R_BC))
    for _ in range(20):
        T = clutch.update(WRIST_R0, WRIST_P0)
        np.testing.assert_allclose(T, EE0, atol=1e-12)


def test_a_wrist_translation_moves_the_ee_by_scale_times_the_rotated_delta() -> None:
    scale = 0.5
    clutch = _engaged(_unfiltered(translation_scale=scale))
    d = np.array([0.04, -0.03, 0.05])  # camera frame: right, up, away
    T = clutch.update(WRIST_R0, WRIST_P0 + d)
    np.testing.assert_allclose(T[:3, 3], EE0[:3, 3] + scale * R_BC @ d, atol=1e-12)
    np.testing.assert_allclose(T[:3, :3], EE0[:3, :3], atol=1e-9)  # no rotation from a shift


def test_mirror_reflects_the_image_horizontal_axis() -> None:
    clutch = _engaged(_unfiltered(mirror=True))
    d = np.array([0.03, 0.02, 0.0])
    T = clutch.update(WRIST_R0, WRIST_P0 + d)
    expected = EE0[:3, 3] + R_BC @ np.array([-0.03, 0.02, 0.0])
    np.testing.assert_allclose(T[:3, 3], expected, atol=1e-12)


def test_a_wrist_rotation_rotates_the_ee_by_the_same_rotation_in_base_axes() -> None:
    clutch = _engaged(_unfiltered())
    dR_cam = matrix_from_axis_angle(np.array([0.0, 0.3, 0.1]))
    T = clutch.update(dR_cam @ WRIST_R0, WRIST_P0)
    expected = R_BC @ dR_cam @ R_BC.T @ EE0[:3, :3]
    np.testing.assert_allclose(T[:3, :3], expected, atol=1e-9)
    np.testing.assert_allclose(T[:3, 3], EE0[:3, 3], atol=1e-12)
    half = _engaged(_unfiltered(rotation_scale=0.5)).update(dR_cam @ WRIST_R0, WRIST_P0)
    assert _angle(half[:3, :3] @ EE0[:3, :3].T) == pytest.approx(0.5 * _angle(dR_cam), abs=1e-9)
    frozen = _engaged(_unfiltered(rotation_scale=0.0)).update(dR_cam @ WRIST_R0, WRIST_P0)
    np.testing.assert_allclose(frozen[:3, :3], EE0[:3, :3], atol=1e-9)


def test_steps_are_limited_and_the_filter_converges() -> None:
    config = WristTeleopConfig(
        R_base_camera=R_BC, smoothing=0.5, max_step_m=0.01, max_step_rad=0.05
    )
    clutch = _engaged(config)
    d = np.array([0.0, 0.0, 0.2])  # a 20 cm jump of the tracked wrist
    dR = matrix_from_axis_angle(np.array([0.6, 0.0, 0.0]))
    previous = EE0
    for _ in range(100):
        T = clutch.update(dR @ WRIST_R0, WRIST_P0 + d)
        assert np.linalg.norm(T[:3, 3] - previous[:3, 3]) <= 0.01 + 1e-12
        assert _angle(T[:3, :3] @ previous[:3, :3].T) <= 0.05 + 1e-9
        previous = T
    raw = clutch.raw_target(dR @ WRIST_R0, WRIST_P0 + d)
    np.testing.assert_allclose(previous, raw, atol=1e-6)  # converged onto the raw target
    assert clutch.step_limited > 0


def test_the_target_is_clamped_into_the_workspace() -> None:
    config = _unfiltered(workspace_min=(0.1, -0.5, 0.2), workspace_max=(0.7, 0.5, 0.8))
    clutch = _engaged(config)
    down = R_BC.T @ np.array([0.0, 0.0, -1.0])  # camera-frame direction of base -z
    T = clutch.update(WRIST_R0, WRIST_P0 + 0.5 * down)  # would put the EE 20 cm under the floor
    assert T[2, 3] == pytest.approx(0.2)
    assert clutch.position_clamps == 1


def test_disengage_and_reengage_does_not_jump() -> None:
    clutch = _engaged(_unfiltered())
    moved = clutch.update(WRIST_R0, WRIST_P0 + np.array([0.05, 0.0, 0.0]))
    clutch.disengage()
    assert not clutch.engaged
    with pytest.raises(InputError, match="not engaged"):
        clutch.update(WRIST_R0, WRIST_P0)
    # The hand moved far away while released; the robot is where the last target put it.
    far_R, far_p = rot_z(1.0) @ WRIST_R0, WRIST_P0 + np.array([-0.2, 0.1, 0.1])
    clutch.engage(far_R, far_p, moved)
    np.testing.assert_allclose(clutch.update(far_R, far_p), moved, atol=1e-12)
    d = np.array([0.0, 0.02, 0.0])
    T = clutch.update(far_R, far_p + d)
    np.testing.assert_allclose(T[:3, 3], moved[:3, 3] + R_BC @ d, atol=1e-12)
    assert clutch.engagements == 2


def test_bad_inputs_and_configs_are_refused() -> None:
    clutch = WristClutch(WristTeleopConfig(R_base_camera=R_BC))
    outside = EE0.copy()
    outside[2, 3] = 0.01
    with pytest.raises(InputError, match="outside the teleop workspace"):
        clutch.engage(WRIST_R0, WRIST_P0, outside)
    with pytest.raises(InputError, match="wrist position"):
        clutch.engage(WRIST_R0, [np.nan, 0, 0], EE0)
    with pytest.raises(InputError, match="not a rotation"):
        clutch.engage(2.0 * WRIST_R0, WRIST_P0, EE0)
    assert not clutch.engaged
    with pytest.raises(ConfigError, match="R_base_camera"):
        WristTeleopConfig(R_base_camera=np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ConfigError, match="workspace_max"):
        WristTeleopConfig(workspace_min=(0, 0, 0), workspace_max=(1, 1, 0))
    with pytest.raises(ConfigError, match="smoothing"):
        WristTeleopConfig(smoothing=0.0)
    with pytest.raises(ConfigError, match="translation_scale"):
        WristTeleopConfig(translation_scale=-1.0)


# -- leader -> follower --------------------------------------------------------------------
ARM = ("waist", "shoulder", "elbow")
LOWER, UPPER = (-3.0, -1.8, -2.0), (3.0, 1.9, 1.6)
GRIPPER = GripperMap("gripper", "left_finger", -0.5, 0.5, 0.015, 0.037)


def _lf(**overrides: object) -> LeaderFollower:
    values: dict = dict(
        leader_joints=("l_waist", "l_shoulder", "l_elbow"),
        follower_joints=ARM,
        follower_lower=LOWER,
        follower_upper=UPPER,
        signs=(1.0, -1.0, 1.0),
        scales=(1.0, 1.0, 0.5),
        offsets=(0.0, 0.1, 0.0),
        gripper=GRIPPER,
        engage_tolerance_rad=0.1,
        max_leader_age_s=0.1,
    )
    values.update(overrides)
    return LeaderFollower(LeaderFollowerConfig(**values))


def _reading(q: list[float], gripper: float = 0.0, t: float = 0.0) -> LeaderReading:
    names = ("l_elbow", "gripper", "l_waist", "l_shoulder")  # any order, matched by name
    return LeaderReading(names, np.array([q[2], gripper, q[0], q[1]]), t)


def test_mapping_applies_sign_scale_offset_gripper_and_limits() -> None:
    lf = _lf()
    arm, gripper = lf.map(_reading([0.2, 0.3, -0.8], gripper=0.0))
    np.testing.assert_allclose(arm, [0.2, 0.1 - 0.3, 0.5 * -0.8])
    assert gripper == pytest.approx(0.026)  # the middle of the leader range -> the middle
    arm, gripper = lf.map(_reading([5.0, 0.0, 0.0], gripper=9.0))
    assert arm[0] == 3.0 and gripper == pytest.approx(0.037)  # clipped to limit and range
    with pytest.raises(InputError, match="lacks joints"):
        lf.map(LeaderReading(("l_waist",), np.zeros(1), 0.0))
    with pytest.raises(InputError, match="not finite"):
        lf.map(_reading([np.nan, 0.0, 0.0]))


def test_following_needs_the_deadman_alignment_and_a_fresh_leader() -> None:
    lf = _lf()
    follower = np.array([0.2, -0.2, -0.4])  # = the mapping of the leader below
    leader = [0.2, 0.3, -0.8]
    assert lf.step(0.0, False, _reading(leader), follower).arm is None  # deadman off
    step = lf.step(0.0, True, _reading(leader), follower)
    assert step.state == "following"
    np.testing.assert_allclose(step.arm, follower)
    assert step.gripper == pytest.approx(0.026)
    moved = lf.step(0.02, True, _reading([0.25, 0.3, -0.8], t=0.02), follower)
    assert moved.state == "following" and moved.arm[0] == pytest.approx(0.25)
    stale = lf.step(0.2, True, _reading(leader, t=0.02), follower)  # 0.18 s old > 0.1
    assert stale.state == "stale_leader" and stale.arm is None and "0.180 s old" in stale.reason
    assert not lf.following
    assert lf.step(0.3, False, _reading(leader, t=0.3), follower).state == "disabled"


def test_a_misaligned_leader_is_refused_until_it_is_moved_to_the_follower() -> None:
    lf = _lf()
    follower = np.array([0.2, -0.2, -0.4])
    step = lf.step(0.0, True, _reading([0.5, 0.3, -0.8]), follower)
    assert step.state == "misaligned" and step.arm is None
    assert "waist differs by 0.300 rad" in step.reason
    step = lf.step(0.1, True, _reading([0.25, 0.3, -0.8], t=0.1), follower)
    assert step.state == "following"  # 0.05 rad off: within the 0.1 rad tolerance


def test_ramp_alignment_moves_at_the_ramp_velocity_then_follows() -> None:
    lf = _lf(align="ramp", ramp_velocity=0.5)
    follower = np.array([0.0, -0.2, -0.4])
    leader = [0.6, 0.3, -0.8]  # waist 0.6 rad away
    states, waists = [], []
    for k in range(100):
        t = 0.02 * k
        step = lf.step(t, True, _reading(leader, t=t), follower)
        states.append(step.state)
        waists.append(step.arm[0])
    assert states[0] == "aligning" and states[-1] == "following"
    assert np.max(np.abs(np.diff(waists))) <= 0.5 * 0.02 + 1e-12
    first_following = states.index("following")
    # 0.6 rad at 0.5 rad/s = 1.2 s = 60 steps of 0.02 s (the first step has no dt yet).
    assert 59 <= first_following <= 62
    assert waists[-1] == pytest.approx(0.6)


def test_a_leader_jump_stops_following() -> None:
    lf = _lf(max_jump_rad=0.2)
    follower = np.array([0.2, -0.2, -0.4])
    assert lf.step(0.0, True, _reading([0.2, 0.3, -0.8]), follower).state == "following"
    step = lf.step(0.02, True, _reading([0.7, 0.3, -0.8], t=0.02), follower)
    assert step.state == "leader_jump" and step.arm is None
    assert "waist jumped 0.500 rad" in step.reason
    # Back near the follower: re-aligned and following again.
    assert lf.step(0.04, True, _reading([0.2, 0.3, -0.8], t=0.04), follower).state == "following"


def test_leader_follower_configs_are_validated() -> None:
    with pytest.raises(ConfigError, match="one leader joint per follower joint"):
        _lf(leader_joints=("a",))
    with pytest.raises(ConfigError, match="signs"):
        _lf(signs=(1.0, 2.0, 1.0))
    with pytest.raises(ConfigError, match="scales"):
        _lf(scales=(1.0, 0.0, 1.0))
    with pytest.raises(ConfigError, match="align"):
        _lf(align="teleport")
    with pytest.raises(ConfigError, match="leader_open"):
        GripperMap("g", "left_finger", 0.1, 0.1, 0.015, 0.037)


# -- key-held deadman ----------------------------------------------------------------------
def test_a_key_counts_as_held_while_its_auto_repeat_keeps_coming() -> None:
    hold = KeyHold(" ", hold_s=0.7)
    assert not hold.held(0.0)
    hold.feed("x", 0.0)  # another key does nothing
    assert not hold.held(0.0)
    hold.feed(" ", 1.0)  # pressed: held through the auto-repeat delay (0.66 s on X11)
    assert hold.held(1.0) and hold.held(1.66)
    for k in range(1, 50):  # auto-repeat at 25 Hz
        hold.feed(" ", 1.66 + 0.04 * k)
        assert hold.held(1.66 + 0.04 * k + 0.02)
    last = 1.66 + 0.04 * 49
    assert hold.held(last + 0.69) and not hold.held(last + 0.71)  # released: off after hold_s
    with pytest.raises(InputError, match="one character"):
        KeyHold("space")
    with pytest.raises(ConfigError, match="hold_s"):
        KeyHold(" ", hold_s=0.0)
