"""The one pinhole model: lens-model fields and what every simulated camera reports."""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.camera.pinhole import CameraIntrinsics
from human_video_policy.errors import ConfigError


def test_distortion_model_and_coefficients_are_validated() -> None:
    base = dict(width=640, height=480, fx=600.0, fy=600.0, cx=319.5, cy=239.5)
    assert CameraIntrinsics(**base).distortion == (0.0,) * 5
    eight = CameraIntrinsics(**base, distortion_model="rational_polynomial", distortion=[0.1] * 8)
    assert eight.distortion == (0.1,) * 8  # stored as a tuple of floats
    assert eight.scaled(320, 240).distortion == eight.distortion
    for model, coefficients, match in [
        ("fisheye", (0.0,) * 4, "distortion_model='fisheye'"),
        ("plumb_bob", (0.0,) * 4, "needs 5"),
        ("equidistant", (0.0, 0.0, float("nan"), 0.0), "finite"),
        ("plumb_bob", ("a",) * 5, "must be numbers"),
    ]:
        with pytest.raises(ConfigError, match=match):
            CameraIntrinsics(**base, distortion_model=model, distortion=coefficients)


@pytest.mark.parametrize("world", ["widowx", "rm75"])
def test_sim_cameras_project_like_their_intrinsics(world: str) -> None:
    """A body's pixel from the world's own projection equals K applied to its camera-frame
    position computed from camera_pose(): intrinsics and extrinsics agree."""
    if world == "widowx":
        from human_video_policy.sim.widowx_world import WidowXWorld, WidowXWorldConfig

        sim = WidowXWorld(WidowXWorldConfig(image_width=160, image_height=120))
    else:
        from human_video_policy.sim.rm75_world import RM75World, RM75WorldConfig

        sim = RM75World(RM75WorldConfig(image_width=160, image_height=120))
    with sim:
        K = sim.camera_intrinsics()
        assert isinstance(K, CameraIntrinsics) and (K.width, K.height) == (160, 120)
        pose = sim.camera_pose()
        assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-9)
        # The base origin seen from the camera: in front of it and inside the image.
        p_cam = pose[:3, :3].T @ (np.zeros(3) - pose[:3, 3])
        u, v = K.project(p_cam)
        assert 0 <= u < 160 and 0 <= v < 120
        depth = sim.render_depth()
        assert depth.shape == (120, 160) and (depth > 0).any()


def test_extrinsic_node_parameter_is_parsed_and_named_in_errors() -> None:
    from human_video_policy.camera.pinhole import IDENTITY_POSE_PARAM, CameraExtrinsics

    identity = CameraExtrinsics.from_param("camera_extrinsic", list(IDENTITY_POSE_PARAM))
    assert np.array_equal(identity.matrix, np.eye(4))
    turned = CameraExtrinsics.from_param("camera_extrinsic", [1, 2, 3, 0, 0, 1, 0])  # 180 deg z
    assert np.allclose(turned.matrix[:3, 3], [1, 2, 3])
    assert np.allclose(turned.rotation, np.diag([-1.0, -1.0, 1.0]))
    with pytest.raises(ConfigError, match=r"camera_extrinsic=.*7 finite numbers"):
        CameraExtrinsics.from_param("camera_extrinsic", [0.0, 0.0, 1.0])
    with pytest.raises(ConfigError, match=r"camera_extrinsic=.*unit norm"):
        CameraExtrinsics.from_param("camera_extrinsic", [0.0] * 7)
