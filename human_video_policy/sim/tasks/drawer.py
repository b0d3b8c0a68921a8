"""Drawer: pull the cabinet's drawer open by its handle, then push it closed again.

Initial state: a cabinet fixed on the table in front of the robot, its front facing the robot's
base give or take 0.2 rad, the closed handle 31-35 cm from the base within +-0.35 rad of
straight ahead (RM75 + XHand: 50-55 cm, within +-0.3 rad, so the hand reaches it open and
closed); the drawer closed. The drawer slides on a horizontal joint along the cabinet's front
axis (travel: the cabinet's depth less 3 cm, 9 cm for the WidowX's; damping and dry friction,
stops at both ends); its bar handle stands out from the drawer front (4 cm; 6.5 cm for the
hand), so the gripper's fingers fit around it, or the hand's fingers behind it. Stages:
``grasp`` (the bar held: both WidowX fingers touch it; for a hand, a finger and the thumb or
palm, see SceneRobot.grasp_parts), ``open`` (the drawer out by 6 cm or more), ``close`` =
success (back in to less than 1 cm, after having been opened 6 cm).
Objects per robot: the WidowX's training cabinet is wooden with a black square bar handle
(12 x 14 x 7 cm), held out a larger blue-grey one with a round brass handle; the XHand's are
hand-sized: wooden, 16 x 22 x 12 cm, a 2 cm thick square bar 15 cm long, and blue-grey,
17 x 26 x 13 cm, a round bar (1.8 cm thick, 17 cm long).

Experts: the WidowX closes its fingers around the bar from above (:class:`DrawerScript`); the
XHand comes down palm down, its fingers pointing straight down into the gap behind the bar,
then presses its thumb against the bar's near side and pulls and pushes with the bar held
between them (:class:`HandDrawerScript`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
from human_video_policy.sim.scene import OBJECT_CONAFFINITY, OBJECT_CONTYPE
from human_video_policy.sim.tasks import register
from human_video_policy.sim.tasks.base import Level, Task
from human_video_policy.sim.tasks.common import (
    GRIPPER_CLOSED,
    XHAND_GRASP_AXES,
    Phases,
    held_between,
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

OPENED = 0.06  # the drawer counts as opened this far out (m)
CLOSED = 0.01  # ... and as closed again this far out
WALL = 0.008  # cabinet wall thickness (m)
PANEL = 0.01  # drawer front panel thickness (m)
HANDLE_STANDOFF = 0.04  # handle bar centre in front of the drawer front (m)
HANDLE_BELOW_TOP = 0.02  # handle bar centre below the cabinet's top (m)
PARKED = np.array([-0.3, 2.5, 0.0])  # the unused cabinet, out of sight


@dataclass(frozen=True)
class CabinetVariant:
    """A cabinet (fixed, a mocap body) with a drawer on a slide joint and a bar handle.

    Attributes:
        name: cabinet body name; the drawer is ``<name>_drawer`` on joint ``<name>_slide``,
            the handle bar geom ``<name>_handle``.
        depth, width, height: cabinet outer sizes (m) along its front axis, across, up.
        body_rgba, drawer_rgba: cabinet and drawer front colours.
        handle_shape: ``box`` (square bar) or ``cylinder`` (round bar).
        handle_radius: half the bar's thickness (m).
        handle_half_length: half the bar's length (m).
        handle_rgba: handle colour.
        handle_standoff: the bar's centre in front of the drawer front (m).
        handle_below_top: the bar's centre below the cabinet's top (m).
    """

    name: str
    depth: float
    width: float
    height: float
    body_rgba: tuple[float, float, float, float]
    drawer_rgba: tuple[float, float, float, float]
    handle_shape: str
    handle_radius: float
    handle_half_length: float
    handle_rgba: tuple[float, float, float, float]
    handle_standoff: float = HANDLE_STANDOFF
    handle_below_top: float = HANDLE_BELOW_TOP

    @property
    def drawer(self) -> str:
        return f"{self.name}_drawer"

    @property
    def joint(self) -> str:
        return f"{self.name}_slide"

    @property
    def handle(self) -> str:
        return f"{self.name}_handle"

    @property
    def travel(self) -> float:
        """How far (m) the drawer slides out before its stop."""
        return self.depth - 0.03

    @property
    def handle_height(self) -> float:
        return self.height - self.handle_below_top

    @property
    def handle_reach(self) -> float:
        """Closed handle bar centre in front of the cabinet's centre (m, cabinet x)."""
        return self.depth / 2 + PANEL + self.handle_standoff

    def add_to(self, spec: mujoco.MjSpec) -> None:
        d, w, h = self.depth / 2, self.width / 2, self.height
        cabinet = spec.worldbody.add_body(name=self.name, pos=list(PARKED), mocap=True)
        walls = {
            "bottom": ((0.0, 0.0, WALL / 2), (d, w, WALL / 2)),
            "top": ((0.0, 0.0, h - WALL / 2), (d, w, WALL / 2)),
            "left": ((0.0, w - WALL / 2, h / 2), (d, WALL / 2, h / 2)),
            "right": ((0.0, -w + WALL / 2, h / 2), (d, WALL / 2, h / 2)),
            "back": ((-d + WALL / 2, 0.0, h / 2), (WALL / 2, w, h / 2)),
        }
        for part, (pos, size) in walls.items():
            _box(cabinet, f"{self.name}_{part}", pos, size, self.body_rgba)
        drawer = cabinet.add_body(name=self.drawer, pos=[d, 0.0, 0.0])
        drawer.add_joint(
            name=self.joint,
            type=mujoco.mjtJoint.mjJNT_SLIDE,
            axis=[1.0, 0.0, 0.0],
            range=[0.0, self.travel],
            damping=2.0,
            frictionloss=0.4,
            armature=0.05,
            solref_limit=[0.005, 1.0],
            solimp_limit=[0.95, 0.99, 0.001, 0.5, 2.0],
        )
        # Front panel (it closes the opening) and an open tray inside the cabinet.
        inner = w - WALL - 0.002
        tray = self.depth - 0.02
        _box(
            drawer,
            f"{self.drawer}_front",
            (PANEL / 2, 0.0, h / 2),
            (PANEL / 2, inner, h / 2 - WALL - 0.002),
            self.drawer_rgba,
            0.15,
        )
        r, g, b, _ = self.drawer_rgba
        tray_rgba = (0.8 * r, 0.8 * g, 0.8 * b, 1.0)
        tray_parts = {
            "floor": ((-tray / 2, 0.0, WALL + 0.005), (tray / 2, inner, 0.003)),
            "tray_left": ((-tray / 2, inner - 0.002, h / 2), (tray / 2, 0.002, h / 2 - 0.015)),
            "tray_right": ((-tray / 2, -inner + 0.002, h / 2), (tray / 2, 0.002, h / 2 - 0.015)),
            "tray_back": ((-tray + 0.002, 0.0, h / 2), (0.002, inner, h / 2 - 0.015)),
        }
        for part, (pos, size) in tray_parts.items():
            _box(drawer, f"{self.drawer}_{part}", pos, size, tray_rgba, 0.05)
        # Bar handle on two posts.
        r, half = self.handle_radius, self.handle_half_length
        bar_x = PANEL + self.handle_standoff
        z = self.handle_height
        for side, y in (("l", half - 0.006), ("r", -half + 0.006)):
            post = (self.handle_standoff - r) / 2
            _box(
                drawer,
                f"{self.handle}_post_{side}",
                (PANEL + post, y, z),
                (post, max(0.004, r / 2), max(0.004, r / 2)),
                self.handle_rgba,
                0.01,
            )
        if self.handle_shape == "box":
            _box(drawer, self.handle, (bar_x, 0.0, z), (r, half, r), self.handle_rgba, 0.02)
        else:
            drawer.add_geom(
                name=self.handle,
                type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                pos=[bar_x, 0.0, z],
                quat=[math.sqrt(0.5), math.sqrt(0.5), 0.0, 0.0],  # axis along y
                size=[r, half, 0.0],
                rgba=list(self.handle_rgba),
                mass=0.02,
                contype=OBJECT_CONTYPE,
                conaffinity=OBJECT_CONAFFINITY,
                condim=4,
                group=1,
            )


