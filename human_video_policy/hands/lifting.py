"""Lift a detected hand to metric 3D in the camera optical frame (x right, y down, z forward).

A tracker gives, per hand, 21 pixel keypoints and a metric 3D hand whose origin is arbitrary
(MediaPipe world landmarks: hand-centred, axes parallel to the camera's). Lifting finds the
translation ``t`` that places that hand in the camera frame; the model's shape and scale are
kept, so ``keypoints_cam = keypoints_world + t``.

- :func:`lift_rgb` (monocular): ``t`` such that the projection of ``keypoints_world + t``
  matches the 2D keypoints (linear least squares on the projection equations, then
  Gauss-Newton on the pixel reprojection error). The rotation is fixed: the world landmarks
  already are in camera axes. The absolute depth is only as right as the model's hand size and
  the focal length (use :meth:`CameraIntrinsics.from_fov` when the intrinsics are unknown).
- :func:`lift_rgbd`: each keypoint's depth is the median of the valid depths in a small window
  around its pixel, pushed back by ``surface_offset_m`` (the camera sees the skin, not the
  joint centre), back-projected, and ``t`` is the robust (Huber) fit of the model hand to these
  points. With too few depths that agree, it falls back to :func:`lift_rgb` and says why.

Conventions and formulas: docs/hand_lifting.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from human_video_policy.camera.pinhole import CameraExtrinsics, CameraIntrinsics
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.keypoints import NUM_KEYPOINTS, WRIST
from human_video_policy.hands.tracker import HandDetection
from human_video_policy.validation import (
    check_int_range,
    check_non_negative,
    check_positive,
    check_range,
)

#: A detection whose 2D keypoints all lie within this many pixels of their centre is degenerate:
#: any depth "explains" it (the hand would be placed absurdly far away).
MIN_HAND_SPREAD_PX = 2.0

METHOD_RGB = "rgb"
METHOD_RGBD = "rgbd"
METHOD_RGBD_FALLBACK = "rgbd_fallback_rgb"
METHOD_RGB_TRACK = "rgb_track"

#: Keypoints whose mean distance to the wrist is a frame's palm size (index/middle/ring/pinky
#: MCP): rigid, unlike finger lengths that change with curl in the model hand.
PALM_SIZE_KEYPOINTS = (5, 9, 13, 17)


@dataclass(frozen=True)
class LiftingConfig:
    """How depth is read and trusted.

    Attributes:
        depth_window_px: half-size of the square window sampled around each keypoint (2 ->
            5x5 pixels); the median of its valid depths is the keypoint's depth.
        min_window_valid_fraction: fraction of the window's pixels that must hold a valid depth
            for the keypoint to get one (0..1).
        min_depth_m, max_depth_m: depths outside this range (and 0 / NaN) are "no measurement".
        surface_offset_m: distance from the visible skin to the joint centre along the optical
            axis (about a finger radius, 0.008 m); added to every measured depth.
        min_valid_keypoints: fewer keypoints with a depth that agrees with the fit (inliers)
            than this and lift_rgbd falls back to the RGB-only estimate.
        inlier_threshold_m: a back-projected keypoint farther than this from the fitted hand is
            an outlier (occluded by an object, background behind a finger edge, depth noise).
        huber_delta_m: Huber loss width of the translation fit (m).
    """

    depth_window_px: int = 2
    min_window_valid_fraction: float = 0.2
    min_depth_m: float = 0.1
    max_depth_m: float = 6.0
    surface_offset_m: float = 0.008
    min_valid_keypoints: int = 6
    inlier_threshold_m: float = 0.03
    huber_delta_m: float = 0.01

    def __post_init__(self) -> None:
        check_int_range("depth_window_px", self.depth_window_px, 0, 50)
        check_range("min_window_valid_fraction", self.min_window_valid_fraction, 0.0, 1.0)
        check_positive("min_depth_m", self.min_depth_m)
        check_positive("max_depth_m", self.max_depth_m)
        if self.max_depth_m <= self.min_depth_m:
            raise ConfigError(
                f"max_depth_m={self.max_depth_m} is invalid: must be > min_depth_m="
                f"{self.min_depth_m}"
            )
        check_non_negative("surface_offset_m", self.surface_offset_m)
        check_int_range("min_valid_keypoints", self.min_valid_keypoints, 3, NUM_KEYPOINTS)
        check_positive("inlier_threshold_m", self.inlier_threshold_m)
        check_positive("huber_delta_m", self.huber_delta_m)


@dataclass(frozen=True, eq=False)
class LiftedHand:
    """One hand placed in the camera optical frame, with a per-frame quality report.

    Attributes:
        keypoints_cam: ``(21, 3)`` metres, camera optical frame (x right, y down, z forward).
        method: ``"rgb"``, ``"rgbd"`` or ``"rgbd_fallback_rgb"``.
        translation: ``(3,)`` the ``t`` added to the model's hand (m).
        valid_depth_fraction: keypoints that got a depth measurement / 21 (0 for ``"rgb"``).
        inlier_count: keypoints whose depth agreed with the fitted hand (0 for RGB only).
        depth_residual_m: median distance of those inliers to the fitted hand (NaN for RGB).
        reprojection_error_px: mean pixel distance between the projected ``keypoints_cam``
            and the detected 2D keypoints.
        fallback_reason: why RGB-D fell back to RGB (empty otherwise).
        handedness, confidence: copied from the detection.
    """

    keypoints_cam: np.ndarray
    method: str
    translation: np.ndarray
    valid_depth_fraction: float
    inlier_count: int
    depth_residual_m: float
    reprojection_error_px: float
    fallback_reason: str
    handedness: str
    confidence: float

    def in_base(self, extrinsics: CameraExtrinsics) -> np.ndarray:
        """``(21, 3)`` keypoints in the robot base frame."""
        return extrinsics.points_to_base(self.keypoints_cam)


def _check_detection(detection: HandDetection) -> HandDetection:
    if not isinstance(detection, HandDetection):
        raise InputError(f"detection must be a HandDetection, got {type(detection).__name__}")
    return detection


def _check_intrinsics(K: CameraIntrinsics) -> CameraIntrinsics:
    if not isinstance(K, CameraIntrinsics):
        raise InputError(
            f"intrinsics must be a hands.camera.CameraIntrinsics, got {type(K).__name__}"
        )
    return K


def _reprojection_error(points: np.ndarray, pixels: np.ndarray, K: CameraIntrinsics) -> float:
    if (points[:, 2] <= 0).any():
        return float("inf")
    return float(np.linalg.norm(K.project(points) - pixels, axis=1).mean())


def solve_translation_rgb(
    keypoints_world: np.ndarray, keypoints_px: np.ndarray, K: CameraIntrinsics
) -> np.ndarray:
    """The ``t`` for which ``K (keypoints_world + t)`` best matches ``keypoints_px``.

    Linear least squares on ``fx (X + tx) = (u - cx) (Z + tz)`` (and the same for y), then
    5 Gauss-Newton steps on the pixel error. Raises InputError when no placement in front of
    the camera exists (degenerate or inconsistent input).
    """
    W = np.asarray(keypoints_world, dtype=np.float64)
    uv = np.asarray(keypoints_px, dtype=np.float64)
    spread = float(np.linalg.norm(uv - uv.mean(axis=0), axis=1).max())
    if spread < MIN_HAND_SPREAD_PX:
        raise InputError(
            f"the hand cannot be placed: its 2D keypoints lie within {spread:.2g} px of each "
            f"other (degenerate detection; at least {MIN_HAND_SPREAD_PX} px needed)"
        )
    a = (uv[:, 0] - K.cx) / K.fx
    b = (uv[:, 1] - K.cy) / K.fy
    n = W.shape[0]
    A = np.zeros((2 * n, 3))
    A[:n, 0], A[:n, 2] = 1.0, -a
    A[n:, 1], A[n:, 2] = 1.0, -b
    rhs = np.concatenate([a * W[:, 2] - W[:, 0], b * W[:, 2] - W[:, 1]])
    t, *_ = np.linalg.lstsq(A, rhs, rcond=None)
    for _ in range(5):
        P = W + t
        z = P[:, 2]
        if (z <= 1e-6).any():
            break
        r = np.concatenate(
            [K.fx * P[:, 0] / z + K.cx - uv[:, 0], K.fy * P[:, 1] / z + K.cy - uv[:, 1]]
        )
        J = np.zeros((2 * n, 3))
        J[:n, 0] = K.fx / z
        J[:n, 2] = -K.fx * P[:, 0] / z**2
        J[n:, 1] = K.fy / z
        J[n:, 2] = -K.fy * P[:, 1] / z**2
        step, *_ = np.linalg.lstsq(J, -r, rcond=None)
        t = t + step
        if np.linalg.norm(step) < 1e-9:
            break
    if not np.isfinite(t).all() or ((W + t)[:, 2] <= 0).any():
        raise InputError(
            "the hand cannot be placed in front of the camera: its 2D keypoints and metric 3D "
            f"keypoints disagree (solved translation {np.round(t, 4).tolist()} m)"
        )
    return t


def lift_rgb(detection: HandDetection, K: CameraIntrinsics) -> LiftedHand:
    """Metric camera-frame keypoints from one RGB detection (see the module docstring)."""
    _check_detection(detection)
    _check_intrinsics(K)
    return _rgb_result(detection, K, METHOD_RGB, 0.0, "")


def _rgb_result(
    detection: HandDetection,
    K: CameraIntrinsics,
    method: str,
    valid_fraction: float,
    reason: str,
) -> LiftedHand:
    t = solve_translation_rgb(detection.keypoints_world, detection.keypoints_px, K)
    points = detection.keypoints_world + t
    return LiftedHand(
        keypoints_cam=points,
        method=method,
        translation=t,
        valid_depth_fraction=valid_fraction,
        inlier_count=0,
        depth_residual_m=float("nan"),
        reprojection_error_px=_reprojection_error(points, detection.keypoints_px, K),
        fallback_reason=reason,
        handedness=detection.handedness,
        confidence=detection.confidence,
    )


def _check_depth(depth: object, depth_scale: float) -> np.ndarray:
    check_positive("depth_scale", depth_scale)
    arr = np.asarray(depth)
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise InputError(f"depth image must have shape (H, W), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"depth image dtype {arr.dtype} is invalid: use uint16 or float32")
    return arr


def _to_metres(values: np.ndarray, depth_scale: float) -> np.ndarray:
    """Depth values as float64 metres, NaN where there is no measurement."""
    if np.issubdtype(values.dtype, np.integer):
        metres = values.astype(np.float64) * depth_scale
    else:
        metres = values.astype(np.float64)
    metres[~np.isfinite(metres) | (metres <= 0)] = np.nan
    return metres


def depth_to_metres(depth: object, depth_scale: float = 0.001) -> np.ndarray:
    """An ``(H, W)`` depth image as float64 metres, NaN where there is no measurement.

    Integer images (e.g. RealSense 16UC1) are multiplied by ``depth_scale`` (metres per unit,
    0.001 for millimetres) and 0 means "no measurement"; float images are already metres and
    ``depth_scale`` is not applied.
    """
    return _to_metres(_check_depth(depth, depth_scale), depth_scale)


def sample_keypoint_depths(
    depth: np.ndarray,
    keypoints_px: np.ndarray,
    config: LiftingConfig,
    depth_scale: float = 0.001,
) -> np.ndarray:
    """``(21,)`` median depth (m) in the window around each keypoint; NaN where none.

    ``depth`` as for :func:`depth_to_metres`; only the windows are converted.
    """
    height, width = depth.shape
    r = config.depth_window_px
    area = (2 * r + 1) ** 2
    out = np.full(len(keypoints_px), np.nan)
    for i, (u, v) in enumerate(np.rint(keypoints_px).astype(np.int64)):
        if not (0 <= u < width and 0 <= v < height):
            continue
        window = _to_metres(
            depth[max(v - r, 0) : v + r + 1, max(u - r, 0) : u + r + 1], depth_scale
        )
        good = window[(window >= config.min_depth_m) & (window <= config.max_depth_m)]
        if good.size >= max(1, config.min_window_valid_fraction * area):
            out[i] = float(np.median(good))
    return out


def _huber_translation(
    model: np.ndarray, measured: np.ndarray, delta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Robust ``t`` minimising sum Huber(|model + t - measured|); returns (t, residuals)."""
    diff = measured - model
    t = np.median(diff, axis=0)
    for _ in range(20):
        res = np.linalg.norm(diff - t, axis=1)
        w = np.minimum(1.0, delta / np.maximum(res, 1e-12))
        t_new = (w[:, None] * diff).sum(axis=0) / w.sum()
        if np.linalg.norm(t_new - t) < 1e-9:
            t = t_new
            break
        t = t_new
    return t, np.linalg.norm(diff - t, axis=1)


