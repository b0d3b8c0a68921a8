"""Per-hand track cleaning (hands/trajectory.py) on constructed tracks with known answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hand_fixtures import canonical_right_hand

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.trajectory import (
    TrackPiece,
    TrajectoryConfig,
    gaussian_local_linear,
    process_track,
)

FPS = 30.0
HAND = canonical_right_hand()


def moving_hand(T: int, velocity=(0.3, -0.1, 0.05), start=(0.0, 0.0, 0.6)) -> np.ndarray:
    """A rigid hand translating at constant ``velocity`` (m/s), sampled at FPS."""
    t = np.arange(T) / FPS
    centre = np.asarray(start) + t[:, None] * np.asarray(velocity)
    return HAND[None] + centre[:, None, :]


def stamps(T: int) -> np.ndarray:
    return np.arange(T) / FPS


def test_clean_linear_track_is_one_unchanged_piece() -> None:
    kp = moving_hand(60)
    for smoothing in ("gaussian", "spline", "none"):
        pieces = process_track(kp, stamps(60), TrajectoryConfig(smoothing=smoothing))
        assert len(pieces) == 1
        p = pieces[0]
        assert isinstance(p, TrackPiece)
        assert (p.start, p.end, len(p)) == (0, 60, 60)
        assert not p.filled.any() and not p.outliers.any()
        # Straight-line motion passes every smoother unchanged (local-linear kernel, spline).
        assert np.allclose(p.keypoints, kp, atol=1e-6), smoothing
        assert np.array_equal(p.stamps_s, stamps(60))


def test_short_gap_is_filled_long_gap_splits() -> None:
    kp = moving_hand(120)
    kp[20:24] = np.nan  # 4 missing frames: 5/30 s = 0.167 s between observations
    kp[60:75] = np.nan  # 15 missing frames: 0.53 s
    config = TrajectoryConfig(max_gap_s=0.2, smoothing="none")
    pieces = process_track(kp, stamps(120), config)
    assert [(p.start, p.end) for p in pieces] == [(0, 60), (75, 120)]
    first = pieces[0]
    assert np.array_equal(np.flatnonzero(first.filled), np.arange(20, 24))
    # Linear motion, cubic interpolation: the filled frames are exactly on the line.
    assert np.allclose(first.keypoints[20:24], moving_hand(120)[20:24], atol=1e-9)
    assert not pieces[1].filled.any()
    # Leading and trailing missing frames belong to no piece.
    kp2 = moving_hand(30)
    kp2[:3] = kp2[-2:] = np.nan
    (only,) = process_track(kp2, stamps(30), config)
    assert (only.start, only.end) == (3, 28)


def test_gap_filling_follows_a_curve_with_cubic_interpolation() -> None:
    t = stamps(90)
    centre = np.stack([0.1 * np.sin(2 * np.pi * t), 0.05 * np.cos(2 * np.pi * t), 0.6 + 0 * t], 1)
    kp = HAND[None] + centre[:, None, :]
    holed = kp.copy()
    holed[40:44] = np.nan
    cubic = process_track(holed, t, TrajectoryConfig(smoothing="none"))[0]
    linear = process_track(holed, t, TrajectoryConfig(smoothing="none", interpolation="linear"))[0]
    err_cubic = np.abs(cubic.keypoints[40:44] - kp[40:44]).max()
    err_linear = np.abs(linear.keypoints[40:44] - kp[40:44]).max()
    assert err_cubic < 0.1 * err_linear, (err_cubic, err_linear)
    assert err_cubic < 5e-4


def test_speed_spike_is_rejected_and_replaced() -> None:
    kp = moving_hand(60)
    truth = kp.copy()
    kp[30] += [0.3, 0.0, 0.0]  # 30 cm in one frame = 9 m/s, then back: a tracking spike
    kp[45:47] += [0.0, 0.25, 0.0]  # a two-frame spike
    (piece,) = process_track(kp, stamps(60), TrajectoryConfig(smoothing="none"))
    assert np.array_equal(np.flatnonzero(piece.outliers), [30, 45, 46])
    assert not piece.filled.any()
    assert np.allclose(piece.keypoints, truth, atol=1e-9)


def test_spike_test_does_not_compare_across_long_gaps() -> None:
    """A 2-frame stretch after a long gap, 50 cm from where the hand was: a new piece, no
    outliers (its neighbours before the gap are not its neighbours)."""
    kp = moving_hand(40)
    kp[10:36] = kp[38:] = np.nan
    kp[36:38] += [0.5, 0.0, 0.0]
    pieces = process_track(kp, stamps(40), TrajectoryConfig(smoothing="none"))
    assert [(p.start, p.end) for p in pieces] == [(0, 10), (36, 38)]
    assert not any(p.outliers.any() for p in pieces)


def test_bone_length_violation_is_rejected() -> None:
    kp = moving_hand(40)
    truth = kp.copy()
    kp[12, 8] += (kp[12, 8] - kp[12, 7]) * 1.0  # index distal bone doubled (tip moves 2 cm)
    (piece,) = process_track(kp, stamps(40), TrajectoryConfig(smoothing="none"))
    assert np.array_equal(np.flatnonzero(piece.outliers), [12])
    assert np.allclose(piece.keypoints[12], truth[12], atol=1e-9)


def test_persistent_jump_splits_the_track() -> None:
    """The tracker switches to another hand 40 cm away for good: two pieces, not a spike."""
    kp = moving_hand(60)
    kp[30:] += [0.4, 0.0, 0.0]
    pieces = process_track(kp, stamps(60), TrajectoryConfig(smoothing="none"))
    assert [(p.start, p.end) for p in pieces] == [(0, 30), (30, 60)]
    assert not any(p.outliers.any() for p in pieces)


def test_gaussian_smoothing_reduces_noise_and_keeps_lines() -> None:
    rng = np.random.default_rng(0)
    truth = moving_hand(150)
    noisy = truth + rng.normal(0, 0.002, truth.shape)
    (piece,) = process_track(noisy, stamps(150), TrajectoryConfig(smoothing_sigma_s=0.05))
    before = np.sqrt(((noisy - truth) ** 2).mean())
    after = np.sqrt(((piece.keypoints - truth) ** 2).mean())
    assert after < 0.5 * before, (before, after)
    (spline,) = process_track(
        noisy, stamps(150), TrajectoryConfig(smoothing="spline", spline_lam=1e-3)
    )
    assert np.sqrt(((spline.keypoints - truth) ** 2).mean()) < 0.5 * before
    # The kernel on uneven stamps: a straight line is still reproduced exactly.
    t = np.cumsum(rng.uniform(0.01, 0.05, 50))
    y = 2.0 * t[:, None] + 1.0
    assert np.allclose(gaussian_local_linear(t, y, 0.05), y)


def test_world_space_with_camera_poses() -> None:
    """A hand still in the world, seen by a camera moving 0.5 m/s sideways: in the camera frame
    it moves; in world space it is still, and one frame without a pose counts as missing."""
    T = 40
    world = HAND + np.array([0.2, 0.1, 0.7])
    poses = np.tile(np.eye(4), (T, 1, 1))
    poses[:, 0, 3] = 0.5 * stamps(T)  # camera position (T_world_camera)
    cam = world[None] - poses[:, None, :3, 3]
    poses[10] = np.nan
    (piece,) = process_track(cam, stamps(T), TrajectoryConfig(smoothing="none"), poses)
    assert np.allclose(piece.keypoints, world[None], atol=1e-9)
    assert np.array_equal(np.flatnonzero(piece.filled), [10])
    # Rotated camera: R maps camera axes to world axes.
    R = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    rot_poses = np.tile(np.eye(4), (T, 1, 1))
    rot_poses[:, :3, :3] = R
    (rotated,) = process_track(cam, stamps(T), TrajectoryConfig(smoothing="none"), rot_poses)
    assert np.allclose(rotated.keypoints[0], cam[0] @ R.T)


def test_bad_inputs_are_clear_errors() -> None:
    kp = moving_hand(10)
    with pytest.raises(InputError, match=r"\(T, 21, 3\)"):
        process_track(kp[:, :20], stamps(10))
    with pytest.raises(InputError, match="strictly increasing"):
        process_track(kp, stamps(10)[::-1])
    with pytest.raises(InputError, match=r"stamps_s must have shape \(10,\)"):
        process_track(kp, stamps(9))
    bad = kp.copy()
    bad[2, 3, 0] = np.inf
    with pytest.raises(InputError, match="inf"):
        process_track(bad, stamps(10))
    poses = np.tile(np.eye(4), (10, 1, 1))
    poses[4, :3, :3] *= 2.0
    with pytest.raises(InputError, match=r"camera_poses\[4\]"):
        process_track(kp, stamps(10), camera_poses=poses)
    with pytest.raises(InputError, match="camera_poses must have shape"):
        process_track(kp, stamps(10), camera_poses=np.eye(4))
    assert process_track(np.full((5, 21, 3), np.nan), stamps(5)) == []


@pytest.mark.parametrize(
    "change",
    [
        {"max_speed_m_s": 0.0},
        {"max_bone_length_change": -1.0},
        {"min_bone_length_change_m": -0.01},
        {"outlier_window": 4},
        {"outlier_window": 1},
        {"max_gap_s": -0.1},
        {"interpolation": "quadratic"},
        {"smoothing": "kalman"},
        {"smoothing_sigma_s": float("nan")},
        {"min_piece_frames": 0},
    ],
)
def test_config_is_validated(change: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(change))):
        dataclasses.replace(TrajectoryConfig(), **change)
