"""Pour: pick up the cup of beads and pour the beads into the bowl.

Initial state: an open cup holding four beads (small free balls) at a random free spot, turned
at random about the vertical; a low-walled bowl (fixed) at another spot at least 14 cm away.
Pouring is physical: the beads only reach the bowl by tipping the cup over it. Stages:
``grasp`` (both fingers touch the cup), ``lift`` (the cup 3 cm above the table, held),
``over_bowl`` (held cup within 4 cm of the bowl's centre, horizontally), ``pour`` = success (at
least three of the four beads inside the bowl and the cup itself not dropped into it).
Training cup: a red twelve-sided cup (3.6 cm wide, 6 cm tall); held-out: a blue square cup
(3.4 cm wide, 5 cm tall).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from human_video_policy.sim.arm_expert import ArmTarget, nearest_symmetric_yaw
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
    touching_any,
    widowx_expert,
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
    close the opening.
    """

    sides: int = 12
    wall: float = 0.004

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
            "mass": self.mass / parts,
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


@register
class Pour(Task):
    name = "pour"
    description = "pour the beads from the cup into the bowl"
    tags = ("gripper", "grasp", "orientation", "position")
    robots = ("widowx",)
    stages = ("grasp", "lift", "over_bowl", "pour")
    max_episode_s = 12.0

    def __init__(self, robot: SceneRobot) -> None:
        super().__init__(robot)
        self.cups = VariantSet(RED_CUP, BLUE_CUP)

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
