"""Pieces the tasks share: object variants (training and held-out), parking the unused ones,
the expert factories (WidowX gripper, RM75 + XHand hand) and the phase bookkeeping of scripted
experts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from human_video_policy.sim.arm_expert import (
    ArmExpertConfig,
    ArmTarget,
    HandGrip,
    ScriptedArmExpert,
)
from human_video_policy.sim.scene import add_free_box, add_free_cylinder, set_free_pose
from human_video_policy.sim.tasks.base import Level

if TYPE_CHECKING:
    from human_video_policy.sim.task_world import TaskWorld

GRIPPER_OPEN = 0.037
GRIPPER_CLOSED = 0.015


@dataclass(frozen=True)
class ObjectVariant:
    """One graspable/pushable object a task may use.

    Attributes:
        name: body (and geom) name.
        shape: ``box`` (half sizes x, y, z) or ``cylinder`` (radius, half height).
        size: the shape's sizes (m).
        rgba: colour.
        mass: kg.
        yaw_symmetry: rotation (rad) that leaves the shape unchanged for a grasp (box: pi/2,
            cylinder: 0 = any).
    """

    name: str
    shape: str
    size: tuple[float, ...]
    rgba: tuple[float, float, float, float]
    mass: float
    yaw_symmetry: float

    @property
    def half_height(self) -> float:
        return self.size[2] if self.shape == "box" else self.size[1]

    @property
    def radius(self) -> float:
        """Half the object's width across its narrow side (m)."""
        return min(self.size[:2]) if self.shape == "box" else self.size[0]

    def add_to(self, spec: mujoco.MjSpec) -> None:
        if self.shape == "box":
            add_free_box(spec, self.name, self.size, self.rgba, self.mass)  # type: ignore[arg-type]
        else:
            add_free_cylinder(spec, self.name, self.size[0], self.size[1], self.rgba, self.mass)


class VariantSet:
    """A task's training object and its held-out object; the one not in use is parked out of
    sight, floating (gravity compensated)."""

    def __init__(self, training: ObjectVariant, held_out: ObjectVariant) -> None:
        self.variants = (training, held_out)
        self.active = training

    def add_to(self, spec: mujoco.MjSpec) -> None:
        for variant in self.variants:
            variant.add_to(spec)

    def choose(self, world: TaskWorld, level: Level) -> ObjectVariant:
        """The variant for ``level`` (held out at ``new_object`` and beyond); parks the other."""
        self.active = self.variants[1 if level.rank >= Level.NEW_OBJECT.rank else 0]
        for i, variant in enumerate(self.variants):
            body = world.model.body(variant.name).id
            parked = variant is not self.active
            world.model.body_gravcomp[body] = 1.0 if parked else 0.0
            if parked:
                set_free_pose(world.model, world.data, variant.name, np.array([-0.3, 1.5 + i, 0.5]))
        return self.active


def touching(world: TaskWorld, geom: int) -> set[int]:
    """Ids of the geoms in contact with geom ``geom`` now (the detectors' one contact scan)."""
    found = set()
    for i in range(world.data.ncon):
        c = world.data.contact[i]
        if c.geom1 == geom:
            found.add(int(c.geom2))
        elif c.geom2 == geom:
            found.add(int(c.geom1))
    return found


def widowx_expert(world: TaskWorld, script) -> ScriptedArmExpert:
    """A :class:`ScriptedArmExpert` for the WidowX (6 arm joints + left_finger)."""
    from human_video_policy.policies.action_spaces import WIDOWX_JOINT_POSITION

    return ScriptedArmExpert(
        world, script, world.joint_names[:6], "left_finger", WIDOWX_JOINT_POSITION
    )


def xhand_palm_down(pitch: float = 0.0) -> np.ndarray:
    """The XHand's end-effector site axes (right_hand_ee_link: fingers -z, thumb +x, palm
    normal +y) in the gripper frame of arm_expert.target_rotation (x pointing, y closing) for a
    palm-down hand whose fingers point along the closing direction, tipped ``pitch`` rad down:
    the thumb (behind the object) and the fingers (beyond it) close along that direction."""
    c, s = math.cos(pitch), math.sin(pitch)
    # Palm normal: down, leaning back; fingers: forward, tipped down; thumb side: the rest.
    palm, fingers = np.array([c, -s, 0.0]), np.array([s, c, 0.0])
    return np.column_stack([np.cross(palm, -fingers), palm, -fingers])


