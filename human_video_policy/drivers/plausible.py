"""Plausibility of joint positions a device reports: finite, and where the joint can be.

Why: a reply with a valid checksum can still carry a NaN, an inf, 1e30 or a position the
joint cannot physically reach (a firmware bug, a wrong protocol assumption, a wrong servo on
the bus). Such a value must never become a :class:`~human_video_policy.drivers.base.JointState`:
the safety layer would plan from it. The serial drivers check every decoded position against
a *plausible range* per joint, the URDF limits widened by :data:`POSITION_MARGIN_RAD` (room for
calibration offsets, compliance and overshoot near a limit, but not for a joint half a turn off),
and raise :class:`~human_video_policy.drivers.base.DriverProtocolError` naming the joint and
the value otherwise, which the controller counts as a driver error (docs/hardware_protocols.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from human_video_policy.drivers.base import DriverProtocolError
from human_video_policy.errors import ConfigError
from human_video_policy.robots.joint_limits import JointLimits

POSITION_MARGIN_RAD = 0.5


def widened_ranges(
    limits: JointLimits, margin: float = POSITION_MARGIN_RAD
) -> dict[str, tuple[float, float]]:
    """joint -> (lower - margin, upper + margin) for every joint in ``limits``."""
    return {
        name: (float(lo) - margin, float(hi) + margin)
        for name, lo, hi in zip(limits.names, limits.lower, limits.upper, strict=True)
    }


def range_arrays(
    names: Sequence[str], ranges: Mapping[str, tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound vectors in ``names`` order; ConfigError if one is missing or bad."""
    missing = [n for n in names if n not in ranges]
    if missing:
        raise ConfigError(f"no plausible position range for joints {missing}")
    low = np.empty(len(names))
    high = np.empty(len(names))
    for k, name in enumerate(names):
        try:
            lo, hi = (float(v) for v in ranges[name])
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"plausible range of {name!r} must be (low, high), got {ranges[name]!r}"
            ) from exc
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(
                f"plausible range of {name!r} must be finite with low < high, got {(lo, hi)}"
            )
        low[k], high[k] = lo, hi
    return low, high


def check_plausible(
    device: str,
    names: Sequence[str],
    positions: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    unit: str = "rad",
) -> np.ndarray:
    """``positions`` unchanged if every one is finite and inside [low, high], else
    DriverProtocolError naming each joint that is not and its value."""
    values = np.asarray(positions, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values < low) | (values > high)
    if bad.any():
        details = ", ".join(
            f"{names[k]}={float(values[k])!r} {unit} (plausible [{low[k]:.3f}, {high[k]:.3f}])"
            for k in np.flatnonzero(bad)
        )
        raise DriverProtocolError(f"{device}: implausible joint position in reply: {details}")
    return values
