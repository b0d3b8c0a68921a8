"""Pick and place: grasp the object and put it down on the blue plate.

Initial state: the object and the plate at random free spots in the robot's workspace (at
least 10 cm apart, 14 cm for the hand), the object turned at random about the vertical.
Stages: ``reach`` (the open gripper or hand around the object: the robot's grasp centre within
2 cm of the object's centre), ``grasp`` (two of the robot's grasp parts touch it: both WidowX
fingers; the XHand's thumb, fingers or palm), ``lift`` (3 cm above the table), ``place`` =
success (resting on the plate, released: no grasp part touches it).
Objects per robot: the WidowX's training object is a red 2.5 cm cube, held out a green can
(cylinder r 1.5 cm, 4 cm tall); the XHand's are hand-sized: a red 6 cm cube and a green can
(r 2.8 cm, 8 cm tall).

Experts: the WidowX closes its fingers across the object from above; the XHand grasps it
palm down, fingers pointing away from the base, the thumb behind the object and the fingers
curled down over its far side (see :class:`HandPickPlaceScript`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from human_video_policy.robots.xhand import XHAND_JOINTS
from human_video_policy.sim.arm_expert import (
    ArmTarget,
    HandGrip,
    nearest_symmetric_yaw,
    target_rotation,
)
from human_video_policy.sim.scene import add_marker, set_free_pose
from human_video_policy.sim.tasks import register
from human_video_policy.sim.tasks.base import Level, Task
from human_video_policy.sim.tasks.common import (
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    XHAND_GRASP_AXES,
    ObjectVariant,
    Phases,
    VariantSet,
    object_yaw,
    radial_closing_yaw,
    rm75_xhand_expert,
    touching,
    turned_within,
    widowx_expert,
)

if TYPE_CHECKING:
    from human_video_policy.policies.base import Policy
    from human_video_policy.sim.scene import SceneRobot
    from human_video_policy.sim.task_world import TaskWorld

PLATE_RADIUS = 0.04
CUBE = ObjectVariant(
    "cube", "box", (0.0125, 0.0125, 0.0125), (0.85, 0.1, 0.08, 1.0), 0.05, np.pi / 2
)
CAN = ObjectVariant("can", "cylinder", (0.015, 0.02), (0.15, 0.65, 0.2, 1.0), 0.05, 0.0)
# The XHand's fingers are 10 cm long and 1.6 cm thick: its objects are hand-sized.
HAND_CUBE = ObjectVariant("cube", "box", (0.03, 0.03, 0.03), (0.85, 0.1, 0.08, 1.0), 0.1, np.pi / 2)
HAND_CAN = ObjectVariant("can", "cylinder", (0.028, 0.04), (0.15, 0.65, 0.2, 1.0), 0.1, 0.0)
OBJECTS = {"widowx": (CUBE, CAN), "rm75_xhand": (HAND_CUBE, HAND_CAN)}
# Free-spot clearances (m) of the object and of the plate per robot: the hand holding the
# object must clear the plate's spot.
SPACING = {"widowx": (0.1, 0.12), "rm75_xhand": (0.14, 0.16)}


def part_contacts(world: TaskWorld, geom: int, parts: list[set[int]]) -> set[int]:
    """Indices of the grasp parts (sets of geom ids) touching ``geom`` now."""
    others = touching(world, geom)
    return {k for k, part in enumerate(parts) if others & part}


@register
class PickPlace(Task):
    name = "pick_place"
    description = "grasp the object and put it down on the blue plate"
    tags = ("gripper", "grasp", "position")
    robots = ("widowx", "rm75_xhand")
    stages = ("reach", "grasp", "lift", "place")
    max_episode_s = 15.0

    def __init__(self, robot: SceneRobot) -> None:
        super().__init__(robot)
        self.objects = VariantSet(*OBJECTS[robot.name])
        self.spacing = SPACING[robot.name]

    def add_objects(self, spec: mujoco.MjSpec) -> None:
        self.objects.add_to(spec)
        add_marker(spec, "plate", PLATE_RADIUS, (0.15, 0.3, 0.9, 1.0))

    def bind(self, model: mujoco.MjModel) -> None:
        self._plate = model.body_mocapid[model.body("plate").id]
        self._parts = [{model.geom(g).id for g in part} for part in self.robot.grasp_parts]

    @property
    def obj(self) -> ObjectVariant:
        return self.objects.active

    def initialize(self, world: TaskWorld, rng: np.random.Generator, level: Level) -> None:
        obj = self.objects.choose(world, level)
        r = self.robot
        spot = world.free_spot(rng, r.workspace_x, r.workspace_y, self.spacing[0])
        plate = world.free_spot(rng, r.workspace_x, r.workspace_y, self.spacing[1])
        set_free_pose(
            world.model,
            world.data,
            obj.name,
            spot + np.array([0.0, 0.0, obj.half_height]),
            float(rng.uniform(-np.pi, np.pi)),
        )
        world.data.mocap_pos[self._plate] = plate

    def plate_position(self, world: TaskWorld) -> np.ndarray:
        """(3,) the centre of the place target (the plate on the table)."""
        return world.data.mocap_pos[self._plate].copy()

    def rest_height(self) -> float:
        """Height (m) of the object's centre when it rests where it is to be placed."""
        return self.obj.half_height

    def place_radius(self) -> float:
        """The object counts as placed with its centre this close (m) to the target's,
        horizontally."""
        return PLATE_RADIUS

    def check_stages(self, world: TaskWorld) -> tuple[dict[str, bool], bool]:
        obj = self.obj
        pos = world.body_position(obj.name)
        centre = world.ee_position() + world.ee_rotation() @ np.asarray(self.robot.grasp_center)
        touching = self.touching(world)
        reach = bool(np.linalg.norm(centre - pos) < 0.02)
        grasp = len(touching) >= 2
        lift = grasp and pos[2] > obj.half_height + 0.03
        on_plate = np.linalg.norm(pos[:2] - self.plate_position(world)[:2]) < self.place_radius()
        resting = abs(pos[2] - self.rest_height()) < 0.005
        success = bool(on_plate and resting and not touching)
        return {"reach": reach, "grasp": grasp, "lift": lift, "place": success}, success

    def touching(self, world: TaskWorld) -> set[int]:
        """Indices of the robot's grasp parts touching the object now."""
        return part_contacts(world, world.model.geom(self.obj.name).id, self._parts)

    def expert(self, world: TaskWorld) -> Policy:
        if self.robot.name == "rm75_xhand":
            return rm75_xhand_expert(world, HandPickPlaceScript(self), HAND_GRIP)
        return widowx_expert(world, PickPlaceScript(self))


