"""Joint angles (15 MANO joints x 3) and the 51-d VITRA hand action."""

from __future__ import annotations

import numpy as np
import pytest
from hand_fixtures import (
    bend_finger,
    canonical_right_hand,
    load_real_right,
    mirror_to_left,
    random_rotation,
)

from human_video_policy.errors import InputError
from human_video_policy.hands.joint_angles import (
    MANO_JOINT_NAMES,
    MANO_TO_MEDIAPIPE,
    apply_hand_action_51,
    hand_action_51,
    hand_actions_51,
    joint_angles,
    joint_angles_sequence,
)
from human_video_policy.hands.rotations import matrix_from_axis_angle

FLEX, ABD = 0, 1


def test_mano_mapping_is_a_permutation_of_the_non_tip_joints() -> None:
    assert len(MANO_JOINT_NAMES) == len(MANO_TO_MEDIAPIPE) == 15
    assert sorted(MANO_TO_MEDIAPIPE) == [1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19]
    assert MANO_JOINT_NAMES[MANO_TO_MEDIAPIPE.index(18)] == "pinky2"


def test_straight_hand_has_zero_angles_any_pose() -> None:
    rng = np.random.default_rng(1)
    hand = canonical_right_hand() @ random_rotation(rng).T + rng.normal(size=3)
    np.testing.assert_allclose(joint_angles(hand, "right"), 0.0, atol=1e-9)


@pytest.mark.parametrize(
    ("finger", "joint", "mano"),
    [("index", 1, 1), ("middle", 0, 3), ("pinky", 2, 8), ("ring", 1, 10), ("thumb", 1, 13)],
)
@pytest.mark.parametrize("degrees", [90.0, 45.0, -20.0])
def test_bent_joint_gives_that_flexion(finger: str, joint: int, mano: int, degrees: float) -> None:
    rng = np.random.default_rng(2)
    hand = bend_finger(canonical_right_hand(), finger, joint, np.radians(degrees))
    Q, t = random_rotation(rng), rng.normal(size=3)
    for kp, side in [(hand, "right"), (mirror_to_left(hand) @ Q.T + t, "left")]:
        ang = np.degrees(joint_angles(kp, side))
        assert ang[mano, FLEX] == pytest.approx(degrees, abs=1e-6)
        others = np.delete(ang.reshape(-1), 3 * mano + FLEX)
        np.testing.assert_allclose(others, 0.0, atol=1e-6)


def test_sideways_bend_is_abduction_not_flexion() -> None:
    hand = canonical_right_hand()
    # Swing the whole index finger (after the MCP) 15 degrees toward the thumb side (-y).
    a = np.radians(15.0)
    Rz = np.array([[np.cos(a), np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]])
    hand[6:9] = hand[5] + (hand[6:9] - hand[5]) @ Rz.T
    ang = np.degrees(joint_angles(hand, "right"))
    assert ang[0, ABD] == pytest.approx(15.0, abs=1e-6)
    assert ang[0, FLEX] == pytest.approx(0.0, abs=1e-6)
    # The mirrored (left) hand gives the same signed angles: toward the thumb is positive.
    left = np.degrees(joint_angles(mirror_to_left(hand), "left"))
    np.testing.assert_allclose(left, ang, atol=1e-9)


def test_real_data_angles_finite_and_physiological() -> None:
    ang = np.degrees(joint_angles_sequence(load_real_right(), "right"))
    assert ang.shape == (621, 15, 3)
    assert np.isfinite(ang).all()
    assert np.abs(ang[..., FLEX]).max() < 130.0
    assert np.abs(ang[..., ABD]).max() < 90.0
    # The fingers do flex in this clip (the recording is a grasp), and not only one way.
    assert ang[..., FLEX].max() > 45.0


def _smooth_trajectory(T: int, rng: np.random.Generator):
    t = np.linspace(0.0, 1.0, T)[:, None]
    c = rng.normal(size=(4, 3))
    rotvec = c[0] + np.sin(2.0 * t * c[1]) + 0.5 * t * c[2]
    R = matrix_from_axis_angle(rotvec)
    p = 0.3 * np.sin(3.0 * t * c[3]) + 0.2 * t
    angles = 0.6 * np.sin(t[:, :, None] * rng.normal(size=(1, 15, 3)) * 4.0)
    return R, p, angles


def test_action_51_round_trip_over_smooth_trajectory() -> None:
    rng = np.random.default_rng(7)
    R, p, angles = _smooth_trajectory(120, rng)
    actions = hand_actions_51(R, p, angles)
    assert actions.shape == (119, 51)
    for t in (0, 50, 118):
        single = hand_action_51((R[t], p[t]), (R[t + 1], p[t + 1]), angles[t], angles[t + 1])
        np.testing.assert_allclose(single, actions[t], atol=1e-12)
    Rc, pc = R[0], p[0]
    err = 0.0
    for t, a in enumerate(actions):
        Rc, pc, ang = apply_hand_action_51((Rc, pc), a)
        err = max(
            err,
            np.abs(Rc - R[t + 1]).max(),
            np.abs(pc - p[t + 1]).max(),
            np.abs(ang - angles[t + 1]).max(),
        )
    assert err < 1e-6


def test_action_51_bad_inputs() -> None:
    R, p, a = np.eye(3), np.zeros(3), np.zeros((15, 3))
    with pytest.raises(InputError, match=r"next_angles must have shape \(15, 3\)"):
        hand_action_51((R, p), (R, p), a, np.zeros(44))
    with pytest.raises(InputError, match="not a rotation"):
        hand_action_51((R, p), (2 * R, p), a, a)
    with pytest.raises(InputError, match=r"\(51,\)"):
        apply_hand_action_51((R, p), np.zeros(50))
    bad = np.zeros(51)
    bad[10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        apply_hand_action_51((R, p), bad)
    with pytest.raises(InputError, match="T >= 2"):
        hand_actions_51(R[None], p[None], a[None])


def test_joint_angle_input_errors() -> None:
    kp = canonical_right_hand()
    with pytest.raises(InputError, match=r"\(T, 21, 3\)"):
        joint_angles_sequence(kp[None, :, :2], "right")
    bad = np.stack([kp, kp])
    bad[1, 7, 2] = np.nan
    with pytest.raises(InputError, match=r"NaN.*\(1, 7, 2\)"):
        joint_angles_sequence(bad, "right")
    dup = kp.copy()
    dup[7] = dup[6]
    with pytest.raises(InputError, match="zero-length bone"):
        joint_angles(dup, "right")
