"""Push: slide the object along the table onto the yellow goal disc.

Initial state: the object at a random free spot, the goal 8-12 cm from it in a random direction
inside the workspace. Stages: ``contact`` (the robot touches the object), ``move`` (the object
is 3 cm closer to the goal than at the start), ``goal`` = success (its centre within 2.5 cm of
the goal's). Training object: a 3 cm orange block; held-out: a purple puck (cylinder r 2 cm).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from human_video_policy.sim.arm_expert import ArmTarget
from human_video_policy.sim.scene import add_marker, set_free_pose
from human_video_policy.sim.tasks import register
from human_video_policy.sim.tasks.base import Level, Task
from human_video_policy.sim.tasks.common import (
    GRIPPER_CLOSED,
    ObjectVariant,
    Phases,
    VariantSet,
    touching,
    widowx_expert,
)

if TYPE_CHECKING:
    from human_video_policy.policies.base import Policy
    from human_video_policy.sim.task_world import TaskWorld

GOAL_RADIUS = 0.025
BLOCK = ObjectVariant("block", "box", (0.015, 0.015, 0.015), (0.95, 0.5, 0.1, 1.0), 0.08, np.pi / 2)
PUCK = ObjectVariant("puck", "cylinder", (0.02, 0.012), (0.55, 0.2, 0.75, 1.0), 0.08, 0.0)


def robot_touches(world: TaskWorld, geom: int) -> bool:
    """Does any geom of the robot touch geom ``geom`` now?"""
    robot_root = world.model.body(world.robot.base_body).id
    m = world.model
    return any(m.body_rootid[m.geom_bodyid[g]] == robot_root for g in touching(world, geom))


@register
class Push(Task):
    name = "push"
    description = "slide the object onto the yellow goal disc"
    tags = ("gripper", "contact", "position")
    robots = ("widowx",)
    stages = ("contact", "move", "goal")
    max_episode_s = 15.0

    def __init__(self, robot) -> None:
        super().__init__(robot)
        self.objects = VariantSet(BLOCK, PUCK)
        self.start_distance = 0.0

    def add_objects(self, spec: mujoco.MjSpec) -> None:
        self.objects.add_to(spec)
        add_marker(spec, "goal", GOAL_RADIUS, (0.95, 0.85, 0.1, 1.0))

    def bind(self, model: mujoco.MjModel) -> None:
        self._goal = model.body_mocapid[model.body("goal").id]

    @property
    def obj(self) -> ObjectVariant:
        return self.objects.active

    def initialize(self, world: TaskWorld, rng: np.random.Generator, level: Level) -> None:
        obj = self.objects.choose(world, level)
        r = self.robot
        x_range = (r.workspace_x[0] + 0.03, r.workspace_x[1] - 0.03)
        y_range = (r.workspace_y[0] + 0.03, r.workspace_y[1] - 0.03)
        for _ in range(1000):
            start = np.array([rng.uniform(*x_range), rng.uniform(*y_range), 0.0])
            angle = rng.uniform(-np.pi, np.pi)
            goal = start + rng.uniform(0.08, 0.12) * np.array([np.cos(angle), np.sin(angle), 0.0])
            # Pushing needs room behind the object for the gripper, inside the workspace.
            behind = start - 0.05 * (goal - start) / np.linalg.norm(goal - start)
            inside = all(
                x_range[0] <= p[0] <= x_range[1] and y_range[0] <= p[1] <= y_range[1]
                for p in (goal, behind)
            )
            if inside:
                break
        world.occupied += [start, goal]
        set_free_pose(
            world.model,
            world.data,
            obj.name,
            start + np.array([0.0, 0.0, obj.half_height]),
            float(rng.uniform(-np.pi, np.pi)),
        )
        world.data.mocap_pos[self._goal] = goal
        self.start_distance = float(np.linalg.norm(goal[:2] - start[:2]))

    def goal_position(self, world: TaskWorld) -> np.ndarray:
        return world.data.mocap_pos[self._goal].copy()

    def check_stages(self, world: TaskWorld) -> tuple[dict[str, bool], bool]:
        pos = world.body_position(self.obj.name)
        distance = float(np.linalg.norm(pos[:2] - self.goal_position(world)[:2]))
        contact = robot_touches(world, world.model.geom(self.obj.name).id)
        success = distance < GOAL_RADIUS
        return {"contact": contact, "move": distance < self.start_distance - 0.03}, success

    def expert(self, world: TaskWorld) -> Policy:
        return widowx_expert(world, PushScript(self))


class PushScript:
    """Above the point behind the object -> down -> push along the object-to-goal line,
    re-aiming each tick; back off and re-approach when the object slides off the line."""

    HEIGHT = 0.028  # end-effector height while pushing (fingertips ~1.2 cm above the table)
    ABOVE = 0.08

    def __init__(self, task: Push) -> None:
        self.task = task
        self.phases = Phases()

    def __call__(self, world: TaskWorld) -> ArmTarget:
        p = self.phases
        p.sync(world)
        obj = self.task.obj
        pos = world.body_position(obj.name)
        goal = self.task.goal_position(world)
        ee = world.ee_position()
        to_goal = goal[:2] - pos[:2]
        distance = float(np.linalg.norm(to_goal))
        direction = to_goal / max(distance, 1e-6)
        yaw = math.atan2(direction[1], direction[0]) + math.pi / 2
        standoff = obj.radius + 0.022
        behind = np.array([*(pos[:2] - direction * standoff), self.HEIGHT])
        if p.phase == 0:  # above the point behind the object
            target = behind + np.array([0.0, 0.0, self.ABOVE])
            if np.linalg.norm(ee - target) < 0.015:
                p.go(1, world)
            return ArmTarget(target, yaw, GRIPPER_CLOSED)
        if p.phase == 1:  # down behind it
            if np.linalg.norm(ee - behind) < 0.008:
                p.go(2, world)
            return ArmTarget(behind, yaw, GRIPPER_CLOSED)
        # Push: aim at the object's far side; off the line -> lift and re-approach.
        offset = ee[:2] - pos[:2]
        lateral = abs(offset[0] * direction[1] - offset[1] * direction[0])
        if p.phase == 2 and (lateral > 0.012 or float(offset @ direction) > 0.0):
            p.go(3, world)
        if p.phase == 3:  # back off upward, then approach again
            up = np.array([ee[0], ee[1], self.HEIGHT + self.ABOVE])
            if ee[2] > self.HEIGHT + self.ABOVE - 0.02:
                p.go(0, world)
            return ArmTarget(up, yaw, GRIPPER_CLOSED)
        step = min(0.03, distance + 0.005)
        push = np.array([*(pos[:2] - direction * (standoff - step)), self.HEIGHT])
        return ArmTarget(push, yaw, GRIPPER_CLOSED)
