"""Press button: push the button's cap down with the closed gripper (WidowX) or a fingertip (XHand).

Initial state: the button (a fixed housing with a spring-loaded cap on top) at a random free
spot in the robot's workspace, turned at random about the vertical. The cap slides on a
vertical joint with 1 cm of travel; a preloaded spring (joint stiffness above its rest
position) and damping push it back up when released, so only a sustained downward push keeps
it down. Stages: ``above`` (the fingertips within 1.2 cm of the cap's axis, above its top),
``contact`` (the cap pressed in more than 1 mm), ``press`` = success (pressed in more than
6.5 mm). Training button: a red round cap (r 1.6 cm) on a dark square housing; held-out: a
green square cap (3.8 cm wide) on a larger, light round housing.

Robots: the WidowX presses with its closed fingertips (``above`` measures from them); the
RM75 + XHand points its index finger (the other fingers and the thumb curled in), palm down and
the fingers tipped steeply down, and ``above`` measures from the fingertip nearest the cap's
axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from human_video_policy.robots.xhand import FINGERTIP_FRAMES, XHAND_JOINTS
from human_video_policy.sim.arm_expert import ArmTarget, HandGrip, target_rotation
from human_video_policy.sim.scene import OBJECT_CONAFFINITY, OBJECT_CONTYPE
from human_video_policy.sim.tasks import register
from human_video_policy.sim.tasks.base import Level, Task
from human_video_policy.sim.tasks.common import (
    GRIPPER_CLOSED,
    Phases,
    radial_closing_yaw,
    rm75_xhand_expert,
    turned_within,
    widowx_expert,
    xhand_palm_down,
)

if TYPE_CHECKING:
    from human_video_policy.policies.base import Policy
    from human_video_policy.sim.scene import SceneRobot
    from human_video_policy.sim.task_world import TaskWorld

TRAVEL = 0.010  # cap travel (m) from its rest position down to the stop
CONTACT_DEPTH = 0.001
PRESS_DEPTH = 0.0065
# Spring: rest against the upper stop with a 1 N preload, 3 N at the bottom stop; damping
# near critical for the cap's 20 g so it returns without bouncing.
SPRING_STIFFNESS = 200.0
SPRING_PRELOAD = 0.005  # springref (m) above the rest position
SPRING_DAMPING = 3.0
CAP_MASS = 0.02
CAP_PROTRUSION = 0.012  # cap top above the housing top at rest (m)
FINGERTIP_BELOW_EE = 0.0164  # WidowX fingertips below the end-effector site (m)
# XHand pointing posture (XHAND_JOINTS order): the thumb folded across the palm, the index
# straight, the middle, ring and little fingers curled: the index tip is 8 cm below the rest.
XHAND_POINT = (1.6, 1.5, 0.8, 0.0, 0.0, 0.0, 1.6, 1.6, 1.6, 1.6, 1.6, 1.6)
# The pressing hand: palm down, fingers pointing away from the base tipped 1 rad down. Pointing
# straight down, the RM75 reaches no farther than 0.42 m at the button's height; tipped, the
# index tip stays 3.7 cm below every other part of the hand.
XHAND_PRESS_AXES = xhand_palm_down(1.0)
PARKED = np.array([-0.3, 1.5, 0.0])  # the unused button, out of sight


@dataclass(frozen=True)
class ButtonVariant:
    """One button: a fixed housing (mocap body) and its cap on a spring-loaded slide joint.

    Attributes:
        name: housing body name; the cap is ``<name>_cap``, its joint ``<name>_press``.
        housing_shape, housing_size: ``box`` (half sizes) or ``cylinder`` (radius, half height).
        housing_rgba: housing colour.
        cap_shape, cap_size: as for the housing.
        cap_rgba: cap colour.
    """

    name: str
    housing_shape: str
    housing_size: tuple[float, ...]
    housing_rgba: tuple[float, float, float, float]
    cap_shape: str
    cap_size: tuple[float, ...]
    cap_rgba: tuple[float, float, float, float]

    @property
    def cap(self) -> str:
        return f"{self.name}_cap"

    @property
    def joint(self) -> str:
        return f"{self.name}_press"

    @property
    def housing_height(self) -> float:
        return 2 * _half_height(self.housing_shape, self.housing_size)

    @property
    def cap_half_height(self) -> float:
        return _half_height(self.cap_shape, self.cap_size)

    @property
    def rest_top(self) -> float:
        """Height of the cap's top above the table at rest (m)."""
        return self.housing_height + CAP_PROTRUSION

    @property
    def footprint(self) -> float:
        """Radius (m) of the housing's circumscribed circle on the table."""
        s = self.housing_size
        return math.hypot(s[0], s[1]) if self.housing_shape == "box" else s[0]

    def add_to(self, spec: mujoco.MjSpec) -> None:
        housing = spec.worldbody.add_body(name=self.name, pos=list(PARKED), mocap=True)
        _add_geom(
            housing,
            self.name,
            self.housing_shape,
            self.housing_size,
            self.housing_rgba,
            pos=(0.0, 0.0, self.housing_height / 2),
        )
        cap = housing.add_body(name=self.cap, pos=[0.0, 0.0, self.rest_top - self.cap_half_height])
        cap.add_joint(
            name=self.joint,
            type=mujoco.mjtJoint.mjJNT_SLIDE,
            axis=[0.0, 0.0, 1.0],
            range=[-TRAVEL, 0.0],
            stiffness=SPRING_STIFFNESS,
            springref=SPRING_PRELOAD,
            damping=SPRING_DAMPING,
            armature=0.002,
            # Stiff stops: the preloaded spring must not sink the cap past them.
            solref_limit=[0.004, 1.0],
            solimp_limit=[0.95, 0.99, 0.001, 0.5, 2.0],
        )
        _add_geom(cap, self.cap, self.cap_shape, self.cap_size, self.cap_rgba, CAP_MASS)


