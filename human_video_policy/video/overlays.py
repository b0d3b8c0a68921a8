"""Visual prompts drawn into frames: VITRA future-trajectory overlays and method A wrist circles.

- **Future trajectory** (VITRA, vitra_hand_vla.txt sec. 3: captions are asked for with "the
  projected 3D hand trajectory" overlaid on sampled frames, an ablation shows it matters): the
  next N camera-frame positions of the wrist (or a fingertip) are projected with a pinhole model
  and drawn as a polyline whose colour runs from ``start_color`` (now) to ``end_color`` (the last
  future point) and whose opacity fades with time, so the direction of motion is readable.
- **Wrist circle** (human_video_prompt_policy.txt, sec. IV: "a solid circle was overlaid on the
  detected wrist position with its size inversely proportional to camera distance; in robot
  videos, the wrist was annotated in the same way"): radius = ``radius_px_at_1m / depth``. The
  same function draws it for a human wrist or for a robot end effector, given the point in the
  camera optical frame (:func:`camera_from_base` moves a robot base-frame point there).

Conventions: camera optical frame (x right, y down, z forward, metres), pixel centres at integer
coordinates, images ``(H, W, 3)`` uint8 RGB, colours RGB tuples. Intrinsics are any object with
``fx, fy, cx, cy`` (e.g. :class:`human_video_policy.camera.pinhole.CameraIntrinsics` or the sim's).
Points at or behind ``MIN_DEPTH_M`` cannot be projected: they become NaN and are not drawn.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.validation import check_int_range, check_positive, check_range

#: Points closer to the camera plane than this (metres) are not projected.
MIN_DEPTH_M = 1e-3
#: Sub-pixel precision of the OpenCV drawing calls (coordinates * 2**SHIFT).
_SHIFT = 4


class PinholeIntrinsics(Protocol):
    """Anything with pinhole intrinsics in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float