def _box(
    body: mujoco.MjsBody,
    name: str,
    pos: tuple[float, float, float],
    half_size: tuple[float, float, float],
    rgba: tuple[float, float, float, float],
    mass: float = 0.0,
) -> None:
    body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=list(pos),
        size=list(half_size),
        rgba=list(rgba),
        mass=mass,
        contype=OBJECT_CONTYPE,
        conaffinity=OBJECT_CONAFFINITY,
        condim=4,
        group=1,
    )


WOODEN = CabinetVariant(
    "cabinet",
    0.12,
    0.14,
    0.07,
    (0.55, 0.36, 0.2, 1.0),
    (0.72, 0.5, 0.3, 1.0),
    "box",
    0.008,
    0.045,
    (0.08, 0.08, 0.08, 1.0),
)
BLUE_GREY = CabinetVariant(
    "blue_cabinet",
    0.13,
    0.18,
    0.08,
    (0.3, 0.38, 0.5, 1.0),
    (0.45, 0.55, 0.7, 1.0),
    "cylinder",
    0.006,
    0.055,
    (0.85, 0.68, 0.2, 1.0),
)
CABINETS = (WOODEN, BLUE_GREY)  # (training, held out) of the WidowX
# The XHand's cabinets: taller (its hooked fingers, 10 cm long, hang below the bar) and wider,
# with a thick bar standing 6.5 cm out, so the curled fingers fit behind it.
HAND_WOODEN = CabinetVariant(
    "cabinet",
    0.16,
    0.22,
    0.12,
    (0.55, 0.36, 0.2, 1.0),
    (0.72, 0.5, 0.3, 1.0),
    "box",
    0.01,
    0.075,
    (0.08, 0.08, 0.08, 1.0),
    handle_standoff=0.065,
    handle_below_top=0.03,
)
HAND_BLUE_GREY = CabinetVariant(
    "blue_cabinet",
    0.17,
    0.26,
    0.13,
    (0.3, 0.38, 0.5, 1.0),
    (0.45, 0.55, 0.7, 1.0),
    "cylinder",
    0.009,
    0.085,
    (0.85, 0.68, 0.2, 1.0),
    handle_standoff=0.065,
    handle_below_top=0.035,
)
OBJECTS = {"widowx": CABINETS, "rm75_xhand": (HAND_WOODEN, HAND_BLUE_GREY)}
# Where the closed handle bar's centre is drawn: (distance from the base, m), (azimuth, rad).
PLACEMENT = {"widowx": ((0.31, 0.35), 0.35), "rm75_xhand": ((0.5, 0.55), 0.3)}


