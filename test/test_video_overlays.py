"""Trajectory overlays and wrist circles (human_video_policy.video.overlays).

Pixels are checked against a pinhole projection computed here by hand, the circle against its
1/depth law, and the robot-frame circle against MuJoCo's own rendering of the WidowX (the
end-effector point projected by the sim and by the overlay must agree).
"""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.camera.pinhole import CameraIntrinsics
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.video.overlays import (
    camera_from_base,
    draw_future_trajectory,
    draw_wrist_circle,
    future_window,
    project_points,
    sample_frames,
    wrist_circle_radius,
)

K = CameraIntrinsics(width=640, height=480, fx=500.0, fy=480.0, cx=319.5, cy=239.5)


def _black() -> np.ndarray:
    return np.zeros((K.height, K.width, 3), dtype=np.uint8)


def test_projection_is_the_pinhole_model() -> None:
    pts = np.array([[0.1, -0.05, 1.0], [-0.2, 0.1, 2.0], [0.0, 0.0, 0.5], [0.3, 0.2, -1.0]])
    uv = project_points(pts, K)
    expected = [(500 * 0.1 + 319.5, 480 * -0.05 + 239.5), (500 * -0.1 + 319.5, 480 * 0.05 + 239.5)]
    np.testing.assert_allclose(uv[:2], expected, atol=1e-12)
    np.testing.assert_allclose(uv[2], (319.5, 239.5))
    assert np.isnan(uv[3]).all(), "a point behind the camera must not be projected"


def test_trajectory_pixels_sit_where_the_projection_puts_them() -> None:
    # A horizontal then vertical path at 1 m: each segment's midpoint pixel is painted.
    future = np.array([[-0.2, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.15, 1.0]])
    img = draw_future_trajectory(
        _black(), future, K, thickness=3, start_color=(0, 255, 0), end_color=(0, 0, 255)
    )
    uv = project_points(future, K)
    mid0 = np.round((uv[0] + uv[1]) / 2).astype(int)
    mid1 = np.round((uv[1] + uv[2]) / 2).astype(int)
    # First segment: full opacity, start colour. Last segment: end colour at min_alpha 0.25.
    assert tuple(img[mid0[1], mid0[0]]) == (0, 255, 0)
    assert tuple(img[mid1[1], mid1[0]]) == (0, 0, round(255 * 0.25))
    # Off the path (30 px away from both segments) nothing is drawn.
    assert tuple(img[int(uv[0][1]) + 30, int(mid0[0])]) == (0, 0, 0)
    painted = np.argwhere(img.any(axis=2))
    # Every painted pixel lies within thickness of the projected polyline.
    ys, xs = painted[:, 0], painted[:, 1]
    near_h = (np.abs(ys - uv[0][1]) <= 4) & (xs >= uv[0][0] - 6) & (xs <= uv[1][0] + 4)
    near_v = (np.abs(xs - uv[1][0]) <= 4) & (ys >= uv[1][1] - 4) & (ys <= uv[2][1] + 4)
    near_dot = np.hypot(ys - uv[0][1], xs - uv[0][0]) <= 5.5  # the current-point dot
    assert (near_h | near_v | near_dot).all()


def test_trajectory_fades_with_time_on_a_real_image_background() -> None:
    base = np.full((K.height, K.width, 3), 100, dtype=np.uint8)
    xs = np.linspace(-0.25, 0.25, 11)
    future = np.stack([xs, np.zeros_like(xs), np.ones_like(xs)], axis=1)
    img = draw_future_trajectory(base, future, K, start_color=(255, 0, 0), end_color=(255, 0, 0))
    uv = project_points(future, K)
    red = [int(img[round(uv[i][1]), round((uv[i][0] + uv[i + 1][0]) / 2), 0]) for i in range(10)]
    assert red[0] == 255 and red == sorted(red, reverse=True) and red[-1] < 150
    assert base.max() == 100, "the input image must not be modified"


def test_points_behind_the_camera_are_skipped_not_drawn() -> None:
    future = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.1, 0.0, 1.0]])
    img = draw_future_trajectory(_black(), future, K, thickness=2)
    painted = np.argwhere(img.any(axis=2))
    uv0 = project_points(future[:1], K)[0]
    assert np.abs(painted - uv0[::-1]).max() <= 4, "only the current-point dot may be drawn"


def test_circle_radius_halves_when_depth_doubles() -> None:
    assert wrist_circle_radius(2.0, 40.0) == pytest.approx(wrist_circle_radius(1.0, 40.0) / 2)

    def measured_diameter(z: float) -> int:
        img = draw_wrist_circle(_black(), np.array([0.0, 0.0, z]), K, radius_px_at_1m=60.0)
        return int((img[240, :, 0] > 127).sum())

    d1, d2 = measured_diameter(0.5), measured_diameter(1.0)
    assert d1 == pytest.approx(2 * 120, abs=2)
    assert d2 == pytest.approx(2 * 60, abs=2)


def test_robot_frame_circle_from_an_end_effector_position() -> None:
    from human_video_policy.sim.widowx_world import WidowXWorld, WidowXWorldConfig

    with WidowXWorld(WidowXWorldConfig(image_width=160, image_height=120)) as world:
        world.reset(3)
        rgb = world.render_rgb()
        k = world.camera_intrinsics()
        ee_cam = camera_from_base(world.camera_pose(), world.ee_position())
        uv = project_points(ee_cam[None], k)[0]
        np.testing.assert_allclose(uv, world.project(world.ee_position()), atol=1e-9)
        img = draw_wrist_circle(rgb, ee_cam, k, radius_px_at_1m=8.0, color=(255, 0, 255))
    u, v = (round(x) for x in uv)
    assert 0 <= u < 160 and 0 <= v < 120
    assert tuple(img[v, u]) == (255, 0, 255)
    assert (img != rgb).any(axis=2).sum() == pytest.approx(np.pi * (8.0 / ee_cam[2]) ** 2, rel=0.35)


def test_bad_input_is_named() -> None:
    with pytest.raises(InputError, match="NaN"):
        project_points(np.array([[np.nan, 0, 1]]), K)
    with pytest.raises(InputError, match="shape"):
        project_points(np.zeros((3, 2)), K)
    with pytest.raises(InputError, match="not in front"):
        draw_wrist_circle(_black(), np.array([0.0, 0.0, -0.5]), K)
    with pytest.raises(InputError, match="uint8"):
        draw_future_trajectory(np.zeros((4, 4)), np.zeros((2, 3)) + 1, K)
    with pytest.raises(InputError, match="color"):
        draw_wrist_circle(_black(), np.array([0.0, 0.0, 1.0]), K, color=(300, 0, 0))
    with pytest.raises(ConfigError, match="depth_m"):
        wrist_circle_radius(0.0, 10.0)
    with pytest.raises(InputError, match="4x4"):
        camera_from_base(np.eye(3), np.zeros(3))
    with pytest.raises(InputError, match="outside"):
        future_window(np.zeros((5, 3)), 5, 3)


def test_future_window_and_frame_sampling() -> None:
    p = np.arange(30, dtype=float).reshape(10, 3)
    np.testing.assert_array_equal(future_window(p, 7, 5), p[7:10])
    assert sample_frames(0, 80, 8) == [0, 11, 23, 34, 45, 56, 68, 79]
    assert sample_frames(5, 8, 8) == [5, 6, 7]