class PickPlaceScript:
    """approach above -> descend -> close -> lift -> carry -> lower -> open -> retreat.

    The phases are every robot's; where the end effector goes relative to the object, how the
    gripper closes and when a phase may end are the hook methods below (the WidowX's values
    here), which :class:`HandPickPlaceScript` overrides for the XHand.
    """

    LIFT = 0.08
    GRASP_ABOVE_CENTRE = 0.006
    OPEN = GRIPPER_OPEN
    CLOSED = GRIPPER_CLOSED
    CLOSE_S = 0.6  # time the closing phase waits
    OPEN_S = 0.5  # time the release phase waits
    HOLD_WHILE_CLOSING = False  # keep the grasp pose of the phase's start (not the object's)
    PUT_ABOVE = 0.004  # lower the object to this height (m) above resting, then open

    def __init__(self, task: PickPlace) -> None:
        self.task = task
        self.phases = Phases()

    def reference_yaw(self, pos: np.ndarray) -> float:
        """The closing direction the grasp prefers at object position ``pos``."""
        return radial_closing_yaw(pos)

    def offset(self, yaw: float) -> np.ndarray:
        """End-effector site minus object centre while grasping (m, base frame)."""
        return np.array([0.0, 0.0, self.GRASP_ABOVE_CENTRE])

    def approach_z(self, offset: np.ndarray) -> float:
        """Height (m) of the approach point above the object's centre."""
        return self.LIFT

    def closing(self, elapsed: float) -> float:
        """Gripper target ``elapsed`` seconds into the closing phase."""
        return self.CLOSED

    def aligned(self, world: TaskWorld, yaw: float) -> bool:
        """Whether the end effector is turned as the grasp at ``yaw`` needs (to descend)."""
        return True

    def lift_margin(self, offset: np.ndarray) -> float:
        """The lift phase ends once the site is this far (m) above the carry height of the
        object's centre."""
        return -0.01

    def carry_yaw(self, yaw: float, reference: float, plate: np.ndarray) -> float:
        """Closing direction over the plate, for a grasp at ``yaw`` where the preferred one was
        ``reference``."""
        return yaw

    def put_z(self, ee: np.ndarray, pos: np.ndarray, rest_z: float, offset: np.ndarray) -> float:
        """Site height (m) at which the held object (centre ``pos``) is let go."""
        return rest_z + offset[2] + self.PUT_ABOVE

    def __call__(self, world: TaskWorld) -> ArmTarget:
        p = self.phases
        p.sync(world)
        task, obj = self.task, self.task.obj
        pos = world.body_position(obj.name)
        ee = world.ee_position()
        plate = task.plate_position(world)
        rest_z = task.rest_height()
        if "yaw" not in p.memory or p.phase == 0:
            reference = self.reference_yaw(pos)
            p.memory["reference"] = reference
            yaw = reference
            if obj.yaw_symmetry:
                yaw = nearest_symmetric_yaw(
                    object_yaw(world, obj.name), reference, obj.yaw_symmetry
                )
            p.memory["yaw"] = yaw
        yaw = float(p.memory["yaw"])
        d = self.offset(yaw)
        grasp_point = pos + d
        above = pos + np.array([d[0], d[1], self.approach_z(d)])
        dropped = (
            p.phase in (4, 5)
            and pos[2] < rest_z + 0.01
            and (np.linalg.norm(pos[:2] - plate[:2]) > task.place_radius())
        )
        if dropped:
            p.go(0, world)
        if p.phase == 0:  # above the object, open
            if np.linalg.norm(ee - above) < 0.015 and self.aligned(world, yaw):
                p.go(1, world)
            return ArmTarget(above, yaw, self.OPEN)
        if p.phase == 1:  # down around it
            if np.linalg.norm(ee - grasp_point) < 0.006 or p.elapsed(world) > 2.5:
                p.memory["grasp_point"] = grasp_point
                p.go(2, world)
            return ArmTarget(grasp_point, yaw, self.OPEN)
        if p.phase == 2:  # close
            if self.HOLD_WHILE_CLOSING:
                grasp_point = np.asarray(p.memory["grasp_point"])
            closing = self.closing(p.elapsed(world))
            if p.elapsed(world) > self.CLOSE_S:
                p.memory["grasp_z"] = float(ee[2])
                p.go(3, world)
            return ArmTarget(grasp_point, yaw, closing)
        carry_z = rest_z + self.LIFT
        if p.phase == 3:  # lift
            lifted = np.array([ee[0], ee[1], carry_z + d[2]])
            if ee[2] > carry_z + self.lift_margin(d):
                p.go(4, world)
            return ArmTarget(lifted, yaw, self.CLOSED)
        yaw = self.carry_yaw(yaw, float(p.memory["reference"]), plate)
        d = self.offset(yaw)
        over_plate = np.array([plate[0] + d[0], plate[1] + d[1], carry_z + d[2]])
        if p.phase == 4:  # carry over the plate
            if np.linalg.norm(ee[:2] - over_plate[:2]) < 0.008:
                p.go(5, world)
            return ArmTarget(over_plate, yaw, self.CLOSED)
        put = np.array([over_plate[0], over_plate[1], self.put_z(ee, pos, rest_z, d)])
        if p.phase == 5:  # lower
            if ee[2] < put[2] + 0.006 or p.elapsed(world) > 2.5:
                p.memory["put"] = put
                p.go(6, world)
            return ArmTarget(put, yaw, self.CLOSED)
        if p.phase == 6:  # open
            if p.elapsed(world) > self.OPEN_S:
                p.go(7, world)
            return ArmTarget(np.asarray(p.memory["put"]), yaw, self.OPEN)
        return ArmTarget(over_plate, yaw, self.OPEN)  # retreat


