"""Stack: put the object on top of the wooden block. The benchmark's ``new_skill`` task.

Why it exists: the ``new_skill`` level (human_video_prompt_policy.txt, section IV) asks for a
skill the robot saw only in human videos. Stacking is pick-and-place onto a raised, small
target: the same motions, but the place height and precision are new, so a robot policy that
only copies its robot demonstrations of pick_place puts the object beside the block, and one
that follows the human prompt video can stack it. The task is tagged ``human_only``:
``hvp bench`` runs it only at ``new_skill``, and robot demonstrations of it are refused
(``record_task_demos``, ``hvp dataset from-sim``); the scripted robot expert exists for the
table's upper bound.

Initial state: as pick_place, with a fixed wooden block (5 x 5 cm, 3 cm tall) where the plate
would be. Stages: ``reach``, ``grasp``, ``lift`` (as pick_place), ``place`` = success (the
object resting on the block's top, its centre within 1.8 cm of the block's axis, released).
Objects: pick_place's (a red 2.5 cm cube; held out: a green can).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mujoco
import numpy as np

from human_video_policy.sim.scene import OBJECT_CONAFFINITY, OBJECT_CONTYPE
from human_video_policy.sim.tasks import register
from human_video_policy.sim.tasks.base import Level
from human_video_policy.sim.tasks.pick_place import PickPlace

if TYPE_CHECKING:
    from human_video_policy.sim.task_world import TaskWorld

BLOCK_HALF = (0.025, 0.025, 0.015)  # half sizes (m): 5 x 5 cm, 3 cm tall
BLOCK_RGBA = (0.62, 0.45, 0.27, 1.0)
PLACE_RADIUS = 0.018  # object centre within this of the block's axis (m)


@register
class Stack(PickPlace):
    name = "stack"
    description = "put the object on top of the wooden block"
    tags = ("gripper", "grasp", "human_only")
    robots = ("widowx",)
    stages = ("reach", "grasp", "lift", "place")
    max_episode_s = 15.0

    def add_objects(self, spec: mujoco.MjSpec) -> None:
        self.objects.add_to(spec)
        block = spec.worldbody.add_body(name="block", pos=[0.3, 0.0, BLOCK_HALF[2]], mocap=True)
        block.add_geom(
            name="block",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=list(BLOCK_HALF),
            rgba=list(BLOCK_RGBA),
            contype=OBJECT_CONTYPE,
            conaffinity=OBJECT_CONAFFINITY,
            condim=4,
            group=1,
        )

    def bind(self, model: mujoco.MjModel) -> None:
        self._plate = model.body_mocapid[model.body("block").id]
        self._parts = [{model.geom(g).id for g in part} for part in self.robot.grasp_parts]

    def initialize(self, world: TaskWorld, rng: np.random.Generator, level: Level) -> None:
        super().initialize(world, rng, level)
        world.data.mocap_pos[self._plate, 2] = BLOCK_HALF[2]

    def plate_position(self, world: TaskWorld) -> np.ndarray:
        """(3,) the centre of the block's top face."""
        return world.data.mocap_pos[self._plate] + np.array([0.0, 0.0, BLOCK_HALF[2]])

    def rest_height(self) -> float:
        return 2 * BLOCK_HALF[2] + self.obj.half_height

    def place_radius(self) -> float:
        return PLACE_RADIUS
