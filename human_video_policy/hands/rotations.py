"""Small numpy rotation helpers (no scipy).

Euler convention used everywhere in :mod:`human_video_policy.hands`: **intrinsic x-y-z**,
``R = Rx(a) @ Ry(b) @ Rz(c)`` with angles ``(a, b, c)`` in radians, ``b`` in [-pi/2, pi/2].
All functions accept a single matrix ``(3, 3)`` or a batch ``(..., 3, 3)``.
"""

from __future__ import annotations

import numpy as np

from human_video_policy.errors import InputError

_EPS = 1e-12


def _check_matrices(name: str, R: object) -> np.ndarray:
    arr = np.asarray(R, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-2:] != (3, 3):
        raise InputError(f"{name} must have shape (..., 3, 3), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN/inf")
    return arr


def _check_vectors(name: str, v: object) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise InputError(f"{name} must have shape (..., 3), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN/inf")
    return arr


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(b: float) -> np.ndarray:
    c, s = np.cos(b), np.sin(b)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(c_: float) -> np.ndarray:
    c, s = np.cos(c_), np.sin(c_)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def matrix_from_euler_xyz(angles: object) -> np.ndarray:
    """``(..., 3)`` intrinsic xyz angles -> ``(..., 3, 3)`` rotation ``Rx(a) Ry(b) Rz(c)``."""
    ang = _check_vectors("angles", angles)
    a, b, c = ang[..., 0], ang[..., 1], ang[..., 2]
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    R = np.empty((*ang.shape[:-1], 3, 3))
    R[..., 0, 0] = cb * cc
    R[..., 0, 1] = -cb * sc
    R[..., 0, 2] = sb
    R[..., 1, 0] = ca * sc + sa * sb * cc
    R[..., 1, 1] = ca * cc - sa * sb * sc
    R[..., 1, 2] = -sa * cb
    R[..., 2, 0] = sa * sc - ca * sb * cc
    R[..., 2, 1] = sa * cc + ca * sb * sc
    R[..., 2, 2] = ca * cb
    return R


def euler_xyz_from_matrix(R: object) -> np.ndarray:
    """Rotation ``(..., 3, 3)`` -> intrinsic xyz angles ``(..., 3)``.

    At gimbal lock (``|b| = pi/2``) the split between ``a`` and ``c`` is not unique; ``c = 0`` is
    returned there.
    """
    M = _check_matrices("R", R)
    sb = np.clip(M[..., 0, 2], -1.0, 1.0)
    b = np.arcsin(sb)
    cb = np.sqrt(np.maximum(0.0, 1.0 - sb * sb))
    regular = cb > 1e-9
    a = np.where(
        regular, np.arctan2(-M[..., 1, 2], M[..., 2, 2]), np.arctan2(M[..., 2, 1], M[..., 1, 1])
    )
    c = np.where(regular, np.arctan2(-M[..., 0, 1], M[..., 0, 0]), 0.0)
    return np.stack([a, b, c], axis=-1)


def hat(v: np.ndarray) -> np.ndarray:
    """Skew-symmetric matrix of ``(..., 3)`` vectors."""
    v = np.asarray(v, dtype=np.float64)
    z = np.zeros(v.shape[:-1])
    return np.stack(
        [
            np.stack([z, -v[..., 2], v[..., 1]], axis=-1),
            np.stack([v[..., 2], z, -v[..., 0]], axis=-1),
            np.stack([-v[..., 1], v[..., 0], z], axis=-1),
        ],
        axis=-2,
    )


def matrix_from_axis_angle(rotvec: object) -> np.ndarray:
    """Exponential map: rotation vector ``(..., 3)`` (axis * angle, rad) -> ``(..., 3, 3)``."""
    w = _check_vectors("rotvec", rotvec)
    theta = np.linalg.norm(w, axis=-1)[..., None, None]
    K = hat(w)
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    A = np.where(small, 1.0 - theta**2 / 6.0, np.sin(safe) / safe)
    B = np.where(small, 0.5 - theta**2 / 24.0, (1.0 - np.cos(safe)) / safe**2)
    return np.eye(3) + A * K + B * (K @ K)


