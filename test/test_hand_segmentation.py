"""VITRA atomic action segmentation at wrist-speed minima."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hand_fixtures import load_real_right

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.primitives import gripper_positions
from human_video_policy.hands.segmentation import (
    SegmentationConfig,
    gaussian_smooth,
    segment_wrist_trajectory,
)

FPS = 30.0


def _min_jerk_moves(durations_s, displacements, fps=FPS):
    """Back-to-back minimum-jerk moves: speed is exactly 0 at each boundary frame."""
    pts = [np.zeros(3)]
    boundaries = []
    for dur, disp in zip(durations_s, displacements, strict=True):
        n = round(dur * fps)
        tau = np.arange(1, n + 1) / n
        s = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
        start = pts[-1]
        pts.extend(start + s[:, None] * np.asarray(disp, dtype=float))
        boundaries.append(len(pts) - 1)
    return np.array(pts), boundaries[:-1]


MOVES = (
    [1.0, 0.8, 1.2, 0.9, 1.0],
    [[0.2, 0, 0], [0, 0.15, 0.05], [0, 0, -0.25], [-0.1, -0.1, 0], [0.1, 0, 0.1]],
)


@pytest.mark.parametrize("noise", [0.0, 3e-4])
def test_cuts_at_known_speed_minima(noise: float) -> None:
    traj, expected = _min_jerk_moves(*MOVES)
    traj = traj + np.random.default_rng(0).normal(scale=noise, size=traj.shape)
    result = segment_wrist_trajectory(traj, SegmentationConfig(fps=FPS, min_segment_s=0.3))
    assert len(result.cut_points) == len(expected), (result.cut_points, expected)
    assert np.abs(np.array(result.cut_points) - np.array(expected)).max() <= 2
    # Segments tile the sequence in order with consistent statistics.
    segs = result.segments
    assert segs[0].start == 0 and segs[-1].end == len(traj)
    assert all(a.end == b.start for a, b in itertools.pairwise(segs))
    for seg in segs:
        assert seg.duration_s == pytest.approx((seg.end - seg.start) / FPS)
        assert seg.mean_speed == pytest.approx(seg.path_length / seg.duration_s)
    # Each move's path length (0.2 m for the first) is recovered by its segment.
    assert segs[0].path_length == pytest.approx(0.2, abs=0.02)


def test_pause_gives_one_cut_inside_the_pause() -> None:
    a, _ = _min_jerk_moves([1.0], [[0.2, 0, 0]])
    b, _ = _min_jerk_moves([1.0], [[0, 0.2, 0]])
    pause = np.repeat(a[-1:], 11, axis=0)
    traj = np.concatenate([a, pause, a[-1] + b[1:]])
    result = segment_wrist_trajectory(traj, SegmentationConfig(fps=FPS))
    assert len(result.cut_points) == 1
    assert len(a) - 1 <= result.cut_points[0] <= len(a) + 10


def test_min_segment_length_respected() -> None:
    traj, expected = _min_jerk_moves([0.4, 0.4, 0.4, 1.2, 0.4], np.eye(3)[[0, 1, 2, 0, 1]] * 0.1)
    short = segment_wrist_trajectory(traj, SegmentationConfig(fps=FPS, min_segment_s=0.2))
    assert len(short.cut_points) == len(expected)
    cfg = SegmentationConfig(fps=FPS, min_segment_s=1.0)
    result = segment_wrist_trajectory(traj, cfg)
    assert len(result.cut_points) < len(expected)
    assert all(s.end - s.start >= cfg.min_segment_frames for s in result.segments)
    # Every kept cut is still one of the true minima.
    assert all(min(abs(c - e) for e in expected) <= 2 for c in result.cut_points)


def test_still_trajectory_is_one_segment() -> None:
    result = segment_wrist_trajectory(np.ones((40, 3)), SegmentationConfig(fps=FPS))
    assert [(s.start, s.end) for s in result.segments] == [(0, 40)]
    assert result.segments[0].path_length == 0.0


def test_gaussian_smoothing_preserves_lines_and_constants() -> None:
    line = np.linspace(0, 1, 50)[:, None] * np.array([[1.0, -2.0, 0.5]])
    sm = gaussian_smooth(line, 2.0)
    np.testing.assert_allclose(sm[8:-8], line[8:-8], atol=1e-12)
    np.testing.assert_allclose(gaussian_smooth(np.full((9, 3), 4.0), 3.0), 4.0)


def test_config_and_input_validation() -> None:
    with pytest.raises(ConfigError, match="fps=0"):
        SegmentationConfig(fps=0)
    with pytest.raises(ConfigError, match=r"window_s=-0\.5"):
        SegmentationConfig(fps=30, window_s=-0.5)
    with pytest.raises(ConfigError, match="sigma_s"):
        SegmentationConfig(fps=30, sigma_s=float("nan"))
    with pytest.raises(ConfigError, match="min_segment_s"):
        SegmentationConfig(fps=30, min_segment_s=-1)
    assert SegmentationConfig(fps=30).half_window == 8  # 0.5 s centred window = 17 frames
    with pytest.raises(InputError, match=r"\(T, 3\)"):
        segment_wrist_trajectory(np.zeros((10, 2)), SegmentationConfig(fps=30))
    bad = np.zeros((10, 3))
    bad[4, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        segment_wrist_trajectory(bad, SegmentationConfig(fps=30))


def test_real_data_segments_cover_sequence_in_order() -> None:
    # The file is wrist-relative (wrist = 0 in every frame), so the moving point segmented here
    # is the RAD gripper point (thumb/index tip mean) relative to the wrist.
    data = load_real_right()
    cfg = SegmentationConfig(fps=30.0)
    result = segment_wrist_trajectory(gripper_positions(data), cfg)
    segs = result.segments
    assert len(segs) >= 2
    assert segs[0].start == 0 and segs[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(segs))
    assert all(s.end - s.start >= cfg.min_segment_frames for s in segs)
    assert all(np.isfinite([s.path_length, s.mean_speed]).all() for s in segs)
    assert np.isfinite(result.speed).all() and result.speed.shape == (len(data),)
