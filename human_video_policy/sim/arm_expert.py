"""Scripted experts for the benchmark tasks on a gripper arm: Cartesian targets -> IK -> chunks.

A task's expert is a *script*: a function of the true world state that returns where the end
effector should go next (:class:`ArmTarget`: position, gripper direction, finger closing
direction, gripper opening) and advances through the task's phases as their conditions are met.
:class:`ScriptedArmExpert` turns each target into joint targets by damped-least-squares IK on
MuJoCo Jacobians (its own copy of the world's model, seeded at the measured joints) and plans
a chunk toward them like the reach expert: exponential approach capped at a joint speed, so the
chunks are smooth and velocity limited. Output: :class:`ActionChunk` in the robot's joint
position action space, what a learned policy returns.

A dexterous hand takes the gripper's place through :class:`HandGrip`: the script's gripper value
(0 = open .. 1 = closed) picks a posture of all the hand's joints, and ``ee_axes`` says how the
hand's end-effector frame sits in the gripper frame of :func:`target_rotation`, so one script
shape (approach, close, lift...) drives a gripper arm and an arm with a hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.validation import check_int_range, check_positive

if TYPE_CHECKING:
    from human_video_policy.sim.task_world import TaskWorld

DOWN = np.array([0.0, 0.0, -1.0])


@dataclass(frozen=True)
class ArmTarget:
    """Where the end effector should go.

    Attributes:
        position: (3,) end-effector site target in the base frame (m).
        closing_yaw: direction (rad about z, base frame) the fingers close along.
        gripper: finger joint target (m; the robot's gripper range), or for a hand
            (:class:`HandGrip`) its closing, 0 = open .. 1 = closed.
        tilt: rotation (rad) of the pointing direction away from straight down, about the
            closing direction (pouring).
    """

    position: np.ndarray
    closing_yaw: float
    gripper: float
    tilt: float = 0.0


def target_rotation(closing_yaw: float, tilt: float = 0.0) -> np.ndarray:
    """Gripper frame (x = pointing direction, y = closing direction) as a rotation matrix."""
    y = np.array([math.cos(closing_yaw), math.sin(closing_yaw), 0.0])
    x = DOWN.copy()
    z = np.cross(x, y)
    rot = np.column_stack([x, y, z])
    if tilt:
        c, s = math.cos(tilt), math.sin(tilt)
        k = y  # Rodrigues rotation about the closing axis
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        rot = (np.eye(3) + s * kx + (1 - c) * kx @ kx) @ rot
    return rot


def nearest_symmetric_yaw(yaw: float, reference: float, period: float = math.pi) -> float:
    """The angle ``yaw + k * period`` closest to ``reference`` (a symmetric grasp)."""
    return yaw + period * round((reference - yaw) / period)


@dataclass(frozen=True)
class HandGrip:
    """A hand in place of a gripper: ``ArmTarget.gripper`` (0 = open .. 1 = closed) moves all of
    ``joints`` along evenly spaced key ``postures`` (piecewise linear), so a gripper-style
    script (open, close) drives every finger, and a path through several postures keeps, e.g.,
    the thumb clear of the table while it swings under the palm.

    Attributes:
        joints: the hand's command joints.
        postures: key postures (rad, ``joints`` order), from open (0) to closed (1).
    """

    joints: tuple[str, ...]
    postures: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if not self.postures or any(len(p) != len(self.joints) for p in self.postures):
            raise ConfigError(
                f"HandGrip needs at least one posture of {len(self.joints)} joint values"
            )

    def targets(self, closing: float) -> np.ndarray:
        """Joint targets (rad) at ``closing`` (clipped to 0..1)."""
        keys = np.asarray(self.postures, dtype=np.float64)
        if len(keys) == 1:
            return keys[0].copy()
        s = float(np.clip(closing, 0.0, 1.0)) * (len(keys) - 1)
        i = min(int(s), len(keys) - 2)
        return keys[i] + (s - i) * (keys[i + 1] - keys[i])


@dataclass(frozen=True)
class ArmExpertConfig:
    """Settings of :class:`ScriptedArmExpert`.

    Attributes:
        horizon: rows per chunk.
        dt: seconds between rows.
        max_joint_speed: cap (rad/s) on the fastest arm joint's speed along the planned line.
        gain: exponential approach rate (1/s) toward the IK goal.
        ik_iterations: maximum damped-least-squares iterations per solve.
        ik_damping: damping (lambda) of the least-squares step.
        rotation_weight: weight (m/rad) of the orientation error against the position error.
        max_step_m, max_turn_rad: per chunk, aim at most this far (m) and this much turned
            (rad) from the end effector's current pose, along the straight line and the
            shortest rotation to the target (None = aim at the target). A far IK goal is
            reached through joint space, where a hand turning from pointing down to palm down
            sweeps wide; short steps keep the path near the straight one.
    """

    horizon: int = 10
    dt: float = 0.1
    max_joint_speed: float = 1.5
    gain: float = 4.0
    ik_iterations: int = 100
    ik_damping: float = 0.02
    rotation_weight: float = 0.3
    max_step_m: float | None = None
    max_turn_rad: float | None = None

    def __post_init__(self) -> None:
        check_int_range("horizon", self.horizon, 1, 1000)
        check_positive("dt", self.dt)
        check_positive("max_joint_speed", self.max_joint_speed)
        check_positive("gain", self.gain)
        check_int_range("ik_iterations", self.ik_iterations, 1)
        check_positive("ik_damping", self.ik_damping)
        check_positive("rotation_weight", self.rotation_weight)
        if self.max_step_m is not None:
            check_positive("max_step_m", self.max_step_m)
        if self.max_turn_rad is not None:
            check_positive("max_turn_rad", self.max_turn_rad)


Script = Callable[["TaskWorld"], ArmTarget]


class ScriptedArmExpert:
    """A privileged expert: ``script(world)`` says where to go, this class says how.

    Args:
        world: the task world (read for the true state; its model is copied for IK).
        script: target of the moment; called once per chunk, may keep phase state.
        arm_joints: the joints IK moves (command joints without the gripper).
        gripper: the command joint of the gripper (its target is ``ArmTarget.gripper``), or
            a :class:`HandGrip` for a hand.
        action_space: the action space name the chunks carry.
        config: expert settings.
        ee_axes: (3, 3) the end-effector site's axes (columns) in the gripper frame of
            :func:`target_rotation` (x pointing, y closing); None = the same frame (WidowX).
    """

    needs_image = False

    def __init__(
        self,
        world: TaskWorld,
        script: Script,
        arm_joints: tuple[str, ...],
        gripper: str | HandGrip,
        action_space: str,
        config: ArmExpertConfig | None = None,
        ee_axes: np.ndarray | None = None,
    ) -> None:
        self.world = world
        self.script = script
        self.config = config or ArmExpertConfig()
        self.model = world.model
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.names = tuple(world.joint_names)
        self._arm = np.array([self.names.index(j) for j in arm_joints])
        self.hand = gripper if isinstance(gripper, HandGrip) else None
        grip_joints = gripper.joints if isinstance(gripper, HandGrip) else (gripper,)
        self._gripper = np.array([self.names.index(j) for j in grip_joints])
        self._ee_axes = np.eye(3) if ee_axes is None else np.asarray(ee_axes, dtype=np.float64)
        jids = [m.joint(j).id for j in arm_joints]
        self._qpos = np.array([m.jnt_qposadr[j] for j in jids])
        self._dofs = np.array([m.jnt_dofadr[j] for j in jids])
        self._lower = m.jnt_range[jids, 0].copy()
        self._upper = m.jnt_range[jids, 1].copy()
        self._site = m.site(world.robot.ee_site).id
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self.action_space = action_space
        self.last_target: ArmTarget | None = None
        self.last_ik_error = 0.0

    def solve_ik(self, target: ArmTarget, seed: np.ndarray) -> tuple[np.ndarray, float]:
        """Arm joints putting the end-effector site at the target; (q, position error m)."""
        want = target_rotation(target.closing_yaw, target.tilt) @ self._ee_axes
        return self._solve(np.asarray(target.position, dtype=np.float64), want, seed)

    def _solve(
        self, position: np.ndarray, want: np.ndarray, seed: np.ndarray
    ) -> tuple[np.ndarray, float]:
        cfg = self.config
        q = np.clip(np.asarray(seed, dtype=np.float64), self._lower, self._upper)
        lam2 = cfg.ik_damping**2
        w = cfg.rotation_weight
        position_error = math.inf
        for _ in range(cfg.ik_iterations):
            self.data.qpos[self._qpos] = q
            mujoco.mj_kinematics(self.model, self.data)
            pos = self.data.site_xpos[self._site]
            rot = self.data.site_xmat[self._site].reshape(3, 3)
            e_pos = position - pos
            e_rot = 0.5 * sum(np.cross(rot[:, i], want[:, i]) for i in range(3))
            position_error = float(np.linalg.norm(e_pos))
            if position_error < 2e-4 and float(np.linalg.norm(e_rot)) < 2e-3:
                break
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self._site)
            jac = np.vstack([self._jacp[:, self._dofs], w * self._jacr[:, self._dofs]])
            err = np.concatenate([e_pos, w * e_rot])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(6), err)
            q = np.clip(q + dq, self._lower, self._upper)
        return q, position_error

    def predict_chunk(
        self, image: np.ndarray | None, state: np.ndarray, observation_stamp: float = 0.0
    ) -> ActionChunk:
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (len(self.world.state_joint_names),) or not np.all(np.isfinite(state)):
            raise InputError(f"state must be {len(self.world.state_joint_names)} finite values")
        target = self.script(self.world)
        self.last_target = target
        current = state[: len(self.names)]
        cfg = self.config
        if cfg.max_step_m is None and cfg.max_turn_rad is None:
            arm_goal, self.last_ik_error = self.solve_ik(target, current[self._arm])
        else:
            position, want = self._step_toward(target, current[self._arm])
            arm_goal, self.last_ik_error = self._solve(position, want, current[self._arm])
        goal = current.copy()
        goal[self._arm] = arm_goal
        goal[self._gripper] = self.grip_targets(target.gripper)
        rows = np.empty((cfg.horizon, len(self.names)))
        alpha = 1.0 - math.exp(-cfg.gain * cfg.dt)
        max_step = cfg.max_joint_speed * cfg.dt
        x = current.copy()
        for i in range(cfg.horizon):
            step = alpha * (goal - x)
            fastest = float(np.max(np.abs(step[self._arm])))
            if fastest > max_step:
                step[self._arm] *= max_step / fastest
            step[self._gripper] = goal[self._gripper] - x[self._gripper]
            x = x + step
            rows[i] = x
        return ActionChunk(
            rows.astype(np.float32), cfg.dt, self.names, self.action_space, float(observation_stamp)
        )

    def _step_toward(self, target: ArmTarget, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The site pose (position, rotation) at most max_step_m / max_turn_rad from the one at
        arm joints ``q``, toward ``target``."""
        cfg = self.config
        self.data.qpos[self._qpos] = q
        mujoco.mj_kinematics(self.model, self.data)
        pos = self.data.site_xpos[self._site].copy()
        rot = self.data.site_xmat[self._site].reshape(3, 3).copy()
        position = np.asarray(target.position, dtype=np.float64)
        want = target_rotation(target.closing_yaw, target.tilt) @ self._ee_axes
        gap = position - pos
        distance = float(np.linalg.norm(gap))
        if cfg.max_step_m is not None and distance > cfg.max_step_m:
            position = pos + gap * (cfg.max_step_m / distance)
        if cfg.max_turn_rad is not None:
            turn = np.zeros(3)  # rotation vector (site frame) from rot to want
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, (rot.T @ want).flatten())
            mujoco.mju_quat2Vel(turn, quat, 1.0)
            angle = float(np.linalg.norm(turn))
            if angle > cfg.max_turn_rad:
                mujoco.mju_axisAngle2Quat(quat, turn / angle, cfg.max_turn_rad)
                step = np.zeros(9)
                mujoco.mju_quat2Mat(step, quat)
                want = rot @ step.reshape(3, 3)
        return position, want

    def grip_targets(self, gripper: float) -> np.ndarray:
        """Targets of the gripper joint (m) or of the hand's joints for ``ArmTarget.gripper``."""
        if self.hand is None:
            return np.array([gripper], dtype=np.float64)
        return self.hand.targets(gripper)
