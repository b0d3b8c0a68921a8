"""What every simulated robot world shares: position-controlled joints, time stepping, base-frame
geometry and a scene camera.

A world subclass loads its MJCF scene and sets, in ``__init__``: ``model``, ``data``,
``joint_names`` (the commanded joints), ``_actuator_index`` (one position actuator per commanded
joint), ``_qpos_index`` / ``_qvel_index`` (the joints reported as state, possibly more than the
commanded ones) and ``_base_body``, then calls ``_init_home_and_camera`` (actuator ranges, home
pose, :class:`~.scene_camera.SceneCamera`). Everything below works from those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import mujoco
import numpy as np

from human_video_policy.camera.pinhole import CameraIntrinsics
from human_video_policy.drivers.mujoco_joints import MujocoJoints, checked_command
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.sim.scene_camera import SceneCamera
from human_video_policy.validation import check_file, check_int_range, check_range


@dataclass
class SceneWorldConfig:
    """Settings every simulated world has (subclasses set the defaults and ``HOME_JOINTS``).

    Attributes:
        scene_path: MJCF scene file; empty = the world's own scene in mjcf/.
        image_width, image_height: rendered image size in pixels (1..1280 x 1..960).
        camera_name: MJCF camera the images come from.
        camera_frame_id: frame_id reported with the intrinsics (the camera's optical frame).
        max_depth_m: depth beyond this (m) is reported as 0.0 = no return, as depth cameras
            (RealSense) do, so a 16UC1 mm image cannot overflow.
        home_position: command-joint positions (rad, m) the robot starts from on reset, in
            ``HOME_JOINTS`` order; None = the robot's HOME_POSITION.
    """

    #: The command joints ``home_position`` lists, in order.
    HOME_JOINTS: ClassVar[tuple[str, ...]] = ()

    scene_path: str = ""
    image_width: int = 128
    image_height: int = 128
    camera_name: str = ""
    camera_frame_id: str = ""
    max_depth_m: float = 10.0
    home_position: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.scene_path:
            check_file("scene_path", self.scene_path)
        check_int_range("image_width", self.image_width, 1, 1280)
        check_int_range("image_height", self.image_height, 1, 960)
        if not self.camera_name:
            raise ConfigError("camera_name='' is invalid: must name an MJCF camera")
        if not self.camera_frame_id:
            raise ConfigError("camera_frame_id='' is invalid: must be a frame name")
        check_range("max_depth_m", self.max_depth_m, 0.1, 65.0)
        if self.home_position is not None:
            joints = self.HOME_JOINTS
            home = np.asarray(self.home_position, dtype=np.float64)
            if home.shape != (len(joints),) or not np.all(np.isfinite(home)):
                raise ConfigError(
                    f"home_position={self.home_position!r} is invalid: must be "
                    f"{len(joints)} finite values for {joints}"
                )
            self.home_position = tuple(float(v) for v in home)


class PositionControlledWorld:
    """Base of the MuJoCo worlds (WidowX reach, RM75 + XHand); see the module docstring."""

    model: mujoco.MjModel
    data: mujoco.MjData
    joint_names: tuple[str, ...]
    camera: SceneCamera
    _actuator_index: np.ndarray
    _ctrl_low: np.ndarray
    _ctrl_high: np.ndarray
    _qpos_index: np.ndarray
    _qvel_index: np.ndarray
    _base_body: int
    home_position: np.ndarray
    #: Recompute body poses after stepping, so poses and images match joint_positions()
    #: exactly (mj_step leaves them at the state before its last integration).
    refresh_kinematics_after_step: bool = True

    # -- set-up (called by the subclass once model, data and the indices are set) ------------
    def _bind_joints(self, state_joints: tuple[str, ...], command_joints: tuple[str, ...]) -> None:
        """Set ``_qpos_index``/``_qvel_index`` (state joints) and ``_actuator_index`` (the
        position actuator of each command joint) through the binding the sim driver uses
        (:class:`~human_video_policy.drivers.mujoco_joints.MujocoJoints`; a ConfigError names
        what is missing)."""
        state = MujocoJoints(self.model, state_joints, actuated=False)
        commanded = MujocoJoints(self.model, command_joints)
        self._qpos_index, self._qvel_index = state.qpos, state.qvel
        self._actuator_index = commanded.actuators

    def _init_home_and_camera(
        self,
        home: tuple[float, ...],
        camera_id: int,
        image_size: tuple[int, int],
        max_depth_m: float,
        camera_frame_id: str,
    ) -> None:
        """Actuator ranges, ``home_position`` (``home`` clamped into them) and the scene camera
        rendering ``image_size`` (width, height)."""
        m = self.model
        limited = m.actuator_ctrllimited[self._actuator_index].astype(bool)
        ranges = m.actuator_ctrlrange[self._actuator_index]
        self._ctrl_low = np.where(limited, ranges[:, 0], -np.inf)
        self._ctrl_high = np.where(limited, ranges[:, 1], np.inf)
        self.home_position = np.clip(
            np.asarray(home, dtype=np.float64), self._ctrl_low, self._ctrl_high
        )
        w, h = image_size
        m.vis.global_.offwidth = max(m.vis.global_.offwidth, w)
        m.vis.global_.offheight = max(m.vis.global_.offheight, h)
        self.camera = SceneCamera(m, camera_id, self._base_body, w, h, max_depth_m, camera_frame_id)

    @staticmethod
    def _check_seed(seed: object) -> int:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise InputError(f"seed={seed!r} is invalid: must be an integer >= 0")
        return int(seed)

    # -- time and commands -------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Sim time (s) since the last reset."""
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        """Physics step (s)."""
        return float(self.model.opt.timestep)

    def set_joint_command(self, q: np.ndarray) -> None:
        """Position targets for ``joint_names`` (clamped to the actuator ranges)."""
        q = checked_command(q, self.joint_names)
        self.data.ctrl[self._actuator_index] = np.clip(q, self._ctrl_low, self._ctrl_high)

    def joint_command(self) -> np.ndarray:
        """The position targets currently applied, ``joint_names`` order."""
        return self.data.ctrl[self._actuator_index].copy()

    def step(self, seconds: float) -> int:
        """Advance by round(seconds / timestep) whole physics steps; returns the step count."""
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
            raise InputError(f"step seconds={seconds!r} is invalid: must be a finite number >= 0")
        steps = round(seconds / self.timestep)
        if steps:
            mujoco.mj_step(self.model, self.data, nstep=steps)
            if self.refresh_kinematics_after_step:
                mujoco.mj_kinematics(self.model, self.data)
        return steps

    # -- state -------------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        """Positions of the state joints (rad, m)."""
        return self.data.qpos[self._qpos_index].copy()

    def joint_velocities(self) -> np.ndarray:
        """Velocities of the state joints (rad/s, m/s)."""
        return self.data.qvel[self._qvel_index].copy()

    def _base_rotation(self) -> np.ndarray:
        return self.data.xmat[self._base_body].reshape(3, 3)

    def _in_base(self, world_point: np.ndarray) -> np.ndarray:
        offset = np.asarray(world_point, dtype=np.float64) - self.data.xpos[self._base_body]
        return self._base_rotation().T @ offset

    # -- camera ------------------------------------------------------------------------------
    def render_rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB image from the scene camera."""
        return self.camera.render_rgb(self.data)

    def render_depth(self) -> np.ndarray:
        """(H, W) float32 depth (m) along the optical axis; 0.0 where nothing is in range."""
        return self.camera.render_depth(self.data)

    def camera_intrinsics(self) -> CameraIntrinsics:
        """Pinhole intrinsics of the rendered images (from the camera's vertical fovy)."""
        return self.camera.intrinsics()

    def camera_pose(self) -> np.ndarray:
        """4x4 transform base <- camera optical frame (z forward, x right, y down): the
        extrinsic for camera-frame targets."""
        return self.camera.pose_in_base(self.data)

    def project(self, point_base: np.ndarray) -> np.ndarray:
        """Pixel (u, v) of a base-frame point in the rendered image."""
        pose = self.camera_pose()
        p = pose[:3, :3].T @ (np.asarray(point_base, dtype=np.float64) - pose[:3, 3])
        return self.camera_intrinsics().project(p)

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        """Free the renderers (GL contexts)."""
        self.camera.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
