"""Simulated human demonstrations: the benchmark tasks done by a human hand, with ground truth.

Why: the hand-video pipeline (``hvp video process``) has no ground truth on real videos, and a
human video of a task instance the robot also runs gives paired human / robot episodes. Here
the task scene of a robot (sim/scene.py) is composed with the simulated right hand
(sim/human_hand.py) *instead of* the robot, seen by that robot's scene camera, and a scripted
human expert does the task; the same task code draws the objects from the seed and judges the
episode (``task.check_stages``), so ``(task, seed, level)`` gives the same object poses in the
human and in the robot episode.

- :class:`HumanTaskWorld` is a :class:`~human_video_policy.sim.task_world.TaskWorld` (reset,
  distractors, appearance, camera, evaluation are its code) whose "robot" is the hand: the task
  is built for the robot whose instance it mirrors (``TaskWorldConfig.robot``, default the
  WidowX: its objects, workspace and camera) with that robot's grasp parts, end effector and
  base body replaced by the hand's (:func:`human_scene_robot`). The task's own detectors
  judge: grasps by ``SceneRobot.grasp_parts`` (the hand's palm, thumb and fingers: a finger
  and the thumb or palm on an object hold it), so drawer's and pour's ``grasp`` work for the
  hand; press_button's ``above`` measures from the WidowX's fingertips below its end-effector
  site, so the human world points it at the hand's fingertip nearest the cap's axis (as the
  XHand's; ``HumanTaskWorld._adapt_detectors``). The hand rests at the table's left edge,
  raised while it would touch an object there.
- Real contacts: the hand's root hangs on 3 slides and a ball joint from a static body at the
  origin (the scene's "robot base") and is welded (a soft equality constraint) to an
  invisible mocap target that the script moves, so the hand pushes, presses and grasps
  through contacts with finite stiffness (a mocap root would be infinitely stiff); its
  contacts are stiffer than the weld, so the table stops it. Grasps are friction grasps
  (thumb and index pads squeezing under the fingers' position actuators): no weld or
  attachment holds an object. The hand's bodies are gravity compensated (a person holds
  their own hand up).
- Scripted experts (:data:`HUMAN_EXPERTS`: every WidowX task: ``pick_place`` (pinch),
  ``push`` (index and middle fingertips), ``press_button`` (pointing index), ``drawer``
  (pinch the handle bar, index behind it: pull out, push back) and ``pour`` (side pinch of
  the cup, lift, roll the hand over to tip it above the bowl, put it back; the RM75 + XHand's
  saucepan, a cup with a flat handle, gets :class:`SaucepanHuman`: palm flat on the handle,
  fingers curled under it, lift, roll the forearm over the bowl, put it back)) are generators of
  :class:`Move` s: wrist pose and finger posture via-points reached along minimum-jerk
  profiles at human speeds (reaches peak at ~0.5 m/s), each via-point computed from the true
  object poses when the move starts (a move may keep a held object's centre on a straight
  line while the hand turns: ``Move.pivot``). The person stands at the table's left (+y) side
  and reaches in with the right hand, so the WidowX camera sees the hand from its thumb side
  and from above. Success over seeds 0-19 at level ``position`` (docs/benchmark.md): 20/20
  for each of the five tasks; with ``TaskWorldConfig(robot="rm75_xhand")`` (the XHand's
  instances) 20/20 for pick_place, press_button, drawer and pour.
- :func:`run_human_episode` runs one episode and records the ground truth per video frame;
  :func:`export_demo` writes it in ``hvp video process``'s layout (docs/video_pipeline.md):
  ``OUT/<video_id>/video.json`` + ``episode_000_right.npz`` (ground-truth keypoints, wrist 6D,
  joint angles, 51-d actions... through the pipeline's own kinematics code), the H.264 video in
  ``OUT/videos/<video_id>.mp4`` and ``sim_state.npz`` (world-frame keypoints, the hand's 21
  joint angles, object positions); the task instance is in ``video.json["task_instance"]``.

CLI: ``python -m human_video_policy.sim.human_demo --task pick_place --seeds 0-9 --out DIR``.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from human_video_policy.camera.pinhole import CameraIntrinsics
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.rotations import (
    axis_angle_from_matrix,
    check_rotation,
    matrix_from_axis_angle,
)
from human_video_policy.resources import resource_path
from human_video_policy.sim.human_hand import (
    DEFAULT_PREFIX,
    JOINT_NAMES,
    KEYPOINT_SITES,
    ROOT_BODY,
    HumanHand,
    grasp_posture,
    hand_frame,
    hand_spec,
    open_posture,
)
from human_video_policy.sim.scene import (
    TABLETOP,
    SceneRobot,
    scene_robot,
    xyaxes_quaternion,
)
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
from human_video_policy.sim.tasks.base import Level

if TYPE_CHECKING:
    from human_video_policy.pipeline.episode_format import HandEpisode

PREFIX = DEFAULT_PREFIX
#: The invisible mocap body the hand's free root is welded to (what scripts move).
TARGET_BODY = "hand_target"
#: A static body at the world origin that carries the hand: the "robot base" of the scene (so
#: the base frame is the world, and "the robot touches it" means the hand does). MuJoCo allows
#: free joints only on top-level bodies, so the hand hangs from it on 3 slides and a ball.
HUMAN_BASE = "human"
ROOT_SLIDES = tuple(f"{PREFIX}root_{axis}" for axis in "xyz")
ROOT_BALL = f"{PREFIX}root_rotation"
#: Weld stiffness (MuJoCo solref: time constant s, damping ratio): the wrist follows its
#: target within millimetres at human speeds and yields under contact forces.
WELD_SOLREF = (0.01, 1.0)
#: The hand's contacts (solref): 6x the weld's stiffness, so a hand pushed into the table by
#: its target sinks in by a sixth of the push, not half of it.
CONTACT_SOLREF = (0.004, 1.0)

#: The hand's grasp parts (as SceneRobot.grasp_parts): palm, thumb and each finger; an object
#: touched by two of them is held (thumb and index pads in a pinch).
HUMAN_GRASP_PARTS: tuple[tuple[str, ...], ...] = (
    tuple(
        PREFIX + g
        for g in (
            "wrist",
            "palm",
            "thenar",
            *(f"metacarpal_{f}" for f in ("index", "middle", "ring", "pinky")),
        )
    ),
    tuple(PREFIX + f"thumb_{s}" for s in ("metacarpal", "proximal", "distal")),
    *(
        tuple(PREFIX + f"{f}_{s}" for s in ("proximal", "middle", "distal"))
        for f in ("index", "middle", "ring", "pinky")
    ),
)
#: The fingertip keypoints (MediaPipe order: thumb, index, middle, ring, little finger).
FINGERTIP_KEYPOINTS = (4, 8, 12, 16, 20)
#: The end-effector site: the wrist keypoint, whose frame is the hand frame (method A).
HUMAN_EE_SITE = f"{PREFIX}{KEYPOINT_SITES[0]}"


# -- hand geometry ---------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _hand_alone() -> tuple[mujoco.MjModel, mujoco.MjData]:
    model = hand_spec().compile()
    return model, mujoco.MjData(model)


def local_keypoints(posture: np.ndarray) -> np.ndarray:
    """(21, 3) keypoints in the hand frame (m) for finger ``posture`` (21 angles, rad)."""
    model, data = _hand_alone()
    data.qpos[:] = posture
    mujoco.mj_kinematics(model, data)
    return np.array([data.site_xpos[model.site(s).id] for s in KEYPOINT_SITES])


def pinch_geometry(aperture: float) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint (3,) and unit axis thumb tip -> index tip (3,) of the grasp posture with
    ``aperture`` (m), in the hand frame: where a pinched object sits and how it is squeezed."""
    kp = local_keypoints(grasp_posture(aperture))
    axis = kp[8] - kp[4]
    return 0.5 * (kp[4] + kp[8]), axis / np.linalg.norm(axis)


