"""Vector and DexPilot retargeting objectives and their bounded Gauss-Newton solver.

Both objectives are ``(1/V) sum_i w_i smoothL1(||v_i(q) - t_i||) + beta ||q - q_prev||^2`` over V
keypoint vectors (AnyTeleop's vector loss; VITRA A.5.2 eq. I): ``v_i(q) = p_task(q) - p_origin(q)``
are robot vectors between the palm origin and the fingertips, ``t_i`` the scaled human vectors.
The solver is a projected Gauss-Newton with smooth-L1 reweighting (IRLS): each iteration computes
the fingertip positions and their analytic Jacobians from one pinocchio pass
(``computeJointJacobians``), solves the 12x12 normal equations on the joints not pinned at a
bound, clips to the joint limits and backtracks if the cost rose. Warm-started from the previous
frame it converges in a few iterations, with no autodiff and no generic NLP solver.

Joint vectors here are always in XHAND_JOINTS order; the pinocchio order is internal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin

from human_video_policy.errors import ConfigError
from human_video_policy.retargeting.config import DexPilotConfig
from human_video_policy.robots.xhand import FINGERS, FINGERTIP_FRAMES, PALM_FRAME, XHAND_JOINTS

#: Point 0 is the palm origin (wrist flange), points 1..5 the fingertips, thumb..pinky.
NUM_POINTS = 1 + len(FINGERS)


class HandKinematics:
    """Palm-frame fingertip positions and Jacobians of a fixed-base hand, by joint name.

    Model/Data split as in pinocchio: the model is built once, one Data is reused, so a call
    allocates only its outputs. Not thread-safe: one instance per thread.
    """

    def __init__(
        self,
        urdf_path: str | Path,
        joints: Sequence[str] = XHAND_JOINTS,
        palm_frame: str = PALM_FRAME,
        tip_frames: Sequence[str] = tuple(FINGERTIP_FRAMES[f] for f in FINGERS),
    ) -> None:
        try:
            self.model = pin.buildModelFromUrdf(str(urdf_path))
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"pinocchio cannot load the hand URDF {urdf_path}: {exc}") from exc
        self.data = self.model.createData()
        self.joints = tuple(joints)
        names = list(self.model.names)
        missing = [j for j in self.joints if j not in names]
        if missing:
            raise ConfigError(f"joints {missing} are not in {urdf_path}; it has {names[1:]}")
        ids = [names.index(j) for j in self.joints]
        if any(self.model.joints[i].nq != 1 for i in ids):
            raise ConfigError("retargeting supports 1-DoF (revolute/prismatic) joints only")
        if self.model.nq != len(self.joints):
            raise ConfigError(
                f"the model has {self.model.nq} coordinates but {len(self.joints)} joints were "
                "named: every actuated joint must be retargeted"
            )
        self.idx_q = np.array([self.model.joints[i].idx_q for i in ids], dtype=np.intp)
        self.idx_v = np.array([self.model.joints[i].idx_v for i in ids], dtype=np.intp)
        for frame in (palm_frame, *tip_frames):
            if not self.model.existFrame(frame):
                raise ConfigError(f"frame {frame!r} is not in {urdf_path}")
        palm_id = self.model.getFrameId(palm_frame)
        if self.model.frames[palm_id].parentJoint != 0:
            raise ConfigError(f"palm frame {palm_frame!r} must be fixed to the model root")
        self._palm_inv = self.model.frames[palm_id].placement.inverse()
        self._tip_ids = [self.model.getFrameId(f) for f in tip_frames]
        self._joint_ids = dict(zip(self.joints, ids, strict=True))
        self.lower = self.model.lowerPositionLimit[self.idx_q].copy()
        self.upper = self.model.upperPositionLimit[self.idx_q].copy()
        self._q = pin.neutral(self.model)
        self._R = self._palm_inv.rotation
        self._p = self._palm_inv.translation

    @property
    def dof(self) -> int:
        return len(self.joints)

    def points(self, q: np.ndarray) -> np.ndarray:
        """``(6, 3)`` palm origin (zeros) + fingertip positions in the palm frame (m)."""
        self._q[self.idx_q] = q
        pin.forwardKinematics(self.model, self.data, self._q)
        out = np.zeros((NUM_POINTS, 3))
        for k, fid in enumerate(self._tip_ids, start=1):
            out[k] = self._R @ pin.updateFramePlacement(self.model, self.data, fid).translation
            out[k] += self._p
        return out

    def points_and_jacobians(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points as :meth:`points` and ``(6, 3, dof)`` position Jacobians (palm row zero)."""
        self._q[self.idx_q] = q
        pin.computeJointJacobians(self.model, self.data, self._q)
        P = np.zeros((NUM_POINTS, 3))
        J = np.zeros((NUM_POINTS, 3, self.dof))
        for k, fid in enumerate(self._tip_ids, start=1):
            P[k] = self._R @ pin.updateFramePlacement(self.model, self.data, fid).translation
            P[k] += self._p
            Jk = pin.getFrameJacobian(self.model, self.data, fid, pin.LOCAL_WORLD_ALIGNED)
            J[k] = self._R @ Jk[:3, self.idx_v]
        return P, J

    def joint_origins(self, joints: Sequence[str]) -> np.ndarray:
        """``(n, 3)`` palm-frame positions (m) of the named joints' axes with the hand open."""
        q = pin.neutral(self.model)
        q[self.idx_q] = np.clip(0.0, self.lower, self.upper)
        pin.forwardKinematics(self.model, self.data, q)
        return np.array(
            [self._R @ self.data.oMi[self._joint_ids[j]].translation + self._p for j in joints]
        )

    def tip_lengths(self, q: np.ndarray | None = None) -> np.ndarray:
        """``(5,)`` palm-origin-to-fingertip distances (m) at ``q`` (default: all zeros, i.e.
        the open hand, clipped to the limits)."""
        if q is None:
            q = np.clip(np.zeros(self.dof), self.lower, self.upper)
        return np.linalg.norm(self.points(q)[1:], axis=-1)


