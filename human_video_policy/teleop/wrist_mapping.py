"""Clutched wrist teleoperation: human wrist pose in the camera frame -> robot EE target in base.

Relative (clutched) mapping, as a surgical robot's clutch or a VR teleop rig does: the human
hand never has to be where the robot is. When the deadman engages, :meth:`WristClutch.engage`
remembers the human wrist pose ``(R_h0, p_h0)`` (camera optical frame) and the robot EE pose
``T_e0`` (base frame). Afterwards, for a wrist pose ``(R_h, p_h)``::

    d_cam   = M (p_h - p_h0)                      human translation since engage (camera axes)
    dR_cam  = M (R_h R_h0^T) M                     human rotation since engage (camera axes)
    p_raw   = p_e0 + translation_scale * R_bc d_cam
    R_raw   = exp(rotation_scale * log(R_bc dR_cam R_bc^T)) R_e0

``R_bc`` is the rotation of the camera optical frame in the base frame (the extrinsic
``T_base_camera``; its translation does not matter for deltas) and ``M`` is the identity, or
``diag(-1, 1, 1)`` with ``mirror`` (reflects across the image's vertical centre line, for a
camera that faces the operator: the robot then moves like the operator's reflection). Both
deltas are expressed in fixed axes, so "hand 10 cm to the camera's right" moves the EE 10 cm
along the camera's right axis seen from the base, whatever the wrist or EE orientation, and
the wrist frame's own convention (hands/wrist_pose.py, method A) cancels out of ``dR``.

Then, in this order: a first-order low-pass (``smoothing`` = the weight of the newest sample,
on the position and, through the rotation's log, on the orientation), a per-update step limit
relative to the previous output (``max_step_m``, ``max_step_rad``), and a clamp of the position
into the base-frame box ``workspace_min..workspace_max``. The first output after engage starts
from ``T_e0``, so engaging never moves the robot; disengaging and re-engaging re-anchors both
poses, so the robot does not jump either (the human hand may have moved in between, as with a
mouse lifted off the table).

Handedness: the core does not care which hand; the node picks the operator's hand by its
anatomical label (``handedness``) and the XHand is a right hand, so a right hand is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.rotations import (
    axis_angle_from_matrix,
    check_rotation,
    matrix_from_axis_angle,
    orthonormalize,
)
from human_video_policy.validation import check_positive, check_range

MIRROR = np.diag([-1.0, 1.0, 1.0])


def _vector3(name: str, value: object) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is invalid: must be 3 numbers") from None
    if v.shape != (3,) or not np.isfinite(v).all():
        raise ConfigError(f"{name}={value!r} is invalid: must be 3 finite numbers")
    return v


@dataclass(frozen=True)
class WristTeleopConfig:
    """How human wrist motion becomes robot EE motion (validated on construction).

    Attributes:
        R_base_camera: (3, 3) rotation of the camera optical frame (z forward, x right, y down)
            in the robot base frame: the rotation part of the camera extrinsic T_base_camera.
        translation_scale: robot metres per human metre (0.5 = the robot moves half as far;
            0 < s <= 5).
        rotation_scale: fraction of the human rotation angle applied (0 = the EE keeps its
            engage orientation, 1 = the same rotation; 0..2).
        mirror: reflect the motion across the image's vertical centre line (camera facing the
            operator, selfie view): hand to the image's right -> EE to the image's left.
        smoothing: low-pass weight of the newest sample per update, (0, 1]; 1 = no filter.
            At 15-30 Hz tracking, 0.3-0.5 removes most monocular depth jitter.
        max_step_m: largest EE target translation per update (m); 0.02 at 30 Hz = 0.6 m/s.
        max_step_rad: largest EE target rotation per update (rad).
        workspace_min: (3,) lower corner of the box (base frame, m) the target is clamped into.
        workspace_max: (3,) upper corner; every component > workspace_min's.
    """

    R_base_camera: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation_scale: float = 1.0
    rotation_scale: float = 1.0
    mirror: bool = False
    smoothing: float = 0.5
    max_step_m: float = 0.02
    max_step_rad: float = 0.1
    workspace_min: tuple[float, float, float] = (0.1, -0.5, 0.08)
    workspace_max: tuple[float, float, float] = (0.7, 0.5, 0.8)

    def __post_init__(self) -> None:
        try:
            R = check_rotation("R_base_camera", self.R_base_camera)
        except InputError as exc:
            raise ConfigError(str(exc)) from None
        R = R.copy()
        R.setflags(write=False)
        object.__setattr__(self, "R_base_camera", R)
        check_range("translation_scale", self.translation_scale, 1e-6, 5.0)
        check_range("rotation_scale", self.rotation_scale, 0.0, 2.0)
        if not isinstance(self.mirror, bool):
            raise ConfigError(f"mirror={self.mirror!r} is invalid: must be true or false")
        check_range("smoothing", self.smoothing, 1e-6, 1.0)
        check_positive("max_step_m", self.max_step_m)
        check_range("max_step_rad", self.max_step_rad, 1e-6, np.pi)
        low = _vector3("workspace_min", self.workspace_min)
        high = _vector3("workspace_max", self.workspace_max)
        if not np.all(high > low):
            raise ConfigError(
                f"workspace_max={high.tolist()} is invalid: every component must exceed "
                f"workspace_min={low.tolist()}"
            )
        object.__setattr__(self, "workspace_min", tuple(float(v) for v in low))
        object.__setattr__(self, "workspace_max", tuple(float(v) for v in high))


def _check_wrist(R: object, p: object) -> tuple[np.ndarray, np.ndarray]:
    rot = check_rotation("wrist rotation", R, tol=1e-4)
    pos = np.asarray(p, dtype=np.float64)
    if pos.shape != (3,) or not np.isfinite(pos).all():
        raise InputError(f"wrist position must be 3 finite numbers (m), got {pos.tolist()}")
    return rot, pos


def _check_pose(name: str, T: object) -> np.ndarray:
    pose = np.asarray(T, dtype=np.float64)
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise InputError(f"{name} must be a finite 4x4 transform, got shape {pose.shape}")
    check_rotation(f"{name} rotation", pose[:3, :3], tol=1e-4)
    return pose


class WristClutch:
    """The clutched wrist -> EE mapping of the module docstring; one per teleoperated arm.

    ``engage`` (deadman pressed), ``update`` per tracked frame -> 4x4 EE target in the base
    frame, ``disengage`` (deadman released or hand lost). ``update`` before ``engage`` is an
    InputError, never a guess.
    """

    def __init__(self, config: WristTeleopConfig) -> None:
        self.config = config
        self._low = np.array(config.workspace_min)
        self._high = np.array(config.workspace_max)
        self._M = MIRROR if config.mirror else np.eye(3)
        self._R_h0: np.ndarray | None = None
        self._p_h0 = np.zeros(3)
        self._T_e0 = np.eye(4)
        self._R_out = np.eye(3)
        self._p_out = np.zeros(3)
        self.engagements = 0
        self.position_clamps = 0
        self.step_limited = 0

    @property
    def engaged(self) -> bool:
        return self._R_h0 is not None

    def engage(self, R_wrist: object, p_wrist: object, T_base_ee: object) -> None:
        """Anchor: the human wrist pose now (camera frame) and the robot EE pose now (base).

        Refused (InputError) when the robot EE is outside the workspace box: the first target
        would have to jump into it.
        """
        R_h, p_h = _check_wrist(R_wrist, p_wrist)
        T_e = _check_pose("T_base_ee", T_base_ee)
        p_e = T_e[:3, 3]
        if np.any(p_e < self._low - 1e-9) or np.any(p_e > self._high + 1e-9):
            raise InputError(
                f"robot EE at {np.round(p_e, 3).tolist()} m is outside the teleop workspace "
                f"{list(self.config.workspace_min)}..{list(self.config.workspace_max)}: "
                "move the robot into it before engaging"
            )
        self._R_h0, self._p_h0, self._T_e0 = R_h, p_h.copy(), T_e.copy()
        self._R_out, self._p_out = T_e[:3, :3].copy(), p_e.copy()
        self.engagements += 1

    def disengage(self) -> None:
        """Forget the anchors; the next ``engage`` starts from wherever both are then."""
        self._R_h0 = None

    def raw_target(self, R_wrist: object, p_wrist: object) -> np.ndarray:
        """The unfiltered, unlimited, unclamped 4x4 target for this wrist pose."""
        if self._R_h0 is None:
            raise InputError("the clutch is not engaged: call engage() first")
        R_h, p_h = _check_wrist(R_wrist, p_wrist)
        cfg, M = self.config, self._M
        R_bc = cfg.R_base_camera
        d_cam = M @ (p_h - self._p_h0)
        dR_cam = M @ (R_h @ self._R_h0.T) @ M
        dR_base = R_bc @ dR_cam @ R_bc.T
        if cfg.rotation_scale != 1.0:
            dR_base = matrix_from_axis_angle(cfg.rotation_scale * axis_angle_from_matrix(dR_base))
        T = np.eye(4)
        T[:3, :3] = orthonormalize(dR_base @ self._T_e0[:3, :3])
        T[:3, 3] = self._T_e0[:3, 3] + cfg.translation_scale * (R_bc @ d_cam)
        return T

    def update(self, R_wrist: object, p_wrist: object) -> np.ndarray:
        """The next 4x4 EE target (base frame): raw target, filtered, step-limited, clamped."""
        raw = self.raw_target(R_wrist, p_wrist)
        cfg = self.config
        # Low-pass toward the raw target, then limit the step from the previous output.
        dp = cfg.smoothing * (raw[:3, 3] - self._p_out)
        norm = float(np.linalg.norm(dp))
        if norm > cfg.max_step_m:
            dp *= cfg.max_step_m / norm
            self.step_limited += 1
        w = cfg.smoothing * axis_angle_from_matrix(raw[:3, :3] @ self._R_out.T)
        angle = float(np.linalg.norm(w))
        if angle > cfg.max_step_rad:
            w *= cfg.max_step_rad / angle
            self.step_limited += 1
        p = self._p_out + dp
        clamped = np.clip(p, self._low, self._high)
        if not np.array_equal(clamped, p):
            self.position_clamps += 1
        self._p_out = clamped
        self._R_out = orthonormalize(matrix_from_axis_angle(w) @ self._R_out)
        T = np.eye(4)
        T[:3, :3] = self._R_out
        T[:3, 3] = self._p_out
        return T
