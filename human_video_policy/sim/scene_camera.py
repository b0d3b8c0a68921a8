"""A MuJoCo scene camera rendered headless: RGB, depth, pinhole intrinsics, pose in the base.

Every simulated world (WidowX reach, RM75 + XHand) owns one; the renderers are created on first
use (an EGL context per renderer), so worlds used only for physics never open a GL context.
Image conventions follow the stack's pinhole model (``camera.pinhole``): pixel centres at
integer coordinates, optical frame x right / y down / z forward.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from human_video_policy.camera.pinhole import CameraIntrinsics

# MuJoCo cameras look along -z with y up; the optical frame looks along +z with y down.
_MUJOCO_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


class SceneCamera:
    """Renders ``camera_id`` of ``model`` at ``width x height``; poses relative to ``base_body``.

    ``max_depth_m``: depth beyond it (or nothing hit) is reported as 0.0, like a depth camera.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        camera_id: int,
        base_body: int,
        width: int,
        height: int,
        max_depth_m: float,
        frame_id: str,
    ) -> None:
        self.model = model
        self.camera_id = camera_id
        self.base_body = base_body
        self.width, self.height = width, height
        self.max_depth_m = max_depth_m
        self.frame_id = frame_id
        self._rgb: mujoco.Renderer | None = None
        self._depth: mujoco.Renderer | None = None

    def _renderer(self, depth: bool) -> mujoco.Renderer:
        if depth:
            if self._depth is None:
                self._depth = mujoco.Renderer(self.model, self.height, self.width)
                self._depth.enable_depth_rendering()
            return self._depth
        if self._rgb is None:
            self._rgb = mujoco.Renderer(self.model, self.height, self.width)
        return self._rgb

    def render_rgb(self, data: mujoco.MjData) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of the scene in ``data``."""
        renderer = self._renderer(depth=False)
        renderer.update_scene(data, camera=self.camera_id)
        return renderer.render().copy()

    def render_depth(self, data: mujoco.MjData) -> np.ndarray:
        """(H, W) float32 depth (m) along the optical axis; 0.0 where nothing is in range."""
        renderer = self._renderer(depth=True)
        renderer.update_scene(data, camera=self.camera_id)
        depth = renderer.render().astype(np.float32, copy=True)
        depth[~(depth <= self.max_depth_m)] = 0.0
        return depth

    def intrinsics(self) -> CameraIntrinsics:
        """Pinhole intrinsics of the rendered images (from the camera's vertical fovy)."""
        w, h = self.width, self.height
        fovy = math.radians(float(self.model.cam_fovy[self.camera_id]))
        f = 0.5 * h / math.tan(0.5 * fovy)
        return CameraIntrinsics(w, h, f, f, (w - 1) / 2.0, (h - 1) / 2.0, self.frame_id)

    def pose_in_base(self, data: mujoco.MjData) -> np.ndarray:
        """4x4 transform base <- camera optical frame: the extrinsic for camera-frame targets."""
        base_rotation = data.xmat[self.base_body].reshape(3, 3)
        camera_rotation = data.cam_xmat[self.camera_id].reshape(3, 3)
        pose = np.eye(4)
        pose[:3, :3] = base_rotation.T @ camera_rotation @ _MUJOCO_TO_OPTICAL
        pose[:3, 3] = base_rotation.T @ (data.cam_xpos[self.camera_id] - data.xpos[self.base_body])
        return pose

    def close(self) -> None:
        """Release the GL contexts (rendering again reopens them)."""
        for renderer in (self._rgb, self._depth):
            if renderer is not None:
                renderer.close()
        self._rgb = self._depth = None