def axis_angle_from_matrix(R: object) -> np.ndarray:
    """Logarithm map: rotation ``(..., 3, 3)`` -> rotation vector ``(..., 3)``, angle in [0, pi]."""
    M = _check_matrices("R", R)
    cos_t = np.clip((np.trace(M, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    theta = np.arccos(cos_t)
    vee = np.stack(
        [M[..., 2, 1] - M[..., 1, 2], M[..., 0, 2] - M[..., 2, 0], M[..., 1, 0] - M[..., 0, 1]],
        axis=-1,
    )
    sin_t = np.sin(theta)
    small = theta < 1e-6
    near_pi = theta > np.pi - 1e-4
    scale = np.where(
        small, 0.5 + theta**2 / 12.0, theta / (2.0 * np.where(small | near_pi, 1.0, sin_t))
    )
    out = scale[..., None] * vee
    if np.any(near_pi):
        # Near pi the antisymmetric part vanishes; the symmetric part gives n n^T exactly:
        # (R + R^T) / 2 = cos(t) I + (1 - cos(t)) n n^T.
        sym = (M + np.swapaxes(M, -1, -2)) / 2.0
        denom = np.where(near_pi, 1.0 - cos_t, 1.0)[..., None, None]
        S = (sym - cos_t[..., None, None] * np.eye(3)) / denom
        diag = np.diagonal(S, axis1=-2, axis2=-1)
        k = np.argmax(diag, axis=-1)
        col = np.take_along_axis(S, k[..., None, None].repeat(3, axis=-1), axis=-2)[..., 0, :]
        norm = np.linalg.norm(col, axis=-1, keepdims=True)
        n = col / np.where(norm > 0.0, norm, 1.0)
        # Sign: align with the (small) antisymmetric part when it is informative.
        sign = np.where(np.sum(n * vee, axis=-1) < 0.0, -1.0, 1.0)
        out = np.where(near_pi[..., None], (sign * theta)[..., None] * n, out)
    return out


def relative_rotation(R_from: object, R_to: object) -> np.ndarray:
    """Rotation ``dR`` expressed in the parent (camera) frame with ``R_to = dR @ R_from``."""
    A = _check_matrices("R_from", R_from)
    B = _check_matrices("R_to", R_to)
    return B @ np.swapaxes(A, -1, -2)


def orthonormalize(R: object) -> np.ndarray:
    """Nearest rotation matrix (SVD polar projection, det = +1)."""
    M = _check_matrices("R", R)
    U, _, Vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.ones((*M.shape[:-2], 3))
    D[..., 2] = d
    return (U * D[..., None, :]) @ Vt


def rotation_error(R: object) -> np.ndarray:
    """``max |R^T R - I|`` and ``|det R - 1|`` combined (max) per matrix."""
    M = _check_matrices("R", R)
    ortho = np.abs(np.swapaxes(M, -1, -2) @ M - np.eye(3)).max(axis=(-2, -1))
    return np.maximum(ortho, np.abs(np.linalg.det(M) - 1.0))


def is_rotation(R: object, tol: float = 1e-6) -> bool:
    """True if every matrix is orthonormal with det +1 within ``tol``."""
    return bool(np.all(rotation_error(R) <= tol))


def check_rotation(name: str, R: object, tol: float = 1e-6) -> np.ndarray:
    """Return ``R`` as float64 or raise InputError naming how far from a rotation it is."""
    M = _check_matrices(name, R)
    err = rotation_error(M)
    if np.any(err > tol):
        raise InputError(
            f"{name} is not a rotation matrix: orthonormality/det error {float(err.max()):.3g} "
            f"> tol {tol}"
        )
    return M


def matrix_to_rot6d(R: object) -> np.ndarray:
    """Rotation ``(..., 3, 3)`` -> continuous 6D representation ``(..., 6)`` (Zhou et al. 2019):
    the first two **columns** of ``R``, ``[R[:, 0], R[:, 1]]`` (x axis, then y axis)."""
    M = _check_matrices("R", R)
    return np.concatenate([M[..., :, 0], M[..., :, 1]], axis=-1)


def rot6d_to_matrix(d6: object) -> np.ndarray:
    """6D ``(..., 6)`` -> rotation ``(..., 3, 3)`` by Gram-Schmidt: ``x = unit(a1)``,
    ``y = unit(a2 - (x . a2) x)``, ``z = cross(x, y)``. Any two independent 3-vectors give a
    rotation; on rotations it inverts :func:`matrix_to_rot6d`. Zero or parallel -> InputError."""
    arr = np.asarray(d6, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != 6:
        raise InputError(f"d6 must have shape (..., 6), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("d6 contains NaN/inf")
    a1, a2 = arr[..., :3], arr[..., 3:]
    n1 = np.linalg.norm(a1, axis=-1, keepdims=True)
    x = a1 / np.where(n1 > _EPS, n1, 1.0)
    y = a2 - np.sum(x * a2, axis=-1, keepdims=True) * x
    n2 = np.linalg.norm(y, axis=-1, keepdims=True)
    size2 = np.linalg.norm(a2, axis=-1)
    bad = (n1[..., 0] <= _EPS) | (n2[..., 0] <= 1e-9 * size2) | (size2 <= _EPS)
    if np.any(bad):
        raise InputError(
            f"d6 columns are zero or parallel at {np.argwhere(np.atleast_1d(bad))[0].tolist()}: "
            "no rotation is defined"
        )
    y = y / np.where(n2 > 0.0, n2, 1.0)
    return np.stack([x, y, np.cross(x, y)], axis=-1)
