"""XHandRetargeter: human hand keypoints (any frame) -> Robotera XHand joint angles.

Pipeline per frame: validate the 21 keypoints -> method A wrist frame (hands/joint_angles.py
``local_keypoints``: x wrist -> middle MCP, z toward the palm, left hands mirrored to right
form) -> the XHand palm frame (fingers -Z, thumb side +X, palm normal +Y) -> fingertips scaled per
finger -> vector or DexPilot objective solved within the joint limits, warm-started from and
regularised toward the previous frame -> low-pass filter -> frame-to-frame step clamp.

The fixed rotation between the two frames: human x (toward the fingers) = robot -Z, human z
(palm normal) = robot +Y, human y (pinky side) = robot -X.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.hands.joint_angles import local_keypoints
from human_video_policy.hands.keypoints import (
    FINGER_CHAINS,
    MIDDLE_MCP,
    WRIST,
    check_handedness,
    check_keypoint_sequence,
    check_keypoints,
)
from human_video_policy.resources import resource_path
from human_video_policy.retargeting.config import RetargetConfig
from human_video_policy.retargeting.optimizer import (
    DexPilotTargets,
    HandKinematics,
    solve_vectors,
    wrist_vector_targets,
)
from human_video_policy.robots.xhand import (
    FINGER_JOINTS,
    FINGERS,
    XHAND_JOINTS,
    xhand_urdf_path,
)

#: Human fingertip keypoints, thumb..pinky (MediaPipe order).
TIP_KEYPOINTS = (4, 8, 12, 16, 20)

#: Rows: robot palm-frame axes X, Y, Z written in the human wrist frame (x, y, z).
HUMAN_TO_XHAND = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])


@dataclass(frozen=True)
class RetargetResult:
    """A retargeted sequence.

    Fields:
        joints: (T, 12) rad, XHAND_JOINTS order, within the URDF limits.
        fingertip_error_m: (T, 5) thumb..pinky distance between the scaled human wrist->tip
            vector and the robot's palm->tip vector at ``joints``.
        direction_error_rad: (T, 5) angle between the human and robot wrist->tip vectors.
        step_clamped: (T,) True where the frame-to-frame step bound changed the output.
        iterations: (T,) solver iterations per frame.
        joint_names: the joint order of ``joints`` (XHAND_JOINTS).
    """

    joints: np.ndarray
    fingertip_error_m: np.ndarray
    direction_error_rad: np.ndarray
    step_clamped: np.ndarray
    iterations: np.ndarray
    joint_names: tuple[str, ...] = XHAND_JOINTS


class XHandRetargeter:
    """Stateful retargeter (warm start, filter, pinch state); see the module docstring."""

    def __init__(self, config: RetargetConfig | None = None) -> None:
        self.config = config or RetargetConfig()
        urdf = self.config.urdf_path or xhand_urdf_path()
        self.kinematics = HandKinematics(urdf)
        self.lower = self.kinematics.lower
        self.upper = self.kinematics.upper
        self.open_pose = np.clip(np.zeros(len(XHAND_JOINTS)), self.lower, self.upper)
        self._scales = np.array(self.config.finger_scales)
        if self.config.anchor == "finger_base":
            self._robot_base = self.kinematics.joint_origins([FINGER_JOINTS[f][0] for f in FINGERS])
        else:
            self._robot_base = np.zeros((len(FINGERS), 3))
        open_tips = self.kinematics.points(self.open_pose)[1:]
        self._robot_length = np.linalg.norm(open_tips - self._robot_base, axis=-1)
        self._dexpilot = DexPilotTargets(self.config.dexpilot)
        self._q_prev: np.ndarray | None = None
        self.last_step_clamped = False
        self.last_iterations = 0

    @classmethod
    def from_yaml(cls, path: str | Path) -> XHandRetargeter:
        return cls(RetargetConfig.from_yaml(path))

    @classmethod
    def default(cls) -> XHandRetargeter:
        """The project's defaults, config/retarget_xhand.yaml."""
        return cls.from_yaml(resource_path("config", "retarget_xhand.yaml"))

    @property
    def joint_names(self) -> tuple[str, ...]:
        return XHAND_JOINTS

    @property
    def finger_scales(self) -> tuple[float, ...]:
        return tuple(float(s) for s in self._scales)

    def reset(self) -> None:
        """Forget the warm start, the filter state and the DexPilot pinch state."""
        self._q_prev = None
        self._dexpilot.reset()

    # --- keypoints -> scaled fingertip targets ------------------------------------------------

    def _check_hand_size(self, kp: np.ndarray, name: str) -> None:
        palm = np.linalg.norm(kp[:, MIDDLE_MCP] - kp[:, WRIST], axis=-1)
        c = self.config
        bad = (palm < c.min_palm_length_m) | (palm > c.max_palm_length_m)
        if bad.any():
            t = int(np.argmax(bad))
            raise InputError(
                f"{name}: wrist-to-middle-MCP distance {palm[t]:.4g} at frame {t} is outside "
                f"[{c.min_palm_length_m}, {c.max_palm_length_m}] m: not a hand in metres "
                "(wrong unit or a collapsed detection)"
            )

    def palm_frame_keypoints(self, keypoints: object, handedness: str) -> np.ndarray:
        """``(T, 21, 3)`` keypoints (any frame) -> the XHand palm frame, wrist at the origin,
        unscaled. Left hands come out mirrored into right-hand form."""
        check_handedness(handedness)
        kp = check_keypoint_sequence(keypoints)
        self._check_hand_size(kp, "keypoints")
        local = local_keypoints(kp, handedness)
        return local @ HUMAN_TO_XHAND.T

    def calibrate_scales(
        self, keypoints: object, handedness: str, percentile: float = 95.0
    ) -> tuple[float, ...]:
        """Set per-finger scales from a sequence: XHand open-hand palm->tip length over the
        ``percentile`` of the human wrist->tip length (the finger at its most extended)."""
        vectors, chain = self._human_vectors(self.palm_frame_keypoints(keypoints, handedness))
        length = np.linalg.norm(vectors, axis=-1)
        if self.config.scaling == "bone_length":
            length = length / chain * self._robot_length  # what bone-length scaling gives
            human = np.percentile(length, percentile, axis=0)
            self._scales = self._robot_length / np.maximum(human, 1e-6)
        else:
            human = np.percentile(length, percentile, axis=0)
            self._scales = self._robot_length / np.maximum(human, 1e-3)
        return self.finger_scales

    def _human_vectors(self, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(T, 5, 3)`` unscaled human finger vectors (anchor -> tip, palm frame) and
        ``(T, 5)`` the summed bone lengths along each of them."""
        first = 1 if self.config.anchor == "finger_base" else 0
        chains = np.array([FINGER_CHAINS[f][first:] for f in FINGERS])  # (5, n)
        pts = local[:, chains]  # (T, 5, n, 3)
        chain = np.linalg.norm(np.diff(pts, axis=2), axis=-1).sum(-1)
        return pts[:, :, -1] - pts[:, :, 0], chain

    def fingertip_targets(self, local: np.ndarray) -> np.ndarray:
        """``(T, 5, 3)`` robot palm-frame fingertip targets from palm-frame keypoints."""
        vectors, chain = self._human_vectors(local)
        scale = self._scales[None, :]
        if self.config.scaling == "bone_length":
            scale = scale * self._robot_length / chain
        return self._robot_base + vectors * scale[..., None]

    # --- solving ------------------------------------------------------------------------------

    def _solve(self, tips: np.ndarray, q_prev: np.ndarray | None) -> np.ndarray:
        c = self.config
        targets = self._dexpilot(tips) if c.optimizer == "dexpilot" else wrist_vector_targets(tips)
        first = q_prev is None
        result = solve_vectors(
            self.kinematics,
            targets,
            q_init=self.open_pose if first else q_prev,
            q_ref=None if first else q_prev,
            huber_delta=c.huber_delta,
            smooth_weight=c.smooth_weight,
            max_iterations=c.max_iterations * (5 if first else 1),
            tolerance=c.tolerance_rad,
        )
        self.last_iterations = result.iterations
        q = result.q
        self.last_step_clamped = False
        if not first:
            q = c.low_pass_alpha * q + (1.0 - c.low_pass_alpha) * q_prev
            step = np.clip(q - q_prev, -c.max_joint_step_rad, c.max_joint_step_rad)
            self.last_step_clamped = bool(np.any(step != q - q_prev))
            q = q_prev + step
        return np.clip(q, self.lower, self.upper)

    def _check_q_prev(self, q_prev: object) -> np.ndarray:
        q = np.asarray(q_prev, dtype=np.float64)
        if q.shape != (len(XHAND_JOINTS),) or not np.isfinite(q).all():
            raise InputError(
                f"q_prev must be a finite (12,) vector in XHAND_JOINTS order, got shape {q.shape}"
            )
        return np.clip(q, self.lower, self.upper)

    def retarget_frame(
        self, keypoints: object, handedness: str, q_prev: object | None = None
    ) -> np.ndarray:
        """One frame ``(21, 3)`` -> ``(12,)`` joints (XHAND_JOINTS order) for live use.

        ``q_prev`` (e.g. the measured hand state) overrides the internal warm start; without it
        the previous call's output is used (none after :meth:`reset`)."""
        kp = check_keypoints(keypoints)
        tips = self.fingertip_targets(self.palm_frame_keypoints(kp[None], handedness))[0]
        prev = self._check_q_prev(q_prev) if q_prev is not None else self._q_prev
        q = self._solve(tips, prev)
        self._q_prev = q
        return q.copy()

    def retarget_sequence(self, keypoints: object, handedness: str) -> RetargetResult:
        """``(T, 21, 3)`` keypoints (metres, any frame) -> :class:`RetargetResult`.

        Starts from a reset state (open-hand warm start), so results do not depend on what
        was retargeted before."""
        self.reset()
        local = self.palm_frame_keypoints(keypoints, handedness)
        tips = self.fingertip_targets(local)
        T = tips.shape[0]
        joints = np.empty((T, len(XHAND_JOINTS)))
        clamped = np.zeros(T, dtype=bool)
        iterations = np.zeros(T, dtype=np.int64)
        prev: np.ndarray | None = None
        for t in range(T):
            prev = self._solve(tips[t], prev)
            joints[t] = prev
            clamped[t] = self.last_step_clamped
            iterations[t] = self.last_iterations
        self._q_prev = prev
        tip_err, dir_err = self.tip_errors(joints, tips)
        return RetargetResult(
            joints=joints,
            fingertip_error_m=tip_err,
            direction_error_rad=dir_err,
            step_clamped=clamped,
            iterations=iterations,
        )

    def tip_errors(self, joints: np.ndarray, tips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-finger distance (m) between the fingertip targets ``tips`` (T, 5, 3) and the
        robot fingertips at ``joints`` (T, 12), and angle (rad) between the human and robot
        finger vectors (anchor -> tip: finger base or wrist, see ``RetargetConfig.anchor``)."""
        robot_tips = np.stack([self.kinematics.points(q)[1:] for q in joints])
        dist = np.linalg.norm(robot_tips - tips, axis=-1)
        robot = robot_tips - self._robot_base
        tips = tips - self._robot_base
        cos = np.sum(robot * tips, axis=-1) / np.maximum(
            np.linalg.norm(robot, axis=-1) * np.linalg.norm(tips, axis=-1), 1e-12
        )
        return dist, np.arccos(np.clip(cos, -1.0, 1.0))
