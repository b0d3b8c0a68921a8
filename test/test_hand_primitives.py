"""RAD move / gripper primitives and the template captioner."""

from __future__ import annotations

import numpy as np
import pytest
from hand_fixtures import bend_finger, canonical_right_hand

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.joint_angles import joint_angles_sequence
from human_video_policy.hands.primitives import (
    Captioner,
    MotionLabelConfig,
    SegmentLabels,
    TemplateCaptioner,
    depth_noise_from_pixels,
    gripper_positions,
    gripper_states,
    hand_shapes,
    label_segments,
    move_primitives,
    pinch_distances,
    position_noise,
)

FPS = 30.0
CAMERA = {
    "right": [1, 0, 0],
    "left": [-1, 0, 0],
    "down": [0, 1, 0],
    "up": [0, -1, 0],
    "forward": [0, 0, 1],
    "backward": [0, 0, -1],
}
BASE = {
    "forward": [1, 0, 0],
    "backward": [-1, 0, 0],
    "left": [0, 1, 0],
    "right": [0, -1, 0],
    "up": [0, 0, 1],
    "down": [0, 0, -1],
}


@pytest.mark.parametrize(("axes", "table"), [("camera", CAMERA), ("base", BASE)])
def test_motion_along_each_axis(axes: str, table: dict) -> None:
    cfg = MotionLabelConfig(fps=FPS, axes=axes)
    t = np.arange(20)[:, None] / FPS
    for word, direction in table.items():
        d = np.asarray(direction, dtype=float) + np.array([0.2, -0.3, 0.25]) * 0.3 * (
            np.asarray(direction) == 0
        )  # off-axis drift smaller than the main motion
        labels = move_primitives(0.2 * t * d, cfg)
        assert labels == [word] * 20, (word, labels)


def test_still_and_slow_motion_is_stop() -> None:
    cfg = MotionLabelConfig(fps=FPS, stop_speed=0.03)
    t = np.arange(30)[:, None] / FPS
    assert move_primitives(np.zeros((30, 3)), cfg) == ["stop"] * 30
    assert move_primitives(0.02 * t * np.array([0, 0, 1.0]), cfg) == ["stop"] * 30
    # move then stop
    p = np.concatenate(
        [0.3 * t * np.array([1.0, 0, 0]), np.repeat(0.3 * t[-1:] * [1.0, 0, 0], 30, 0)]
    )
    labels = move_primitives(p, cfg)
    assert labels[:27] == ["right"] * 27 and labels[-27:] == ["stop"] * 27


def test_gripper_hysteresis() -> None:
    cfg = MotionLabelConfig(fps=FPS, close_below=0.03, open_above=0.05)
    d = [0.06, 0.04, 0.029, 0.04, 0.049, 0.051, 0.04, 0.031, 0.02]
    assert gripper_states(d, cfg) == [
        "open", "open", "closed", "closed", "closed", "open", "open", "open", "closed",
    ]  # fmt: skip
    assert gripper_states([0.035], cfg) == ["closed"]  # below the band middle starts closed
    with pytest.raises(InputError, match="distances"):
        gripper_states([0.1, float("nan")], cfg)


def _pinch_forward_sequence(T: int = 40) -> np.ndarray:
    """Right hand moving forward (+z camera) at 0.2 m/s while the pinch closes 8 cm -> 1 cm."""
    base = canonical_right_hand()
    t = np.arange(T) / FPS
    gap = np.linspace(0.08, 0.01, T)
    seq = np.repeat(base[None], T, axis=0) + (0.2 * t)[:, None, None] * np.array([0, 0, 1.0])
    centre = 0.5 * (seq[:, 4] + seq[:, 8])
    seq[:, 4] = centre + 0.5 * gap[:, None] * np.array([1.0, 0, 0])
    seq[:, 8] = centre - 0.5 * gap[:, None] * np.array([1.0, 0, 0])
    return seq