# XHand postures (XHAND_JOINTS order: thumb bend, rota1, rota2; index bend, joint1, joint2;
# middle, ring, pinky joint1, joint2). Open: fingers straight, the thumb swung under the palm
# and hooked down, so it hangs behind the object as the hand comes down. Then the fingers curl
# down over the object's far side first (aimed past it, so the servos squeeze) while the thumb
# is half way; closed: the thumb's pad pushed forward against the object's near side. Thumb
# first would push the object away.
HAND_OPEN = (1.6, 0.1, 1.79, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
HAND_FINGERS_CLOSED = (1.6, 0.6, 1.05, 0.0, 0.7, 1.5, 0.7, 1.5, 0.7, 1.5, 0.7, 1.5)
HAND_CLOSED = (1.6, 1.1, 0.0, 0.0, 0.7, 1.5, 0.7, 1.5, 0.7, 1.5, 0.7, 1.5)
HAND_GRIP = HandGrip(XHAND_JOINTS, (HAND_OPEN, HAND_FINGERS_CLOSED, HAND_CLOSED))


class HandPickPlaceScript(PickPlaceScript):
    """The pick-and-place phases for the XHand (common.XHAND_GRASP_AXES: palm down, fingers
    pointing away from the base, or along the nearest face normal of a cube, tipped down): the
    end-effector site 4 cm behind the object's centre and 5.5 cm above its top; the hand closes
    over 0.6 s, the fingers wrapping the object's far side, then the thumb pressing its near
    side."""

    BEHIND = 0.04  # end-effector site behind the object's centre, horizontally (m)
    ABOVE_TOP = 0.055  # end-effector site above the object's top while grasping (m)
    APPROACH = 0.09  # approach this far above the grasp pose (m): the hooked thumb hangs low
    OPEN = 0.0
    CLOSED = 1.0
    CLOSE_S = 1.0
    RAMP_S = 0.6
    OPEN_S = 0.6
    # The fingers pull the object toward the thumb: following it would chase it.
    HOLD_WHILE_CLOSING = True
    ALIGNED_RAD = 0.05  # descend once the hand is turned within this (rad) of the grasp
    # The object hangs tilted a little in the hand: let it go before its edge hits the table.
    PUT_ABOVE = 0.012

    def reference_yaw(self, pos: np.ndarray) -> float:
        return math.atan2(pos[1], pos[0])

    def offset(self, yaw: float) -> np.ndarray:
        rise = self.task.obj.half_height + self.ABOVE_TOP
        return np.array([-self.BEHIND * math.cos(yaw), -self.BEHIND * math.sin(yaw), rise])

    def approach_z(self, offset: np.ndarray) -> float:
        return float(offset[2]) + self.APPROACH

    def closing(self, elapsed: float) -> float:
        return min(1.0, elapsed / self.RAMP_S)

    def aligned(self, world: TaskWorld, yaw: float) -> bool:
        return turned_within(world, target_rotation(yaw) @ XHAND_GRASP_AXES, self.ALIGNED_RAD)

    def lift_margin(self, offset: np.ndarray) -> float:
        return float(offset[2]) - 0.015

    def carry_yaw(self, yaw: float, reference: float, plate: np.ndarray) -> float:
        # Turn with the carry, so the hand keeps its angle to the base (reachable).
        return yaw + self.reference_yaw(plate) - reference

    def put_z(self, ee: np.ndarray, pos: np.ndarray, rest_z: float, offset: np.ndarray) -> float:
        # The object slips a little in the hand: lower by where it is, not where it was grasped.
        return float(ee[2] + rest_z + self.PUT_ABOVE - pos[2])
