"""Pour: pick up the cup of beads and pour the beads into the bowl.

Initial state: an open cup holding four beads (small free balls) at a random free spot, turned
at random about the vertical; a low-walled bowl (fixed) at another spot at least 14 cm away
(the XHand's cup: placed by its handle, see below).
Pouring is physical: the beads only reach the bowl by tipping the cup over it. Stages:
``grasp`` (the cup held: both WidowX fingers touch it; for a hand, a finger and the thumb or
palm, see SceneRobot.grasp_parts), ``lift`` (the cup 3 cm above the table, held),
``over_bowl`` (held cup within 4 cm of the bowl's centre, horizontally), ``pour`` = success (at
least three of the four beads inside the bowl and the cup itself not dropped into it).
Objects per robot: the WidowX's training cup is a red twelve-sided cup (3.6 cm wide, 6 cm
tall), held out a blue square cup (3.4 cm wide, 5 cm tall). The XHand's are saucepans: a red
twelve-sided cup (5.6 cm wide, 6 cm tall) and, held out, a blue square one (5.2 cm wide, 5.6 cm
tall), each with a flat rigid handle (11 x 2.8 x 0.9 cm) sticking straight out of its side
4 mm below the rim; the handle's grip point (55 % of the way out) 46-52 cm from the base within
+-0.38 rad of straight ahead, the handle across the direction from the base (+-0.15 rad), the
cup on its right seen from the base, the cup at least 12 cm and the grip point 11 cm from the
bowl's centre (the bowl placed as for the WidowX). Time limit: 12 s (WidowX), 20 s (XHand).

Experts: the WidowX closes its fingers on the cup's wall and tilts it about the closing
direction over the bowl (:class:`PourScript`); the XHand comes down palm flat on the handle,
curls its fingers around the handle's far edge and under it (a flat handle cannot turn in that
grip), lifts, carries the cup over the bowl and rolls the hand about the direction its fingers
point, so the cup swings down on the handle's side and tips its mouth away from the hand
(:class:`HandPourScript`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from human_video_policy.robots.xhand import XHAND_JOINTS
from human_video_policy.sim.arm_expert import (
    ArmTarget,
    HandGrip,
    nearest_symmetric_yaw,
    target_rotation,
)
from human_video_policy.sim.scene import OBJECT_CONAFFINITY, OBJECT_CONTYPE, set_free_pose
from human_video_policy.sim.tasks import register
from human_video_policy.sim.tasks.base import Level, Task
from human_video_policy.sim.tasks.common import (
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    ObjectVariant,
    Phases,
    VariantSet,
    held_between,
    object_yaw,
    rm75_xhand_expert,
    touching_any,
    turned_within,
    widowx_expert,
    xhand_palm_down,
)

if TYPE_CHECKING:
    from human_video_policy.policies.base import Policy
    from human_video_policy.sim.scene import SceneRobot
    from human_video_policy.sim.task_world import TaskWorld

BOWL_RADIUS = 0.05  # inner radius of the bowl's wall (m)
BOWL_WALL = (0.003, 0.0125)  # half thickness, half height (m): walls 2.5 cm high
BOWL_SIDES = 16
BEAD_RADIUS = 0.005
BEAD_MASS = 0.002  # kg: a glass bead
BEAD_COUNT = 4
BEADS_FOR_SUCCESS = 3


@dataclass(frozen=True)
class Cup(ObjectVariant):
    """An open cup: a floor and ``sides`` wall slabs around it (a polygon; a box cup at 4).

    ``size`` is (outer apothem, half height) for a round cup (``cylinder``) or (apothem,
    apothem, half height) for a square one (``box``); walls are ``wall`` (m) thick. Box
    slabs rather than a mesh because MuJoCo collides meshes as their convex hull, which would
    close the opening. With ``handle`` (a saucepan): a flat box handle sticking straight out of
    the cup's -x side, its top ``handle_below_rim`` below the rim, rough where the cup is smooth
    (it is what the hand holds).
    """

    sides: int = 12
    wall: float = 0.004
    handle: tuple[float, float, float] = (0.0, 0.0, 0.0)  # length, width, thickness (m); 0: none
    handle_below_rim: float = 0.0  # the handle's top this far below the rim (m)
    handle_mass: float = 0.0  # kg, part of ``mass``

    def handle_local(self, along: float = 0.5) -> np.ndarray:
        """(3,) a point on the handle's mid-line in the cup's frame (the handle sticks out along
        the cup's -x): ``along`` 0 = at the wall, 1 = its free end."""
        length, _, thickness = self.handle
        z = self.half_height - self.handle_below_rim - thickness / 2
        return np.array([-(self.radius - 0.001 + along * length), 0.0, z])

    @property
    def round(self) -> bool:
        return self.sides != 4

    @property
    def foot(self) -> float:
        """Height (m) of the thin square foot a round cup stands on (0 for a square cup)."""
        return 0.002 if self.round else 0.0

    @property
    def floor_top(self) -> float:
        """Height (m) of the inside of the floor above the cup's bottom."""
        return self.foot + self.wall

    def add_to(self, spec: mujoco.MjSpec) -> None:
        body = spec.worldbody.add_body(name=self.name, pos=[0.3, 0.0, self.half_height])
        body.add_freejoint(name=f"{self.name}_free")
        parts = self.sides + (2 if self.round else 1)
        common = {
            "rgba": list(self.rgba),
            "mass": (self.mass - self.handle_mass) / parts,
            "contype": OBJECT_CONTYPE,
            "conaffinity": OBJECT_CONAFFINITY,
            "condim": 3,
            # Smooth plastic: beads slide out when it tips (the fingers' own friction, 1.0,
            # is what a grasp gets: MuJoCo takes the larger of the two).
            "friction": [0.3, 0.01, 0.0001],
            "group": 1,
        }
        h, r, t, foot = self.half_height, self.radius, self.wall, self.foot
        # Only the bottom touches the table; the walls stand on the floor (a ring of slabs on
        # the table would make dozens of contacts). A round floor stands on a thin square
        # foot: box-box contacts with the table are few and cheap, cylinder-box ones are not.
        if self.round:
            body.add_geom(
                name=f"{self.name}_foot",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.7 * r, 0.7 * r, foot / 2],
                pos=[0.0, 0.0, -h + foot / 2],
                **common,
            )
        body.add_geom(
            name=f"{self.name}_floor",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER if self.round else mujoco.mjtGeom.mjGEOM_BOX,
            size=[r, t / 2, 0.0] if self.round else [r, r, t / 2],
            pos=[0.0, 0.0, -h + foot + t / 2],
            **common,
        )
        wall_half = h - self.floor_top / 2
        ring = (self.sides, r - t / 2, t / 2, wall_half, h - wall_half)
        _add_ring(body, f"{self.name}_wall", *ring, common)
        if self.handle[0]:
            length, width, thickness = self.handle
            body.add_geom(
                name=f"{self.name}_handle",
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[length / 2, width / 2, thickness / 2],
                pos=list(self.handle_local()),
                **{**common, "mass": self.handle_mass, "friction": [1.0, 0.01, 0.0001]},
            )


