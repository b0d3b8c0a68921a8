"""Clean a per-hand keypoint track from a video into smooth, gap-free pieces.

Input: ``(T, 21, 3)`` keypoints in metres (camera frame, or any frame) with a NaN row for every
frame where the hand was not found, their timestamps, and optionally the camera pose of every
frame. :func:`process_track`, in order:

1. **World space** (optional): with ``camera_poses`` ``(T, 4, 4)`` = ``T_world_camera`` per
   frame, keypoints are mapped to the world frame first, so camera motion is not taken for hand
   motion. A frame whose pose is NaN counts as missing.
2. **Outliers**: a frame is rejected when one of its 20 bones is longer or shorter than the
   track's median length of that bone by more than ``max_bone_length_change`` (a tracker that
   jumped to another hand or mangled the pose), or when a keypoint lies farther from the
   per-keypoint median of the ``outlier_window`` neighbouring frames than a hand moving at
   ``max_speed_m_s`` could travel in one frame (a spike).
3. **Pieces**: the remaining frames are cut wherever the time between two consecutive kept
   frames exceeds ``max_gap_s`` (a long gap) or the motion between them is faster than
   ``max_speed_m_s`` (a persistent jump: probably another hand).
4. **Gap filling**: inside a piece, missing and rejected frames are interpolated over time
   (cubic spline through the kept frames, or linear).
5. **Smoothing**: Gaussian-weighted local-linear regression over time (``smoothing_sigma_s``;
   straight-line motion and the piece ends are not biased) or a smoothing spline.

Each :class:`TrackPiece` says which input frames it covers (``[start, end)``) and which of its
frames were filled or replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.interpolate import CubicSpline, make_smoothing_spline

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.keypoints import NUM_KEYPOINTS, PARENT
from human_video_policy.validation import (
    check_choice,
    check_int_range,
    check_non_negative,
    check_positive,
)

INTERPOLATIONS = ("cubic", "linear")
SMOOTHINGS = ("gaussian", "spline", "none")
_CHILDREN = np.arange(1, NUM_KEYPOINTS)
_PARENTS = np.array(PARENT[1:])


@dataclass(frozen=True)
class TrajectoryConfig:
    """How a hand track is cleaned.

    Attributes:
        max_speed_m_s: fastest plausible keypoint speed (m/s). Human hands rarely exceed
            2-3 m/s outside sports; faster apparent motion is a tracking error.
        max_bone_length_change: largest relative change of a bone length from the track's
            median (0.3 = 30 %) before the frame is rejected. Bones do not stretch; monocular
            depth noise and foreshortening errors stay well below this.
        min_bone_length_change_m: a bone must also change by more than this many metres to
            count (short finger bones with millimetre keypoint noise change by tens of %).
        outlier_window: odd number of neighbouring kept frames (>= 3) whose median is the
            reference of the spike test; spikes up to ``outlier_window // 2`` frames long are
            caught.
        max_gap_s: longest time between two kept frames that is bridged by interpolation (s);
            a longer gap splits the track into pieces.
        interpolation: ``"cubic"`` (spline through the kept frames; linear when a piece has
            fewer than 4) or ``"linear"``.
        smoothing: ``"gaussian"`` (local-linear Gaussian kernel), ``"spline"``
            (scipy.interpolate.make_smoothing_spline) or ``"none"``.
        smoothing_sigma_s: Gaussian kernel standard deviation (s); 0 disables it.
        spline_lam: smoothing-spline penalty on the squared second derivative (time in
            seconds); 0 = chosen by generalised cross-validation (slow: seconds per 100 frames).
        min_piece_frames: shorter pieces are dropped (frames).
    """

    max_speed_m_s: float = 4.0
    max_bone_length_change: float = 0.3
    min_bone_length_change_m: float = 0.01
    outlier_window: int = 5
    max_gap_s: float = 0.2
    interpolation: str = "cubic"
    smoothing: str = "gaussian"
    smoothing_sigma_s: float = 0.03
    spline_lam: float = 1e-4
    min_piece_frames: int = 2

    def __post_init__(self) -> None:
        check_positive("max_speed_m_s", self.max_speed_m_s)
        check_positive("max_bone_length_change", self.max_bone_length_change)
        check_non_negative("min_bone_length_change_m", self.min_bone_length_change_m)
        check_int_range("outlier_window", self.outlier_window, 3, 101)
        if self.outlier_window % 2 == 0:
            raise ConfigError(f"outlier_window={self.outlier_window} is invalid: must be odd")
        check_non_negative("max_gap_s", self.max_gap_s)
        check_choice("interpolation", self.interpolation, INTERPOLATIONS)
        check_choice("smoothing", self.smoothing, SMOOTHINGS)
        check_non_negative("smoothing_sigma_s", self.smoothing_sigma_s)
        check_non_negative("spline_lam", self.spline_lam)
        check_int_range("min_piece_frames", self.min_piece_frames, 1)


@dataclass(frozen=True, eq=False)
class TrackPiece:
    """A gap-free stretch of a track.

    Attributes:
        start, end: the input frames it covers, ``[start, end)``.
        keypoints: ``(n, 21, 3)`` cleaned keypoints (m; world frame when camera poses were
            given), ``n = end - start``.
        stamps_s: ``(n,)`` the input timestamps of those frames.
        filled: ``(n,)`` frames missing in the input, interpolated.
        outliers: ``(n,)`` frames present in the input but rejected as outliers, interpolated.
    """

    start: int
    end: int
    keypoints: np.ndarray
    stamps_s: np.ndarray
    filled: np.ndarray
    outliers: np.ndarray

    def __len__(self) -> int:
        return self.end - self.start


def _check_inputs(
    keypoints: object, stamps_s: object, camera_poses: object | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        kp = np.array(keypoints, dtype=np.float64)
        stamps = np.array(stamps_s, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"keypoints and stamps_s must be numeric arrays: {exc}") from exc
    if kp.ndim != 3 or kp.shape[1:] != (NUM_KEYPOINTS, 3) or kp.shape[0] < 1:
        raise InputError(f"keypoints must have shape (T, 21, 3) with T >= 1, got {kp.shape}")
    if np.isinf(kp).any():
        raise InputError("keypoints contain inf (use NaN rows for missing frames)")
    if stamps.shape != (kp.shape[0],):
        raise InputError(f"stamps_s must have shape ({kp.shape[0]},), got {stamps.shape}")
    if not np.isfinite(stamps).all() or (np.diff(stamps) <= 0).any():
        raise InputError("stamps_s must be finite and strictly increasing (seconds)")
    present = np.isfinite(kp).all(axis=(1, 2))
    if camera_poses is not None:
        poses = np.asarray(camera_poses, dtype=np.float64)
        if poses.shape != (kp.shape[0], 4, 4):
            raise InputError(
                f"camera_poses must have shape ({kp.shape[0]}, 4, 4), got {poses.shape}"
            )
        has_pose = np.isfinite(poses).all(axis=(1, 2))
        R, t = poses[has_pose, :3, :3], poses[has_pose, :3, 3]
        err = np.abs(np.swapaxes(R, 1, 2) @ R - np.eye(3)).max(axis=(1, 2)) if len(R) else []
        bad = np.flatnonzero(has_pose)[(np.asarray(err) > 1e-4) | (np.linalg.det(R) <= 0)]
        if len(bad):
            raise InputError(
                f"camera_poses[{int(bad[0])}] is not a rigid transform (rotation not orthonormal "
                "with det +1)"
            )
        present &= has_pose
        kp[~has_pose] = np.nan
        kp[has_pose] = np.einsum("tij,tkj->tki", R, kp[has_pose]) + t[:, None, :]
    kp[~present] = np.nan
    return kp, stamps, present


def _bone_outliers(kp: np.ndarray, present: np.ndarray, config: TrajectoryConfig) -> np.ndarray:
    lengths = np.linalg.norm(kp[:, _CHILDREN] - kp[:, _PARENTS], axis=2)  # (T, 20)
    out = np.zeros(len(kp), dtype=bool)
    if present.sum() < 3:
        return out
    reference = np.median(lengths[present], axis=0)
    change = np.abs(lengths[present] - reference)
    violated = (change > config.max_bone_length_change * reference) & (
        change > config.min_bone_length_change_m
    )
    out[present] = violated.any(axis=1)
    return out


def _spike_outliers(
    kp: np.ndarray, kept: np.ndarray, stamps: np.ndarray, config: TrajectoryConfig
) -> np.ndarray:
    """Frames farther from the median of their neighbours than one frame of max-speed motion.

    Neighbours are taken only from the same stretch without a gap longer than ``max_gap_s``,
    so the hand before a long gap is not compared with the hand after it.
    """
    idx = np.flatnonzero(kept)
    out = np.zeros(len(kp), dtype=bool)
    if len(idx) < 3:
        return out
    limit = config.max_speed_m_s * float(np.median(np.diff(stamps)))
    stretch = np.concatenate([[0], np.cumsum(np.diff(stamps[idx]) > config.max_gap_s + 1e-9)])
    first = np.searchsorted(stretch, stretch, side="left")
    last = np.searchsorted(stretch, stretch, side="right")
    half = config.outlier_window // 2
    pts = kp[idx]
    for k in range(len(idx)):
        lo, hi = max(first[k], k - half), min(last[k], k + half + 1)
        if hi - lo < 3:
            continue  # too few neighbours to tell a spike from motion
        reference = np.median(pts[lo:hi], axis=0)
        if np.linalg.norm(pts[k] - reference, axis=1).max() > limit:
            out[idx[k]] = True
    return out


def _cut_points(
    kp: np.ndarray, kept_idx: np.ndarray, stamps: np.ndarray, config: TrajectoryConfig
) -> list[int]:
    """Positions k in kept_idx where a new piece starts (between kept_idx[k-1] and [k])."""
    cuts = []
    for k in range(1, len(kept_idx)):
        a, b = kept_idx[k - 1], kept_idx[k]
        gap = stamps[b] - stamps[a]
        speed = np.linalg.norm(kp[b] - kp[a], axis=1).max() / gap
        if gap > config.max_gap_s + 1e-9 or speed > config.max_speed_m_s:
            cuts.append(k)
    return cuts


def _interpolate(
    t_known: np.ndarray, y_known: np.ndarray, t_all: np.ndarray, method: str
) -> np.ndarray:
    flat = y_known.reshape(len(t_known), -1)
    if len(t_known) == 1:
        out = np.repeat(flat, len(t_all), axis=0)
    elif method == "cubic" and len(t_known) >= 4:
        out = CubicSpline(t_known, flat, axis=0, bc_type="not-a-knot")(t_all)
    else:
        out = np.stack([np.interp(t_all, t_known, flat[:, d]) for d in range(flat.shape[1])], 1)
    return out.reshape(len(t_all), *y_known.shape[1:])


def gaussian_local_linear(t: np.ndarray, y: np.ndarray, sigma_s: float) -> np.ndarray:
    """Smooth ``y`` ``(n, ...)`` sampled at times ``t`` with a Gaussian-weighted local-linear
    fit (kernel cut at 3 sigma). Straight lines pass unchanged, also at the ends."""
    if sigma_s <= 0 or len(t) < 3:
        return y.copy()
    flat = y.reshape(len(t), -1)
    out = np.empty_like(flat)
    lo = np.searchsorted(t, t - 3 * sigma_s, side="left")
    hi = np.searchsorted(t, t + 3 * sigma_s, side="right")
    for i in range(len(t)):
        d = t[lo[i] : hi[i]] - t[i]
        w = np.exp(-0.5 * (d / sigma_s) ** 2)
        ys = flat[lo[i] : hi[i]]
        s0, s1, s2 = w.sum(), (w * d).sum(), (w * d * d).sum()
        y0, y1 = w @ ys, (w * d) @ ys
        det = s0 * s2 - s1 * s1
        out[i] = (s2 * y0 - s1 * y1) / det if det > 1e-12 * s0 * s2 else y0 / s0
    return out.reshape(y.shape)


def _smooth(t: np.ndarray, y: np.ndarray, config: TrajectoryConfig) -> np.ndarray:
    if config.smoothing == "gaussian":
        return gaussian_local_linear(t, y, config.smoothing_sigma_s)
    if config.smoothing == "spline" and len(t) >= 5:
        flat = y.reshape(len(t), -1)
        lam = config.spline_lam or None
        return make_smoothing_spline(t, flat, lam=lam, axis=0)(t).reshape(y.shape)
    return y.copy()


def process_track(
    keypoints: object,
    stamps_s: object,
    config: TrajectoryConfig | None = None,
    camera_poses: object | None = None,
) -> list[TrackPiece]:
    """Outlier-free, gap-filled, smoothed pieces of one hand's track (module docstring).

    ``keypoints``: ``(T, 21, 3)`` metres, a frame with any NaN is missing; ``stamps_s``:
    ``(T,)`` strictly increasing seconds; ``camera_poses``: None or ``(T, 4, 4)``
    ``T_world_camera`` per frame. Returns the pieces in time order (possibly none).
    """
    config = config or TrajectoryConfig()
    kp, stamps, present = _check_inputs(keypoints, stamps_s, camera_poses)
    rejected = _bone_outliers(kp, present, config)
    rejected |= _spike_outliers(kp, present & ~rejected, stamps, config)
    kept = present & ~rejected
    kept_idx = np.flatnonzero(kept)
    if len(kept_idx) == 0:
        return []
    bounds = [0, *_cut_points(kp, kept_idx, stamps, config), len(kept_idx)]
    pieces = []
    for a, b in pairwise(bounds):
        known = kept_idx[a:b]
        start, end = int(known[0]), int(known[-1]) + 1
        if end - start < config.min_piece_frames:
            continue
        t_all = stamps[start:end]
        filled_kp = _interpolate(stamps[known], kp[known], t_all, config.interpolation)
        pieces.append(
            TrackPiece(
                start=start,
                end=end,
                keypoints=_smooth(t_all, filled_kp, config),
                stamps_s=t_all.copy(),
                filled=~present[start:end],
                outliers=rejected[start:end].copy(),
            )
        )
    return pieces
