"""XHand retargeting on constructed hands, angle matching, gripper mapping and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hand_fixtures import bend_finger, canonical_right_hand, mirror_to_left, random_rotation

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.retargeting import RetargetConfig, XHandRetargeter
from human_video_policy.retargeting.angle_matching import (
    AngleMatchingConfig,
    angle_matching_retarget,
)
from human_video_policy.retargeting.gripper import GripperMapping, GripperMappingConfig
from human_video_policy.robots.widowx import GRIPPER_CLOSED, GRIPPER_OPEN
from human_video_policy.robots.xhand import FINGER_JOINTS, XHAND_JOINTS, xhand_joint_limits

LIMITS = xhand_joint_limits()
FLEX = {
    f: [XHAND_JOINTS.index(j) for j in FINGER_JOINTS[f] if "bend" not in j]
    for f in ("index", "middle", "ring", "pinky")
}


def _fist() -> np.ndarray:
    kp = canonical_right_hand()
    for finger in ("index", "middle", "ring", "pinky"):
        for joint in range(3):
            kp = bend_finger(kp, finger, joint, 1.2)
    return kp


@pytest.fixture(scope="module", params=["vector", "dexpilot"])
def retargeter(request: pytest.FixtureRequest) -> XHandRetargeter:
    return XHandRetargeter(RetargetConfig(optimizer=request.param))


def test_open_hand_gives_open_fingers(retargeter: XHandRetargeter) -> None:
    retargeter.reset()
    q = retargeter.retarget_frame(canonical_right_hand(), "right")
    assert q.shape == (12,)
    for finger, idx in FLEX.items():
        assert np.all(q[idx] < 0.1), (finger, q[idx])


def test_fist_flexes_every_finger(retargeter: XHandRetargeter) -> None:
    retargeter.reset()
    q = retargeter.retarget_frame(_fist(), "right")
    for finger, idx in FLEX.items():
        assert q[idx].sum() > 1.5, (finger, q[idx])
    assert np.all(q >= LIMITS.lower) and np.all(q <= LIMITS.upper)


def test_result_is_frame_invariant_and_left_hands_mirror() -> None:
    """Keypoints in any rigid frame (camera, MediaPipe world) give the same joints; an
    anatomical left hand gives the joints of the mirrored right hand."""
    rt = XHandRetargeter()
    kp = bend_finger(bend_finger(canonical_right_hand(), "index", 1, 0.8), "ring", 0, 0.5)
    q_ref = rt.retarget_frame(kp, "right")
    R = random_rotation(np.random.default_rng(3))
    rt.reset()
    q_rot = rt.retarget_frame(kp @ R.T + np.array([0.3, -0.1, 0.6]), "right")
    rt.reset()
    q_left = rt.retarget_frame(mirror_to_left(kp), "left")
    np.testing.assert_allclose(q_rot, q_ref, atol=1e-6)
    np.testing.assert_allclose(q_left, q_ref, atol=1e-6)


def test_sequence_output_and_step_bound() -> None:
    """Open -> fist in one frame: the step bound clamps the jump and reports it."""
    cfg = RetargetConfig(max_joint_step_rad=0.2, low_pass_alpha=1.0)
    rt = XHandRetargeter(cfg)
    seq = np.stack([canonical_right_hand()] * 3 + [_fist()] * 12)
    res = rt.retarget_sequence(seq, "right")
    assert res.joints.shape == (15, 12) and res.joint_names == XHAND_JOINTS
    assert res.fingertip_error_m.shape == (15, 5) and res.direction_error_rad.shape == (15, 5)
    steps = np.abs(np.diff(res.joints, axis=0))
    assert steps.max() <= 0.2 + 1e-12
    assert res.step_clamped[3] and not res.step_clamped[:3].any()
    # After the clamp each finger converges to the flexion of a fresh solve of the fist (the
    # split between a finger's two joints may differ: near-equivalent solutions).
    rt.reset()
    fresh = rt.retarget_frame(_fist(), "right")
    for idx in FLEX.values():
        assert res.joints[-1, idx].sum() == pytest.approx(fresh[idx].sum(), abs=0.1)


def test_q_prev_overrides_the_warm_start() -> None:
    rt = XHandRetargeter(RetargetConfig(max_joint_step_rad=0.1))
    q_prev = LIMITS.lower.copy()
    q = rt.retarget_frame(_fist(), "right", q_prev=q_prev)
    assert np.abs(q - q_prev).max() <= 0.1 + 1e-12
    with pytest.raises(InputError, match="q_prev"):
        rt.retarget_frame(_fist(), "right", q_prev=np.zeros(11))


def test_bad_input_is_rejected() -> None:
    rt = XHandRetargeter()
    kp = canonical_right_hand()
    nan = kp.copy()
    nan[8, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        rt.retarget_frame(nan, "right")
    with pytest.raises(InputError, match=r"\(21, 3\)"):
        rt.retarget_frame(kp[:20], "right")
    with pytest.raises(InputError, match=r"\(T, 21, 3\)"):
        rt.retarget_sequence(kp, "right")
    with pytest.raises(InputError, match="not a hand in metres"):
        rt.retarget_frame(kp * 1000.0, "right")  # millimetres
    collapsed = np.zeros((21, 3))
    with pytest.raises(InputError):
        rt.retarget_frame(collapsed, "right")
    flat = kp.copy()
    flat[:, 1:] = 0.0  # every keypoint on one line: no palm plane
    flat[:, 0] = np.linspace(0.0, 0.2, 21)
    with pytest.raises(InputError, match="collinear"):
        rt.retarget_frame(flat, "right")
    with pytest.raises(ConfigError, match="handedness"):
        rt.retarget_frame(kp, "both")


def test_config_validation_and_yaml(tmp_path) -> None:
    with pytest.raises(ConfigError, match="optimizer"):
        RetargetConfig(optimizer="position")
    with pytest.raises(ConfigError, match="finger_scales"):
        RetargetConfig(finger_scales=(1.0, 1.0))
    with pytest.raises(ConfigError, match="max_joint_step_rad"):
        RetargetConfig(max_joint_step_rad=0.0)
    with pytest.raises(ConfigError, match="escape_dist"):
        RetargetConfig.from_dict({"dexpilot": {"project_dist": 0.05, "escape_dist": 0.03}})
    with pytest.raises(ConfigError, match="unknown"):
        RetargetConfig.from_dict({"scale": 1.2})
    default = XHandRetargeter.default().config
    assert default == RetargetConfig()  # the YAML and the dataclass defaults agree
    path = tmp_path / "r.yaml"
    path.write_text("retargeting:\n  optimizer: dexpilot\n  finger_scales: [1, 1, 1, 1, 1.2]\n")
    cfg = XHandRetargeter.from_yaml(path).config
    assert cfg.optimizer == "dexpilot" and cfg.finger_scales[4] == 1.2
    path.write_text("optimizer: vector\n")
    with pytest.raises(ConfigError, match="retargeting"):
        RetargetConfig.from_yaml(path)


# --- angle matching (VITRA A.5.2) -------------------------------------------------------------


def test_angle_matching_known_angles() -> None:
    a = np.zeros((15, 3))
    q0 = angle_matching_retarget(a)
    k = XHAND_JOINTS.index
    assert q0.shape == (12,)
    # Straight fingers -> the lower limit (open); zero index abduction -> the middle of +-0.175.
    for name in ("right_hand_index_joint1", "right_hand_mid_joint2", "right_hand_pinky_joint1"):
        assert q0[k(name)] == pytest.approx(LIMITS.lower[k(name)])
    assert q0[k("right_hand_index_bend_joint")] == pytest.approx(0.0, abs=1e-12)
    a[0, 0] = np.radians(45.0)  # index MCP flexion: half of [0, 90] deg -> half of [0, 1.92]
    a[1, 0] = a[2, 0] = np.radians(45.0)  # index PIP + DIP = 90 of [0, 180] deg
    a[0, 1] = np.radians(15.0)  # index abduction toward the thumb -> index_bend lower limit
    q = angle_matching_retarget(a)
    assert q[k("right_hand_index_joint1")] == pytest.approx(0.96)
    assert q[k("right_hand_index_joint2")] == pytest.approx(0.96)
    assert q[k("right_hand_index_bend_joint")] == pytest.approx(-0.175)
    assert q[k("right_hand_mid_joint1")] == pytest.approx(0.0)  # untouched finger stays open


def test_angle_matching_clips_to_limits_and_rejects_bad_input() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(-4.0, 4.0, size=(50, 15, 3))
    q = angle_matching_retarget(a)
    assert q.shape == (50, 12)
    assert np.all(q >= LIMITS.lower) and np.all(q <= LIMITS.upper)
    assert np.isclose(q, LIMITS.upper).any() and np.isclose(q, LIMITS.lower).any()
    with pytest.raises(InputError, match=r"\(T, 15, 3\)"):
        angle_matching_retarget(np.zeros((5, 14, 3)))
    bad = np.zeros((3, 15, 3))
    bad[2, 4, 0] = np.inf
    with pytest.raises(InputError, match="frame 2"):
        angle_matching_retarget(bad)
    with pytest.raises(ConfigError, match="missing"):
        AngleMatchingConfig(human_ranges_rad={"right_hand_mid_joint1": (0.0, 1.0)})


# --- gripper ------------------------------------------------------------------------------------


def test_gripper_binary_hysteresis() -> None:
    g = GripperMapping()
    out = g.map_sequence([0.08, 0.04, 0.029, 0.04, 0.049, 0.051, 0.04])
    o, c = GRIPPER_OPEN, GRIPPER_CLOSED
    np.testing.assert_allclose(out, [o, o, c, c, c, o, o])
    assert g.map_sequence([0.01])[0] == c  # the first frame: below the middle of the band


def test_gripper_proportional_is_monotone_and_clamped() -> None:
    g = GripperMapping(GripperMappingConfig(mode="proportional"))
    d = np.linspace(0.0, 0.2, 401)
    out = g.map_sequence(d)
    assert np.all(np.diff(out) >= 0.0)
    assert out.min() == pytest.approx(GRIPPER_CLOSED) and out.max() == pytest.approx(GRIPPER_OPEN)
    assert g(0.04) == pytest.approx(0.5 * (GRIPPER_CLOSED + GRIPPER_OPEN))


def test_gripper_from_keypoints_and_bad_input() -> None:
    kp = canonical_right_hand()
    pinch = kp.copy()
    pinch[8] = pinch[4] + np.array([0.0, 0.0, 0.01])
    out = GripperMapping().map_keypoints(np.stack([kp, pinch, pinch]))
    np.testing.assert_allclose(out, [GRIPPER_OPEN, GRIPPER_CLOSED, GRIPPER_CLOSED])
    g = GripperMapping()
    assert g.opening_from_keypoints(kp) == GRIPPER_OPEN
    assert g.opening_from_keypoints(pinch) == GRIPPER_CLOSED
    with pytest.raises(InputError, match="NaN"):
        g.opening_from_keypoints(np.full((21, 3), np.nan))
    with pytest.raises(InputError, match="finite"):
        g(float("nan"))
    with pytest.raises(InputError, match=">= 0"):
        g(-0.01)
    with pytest.raises(ConfigError, match="open_above"):
        GripperMappingConfig(close_below=0.05, open_above=0.03)
    with pytest.raises(ConfigError, match="mode"):
        GripperMappingConfig(mode="soft")