# How the XHand grasps (pick_place; SceneRobot.grasp_center assumes it): palm down, fingers
# tipped 0.4 rad down, so the fingertips reach the lower half of a hand-sized object while the
# thumb, hooked under the palm behind it, stays clear of the table.
XHAND_GRASP_AXES = xhand_palm_down(0.4)


# Short steps toward each target: the RM75 turns the hand through joint space, and a far goal
# (e.g. from pointing down at home to palm down) would sweep the hand through the objects.
RM75_EXPERT = ArmExpertConfig(max_step_m=0.05, max_turn_rad=0.3)


def rm75_xhand_expert(
    world: TaskWorld, script, grip: HandGrip, ee_axes: np.ndarray = XHAND_GRASP_AXES
) -> ScriptedArmExpert:
    """A :class:`ScriptedArmExpert` for the RM75 + XHand: IK on the 7 arm joints, the script's
    gripper value (0 = open .. 1 = closed) drives the hand through ``grip``."""
    from human_video_policy.policies.action_spaces import RM75_XHAND_JOINT_POSITION
    from human_video_policy.robots.rm75 import RM75_ARM_JOINTS

    return ScriptedArmExpert(
        world, script, RM75_ARM_JOINTS, grip, RM75_XHAND_JOINT_POSITION, RM75_EXPERT, ee_axes
    )


def turned_within(world: TaskWorld, want: np.ndarray, angle: float) -> bool:
    """Whether the end-effector site's rotation is within ``angle`` (rad) of ``want`` (3, 3):
    an expert that turns in steps (RM75_EXPERT) descends only once turned, or the sweep of the
    still turning hand hits what it reaches for."""
    cos = (float(np.trace(want.T @ world.ee_rotation())) - 1.0) / 2.0
    return cos > math.cos(angle)


def radial_closing_yaw(point: np.ndarray) -> float:
    """The closing direction of a top-down gripper above ``point`` with wrist_rotate at 0
    (perpendicular to the direction from the base)."""
    return math.atan2(point[1], point[0]) + math.pi / 2


def object_yaw(world: TaskWorld, name: str) -> float:
    """Rotation (rad) of body ``name`` about the vertical."""
    rot = world.body_rotation(name)
    return math.atan2(rot[1, 0], rot[0, 0])


class Phases:
    """Phase index and timing of a scripted expert, reset when a new episode starts."""

    def __init__(self) -> None:
        self.phase = 0
        self.since = 0.0
        self._episode: tuple[int | None, float] = (None, math.inf)
        self.memory: dict[str, np.ndarray | float] = {}

    def sync(self, world: TaskWorld) -> None:
        """Start over when the world was reset (new seed or time went back)."""
        if world.seed != self._episode[0] or world.time < self._episode[1]:
            self.phase, self.since, self.memory = 0, world.time, {}
        self._episode = (world.seed, world.time)

    def go(self, phase: int, world: TaskWorld) -> None:
        self.phase, self.since = phase, world.time

    def elapsed(self, world: TaskWorld) -> float:
        return world.time - self.since


def hold(position: np.ndarray, yaw: float, gripper: float) -> ArmTarget:
    return ArmTarget(np.asarray(position, dtype=np.float64), yaw, gripper)


def touching_any(world: TaskWorld, geoms: set[int] | frozenset[int]) -> set[int]:
    """Ids of the geoms in contact with any of ``geoms`` now (one scan, for a body of many
    geoms)."""
    found = set()
    for i in range(world.data.ncon):
        c = world.data.contact[i]
        g1, g2 = int(c.geom1), int(c.geom2)
        if g1 in geoms:
            found.add(g2)
        if g2 in geoms:
            found.add(g1)
    return found


def held_between(touched: set[int], part_count: int) -> bool:
    """Whether the grasp parts ``touched`` (indices into SceneRobot.grasp_parts, of which the
    robot has ``part_count``) hold an object between them: a gripper's two fingers both; a
    hand's (palm, thumb, then fingers) a finger and the thumb or the palm, so fingers alone
    hooking or pushing it are no grasp."""
    if part_count <= 2:
        return len(touched) == part_count
    return bool(touched & {0, 1}) and bool(touched - {0, 1})
