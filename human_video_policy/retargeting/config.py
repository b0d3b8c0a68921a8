"""Retargeting parameters: one validated dataclass per concern, loadable from YAML.

The defaults are those of ``config/retarget_xhand.yaml`` (the values and why they were chosen are
explained there and in docs/retargeting.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from human_video_policy.errors import ConfigError
from human_video_policy.validation import (
    check_choice,
    check_int_range,
    check_non_negative,
    check_positive,
    check_range,
    check_same_length,
)

OPTIMIZERS = ("vector", "dexpilot")
ANCHORS = ("finger_base", "wrist")
SCALINGS = ("bone_length", "fixed")

#: ``scaling="fixed"``, ``anchor="wrist"`` factors (thumb..pinky) measured on the dexret video by
#: ``XHandRetargeter.calibrate_scales`` (XHand open palm->tip length over the 95th percentile of
#: the human wrist->tip length): the AnyTeleop-style set-up the benchmark compares with.
WRIST_FIXED_FINGER_SCALES: tuple[float, ...] = (1.12, 1.15, 1.06, 1.13, 1.32)


@dataclass(frozen=True)
class DexPilotConfig:
    """DexPilot's switching weights for the 10 inter-finger vectors (DexPilot, AnyTeleop).

    Fields:
        project_dist: a thumb-finger pair closer than this (m, human, after scaling) counts as
            a pinch: its robot vector is pulled to ``eta1`` length, so the tips touch.
        escape_dist: a pinching pair is released only when the human pair is farther than this
            (m); ``escape_dist >= project_dist`` gives hysteresis so contacts do not flicker.
        eta1: target length (m) of a pinching thumb-finger vector (DexPilot: 1e-4).
        eta2: target length (m) of the vector between two fingers that both pinch the thumb
            (DexPilot: 3e-2, keeps them from colliding).
        pinch_weight: weight of a pinching thumb-finger vector (DexPilot/AnyTeleop: 200).
        finger_pair_weight: weight of a pinching finger-finger vector (AnyTeleop: 400).
        wrist_weight: weight of each wrist->tip vector (AnyTeleop: 15 = 10 + 5 for 5 fingers);
            non-pinching inter-finger vectors weigh 1.
    """

    project_dist: float = 0.03
    escape_dist: float = 0.05
    eta1: float = 1e-4
    eta2: float = 3e-2
    pinch_weight: float = 200.0
    finger_pair_weight: float = 400.0
    wrist_weight: float = 15.0

    def __post_init__(self) -> None:
        check_positive("dexpilot.project_dist", self.project_dist)
        check_positive("dexpilot.escape_dist", self.escape_dist)
        if self.escape_dist < self.project_dist:
            raise ConfigError(
                f"dexpilot.escape_dist={self.escape_dist!r} is invalid: must be >= "
                f"dexpilot.project_dist={self.project_dist!r} (hysteresis)"
            )
        check_non_negative("dexpilot.eta1", self.eta1)
        check_non_negative("dexpilot.eta2", self.eta2)
        check_positive("dexpilot.pinch_weight", self.pinch_weight)
        check_positive("dexpilot.finger_pair_weight", self.finger_pair_weight)
        check_positive("dexpilot.wrist_weight", self.wrist_weight)


@dataclass(frozen=True)
class RetargetConfig:
    """How human keypoints become XHand joint angles.

    Fields:
        optimizer: ``"vector"`` (5 wrist->fingertip vectors) or ``"dexpilot"`` (the 5 vectors +
            10 inter-fingertip vectors with pinch switching weights, VITRA A.5.2 / DexPilot).
        anchor: where the human finger vectors are attached on the robot. ``"finger_base"``:
            each human fingertip relative to its finger base (thumb CMC, finger MCPs), scaled,
            then placed at the robot finger's first joint; the palm shapes differ (the human
            pinky MCP sits ~2 cm farther out than the XHand's), and wrist-anchored targets then
            ask for an unreachable sideways tip, which the solver answers by curling the
            finger. ``"wrist"``: AnyTeleop's wrist-relative fingertips, scaled.
        scaling: ``"bone_length"``: per frame and finger, the human vector is scaled by the
            robot finger's open length over the human finger's summed bone lengths (anchor ->
            tip), so a straight human finger always maps to a straight robot finger whatever
            the hand's size and the tracker's bone-length noise (near straight, a 7 % short
            target bends a 2-link XHand finger by ~50 degrees); ``finger_scales`` multiply it
            (1.0 = no correction). ``"fixed"``: ``finger_scales`` alone are the scale factors.
        finger_scales: 5 factors (thumb, index, middle, ring, pinky) multiplying the human
            wrist-relative fingertip positions before matching; the XHand's fingers are longer
            than a human's and not in the same proportion (one global factor leaves the pinky
            curled). ``XHandRetargeter.calibrate_scales`` measures them from a sequence.
        huber_delta: Huber threshold (m) on each vector error: quadratic below, linear above,
            so one badly tracked finger cannot dominate the others.
        smooth_weight: beta of ``beta * ||q - q_prev||^2`` (per vector-error m^2 per rad^2):
            pulls each solution toward the previous one (temporal smoothness, VITRA eq. I).
        low_pass_alpha: output filter ``q_out = a * q + (1 - a) * q_out_prev`` in (0, 1];
            1 disables it. Smaller is smoother but lags.
        max_joint_step_rad: largest change of any joint between consecutive frames (rad);
            bigger steps are clamped and reported (0.35 rad/frame = 10.5 rad/s at 30 fps,
            inside the XHand's 8.6-14.4 rad/s velocity limits).
        max_iterations: Gauss-Newton iterations per frame (warm-started frames need 2-5).
        tolerance_rad: stop when the largest joint update is below this (rad).
        min_palm_length_m / max_palm_length_m: accepted wrist->middle-MCP distance (m);
            outside it the keypoints are not a hand in metres (wrong unit, collapsed detection)
            and the frame is rejected with an InputError.
        urdf_path: robot model; None = the project's urdf/xhand_right.urdf.
        dexpilot: DexPilot switching parameters (used when optimizer is ``"dexpilot"``).
    """

    optimizer: str = "vector"
    anchor: str = "finger_base"
    scaling: str = "bone_length"
    finger_scales: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    huber_delta: float = 0.02
    smooth_weight: float = 4e-3
    low_pass_alpha: float = 0.6
    max_joint_step_rad: float = 0.35
    max_iterations: int = 20
    tolerance_rad: float = 1e-4
    min_palm_length_m: float = 0.03
    max_palm_length_m: float = 0.2
    urdf_path: str | None = None
    dexpilot: DexPilotConfig = field(default_factory=DexPilotConfig)

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("anchor", self.anchor, ANCHORS)
        check_choice("scaling", self.scaling, SCALINGS)
        scales = tuple(self.finger_scales)
        check_same_length("finger_scales", scales, 5)
        for i, s in enumerate(scales):
            check_range(f"finger_scales[{i}]", s, 0.2, 5.0)
        object.__setattr__(self, "finger_scales", tuple(float(s) for s in scales))
        check_positive("huber_delta", self.huber_delta)
        check_non_negative("smooth_weight", self.smooth_weight)
        check_range("low_pass_alpha", self.low_pass_alpha, 1e-3, 1.0)
        check_positive("max_joint_step_rad", self.max_joint_step_rad)
        check_int_range("max_iterations", self.max_iterations, 1, 1000)
        check_positive("tolerance_rad", self.tolerance_rad)
        check_positive("min_palm_length_m", self.min_palm_length_m)
        check_positive("max_palm_length_m", self.max_palm_length_m)
        if self.max_palm_length_m <= self.min_palm_length_m:
            raise ConfigError(
                f"max_palm_length_m={self.max_palm_length_m!r} is invalid: must be > "
                f"min_palm_length_m={self.min_palm_length_m!r}"
            )
        if self.urdf_path is not None and not Path(self.urdf_path).is_file():
            raise ConfigError(f"urdf_path={self.urdf_path!r} is invalid: file not found")
        if isinstance(self.dexpilot, dict):
            object.__setattr__(self, "dexpilot", DexPilotConfig(**self.dexpilot))
        if not isinstance(self.dexpilot, DexPilotConfig):
            raise ConfigError(f"dexpilot={self.dexpilot!r} is invalid: must be a mapping")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetargetConfig:
        """Build from a plain mapping (e.g. parsed YAML); unknown keys are an error."""
        if not isinstance(data, dict):
            raise ConfigError(f"retargeting config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown retargeting config keys {unknown}; allowed: {sorted(known)}"
            )
        values = dict(data)
        dex = values.get("dexpilot")
        if dex is not None:
            dex_known = {f.name for f in fields(DexPilotConfig)}
            if not isinstance(dex, dict) or set(dex) - dex_known:
                raise ConfigError(
                    f"dexpilot={dex!r} is invalid: must be a mapping with keys {sorted(dex_known)}"
                )
            values["dexpilot"] = DexPilotConfig(**dex)
        if "finger_scales" in values:
            values["finger_scales"] = tuple(values["finger_scales"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"bad retargeting config: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> RetargetConfig:
        """Read the ``retargeting:`` section of a YAML file (see config/retarget_xhand.yaml)."""
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read retargeting config {p}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("retargeting"), dict):
            raise ConfigError(f"{p}: expected a top-level 'retargeting:' mapping")
        return cls.from_dict(data["retargeting"])