def lift_rgbd(
    detection: HandDetection,
    depth: object,
    K: CameraIntrinsics,
    depth_scale: float = 0.001,
    config: LiftingConfig | None = None,
) -> LiftedHand:
    """Metric camera-frame keypoints from a detection and a depth image aligned to its image.

    ``depth``: ``(K.height, K.width)``; uint16 in units of ``depth_scale`` metres (0 = none) or
    float metres (NaN / 0 = none). Falls back to :func:`lift_rgb` (``method ==
    "rgbd_fallback_rgb"``, ``fallback_reason`` says why) when fewer than
    ``config.min_valid_keypoints`` keypoints have a depth that agrees with the fit.
    """
    _check_detection(detection)
    _check_intrinsics(K)
    config = config or LiftingConfig()
    raw = _check_depth(depth, depth_scale)
    if raw.shape != (K.height, K.width):
        raise InputError(
            f"depth image is {raw.shape[1]}x{raw.shape[0]} but the intrinsics are for "
            f"{K.width}x{K.height}: the depth must be aligned to the colour image"
        )
    z = sample_keypoint_depths(raw, detection.keypoints_px, config, depth_scale)
    valid = np.isfinite(z)
    n_valid = int(valid.sum())
    fraction = n_valid / NUM_KEYPOINTS
    if n_valid < config.min_valid_keypoints:
        reason = (
            f"only {n_valid} of 21 keypoints have a valid depth "
            f"(min_valid_keypoints={config.min_valid_keypoints})"
        )
        return _rgb_result(detection, K, METHOD_RGBD_FALLBACK, fraction, reason)
    measured = K.backproject(detection.keypoints_px[valid], z[valid] + config.surface_offset_m)
    model = detection.keypoints_world[valid]
    t, residuals = _huber_translation(model, measured, config.huber_delta_m)
    inliers = residuals <= config.inlier_threshold_m
    n_inliers = int(inliers.sum())
    if n_inliers < config.min_valid_keypoints:
        reason = (
            f"only {n_inliers} of {n_valid} keypoint depths agree with one hand placement "
            f"within {config.inlier_threshold_m} m (min_valid_keypoints="
            f"{config.min_valid_keypoints}); depth occluded or misaligned?"
        )
        return _rgb_result(detection, K, METHOD_RGBD_FALLBACK, fraction, reason)
    # Refit on the inliers only, so a few occluded keypoints do not pull the hand.
    t, residuals = _huber_translation(model[inliers], measured[inliers], config.huber_delta_m)
    points = detection.keypoints_world + t
    return LiftedHand(
        keypoints_cam=points,
        method=METHOD_RGBD,
        translation=t,
        valid_depth_fraction=fraction,
        inlier_count=n_inliers,
        depth_residual_m=float(np.median(residuals)),
        reprojection_error_px=_reprojection_error(points, detection.keypoints_px, K),
        fallback_reason="",
        handedness=detection.handedness,
        confidence=detection.confidence,
    )