def _frame(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Orthonormal columns: ``first``, ``second`` made orthogonal to it, their cross product."""
    a = first / np.linalg.norm(first)
    b = second - (second @ a) * a
    b /= np.linalg.norm(b)
    return np.column_stack([a, b, np.cross(a, b)])


def align(
    local_a: np.ndarray, world_a: np.ndarray, local_b: np.ndarray, world_b: np.ndarray
) -> np.ndarray:
    """The rotation taking hand-frame direction ``local_a`` exactly onto ``world_a`` and
    ``local_b`` as close as it can onto ``world_b``."""
    return _frame(world_a, world_b) @ _frame(local_a, local_b).T


# Pinch grasp: cube width + this is the pre-shape aperture; the pads close to CLOSED_APERTURE
# (tighter than any object, so the fingers' servos squeeze).
PRESHAPE_MARGIN = 0.03
CLOSED_APERTURE = 0.012
# Keypoint distance of thumb tip and index tip when their pads touch an object: its width
# plus the two distal phalanges' thickness.
PAD_THICKNESS = 0.017


def contact_aperture(width: float) -> float:
    return width + PAD_THICKNESS


# -- the scene and the hand ------------------------------------------------------------------
def human_scene_robot(counterpart: SceneRobot) -> SceneRobot:
    """``counterpart``'s scene description (name, camera, workspace: what the task's objects
    and initial state depend on) with the hand's joints, end effector, grasp parts and base.

    The name stays the counterpart's: tasks pick their objects by robot name, and the human
    episode must be the same task instance as the robot's."""
    joints = tuple(PREFIX + n for n in JOINT_NAMES)
    centre, _ = pinch_geometry(contact_aperture(0.025))
    return replace(
        counterpart,
        mjcf=(),
        base_body=HUMAN_BASE,
        ee_site=HUMAN_EE_SITE,
        command_joints=joints,
        state_joints=joints,
        home=tuple(float(v) for v in open_posture()),
        grasp_parts=HUMAN_GRASP_PARTS,
        grasp_center=tuple(float(v) for v in centre),
    )


def compose_human_scene(
    camera: SceneRobot, add_objects: Callable[[mujoco.MjSpec], None]
) -> mujoco.MjSpec:
    """The tabletop with the hand instead of a robot (its root on slides + ball under
    :data:`HUMAN_BASE`, welded to the mocap :data:`TARGET_BODY`, gravity compensated),
    ``camera``'s scene camera and ``add_objects``' bodies (not compiled)."""
    spec = mujoco.MjSpec.from_file(str(resource_path(*TABLETOP)))
    spec.worldbody.add_camera(
        name="scene_camera",
        pos=list(camera.camera_pos),
        quat=list(xyaxes_quaternion(camera.camera_xyaxes)),
        fovy=camera.camera_fovy,
    )
    base = spec.worldbody.add_body(name=HUMAN_BASE)
    spec.attach(hand_spec(), prefix=PREFIX, frame=base.add_frame())
    root = spec.body(PREFIX + ROOT_BODY)
    root.mocap = False
    for name, axis in zip(ROOT_SLIDES, np.eye(3), strict=True):
        root.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_SLIDE, axis=list(axis))
    root.add_joint(name=ROOT_BALL, type=mujoco.mjtJoint.mjJNT_BALL)
    for body in spec.bodies:
        if body.name.startswith(PREFIX):
            body.gravcomp = 1.0
    for geom in spec.geoms:
        if geom.name.startswith(PREFIX):  # contacts stiffer than the weld: the table stops it
            geom.solref = list(CONTACT_SOLREF)
            geom.solimp = [0.95, 0.99, 0.001, 0.5, 2.0]
            geom.solmix = 100.0  # the hand's side of every contact decides its softness
    spec.worldbody.add_body(name=TARGET_BODY, mocap=True)
    weld = spec.add_equality(
        type=mujoco.mjtEq.mjEQ_WELD,
        objtype=mujoco.mjtObj.mjOBJ_BODY,
        name1=PREFIX + ROOT_BODY,
        name2=TARGET_BODY,
        solref=list(WELD_SOLREF),
    )
    # Anchor at the wrist, relative pose identity, torque scale 1 (the spec's default data is
    # a joint equality's polynomial, which read as a weld puts the anchor 1 m away).
    data = np.zeros(len(weld.data))
    data[6], data[10] = 1.0, 1.0
    weld.data = data
    add_objects(spec)
    return spec