def test_gripper_position_and_caption() -> None:
    seq = _pinch_forward_sequence()
    np.testing.assert_allclose(gripper_positions(seq), 0.5 * (seq[:, 4] + seq[:, 8]))
    np.testing.assert_allclose(pinch_distances(seq), np.linspace(0.08, 0.01, 40))
    cfg = MotionLabelConfig(fps=FPS)
    [(labels, text)] = label_segments(seq, [(0, 40)], "right", cfg)
    assert labels.dominant_move() == "forward"  # 26 cm in depth, far above the noise
    assert labels.gripper_change() == "close"
    assert labels.finger_action() == ("pinch", "pinch:index")
    assert text == "move the right hand forward and pinch with the right thumb and index finger"
    opening = seq[::-1]  # backward while opening
    [(_, text)] = label_segments(opening, [(0, 40)], "right", cfg)
    assert text == (
        "move the right hand backward and release the pinch of the right thumb and index finger"
    )


def test_captioner_templates_and_protocol() -> None:
    cap = TemplateCaptioner()
    still = SegmentLabels("left", 0, 3, ("stop",) * 3, ("open",) * 3)
    assert cap.caption(still) == "keep the left hand still"
    grab = SegmentLabels("left", 0, 3, ("stop",) * 3, ("open", "closed", "closed"))
    assert cap.caption(grab) == "close the left hand"
    mostly_still = SegmentLabels("right", 0, 4, ("stop", "stop", "stop", "up"), ("open",) * 4)
    assert cap.caption(mostly_still) == "keep the right hand still"

    class Fixed:
        def caption(self, labels: SegmentLabels) -> str:
            return f"N/A {labels.start}-{labels.end}"

    plugged: Captioner = Fixed()
    seq = _pinch_forward_sequence()
    out = label_segments(seq, [(0, 20), (20, 40)], "right", MotionLabelConfig(fps=FPS), plugged)
    assert [t for _, t in out] == ["N/A 0-20", "N/A 20-40"]


def test_config_and_input_validation() -> None:
    with pytest.raises(ConfigError, match="open_above"):
        MotionLabelConfig(fps=30, close_below=0.05, open_above=0.03)
    with pytest.raises(ConfigError, match="axes='world'"):
        MotionLabelConfig(fps=30, axes="world")
    with pytest.raises(ConfigError, match="fps"):
        MotionLabelConfig(fps=-1)
    with pytest.raises(InputError, match=r"\(T, 21, 3\)"):
        gripper_positions(np.zeros((5, 20, 3)))
    with pytest.raises(ConfigError, match="segment"):
        label_segments(_pinch_forward_sequence(), [(10, 5)], "right", MotionLabelConfig(fps=30))
    with pytest.raises(ConfigError, match="handedness"):
        label_segments(_pinch_forward_sequence(), [(0, 5)], "up", MotionLabelConfig(fps=30))


# ---- hand shapes, finger actions and noise-gated moves (issue 14 item 9) --------------------


def _hand_sequence(shapes: list[np.ndarray], frames_each: int = 10) -> np.ndarray:
    """Hands held ``frames_each`` frames each, placed 0.6 m in front of the camera."""
    seq = np.concatenate([np.repeat(h[None], frames_each, axis=0) for h in shapes])
    return seq + np.array([0.0, 0.0, 0.6])


def _curled(kp: np.ndarray, *fingers: str, angle: float = 1.0) -> np.ndarray:
    """Each joint of ``fingers`` flexed by ``angle`` (flexion sum 3 x angle)."""
    out = kp
    for finger in fingers:
        for joint in (2, 1, 0):  # distal first: each bend about the straight finger's axis
            out = bend_finger(out, finger, joint, angle)
    return out


def _pinched(kp: np.ndarray, finger: str) -> np.ndarray:
    """The thumb tip moved onto ``finger``'s tip (1 cm off), the rest of the hand unchanged."""
    out = kp.copy()
    tip = {"index": 8, "middle": 12, "ring": 16, "pinky": 20}[finger]
    out[4] = out[tip] + np.array([0.0, 0.0, 0.01])
    return out


