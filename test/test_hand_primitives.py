"""RAD move / gripper primitives and the template captioner."""

from __future__ import annotations

import numpy as np
import pytest
from hand_fixtures import canonical_right_hand

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.primitives import (
    Captioner,
    MotionLabelConfig,
    SegmentLabels,
    TemplateCaptioner,
    gripper_positions,
    gripper_states,
    label_segments,
    move_primitives,
    pinch_distances,
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
    assert labels.dominant_move() == "forward"
    assert labels.gripper_change() == "close"
    assert text == "move the right hand forward and close it"
    opening = seq[::-1]  # backward while opening
    [(_, text)] = label_segments(opening, [(0, 40)], "right", cfg)
    assert text == "move the right hand backward and open it"


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
