"""Inverse kinematics on pinocchio: damped least squares (Levenberg-Marquardt) to a 4x4 pose.

The solver is built once from a URDF, the joints it may move and an end-effector frame: the
pinocchio Model is reduced to those joints (the others are locked at their neutral value, mimic
joints follow their source) and one Data is reused, so a solve allocates little beyond its
result. Each iteration computes the frame pose and its LOCAL_WORLD_ALIGNED Jacobian, takes the
error ``[p_target - p; log3(R_target R^T)]`` (metres, radians, expressed in base-frame axes),
solves ``(J J^T + lambda I) y = e``, ``dq = J^T y`` with ``lambda`` growing with the squared
error (robust far away, Gauss-Newton close in), limits the step and clips to the joint limits.
For a redundant arm (more joints than task rows, e.g. the 7-DoF RM75 on a 6-D pose) an optional
secondary task in the null space of the damped Jacobian pulls the joints toward a rest posture,
``dq += (I - J^+ J) k (q_rest - q)`` with ``J^+ = J^T (J J^T + lambda I)^-1``, while the error
is large (see ``IkConfig.nullspace_min_error``). ``IkSolver.for_rm75`` pulls toward the home
pose: without an anchor the redundant DoF drifts when the arm tracks a moving target (the same EE
poses, an ever-different elbow; measured in benchmarks/README.md).

The warm start (``q_seed``) is tried first; if it does not converge, a few random restarts drawn
uniformly within the limits (seeded RNG, so a solve is reproducible) are tried. A ``q`` that is
not within tolerance is never reported as a success. Joints whose range spans a full turn wrap
instead of clipping, and a solution is reported with each such joint at the equivalent angle
nearest the seed (the RM75's joint7 has +-6.28 rad: two turns). Optionally a solution that
moves any joint farther from ``q_seed`` than its velocity limit allows in ``jump_dt_s`` is
refused (no wild jump).

``solve_position_first`` is for streaming teleoperation: when the whole pose is out of reach
it reaches the position and brings the orientation as close as the joint limits allow (flagged
``orientation_relaxed`` in the result, the caller bounds the error).

One instance is not thread-safe (one Data, one RNG): give each thread its own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pinocchio as pin
from scipy.linalg import lapack

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.kinematics.forward import ForwardKinematics
from human_video_policy.robots.joint_limits import JointLimits, read_urdf_joint_limits
from human_video_policy.robots.rm75 import HandMount, rm75_xhand_urdf_xml
from human_video_policy.robots.spec import get_robot
from human_video_policy.validation import (
    check_int_range,
    check_non_negative,
    check_positive,
    check_range,
)

ORTHONORMAL_TOL = 1e-6
_TURN = 2.0 * math.pi
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
        nullspace_gain: gain k (1/iteration, 0..1) of the pull toward the rest posture in the
            null space of the Jacobian; 0 disables it (a 6-DoF arm has no null space to use).
        nullspace_min_error: the pull acts only in iterations whose error norm
            ``|[dp (m); rotation (rad)]|`` is above this, so the last iterations are plain
            damped Gauss-Newton and converge in a few steps (the damped pseudo-inverse leaks a
            little of the pull into the task). Tracking a moving target still gets the pull in
            the first iteration of each solve, which is what keeps the arm's self-motion bounded.
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
    nullspace_gain: float = 0.0
    nullspace_min_error: float = 0.01

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
        check_range("nullspace_gain", self.nullspace_gain, 0.0, 1.0)
        check_non_negative("nullspace_min_error", self.nullspace_min_error)


# The RM75 (7 DoF) on 6-D poses: a null-space pull toward the rest posture (IkSolver.for_rm75:
# the home pose) keeps the redundant DoF from drifting while the arm tracks a moving target;
# steps of up to 1 rad cut the iterations from home by a fifth (9.6 -> 7.6 on 1,000 targets,
# success unchanged; the no-wild-jump check still guards what is commanded).
RM75_IK_CONFIG = IkConfig(max_step_rad=1.0, nullspace_gain=0.1, nullspace_min_error=0.01)


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
    #: True for a :meth:`IkSolver.solve_position_first` result that reached the position but
    #: not the orientation (``rotation_error_rad`` says how far off it is).
    orientation_relaxed: bool = field(default=False)


_LAST_ROW = np.array([0.0, 0.0, 0.0, 1.0])
_EYE3 = np.eye(3)


def _solve_spd(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x with A x = b for a symmetric positive definite A (Cholesky; LAPACK dposv directly,
    which costs a third of np.linalg.solve on these 6x6 systems); falls back to LU."""
    _, x, info = lapack.dposv(A, b)
    return x if info == 0 else np.linalg.solve(A, b)


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
    if float(np.abs(T[3] - _LAST_ROW).max()) > ORTHONORMAL_TOL:
        raise InputError(f"{name} last row is {T[3].tolist()}, expected [0, 0, 0, 1]")
    R = T[:3, :3]
    deviation = float(np.abs(R.T @ R - _EYE3).max())
    if deviation > ORTHONORMAL_TOL:
        raise InputError(
            f"{name} rotation is not orthonormal (|R^T R - I| max {deviation:.2e} > "
            f"{ORTHONORMAL_TOL:g})"
        )
    if np.linalg.det(R) < 0.0:
        raise InputError(f"{name} rotation is a reflection (det {np.linalg.det(R):.3f})")
    return T