def _add_ring(
    body: mujoco.MjsBody,
    prefix: str,
    sides: int,
    apothem: float,
    half_thickness: float,
    half_height: float,
    z: float,
    common: dict[str, Any],
) -> None:
    """``sides`` wall slabs whose mid-planes form a regular polygon of ``apothem`` (m)."""
    half_length = apothem * math.tan(math.pi / sides) + half_thickness
    for i in range(sides):
        angle = 2 * math.pi * i / sides
        body.add_geom(
            name=f"{prefix}{i}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[half_thickness, half_length, half_height],
            pos=[apothem * math.cos(angle), apothem * math.sin(angle), z],
            quat=[math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)],
            **common,
        )


RED_CUP = Cup(
    "red_cup", "cylinder", (0.018, 0.03), (0.85, 0.15, 0.12, 1.0), 0.04, 2 * math.pi / 12, 12
)
BLUE_CUP = Cup(
    "blue_cup", "box", (0.017, 0.017, 0.025), (0.15, 0.3, 0.85, 1.0), 0.04, math.pi / 2, 4
)

# The XHand's saucepans: hand-sized cups with a long flat handle sticking out of the side
# near the rim (the hand wraps it, palm on top, fingers curled under).
SAUCEPAN_HANDLE = (0.11, 0.028, 0.009)
HAND_RED_CUP = Cup(
    "red_cup",
    "cylinder",
    (0.028, 0.03),
    (0.85, 0.15, 0.12, 1.0),
    0.06,
    2 * math.pi / 12,
    12,
    handle=SAUCEPAN_HANDLE,
    handle_below_rim=0.004,
    handle_mass=0.008,
)
HAND_BLUE_CUP = Cup(
    "blue_cup",
    "box",
    (0.026, 0.026, 0.028),
    (0.15, 0.3, 0.85, 1.0),
    0.06,
    math.pi / 2,
    4,
    handle=SAUCEPAN_HANDLE,
    handle_below_rim=0.004,
    handle_mass=0.008,
)
OBJECTS = {"widowx": (RED_CUP, BLUE_CUP), "rm75_xhand": (HAND_RED_CUP, HAND_BLUE_CUP)}
GRIP_ALONG = 0.55  # the hand holds the handle this far out (0 = at the wall, 1 = its end)
GRIP_DISTANCE = (0.46, 0.52)  # the handle's grip point from the base (m) ...
GRIP_AZIMUTH = 0.38  # ... within this (rad) of straight ahead
HAND_YAW = 0.15  # the handle across the direction from the base, give or take this (rad)
# Sim seconds before an episode fails: the hand turns and carries slower than the WidowX.
MAX_EPISODE_S = {"widowx": 12.0, "rm75_xhand": 20.0}
CUP_SPACING = 0.12  # the cup's centre this far from the bowl's (m) ...
GRIP_SPACING = 0.11  # ... and the grip point (the curled fingers clear the bowl's wall)