@register
class Drawer(Task):
    name = "drawer"
    description = "pull the drawer open by its handle, then push it closed again"
    tags = ("gripper", "articulated", "position")
    robots = ("widowx", "rm75_xhand")
    stages = ("grasp", "open", "close")
    max_episode_s = 15.0

    def __init__(self, robot: SceneRobot) -> None:
        super().__init__(robot)
        self.variants = OBJECTS[robot.name]
        self.cabinet = self.variants[0]
        self.max_opening = 0.0
        self.axis = np.array([-1.0, 0.0, 0.0])  # the drawer's opening direction (base frame)
        self.handle_closed = np.zeros(3)  # the closed handle bar's centre (base frame)

    def add_objects(self, spec: mujoco.MjSpec) -> None:
        for variant in self.variants:
            variant.add_to(spec)

    def bind(self, model: mujoco.MjModel) -> None:
        vs = self.variants
        self._mocap = {v.name: int(model.body_mocapid[model.body(v.name).id]) for v in vs}
        self._qpos = {v.name: int(model.jnt_qposadr[model.joint(v.joint).id]) for v in vs}
        self._parts = [{model.geom(g).id for g in part} for part in self.robot.grasp_parts]

    @property
    def obj(self) -> CabinetVariant:
        """The cabinet in use (its ``name`` is the cabinet body's), as other tasks' ``obj``."""
        return self.cabinet

    def initialize(self, world: TaskWorld, rng: np.random.Generator, level: Level) -> None:
        self.cabinet = cab = self.variants[1 if level.rank >= Level.NEW_OBJECT.rank else 0]
        distances, azimuths = PLACEMENT[self.robot.name]
        azimuth = float(rng.uniform(-azimuths, azimuths))
        distance = float(rng.uniform(*distances))
        yaw = azimuth + math.pi + float(rng.uniform(-0.2, 0.2))  # cabinet front -> the base
        self.axis = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        self.handle_closed = np.array(
            [distance * math.cos(azimuth), distance * math.sin(azimuth), cab.handle_height]
        )
        centre = self.handle_closed - cab.handle_reach * self.axis
        centre[2] = 0.0
        for i, variant in enumerate(self.variants):
            mocap = self._mocap[variant.name]
            used = variant is cab
            world.data.mocap_pos[mocap] = centre if used else PARKED + np.array([0.0, i, 0.0])
            world.data.mocap_quat[mocap] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
        # Keep distractors off the cabinet and the drawer's path.
        side = np.array([-self.axis[1], self.axis[0], 0.0])
        for along in np.arange(-cab.depth / 2, cab.handle_reach + cab.travel, 0.04):
            for across in (-cab.width / 2, 0.0, cab.width / 2):
                world.occupied.append(centre + along * self.axis + across * side)
        self.max_opening = 0.0

    def opening(self, world: TaskWorld) -> float:
        """How far (m) the drawer is out."""
        return float(world.data.qpos[self._qpos[self.cabinet.name]])

    def handle_position(self, world: TaskWorld, opening: float | None = None) -> np.ndarray:
        """(3,) the handle bar's centre with the drawer ``opening`` out (None: as it is now)."""
        out = self.opening(world) if opening is None else opening
        return self.handle_closed + out * self.axis

    def parts_on_handle(self, world: TaskWorld) -> set[int]:
        """Indices of the robot's grasp parts (SceneRobot.grasp_parts: the WidowX's two
        fingers; a hand's palm, thumb, then its fingers) touching the handle bar now."""
        others = touching(world, world.model.geom(self.cabinet.handle).id)
        return {k for k, part in enumerate(self._parts) if others & part}

    def holds_handle(self, world: TaskWorld) -> bool:
        """The gripper's two fingers touch the bar; or a hand's finger and its thumb or palm
        do (the bar between them: fingers alone brushing or pushing it are no grasp)."""
        return held_between(self.parts_on_handle(world), len(self._parts))

    def check_stages(self, world: TaskWorld) -> tuple[dict[str, bool], bool]:
        opening = self.opening(world)
        self.max_opening = max(self.max_opening, opening)
        opened = opening >= OPENED
        success = self.max_opening >= OPENED and opening < CLOSED
        grasp = self.holds_handle(world)
        return {"grasp": grasp, "open": opened, "close": success}, success

    def expert(self, world: TaskWorld) -> Policy:
        if self.robot.name == "rm75_xhand":
            return rm75_xhand_expert(world, HandDrawerScript(self), HAND_GRIP)
        return widowx_expert(world, DrawerScript(self))