@dataclass
class VectorTargets:
    """One frame's objective: V vectors ``p[task] - p[origin]`` to match ``target`` (V, 3) m
    with weights ``weight`` (V,); indices into the 6 points of :class:`HandKinematics`."""

    origin: np.ndarray
    task: np.ndarray
    target: np.ndarray
    weight: np.ndarray


def wrist_vector_targets(tips: np.ndarray) -> VectorTargets:
    """Vector retargeting: palm origin -> each of the 5 scaled human fingertips."""
    n = tips.shape[0]
    return VectorTargets(
        origin=np.zeros(n, dtype=np.intp),
        task=np.arange(1, n + 1, dtype=np.intp),
        target=np.asarray(tips, dtype=np.float64),
        weight=np.ones(n),
    )


#: Inter-fingertip pairs (a, b), vector tip_a - tip_b, thumb pairs first (as DexPilot).
FINGER_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (a, b) for a in range(1, NUM_POINTS) for b in range(a + 1, NUM_POINTS)
)
_THUMB_PAIRS = [k for k, (a, _) in enumerate(FINGER_PAIRS) if a == 1]
_OTHER_PAIRS = [k for k, (a, _) in enumerate(FINGER_PAIRS) if a != 1]


class DexPilotTargets:
    """DexPilot's 15 vectors with pinch switching, stateful for its hysteresis.

    A thumb-finger pair whose (scaled) human distance falls below ``project_dist`` becomes a
    pinch and stays one until the distance exceeds ``escape_dist``; a pinch vector is pulled to
    length ``eta1`` with a high weight. Two fingers that both pinch the thumb and are closer than
    ``project_dist`` keep ``eta2`` apart. :meth:`reset` forgets the pinch state.
    """

    def __init__(self, config: DexPilotConfig) -> None:
        self.config = config
        self.pinching = np.zeros(len(_THUMB_PAIRS), dtype=bool)
        self._origin = np.array(
            [b for _, b in FINGER_PAIRS] + [0] * (NUM_POINTS - 1), dtype=np.intp
        )
        self._task = np.array(
            [a for a, _ in FINGER_PAIRS] + list(range(1, NUM_POINTS)), dtype=np.intp
        )

    def reset(self) -> None:
        self.pinching[:] = False

    def __call__(self, tips: np.ndarray) -> VectorTargets:
        c = self.config
        pts = np.vstack([np.zeros(3), tips])
        pair = pts[self._task[: len(FINGER_PAIRS)]] - pts[self._origin[: len(FINGER_PAIRS)]]
        dist = np.linalg.norm(pair, axis=-1)
        d_thumb = dist[_THUMB_PAIRS]
        self.pinching[d_thumb < c.project_dist] = True
        self.pinching[d_thumb > c.escape_dist] = False
        projected = np.zeros(len(FINGER_PAIRS), dtype=bool)
        projected[_THUMB_PAIRS] = self.pinching
        for k in _OTHER_PAIRS:
            a, b = FINGER_PAIRS[k]
            both = self.pinching[a - 2] and self.pinching[b - 2]
            projected[k] = both and dist[k] <= c.project_dist
        eta = np.where(np.isin(np.arange(len(FINGER_PAIRS)), _THUMB_PAIRS), c.eta1, c.eta2)
        high = np.where(
            np.isin(np.arange(len(FINGER_PAIRS)), _THUMB_PAIRS),
            c.pinch_weight,
            c.finger_pair_weight,
        )
        unit = pair / np.maximum(dist, 1e-9)[:, None]
        pair_target = np.where(projected[:, None], unit * eta[:, None], pair)
        weight = np.concatenate([np.where(projected, high, 1.0), np.full(5, c.wrist_weight)])
        return VectorTargets(
            origin=self._origin,
            task=self._task,
            target=np.vstack([pair_target, tips]),
            weight=weight,
        )