@register
class Pour(Task):
    name = "pour"
    description = "pour the beads from the cup into the bowl"
    tags = ("gripper", "grasp", "orientation", "position")
    robots = ("widowx", "rm75_xhand")
    stages = ("grasp", "lift", "over_bowl", "pour")
    max_episode_s = MAX_EPISODE_S["widowx"]  # the instance's: MAX_EPISODE_S[its robot]

    def __init__(self, robot: SceneRobot) -> None:
        super().__init__(robot)
        self.cups = VariantSet(*OBJECTS[robot.name])
        self.max_episode_s = MAX_EPISODE_S[robot.name]  # type: ignore[misc]

    def add_objects(self, spec: mujoco.MjSpec) -> None:
        self.cups.add_to(spec)
        for i in range(BEAD_COUNT):
            body = spec.worldbody.add_body(name=f"bead_{i}", pos=[0.3, 0.1, BEAD_RADIUS])
            body.add_freejoint(name=f"bead_{i}_free")
            body.add_geom(
                name=f"bead_{i}",
                type=mujoco.mjtGeom.mjGEOM_SPHERE,
                size=[BEAD_RADIUS, 0.0, 0.0],
                rgba=[0.95, 0.8, 0.1, 1.0],
                mass=BEAD_MASS,
                contype=OBJECT_CONTYPE,
                conaffinity=OBJECT_CONAFFINITY,
                condim=3,
                # Smooth glass: they roll out of a tipped cup instead of jamming in it.
                friction=[0.2, 0.001, 0.0001],
                group=1,
            )
        # A fixed (mocap) bowl: a floor and a ring of low walls the beads land inside.
        bowl = spec.worldbody.add_body(name="bowl", pos=[0.3, -0.1, 0.0], mocap=True)
        t, h = BOWL_WALL
        common = {
            "rgba": [0.92, 0.92, 0.88, 1.0],
            "contype": OBJECT_CONTYPE,
            "conaffinity": OBJECT_CONAFFINITY,
            "group": 1,
        }
        bowl.add_geom(
            name="bowl_floor",
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[BOWL_RADIUS + 2 * t, 0.0015, 0.0],
            pos=[0.0, 0.0, 0.0015],
            **common,
        )
        _add_ring(bowl, "bowl_wall", BOWL_SIDES, BOWL_RADIUS + t, t, h, h, common)

    def bind(self, model: mujoco.MjModel) -> None:
        self._bowl = model.body_mocapid[model.body("bowl").id]
        self._parts = [{model.geom(g).id for g in part} for part in self.robot.grasp_parts]
        self._cup_geoms = {}
        for cup in self.cups.variants:
            body = model.body(cup.name).id
            self._cup_geoms[cup.name] = frozenset(
                g for g in range(model.ngeom) if model.geom_bodyid[g] == body
            )

    @property
    def obj(self) -> Cup:
        """The cup in use (training or held out)."""
        return self.cups.active  # type: ignore[return-value]

    def initialize(self, world: TaskWorld, rng: np.random.Generator, level: Level) -> None:
        self.cups.choose(world, level)
        cup, r = self.obj, self.robot
        # The bowl's centre (where the beads go) 2.6 cm inside the workspace, its rim at most
        # 3 cm outside; the cup 14 cm from it, wherever it leaves the gripper room to grasp.
        margin = BOWL_RADIUS + 2 * BOWL_WALL[0] - 0.03
        bowl = world.free_spot(
            rng,
            (r.workspace_x[0] + margin, r.workspace_x[1] - margin),
            (r.workspace_y[0] + margin, r.workspace_y[1] - margin),
            0.14,
        )
        if cup.handle[0]:
            spot, yaw = self._saucepan_spot(world, rng, bowl)
        else:
            spot = world.free_spot(
                rng,
                (r.workspace_x[0] + 0.02, r.workspace_x[1] - 0.02),
                (r.workspace_y[0] + 0.02, r.workspace_y[1] - 0.02),
                0.14,
            )
            yaw = float(rng.uniform(-np.pi, np.pi))
        set_free_pose(
            world.model, world.data, cup.name, spot + np.array([0.0, 0.0, cup.half_height]), yaw
        )
        world.data.mocap_pos[self._bowl] = bowl
        # Keep the distractors (``scene`` level) off the bowl's rim, not only off its centre.
        for a in np.linspace(0.0, 2 * np.pi, 6, endpoint=False):
            world.occupied.append(bowl + 0.035 * np.array([np.cos(a), np.sin(a), 0.0]))
        # Two layers of two beads on the cup's floor.
        floor = cup.floor_top + BEAD_RADIUS + 0.0005
        offsets = [
            (0.006, 0.0, floor),
            (-0.006, 0.0, floor),
            (0.0, 0.006, floor + 2 * BEAD_RADIUS + 0.001),
            (0.0, -0.006, floor + 2 * BEAD_RADIUS + 0.001),
        ]
        for i, (dx, dy, z) in enumerate(offsets[:BEAD_COUNT]):
            set_free_pose(world.model, world.data, f"bead_{i}", spot + np.array([dx, dy, z]))

    def _saucepan_spot(
        self, world: TaskWorld, rng: np.random.Generator, bowl: np.ndarray
    ) -> tuple[np.ndarray, float]:
        """(cup spot, cup yaw) for a cup with a handle: the handle's grip point GRIP_DISTANCE from
        the base within GRIP_AZIMUTH of straight ahead, the handle across the direction from the
        base (give or take HAND_YAW), the cup on its right (seen from the base), clear of the
        bowl."""
        cup = self.obj
        reach = float(np.linalg.norm(cup.handle_local(GRIP_ALONG)[:2]))
        for _ in range(1000):
            azimuth = float(rng.uniform(-GRIP_AZIMUTH, GRIP_AZIMUTH))
            distance = float(rng.uniform(*GRIP_DISTANCE))
            hand_yaw = azimuth + float(rng.uniform(-HAND_YAW, HAND_YAW))
            grip = distance * np.array([math.cos(azimuth), math.sin(azimuth), 0.0])
            right = np.array([math.sin(hand_yaw), -math.cos(hand_yaw), 0.0])
            spot = grip + reach * right
            if (
                np.linalg.norm(spot[:2] - bowl[:2]) >= CUP_SPACING
                and np.linalg.norm(grip[:2] - bowl[:2]) >= GRIP_SPACING
            ):
                world.occupied.extend([spot, grip])
                return spot, math.atan2(right[1], right[0])
        raise RuntimeError("no spot for the cup clear of the bowl")

    def handle_position(self, world: TaskWorld, along: float = GRIP_ALONG) -> np.ndarray:
        """(3,) a point on the cup's handle (base frame; see Cup.handle_local)."""
        cup = self.obj
        local = cup.handle_local(along)
        return world.body_position(cup.name) + world.body_rotation(cup.name) @ local

    def bowl_position(self, world: TaskWorld) -> np.ndarray:
        return world.data.mocap_pos[self._bowl].copy()

    def mouth_position(self, world: TaskWorld) -> np.ndarray:
        """Centre of the cup's opening (base frame)."""
        cup = self.obj
        rot = world.body_rotation(cup.name)
        return world.body_position(cup.name) + rot[:, 2] * cup.half_height

    def beads_in_bowl(self, world: TaskWorld) -> int:
        bowl = self.bowl_position(world)
        count = 0
        for i in range(BEAD_COUNT):
            pos = world.body_position(f"bead_{i}")
            inside = np.linalg.norm(pos[:2] - bowl[:2]) < BOWL_RADIUS - BEAD_RADIUS + 0.002
            count += bool(inside and pos[2] < 2 * BOWL_WALL[1])
        return count

    def touching(self, world: TaskWorld) -> set[int]:
        """Indices of the robot's grasp parts (SceneRobot.grasp_parts) touching the cup now."""
        others = touching_any(world, self._cup_geoms[self.obj.name])
        return {k for k, part in enumerate(self._parts) if others & part}

    def grasped(self, world: TaskWorld) -> bool:
        """The cup held: both WidowX fingers touch it; a hand's thumb or palm and a finger."""
        return held_between(self.touching(world), len(self._parts))

    def check_stages(self, world: TaskWorld) -> tuple[dict[str, bool], bool]:
        cup = self.obj
        pos = world.body_position(cup.name)
        bowl = self.bowl_position(world)
        grasp = self.grasped(world)
        lift = grasp and pos[2] > cup.half_height + 0.03
        over = lift and float(np.linalg.norm(pos[:2] - bowl[:2])) < 0.04
        # The beads must be poured, not the cup dropped into the bowl with them.
        cup_in_bowl = (
            np.linalg.norm(pos[:2] - bowl[:2]) < BOWL_RADIUS + cup.radius
            and pos[2] < 2 * BOWL_WALL[1] + cup.half_height
        )
        success = self.beads_in_bowl(world) >= BEADS_FOR_SUCCESS and not cup_in_bowl
        return {"grasp": grasp, "lift": lift, "over_bowl": bool(over)}, bool(success)

    def expert(self, world: TaskWorld) -> Policy:
        if self.robot.name == "rm75_xhand":
            return rm75_xhand_expert(world, HandPourScript(self), HAND_GRIP, HAND_AXES)
        return widowx_expert(world, PourScript(self))


