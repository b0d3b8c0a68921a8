"""Method A wrist pose and the rotation helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hand_fixtures import canonical_right_hand, load_real_right, mirror_to_left, random_rotation

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands import rotations as rot
from human_video_policy.hands.wrist_pose import (
    wrist_pose_from_keypoints,
    wrist_poses_from_keypoints,
)


def test_canonical_right_hand_is_identity_pose() -> None:
    R, p = wrist_pose_from_keypoints(canonical_right_hand(), "right")
    np.testing.assert_allclose(R, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(p, 0.0, atol=1e-15)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("handedness", ["right", "left"])
def test_rotated_hand_gives_exactly_that_rotation(seed: int, handedness: str) -> None:
    rng = np.random.default_rng(seed)
    Q, t = random_rotation(rng), rng.normal(size=3)
    hand = (
        canonical_right_hand() if handedness == "right" else mirror_to_left(canonical_right_hand())
    )
    R, p = wrist_pose_from_keypoints(hand @ Q.T + t, handedness)
    np.testing.assert_allclose(R, Q, atol=1e-12)
    np.testing.assert_allclose(p, t, atol=1e-12)
    assert rot.is_rotation(R, tol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-12)


def test_palm_side_and_wrong_handedness() -> None:
    # Right hand palm down (toward -Z), fingers along +X, thumb toward +Y (left).
    Q = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])  # rotation by pi about x
    hand = canonical_right_hand() @ Q.T
    R, _ = wrist_pose_from_keypoints(hand, "right")
    np.testing.assert_allclose(R[:, 2], [0, 0, -1], atol=1e-12)  # z toward the palm: down
    np.testing.assert_allclose(R[:, 0], [1, 0, 0], atol=1e-12)
    # Calling it a left hand flips z to the back of the hand (still a proper rotation).
    R_left, _ = wrist_pose_from_keypoints(hand, "left")
    np.testing.assert_allclose(R_left[:, 2], [0, 0, 1], atol=1e-12)
    assert np.linalg.det(R_left) == pytest.approx(1.0)


def test_batched_matches_single_and_is_orthonormal() -> None:
    rng = np.random.default_rng(3)
    seq = np.stack(
        [canonical_right_hand() @ random_rotation(rng).T + rng.normal(size=3) for _ in range(7)]
    )
    seq += rng.normal(scale=2e-3, size=seq.shape)  # noisy keypoints still give rotations
    R, p = wrist_poses_from_keypoints(seq, "right")
    assert R.shape == (7, 3, 3) and p.shape == (7, 3)
    assert np.all(rot.rotation_error(R) < 1e-12)
    for t in range(7):
        R1, p1 = wrist_pose_from_keypoints(seq[t], "right")
        np.testing.assert_allclose(R1, R[t], atol=1e-12)
        np.testing.assert_allclose(p1, p[t])


def test_real_data_wrist_pose_orthonormal_on_all_frames() -> None:
    data = load_real_right()
    assert data.shape == (621, 21, 3)
    R, p = wrist_poses_from_keypoints(data, "right")
    assert np.all(rot.rotation_error(R) < 1e-9)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    np.testing.assert_allclose(p, data[:, 0])
    # z points to the side the fingertips curl to (palm side) in the first frame.
    tips = data[0, [8, 12, 16, 20]] - data[0, 0]
    assert np.all(tips @ R[0][:, 2] > 0)


def test_bad_inputs_raise_clear_errors() -> None:
    kp = canonical_right_hand()
    with pytest.raises(InputError, match=r"shape \(21, 3\)"):
        wrist_pose_from_keypoints(kp[:20], "right")
    bad = kp.copy()
    bad[9, 1] = np.nan
    with pytest.raises(InputError, match=r"NaN.*\(9, 1\)"):
        wrist_pose_from_keypoints(bad, "right")
    with pytest.raises(InputError, match=r"\(T, 21, 3\)"):
        wrist_poses_from_keypoints(kp, "right")
    with pytest.raises(ConfigError, match="handedness"):
        wrist_pose_from_keypoints(kp, "both")
    collinear = kp.copy()
    collinear[5] = 0.5 * collinear[9]
    with pytest.raises(InputError, match="collinear at frame 0"):
        wrist_pose_from_keypoints(collinear, "right")


def test_euler_and_axis_angle_round_trips() -> None:
    rng = np.random.default_rng(0)
    ang = rng.uniform([-3, -1.5, -3], [3, 1.5, 3], size=(200, 3))
    R = rot.matrix_from_euler_xyz(ang)
    assert np.all(rot.rotation_error(R) < 1e-12)
    np.testing.assert_allclose(rot.euler_xyz_from_matrix(R), ang, atol=1e-9)
    np.testing.assert_allclose(
        R[5], rot.rot_x(ang[5, 0]) @ rot.rot_y(ang[5, 1]) @ rot.rot_z(ang[5, 2])
    )
    axes = rng.normal(size=(200, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0, np.pi - 1e-3, 197), [0.0, 1e-9, np.pi - 1e-6]])
    vec = axes * angles[:, None]
    back = rot.axis_angle_from_matrix(rot.matrix_from_axis_angle(vec))
    np.testing.assert_allclose(
        rot.matrix_from_axis_angle(back), rot.matrix_from_axis_angle(vec), atol=1e-9
    )
    np.testing.assert_allclose(back[:-1], vec[:-1], atol=1e-7)
    A, B = R[0], R[1]
    np.testing.assert_allclose(rot.relative_rotation(A, B) @ A, B, atol=1e-12)
    with pytest.raises(InputError, match="not a rotation"):
        rot.check_rotation("R", 2.0 * np.eye(3))
    assert rot.is_rotation(rot.orthonormalize(np.eye(3) + 0.1 * rng.normal(size=(3, 3))))
