"""Scripted experts for the benchmark tasks on a gripper arm: Cartesian targets -> IK -> chunks.

A task's expert is a *script*: a function of the true world state that returns where the end
effector should go next (:class:`ArmTarget`: position, gripper direction, finger closing
direction, gripper opening) and advances through the task's phases as their conditions are met.
:class:`ScriptedArmExpert` turns each target into joint targets by damped-least-squares IK on
MuJoCo Jacobians (its own copy of the world's model, seeded at the measured joints) and plans
a chunk toward them like the reach expert: exponential approach capped at a joint speed, so the
chunks are smooth and velocity limited. Output: :class:`ActionChunk` in the robot's joint
position action space, what a learned policy returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from human_video_policy.errors import InputError
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
        gripper: finger joint target (m; the robot's gripper range).
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
    """

    horizon: int = 10
    dt: float = 0.1
    max_joint_speed: float = 1.5
    gain: float = 4.0
    ik_iterations: int = 100
    ik_damping: float = 0.02
    rotation_weight: float = 0.3

    def __post_init__(self) -> None:
        check_int_range("horizon", self.horizon, 1, 1000)
        check_positive("dt", self.dt)
        check_positive("max_joint_speed", self.max_joint_speed)
        check_positive("gain", self.gain)
        check_int_range("ik_iterations", self.ik_iterations, 1)
        check_positive("ik_damping", self.ik_damping)
        check_positive("rotation_weight", self.rotation_weight)


Script = Callable[["TaskWorld"], ArmTarget]


class ScriptedArmExpert:
    """A privileged expert: ``script(world)`` says where to go, this class says how.

    Args:
        world: the task world (read for the true state; its model is copied for IK).
        script: target of the moment; called once per chunk, may keep phase state.
        arm_joints: the joints IK moves (command joints without the gripper).
        gripper_joint: the command joint of the gripper.
        action_space: the action space name the chunks carry.
        config: expert settings.
    """

    needs_image = False

    def __init__(
        self,
        world: TaskWorld,
        script: Script,
        arm_joints: tuple[str, ...],
        gripper_joint: str,
        action_space: str,
        config: ArmExpertConfig | None = None,
    ) -> None:
        self.world = world
        self.script = script
        self.config = config or ArmExpertConfig()
        self.model = world.model
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.names = tuple(world.joint_names)
        self._arm = np.array([self.names.index(j) for j in arm_joints])
        self._gripper = self.names.index(gripper_joint)
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
        cfg = self.config
        q = np.clip(np.asarray(seed, dtype=np.float64), self._lower, self._upper)
        want = target_rotation(target.closing_yaw, target.tilt)
        lam2 = cfg.ik_damping**2
        w = cfg.rotation_weight
        position_error = math.inf
        for _ in range(cfg.ik_iterations):
            self.data.qpos[self._qpos] = q
            mujoco.mj_kinematics(self.model, self.data)
            pos = self.data.site_xpos[self._site]
            rot = self.data.site_xmat[self._site].reshape(3, 3)
            e_pos = target.position - pos
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
        arm_goal, self.last_ik_error = self.solve_ik(target, current[self._arm])
        goal = current.copy()
        goal[self._arm] = arm_goal
        goal[self._gripper] = target.gripper
        cfg = self.config
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