def _half_height(shape: str, size: tuple[float, ...]) -> float:
    return size[2] if shape == "box" else size[1]


def _add_geom(
    body: mujoco.MjsBody,
    name: str,
    shape: str,
    size: tuple[float, ...],
    rgba: tuple[float, float, float, float],
    mass: float = 0.0,
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> None:
    box = shape == "box"
    body.add_geom(
        name=name,
        pos=list(pos),
        type=mujoco.mjtGeom.mjGEOM_BOX if box else mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=list(size) if box else [size[0], size[1], 0.0],
        rgba=list(rgba),
        mass=mass,
        contype=OBJECT_CONTYPE,
        conaffinity=OBJECT_CONAFFINITY,
        condim=4,
        group=1,
    )


RED_BUTTON = ButtonVariant(
    "button",
    "box",
    (0.028, 0.028, 0.01),
    (0.2, 0.2, 0.22, 1.0),
    "cylinder",
    (0.016, 0.008),
    (0.85, 0.1, 0.08, 1.0),
)
GREEN_BUTTON = ButtonVariant(
    "square_button",
    "cylinder",
    (0.036, 0.008),
    (0.85, 0.85, 0.8, 1.0),
    "box",
    (0.019, 0.019, 0.007),
    (0.15, 0.7, 0.2, 1.0),
)

BUTTONS = (RED_BUTTON, GREEN_BUTTON)  # (training, held out)


@register
class PressButton(Task):
    name = "press_button"
    description = "press the button's spring-loaded cap down with the closed gripper or a fingertip"
    tags = ("gripper", "contact", "position")
    robots = ("widowx", "rm75_xhand")
    stages = ("above", "contact", "press")
    max_episode_s = 10.0

    def __init__(self, robot: SceneRobot) -> None:
        super().__init__(robot)
        self.variants = BUTTONS
        self.button = RED_BUTTON

    def add_objects(self, spec: mujoco.MjSpec) -> None:
        for variant in self.variants:
            variant.add_to(spec)

    def bind(self, model: mujoco.MjModel) -> None:
        self._mocap = {v.name: int(model.body_mocapid[model.body(v.name).id]) for v in BUTTONS}
        self._qpos = {v.name: int(model.jnt_qposadr[model.joint(v.joint).id]) for v in BUTTONS}
        # The XHand presses with its fingertip bodies; a scene without them (the WidowX, or the
        # human hand mirroring an RM75 instance, whose world sets its own presser) has none.
        tips = [
            mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in FINGERTIP_FRAMES.values()
        ]
        hand = self.robot.name == "rm75_xhand" and min(tips) >= 0
        self._tips = tips if hand else []

    @property
    def obj(self) -> ButtonVariant:
        """The button in use (its ``name`` is the housing body's), as other tasks' ``obj``."""
        return self.button

    def initialize(self, world: TaskWorld, rng: np.random.Generator, level: Level) -> None:
        self.button = self.variants[1 if level.rank >= Level.NEW_OBJECT.rank else 0]
        r = self.robot
        margin = 0.02
        spot = world.free_spot(
            rng,
            (r.workspace_x[0] + margin, r.workspace_x[1] - margin),
            (r.workspace_y[0] + margin, r.workspace_y[1] - margin),
            0.1,
        )
        yaw = float(rng.uniform(-np.pi, np.pi))
        for i, variant in enumerate(self.variants):
            mocap = self._mocap[variant.name]
            used = variant is self.button
            world.data.mocap_pos[mocap] = spot if used else PARKED + np.array([0.0, i, 0.0])
            world.data.mocap_quat[mocap] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]

    def depth(self, world: TaskWorld) -> float:
        """How far (m) the cap is pressed in below its rest position."""
        return float(-world.data.qpos[self._qpos[self.button.name]])

    def cap_position(self, world: TaskWorld) -> np.ndarray:
        """(3,) the cap's top centre now."""
        b = self.button
        return world.body_position(b.cap) + np.array([0.0, 0.0, b.cap_half_height])

    def presser(self, world: TaskWorld, top: np.ndarray) -> np.ndarray:
        """(3,) the point the robot presses with: the WidowX's fingertips below its site, the
        XHand's fingertip nearest the cap's axis (``top``: the cap's top centre)."""
        if not self._tips:
            ee = world.ee_position()
            return np.array([ee[0], ee[1], ee[2] - FINGERTIP_BELOW_EE])
        tips = [world._in_base(world.data.xpos[b]) for b in self._tips]
        return min(tips, key=lambda t: float(np.linalg.norm(t[:2] - top[:2])))

    def check_stages(self, world: TaskWorld) -> tuple[dict[str, bool], bool]:
        top = self.cap_position(world)
        tip = self.presser(world, top)
        above = bool(np.linalg.norm(tip[:2] - top[:2]) < 0.012 and -0.002 < tip[2] - top[2] < 0.08)
        depth = self.depth(world)
        success = depth > PRESS_DEPTH
        return {"above": above, "contact": depth > CONTACT_DEPTH, "press": success}, success

    def expert(self, world: TaskWorld) -> Policy:
        if self.robot.name == "rm75_xhand":
            grip = HandGrip(XHAND_JOINTS, (XHAND_POINT,))
            script = HandPressButtonScript(self, index_tip_offset(world))
            return rm75_xhand_expert(world, script, grip, XHAND_PRESS_AXES)
        return widowx_expert(world, PressButtonScript(self))