class PourScript:
    """approach above -> descend -> close -> lift -> carry toward the bowl -> tilt (from 5 cm
    before it: the beads only roll out past ~95 deg), the cup's mouth kept above the bowl ->
    hold -> back upright.

    The fingers close along the line from the robot's base (toward the cup, then toward the
    bowl): tipping the cup about the closing direction is then mostly a forearm roll, which
    the WidowX can turn past 110 deg anywhere in its workspace (tipping about the other axis
    would need the wrist to pitch the gripper above horizontal). The cup is symmetric, so the
    grasp may turn it freely about its axis on the way.
    """

    ABOVE = 0.05
    BELOW_RIM = 0.014  # end effector this far below the rim: fingertips 3 cm down the wall
    CARRY_BOTTOM = 0.06  # cup bottom above the table while carrying
    POUR_TILT = 2.0  # rad from upright (115 deg): the beads roll out, IK still converges
    START_TILT = 0.05  # start tipping this close (m, horizontally) to the bowl's centre
    TILT_SPEED = 3.0  # rad/s
    HOLD_S = 2.0  # tipped this long before coming back upright
    MOUTH_HEIGHT = 0.065  # mouth above the table while pouring
    BOTTOM_HEIGHT = 0.07  # cup bottom's centre above the table while pouring
    PERIOD_S = 0.1  # the expert calls the script once per chunk

    def __init__(self, task: Pour) -> None:
        self.task = task
        self.phases = Phases()

    def __call__(self, world: TaskWorld) -> ArmTarget:
        p = self.phases
        p.sync(world)
        cup = self.task.obj
        pos = world.body_position(cup.name)
        ee = world.ee_position()
        bowl = self.task.bowl_position(world)
        if "yaw" not in p.memory or p.phase == 0:
            p.memory["yaw"] = nearest_symmetric_yaw(
                object_yaw(world, cup.name), math.atan2(pos[1], pos[0]), cup.yaw_symmetry
            )
        yaw = float(p.memory["yaw"])
        grasp_point = pos + np.array([0.0, 0.0, cup.half_height - self.BELOW_RIM])
        upright = world.body_rotation(cup.name)[2, 2] > 0.95
        if p.phase in (3, 4) and upright and not self.task.grasped(world):
            p.go(0, world)  # slipped out while still standing: grasp again
        if p.phase == 0:  # above the cup, open
            above = grasp_point + np.array([0.0, 0.0, self.ABOVE])
            if np.linalg.norm(ee - above) < 0.015:
                p.go(1, world)
            return ArmTarget(above, yaw, GRIPPER_OPEN)
        if p.phase == 1:  # down around it
            if np.linalg.norm(ee - grasp_point) < 0.006 or p.elapsed(world) > 2.5:
                p.go(2, world)
            return ArmTarget(grasp_point, yaw, GRIPPER_OPEN)
        if p.phase == 2:  # close
            if p.elapsed(world) > 0.5:
                p.go(3, world)
            return ArmTarget(grasp_point, yaw, GRIPPER_CLOSED)
        carry_z = self.CARRY_BOTTOM + 2 * cup.half_height - self.BELOW_RIM
        if p.phase == 3:  # lift
            if ee[2] > carry_z - 0.03:
                p.go(4, world)
            return ArmTarget(np.array([ee[0], ee[1], carry_z]), yaw, GRIPPER_CLOSED)
        if "pour_yaw" not in p.memory:
            toward_bowl = math.atan2(bowl[1], bowl[0])
            pour_yaw = nearest_symmetric_yaw(toward_bowl, yaw, math.pi)
            p.memory["pour_yaw"] = pour_yaw
            # A positive tilt swings the pointing direction toward closing-direction x down.
            # Either way round works; the sign makes every pour turn the same way: the
            # gripper's tip counterclockwise seen from above, the mouth clockwise.
            p.memory["tilt_sign"] = 1.0 if math.cos(pour_yaw - toward_bowl) > 0 else -1.0
        pour_yaw = float(p.memory["pour_yaw"])
        over = np.array([bowl[0], bowl[1], carry_z])
        if p.phase == 4:  # carry toward the bowl, upright
            if np.linalg.norm(ee[:2] - bowl[:2]) < self.START_TILT:
                p.memory["tilt"] = 0.0
                p.go(5, world)
            return ArmTarget(over, pour_yaw, GRIPPER_CLOSED)
        if p.phase in (5, 6):  # tilt gradually, then hold
            tilt = min(self.POUR_TILT, float(p.memory["tilt"]) + self.TILT_SPEED * self.PERIOD_S)
            p.memory["tilt"] = tilt
            if p.phase == 5 and tilt >= self.POUR_TILT:
                p.go(6, world)
            if p.phase == 6 and p.elapsed(world) > self.HOLD_S:
                p.go(7, world)
            # The mouth over the bowl's centre, high enough that neither the mouth nor the
            # cup's bottom comes down into the bowl while it turns (closed loop: the mouth
            # moves as the cup turns).
            up = world.body_rotation(cup.name)[:, 2]
            mouth = self.task.mouth_position(world)
            bottom = pos - up * cup.half_height
            shift = np.array([bowl[0] - mouth[0], bowl[1] - mouth[1], 0.0])
            shift[2] = max(self.MOUTH_HEIGHT - mouth[2], self.BOTTOM_HEIGHT - bottom[2])
            tilt *= float(p.memory["tilt_sign"])
            return ArmTarget(ee + shift, pour_yaw, GRIPPER_CLOSED, tilt)
        return ArmTarget(over, pour_yaw, GRIPPER_CLOSED)  # back upright