class WeldedHumanHand(HumanHand):
    """:class:`HumanHand` whose root is a free-moving body welded to a mocap target.

    :meth:`set_wrist_pose` puts both the hand and the target there (a reset);
    :meth:`set_wrist_target` moves only the target, the physics brings the hand."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.model, self.data, self.prefix = model, data, PREFIX
        names = tuple(PREFIX + n for n in JOINT_NAMES)
        try:
            root = model.body(PREFIX + ROOT_BODY)
            joints = [model.joint(n) for n in names]
            self._sites = np.array([model.site(PREFIX + s).id for s in KEYPOINT_SITES])
            self.actuator_index = np.array([model.actuator(n).id for n in names])
            self._root_qpos = np.array([int(model.joint(n).qposadr[0]) for n in ROOT_SLIDES])
            ball = model.joint(ROOT_BALL)
            self._mocap = int(model.body(TARGET_BODY).mocapid[0])
        except KeyError as exc:
            raise ConfigError(f"the model has no welded human hand: {exc}") from exc
        self.root_body = int(root.id)
        self._ball_qpos = int(ball.qposadr[0])
        first_dof = int(model.joint(ROOT_SLIDES[0]).dofadr[0])
        self._root_dofs = slice(first_dof, first_dof + 6)
        self.qpos_index = np.array([int(j.qposadr[0]) for j in joints])
        self.qvel_index = np.array([int(j.dofadr[0]) for j in joints])
        self.ranges = np.array([j.range for j in joints], dtype=np.float64)

    def set_wrist_pose(self, position: object, rotation: object) -> None:
        """Put the hand and its target at ``position`` / ``rotation`` (world), at rest."""
        self.set_wrist_target(position, rotation)
        self.data.qpos[self._root_qpos] = self.data.mocap_pos[self._mocap]
        self.data.qpos[self._ball_qpos : self._ball_qpos + 4] = self.data.mocap_quat[self._mocap]
        self.data.qvel[self._root_dofs] = 0.0
        self.forward()

    def set_wrist_target(self, position: object, rotation: object) -> None:
        """Move the weld target (the hand follows when the physics steps)."""
        p = np.asarray(position, dtype=np.float64)
        if p.shape != (3,) or not np.isfinite(p).all():
            raise InputError(f"wrist position must be 3 finite values, got {position!r}")
        R = check_rotation("wrist rotation", rotation, tol=1e-5)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, np.asarray(R, dtype=np.float64).flatten())
        self.data.mocap_pos[self._mocap] = p
        self.data.mocap_quat[self._mocap] = quat

    def set_finger_targets(self, posture: np.ndarray) -> None:
        """Finger actuator targets (rad, JOINT_NAMES order, clamped into the ranges)."""
        q = np.clip(np.asarray(posture, dtype=np.float64), self.ranges[:, 0], self.ranges[:, 1])
        self.data.ctrl[self.actuator_index] = q


class HumanTaskWorld(TaskWorld):
    """A benchmark task with the human hand instead of the robot (see the module docstring).

    ``config.robot`` names the robot whose task instance is mirrored (objects, workspace,
    camera); ``config.image_width/height`` the rendered video size. ``hand`` moves the hand;
    ``counterpart`` is the mirrored robot's scene description."""

    #: Where the hand waits before and after the task (world frame): at the robot's left
    #: (+y) edge of the camera's view, palm down, the fingers pointing into the workspace (a
    #: person standing at the table's left side, reaching in with the right hand).
    REST_POSITION = (0.24, 0.2, 0.13)
    REST_FINGERS = (0.1, -1.0, -0.25)
    REST_PALM_NORMAL = (0.2, 0.0, -1.0)
    REST_RAISE = 0.02

    hand: WeldedHumanHand

    def __init__(self, config: TaskWorldConfig | None = None) -> None:
        super().__init__(config or TaskWorldConfig("pick_place", image_width=640, image_height=480))
        self._adapt_detectors()

    def _adapt_detectors(self) -> None:
        """Point the task's detectors that measure from the mirrored robot's geometry at the
        hand's: press_button's ``above`` measures from the WidowX's fingertips (1.6 cm below
        its end-effector site, which here is the wrist); for the hand it measures, as for the
        XHand, from the fingertip nearest the cap's axis (:meth:`fingertip_presser`)."""
        from human_video_policy.sim.tasks.press_button import PressButton

        if isinstance(self.task, PressButton):
            self.task.presser = self.fingertip_presser  # type: ignore[method-assign]

    def fingertip_presser(self, world: TaskWorld, top: np.ndarray) -> np.ndarray:
        """(3,) the hand's fingertip keypoint (world = base frame) nearest the vertical axis
        through ``top``: what presses a button."""
        tips = self.hand.keypoints()[list(FINGERTIP_KEYPOINTS)]
        return tips[int(np.argmin(np.linalg.norm(tips[:, :2] - top[:2], axis=1)))]

    def _scene_robot(self) -> SceneRobot:
        self.counterpart = scene_robot(self.config.robot)
        return human_scene_robot(self.counterpart)

    def _compose_scene(self) -> mujoco.MjSpec:
        return compose_human_scene(self.counterpart, self._add_objects)

    def reset(self, seed: int, level: Level | str = Level.POSITION) -> None:
        """The robot episode's reset (objects, distractors, colours from ``seed`` at ``level``),
        then the hand at its rest pose, relaxed (raised by REST_RAISE steps while it touches an
        object there: an object may stand under the resting fingers)."""
        super().reset(seed, level)
        if not hasattr(self, "hand"):  # the first reset runs inside TaskWorld.__init__
            self.hand = WeldedHumanHand(self.model, self.data)
            self._hand_bodies = {
                b for b in range(self.model.nbody) if self.model.body(b).name.startswith(PREFIX)
            }
        self.hand.set_posture(RELAXED)
        position, rotation = np.array(self.REST_POSITION), self._rest_rotation()
        for _ in range(10):
            self.hand.set_wrist_pose(position, rotation)
            if not self._hand_touches_objects():
                break
            position = position + np.array([0.0, 0.0, self.REST_RAISE])
        self._rest = position

    def _rest_rotation(self) -> np.ndarray:
        return hand_frame(self.REST_FINGERS, self.REST_PALM_NORMAL)

    def _hand_touches_objects(self) -> bool:
        m, d = self.model, self.data
        for i in range(d.ncon):
            c = d.contact[i]
            hand = [int(m.geom_bodyid[g]) in self._hand_bodies for g in (c.geom1, c.geom2)]
            if hand[0] != hand[1] and c.dist < 0.005:
                return True
        return False

    def rest_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Where the hand rests this episode (wrist position and rotation, world)."""
        return self._rest.copy(), self._rest_rotation()

    def command(self, pose: HandPose) -> None:
        """Wrist target and finger targets of ``pose`` (applied as the physics steps)."""
        self.hand.set_wrist_target(pose.position, pose.rotation)
        self.hand.set_finger_targets(pose.posture)

    def object_positions(self) -> dict[str, np.ndarray]:
        """World position of every movable body of the task, by body name: the free bodies
        (objects, beads) and those on a joint of the task (a drawer, a button's cap)."""
        m, d = self.model, self.data
        out = {}
        for j in range(m.njnt):
            body = int(m.jnt_bodyid[j])
            name = m.body(body).name
            if not name.startswith(PREFIX) and name != HUMAN_BASE:
                out[name] = d.xpos[body].copy()
        return out


#: A relaxed open hand: fingers a little flexed, the thumb beside the index.
RELAXED = np.array([0.1, 0.2, 0.2, 0.1, 0.1, *([0.0, 0.2, 0.25, 0.1] * 4)], dtype=np.float64)


# -- motion ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HandPose:
    """A via-point: wrist position (3,) and rotation (3, 3) in the world, finger posture (21,)."""

    position: np.ndarray
    rotation: np.ndarray
    posture: np.ndarray


@dataclass(frozen=True)
class Move:
    """Go from the current via-point to ``target`` in ``duration`` s (minimum jerk), then hold
    it ``hold`` s. ``pivot`` (hand frame, m; None: the wrist) is the point that travels in a
    straight line while the hand turns (a held object's centre: the object does not swing)."""

    target: HandPose
    duration: float
    hold: float = 0.0
    pivot: np.ndarray | None = None


def min_jerk(s: float) -> float:
    """Minimum-jerk time scaling 0 -> 1 (zero velocity and acceleration at both ends)."""
    s = min(1.0, max(0.0, s))
    return s**3 * (10.0 - 15.0 * s + 6.0 * s * s)


def interpolate(a: HandPose, b: HandPose, s: float, pivot: np.ndarray | None = None) -> HandPose:
    """``a`` -> ``b`` at fraction ``s``: postures linearly, rotations along the geodesic and
    positions linearly: the wrist's, or those of the hand-frame point ``pivot``."""
    turn = axis_angle_from_matrix(a.rotation.T @ b.rotation)
    R = a.rotation @ matrix_from_axis_angle(s * turn)
    c = np.zeros(3) if pivot is None else np.asarray(pivot, dtype=np.float64)
    start, end = a.position + a.rotation @ c, b.position + b.rotation @ c
    return HandPose(start + s * (end - start) - R @ c, R, a.posture + s * (b.posture - a.posture))


#: Average wrist speed of a reach (m/s): a minimum-jerk profile peaks at 1.875 times it.
REACH_SPEED = 0.3
#: Average speed of short, careful moves (descend to grasp, lift, place).
CAREFUL_SPEED = 0.12
TURN_SPEED = 1.5  # rad/s, average wrist rotation speed


def move_to(current: HandPose, target: HandPose, speed: float, minimum: float = 0.4) -> Move:
    """A move at average wrist ``speed`` (m/s, and TURN_SPEED for turning), at least
    ``minimum`` s."""
    distance = float(np.linalg.norm(target.position - current.position))
    turn = float(np.linalg.norm(axis_angle_from_matrix(current.rotation.T @ target.rotation)))
    return Move(target, max(minimum, distance / speed, turn / TURN_SPEED))


class HumanScript(ABC):
    """A scripted human expert: :meth:`moves` yields :class:`Move` s; it resumes when the
    previous move is done (held), so each via-point is computed from the world as it is then.
    ``pose`` is the via-point the hand was last sent to."""

    def __init__(self, world: HumanTaskWorld) -> None:
        self.world = world
        self.task = world.task
        position, rotation = world.rest_pose()
        self.rest = HandPose(position, rotation, RELAXED.copy())
        self.pose = self.rest

    @abstractmethod
    def moves(self) -> Iterator[Move]:
        """The task's moves, each computed when the one before is done."""

    def go(self, target: HandPose, speed: float, minimum: float = 0.4, hold: float = 0.0) -> Move:
        move = move_to(self.pose, target, speed, minimum)
        self.pose = target
        return replace(move, hold=hold)

    def shift(self, offset: np.ndarray, speed: float, posture: np.ndarray | None = None) -> Move:
        """Move the wrist by ``offset`` (m, world), optionally changing the posture."""
        p = self.pose
        return self.go(
            HandPose(p.position + offset, p.rotation, p.posture if posture is None else posture),
            speed,
        )

    def home(self) -> Move:
        return self.go(self.rest, REACH_SPEED, minimum=0.6)


# Where a person at the table's left side (+y) has their right shoulder: reaches head from it.
SHOULDER = np.array([0.15, 0.5])
# Pinch: the hand is rolled (rad, about the pinch axis) so the little-finger side is up and the
# palm turns toward the camera; the curled middle, ring and little fingers stay clear of the
# table.
PINCH_ROLL = 0.3


def heading_to(point: np.ndarray) -> float:
    """Direction (rad about z) from the shoulder to ``point``."""
    d = np.asarray(point[:2]) - SHOULDER
    return math.atan2(d[1], d[0])


def pinch_rotation(axis_yaw: float, aperture: float) -> np.ndarray:
    """Hand rotation whose thumb -> index pinch axis (at ``aperture``) is horizontal along
    ``axis_yaw``, the palm down and rolled by PINCH_ROLL."""
    _, axis = pinch_geometry(aperture)
    world_axis = np.array([math.cos(axis_yaw), math.sin(axis_yaw), 0.0])
    side = np.cross([0.0, 0.0, 1.0], world_axis)
    palm = -math.cos(PINCH_ROLL) * np.array([0.0, 0.0, 1.0]) - math.sin(PINCH_ROLL) * side
    return align(axis, world_axis, np.array([0.0, 0.0, 1.0]), palm)


@lru_cache(maxsize=1)
def _pinch_heading_offset() -> float:
    """Hand heading (fingers, about z) minus the pinch axis yaw."""
    R = pinch_rotation(0.0, contact_aperture(0.025))
    return math.atan2(R[1, 0], R[0, 0])


def pinch_axis_yaw(world: HumanTaskWorld, obj: Any, pos: np.ndarray) -> float:
    """Pinch axis yaw for object ``obj`` (an ObjectVariant) at ``pos``: perpendicular to the
    face of a cube (any direction for a can) nearest to the natural heading from the
    shoulder."""
    from human_video_policy.sim.tasks.common import object_yaw

    preferred = heading_to(pos) - _pinch_heading_offset()
    if not obj.yaw_symmetry:
        return preferred
    face = object_yaw(world, obj.name)
    period = obj.yaw_symmetry
    return face + period * round((preferred - face) / period)


class PickPlaceHuman(HumanScript):
    """Reach over the object with the pinch pre-shaped -> down around it -> pinch (thumb and
    index pads) -> lift -> carry over the plate -> lower -> open -> back to rest.

    The pinch axis is perpendicular to a face of a cube (any direction for a can), the face
    nearest to the natural heading from the shoulder."""

    LIFT = 0.08
    APPROACH = 0.06  # pre-grasp this far above the grasp
    PINCH_ABOVE_CENTRE = 0.003  # pinch midpoint above the object's centre
    PUT_ABOVE = 0.004  # release with the object this far above resting

    def grasp_axis_yaw(self, pos: np.ndarray) -> float:
        return pinch_axis_yaw(self.world, self.task.obj, pos)

    def moves(self) -> Iterator[Move]:
        world, task = self.world, self.task
        obj = task.obj
        width = 2.0 * obj.radius
        touch = contact_aperture(width)
        open_q = grasp_posture(min(touch + PRESHAPE_MARGIN, 0.1))
        closed_q = grasp_posture(CLOSED_APERTURE)
        centre, _ = pinch_geometry(touch)
        yield Move(self.pose, 0.3)  # a moment at rest
        pos = world.body_position(obj.name)
        R = pinch_rotation(self.grasp_axis_yaw(pos), touch)
        grasp_mid = pos + np.array([0.0, 0.0, self.PINCH_ABOVE_CENTRE])
        wrist = grasp_mid - R @ centre
        above = HandPose(wrist + np.array([0.0, 0.0, self.APPROACH]), R, open_q)
        yield self.go(above, REACH_SPEED, minimum=0.8)
        pos = world.body_position(obj.name)  # where it is now
        wrist = pos + np.array([0.0, 0.0, self.PINCH_ABOVE_CENTRE]) - R @ centre
        yield self.go(HandPose(wrist, R, open_q), CAREFUL_SPEED, minimum=0.5, hold=0.1)
        yield replace(self.shift(np.zeros(3), 1.0, closed_q), duration=0.4, hold=0.2)
        yield self.shift(np.array([0.0, 0.0, self.LIFT]), CAREFUL_SPEED)
        plate = task.plate_position(world)
        lifted = world.body_position(obj.name)
        carry = self.pose.position + np.array([plate[0] - lifted[0], plate[1] - lifted[1], 0.0])
        yield self.go(HandPose(carry, self.pose.rotation, closed_q), REACH_SPEED, minimum=0.6)
        held = world.body_position(obj.name)
        drop = held[2] - (task.rest_height() + self.PUT_ABOVE)  # on the plate, or the block
        offset = plate[:2] - held[:2]  # put it on the plate's centre, wherever it sits in hand
        yield self.shift(np.array([offset[0], offset[1], -drop]), CAREFUL_SPEED)
        yield replace(self.shift(np.zeros(3), 1.0, open_q), duration=0.35, hold=0.1)
        yield self.shift(np.array([0.0, 0.0, self.LIFT]), CAREFUL_SPEED * 1.5)
        yield self.home()


#: Pushing with the fingertips: index and middle nearly straight and together (the push runs
#: along their bones, so their joints need little stiffness), ring and little finger a little
#: spread and higher, the thumb tucked toward the palm.
POKE = np.array(
    [
        *(0.6, 0.0, 0.5, 0.4, 0.3),
        *(-0.2, 0.25, 0.15, 0.05),
        *(0.1, 0.25, 0.15, 0.05),
        *(0.0, 0.2, 0.2, 0.1),
        *(0.05, 0.25, 0.2, 0.1),
    ],
    dtype=np.float64,
)


class PushHuman(HumanScript):
    """Palm down, index and middle fingertips forward and down: down behind the object ->
    slide it along the object-to-goal line with the fingertips -> up and back to rest;
    re-aims from above (up to three times) while the object is not on the goal.

    The hand always pushes fingers first, so a push toward the person (+y) turns the hand
    around (no arm is simulated: a real person would rather pull with hooked fingers)."""

    FINGER_PITCH = 0.7  # middle finger (MCP -> tip) this far (rad) below horizontal
    TIP_HEIGHT = 0.013  # lowest fingertip keypoint above the table (m)
    STANDOFF = 0.025  # fingertips this far behind the object's near side before the push
    ABOVE = 0.08
    TIP_RADIUS = 0.002  # the fingertip surface ahead of the tip keypoints along the push (m)
    DONE = 0.012  # object within this of the goal: stop (the goal disc's radius is 2.5 cm)

    def push_pose(self, direction: np.ndarray, front_xy: np.ndarray) -> HandPose:
        """The hand pushing along ``direction`` with the index and middle fingertips, their
        front at ``front_xy`` and their midpoint on the push line through it."""
        d = np.array([direction[0], direction[1], 0.0])
        kp = local_keypoints(POKE)
        tips_local = 0.5 * (kp[8] + kp[12])
        pitch = self.FINGER_PITCH
        bone = math.cos(pitch) * d - math.sin(pitch) * np.array([0.0, 0.0, 1.0])
        right = np.array([d[1], -d[0], 0.0])  # the little-finger side of a palm-down hand
        # the fingers along the push, pitched down, the palm down
        R = align(tips_local - kp[9], bone, np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0]))
        tips = (R @ kp[[8, 12]].T).T
        front = float(tips.mean(axis=0) @ d) + self.TIP_RADIUS
        lateral = float(tips.mean(axis=0) @ right)
        wrist = np.array([front_xy[0], front_xy[1], 0.0]) - front * d - lateral * right
        wrist[2] = self.TIP_HEIGHT - tips[:, 2].min()
        return HandPose(wrist, R, POKE.copy())

    def moves(self) -> Iterator[Move]:
        world, task = self.world, self.task
        obj = task.obj
        yield Move(self.pose, 0.3)
        for _attempt in range(3):
            pos = world.body_position(obj.name)
            goal = task.goal_position(world)
            to_goal = goal[:2] - pos[:2]
            distance = float(np.linalg.norm(to_goal))
            if distance < self.DONE:
                break
            d = to_goal / distance
            reach = obj.radius * math.sqrt(2.0) if obj.shape == "box" else obj.radius
            start = self.push_pose(d, pos[:2] - d * (reach + self.STANDOFF))
            up = np.array([0.0, 0.0, self.ABOVE])
            above = HandPose(start.position + up, start.rotation, POKE.copy())
            yield self.go(above, REACH_SPEED, minimum=0.8)
            yield self.go(start, CAREFUL_SPEED, minimum=0.5)
            end = self.push_pose(d, goal[:2] - d * obj.radius)
            yield self.go(end, CAREFUL_SPEED, minimum=0.6, hold=0.1)
            yield self.shift(up, CAREFUL_SPEED)
        yield self.home()


