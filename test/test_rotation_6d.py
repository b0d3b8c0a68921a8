"""The continuous 6D rotation representation (Zhou et al. 2019) of method A's wrist rotation."""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.errors import InputError
from human_video_policy.hands.rotations import (
    matrix_from_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
    rot_z,
    rotation_error,
)


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return matrix_from_axis_angle(axes * rng.uniform(0.0, np.pi, (n, 1)))


def test_6d_is_the_first_two_columns() -> None:
    a = 0.3
    np.testing.assert_allclose(
        matrix_to_rot6d(rot_z(a)), [np.cos(a), np.sin(a), 0.0, -np.sin(a), np.cos(a), 0.0]
    )
    R = random_rotations(5)
    d6 = matrix_to_rot6d(R)
    assert d6.shape == (5, 6)
    np.testing.assert_array_equal(d6[:, :3], R[:, :, 0])
    np.testing.assert_array_equal(d6[:, 3:], R[:, :, 1])


def test_round_trip_and_batch_shapes() -> None:
    R = random_rotations(200).reshape(10, 20, 3, 3)
    back = rot6d_to_matrix(matrix_to_rot6d(R))
    assert back.shape == (10, 20, 3, 3)
    np.testing.assert_allclose(back, R, atol=1e-12)
    np.testing.assert_allclose(rot6d_to_matrix(matrix_to_rot6d(R[0, 0])), R[0, 0], atol=1e-12)


def test_gram_schmidt_turns_any_two_independent_vectors_into_a_rotation() -> None:
    rng = np.random.default_rng(1)
    R = random_rotations(100, seed=2)
    noisy = matrix_to_rot6d(R) * rng.uniform(0.5, 2.0, (100, 1)) + rng.normal(0, 0.05, (100, 6))
    M = rot6d_to_matrix(noisy)
    assert rotation_error(M).max() < 1e-12  # orthonormal, det +1
    # x keeps the first vector's direction; y lies in the plane of the two vectors
    x = noisy[:, :3] / np.linalg.norm(noisy[:, :3], axis=1, keepdims=True)
    np.testing.assert_allclose(M[:, :, 0], x, atol=1e-12)
    np.testing.assert_allclose(np.einsum("ni,ni->n", M[:, :, 2], noisy[:, 3:]), 0.0, atol=1e-12)
    assert (np.einsum("ni,ni->n", M[:, :, 1], noisy[:, 3:]) > 0).all()
    # a noisy 6D stays near the rotation it came from
    assert np.abs(M - R).max() < 0.5


def test_bad_6d_inputs_are_refused() -> None:
    with pytest.raises(InputError, match=r"shape \(\.\.\., 6\)"):
        rot6d_to_matrix(np.zeros(5))
    with pytest.raises(InputError, match="NaN"):
        rot6d_to_matrix([1.0, 0, 0, 0, np.nan, 0])
    with pytest.raises(InputError, match="zero or parallel"):
        rot6d_to_matrix([1.0, 0, 0, 2.0, 0, 0])
    with pytest.raises(InputError, match="zero or parallel"):
        rot6d_to_matrix([[1.0, 0, 0, 0, 1, 0], [0.0, 0, 0, 0, 1, 0]])
    with pytest.raises(InputError, match="NaN"):
        matrix_to_rot6d(np.full((3, 3), np.nan))
