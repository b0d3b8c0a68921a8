"""Inverse kinematics on pinocchio: damped least squares (Levenberg-Marquardt) to a 4x4 pose.

The solver is built once from a URDF, the joints it may move and an end-effector frame: the
pinocchio Model is reduced to those joints (the others are locked at their neutral value, mimic
joints follow their source) and one Data is reused, so a solve allocates little beyond its
result. Each iteration computes the frame pose and its LOCAL_WORLD_ALIGNED Jacobian, takes the
error ``[p_target - p; log3(R_target R^T)]`` (metres, radians, expressed in base-frame axes),
solves ``(J J^T + lambda I) y = e``, ``dq = J^T y`` with ``lambda`` growing with the squared
error (robust far away, Gauss-Newton close in), limits the step and clips to the joint limits.

The warm start (``q_seed``) is tried first; if it does not converge, a few random restarts drawn
uniformly within the limits (seeded RNG, so a solve is reproducible) are tried. A ``q`` that is
not within tolerance is never reported as a success. Optionally a solution that moves any joint
farther from ``q_seed`` than its velocity limit allows in ``jump_dt_s`` is refused (no wild jump).

One instance is not thread-safe (one Data, one RNG): give each thread its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pinocchio as pin

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.kinematics.forward import ForwardKinematics
from human_video_policy.robots.joint_limits import JointLimits, read_urdf_joint_limits
from human_video_policy.validation import (
    check_int_range,
    check_non_negative,
    check_positive,
)

ORTHONORMAL_TOL = 1e-6
WRAP_TOL = 1e-4  # rad: a joint with range >= 2 pi - WRAP_TOL wraps instead of clipping


@dataclass(frozen=True)
class IkConfig:
    """Settings of :class:`IkSolver`; validated on construction (``ConfigError`` names the field).

    Attributes:
        position_tolerance_m: success needs the end-effector position within this (m).
        rotation_tolerance_rad: success needs the orientation error angle within this (rad);
            ignored when ``position_only``.
        max_iterations: iterations per attempt (warm start and each restart).
        damping: base Levenberg-Marquardt damping added to ``J J^T`` (m^2 / rad^2 units); the
            effective damping is ``damping + error_damping * |e|^2``.
        error_damping: weight of the squared error in the damping (Sugihara-style LM): large
            steps are damped far from the target, Gauss-Newton is recovered near it.
        max_step_rad: largest change of any joint in one iteration (the step is scaled down).
        random_restarts: extra attempts from random configurations within the limits when the
            warm start does not converge (0 disables restarts).
        seed: seed of the restart RNG (same inputs -> same result).
        position_only: match only the position (3 DoF), e.g. for a 5-DoF arm or when the
            orientation is free; the WidowX 250s has 6 arm DoF so full poses are the default.
        jump_dt_s: "no wild jump" horizon: a solution moving any joint farther from ``q_seed``
            than ``max_velocity * jump_dt_s`` is refused. ``None`` disables the check.
        stall_tolerance: an attempt stops early when the error norm improves by less than this
            fraction over 10 iterations (stuck at a limit or a local minimum).
    """

    position_tolerance_m: float = 1e-3
    rotation_tolerance_rad: float = 1e-3
    max_iterations: int = 100
    damping: float = 1e-6
    error_damping: float = 1e-2
    max_step_rad: float = 0.5
    random_restarts: int = 8
    seed: int = 0
    position_only: bool = False
    jump_dt_s: float | None = 0.5
    stall_tolerance: float = 1e-3

    def __post_init__(self) -> None:
        check_positive("position_tolerance_m", self.position_tolerance_m)
        check_positive("rotation_tolerance_rad", self.rotation_tolerance_rad)
        check_int_range("max_iterations", self.max_iterations, 1)
        check_positive("damping", self.damping)
        check_non_negative("error_damping", self.error_damping)
        check_positive("max_step_rad", self.max_step_rad)
        check_int_range("random_restarts", self.random_restarts, 0)
        check_int_range("seed", self.seed, 0)
        if not isinstance(self.position_only, bool):
            raise ConfigError(f"position_only={self.position_only!r} is invalid: must be a bool")
        if self.jump_dt_s is not None:
            check_positive("jump_dt_s", self.jump_dt_s)
        check_non_negative("stall_tolerance", self.stall_tolerance)


@dataclass(frozen=True)
class IkResult:
    """Outcome of one solve. ``q`` is always within the joint limits (the best found on failure).

    ``iterations`` counts updates over all attempts; ``reason`` is ``"converged"`` on success
    and says why otherwise (e.g. ``"unreachable: best error 23.1 mm / 0.2 rad after 900
    iterations"``).
    """

    success: bool
    q: np.ndarray
    position_error_m: float
    rotation_error_rad: float
    iterations: int
    reason: str
    attempts: int = field(default=1)


def check_pose(name: str, pose: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """A validated 4x4 homogeneous transform (finite, orthonormal right-handed rotation)."""
    try:
        T = np.asarray(pose, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} is not numeric: {exc}") from exc
    if T.shape != (4, 4):
        raise InputError(f"{name} has shape {T.shape}, expected (4, 4)")
    if not np.isfinite(T).all():
        raise InputError(f"{name} is not finite: {T.tolist()}")
    if not np.allclose(T[3], (0.0, 0.0, 0.0, 1.0), atol=ORTHONORMAL_TOL):
        raise InputError(f"{name} last row is {T[3].tolist()}, expected [0, 0, 0, 1]")
    R = T[:3, :3]
    deviation = float(np.abs(R.T @ R - np.eye(3)).max())
    if deviation > ORTHONORMAL_TOL:
        raise InputError(
            f"{name} rotation is not orthonormal (|R^T R - I| max {deviation:.2e} > "
            f"{ORTHONORMAL_TOL:g})"
        )
    if np.linalg.det(R) < 0.0:
        raise InputError(f"{name} rotation is a reflection (det {np.linalg.det(R):.3f})")
    return T


def camera_pose_to_base(T_base_camera: np.ndarray, T_camera_target: np.ndarray) -> np.ndarray:
    """Target pose in the base frame from a camera-frame pose: ``T_base_camera @ T_camera_target``.

    Both are validated (finite, 4x4, orthonormal rotation); ``InputError`` otherwise.
    """
    return check_pose("T_base_camera", T_base_camera) @ check_pose(
        "T_camera_target", T_camera_target
    )


class IkSolver:
    """Damped least-squares IK of one end-effector frame over a fixed list of joints."""

    def __init__(
        self,
        fk: ForwardKinematics,
        joints: Sequence[str],
        ee_frame: str,
        limits: JointLimits,
        config: IkConfig | None = None,
    ) -> None:
        self.config = config if config is not None else IkConfig()
        self.joints: tuple[str, ...] = tuple(joints)
        full = fk.model
        names = [full.names[i] for i in range(1, full.njoints)]
        for name in self.joints:
            if name not in names:
                raise ConfigError(f"IK joint {name!r} is not in the model; joints: {names}")
            joint = full.joints[full.getJointId(name)]
            if joint.nq != 1 or joint.nv != 1:
                raise ConfigError(f"IK joint {name!r} must be a 1-DoF revolute/prismatic joint")
        if len(set(self.joints)) != len(self.joints):
            raise ConfigError(f"IK joints repeat a name: {self.joints}")
        missing = [n for n in self.joints if n not in limits.names]
        if missing:
            raise ConfigError(f"joint limits missing for IK joints {missing}")
        fk.frame_id(ee_frame)  # ConfigError naming the frames when unknown
        self.ee_frame = ee_frame

        # Lock every other joint at its reference value (mimics coupled by ForwardKinematics).
        reference = fk.configuration({})
        locked = [full.getJointId(n) for n in names if n not in self.joints]
        self.model = pin.buildReducedModel(full, locked, reference)
        self.data = self.model.createData()
        self._frame_id = self.model.getFrameId(ee_frame)
        # Reduced-model q index of each IK joint (the reduced model keeps tree order).
        self._q_index = np.array(
            [self.model.joints[self.model.getJointId(n)].idx_q for n in self.joints], np.intp
        )
        self._v_index = np.array(
            [self.model.joints[self.model.getJointId(n)].idx_v for n in self.joints], np.intp
        )
        order = [limits.names.index(n) for n in self.joints]
        self.lower = np.array(limits.lower[order])
        self.upper = np.array(limits.upper[order])
        self.max_velocity = np.array(limits.max_velocity[order])
        # Joints whose range is (nearly) a full turn, like the WidowX waist and wrist rolls
        # (+-3.14158): a step past one end is the same angle just inside the other end.
        self._wraps = (self.upper - self.lower) >= 2.0 * math.pi - WRAP_TOL
        self._q_full = pin.neutral(self.model)
        self._rng = np.random.default_rng(self.config.seed)

    @classmethod
    def from_urdf(
        cls,
        urdf_path: str | Path,
        joints: Sequence[str],
        ee_frame: str,
        config: IkConfig | None = None,
        limits: JointLimits | None = None,
    ) -> IkSolver:
        """Build from a URDF file; limits default to the URDF's ``<limit>`` tags."""
        fk = ForwardKinematics.from_urdf(urdf_path)
        if limits is None:
            limits = read_urdf_joint_limits(urdf_path, joints)
        return cls(fk, joints, ee_frame, limits, config)

    @classmethod
    def for_widowx(cls, config: IkConfig | None = None) -> IkSolver:
        """IK of the WidowX 250s tool centre point (EE_FRAME) over its 6 arm joints."""
        from human_video_policy.robots.widowx import (
            EE_FRAME,
            WIDOWX_ARM_JOINTS,
            widowx_joint_limits,
            widowx_urdf_path,
        )

        return cls.from_urdf(
            widowx_urdf_path(), WIDOWX_ARM_JOINTS, EE_FRAME, config, widowx_joint_limits()
        )

    # -- kinematics ---------------------------------------------------------------------------

    def _set_q(self, q: np.ndarray) -> np.ndarray:
        self._q_full[self._q_index] = q
        return self._q_full

    def forward(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        """4x4 pose of the end-effector frame in the base frame for ``q`` (IK joint order)."""
        q = self._check_q("q", q)
        pin.framesForwardKinematics(self.model, self.data, self._set_q(q))
        return self.data.oMf[self._frame_id].homogeneous.copy()

    def _error(self, q: np.ndarray, target: pin.SE3) -> np.ndarray:
        pin.framesForwardKinematics(self.model, self.data, self._set_q(q))
        current = self.data.oMf[self._frame_id]
        err = np.empty(6)
        err[:3] = target.translation - current.translation
        err[3:] = pin.log3(target.rotation @ current.rotation.T)
        return err

    def _jacobian(self, q: np.ndarray) -> np.ndarray:
        # framesForwardKinematics in _error already ran on this q; computeJointJacobians fills
        # data.J, getFrameJacobian reads it.
        pin.computeJointJacobians(self.model, self.data, self._q_full)
        J = pin.getFrameJacobian(
            self.model, self.data, self._frame_id, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED
        )
        return J[:, self._v_index]

    # -- solve --------------------------------------------------------------------------------

    def _check_q(self, name: str, q: Sequence[float] | np.ndarray) -> np.ndarray:
        vector = np.asarray(q, dtype=np.float64)
        if vector.shape != (len(self.joints),):
            raise InputError(
                f"{name} has shape {vector.shape}, expected ({len(self.joints)},) in the order "
                f"{self.joints}"
            )
        if not np.isfinite(vector).all():
            raise InputError(f"{name} is not finite: {vector.tolist()}")
        return vector

    def _converged(self, err: np.ndarray) -> bool:
        cfg = self.config
        if float(np.linalg.norm(err[:3])) > cfg.position_tolerance_m:
            return False
        return cfg.position_only or float(np.linalg.norm(err[3:])) <= cfg.rotation_tolerance_rad

    def _attempt(self, q0: np.ndarray, target: pin.SE3) -> tuple[np.ndarray, np.ndarray, int]:
        """One LM descent from q0: (q, error, iterations)."""
        cfg = self.config
        rows = slice(0, 3) if cfg.position_only else slice(0, 6)
        q = self._limit(q0)
        err = self._error(q, target)
        history = [float(np.linalg.norm(err[rows]))]
        for it in range(cfg.max_iterations):
            if self._converged(err):
                return q, err, it
            e = err[rows]
            J = self._jacobian(q)[rows]
            lam = cfg.damping + cfg.error_damping * float(e @ e)
            damp = lam * np.eye(J.shape[0])
            dq = J.T @ np.linalg.solve(J @ J.T + damp, e)
            # Joints pinned at a limit and pushed into it leave the step (active set), so the
            # others still make progress instead of the clip cancelling the whole direction.
            blocked = ~self._wraps & (
                ((q <= self.lower) & (dq < 0.0)) | ((q >= self.upper) & (dq > 0.0))
            )
            if blocked.any():
                Jf = J * ~blocked
                dq = Jf.T @ np.linalg.solve(Jf @ Jf.T + damp, e)
            largest = float(np.abs(dq).max())
            if largest > cfg.max_step_rad:
                dq *= cfg.max_step_rad / largest
            q = self._limit(q + dq)
            err = self._error(q, target)
            history.append(float(np.linalg.norm(err[rows])))
            if it >= 10 and history[-1] > (1.0 - cfg.stall_tolerance) * history[-11]:
                return q, err, it + 1  # stalled: no 0.1 % progress in 10 iterations
        return q, err, cfg.max_iterations

    def _limit(self, q: np.ndarray) -> np.ndarray:
        """q within the limits: joints with a full turn of range wrap, the others clip."""
        if self._wraps.any():
            span = 2.0 * math.pi
            wrapped = self.lower + np.mod(q - self.lower, span)
            q = np.where(self._wraps, wrapped, q)
        return np.clip(q, self.lower, self.upper)

    def _jump_violation(self, q: np.ndarray, q_seed: np.ndarray) -> str | None:
        if self.config.jump_dt_s is None:
            return None
        allowed = self.max_velocity * self.config.jump_dt_s
        step = np.abs(q - q_seed)
        over = np.flatnonzero(step > allowed)
        if over.size == 0:
            return None
        k = int(over[np.argmax(step[over] - allowed[over])])
        return (
            f"wild jump: joint {self.joints[k]!r} would move {step[k]:.3f} from the seed, more "
            f"than {allowed[k]:.3f} allowed (velocity limit {self.max_velocity[k]:.3f}/s x "
            f"{self.config.jump_dt_s} s)"
        )

    def solve(
        self,
        target_pose: np.ndarray,
        q_seed: Sequence[float] | np.ndarray,
        *,
        check_jump: bool = True,
    ) -> IkResult:
        """Joint values (IK joint order) putting the end-effector frame at ``target_pose``.

        ``target_pose``: 4x4 transform in the base (model root) frame. ``q_seed``: warm start,
        e.g. the current joint state (clipped into the limits). ``check_jump=False`` skips the
        no-wild-jump check for this call (e.g. planning from a far-away seed).
        Raises ``InputError`` on a malformed target or seed; an unreachable target is a
        result with ``success=False`` and a ``reason``.
        """
        T = check_pose("target_pose", target_pose)
        seed = self._check_q("q_seed", q_seed)
        target = pin.SE3(T[:3, :3].copy(), T[:3, 3].copy())
        cfg = self.config
        jump = check_jump and cfg.jump_dt_s is not None

        best_q, best_err, best_cost = None, None, math.inf
        jump_reason = None
        iterations = 0
        attempts = 0
        for attempt in range(1 + cfg.random_restarts):
            start = seed if attempt == 0 else self._rng.uniform(self.lower, self.upper)
            q, err, its = self._attempt(start, target)
            iterations += its
            attempts += 1
            if self._converged(err):
                violation = self._jump_violation(q, seed) if jump else None
                if violation is None:
                    return self._result(True, q, err, iterations, "converged", attempts)
                if jump_reason is None:  # keep the first converged q as the one reported
                    jump_reason = violation
                    best_q, best_err, best_cost = q, err, 0.0
                continue
            cost = self._cost(err)
            if cost < best_cost:
                best_q, best_err, best_cost = q, err, cost
        assert best_q is not None and best_err is not None
        if jump_reason is not None:
            reason = jump_reason
        else:
            pos_mm = 1e3 * float(np.linalg.norm(best_err[:3]))
            rot = float(np.linalg.norm(best_err[3:]))
            what = f"{pos_mm:.1f} mm" if cfg.position_only else f"{pos_mm:.1f} mm / {rot:.3f} rad"
            reason = (
                f"unreachable: best error {what} after {iterations} iterations "
                f"({attempts} attempts; tolerance {1e3 * cfg.position_tolerance_m:g} mm"
                + ("" if cfg.position_only else f" / {cfg.rotation_tolerance_rad:g} rad")
                + ")"
            )
        return self._result(False, best_q, best_err, iterations, reason, attempts)

    def _cost(self, err: np.ndarray) -> float:
        if self.config.position_only:
            return float(np.linalg.norm(err[:3]))
        return float(np.linalg.norm(err))

    @staticmethod
    def _result(
        success: bool, q: np.ndarray, err: np.ndarray, iterations: int, reason: str, attempts: int
    ) -> IkResult:
        q = q.copy()
        q.setflags(write=False)
        return IkResult(
            success=success,
            q=q,
            position_error_m=float(np.linalg.norm(err[:3])),
            rotation_error_rad=float(np.linalg.norm(err[3:])),
            iterations=iterations,
            reason=reason,
            attempts=attempts,
        )