#: Pointing: the index finger straight, the other fingers curled into the palm, the thumb
#: across them (as the fist).
POINT = np.array(
    [
        *(0.48, 0.84, 1.2, 0.44, 0.9),
        *(0.0, 0.1, 0.1, 0.05),
        *([0.0, 1.45, 1.75, 1.0] * 3),
    ],
    dtype=np.float64,
)


class PressButtonHuman(HumanScript):
    """Point with the index finger: over the cap -> tip on the cap's top centre -> press it
    to the stop and hold -> up and back to rest. The finger is pitched steeply down, so the
    press runs along its bones and the curled fingers stay above the housing.

    The task's ``above`` stage measures from the WidowX's fingertips (1.6 cm below its
    end-effector site; here the wrist), so for the hand only ``contact`` and ``press`` (the
    cap's depth) are meaningful before success, which latches every stage."""

    PITCH = 1.1  # index finger (MCP -> tip) this far (rad) below horizontal
    ABOVE = 0.06
    OVERPRESS = 0.004  # aim below the stop: the finger and the weld yield to the spring

    def point_pose(self, tip: np.ndarray, heading: float) -> HandPose:
        """The pointing hand whose index fingertip keypoint is at ``tip`` (world), the finger
        along ``heading`` (rad about z) pitched PITCH down, the palm down."""
        kp = local_keypoints(POINT)
        d = np.array([math.cos(heading), math.sin(heading), 0.0])
        bone = math.cos(self.PITCH) * d - math.sin(self.PITCH) * np.array([0.0, 0.0, 1.0])
        R = align(kp[8] - kp[5], bone, np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0]))
        return HandPose(np.asarray(tip) - R @ kp[8], R, POINT.copy())

    def moves(self) -> Iterator[Move]:
        from human_video_policy.sim.tasks.press_button import TRAVEL

        world, task = self.world, self.task
        yield Move(self.pose, 0.3)
        top = task.cap_position(world)
        heading = heading_to(top)
        above = self.point_pose(top + np.array([0.0, 0.0, self.ABOVE]), heading)
        yield self.go(above, REACH_SPEED, minimum=0.8)
        touch = self.point_pose(top + np.array([0.0, 0.0, 0.002]), heading)
        yield self.go(touch, CAREFUL_SPEED, minimum=0.5)
        pressed = top - np.array([0.0, 0.0, TRAVEL + self.OVERPRESS])
        yield self.go(self.point_pose(pressed, heading), 0.05, minimum=0.4, hold=0.3)
        yield self.go(above, CAREFUL_SPEED)
        yield self.home()