QUATERNION_NORM_TOL = 1e-3


def pose_from_position_quaternion(
    position: Sequence[float] | np.ndarray, quaternion_xyzw: Sequence[float] | np.ndarray
) -> np.ndarray:
    """4x4 pose from a position (m) and a unit quaternion (x, y, z, w), as in a ROS Pose.

    A quaternion whose norm is off 1 by more than QUATERNION_NORM_TOL (e.g. all zeros, the
    default of an unset message) is an ``InputError``, not silently normalised: it means the
    sender did not fill it in.
    """
    p = np.asarray(position, dtype=np.float64).ravel()
    quat = np.asarray(quaternion_xyzw, dtype=np.float64).ravel()
    if p.shape != (3,) or quat.shape != (4,):
        raise InputError(
            f"pose needs 3 position and 4 quaternion values, got {p.size}, {quat.size}"
        )
    if not (np.isfinite(p).all() and np.isfinite(quat).all()):
        raise InputError(f"pose is not finite: position {p.tolist()}, quaternion {quat.tolist()}")
    norm = float(np.linalg.norm(quat))
    if abs(norm - 1.0) > QUATERNION_NORM_TOL:
        raise InputError(
            f"orientation quaternion (x, y, z, w) = {quat.tolist()} has norm {norm:.4f}, "
            f"expected 1 (+-{QUATERNION_NORM_TOL:g})"
        )
    x, y, z, w = quat / norm
    T = np.eye(4)
    T[:3, :3] = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
        (2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
        (2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)),
    )
    T[:3, 3] = p
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
        rest_posture: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        """``rest_posture`` (IK joint order): where the null-space pull goes when the config's
        ``nullspace_gain`` > 0; None = the ``q_seed`` of each solve."""
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
        # The usual case: the reduced model is exactly the IK joints in this order (no gather).
        self._all_joints = self.model.nv == len(self.joints) and bool(
            np.array_equal(self._v_index, np.arange(len(self.joints)))
        )
        order = [limits.names.index(n) for n in self.joints]
        self.lower = np.array(limits.lower[order])
        self.upper = np.array(limits.upper[order])
        self.max_velocity = np.array(limits.max_velocity[order])
        # Joints whose range is (nearly) a full turn, like the WidowX waist and wrist rolls
        # (+-3.14158): a step past one end is the same angle just inside the other end.
        self._wraps = (self.upper - self.lower) >= 2.0 * math.pi - WRAP_TOL
        self._any_wraps = bool(self._wraps.any())
        self._wrap_index: tuple[int, ...] = tuple(int(i) for i in np.flatnonzero(self._wraps))
        self._q_full = pin.neutral(self.model)
        self._rng = np.random.default_rng(self.config.seed)
        self._eye6 = np.eye(6)
        self._eye3 = np.eye(3)
        self.rest_posture: np.ndarray | None = None
        if rest_posture is not None:
            rest = self._check_q("rest_posture", rest_posture)
            if not (np.all(rest >= self.lower) and np.all(rest <= self.upper)):
                raise ConfigError(f"rest_posture {rest.tolist()} is outside the joint limits")
            self.rest_posture = rest

    @classmethod
    def from_urdf(
        cls,
        urdf_path: str | Path,
        joints: Sequence[str],
        ee_frame: str,
        config: IkConfig | None = None,
        limits: JointLimits | None = None,
        rest_posture: Sequence[float] | np.ndarray | None = None,
    ) -> IkSolver:
        """Build from a URDF file; limits default to the URDF's ``<limit>`` tags."""
        fk = ForwardKinematics.from_urdf(urdf_path)
        if limits is None:
            limits = read_urdf_joint_limits(urdf_path, joints)
        return cls(fk, joints, ee_frame, limits, config, rest_posture)

    @classmethod
    def for_widowx(cls, config: IkConfig | None = None) -> IkSolver:
        """IK of the WidowX 250s tool centre point (its spec's EE frame) over its 6 arm joints."""
        spec = get_robot("widowx")
        return cls.from_urdf(spec.urdf_path, spec.ik_joints, spec.ee_frame, config, spec.limits())

    @classmethod
    def for_rm75(
        cls,
        config: IkConfig | None = None,
        mount: HandMount | None = None,
        rest_posture: Sequence[float] | np.ndarray | None = None,
        frame: str | None = None,
    ) -> IkSolver:
        """IK of the RM75 + XHand EE point (right_hand_ee_link; or ``frame``, e.g. the hand's
        wrist flange right_hand_link) over the 7 arm joints.

        The hand joints are locked open (they do not move the EE frame, which hangs on the
        hand's root). ``config`` defaults to :data:`RM75_IK_CONFIG` (null-space pull on: the
        arm is redundant); ``mount`` to the URDF's hand mount; ``rest_posture`` (where the pull
        goes) to the home pose, which keeps the elbow repeatable while tracking a moving target
        (benchmarks/README.md: without it the redundant DoF drifts by radians over a few loops).
        """
        spec = get_robot("rm75")
        fk = ForwardKinematics.from_urdf_string(rm75_xhand_urdf_xml(mount), source="rm75_xhand")
        return cls(
            fk,
            spec.ik_joints,
            spec.ee_frame if frame is None else frame,
            spec.limits(),
            RM75_IK_CONFIG if config is None else config,
            spec.home() if rest_posture is None else rest_posture,
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

    def _error_and_jacobian(
        self, q: np.ndarray, target: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pose error ``[dp; log3(R_t R^T)]`` (6,) and the LOCAL_WORLD_ALIGNED Jacobian at q.

        ``target`` is (position (3,), rotation (3, 3)). computeJointJacobians runs forward
        kinematics too, so one pass gives both.
        """
        model, data = self.model, self.data
        pin.computeJointJacobians(model, data, self._set_q(q))
        current = pin.updateFramePlacement(model, data, self._frame_id).homogeneous
        err = np.empty(6)
        err[:3] = target[0] - current[:3, 3]
        err[3:] = pin.log3(target[1] @ current[:3, :3].T)
        J = pin.getFrameJacobian(
            model, data, self._frame_id, pin.ReferenceFrame.LOCAL_WORLD_ALIGNED
        )
        return err, (J if self._all_joints else J[:, self._v_index])

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
        p = err[:3]
        if math.sqrt(p @ p) > cfg.position_tolerance_m:
            return False
        r = err[3:]
        return cfg.position_only or math.sqrt(r @ r) <= cfg.rotation_tolerance_rad

    def _attempt(
        self,
        q0: np.ndarray,
        target: tuple[np.ndarray, np.ndarray],
        rest: np.ndarray | None,
        *,
        position_only: bool | None = None,
        wrap: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """One LM descent from q0: (q, error, iterations). The hot loop: plain floats and few
        numpy calls, as each costs about a microsecond on 6x7 arrays. ``position_only``
        overrides the config's; ``wrap=False`` clips the full-turn joints at their ends too
        (a local answer: no whole-turn jump to the other end)."""
        cfg = self.config
        position_only = cfg.position_only if position_only is None else position_only
        eye = self._eye3 if position_only else self._eye6
        gain = cfg.nullspace_gain if rest is not None else 0.0
        lower, upper = self.lower, self.upper
        pinnable = ~self._wraps if wrap else np.ones(len(lower), dtype=bool)
        pos_tol2 = cfg.position_tolerance_m**2
        rot_tol2 = math.inf if position_only else cfg.rotation_tolerance_rad**2
        damping, error_damping, max_step = cfg.damping, cfg.error_damping, cfg.max_step_rad
        pull_until2 = cfg.nullspace_min_error**2
        q = self._limit(q0)
        err, J = self._error_and_jacobian(q, target)
        history: list[float] = []
        for it in range(cfg.max_iterations + 1):
            p, r = err[:3], err[3:]
            p2 = float(p @ p)
            r2 = float(r @ r)
            if p2 <= pos_tol2 and r2 <= rot_tol2:
                return q, err, it
            e2 = p2 if position_only else p2 + r2
            history.append(e2)
            if it >= 10 and e2 > (1.0 - cfg.stall_tolerance) ** 2 * history[-11]:
                return q, err, it  # stalled: no 0.1 % progress in 10 iterations
            if it == cfg.max_iterations:
                break
            if position_only:
                e, J = p, J[:3]
            else:
                e = err
            lam = damping + error_damping * e2
            A = J @ J.T + lam * eye
            if gain > 0.0 and e2 > pull_until2:
                # Null-space pull: J^+ e + (I - J^+ J) z with J^+ = J^T A^-1, which is
                # J^T A^-1 (e - J z) + z: one solve.
                z = gain * (rest - q)
                dq = J.T @ _solve_spd(A, e - J @ z) + z
            else:
                dq = J.T @ _solve_spd(A, e)
            # Joints pinned at a limit and pushed into it leave the step (active set), so the
            # others still make progress instead of the clip cancelling the whole direction.
            if not ((q > lower) & (q < upper)).all():
                at_lower, at_upper = q <= lower, q >= upper
                blocked = pinnable & ((at_lower & (dq < 0.0)) | (at_upper & (dq > 0.0)))
                if blocked.any():
                    Jf = J * ~blocked
                    dq = Jf.T @ _solve_spd(Jf @ Jf.T + lam * eye, e)
            largest = float(np.abs(dq).max())
            if largest > max_step:
                dq *= max_step / largest
            q = self._limit(q + dq) if wrap else (q + dq).clip(lower, upper)
            err, J = self._error_and_jacobian(q, target)
        return q, err, cfg.max_iterations

    def _limit(self, q: np.ndarray) -> np.ndarray:
        """q within the limits: joints with a full turn of range wrap, the others clip.

        A wrapping joint past one end moves by whole turns to just inside the other end (the
        same angle); one within its range is left alone.
        """
        q = q.clip(self.lower, self.upper) if not self._wrap_index else q.copy()
        for i in self._wrap_index:  # plain floats: one or two joints, cheaper than numpy masks
            value, low, high = float(q[i]), float(self.lower[i]), float(self.upper[i])
            if value > high:
                value -= _TURN * math.ceil((value - high) / _TURN)
            elif value < low:
                value += _TURN * math.ceil((low - value) / _TURN)
            q[i] = value
        return q.clip(self.lower, self.upper) if self._wrap_index else q

    def _nearest_turn(self, q: np.ndarray, seed: np.ndarray) -> np.ndarray:
        """q with each wrapping joint moved by whole turns to the angle nearest the seed
        (when that angle is within the limits): the same pose, the smallest motion."""
        if not self._any_wraps:
            return q
        span = 2.0 * math.pi
        shifted = q - span * np.round((q - seed) / span)
        ok = self._wraps & (shifted >= self.lower) & (shifted <= self.upper)
        return np.where(ok, shifted, q)

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
        target = (T[:3, 3].copy(), T[:3, :3].copy())
        cfg = self.config
        jump = check_jump and cfg.jump_dt_s is not None
        rest = self.rest_posture if self.rest_posture is not None else self._limit(seed)

        best_q, best_err, best_cost = None, None, math.inf
        jump_reason = None
        iterations = 0
        attempts = 0
        for attempt in range(1 + cfg.random_restarts):
            start = seed if attempt == 0 else self._rng.uniform(self.lower, self.upper)
            q, err, its = self._attempt(start, target, rest)
            iterations += its
            attempts += 1
            if self._converged(err):
                q = self._nearest_turn(q, seed)
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

    def solve_position_first(
        self,
        target_pose: np.ndarray,
        q_seed: Sequence[float] | np.ndarray,
        *,
        rotation_weight: float = 0.02,
        check_jump: bool = True,
    ) -> IkResult:
        """Like :meth:`solve`, but when the whole pose is out of reach, the position exactly and
        the orientation as close as the joint limits let it come.

        For streaming teleoperation: a human wrist asks for orientations the arm's wrist
        cannot reach (a joint at its limit) while the position is fine; refusing those targets
        freezes the arm for seconds. From the seed only (no restarts: a continuous motion): a
        damped descent on ``|dp|^2 + w^2 |rotation|^2`` with a small ``w = rotation_weight``
        (m per rad) turns the orientation only where that costs no position, then a
        position-only descent removes the last of the position error. (A larger ``w`` trades
        position for orientation, which that last descent undoes at the orientation's cost:
        on 453 teleop targets of the hand video, median orientation error 0.157 rad at 0.02,
        0.177 at 0.1.) The result has ``success`` when the position is within tolerance (and
        no wild jump) and ``orientation_relaxed`` with ``rotation_error_rad`` saying how far off
        the orientation is; the caller decides how much is acceptable.
        """
        full = self.solve(target_pose, q_seed, check_jump=check_jump)
        if full.success:
            return full
        check_range("rotation_weight", rotation_weight, 1e-4, 1.0)
        T = check_pose("target_pose", target_pose)
        seed = self._check_q("q_seed", q_seed)
        target = (T[:3, 3].copy(), T[:3, :3].copy())
        q, its = self._weighted_descent(seed, target, rotation_weight)
        q, err, polish = self._attempt(q, target, None, position_only=True, wrap=False)
        iterations = full.iterations + its + polish
        position_m = float(np.linalg.norm(err[:3]))
        if position_m > self.config.position_tolerance_m:
            return full  # the position is out of reach too: the full solve's best, refused
        q = self._nearest_turn(q, seed)
        violation = self._jump_violation(q, seed) if check_jump else None
        if violation is not None:
            return self._result(False, q, err, iterations, violation, full.attempts + 1)
        reason = (
            f"position first: orientation {float(np.linalg.norm(err[3:])):.3f} rad from the "
            f"target ({full.reason})"
        )
        result = self._result(True, q, err, iterations, reason, full.attempts + 1)
        return dataclasses.replace(result, orientation_relaxed=True)

    def _weighted_descent(
        self, q0: np.ndarray, target: tuple[np.ndarray, np.ndarray], rotation_weight: float
    ) -> tuple[np.ndarray, int]:
        """Levenberg-Marquardt with an adaptive damping on |e_p|^2 + w^2 |e_r|^2: a step is
        kept only if it lowers that cost (the plain descent of :meth:`_attempt` may climb when
        a wrist joint sits at its limit and the orientation residual stays large)."""
        cfg = self.config
        weights = np.array([1.0, 1.0, 1.0, rotation_weight, rotation_weight, rotation_weight])
        lower, upper = self.lower, self.upper  # every joint clips here, so every one can pin
        q = q0.clip(lower, upper)
        err, J = self._error_and_jacobian(q, target)
        cost = float(np.sum((weights * err) ** 2))
        lam = 1e-3 * cost + cfg.damping
        iterations = 0
        while iterations < cfg.max_iterations and lam < 1e6:
            iterations += 1
            if self._converged(err):
                break
            e, Jw = weights * err, weights[:, None] * J
            at_lower, at_upper = q <= lower, q >= upper
            dq = Jw.T @ _solve_spd(Jw @ Jw.T + lam * self._eye6, e)
            blocked = (at_lower & (dq < 0.0)) | (at_upper & (dq > 0.0))
            if blocked.any():
                Jf = Jw * ~blocked
                dq = Jf.T @ _solve_spd(Jf @ Jf.T + lam * self._eye6, e)
            largest = float(np.abs(dq).max())
            if largest > cfg.max_step_rad:
                dq *= cfg.max_step_rad / largest
            q_new = (q + dq).clip(lower, upper)  # no wrap: a local answer, no whole turns
            err_new, J_new = self._error_and_jacobian(q_new, target)
            cost_new = float(np.sum((weights * err_new) ** 2))
            if cost_new < cost:
                improvement = (cost - cost_new) / cost
                q, err, J, cost = q_new, err_new, J_new, cost_new
                lam = max(lam / 3.0, 1e-12)
                if improvement < 1e-6:
                    break
            else:
                lam *= 5.0
        return q, iterations

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
