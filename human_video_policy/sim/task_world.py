"""A MuJoCo world running one benchmark task on one robot.

The scene is composed (sim/scene.py): tabletop + robot + scene camera + the task's objects +
distractors; the world is the same position-controlled world base as the reach worlds
(:class:`~human_video_policy.sim.world_base.PositionControlledWorld`): joint position commands
in, joint states and camera images out, all in the robot's base frame (the world origin).
``reset(seed, level)`` puts the robot at home and lets the task draw its initial state; the
level adds distractors (``scene``), random table textures, colours and light (``background``)
and the task's held-out object (``new_object``).

Rendering is offscreen: with no display, ``MUJOCO_GL`` defaults to ``egl``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mujoco
import numpy as np

from human_video_policy.errors import ConfigError
from human_video_policy.sim.scene import SceneRobot, compose_scene, scene_robot
from human_video_policy.sim.tasks.base import Level, Task, TaskScore
from human_video_policy.sim.world_base import PositionControlledWorld
from human_video_policy.validation import check_int_range, check_range

DISTRACTOR_COUNT = 3
# (shape, MJCF size, half height): a cube, a can and a ball.
_DISTRACTOR_SHAPES = (
    (mujoco.mjtGeom.mjGEOM_BOX, (0.016, 0.016, 0.016), 0.016),
    (mujoco.mjtGeom.mjGEOM_CYLINDER, (0.018, 0.02, 0.0), 0.02),
    (mujoco.mjtGeom.mjGEOM_SPHERE, (0.017, 0.0, 0.0), 0.017),
)
_PARKED = np.array([0.0, 0.0, -1.0])  # under the table, out of sight


@dataclass
class TaskWorldConfig:
    """Settings of :class:`TaskWorld`.

    Attributes:
        task: registered task name (``hvp bench --list`` shows them).
        robot: robot name (``widowx``, ``rm75_xhand``).
        image_width, image_height: rendered image size in pixels (1..1280 x 1..960).
        max_depth_m: depth beyond this (m) is reported as 0.0 = no return.
        distractor_min_spacing: distractors stand at least this far (m) from the task's
            objects and from each other.
    """

    task: str = "push"
    robot: str = "widowx"
    image_width: int = 128
    image_height: int = 128
    max_depth_m: float = 10.0
    distractor_min_spacing: float = 0.07

    def __post_init__(self) -> None:
        check_int_range("image_width", self.image_width, 1, 1280)
        check_int_range("image_height", self.image_height, 1, 960)
        check_range("max_depth_m", self.max_depth_m, 0.1, 65.0)
        check_range("distractor_min_spacing", self.distractor_min_spacing, 0.0, 0.3)


class TaskWorld(PositionControlledWorld):
    """One task on one robot; see the module docstring. Not thread-safe; close() it."""

    camera_name: ClassVar[str] = "scene_camera"

    def __init__(self, config: TaskWorldConfig | None = None) -> None:
        from human_video_policy.sim.tasks import make_task

        self.config = config or TaskWorldConfig()
        self.robot: SceneRobot = self._scene_robot()
        self.task: Task = make_task(self.config.task, self.robot)
        spec = self._compose_scene()
        try:
            self.model = spec.compile()
        except ValueError as exc:
            raise ConfigError(f"task {self.config.task!r} scene does not compile: {exc}") from exc
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.joint_names = self.robot.command_joints
        self.state_joint_names = self.robot.state_joints
        try:
            self._bind_joints(self.state_joint_names, self.joint_names)
            self._base_body = m.body(self.robot.base_body).id
            self._ee_site = m.site(self.robot.ee_site).id
        except (KeyError, StopIteration) as exc:
            raise ConfigError(
                f"robot {self.robot.name!r} model lacks what it declares: {exc}"
            ) from exc
        self._mirror = [
            (self.state_joint_names.index(n), i)
            for i, n in enumerate(self.state_joint_names)
            if n not in self.joint_names
        ]
        self._distractors = [
            m.body_mocapid[m.body(f"distractor_{i}").id] for i in range(DISTRACTOR_COUNT)
        ]
        self._table_mat = m.material("table").id
        self._backdrop_mat = m.material("backdrop").id
        self._table_textures = [
            m.texture(i).id for i in range(m.ntex) if m.texture(i).name.startswith("table_")
        ]
        self._table_texid = m.mat_texid[self._table_mat].copy()
        self._table_texrepeat = m.mat_texrepeat[self._table_mat].copy()
        self._defaults = (
            m.mat_rgba[self._table_mat].copy(),
            m.mat_rgba[self._backdrop_mat].copy(),
            m.light_diffuse[0].copy(),
        )
        self.task.bind(m)
        c = self.config
        self._init_home_and_camera(
            self.robot.home,
            m.camera(self.camera_name).id,
            (c.image_width, c.image_height),
            c.max_depth_m,
            f"{self.camera_name}_optical_frame",
        )
        self.seed: int | None = None
        self.level = Level.POSITION
        self.occupied: list[np.ndarray] = []
        self.reset(0)

    def _scene_robot(self) -> SceneRobot:
        """What stands at the base frame: ``config.robot`` (a subclass may put a human hand
        there, sim/human_demo.py)."""
        return scene_robot(self.config.robot)

    def _compose_scene(self) -> mujoco.MjSpec:
        """The scene to compile: tabletop, robot, scene camera, the task's objects."""
        return compose_scene(self.robot, self._add_objects)

    def _add_objects(self, spec: mujoco.MjSpec) -> None:
        self.task.add_objects(spec)
        for i, (shape, size, half_height) in enumerate(_DISTRACTOR_SHAPES[:DISTRACTOR_COUNT]):
            body = spec.worldbody.add_body(name=f"distractor_{i}", pos=list(_PARKED), mocap=True)
            body.add_geom(
                name=f"distractor_{i}",
                type=shape,
                size=list(size),
                pos=[0.0, 0.0, half_height],
                rgba=[0.2, 0.2, 0.2, 1.0],
                contype=0,
                conaffinity=0,
                group=1,
            )

    # -- episode -----------------------------------------------------------------------------
    def reset(self, seed: int, level: Level | str = Level.POSITION) -> None:
        """Robot at home and at rest; the task's initial state, distractors, colours and light
        drawn from ``seed`` at ``level``; time = 0."""
        self.seed = self._check_seed(seed)
        self.level = Level.parse(level)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        home_state = np.zeros(len(self.state_joint_names))
        home_state[: len(self.joint_names)] = self.home_position
        for state_i, command_i in self._mirror:
            home_state[state_i] = -home_state[command_i]
        d.qpos[self._qpos_index] = home_state
        d.ctrl[self._actuator_index] = self.home_position
        rng = np.random.default_rng(self.seed)
        self.occupied = []
        self.task.tracker.reset()
        self.task.initialize(self, rng, self.level)
        self._place_distractors(rng)
        self._set_appearance(rng)
        mujoco.mj_forward(m, d)

    def free_spot(
        self,
        rng: np.random.Generator,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        clearance: float,
    ) -> np.ndarray:
        """A table point (x, y, 0) in the ranges at least ``clearance`` (m) from every spot
        handed out this episode; it is then occupied."""
        for _ in range(2000):
            spot = np.array([rng.uniform(*x_range), rng.uniform(*y_range), 0.0])
            if all(np.linalg.norm(spot[:2] - o[:2]) >= clearance for o in self.occupied):
                self.occupied.append(spot)
                return spot
        raise ConfigError(f"no free table spot in x {x_range}, y {y_range} with {clearance} m")

    def _place_distractors(self, rng: np.random.Generator) -> None:
        d = self.data
        with_distractors = self.level.rank >= Level.SCENE.rank
        r = self.robot
        for i, mocap in enumerate(self._distractors):
            if with_distractors and i < 2 + int(rng.integers(0, 2)):
                spot = self.free_spot(
                    rng,
                    (r.workspace_x[0] - 0.03, r.workspace_x[1] + 0.03),
                    (r.workspace_y[0] - 0.05, r.workspace_y[1] + 0.05),
                    self.config.distractor_min_spacing,
                )
                d.mocap_pos[mocap] = spot
                geom = self.model.body_geomadr[self.model.body(f"distractor_{i}").id]
                self.model.geom_rgba[geom, :3] = rng.uniform(0.1, 0.9, 3)
            else:
                d.mocap_pos[mocap] = _PARKED

    def _set_appearance(self, rng: np.random.Generator) -> None:
        m = self.model
        table, backdrop, light = self._defaults
        m.mat_rgba[self._table_mat] = table
        m.mat_rgba[self._backdrop_mat] = backdrop
        m.light_diffuse[0] = light
        m.mat_texid[self._table_mat] = self._table_texid
        m.mat_texrepeat[self._table_mat] = self._table_texrepeat
        if self.level.rank >= Level.BACKGROUND.rank:
            choice = int(rng.integers(0, len(self._table_textures) + 1))  # 0 = plain
            if choice:
                m.mat_texid[self._table_mat, mujoco.mjtTextureRole.mjTEXROLE_RGB] = (
                    self._table_textures[choice - 1]
                )
                m.mat_texrepeat[self._table_mat] = rng.uniform(4.0, 12.0, 2)
            m.mat_rgba[self._table_mat, :3] = rng.uniform(0.25, 0.85, 3)
            m.mat_rgba[self._backdrop_mat, :3] = rng.uniform(0.1, 0.9, 3)
            m.light_diffuse[0] = rng.uniform(0.3, 0.7) * np.ones(3)

    def evaluate(self) -> TaskScore:
        """The task's score for the episode so far (stages latch)."""
        return self.task.evaluate(self)

    @property
    def max_episode_s(self) -> float:
        return float(self.task.max_episode_s)

    # -- state -------------------------------------------------------------------------------
    def ee_position(self) -> np.ndarray:
        """(3,) end-effector site position in the base frame."""
        return self._in_base(self.data.site_xpos[self._ee_site])

    def ee_rotation(self) -> np.ndarray:
        """(3, 3) end-effector site orientation in the base frame."""
        return self._base_rotation().T @ self.data.site_xmat[self._ee_site].reshape(3, 3)

    def body_position(self, name: str) -> np.ndarray:
        """(3,) position of body ``name`` in the base frame."""
        return self._in_base(self.data.xpos[self.model.body(name).id])

    def body_rotation(self, name: str) -> np.ndarray:
        """(3, 3) orientation of body ``name`` in the base frame."""
        return self._base_rotation().T @ self.data.xmat[self.model.body(name).id].reshape(3, 3)