def lift_hand(
    detection: HandDetection,
    K: CameraIntrinsics,
    depth: object | None = None,
    depth_scale: float = 0.001,
    config: LiftingConfig | None = None,
) -> LiftedHand:
    """:func:`lift_rgbd` when a depth image is given, else :func:`lift_rgb`."""
    if depth is None:
        return lift_rgb(detection, K)
    return lift_rgbd(detection, depth, K, depth_scale, config)


# -- a whole RGB-only track ---------------------------------------------------------------------


@dataclass(frozen=True)
class TrackDepthConfig:
    """How :func:`lift_rgb_track` stabilises the monocular depth of one hand's track.

    Measured on the dexret video (docs/hand_lifting.md): per-frame :func:`lift_rgb` puts the
    wrist 0.58-0.85 m away (std 5.5 cm) although the hand stays put; with these defaults the
    std is 0.7 cm. The price: real motion towards / away from the camera is low-passed too.

    Attributes:
        normalise_hand_size: rescale every frame's model hand (about its wrist) so that its
            palm size (mean wrist -> index/middle/ring/pinky MCP distance) is the median over
            the run: a hand does not change size, MediaPipe's metric hand does (cv ~5 %).
        median_window_s: width (s) of the running median applied to the raw wrist depth
            before smoothing; removes single-frame depth spikes. 0 = off.
        depth_sigma_s: standard deviation (s) of the Gaussian-weighted local-linear regression
            of the wrist depth over time (unbiased for constant-speed depth motion, also at
            the ends of a run). Depth oscillations of frequency ``0.187 / depth_sigma_s`` Hz
            keep half their amplitude (2 s: periods shorter than ~11 s are mostly removed).
            0 = no smoothing.
        max_gap_s: detections farther apart in time than this start a new run, which gets
            its own hand size and is filtered on its own (the hand may have moved meanwhile).
        anchor_wrist: place each frame's hand so that its wrist projects exactly onto the
            detected 2D wrist at the filtered depth (segmentation and actions follow the
            wrist, and the tracker's 2D wrist is steadier than the wrist of a whole-hand fit).
            False: keep the per-frame fit's lateral placement and move the hand along the
            ray through its fitted wrist.
    """

    normalise_hand_size: bool = True
    median_window_s: float = 0.5
    depth_sigma_s: float = 2.0
    max_gap_s: float = 0.5
    anchor_wrist: bool = True

    def __post_init__(self) -> None:
        for name in ("normalise_hand_size", "anchor_wrist"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid: must be a bool")
        check_range("median_window_s", self.median_window_s, 0.0, 60.0)
        check_range("depth_sigma_s", self.depth_sigma_s, 0.0, 60.0)
        check_positive("max_gap_s", self.max_gap_s)


def _running_median(stamps: np.ndarray, values: np.ndarray, width_s: float) -> np.ndarray:
    lo = np.searchsorted(stamps, stamps - width_s / 2.0, side="left")
    hi = np.searchsorted(stamps, stamps + width_s / 2.0, side="right")
    return np.array([np.median(values[a:b]) for a, b in zip(lo, hi, strict=True)])


def _local_linear(stamps: np.ndarray, values: np.ndarray, sigma_s: float) -> np.ndarray:
    lo = np.searchsorted(stamps, stamps - 4.0 * sigma_s, side="left")
    hi = np.searchsorted(stamps, stamps + 4.0 * sigma_s, side="right")
    out = np.empty_like(values)
    for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
        d = stamps[a:b] - stamps[i]
        w = np.exp(-0.5 * (d / sigma_s) ** 2)
        s0, s1, s2 = w.sum(), (w * d).sum(), (w * d * d).sum()
        t0, t1 = (w * values[a:b]).sum(), (w * d * values[a:b]).sum()
        det = s0 * s2 - s1 * s1
        out[i] = (s2 * t0 - s1 * t1) / det if det > 1e-12 * s0 * s2 else t0 / s0
    return out


def smooth_depth(stamps_s: object, depth_m: object, config: TrackDepthConfig) -> np.ndarray:
    """The wrist depth of one run after the running median and the local-linear smoothing.

    ``stamps_s`` strictly increasing seconds, ``depth_m`` positive metres, same length.
    """
    stamps = np.asarray(stamps_s, dtype=np.float64)
    z = np.asarray(depth_m, dtype=np.float64)
    if stamps.ndim != 1 or z.shape != stamps.shape:
        raise InputError(f"stamps {stamps.shape} and depths {z.shape} must be equal-length 1D")
    if not (np.isfinite(z).all() and (z > 0).all()):
        raise InputError("depths must be finite and positive (m)")
    if config.median_window_s > 0:
        z = _running_median(stamps, z, config.median_window_s)
    if config.depth_sigma_s > 0 and z.size > 1:
        z = _local_linear(stamps, z, config.depth_sigma_s)
    return z


def _check_track(
    detections: Sequence[HandDetection | None], stamps_s: object
) -> tuple[list[int], np.ndarray]:
    stamps = np.asarray(stamps_s, dtype=np.float64)
    if stamps.ndim != 1 or stamps.shape[0] != len(detections):
        raise InputError(
            f"stamps_s must be 1D with one stamp per detection ({len(detections)}), got shape "
            f"{stamps.shape}"
        )
    if not np.isfinite(stamps).all() or (np.diff(stamps) <= 0).any():
        raise InputError("stamps_s must be finite and strictly increasing (s)")
    for i, det in enumerate(detections):
        if det is not None and not isinstance(det, HandDetection):
            raise InputError(
                f"detections[{i}] must be a HandDetection or None, got {type(det).__name__}"
            )
    return [i for i, det in enumerate(detections) if det is not None], stamps


def _palm_size(world: np.ndarray) -> np.ndarray:
    """``(n,)`` mean distance (m) from the wrist to the four finger MCPs of ``(n, 21, 3)``."""
    return np.linalg.norm(
        world[:, list(PALM_SIZE_KEYPOINTS)] - world[:, WRIST : WRIST + 1], axis=2
    ).mean(axis=1)


def lift_rgb_track(
    detections: Sequence[HandDetection | None],
    stamps_s: object,
    K: CameraIntrinsics,
    config: TrackDepthConfig | None = None,
) -> list[LiftedHand | None]:
    """Metric camera-frame keypoints for one hand's track from RGB only, with stable depth.

    ``detections``: one entry per frame (None where the hand was not found), ``stamps_s``
    their times. Per run of detections (split at gaps > ``max_gap_s``): the model hands get
    one size (``normalise_hand_size``), each frame is solved as in :func:`lift_rgb`, the wrist
    depths are filtered (:func:`smooth_depth`) and each hand is placed at its filtered depth
    (``anchor_wrist``). Returns a :class:`LiftedHand` (``method == "rgb_track"``) or None per
    frame. Raises InputError for a frame that cannot be placed (as :func:`lift_rgb`).
    """
    _check_intrinsics(K)
    config = config or TrackDepthConfig()
    valid, stamps = _check_track(detections, stamps_s)
    out: list[LiftedHand | None] = [None] * len(detections)
    if not valid:
        return out
    breaks = np.flatnonzero(np.diff(stamps[valid]) > config.max_gap_s) + 1
    for run in np.split(np.asarray(valid), breaks):
        dets = [det for i in run if (det := detections[i]) is not None]
        world = np.stack([d.keypoints_world for d in dets]).astype(np.float64)
        pixels = np.stack([d.keypoints_px for d in dets]).astype(np.float64)
        if config.normalise_hand_size:
            size = _palm_size(world)
            if not (size > 1e-4).all():
                bad = int(run[np.argmax(size <= 1e-4)])
                raise InputError(
                    f"detection {bad} has a degenerate model hand (palm size "
                    f"{size.min():.2g} m): cannot normalise the hand size"
                )
            scale = np.median(size) / size
            wrist = world[:, WRIST : WRIST + 1]
            world = wrist + (world - wrist) * scale[:, None, None]
        t = np.empty((len(run), 3))
        for k, i in enumerate(run):
            try:
                t[k] = solve_translation_rgb(world[k], pixels[k], K)
            except InputError as exc:
                raise InputError(f"detection {int(i)}: {exc}") from exc
        fitted_wrist = world[:, WRIST] + t
        z = smooth_depth(stamps[run], fitted_wrist[:, 2], config)
        if not (z > 0).all():
            raise InputError(
                f"the filtered wrist depth of detections {int(run[0])}..{int(run[-1])} is not "
                "in front of the camera (inconsistent depths; try a smaller depth_sigma_s)"
            )
        if config.anchor_wrist:
            target = K.backproject(pixels[:, WRIST], z)
        else:
            target = fitted_wrist * (z / fitted_wrist[:, 2])[:, None]
        t = target - world[:, WRIST]
        for k, i in enumerate(run):
            points = world[k] + t[k]
            out[int(i)] = LiftedHand(
                keypoints_cam=points,
                method=METHOD_RGB_TRACK,
                translation=t[k],
                valid_depth_fraction=0.0,
                inlier_count=0,
                depth_residual_m=float("nan"),
                reprojection_error_px=_reprojection_error(points, pixels[k], K),
                fallback_reason="",
                handedness=dets[k].handedness,
                confidence=dets[k].confidence,
            )
    return out