@dataclass
class SolveResult:
    """Solver output: joints (XHAND order, within limits), final cost, iterations used."""

    q: np.ndarray
    cost: float
    iterations: int


def _huber(n: np.ndarray, delta: float) -> np.ndarray:
    """Smooth L1 (Huber divided by delta, as torch's SmoothL1Loss): n^2 / (2 delta) below
    delta, n - delta / 2 above, so the loss is in metres and ``smooth_weight`` keeps its scale
    when ``huber_delta`` changes."""
    return np.where(n <= delta, 0.5 * n * n / delta, n - 0.5 * delta)


def solve_vectors(
    kin: HandKinematics,
    targets: VectorTargets,
    q_init: np.ndarray,
    q_ref: np.ndarray | None,
    huber_delta: float,
    smooth_weight: float,
    max_iterations: int,
    tolerance: float,
) -> SolveResult:
    """Minimise the weighted Huber vector loss (+ smoothness toward ``q_ref``) within limits."""
    lo, hi = kin.lower, kin.upper
    beta = smooth_weight if q_ref is not None else 0.0
    ref = q_ref if q_ref is not None else q_init
    w_all = targets.weight / len(targets.weight)
    eye = np.eye(kin.dof)

    def cost_of(q: np.ndarray, P: np.ndarray) -> float:
        e = P[targets.task] - P[targets.origin] - targets.target
        n = np.linalg.norm(e, axis=-1)
        d = q - ref
        return float(w_all @ _huber(n, huber_delta) + beta * (d @ d))

    q = np.clip(np.asarray(q_init, dtype=np.float64), lo, hi)
    P, J = kin.points_and_jacobians(q)
    cost = cost_of(q, P)
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (reported after the loop)
        e = P[targets.task] - P[targets.origin] - targets.target
        n = np.linalg.norm(e, axis=-1)
        w = w_all / np.maximum(n, huber_delta)  # IRLS weight of the smooth L1 loss
        Jv = J[targets.task] - J[targets.origin]  # (V, 3, dof)
        Jw = Jv * w[:, None, None]
        H = np.einsum("vki,vkj->ij", Jw, Jv) + 2.0 * beta * eye
        g = np.einsum("vki,vk->i", Jw, e) + 2.0 * beta * (q - ref)
        free = ~(((q <= lo + 1e-9) & (g > 0)) | ((q >= hi - 1e-9) & (g < 0)))
        if not free.any():
            break
        Hf = H[np.ix_(free, free)] + 1e-6 * np.eye(int(free.sum()))
        step = np.zeros(kin.dof)
        step[free] = -np.linalg.solve(Hf, g[free])
        alpha, accepted = 1.0, False
        for _ in range(6):
            q_new = np.clip(q + alpha * step, lo, hi)
            P_new, J_new = kin.points_and_jacobians(q_new)
            cost_new = cost_of(q_new, P_new)
            if cost_new <= cost:
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            break
        moved = float(np.max(np.abs(q_new - q)))
        q, P, J, cost = q_new, P_new, J_new, cost_new
        if moved < tolerance:
            break
    return SolveResult(q=q, cost=cost, iterations=iterations)