class DrawerScript:
    """open gripper above the handle -> down around the bar -> close -> pull out along the
    slide -> push back in -> open and lift. The fingers close along the slide axis, so the
    bar is held between them: pulling and pushing need no friction."""

    ABOVE = 0.06
    GRASP_ABOVE_BAR = 0.004  # end-effector site above the bar's centre (fingertips below it)
    OPEN_WIDE = 0.03  # gripper opening around the bar (clears the drawer front)
    PULL_TO = 0.08

    def __init__(self, task: Drawer) -> None:
        self.task = task
        self.phases = Phases()

    def __call__(self, world: TaskWorld) -> ArmTarget:
        p = self.phases
        p.sync(world)
        task = self.task
        ee = world.ee_position()
        lift = np.array([0.0, 0.0, self.GRASP_ABOVE_BAR])
        grasp = task.handle_position(world) + lift
        axis_yaw = math.atan2(task.axis[1], task.axis[0])
        yaw = nearest_symmetric_yaw(axis_yaw, radial_closing_yaw(task.handle_closed))
        up = np.array([0.0, 0.0, self.ABOVE])
        if p.phase == 0:  # above the handle, open
            if np.linalg.norm(ee - (grasp + up)) < 0.01:
                p.go(1, world)
            return ArmTarget(grasp + up, yaw, self.OPEN_WIDE)
        if p.phase == 1:  # down around the bar
            if np.linalg.norm(ee - grasp) < 0.004 or p.elapsed(world) > 2.5:
                p.go(2, world)
            return ArmTarget(grasp, yaw, self.OPEN_WIDE)
        if p.phase == 2:  # close on it
            if p.elapsed(world) > 0.5:
                p.go(3, world)
            return ArmTarget(grasp, yaw, GRIPPER_CLOSED)
        if p.phase == 3:  # pull out along the slide
            if task.opening(world) > self.PULL_TO - 0.01 or p.elapsed(world) > 4.0:
                p.go(4, world)
            return ArmTarget(task.handle_position(world, self.PULL_TO) + lift, yaw, GRIPPER_CLOSED)
        if p.phase == 4:  # push back in (aim past the stop)
            if task.opening(world) < 0.003 or p.elapsed(world) > 4.0:
                p.go(5, world)
            return ArmTarget(task.handle_position(world, -0.01) + lift, yaw, GRIPPER_CLOSED)
        if p.phase == 5:  # let go
            if p.elapsed(world) > 0.4:
                p.go(6, world)
            return ArmTarget(grasp, yaw, self.OPEN_WIDE)
        return ArmTarget(grasp + up, yaw, self.OPEN_WIDE)  # lift away