def _check_image(image: object) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 1:
        raise InputError(f"image must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
    return img


def _check_color(name: str, color: tuple[int, int, int]) -> tuple[int, int, int]:
    if len(color) != 3 or not all(
        isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in color
    ):
        raise InputError(f"{name}={color!r} is invalid: must be an RGB tuple of 3 ints in [0, 255]")
    return (int(color[0]), int(color[1]), int(color[2]))


def project_points(points_cam: object, K: PinholeIntrinsics) -> np.ndarray:
    """``(N, 3)`` camera-frame points -> ``(N, 2)`` pixels; NaN rows for points not in front.

    Raises InputError for a wrong shape or NaN/inf input.
    """
    p = np.asarray(points_cam, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise InputError(f"points_cam must have shape (N, 3), got {p.shape}")
    if not np.isfinite(p).all():
        raise InputError("points_cam contains NaN/inf")
    out = np.full((p.shape[0], 2), np.nan)
    front = p[:, 2] > MIN_DEPTH_M
    z = p[front, 2]
    out[front, 0] = K.fx * p[front, 0] / z + K.cx
    out[front, 1] = K.fy * p[front, 1] / z + K.cy
    return out


def camera_from_base(camera_pose_in_base: object, point_base: object) -> np.ndarray:
    """A base-frame point (e.g. a robot end effector) in the camera optical frame.

    ``camera_pose_in_base`` is the 4x4 transform base <- camera optical frame (as returned by
    ``WidowXWorld.camera_pose``); ``point_base`` is ``(3,)`` or ``(N, 3)`` metres.
    """
    T = np.asarray(camera_pose_in_base, dtype=np.float64)
    p = np.asarray(point_base, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise InputError(f"camera_pose_in_base must be a finite 4x4 transform, got {T.shape}")
    if p.shape[-1:] != (3,) or p.ndim > 2 or not np.isfinite(p).all():
        raise InputError(f"point_base must be a finite (3,) or (N, 3) array, got {p.shape}")
    return (p - T[:3, 3]) @ T[:3, :3]


def wrist_circle_radius(depth_m: float, radius_px_at_1m: float) -> float:
    """Circle radius in pixels for a point ``depth_m`` in front of the camera (1/depth)."""
    check_positive("depth_m", depth_m)
    check_positive("radius_px_at_1m", radius_px_at_1m)
    return radius_px_at_1m / depth_m


def draw_wrist_circle(
    image: object,
    point_cam: object,
    K: PinholeIntrinsics,
    radius_px_at_1m: float = 40.0,
    color: tuple[int, int, int] = (255, 0, 255),
) -> np.ndarray:
    """Method A: a solid circle on the wrist / end effector; returns a new image.

    A point behind the camera raises InputError (nothing sensible to draw).
    """
    img = _check_image(image).copy()
    p = np.asarray(point_cam, dtype=np.float64)
    if p.shape != (3,):
        raise InputError(f"point_cam must have shape (3,), got {p.shape}")
    uv = project_points(p[None], K)[0]
    if not np.isfinite(uv).all():
        raise InputError(f"point_cam={p.tolist()} is not in front of the camera (z <= 0)")
    radius = wrist_circle_radius(float(p[2]), radius_px_at_1m)
    scale = 1 << _SHIFT
    center = (round(uv[0] * scale), round(uv[1] * scale))
    cv2.circle(
        img,
        center,
        round(radius * scale),
        _check_color("color", color),
        -1,
        cv2.LINE_AA,
        _SHIFT,
    )
    return img


def draw_future_trajectory(
    image: object,
    future_cam: object,
    K: PinholeIntrinsics,
    thickness: int = 3,
    start_color: tuple[int, int, int] = (255, 255, 0),
    end_color: tuple[int, int, int] = (255, 0, 0),
    min_alpha: float = 0.25,
) -> np.ndarray:
    """Draw the projected polyline of ``future_cam`` (``(N, 3)``, first row = now).

    Segment ``i`` (from point ``i`` to ``i + 1``) gets the colour interpolated from
    ``start_color`` to ``end_color`` and opacity from 1 down to ``min_alpha`` along time; nearer
    segments are drawn over later ones. Segments with a point behind the camera are skipped.
    The current point gets a dot. Returns a new image.
    """
    img = _check_image(image)
    check_int_range("thickness", thickness, 1, 64)
    check_range("min_alpha", min_alpha, 0.0, 1.0)
    c0 = np.array(_check_color("start_color", start_color), dtype=np.float64)
    c1 = np.array(_check_color("end_color", end_color), dtype=np.float64)
    uv = project_points(future_cam, K)
    n = uv.shape[0]
    if n == 0:
        return img.copy()
    color_layer = np.zeros(img.shape, dtype=np.uint8)
    alpha_layer = np.zeros(img.shape[:2], dtype=np.float32)
    scale = 1 << _SHIFT
    fixed = np.where(np.isfinite(uv), np.round(uv * scale), 0).astype(np.int64)
    for i in reversed(range(n - 1)):
        if not (np.isfinite(uv[i]).all() and np.isfinite(uv[i + 1]).all()):
            continue
        s = i / max(1, n - 2)
        color = tuple(round(v) for v in (1 - s) * c0 + s * c1)
        alpha = 1.0 - s * (1.0 - min_alpha)
        a, b = tuple(fixed[i]), tuple(fixed[i + 1])
        cv2.line(color_layer, a, b, color, thickness, cv2.LINE_8, _SHIFT)
        cv2.line(alpha_layer, a, b, float(alpha), thickness, cv2.LINE_8, _SHIFT)
    if np.isfinite(uv[0]).all():
        dot = max(2, thickness + 1) * scale
        cv2.circle(
            color_layer, tuple(fixed[0]), dot, tuple(int(v) for v in c0), -1, cv2.LINE_8, _SHIFT
        )
        cv2.circle(alpha_layer, tuple(fixed[0]), dot, 1.0, -1, cv2.LINE_8, _SHIFT)
    a3 = alpha_layer[..., None]
    out = img.astype(np.float32) * (1.0 - a3) + color_layer.astype(np.float32) * a3
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def future_window(points: object, t: int, horizon: int) -> np.ndarray:
    """Rows ``t .. t + horizon`` (clipped at the end) of a ``(T, 3)`` trajectory."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise InputError(f"points must have shape (T, 3), got {p.shape}")
    if not 0 <= t < p.shape[0]:
        raise InputError(f"t={t} is outside the trajectory of {p.shape[0]} frames")
    check_int_range("horizon", horizon, 1)
    return p[t : t + horizon + 1]


def sample_frames(start: int, end: int, count: int = 8) -> list[int]:
    """``count`` evenly spaced frame indices in ``[start, end)`` (VITRA samples 8 per segment)."""
    check_int_range("count", count, 1)
    if end <= start:
        raise InputError(f"empty frame range [{start}, {end})")
    picks = np.linspace(start, end - 1, num=min(count, end - start))
    return sorted({round(x) for x in picks})