class DrawerHuman(HumanScript):
    """Pinch the handle bar from above, the fingers pointing into the cabinet: the index pad
    behind the bar, the thumb pad in front of it -> pull the drawer out along the slide (the
    index hooks the bar) -> push it back in (the thumb pushes the bar) -> open -> up and back
    to rest. The pads squeeze the bar, so the task's ``grasp`` (both "fingers" touch the
    handle) holds."""

    APPROACH = 0.06  # pre-grasp this far above the grasp
    PRESHAPE_MARGIN = 0.02  # opened this much wider than the bar: the index fits behind it
    PINCH_BELOW_CENTRE = 0.0  # pinch midpoint below the bar's centre
    PULL_TO = 0.08  # opening to pull to (the stop is at 9 cm)
    PUSH_PAST = 0.01  # aim the push this far past closed: the weld yields

    def moves(self) -> Iterator[Move]:
        world, task = self.world, self.task
        cab = task.cabinet
        width = 2.0 * cab.handle_radius
        touch = contact_aperture(width)
        open_q = grasp_posture(touch + self.PRESHAPE_MARGIN)
        closed_q = grasp_posture(CLOSED_APERTURE)
        centre, _ = pinch_geometry(touch)
        yield Move(self.pose, 0.3)
        axis = task.axis  # the drawer's opening direction
        R = pinch_rotation(math.atan2(-axis[1], -axis[0]), touch)  # thumb -> index: inward

        def wrist_at(opening: float) -> np.ndarray:
            bar = task.handle_position(world, opening)
            return bar - np.array([0.0, 0.0, self.PINCH_BELOW_CENTRE]) - R @ centre

        grasp = wrist_at(0.0)
        up = np.array([0.0, 0.0, self.APPROACH])
        yield self.go(HandPose(grasp + up, R, open_q), REACH_SPEED, minimum=0.8)
        yield self.go(HandPose(grasp, R, open_q), CAREFUL_SPEED, minimum=0.5, hold=0.1)
        yield replace(self.shift(np.zeros(3), 1.0, closed_q), duration=0.4, hold=0.2)
        yield self.go(HandPose(wrist_at(self.PULL_TO), R, closed_q), CAREFUL_SPEED, 0.6, 0.1)
        yield self.go(HandPose(wrist_at(-self.PUSH_PAST), R, closed_q), CAREFUL_SPEED, 0.6, 0.1)
        yield replace(self.shift(np.zeros(3), 1.0, open_q), duration=0.35, hold=0.1)
        yield self.shift(up, CAREFUL_SPEED * 1.5)
        yield self.home()


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    return matrix_from_axis_angle(np.asarray(axis, dtype=np.float64) * angle)


#: The pour grip's middle, ring and little fingers: curled into the palm (the fist's), out of
#: the way of the cup's mouth.
CURLED = np.tile([0.0, 1.45, 1.75, 1.0], 3)


#: The pour grip's release: opened wide, the thumb off the cup's wall.
RELEASE_APERTURE = 0.1


def cup_grip(aperture: float) -> np.ndarray:
    """The grasp posture with ``aperture`` for the thumb and index, the other fingers curled."""
    q = grasp_posture(aperture).copy()
    q[9:] = CURLED
    return q