class PressButtonScript:
    """closed gripper above the cap -> down onto it -> press to the stop -> release upward."""

    ABOVE = 0.06
    OVERPRESS = 0.004  # aim below the stop: the arm's position servos yield to the spring

    GRIPPER = GRIPPER_CLOSED

    def __init__(self, task: PressButton) -> None:
        self.task = task
        self.phases = Phases()

    def yaw(self, cap: np.ndarray) -> float:
        """Closing direction of the gripper over the cap at ``cap``."""
        return radial_closing_yaw(cap)

    def rest_point(self, cap: np.ndarray, button: ButtonVariant, yaw: float) -> np.ndarray:
        """End-effector site target with the presser on the cap's top at rest."""
        return np.array([cap[0], cap[1], button.rest_top + FINGERTIP_BELOW_EE])

    def aligned(self, world: TaskWorld, yaw: float) -> bool:
        """Whether the end effector is turned as pressing at ``yaw`` needs (to descend)."""
        return True

    def __call__(self, world: TaskWorld) -> ArmTarget:
        p = self.phases
        p.sync(world)
        task, button = self.task, self.task.button
        ee = world.ee_position()
        cap = task.cap_position(world)
        yaw = self.yaw(cap)
        rest = self.rest_point(cap, button, yaw)
        above = rest + np.array([0.0, 0.0, self.ABOVE])
        if p.phase == 0:  # above the cap
            if np.linalg.norm(ee - above) < 0.01 and self.aligned(world, yaw):
                p.go(1, world)
            return ArmTarget(above, yaw, self.GRIPPER)
        if p.phase == 1:  # down to touch its top
            touch = rest + np.array([0.0, 0.0, 0.003])
            if np.linalg.norm(ee - touch) < 0.004 or p.elapsed(world) > 2.0:
                p.go(2, world)
            return ArmTarget(touch, yaw, self.GRIPPER)
        if p.phase == 2:  # press to the stop
            if task.depth(world) > TRAVEL - 0.001 or p.elapsed(world) > 2.0:
                p.go(3, world)
            pressed = rest - np.array([0.0, 0.0, TRAVEL + self.OVERPRESS])
            return ArmTarget(pressed, yaw, self.GRIPPER)
        return ArmTarget(above, yaw, self.GRIPPER)  # release


def index_tip_offset(world: TaskWorld) -> np.ndarray:
    """(3,) the XHand's index fingertip in the end-effector site frame, in XHAND_POINT."""
    m = world.model
    data = mujoco.MjData(m)
    joints = [m.joint(j).id for j in XHAND_JOINTS]
    data.qpos[[m.jnt_qposadr[j] for j in joints]] = XHAND_POINT
    mujoco.mj_kinematics(m, data)
    site = m.site(world.robot.ee_site).id
    rot = data.site_xmat[site].reshape(3, 3)
    tip = data.xpos[m.body(FINGERTIP_FRAMES["index"]).id]
    return rot.T @ (tip - data.site_xpos[site])


class HandPressButtonScript(PressButtonScript):
    """The press phases for the XHand (XHAND_PRESS_AXES, XHAND_POINT): the index fingertip on
    the cap's axis, pushed straight down."""

    GRIPPER = 1.0  # one posture (XHAND_POINT): the value is not used
    ALIGNED_RAD = 0.05

    def __init__(self, task: PressButton, tip_offset: np.ndarray) -> None:
        super().__init__(task)
        self.tip_offset = np.asarray(tip_offset, dtype=np.float64)

    def yaw(self, cap: np.ndarray) -> float:
        return math.atan2(cap[1], cap[0])

    def rest_point(self, cap: np.ndarray, button: ButtonVariant, yaw: float) -> np.ndarray:
        rot = target_rotation(yaw) @ XHAND_PRESS_AXES
        return np.array([cap[0], cap[1], button.rest_top]) - rot @ self.tip_offset

    def aligned(self, world: TaskWorld, yaw: float) -> bool:
        want = target_rotation(yaw) @ XHAND_PRESS_AXES
        return turned_within(world, want, self.ALIGNED_RAD)