def test_hand_shapes_from_joint_angles_and_fingertip_distances() -> None:
    cfg = MotionLabelConfig(fps=FPS)
    hand = canonical_right_hand()
    cases = {
        "open": hand,
        "fist": _curled(hand, "index", "middle", "ring", "pinky"),
        "point": _curled(hand, "middle", "ring", "pinky"),
        "curl:index": _curled(hand, "index"),
        "curl:ring+pinky": _curled(hand, "ring", "pinky"),
        "pinch:middle": _pinched(hand, "middle"),
        "pinch:pinky": _pinched(hand, "pinky"),
    }
    for expected, kp in cases.items():
        assert hand_shapes(_hand_sequence([kp], 3), "right", cfg) == [expected] * 3, expected
    # Hysteresis: a finger bent past curl_above stays curled until it is below straight_below.
    half = [_curled(hand, "index", angle=a) for a in (0.3, 0.75, 0.6, 0.45)]  # sums 0.9 .. 2.25
    sums = [joint_angles_sequence(h[None], "right")[0, :3, 0].sum() for h in half]
    np.testing.assert_allclose(sums, [0.9, 2.25, 1.8, 1.35], atol=1e-6)
    assert hand_shapes(_hand_sequence(half, 1), "right", cfg) == [
        "open", "curl:index", "curl:index", "open",
    ]  # fmt: skip


def test_finger_actions_and_their_captions() -> None:
    cfg = MotionLabelConfig(fps=FPS)
    hand = canonical_right_hand()
    fist = _curled(hand, "index", "middle", "ring", "pinky")
    seq = _hand_sequence([hand, fist, fist, hand, _pinched(hand, "ring"), hand], 10)
    segments = [(0, 20), (20, 35), (35, 45), (45, 60)]
    out = label_segments(seq, segments, "right", cfg)
    assert [text for _, text in out] == [
        "grasp with the right hand",
        "release the grasp of the right hand",
        "pinch with the right thumb and ring finger",
        "release the pinch of the right thumb and ring finger",
    ]
    # a shape held for less than min_action_s (0.1 s = 3 frames) is no action
    blink = _hand_sequence([hand, _pinched(hand, "index"), hand], 2)
    [(labels, text)] = label_segments(blink, [(0, 6)], "right", cfg)
    assert labels.finger_action() is None and text == "keep the right hand still"
    point = label_segments(
        _hand_sequence([hand, _curled(hand, "middle", "ring", "pinky")], 10),
        [(0, 20)],
        "right",
        cfg,
    )
    assert point[0][1] == "point with the right index finger"
    thumb = _hand_sequence([hand, _curled(hand, "ring", "pinky")], 10)
    assert label_segments(thumb, [(0, 20)], "right", cfg)[0][1] == (
        "curl the right ring and pinky fingers"
    )


def test_moves_count_only_above_the_measured_noise() -> None:
    cfg = MotionLabelConfig(fps=FPS)
    t = np.arange(30)[:, None] / FPS
    forward = 0.05 * t * np.array([0.0, 0.0, 1.0])  # 5 cm/s in depth: 1.5 cm in the segment
    depth_noise = np.array([0.001, 0.001, 0.03])  # RGB-only depth: 3 cm (dexret video)
    assert set(move_primitives(forward, cfg)) == {"forward"}  # no noise given: no gate
    assert set(move_primitives(forward, cfg, depth_noise)) == {"stop"}
    sideways = forward[:, [2, 1, 0]]  # the same motion to the right: far above 1 mm
    assert set(move_primitives(sideways, cfg, depth_noise)) == {"right"}
    # The caption's move needs the segment's net displacement above the noise (and 1.5 cm):
    hand = _hand_sequence([canonical_right_hand()], 30)
    drift = hand + 0.1 * t[:, :, None] * np.array([1.0, 0.0, 0.0])  # 10 cm/s, 9.7 cm right
    [(_, text)] = label_segments(drift, [(0, 30)], "right", cfg, noise=depth_noise)
    assert text == "move the right hand right"
    wobble = 0.012 * np.sin(2 * np.pi * t[:, :, None])  # up to 7.5 cm/s, back where it started
    small = hand + wobble * np.array([1.0, 0.0, 0.0])
    [(labels, text)] = label_segments(small, [(0, 30)], "right", cfg, noise=depth_noise)
    assert labels.moves.count("stop") < 20 and text == "keep the right hand still"