# XHand postures (XHAND_JOINTS order, see pick_place): ``HAND_OPEN``: the four fingers pointing
# straight down from the knuckles (the palm is tipped 0.4 rad, the fingers bent 1.17 rad), their
# tips hooked a little back, the thumb swung under the palm and hooked down (clear behind the
# bar); ``HAND_CLOSED``: the thumb's pad pushed forward against the bar's near, lower edge, so
# the bar is held between the fingers behind it and the thumb in front of it.
HAND_OPEN = (1.6, 0.1, 1.79, 0.0, 1.17, 0.3, 1.17, 0.3, 1.17, 0.3, 1.17, 0.3)
HAND_CLOSED = (1.6, 1.1, 0.0, 0.0, 1.17, 0.3, 1.17, 0.3, 1.17, 0.3, 1.17, 0.3)
HAND_GRIP = HandGrip(XHAND_JOINTS, (HAND_OPEN, HAND_CLOSED))


class HandDrawerScript:
    """The drawer for the XHand (common.XHAND_GRASP_AXES: palm down, the fingers pointing into
    the cabinet, tipped down): hooked fingers above the gap between the bar and the drawer front
    -> down into the gap -> back until the hook holds the bar -> thumb closed under the bar ->
    pull out along the slide -> push back in -> thumb open -> up and away. The bar is enclosed
    between the hook and the thumb: pulling and pushing need no friction."""

    BEHIND = 0.019  # end-effector site behind the bar's centre while holding it (m)
    AHEAD = 0.0  # ... while coming down into the gap (m)
    ABOVE = 0.085  # end-effector site above the bar's centre (m)
    APPROACH = 0.08  # approach this far above the descent (m)
    ALIGNED_RAD = 0.05
    PULL_TO = 0.08
    CLOSE_S = 0.8
    RAMP_S = 0.5

    def __init__(self, task: Drawer) -> None:
        self.task = task
        self.phases = Phases()

    def __call__(self, world: TaskWorld) -> ArmTarget:
        p = self.phases
        p.sync(world)
        task = self.task
        ee = world.ee_position()
        toward = -task.axis  # the fingers point into the cabinet
        yaw = math.atan2(toward[1], toward[0])
        up = np.array([0.0, 0.0, self.ABOVE])
        hold = up - self.BEHIND * toward  # site minus the bar's centre while holding it
        bar = task.handle_position(world)
        descent = bar + up + self.AHEAD * toward
        if p.phase == 0:  # above the gap, fingers hooked
            above = descent + np.array([0.0, 0.0, self.APPROACH])
            want = target_rotation(yaw) @ XHAND_GRASP_AXES
            if np.linalg.norm(ee - above) < 0.01 and turned_within(world, want, self.ALIGNED_RAD):
                p.go(1, world)
            return ArmTarget(above, yaw, 0.0)
        if p.phase == 1:  # down into the gap
            if np.linalg.norm(ee - descent) < 0.005 or p.elapsed(world) > 2.5:
                p.memory["bar"] = bar
                p.go(2, world)
            return ArmTarget(descent, yaw, 0.0)
        if p.phase in (2, 3):  # (the bar where the hand came down: the hook must not chase it)
            bar = np.asarray(p.memory["bar"])
        if p.phase == 2:  # back: the fingers against the bar's far side
            if np.linalg.norm(ee - (bar + hold)) < 0.004 or p.elapsed(world) > 1.5:
                p.go(3, world)
            return ArmTarget(bar + hold, yaw, 0.0)
        if p.phase == 3:  # thumb against its near side
            if p.elapsed(world) > self.CLOSE_S:
                p.go(4, world)
            return ArmTarget(bar + hold, yaw, min(1.0, p.elapsed(world) / self.RAMP_S))
        if p.phase == 4:  # pull out along the slide
            if task.opening(world) > self.PULL_TO - 0.01 or p.elapsed(world) > 4.0:
                p.go(5, world)
            return ArmTarget(task.handle_position(world, self.PULL_TO) + hold, yaw, 1.0)
        if p.phase == 5:  # push back in (aim past the stop)
            if task.opening(world) < 0.003 or p.elapsed(world) > 4.0:
                p.go(6, world)
            return ArmTarget(task.handle_position(world, -0.01) + hold, yaw, 1.0)
        if p.phase == 6:  # let go
            if p.elapsed(world) > 0.5:
                p.go(7, world)
            return ArmTarget(bar + hold, yaw, 0.0)
        return ArmTarget(descent + np.array([0.0, 0.0, self.APPROACH]), yaw, 0.0)  # away
