"""Pick and place: grasp the object and put it down on the blue plate.

Initial state: the object and the plate at random free spots in the robot's workspace (at
least 10 cm apart), the object turned at random about the vertical. Stages: ``reach`` (the
open gripper around the object), ``grasp`` (both fingers touch it), ``lift`` (3 cm above the
table), ``place`` = success (resting on the plate, released: no finger touches it).
Training object: a red 2.5 cm cube; held-out: a green can (cylinder r 1.5 cm, 4 cm tall).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mujoco
import numpy as np

from human_video_policy.sim.arm_expert import ArmTarget, nearest_symmetric_yaw
from human_video_policy.sim.scene import add_marker, set_free_pose
from human_video_policy.sim.tasks import register
from human_video_policy.sim.tasks.base import Level, Task
from human_video_policy.sim.tasks.common import (
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    ObjectVariant,
    Phases,
    VariantSet,
    object_yaw,
    radial_closing_yaw,
    widowx_expert,
)

if TYPE_CHECKING:
    from human_video_policy.policies.base import Policy
    from human_video_policy.sim.task_world import TaskWorld

PLATE_RADIUS = 0.04
CUBE = ObjectVariant(
    "cube", "box", (0.0125, 0.0125, 0.0125), (0.85, 0.1, 0.08, 1.0), 0.05, np.pi / 2
)
CAN = ObjectVariant("can", "cylinder", (0.015, 0.02), (0.15, 0.65, 0.2, 1.0), 0.05, 0.0)
FINGERS = ("left_finger", "right_finger")


def finger_contacts(world: TaskWorld, geom: int) -> set[int]:
    """Finger geom ids touching ``geom`` now."""
    found = set()
    fingers = {world.model.geom(f).id for f in FINGERS}
    for i in range(world.data.ncon):
        c = world.data.contact[i]
        pair = {int(c.geom1), int(c.geom2)}
        if geom in pair:
            found |= pair & fingers
    return found


@register
class PickPlace(Task):
    name = "pick_place"
    description = "grasp the object and put it down on the blue plate"
    tags = ("gripper", "grasp", "position")
    robots = ("widowx",)
    stages = ("reach", "grasp", "lift", "place")
    max_episode_s = 15.0

    def __init__(self, robot) -> None:
        super().__init__(robot)
        self.objects = VariantSet(CUBE, CAN)

    def add_objects(self, spec: mujoco.MjSpec) -> None:
        self.objects.add_to(spec)
        add_marker(spec, "plate", PLATE_RADIUS, (0.15, 0.3, 0.9, 1.0))

    def bind(self, model: mujoco.MjModel) -> None:
        self._plate = model.body_mocapid[model.body("plate").id]

    @property
    def obj(self) -> ObjectVariant:
        return self.objects.active

    def initialize(self, world: TaskWorld, rng: np.random.Generator, level: Level) -> None:
        obj = self.objects.choose(world, level)
        r = self.robot
        spot = world.free_spot(rng, r.workspace_x, r.workspace_y, 0.1)
        plate = world.free_spot(rng, r.workspace_x, r.workspace_y, 0.12)
        set_free_pose(
            world.model,
            world.data,
            obj.name,
            spot + np.array([0.0, 0.0, obj.half_height]),
            float(rng.uniform(-np.pi, np.pi)),
        )
        world.data.mocap_pos[self._plate] = plate

    def plate_position(self, world: TaskWorld) -> np.ndarray:
        return world.data.mocap_pos[self._plate].copy()

    def check_stages(self, world: TaskWorld) -> tuple[dict[str, bool], bool]:
        obj = self.obj
        pos = world.body_position(obj.name)
        ee = world.ee_position()
        touching = finger_contacts(world, world.model.geom(obj.name).id)
        reach = bool(np.linalg.norm(ee - pos - np.array([0.0, 0.0, 0.008])) < 0.02)
        grasp = len(touching) == 2
        lift = grasp and pos[2] > obj.half_height + 0.03
        on_plate = np.linalg.norm(pos[:2] - self.plate_position(world)[:2]) < PLATE_RADIUS
        resting = abs(pos[2] - obj.half_height) < 0.005
        success = bool(on_plate and resting and not touching)
        return {"reach": reach, "grasp": grasp, "lift": lift, "place": success}, success

    def expert(self, world: TaskWorld) -> Policy:
        return widowx_expert(world, PickPlaceScript(self))


class PickPlaceScript:
    """approach above -> descend -> close -> lift -> carry -> lower -> open -> retreat."""

    LIFT = 0.08
    GRASP_ABOVE_CENTRE = 0.006

    def __init__(self, task: PickPlace) -> None:
        self.task = task
        self.phases = Phases()

    def __call__(self, world: TaskWorld) -> ArmTarget:
        p = self.phases
        p.sync(world)
        task, obj = self.task, self.task.obj
        pos = world.body_position(obj.name)
        ee = world.ee_position()
        plate = task.plate_position(world)
        rest_z = obj.half_height
        if "yaw" not in p.memory or p.phase == 0:
            reference = radial_closing_yaw(pos)
            yaw = reference
            if obj.yaw_symmetry:
                yaw = nearest_symmetric_yaw(
                    object_yaw(world, obj.name), reference, obj.yaw_symmetry
                )
            p.memory["yaw"] = yaw
        yaw = float(p.memory["yaw"])
        grasp_point = pos + np.array([0.0, 0.0, self.GRASP_ABOVE_CENTRE])
        above = pos + np.array([0.0, 0.0, self.LIFT])
        dropped = (
            p.phase in (4, 5)
            and pos[2] < rest_z + 0.01
            and (np.linalg.norm(pos[:2] - plate[:2]) > PLATE_RADIUS)
        )
        if dropped:
            p.go(0, world)
        if p.phase == 0:  # above the object, open
            if np.linalg.norm(ee - above) < 0.015:
                p.go(1, world)
            return ArmTarget(above, yaw, GRIPPER_OPEN)
        if p.phase == 1:  # down around it
            if np.linalg.norm(ee - grasp_point) < 0.006 or p.elapsed(world) > 2.5:
                p.go(2, world)
            return ArmTarget(grasp_point, yaw, GRIPPER_OPEN)
        if p.phase == 2:  # close
            if p.elapsed(world) > 0.6:
                p.memory["grasp_z"] = float(ee[2])
                p.go(3, world)
            return ArmTarget(grasp_point, yaw, GRIPPER_CLOSED)
        carry_z = rest_z + self.LIFT
        if p.phase == 3:  # lift
            lifted = np.array([ee[0], ee[1], carry_z + self.GRASP_ABOVE_CENTRE])
            if ee[2] > carry_z - 0.01:
                p.go(4, world)
            return ArmTarget(lifted, yaw, GRIPPER_CLOSED)
        over_plate = np.array([plate[0], plate[1], carry_z + self.GRASP_ABOVE_CENTRE])
        if p.phase == 4:  # carry over the plate
            if np.linalg.norm(ee[:2] - plate[:2]) < 0.008:
                p.go(5, world)
            return ArmTarget(over_plate, yaw, GRIPPER_CLOSED)
        put = np.array([plate[0], plate[1], rest_z + self.GRASP_ABOVE_CENTRE + 0.004])
        if p.phase == 5:  # lower
            if ee[2] < put[2] + 0.006 or p.elapsed(world) > 2.5:
                p.go(6, world)
            return ArmTarget(put, yaw, GRIPPER_CLOSED)
        if p.phase == 6:  # open
            if p.elapsed(world) > 0.5:
                p.go(7, world)
            return ArmTarget(put, yaw, GRIPPER_OPEN)
        return ArmTarget(over_plate, yaw, GRIPPER_OPEN)  # retreat
