"""A simulated WidowX 250s on a table with a reach target, in MuJoCo.

``WidowXWorld`` is the sim half of the stack's robot interface (docs/CONTRACTS.md): joint
position commands in, joint states, camera images and depth out, all in the base frame
``wx250s/base_link`` (x forward, y left, z up, metres; the MuJoCo world origin is the base).
The scene is the project's own model, ``mjcf/wx250s_reach_scene.xml``.

Rendering is offscreen: with no display, ``MUJOCO_GL`` defaults to ``egl`` (set it before the
first ``import mujoco`` in the process to choose otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import mujoco
import numpy as np

from human_video_policy.errors import ConfigError
from human_video_policy.robots.widowx import (
    HOME_POSITION,
    WIDOWX_COMMAND_JOINTS,
    WIDOWX_STATE_JOINTS,
)
from human_video_policy.sim.reach_task import ReachLayout, ReachTask, ReachTaskConfig
from human_video_policy.sim.world_base import PositionControlledWorld, SceneWorldConfig

DEFAULT_SCENE = ("mjcf", "wx250s_reach_scene.xml")
EE_SITE = "ee_site"
BASE_BODY = "wx250s/base_link"
_OBJECT_BODIES = ("distractor_0", "distractor_1")


def default_scene_path() -> Path:
    """The project's reach scene (mjcf/wx250s_reach_scene.xml)."""
    from human_video_policy.resources import resource_path

    return resource_path(*DEFAULT_SCENE)


@dataclass
class WidowXWorldConfig(SceneWorldConfig):
    """Settings of :class:`WidowXWorld` (validated as in :class:`SceneWorldConfig`).

    Attributes:
        scene_path: MJCF scene file; empty = the project's mjcf/wx250s_reach_scene.xml.
        image_width, image_height: rendered image size in pixels (1..1280 x 1..960).
        camera_name: MJCF camera the images come from.
        camera_frame_id: frame_id reported with the intrinsics (the camera's optical frame).
        max_depth_m: depth beyond this (m; the background behind the table) is reported as
            0.0 = no return, as depth cameras (RealSense) do, so a 16UC1 mm image cannot
            overflow.
        home_position: 7 command-joint positions (rad, rad, ..., m) the arm starts from on
            reset; None = robots.widowx.HOME_POSITION.
        task: where targets appear and what counts as success.
    """

    HOME_JOINTS: ClassVar[tuple[str, ...]] = tuple(WIDOWX_COMMAND_JOINTS)

    image_width: int = 96
    image_height: int = 96
    camera_name: str = "scene_camera"
    camera_frame_id: str = "scene_camera_optical_frame"
    task: ReachTaskConfig = field(default_factory=ReachTaskConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.task, ReachTaskConfig):
            raise ConfigError(f"task={self.task!r} is invalid: must be a ReachTaskConfig")


class WidowXWorld(PositionControlledWorld):
    """MuJoCo WidowX 250s + table + target; see docs/CONTRACTS.md.

    Not thread-safe. Call :meth:`close` (or use as a context manager) to free the renderer.
    """

    joint_names: tuple[str, ...] = tuple(WIDOWX_COMMAND_JOINTS)
    state_joint_names: tuple[str, ...] = tuple(WIDOWX_STATE_JOINTS)
    # The default policy was trained and evaluated with poses read as mj_step leaves them.
    refresh_kinematics_after_step = False

    def __init__(self, config: WidowXWorldConfig | None = None) -> None:
        self.config = config or WidowXWorldConfig()
        path = Path(self.config.scene_path) if self.config.scene_path else default_scene_path()
        try:
            self.model = mujoco.MjModel.from_xml_path(str(path))
        except ValueError as exc:
            raise ConfigError(f"cannot load MuJoCo scene {path}: {exc}") from exc
        self.scene_path = path
        self.data = mujoco.MjData(self.model)
        self.task = ReachTask(self.config.task)
        m = self.model
        try:
            self._bind_joints(self.state_joint_names, self.joint_names)
            self._camera_id = m.camera(self.config.camera_name).id
            self._ee_site = m.site(EE_SITE).id
            self._target_mocap = m.body_mocapid[m.body("target").id]
            self._distractor_mocap = [m.body_mocapid[m.body(b).id] for b in _OBJECT_BODIES]
            self._base_body = m.body(BASE_BODY).id
        except (KeyError, StopIteration) as exc:
            raise ConfigError(
                f"scene {path} lacks a joint/actuator/camera/site the world needs "
                f"(joints {self.state_joint_names}, camera {self.config.camera_name!r}, site "
                f"{EE_SITE!r}, mocap bodies target/{'/'.join(_OBJECT_BODIES)}): {exc}"
            ) from exc
        c = self.config
        self._init_home_and_camera(
            c.home_position or tuple(HOME_POSITION)[: len(self.joint_names)],
            self._camera_id,
            (c.image_width, c.image_height),
            c.max_depth_m,
            c.camera_frame_id,
        )
        self.layout: ReachLayout | None = None
        self.seed: int | None = None
        self.reset(0)

    # -- episode -----------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Arm at home and at rest, new object layout drawn from ``seed``, time = 0."""
        self.seed = self._check_seed(seed)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        q = self._state_from_command(self.home_position)
        d.qpos[self._qpos_index] = q
        d.ctrl[self._actuator_index] = self.home_position
        self.layout = self.task.sample_layout(np.random.default_rng(self.seed))
        d.mocap_pos[self._target_mocap] = self.layout.target_base
        for i, mocap in enumerate(self._distractor_mocap):
            if i < len(self.layout.distractor_bases):
                d.mocap_pos[mocap] = self.layout.distractor_bases[i]
            else:  # park unused distractors out of sight under the table
                d.mocap_pos[mocap] = np.array([0.0, 0.0, -1.0])
        mujoco.mj_forward(m, d)

    @staticmethod
    def _state_from_command(q7: np.ndarray) -> np.ndarray:
        return np.concatenate([q7, [-q7[-1]]])

    # -- state -------------------------------------------------------------------------------
    def ee_position(self) -> np.ndarray:
        """(3,) end-effector point (vendor ee_gripper_link) in the base frame."""
        return self._in_base(self.data.site_xpos[self._ee_site])

    def target_position(self) -> np.ndarray:
        """(3,) the reach goal, the centre of the red target's top face, in the base frame."""
        assert self.layout is not None
        return self._in_base(self.layout.target_top)

    def distractor_positions(self) -> np.ndarray:
        """(n, 3) centres of the distractors' bases in the base frame."""
        assert self.layout is not None
        return np.array([self._in_base(p) for p in self.layout.distractor_bases]).reshape(-1, 3)

    def target_distance(self) -> float:
        """Distance (m) from the end effector to the reach goal."""
        return float(np.linalg.norm(self.ee_position() - self.target_position()))

    def success(self) -> bool:
        """True when the end effector is within the task's success radius of the goal."""
        return self.target_distance() <= self.task.config.success_radius