def test_noise_estimates() -> None:
    rng = np.random.default_rng(0)
    T = 300
    t = np.arange(T) / FPS
    smooth = np.stack([0.1 * np.sin(t), 0.05 * np.cos(0.5 * t), 0.6 + 0.02 * t], axis=1)
    jitter = rng.normal(0.0, [0.001, 0.002, 0.0005], size=(T, 3))
    est = position_noise(smooth + jitter, FPS)
    np.testing.assert_allclose(est, [0.001, 0.002, 0.0005], rtol=0.3)  # HF residual ~ jitter
    # Depth: the palm seen 4 % larger or smaller than the lifted hand projects means a frame
    # whose image says the hand is 4 % nearer or farther: 0.04 x 0.6 m = 2.4 cm.
    hand = _hand_sequence([canonical_right_hand()], T)
    f, c = 900.0, np.array([640.0, 360.0])
    px = f * hand[..., :2] / hand[..., 2:] + c
    scale = 1 + rng.normal(0.0, 0.04, size=T)
    wrist = px[:, :1]
    seen = wrist + (px - wrist) * scale[:, None, None]
    depth = depth_noise_from_pixels(hand, seen, f, f, c[0], c[1])
    assert depth == pytest.approx(0.6 * 0.04, rel=0.2)
    seen[:5] = np.nan  # gap-filled frames have no pixels: left out
    assert depth_noise_from_pixels(hand, seen, f, f, c[0], c[1]) == pytest.approx(depth, rel=0.1)
    assert depth_noise_from_pixels(hand[:5], seen[:5], f, f, c[0], c[1]) is None
    with pytest.raises(InputError, match="keypoints_px"):
        depth_noise_from_pixels(hand, seen[..., :1], f, f, c[0], c[1])


@pytest.fixture(scope="module")
def real_episodes():  # type: ignore[no-untyped-def]
    """The whole real dexret video (621 frames, ~15 s) through the pipeline: the hand stays put
    while each finger folds and unfolds, makes a fist, pinches each finger, then moves."""
    from conftest import SHARED_DATA

    from human_video_policy.pipeline.video_episodes import VideoPipelineConfig, process_video

    video = SHARED_DATA / "human_video" / "dexret_hand" / "human_hand_video.mp4"
    assert video.is_file(), f"shared test data missing: {video}"
    return process_video(video, VideoPipelineConfig()).episodes


FINGER_ACTIONS = ("curl", "straighten", "grasp", "release", "pinch", "point")


def test_real_video_captions_say_what_the_fingers_do(real_episodes) -> None:  # type: ignore[no-untyped-def]
    captions = [str(c) for ep in real_episodes for c in ep.arrays["captions"]]
    # before: "move the right hand left / right / backward / backward" for the first pieces
    assert captions[:4] == [
        "curl the right thumb",
        "straighten the right thumb",
        "curl the right index finger",
        "curl the right middle finger",
    ], captions
    # the whole video (docs/video_pipeline.md): before, 19 of 25 captions moved the hand
    # forward/backward while the fingers folded, pinched and made fists
    assert len(captions) == 25, captions
    assert not [c for c in captions if "forward" in c or "backward" in c], captions
    finger = [c for c in captions if c.split()[0] in FINGER_ACTIONS]
    assert len(finger) >= 20, captions
    for action in ("grasp with the right hand", "release the grasp", "pinch with the right thumb"):
        assert any(c.startswith(action) for c in captions), (action, captions)
    for ep in real_episodes:
        a = ep.arrays
        # The depth noise measured on the data is centimetres, the sideways noise about a
        # millimetre; no wrist moves farther than the noise in depth, no segment either.
        nx, ny, nz = ep.extra["motion_noise_m"]
        assert nz > 0.02 and max(nx, ny) < 0.004, ep.extra["motion_noise_m"]
        assert not {"forward", "backward"} & set(a["move_primitive"].tolist())
        for s, e in a["segments"]:
            assert abs(a["wrist_position"][e - 1, 2] - a["wrist_position"][s, 2]) < nz
