"""A simulated Realman RM75 with an XHand right hand on a table, seen by a head camera, in MuJoCo.

``RM75World`` is the sim half of the RM75 + XHand robot interface, shaped like
``sim.widowx_world.WidowXWorld``: 19 joint position commands in (7 arm + 12 hand, the order of
robots/rm75.py RM75_XHAND_JOINTS), joint states, the EE pose, camera images and depth out, all in
the arm's base frame ``base_link`` (z up, metres; the MuJoCo world origin is the base, the table
top is z = 0). The scene is the project's own model, ``mjcf/rm75_xhand_scene.xml``, whose
kinematics test/test_rm75_model.py keeps equal to urdf/rm75_xhand_right.urdf.

Rendering is offscreen: with no display, ``MUJOCO_GL`` defaults to ``egl`` (set it before the
first ``import mujoco`` in the process to choose otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import mujoco
import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.robots.rm75 import BASE_FRAME, HOME_POSITION, RM75_XHAND_JOINTS
from human_video_policy.sim.world_base import PositionControlledWorld, SceneWorldConfig

DEFAULT_SCENE = ("mjcf", "rm75_xhand_scene.xml")
EE_SITE = "ee_site"  # at right_hand_ee_link, robots/rm75.py EE_FRAME
TARGET_BODY = "target"
# Where reset() puts the target cube: x, y ranges (m, base frame) on the table in front.
TARGET_X_RANGE = (0.25, 0.45)
TARGET_Y_RANGE = (-0.2, 0.2)


def default_scene_path() -> Path:
    """The project's RM75 + XHand scene (mjcf/rm75_xhand_scene.xml)."""
    from human_video_policy.resources import resource_path

    return resource_path(*DEFAULT_SCENE)


@dataclass
class RM75WorldConfig(SceneWorldConfig):
    """Settings of :class:`RM75World` (validated as in :class:`SceneWorldConfig`).

    Attributes:
        scene_path: MJCF scene file; empty = the project's mjcf/rm75_xhand_scene.xml.
        image_width, image_height: rendered image size in pixels (1..1280 x 1..960).
        camera_name: MJCF camera the images come from (the head camera by default).
        camera_frame_id: frame_id reported with the intrinsics (the camera's optical frame).
        max_depth_m: depth beyond this (m) is reported as 0.0 = no return, like a RealSense.
        home_position: 19 command-joint positions (rad) the robot starts from on reset, in
            RM75_XHAND_JOINTS order; None = robots.rm75.HOME_POSITION (arm ready, hand open).
    """

    HOME_JOINTS: ClassVar[tuple[str, ...]] = RM75_XHAND_JOINTS

    camera_name: str = "head_camera"
    camera_frame_id: str = "head_camera_optical_frame"


class RM75World(PositionControlledWorld):
    """MuJoCo RM75 + XHand + table + target cube; see the module docstring.

    Not thread-safe. Call :meth:`close` (or use as a context manager) to free the renderers.
    """

    joint_names: tuple[str, ...] = RM75_XHAND_JOINTS

    def __init__(self, config: RM75WorldConfig | None = None) -> None:
        self.config = config or RM75WorldConfig()
        path = Path(self.config.scene_path) if self.config.scene_path else default_scene_path()
        try:
            self.model = mujoco.MjModel.from_xml_path(str(path))
        except ValueError as exc:
            raise ConfigError(f"cannot load MuJoCo scene {path}: {exc}") from exc
        self.scene_path = path
        self.data = mujoco.MjData(self.model)
        m = self.model
        try:
            self._bind_joints(self.joint_names, self.joint_names)
            self._camera_id = m.camera(self.config.camera_name).id
            self._ee_site = m.site(EE_SITE).id
            self._target_mocap = int(m.body_mocapid[m.body(TARGET_BODY).id])
            self._base_body = m.body(BASE_FRAME).id
        except (KeyError, StopIteration) as exc:
            raise ConfigError(
                f"scene {path} lacks a joint/actuator/camera/site/body the world needs (joints "
                f"{self.joint_names}, camera {self.config.camera_name!r}, site {EE_SITE!r}, "
                f"bodies {BASE_FRAME!r} and mocap {TARGET_BODY!r}): {exc}"
            ) from exc
        c = self.config
        self._init_home_and_camera(
            c.home_position or tuple(HOME_POSITION),
            self._camera_id,
            (c.image_width, c.image_height),
            c.max_depth_m,
            c.camera_frame_id,
        )
        self.seed: int | None = None
        self.reset(0)

    # -- episode -----------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Robot at home and at rest, target cube at a spot on the table drawn from ``seed``."""
        self.seed = self._check_seed(seed)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._qpos_index] = self.home_position
        d.ctrl[self._actuator_index] = self.home_position
        rng = np.random.default_rng(self.seed)
        d.mocap_pos[self._target_mocap] = (
            rng.uniform(*TARGET_X_RANGE),
            rng.uniform(*TARGET_Y_RANGE),
            0.0,
        )
        mujoco.mj_forward(m, d)

    # -- state -------------------------------------------------------------------------------
    def set_joint_positions(self, q: np.ndarray) -> None:
        """Put the 19 joints at ``q`` (rad) without physics and refresh every pose: a kinematic
        scene for rendering measured or commanded states (scene_camera_node)."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (len(self.joint_names),) or not np.all(np.isfinite(q)):
            raise InputError(
                f"joint positions must be {len(self.joint_names)} finite values, got shape "
                f"{q.shape}"
            )
        self.data.qpos[self._qpos_index] = q
        self.data.qvel[self._qvel_index] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def ee_pose(self) -> np.ndarray:
        """4x4 pose of the EE frame (right_hand_ee_link) in the base frame."""
        d = self.data
        pose = np.eye(4)
        pose[:3, :3] = self._base_rotation().T @ d.site_xmat[self._ee_site].reshape(3, 3)
        pose[:3, 3] = self._in_base(d.site_xpos[self._ee_site])
        return pose

    def target_position(self) -> np.ndarray:
        """(3,) centre of the target cube's top face in the base frame."""
        top = self.data.mocap_pos[self._target_mocap] + np.array([0.0, 0.0, 0.04])
        return self._in_base(top)