HAND_AXES = xhand_palm_down(0.0)  # palm flat on the handle, fingers across it
# XHand postures (XHAND_JOINTS order, see pick_place): open: fingers straight, the thumb out to
# the side; the fingers bend down past the handle's far edge, then curl back under it.
HAND_OPEN = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
HAND_HALF = (0.0, 0.0, 0.0, 0.0, 1.7, 0.3, 1.7, 0.3, 1.7, 0.3, 1.7, 0.3)
HAND_CLOSED = (0.0, 0.0, 0.0, 0.0, 1.9, 1.9, 1.9, 1.9, 1.9, 1.9, 1.9, 1.9)
HAND_GRIP = HandGrip(XHAND_JOINTS, (HAND_OPEN, HAND_HALF, HAND_CLOSED))


class HandPourScript:
    """The pour for the XHand (HAND_AXES: palm flat, fingers pointing away from the base across
    the handle; the cup on the pinky's side): palm above the handle's grip point, turned ->
    down onto it -> fingers bent down past its far edge, then curled under it (HAND_GRIP) ->
    lift -> carry the cup's centre over the bowl -> roll the hand about the fingers' direction
    (ArmTarget.tilt: the RM75's last joint, mostly), the cup's mouth kept over the bowl, until
    the beads are out. The handle is held between the palm on its top and the four curled
    fingers under it, spread along it: neither the cup's weight nor the roll turns it in the
    hand."""

    AHEAD = 0.006  # the handle's centre line ahead of the end-effector site (m)
    ABOVE = 0.026  # end-effector site above the handle's top (the palm 2.4 cm out of it, m)
    APPROACH = 0.08  # approach this far above the grasp pose (m)
    ALIGNED_RAD = 0.05  # descend once the hand is turned within this (rad)
    CLOSE_S = 1.2
    RAMP_S = 1.0
    LIFT = 0.1  # cup bottom above the table while carrying (m)
    CARRY_STEP = 0.05  # aim at most this far (m) per call while carrying
    POUR_TILT = 2.0  # rad (115 deg): the beads roll out past ~95 deg
    START_TILT = 0.04  # start rolling this close (m, horizontally) to the bowl's centre
    TILT_SPEED = 2.0  # rad/s
    MOUTH_HEIGHT = 0.07  # mouth above the table while pouring (m)
    BOTTOM_HEIGHT = 0.07  # cup bottom's centre above the table while pouring (m)
    PERIOD_S = 0.1  # the expert calls the script once per chunk

    def __init__(self, task: Pour) -> None:
        self.task = task
        self.phases = Phases()

    def __call__(self, world: TaskWorld) -> ArmTarget:
        p = self.phases
        p.sync(world)
        task, cup = self.task, self.task.obj
        pos = world.body_position(cup.name)
        ee = world.ee_position()
        bowl = task.bowl_position(world)
        grip = task.handle_position(world)
        if p.phase < 2 or "yaw" not in p.memory:
            free_end = task.handle_position(world, 1.0)
            along = free_end[:2] - pos[:2]  # the handle, cup -> free end: toward the thumb
            p.memory["yaw"] = math.atan2(along[1], along[0]) - math.pi / 2  # the fingers
        yaw = float(p.memory["yaw"])
        ahead = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        top = cup.handle[2] / 2
        pose = grip + np.array([0.0, 0.0, top + self.ABOVE]) - self.AHEAD * ahead
        if p.phase == 0:  # above the grip point, open, turned
            above = pose + np.array([0.0, 0.0, self.APPROACH])
            want = target_rotation(yaw) @ HAND_AXES
            if np.linalg.norm(ee - above) < 0.01 and turned_within(world, want, self.ALIGNED_RAD):
                p.go(1, world)
            return ArmTarget(above, yaw, 0.0)
        if p.phase == 1:  # palm down onto the handle
            if np.linalg.norm(ee - pose) < 0.004 or p.elapsed(world) > 2.5:
                p.memory["pose"] = pose
                p.go(2, world)
            return ArmTarget(pose, yaw, 0.0)
        if p.phase == 2:  # fingers around it (where the hand came down: no chasing)
            pose = np.asarray(p.memory["pose"])
            if p.elapsed(world) > self.CLOSE_S:
                p.go(3, world)
            return ArmTarget(pose, yaw, min(1.0, p.elapsed(world) / self.RAMP_S))
        bottom = pos[2] - cup.half_height
        if p.phase == 3:  # lift
            if bottom > self.LIFT - 0.01:
                p.go(4, world)
            return ArmTarget(ee + np.array([0.0, 0.0, self.LIFT - bottom]), yaw, 1.0)
        if p.phase == 4:  # carry the cup over the bowl, upright
            if np.linalg.norm(pos[:2] - bowl[:2]) < self.START_TILT:
                p.memory["tilt"] = 0.0
                p.go(5, world)
            shift = np.array([bowl[0] - pos[0], bowl[1] - pos[1], self.LIFT - bottom])
            size = float(np.linalg.norm(shift))
            if size > self.CARRY_STEP:
                shift *= self.CARRY_STEP / size
            return ArmTarget(ee + shift, yaw, 1.0)
        # Roll gradually and hold it, the mouth over the bowl's centre and high enough that
        # neither the mouth nor the cup's bottom comes down into the bowl (as PourScript).
        tilt = min(self.POUR_TILT, float(p.memory["tilt"]) + self.TILT_SPEED * self.PERIOD_S)
        p.memory["tilt"] = tilt
        up = world.body_rotation(cup.name)[:, 2]
        mouth = task.mouth_position(world)
        low = pos - up * cup.half_height
        shift = np.array([bowl[0] - mouth[0], bowl[1] - mouth[1], 0.0])
        shift[2] = max(self.MOUTH_HEIGHT - mouth[2], self.BOTTOM_HEIGHT - low[2])
        return ArmTarget(ee + shift, yaw, 1.0, tilt)
