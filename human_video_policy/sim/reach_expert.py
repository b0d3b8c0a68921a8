"""Privileged scripted expert for the reach task (it is told where the target is).

The expert is a pure function of (measured joint state, target point), so it can relabel any
state a learned policy visits (DAgger) and is judged by the same evaluation loop:

1. IK (damped least squares on MuJoCo Jacobians, joint limits enforced, fixed seed so a target
   always maps to the same joint configuration) for a *pre-touch* point above the target's top
   and a *touch* point just above it, gripper pointing straight down, forearm_roll and
   wrist_rotate held at 0.
2. Goal: a point above the target whose height falls smoothly from the pre-touch height to the
   touch height as the end effector closes in horizontally (a funnel: full height beyond
   ``funnel_outer``, touch height inside ``funnel_inner``), solved by IK from the pre-touch
   configuration. Smooth in the state, so a network can imitate it.
3. Chunk: ``horizon`` rows ``dt`` apart moving from the measured joints toward the goal along a
   straight joint-space line: exponential approach (rate ``gain``) capped at
   ``max_joint_speed``, so the targets are smooth and velocity limited.

Output is an :class:`ActionChunk` in the ``widowx_joint_position`` action space (7 command
joints), exactly what a learned policy returns.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.policies.action_spaces import WIDOWX_JOINT_POSITION
from human_video_policy.robots.widowx import (
    HOME_POSITION,
    WIDOWX_COMMAND_JOINTS,
    WIDOWX_STATE_JOINTS,
)
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.validation import (
    check_int_range,
    check_positive,
    check_range,
)

ARM_JOINTS = WIDOWX_COMMAND_JOINTS[:6]
# Joints the IK moves; forearm_roll and wrist_rotate stay at IK_SEED's 0.
IK_JOINTS = ("waist", "shoulder", "elbow", "wrist_angle")
# Every solve starts here (the home pose), so a target always maps to the same configuration.
IK_SEED = tuple(float(v) for v in HOME_POSITION[:6])


@dataclass(frozen=True)
class ReachExpertConfig:
    """Settings of :class:`ReachExpert`.

    Attributes:
        horizon: rows per chunk.
        dt: seconds between rows.
        pre_touch_height: pre-touch point height (m) above the target's top.
        touch_height: touch point height (m) above the target's top (the fingertips reach
            ~1.6 cm below the end-effector point, so ~1 cm makes them touch the top).
        funnel_outer: horizontal end-effector-to-target distance (m) beyond which the goal is
            the pre-touch point.
        funnel_inner: horizontal distance (m) within which the goal is the touch point; in
            between the goal height is interpolated (smoothstep).
        max_joint_speed: cap (rad/s) on the fastest joint's speed along the planned line.
        gain: exponential approach rate (1/s) toward the goal configuration.
        gripper_position: left_finger target (m) held throughout (0.015 closed .. 0.037 open).
        ik_iterations: maximum damped-least-squares iterations per IK solve.
        ik_damping: damping (lambda) of the least-squares step.
        ik_tolerance: IK position tolerance (m).
    """

    horizon: int = 10
    dt: float = 0.1
    pre_touch_height: float = 0.07
    touch_height: float = 0.012
    funnel_outer: float = 0.04
    funnel_inner: float = 0.01
    max_joint_speed: float = 1.0
    gain: float = 3.0
    gripper_position: float = 0.037
    ik_iterations: int = 300
    ik_damping: float = 0.02
    ik_tolerance: float = 1e-4

    def __post_init__(self) -> None:
        check_int_range("horizon", self.horizon, 1, 1000)
        check_positive("dt", self.dt)
        check_range("pre_touch_height", self.pre_touch_height, 0.0, 0.3)
        check_range("touch_height", self.touch_height, -0.03, 0.1)
        check_positive("funnel_outer", self.funnel_outer)
        check_range("funnel_inner", self.funnel_inner, 0.0, self.funnel_outer)
        check_positive("max_joint_speed", self.max_joint_speed)
        check_positive("gain", self.gain)
        check_range("gripper_position", self.gripper_position, 0.015, 0.037)
        check_int_range("ik_iterations", self.ik_iterations, 1)
        check_positive("ik_damping", self.ik_damping)
        check_positive("ik_tolerance", self.ik_tolerance)


@dataclass(frozen=True)
class IkResult:
    """Outcome of one IK solve: arm joints (6, rad), residual position error (m), iterations."""

    q: np.ndarray
    position_error: float
    orientation_error: float
    iterations: int


class ReachExpert:
    """Scripted reach expert on its own kinematic copy of the scene.

    Args:
        scene_path: the MJCF scene (the world's ``scene_path``); its kinematics are used.
        config: expert settings.
    """

    def __init__(self, scene_path: str | Path, config: ReachExpertConfig | None = None) -> None:
        self.config = config or ReachExpertConfig()
        self.model = mujoco.MjModel.from_xml_path(str(scene_path))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._arm_qpos = np.array([m.jnt_qposadr[m.joint(n).id] for n in ARM_JOINTS])
        self._ik_cols = np.array([m.jnt_dofadr[m.joint(n).id] for n in IK_JOINTS])
        self._ik_pos = np.array([ARM_JOINTS.index(n) for n in IK_JOINTS])
        jids = [m.joint(n).id for n in ARM_JOINTS]
        self._lower = m.jnt_range[jids, 0].copy()
        self._upper = m.jnt_range[jids, 1].copy()
        self._site = m.site("ee_site").id
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._cache: OrderedDict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.names = tuple(WIDOWX_COMMAND_JOINTS)

    # -- kinematics --------------------------------------------------------------------------
    def forward(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position (3,) and rotation (3, 3) for 6 arm joint angles."""
        self.data.qpos[self._arm_qpos] = q_arm
        mujoco.mj_kinematics(self.model, self.data)
        return (
            self.data.site_xpos[self._site].copy(),
            self.data.site_xmat[self._site].reshape(3, 3).copy(),
        )

    def solve_ik(self, position: np.ndarray, seed: np.ndarray | None = None) -> IkResult:
        """Arm joints putting ee_site at ``position`` with the gripper pointing down."""
        cfg = self.config
        position = np.asarray(position, dtype=np.float64)
        q = np.array(IK_SEED if seed is None else seed, dtype=np.float64)
        down = np.array([0.0, 0.0, -1.0])
        w_rot = 0.3
        lam2 = cfg.ik_damping**2
        pos_err = rot_err = math.inf
        iterations = 0
        while iterations < cfg.ik_iterations:
            iterations += 1
            pos, rot = self.forward(q)
            e_pos = position - pos
            e_rot = np.cross(rot[:, 0], down)
            pos_err, rot_err = float(np.linalg.norm(e_pos)), float(np.linalg.norm(e_rot))
            if pos_err < cfg.ik_tolerance and rot_err < 1e-3:
                break
            mujoco.mj_comPos(self.model, self.data)
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self._site)
            jac = np.vstack([self._jacp[:, self._ik_cols], w_rot * self._jacr[:, self._ik_cols]])
            err = np.concatenate([e_pos, w_rot * e_rot])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(6), err)
            q[self._ik_pos] += dq
            q = np.clip(q, self._lower, self._upper)
        return IkResult(q, pos_err, rot_err, iterations)

    def waypoints(self, target_top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pre-touch, touch) arm configurations (6,) for a target top point (cached)."""
        target_top = np.asarray(target_top, dtype=np.float64)
        key = tuple(np.round(target_top, 6))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        cfg = self.config
        pre = self.solve_ik(target_top + np.array([0.0, 0.0, cfg.pre_touch_height]))
        touch = self.solve_ik(target_top + np.array([0.0, 0.0, cfg.touch_height]), seed=pre.q)
        for name, result in (("pre-touch", pre), ("touch", touch)):
            if result.position_error > 0.005:
                raise InputError(
                    f"target {target_top.tolist()} is out of reach: {name} IK error "
                    f"{result.position_error * 1e3:.1f} mm"
                )
        self._cache[key] = (pre.q, touch.q)
        if len(self._cache) > 256:
            self._cache.popitem(last=False)
        return pre.q, touch.q

    # -- policy ------------------------------------------------------------------------------
    def goal(self, state: np.ndarray, target_top: np.ndarray) -> tuple[np.ndarray, float]:
        """The 7-joint goal configuration for this state and its height (m) above the top."""
        state = self._check_state(state)
        cfg = self.config
        target_top = np.asarray(target_top, dtype=np.float64)
        pre, touch = self.waypoints(target_top)
        ee, _ = self.forward(state[:6])
        horizontal = float(np.linalg.norm(ee[:2] - target_top[:2]))
        span = max(cfg.funnel_outer - cfg.funnel_inner, 1e-9)
        u = min(max((horizontal - cfg.funnel_inner) / span, 0.0), 1.0)
        blend = u * u * (3.0 - 2.0 * u)  # smoothstep: 0 inside, 1 outside the funnel
        height = cfg.touch_height + blend * (cfg.pre_touch_height - cfg.touch_height)
        if blend >= 1.0:
            arm = pre
        elif blend <= 0.0:
            arm = touch
        else:
            arm = self.solve_ik(target_top + np.array([0.0, 0.0, height]), seed=pre).q
        return np.concatenate([arm, [cfg.gripper_position]]), height

    def plan(self, state: np.ndarray, target_top: np.ndarray) -> np.ndarray:
        """(horizon, 7) joint targets from the measured ``state`` (8,) toward the goal."""
        state = self._check_state(state)
        cfg = self.config
        goal, _ = self.goal(state, target_top)
        x = state[:7].astype(np.float64).copy()
        rows = np.empty((cfg.horizon, 7))
        alpha = 1.0 - math.exp(-cfg.gain * cfg.dt)
        max_step = cfg.max_joint_speed * cfg.dt
        for i in range(cfg.horizon):
            step = alpha * (goal - x)
            fastest = float(np.max(np.abs(step[:6])))
            if fastest > max_step:
                step[:6] *= max_step / fastest
            x = x + step
            rows[i] = x
        return rows.astype(np.float32)

    def chunk(
        self, state: np.ndarray, target_top: np.ndarray, observation_stamp: float = 0.0
    ) -> ActionChunk:
        """:meth:`plan` as an ActionChunk (action space ``widowx_joint_position``)."""
        return ActionChunk(
            self.plan(state, target_top),
            self.config.dt,
            self.names,
            WIDOWX_JOINT_POSITION,
            float(observation_stamp),
        )

    def _check_state(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (len(WIDOWX_STATE_JOINTS),) or not np.all(np.isfinite(state)):
            raise InputError(
                f"state must be {len(WIDOWX_STATE_JOINTS)} finite joint positions "
                f"{WIDOWX_STATE_JOINTS}, got {state!r}"
            )
        return state


class PrivilegedExpertSource:
    """Adapter giving the expert the policy interface: it reads the target from the world.

    ``predict_chunk(image, state, observation_stamp)`` ignores the image, like a policy that
    could see the target perfectly.
    """

    needs_image = False

    def __init__(self, world, expert: ReachExpert | None = None) -> None:
        self.world = world
        self.expert = expert or ReachExpert(world.scene_path)

    def predict_chunk(
        self, image: np.ndarray | None, state: np.ndarray, observation_stamp: float = 0.0
    ) -> ActionChunk:
        return self.expert.chunk(state, self.world.target_position(), observation_stamp)