class PourHuman(HumanScript):
    """A side pinch: the hand beside the cup, palm toward it, the little-finger side up, the
    thumb and index pads on the cup's walls at its middle (the other fingers curled) -> lift
    -> carry it over the bowl -> roll the hand over the cup (about the pinch axis) until the
    cup is tipped TILT past upright, its mouth over the bowl's centre and pointing away from
    the palm -> hold while the beads roll out -> back upright, carried back to where it stood
    -> put it down -> open -> back to rest.

    The tipped poses are computed from the cup's pose in the hand as it is then (the grasp
    may have let it turn a little), so the mouth lands over the bowl."""

    BACK = (0.05, 0.07)  # pre-grasp this far back (m, against the palm's normal) and up
    TURN_ABOVE = 0.06
    PINCH_ABOVE_CENTRE = 0.005
    LIFT = 0.08
    CARRY_BOTTOM = 0.07  # cup bottom above the table while carried and tipped
    MOUTH_HEIGHT = 0.065  # mouth centre above the table when tipped
    TILT = 2.0  # rad from upright (115 deg): the beads roll out past ~95 deg
    TILT_S = 1.0  # a quick turn of the wrist (at most this long)
    HOLD_S = 0.4
    PUT_ABOVE = 0.004

    def tip_over_bowl(self, axis: np.ndarray, closed_q: np.ndarray) -> Iterator[Move]:
        """Carry the held cup upright over the bowl, then tip it by ``TILT`` about ``axis``
        and hold it there (each move keeps the cup's centre on a straight line)."""
        for angle in (0.0, self.TILT):
            p, Rh = self.hand_for_cup(*self.tipped(axis, angle))
            hold = self.HOLD_S if angle else 0.0
            move = self.go(HandPose(p, Rh, closed_q), REACH_SPEED, minimum=0.6, hold=hold)
            yield replace(
                move, duration=min(move.duration, self.TILT_S), pivot=self.cup_in_hand()[0]
            )

    def cup_in_hand(self) -> tuple[np.ndarray, np.ndarray]:
        """The cup's position (3,) and rotation (3, 3) in the hand frame now."""
        world, cup = self.world, self.task.obj
        p, R = world.hand.wrist_pose()
        return R.T @ (world.body_position(cup.name) - p), R.T @ world.body_rotation(cup.name)

    def hand_for_cup(self, cup_pos: np.ndarray, cup_rot: np.ndarray) -> tuple[np.ndarray, ...]:
        """The wrist pose that puts the held cup at ``cup_pos`` / ``cup_rot`` (world)."""
        x, X = self.cup_in_hand()
        R = cup_rot @ X.T
        return cup_pos - R @ x, R

    def tipped(self, axis: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
        """The cup turned ``angle`` about ``axis`` (world, horizontal) from upright, placed so
        its mouth is over the bowl's centre and neither mouth nor bottom comes down into it."""
        cup = self.task.obj
        R = rotation_about(axis, angle) @ _yaw_only(self.world.body_rotation(cup.name))
        up = R[:, 2]
        bowl = self.task.bowl_position(self.world)
        h = cup.half_height
        c = np.array([bowl[0] - h * up[0], bowl[1] - h * up[1], 0.0])
        c[2] = max(self.MOUTH_HEIGHT - h * up[2], self.CARRY_BOTTOM + h * up[2])
        return c, R

    def moves(self) -> Iterator[Move]:
        world, task = self.world, self.task
        cup = task.obj
        touch = contact_aperture(2.0 * cup.radius)
        open_q = cup_grip(min(touch + PRESHAPE_MARGIN, 0.1))
        closed_q = cup_grip(CLOSED_APERTURE)
        centre, local_axis = pinch_geometry(touch)
        yield Move(self.pose, 0.3)
        start = world.body_position(cup.name)
        yaw = pinch_axis_yaw(world, cup, start) + _pinch_heading_offset()
        axis = np.array([math.cos(yaw), math.sin(yaw), 0.0])  # the pinch axis, horizontal
        palm = np.cross(axis, [0.0, 0.0, 1.0])  # the palm faces it: the little finger up
        R = align(local_axis, axis, np.array([0.0, 0.0, 1.0]), palm)
        pinch = start + np.array([0.0, 0.0, self.PINCH_ABOVE_CENTRE])
        wrist = pinch - R @ centre
        back = -self.BACK[0] * palm + np.array([0.0, 0.0, self.BACK[1]])
        high = np.array([0.0, 0.0, self.TURN_ABOVE])  # turn the hand over the cup, clear of it
        yield self.go(HandPose(wrist + back + high, R, open_q), REACH_SPEED, minimum=0.8)
        yield self.go(HandPose(wrist + back, R, open_q), REACH_SPEED, minimum=0.3)
        yield self.go(HandPose(wrist, R, open_q), CAREFUL_SPEED, minimum=0.5, hold=0.1)
        yield replace(self.shift(np.zeros(3), 1.0, closed_q), duration=0.4, hold=0.2)
        yield self.shift(np.array([0.0, 0.0, self.LIFT]), CAREFUL_SPEED)
        yield from self.tip_over_bowl(axis, closed_q)
        # back upright over where it stood, then down onto the table
        carry = start + np.array([0.0, 0.0, cup.half_height + self.CARRY_BOTTOM])
        p, Rh = self.hand_for_cup(carry, _yaw_only(world.body_rotation(cup.name)))
        move = self.go(HandPose(p, Rh, closed_q), REACH_SPEED, minimum=0.8)
        yield replace(move, duration=min(move.duration, self.TILT_S), pivot=self.cup_in_hand()[0])
        held = world.body_position(cup.name)
        drop = held[2] - (cup.half_height + self.PUT_ABOVE)
        yield self.shift(np.array([start[0] - held[0], start[1] - held[1], -drop]), CAREFUL_SPEED)
        release_q = cup_grip(RELEASE_APERTURE)
        yield replace(self.shift(np.zeros(3), 1.0, release_q), duration=0.35, hold=0.1)
        yield self.shift(-self.BACK[0] * palm, CAREFUL_SPEED * 1.5)
        yield self.home()


#: The saucepan grip's pre-shape: fingers straight out over the handle's far edge, the thumb
#: along the index.
HANDLE_OPEN = np.array([0.1, 0.2, 0.2, 0.1, 0.1, *([0.0, 0.1, 0.1, 0.05] * 4)], dtype=np.float64)
#: The saucepan grip: the four fingers hooked down past the handle's far edge and curled under
#: it (aimed at the fist: the handle stops them, so their servos squeeze it against the palm).
HANDLE_GRIP = np.array([0.1, 0.2, 0.2, 0.1, 0.1, *([0.0, 1.6, 1.9, 1.2] * 4)], dtype=np.float64)


class SaucepanHuman(PourHuman):
    """The pour with a saucepan (the RM75 + XHand's cup: a flat handle near the rim, see
    tasks/pour.py), as a person takes a pan by its handle, overhand: the palm flat on the
    handle's top at its grip point, the fingers across it (the little finger toward the cup)
    -> fingers hooked past its far edge and curled under it (their servos squeeze it against
    the palm: the cup's weight cannot turn it) -> lift -> carry the cup over the bowl -> roll
    the forearm about the handle's cross direction (:meth:`PourHuman.tipped`, ``Move.pivot``
    on the cup's centre) so the cup swings down on the handle's side and tips its mouth away
    from the hand, over the bowl's centre -> hold -> back upright (the way it came) over where
    it stood -> put it down -> fingers open -> up and back to rest.

    :func:`human_expert` picks it for a pour whose cup has a handle."""

    ALONG = 0.6  # grip this far out along the handle (0 = at the wall, 1 = its end)
    PALM_POINT = (0.062, 0.008, 0.0115)  # hand-frame point on the palm put on the grip point
    PRESS = 0.002  # palm aimed this far into the handle's top (the weld yields)
    APPROACH = 0.06
    LIFT = 0.08

    def grip_pose(self, posture: np.ndarray) -> HandPose:
        world, task, cup = self.world, self.task, self.task.obj
        pos = world.body_position(cup.name)
        free_end = task.handle_position(world, 1.0)
        u = free_end[:2] - pos[:2]
        u = np.array([u[0], u[1], 0.0]) / np.linalg.norm(u)
        z = np.array([0.0, 0.0, -1.0])  # palm down
        y = -u  # the little finger toward the cup
        R = np.column_stack([np.cross(y, z), y, z])
        grip = task.handle_position(world, self.ALONG)
        top = grip + np.array([0.0, 0.0, cup.handle[2] / 2 - self.PRESS])
        return HandPose(top - R @ np.array(self.PALM_POINT), R, posture)

    def moves(self) -> Iterator[Move]:
        world, cup = self.world, self.task.obj
        yield Move(self.pose, 0.3)
        start = world.body_position(cup.name)
        grasp = self.grip_pose(HANDLE_OPEN.copy())
        up = np.array([0.0, 0.0, self.APPROACH])
        above = HandPose(grasp.position + up, grasp.rotation, HANDLE_OPEN.copy())
        yield self.go(above, REACH_SPEED, minimum=0.8)
        yield self.go(grasp, CAREFUL_SPEED, minimum=0.5, hold=0.1)
        closed_q = HANDLE_GRIP.copy()
        yield replace(self.shift(np.zeros(3), 1.0, closed_q), duration=0.5, hold=0.3)
        yield self.shift(np.array([0.0, 0.0, self.LIFT]), CAREFUL_SPEED)
        upright = _yaw_only(world.body_rotation(cup.name))  # the cup's heading as lifted
        axis = upright[:, 1]  # the handle's cross direction: the mouth tips away from it
        yield from self.tip_over_bowl(axis, closed_q)
        carry = start + np.array([0.0, 0.0, cup.half_height + self.CARRY_BOTTOM])
        p, Rh = self.hand_for_cup(carry, upright)  # turned back the way it tipped
        move = self.go(HandPose(p, Rh, closed_q), REACH_SPEED, minimum=0.8)
        yield replace(move, duration=min(move.duration, self.TILT_S), pivot=self.cup_in_hand()[0])
        held = world.body_position(cup.name)
        drop = held[2] - (cup.half_height + self.PUT_ABOVE)
        yield self.shift(np.array([start[0] - held[0], start[1] - held[1], -drop]), CAREFUL_SPEED)
        yield replace(self.shift(np.zeros(3), 1.0, HANDLE_OPEN.copy()), duration=0.5, hold=0.1)
        yield self.shift(up, CAREFUL_SPEED * 1.5)
        yield self.home()


def _yaw_only(R: np.ndarray) -> np.ndarray:
    """The rotation about the vertical closest to ``R``'s heading (its x axis, levelled)."""
    yaw = math.atan2(R[1, 0], R[0, 0])
    return rotation_about([0.0, 0.0, 1.0], yaw)


HUMAN_EXPERTS: dict[str, type[HumanScript]] = {
    "pick_place": PickPlaceHuman,
    "push": PushHuman,
    "press_button": PressButtonHuman,
    "drawer": DrawerHuman,
    "pour": PourHuman,
    "stack": PickPlaceHuman,  # the plate is the block's top (tasks/stack.py)
}


def human_expert(world: HumanTaskWorld) -> HumanScript:
    """The scripted human expert of ``world``'s task."""
    try:
        cls = HUMAN_EXPERTS[world.config.task]
    except KeyError:
        raise ConfigError(
            f"task {world.config.task!r} has no human expert: choose one of {sorted(HUMAN_EXPERTS)}"
        ) from None
    if cls is PourHuman and world.task.obj.handle[0]:  # a saucepan (the XHand's instance)
        cls = SaucepanHuman
    return cls(world)


# -- episodes --------------------------------------------------------------------------------
@dataclass
class HumanDemo:
    """One simulated human episode with its ground truth, per video frame (T frames).

    Attributes:
        task, robot, level, seed: the task instance (``robot``: whose instance it mirrors).
        fps: video frame rate.
        success, score, stages: the task's latched verdict at the end.
        time_to_success: sim seconds until success (None on failure).
        stage_times_s: stage name -> sim seconds when it was first reached (success latches
            every stage: a stage reached only then has the success time).
        stamps_s: (T,) frame times (s from the reset).
        keypoints_world: (T, 21, 3) keypoints in the world (= robot base) frame, m.
        wrist_position_world, wrist_rotation_world: (T, 3), (T, 3, 3) the hand frame.
        hand_joints: (T, 21) the hand's joint angles (rad, sim/human_hand.JOINT_NAMES order).
        object_positions: body name -> (T, 3) world positions of the task's movable bodies
            (free bodies, a drawer, a button's cap).
        camera_pose: (4, 4) T_base_camera (camera optical frame -> world).
        intrinsics: the rendered camera's pinhole intrinsics.
        frames: the rendered RGB frames (empty unless rendered).
    """

    task: str
    robot: str
    level: str
    seed: int
    fps: float
    success: bool
    score: float
    stages: tuple[str, ...]
    time_to_success: float | None
    stage_times_s: dict[str, float]
    stamps_s: np.ndarray
    keypoints_world: np.ndarray
    wrist_position_world: np.ndarray
    wrist_rotation_world: np.ndarray
    hand_joints: np.ndarray
    object_positions: dict[str, np.ndarray]
    camera_pose: np.ndarray
    intrinsics: CameraIntrinsics
    frames: list[np.ndarray] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(self.stamps_s.shape[0])

    @property
    def video_id(self) -> str:
        return f"human_{self.task}_{self.robot}_{self.level}_{self.seed:06d}"

    @property
    def keypoints_cam(self) -> np.ndarray:
        """(T, 21, 3) keypoints in the camera optical frame (x right, y down, z forward), m."""
        R, t = self.camera_pose[:3, :3], self.camera_pose[:3, 3]
        return (self.keypoints_world - t) @ R

    @property
    def keypoints_px(self) -> np.ndarray:
        """(T, 21, 2) keypoints projected into the rendered image (px)."""
        return self.intrinsics.project(self.keypoints_cam)

    def task_instance(self) -> dict[str, Any]:
        return {"task": self.task, "robot": self.robot, "level": self.level, "seed": self.seed}


def run_human_episode(
    world: HumanTaskWorld,
    seed: int,
    level: Level | str = Level.POSITION,
    fps: float = 30.0,
    render: bool = False,
    max_episode_s: float | None = None,
    tail_s: float = 0.3,
) -> HumanDemo:
    """Reset ``world`` to ``(seed, level)``, run the task's human expert to its end (or the
    task's time limit) and record the ground truth at ``fps`` (and RGB frames if ``render``).

    The task is evaluated after every physics step (stages latch); the episode goes on after
    success until the hand is back at rest, plus ``tail_s``, as a person's video would."""
    if not fps > 0:
        raise InputError(f"fps={fps!r} is invalid: must be > 0")
    world.reset(seed, level)
    script = human_expert(world)
    moves = script.moves()
    limit = world.max_episode_s if max_episode_s is None else float(max_episode_s)
    dt = world.timestep
    start_pose = script.pose
    move: Move | None = next(moves, None)
    move_start = world.time
    end_time: float | None = None
    frame_dt = 1.0 / fps
    rec: dict[str, list[Any]] = {k: [] for k in ("t", "kp", "wp", "wr", "q", "frames")}
    objects: dict[str, list[np.ndarray]] = {}
    score = world.evaluate()
    stage_times: dict[str, float] = {}
    time_to_success = None
    n_frame = 0
    while world.time < limit - 1e-9:
        now = world.time
        if now >= n_frame * frame_dt - 1e-9:
            _record(world, rec, objects, render)
            n_frame += 1
            if end_time is not None and now >= end_time:
                break
        while move is not None and now - move_start >= move.duration + move.hold - 1e-9:
            start_pose = move.target
            move = next(moves, None)
            move_start = now
            if move is None:
                end_time = now + tail_s
        if move is not None:
            s = min_jerk((now - move_start) / move.duration) if move.duration > 0 else 1.0
            world.command(interpolate(start_pose, move.target, s, move.pivot))
        world.step(dt)
        score = world.evaluate()
        for name, reached in score.stages:
            if reached and name not in stage_times:
                stage_times[name] = world.time
        if score.success and time_to_success is None:
            time_to_success = world.time
    return HumanDemo(
        task=world.config.task,
        robot=world.counterpart.name,
        level=world.level.value,
        seed=int(seed),
        fps=float(fps),
        success=bool(score.success),
        score=float(score.score),
        stages=tuple(name for name, reached in score.stages if reached),
        time_to_success=time_to_success,
        stage_times_s=stage_times,
        stamps_s=np.asarray(rec["t"], dtype=np.float64),
        keypoints_world=np.asarray(rec["kp"], dtype=np.float64),
        wrist_position_world=np.asarray(rec["wp"], dtype=np.float64),
        wrist_rotation_world=np.asarray(rec["wr"], dtype=np.float64),
        hand_joints=np.asarray(rec["q"], dtype=np.float64),
        object_positions={k: np.asarray(v) for k, v in objects.items()},
        camera_pose=world.camera_pose(),
        intrinsics=world.camera_intrinsics(),
        frames=rec["frames"],
    )


def _record(
    world: HumanTaskWorld,
    rec: dict[str, list[Any]],
    objects: dict[str, list[np.ndarray]],
    render: bool,
) -> None:
    hand = world.hand
    rec["t"].append(world.time)
    rec["kp"].append(hand.keypoints())
    p, R = hand.wrist_pose()
    rec["wp"].append(p)
    rec["wr"].append(R)
    rec["q"].append(hand.posture())
    for name, pos in world.object_positions().items():
        objects.setdefault(name, []).append(pos)
    if render:
        rec["frames"].append(world.render_rgb())


# -- export ----------------------------------------------------------------------------------
VIDEOS_DIR = "videos"
SIM_STATE_NAME = "sim_state.npz"
LIFT_METHOD = "ground_truth (simulation)"


class _GroundTruthKinematics:
    """The video pipeline's per-episode stages (kinematics, retargeting, segmentation and
    captions: ``VideoEpisodePipeline._episode``) on ground-truth keypoints, without its
    tracker, so a simulated episode file is exactly what ``hvp video process`` writes for a
    perfectly tracked hand (one code path; a change there changes both)."""

    def __init__(self, fx: float) -> None:
        from human_video_policy.pipeline.video_episodes import (
            VideoEpisodePipeline,
            VideoPipelineConfig,
        )

        class _NoTracker(VideoEpisodePipeline):
            def __init__(self, config: VideoPipelineConfig) -> None:  # no MediaPipe graph
                self.config = config
                self._retargeting = None

            def close(self) -> None:
                pass

        self.config = VideoPipelineConfig(fx=fx)
        self._pipeline = _NoTracker(self.config)

    def episode(self, demo: HumanDemo, timings: dict[str, float]) -> HandEpisode:
        K = demo.intrinsics
        intrinsics = {k: float(getattr(K, k)) for k in ("width", "height", "fx", "fy", "cx", "cy")}
        T = demo.num_frames
        arrays = {
            "frame_index": np.arange(T, dtype=np.int64),
            "stamps_s": np.asarray(demo.stamps_s, dtype=np.float64),
            "keypoints_px": demo.keypoints_px,
            "keypoints_cam": demo.keypoints_cam,
            "filled": np.zeros(T, dtype=bool),
            "outlier": np.zeros(T, dtype=bool),
        }
        episode = self._pipeline._episode(
            demo.video_id, "right", 0, demo.fps, arrays, timings, intrinsics
        )
        episode.intrinsics = intrinsics
        episode.lift_method = LIFT_METHOD
        episode.extra.update(
            ground_truth=True,
            task_instance=demo.task_instance(),
            success=demo.success,
            score=demo.score,
            stages=list(demo.stages),
        )
        return episode


def export_demo(demo: HumanDemo, out_dir: str | Path, crf: int = 20) -> Path:
    """Write ``demo`` (rendered) in ``hvp video process``'s layout; returns its folder.

    ``OUT/videos/<video_id>.mp4`` (H.264 via video/writer.py), ``OUT/<video_id>/video.json``
    (the pipeline's record keys plus ``task_instance``, ``ground_truth``, the task's verdict),
    ``OUT/<video_id>/episode_000_right.npz`` (read with ``pipeline.episode_format.
    read_episode``) and ``OUT/<video_id>/sim_state.npz`` (:func:`read_sim_state`);
    ``OUT/index.jsonl`` is rebuilt."""
    from dataclasses import asdict

    from human_video_policy.pipeline.batch import write_video_result
    from human_video_policy.pipeline.episode_format import write_index
    from human_video_policy.pipeline.video_episodes import STAGES, VideoResult
    from human_video_policy.video.writer import Mp4Writer

    if not demo.frames or len(demo.frames) != demo.num_frames:
        raise InputError("export_demo needs a rendered demo (run_human_episode(render=True))")
    out = Path(out_dir)
    start = time.perf_counter()
    video = out / VIDEOS_DIR / f"{demo.video_id}.mp4"
    with Mp4Writer(video, demo.fps, crf=crf) as writer:
        for frame in demo.frames:
            writer.write(frame)
    timings = dict.fromkeys(STAGES, 0.0)
    kinematics = _GroundTruthKinematics(demo.intrinsics.fx)
    episode = kinematics.episode(demo, timings)
    height, width = demo.frames[0].shape[:2]
    T = demo.num_frames
    timings["total"] = time.perf_counter() - start
    record: dict[str, Any] = {
        "video_id": demo.video_id,
        "source": str(video.resolve()),
        "status": "ok",
        "error": None,
        "attempts": 1,
        "width": int(width),
        "height": int(height),
        "rotation_deg": 0,
        "fps": demo.fps,
        "frames": T,
        "frames_announced": T,
        "truncated": False,
        "frames_with_hand": T,
        "hand_fraction": 1.0,
        "hands_found": {"left": 0, "right": T},
        "config_hash": kinematics.config.config_hash(),
        "config": asdict(kinematics.config),
        "stage_seconds": {k: round(v, 4) for k, v in timings.items()},
        "frames_per_second": round(T / timings["total"], 2) if timings["total"] else 0.0,
        "episodes": [
            {
                "file": episode.file_name,
                "handedness": episode.handedness,
                "frames": T,
                "start_frame": 0,
                "end_frame": T,
                "segments": int(episode.arrays["segments"].shape[0]),
            }
        ],
        "ground_truth": True,
        "lift_method": LIFT_METHOD,
        "task_instance": demo.task_instance(),
        "success": demo.success,
        "score": demo.score,
        "stages": list(demo.stages),
        "time_to_success": demo.time_to_success,
        "codec": writer.codec,
    }
    folder = write_video_result(out, VideoResult(record, [episode]))
    _write_sim_state(folder / SIM_STATE_NAME, demo)
    write_index(out)
    return folder


def _write_sim_state(path: Path, demo: HumanDemo) -> None:
    import json

    from human_video_policy.pipeline.episode_format import _atomic_write_bytes

    K = demo.intrinsics
    names = sorted(demo.object_positions)
    payload = {
        "stamps_s": demo.stamps_s,
        "keypoints_world": demo.keypoints_world,
        "keypoints_cam": demo.keypoints_cam,
        "keypoints_px": demo.keypoints_px,
        "wrist_position_world": demo.wrist_position_world,
        "wrist_rotation_world": demo.wrist_rotation_world,
        "hand_joints": demo.hand_joints,
        "hand_joint_names": np.asarray(JOINT_NAMES),
        "object_names": np.asarray(names),
        "object_positions": (
            np.stack([demo.object_positions[n] for n in names], axis=1)
            if names
            else np.zeros((demo.num_frames, 0, 3))
        ),
        "T_base_camera": demo.camera_pose,
        "K": np.array([[K.fx, 0.0, K.cx], [0.0, K.fy, K.cy], [0.0, 0.0, 1.0]]),
        "meta": np.array(json.dumps({**demo.task_instance(), "fps": demo.fps})),
    }
    _atomic_write_bytes(path, lambda fh: np.savez_compressed(fh, **payload))


def read_sim_state(folder: str | Path) -> dict[str, Any]:
    """The arrays of ``folder/sim_state.npz`` (world-frame ground truth, object positions
    ``(T, n, 3)`` by ``object_names``, ``T_base_camera``, ``K``) and ``meta`` (dict)."""
    import json

    path = Path(folder) / SIM_STATE_NAME
    try:
        with np.load(path, allow_pickle=False) as data:
            out: dict[str, Any] = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable sim state ({exc})") from exc
    out["meta"] = json.loads(str(out["meta"]))
    return out


# -- command line ----------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"3"`` or ``"0,4,7-9"`` -> seeds (each a training seed, sorted, unique)."""
    from human_video_policy.sim.tasks.base import check_training_seed

    seeds: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            lo, hi = int(first), int(last or first)
            if hi < lo:
                raise ValueError(part)
            seeds.update(range(lo, hi + 1))
    except ValueError:
        raise InputError(f"seeds={text!r} is invalid: use e.g. 0-9, 3 or 0,4,7-9") from None
    return [check_training_seed(s) for s in sorted(seeds)]


def main(argv: list[str] | None = None) -> int:
    """``python -m human_video_policy.sim.human_demo --task pick_place --seeds 0-9 --out DIR``:
    render and export one human demonstration per seed; prints one line per episode."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m human_video_policy.sim.human_demo",
        description="Simulated human demonstrations of a benchmark task (video + ground truth "
        "in hvp video process's layout).",
    )
    parser.add_argument("--task", required=True, choices=sorted(HUMAN_EXPERTS))
    parser.add_argument("--seeds", required=True, help="e.g. 0-9, 3 or 0,4,7-9")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--level", default=Level.POSITION.value, choices=[lv.value for lv in Level])
    parser.add_argument("--robot", default="widowx", help="robot whose task instance to mirror")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        config = TaskWorldConfig(
            task=args.task, robot=args.robot, image_width=args.width, image_height=args.height
        )
        successes = 0
        with HumanTaskWorld(config) as world:
            for seed in seeds:
                start = time.perf_counter()
                demo = run_human_episode(world, seed, args.level, fps=args.fps, render=True)
                folder = export_demo(demo, args.out)
                successes += demo.success
                print(
                    f"[human_demo] {demo.video_id}: success={demo.success} "
                    f"stages={','.join(demo.stages) or '-'} frames={demo.num_frames} "
                    f"({time.perf_counter() - start:.1f} s) -> {folder}"
                )
    except (ConfigError, InputError) as exc:
        print(f"error: {exc}")
        return 2
    print(f"[human_demo] {successes}/{len(seeds)} successful -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
