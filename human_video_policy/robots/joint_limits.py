"""Joint limits of a robot, validated once so every consumer can trust them.

The executor clamps commands with these; a wrong limit (NaN, swapped bounds, zero velocity) must
fail loudly at start-up, not turn into a silent clamp-to-NaN while the arm moves.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from human_video_policy.errors import ConfigError, InputError


@dataclass(frozen=True, eq=False)
class JointLimits:
    """Position bounds and speed limits of named joints (rad, rad/s; m, m/s for prismatic).

    Arrays are stored as read-only float64 copies, so a shared instance cannot be changed
    behind the back of the code that validated it.
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray

    def __post_init__(self) -> None:
        names = tuple(self.names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"JointLimits.names must be non-empty strings, got {self.names!r}")
        if len(set(names)) != len(names):
            raise ConfigError(f"JointLimits.names has duplicates: {names}")
        object.__setattr__(self, "names", names)
        for field in ("lower", "upper", "max_velocity"):
            try:
                values = np.array(getattr(self, field), dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"JointLimits.{field} is not numeric: {exc}") from exc
            if values.shape != (len(names),):
                raise ConfigError(
                    f"JointLimits.{field} has shape {values.shape}, expected ({len(names)},) "
                    f"to match names {names}"
                )
            if not np.all(np.isfinite(values)):
                bad = [n for n, v in zip(names, values, strict=True) if not math.isfinite(v)]
                raise ConfigError(f"JointLimits.{field} must be finite; not finite for {bad}")
            values.setflags(write=False)
            object.__setattr__(self, field, values)
        swapped = [n for n, lo, hi in zip(names, self.lower, self.upper, strict=True) if lo > hi]
        if swapped:
            raise ConfigError(f"JointLimits.lower > JointLimits.upper for joints {swapped}")
        slow = [n for n, v in zip(names, self.max_velocity, strict=True) if v <= 0.0]
        if slow:
            raise ConfigError(f"JointLimits.max_velocity must be > 0; not for joints {slow}")

    def __len__(self) -> int:
        return len(self.names)

    def _as_vector(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        vector = np.asarray(q, dtype=np.float64)
        if vector.shape != (len(self.names),):
            raise InputError(
                f"joint vector has shape {vector.shape}, expected ({len(self.names)},) "
                f"in the order {self.names}"
            )
        return vector

    def clip(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        """q clamped into [lower, upper] (new array); NaN/inf raise rather than pass through."""
        vector = self._as_vector(q)
        if not np.all(np.isfinite(vector)):
            bad = [n for n, v in zip(self.names, vector, strict=True) if not math.isfinite(v)]
            raise InputError(f"cannot clip a non-finite joint vector: not finite for {bad}")
        return np.clip(vector, self.lower, self.upper)

    def contains(self, q: Sequence[float] | np.ndarray, tol: float = 0.0) -> bool:
        """True when every joint lies within [lower - tol, upper + tol]; False for NaN."""
        vector = self._as_vector(q)
        return bool(np.all((vector >= self.lower - tol) & (vector <= self.upper + tol)))


def read_urdf_joint_limits(urdf_path: str | Path, joint_names: Sequence[str]) -> JointLimits:
    """Limits of ``joint_names`` (in that order) from the <limit> tags of a URDF file.

    Parsed with the standard library so limit look-ups need neither pinocchio nor ROS.
    """
    path = Path(urdf_path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"cannot read joint limits from URDF {path}: {exc}") from exc
    joints = {j.get("name"): j for j in root.findall("joint")}
    lower, upper, velocity = [], [], []
    for name in joint_names:
        joint = joints.get(name)
        if joint is None:
            raise ConfigError(f"URDF {path} has no joint {name!r}; it has {sorted(joints)}")
        limit = joint.find("limit")
        if joint.get("type") not in ("revolute", "prismatic") or limit is None:
            raise ConfigError(
                f"URDF {path}: joint {name!r} (type {joint.get('type')!r}) has no position "
                "limits; only revolute/prismatic joints with a <limit> tag can be commanded"
            )
        try:
            lower.append(float(limit.get("lower", "0")))
            upper.append(float(limit.get("upper", "0")))
            velocity.append(float(limit.get("velocity", "nan")))
        except ValueError as exc:
            raise ConfigError(f"URDF {path}: joint {name!r} has a bad <limit>: {exc}") from exc
    return JointLimits(
        names=tuple(joint_names),
        lower=np.array(lower),
        upper=np.array(upper),
        max_velocity=np.array(velocity),
    )
