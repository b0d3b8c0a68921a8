"""VITRA A.5.2 angle matching: human joint angles -> XHand joints by linear range mapping.

VITRA maps each glove angle ``theta_h`` from its empirical range ``[h_min, h_max]`` linearly to
the robot joint's limits ``[r_min, r_max]`` and clips:
``theta_r = (theta_h - h_min) / (h_max - h_min) * (r_max - r_min) + r_min``.
Here the human angles are the project's keypoint joint angles (hands/joint_angles.py: 15 MANO
joints x (flexion, abduction, twist), flexion toward the palm positive). Each XHand joint takes
one human angle or the sum of several (the XHand's distal joint moves PIP and DIP together, so
it takes PIP + DIP flexion). A range with ``h_min > h_max`` maps in reverse (the index
abduction: human positive = toward the thumb, XHand ``index_bend`` positive = away from it).

VITRA additionally optimises the thumb and index abduction from two keypoint vectors; this
function is the pure angle part (joint angles are its only input). The human ranges below are
set from the 5th-95th percentiles seen on the dexret video, widened to the usual human range;
they are data, not physics: pass your own ``AngleMatchingConfig`` for another tracker or glove.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.joint_angles import MANO_JOINT_NAMES, NUM_MANO_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits
from human_video_policy.validation import check_finite

_FLEX, _ABD = 0, 1
_D = math.radians


def _j(name: str) -> int:
    return MANO_JOINT_NAMES.index(name)


#: XHand joint -> ((MANO joint index, angle component), ...) summed into one human angle.
ANGLE_SOURCES: dict[str, tuple[tuple[int, int], ...]] = {
    "right_hand_thumb_bend_joint": ((_j("thumb1"), _FLEX),),
    "right_hand_thumb_rota_joint1": ((_j("thumb2"), _FLEX),),
    "right_hand_thumb_rota_joint2": ((_j("thumb3"), _FLEX),),
    "right_hand_index_bend_joint": ((_j("index1"), _ABD),),
    "right_hand_index_joint1": ((_j("index1"), _FLEX),),
    "right_hand_index_joint2": ((_j("index2"), _FLEX), (_j("index3"), _FLEX)),
    "right_hand_mid_joint1": ((_j("middle1"), _FLEX),),
    "right_hand_mid_joint2": ((_j("middle2"), _FLEX), (_j("middle3"), _FLEX)),
    "right_hand_ring_joint1": ((_j("ring1"), _FLEX),),
    "right_hand_ring_joint2": ((_j("ring2"), _FLEX), (_j("ring3"), _FLEX)),
    "right_hand_pinky_joint1": ((_j("pinky1"), _FLEX),),
    "right_hand_pinky_joint2": ((_j("pinky2"), _FLEX), (_j("pinky3"), _FLEX)),
}

_FINGER_MCP = (0.0, _D(90.0))
_FINGER_PIP_DIP = (0.0, _D(180.0))
DEFAULT_HUMAN_RANGES: dict[str, tuple[float, float]] = {
    "right_hand_thumb_bend_joint": (_D(-20.0), _D(40.0)),
    "right_hand_thumb_rota_joint1": (_D(-10.0), _D(40.0)),
    "right_hand_thumb_rota_joint2": (_D(-20.0), _D(60.0)),
    "right_hand_index_bend_joint": (_D(15.0), _D(-15.0)),
    "right_hand_index_joint1": _FINGER_MCP,
    "right_hand_index_joint2": _FINGER_PIP_DIP,
    "right_hand_mid_joint1": _FINGER_MCP,
    "right_hand_mid_joint2": _FINGER_PIP_DIP,
    "right_hand_ring_joint1": _FINGER_MCP,
    "right_hand_ring_joint2": _FINGER_PIP_DIP,
    "right_hand_pinky_joint1": _FINGER_MCP,
    "right_hand_pinky_joint2": _FINGER_PIP_DIP,
}


@dataclass(frozen=True)
class AngleMatchingConfig:
    """Fields:
    human_ranges_rad: XHand joint name -> (h_min, h_max) rad: the human angle (see
        ANGLE_SOURCES) that maps to the joint's lower (h_min) and upper (h_max) limit; every
        XHand joint must be present; h_min == h_max is not allowed (no range to map).
    """

    human_ranges_rad: dict[str, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_HUMAN_RANGES)
    )

    def __post_init__(self) -> None:
        ranges = dict(self.human_ranges_rad)
        missing = [j for j in XHAND_JOINTS if j not in ranges]
        extra = [j for j in ranges if j not in XHAND_JOINTS]
        if missing or extra:
            raise ConfigError(
                f"human_ranges_rad must have exactly the XHand joints; missing {missing}, "
                f"unknown {extra}"
            )
        for name, pair in ranges.items():
            try:
                lo, hi = pair
            except (TypeError, ValueError):
                raise ConfigError(
                    f"human_ranges_rad[{name!r}]={pair!r} is invalid: must be (h_min, h_max)"
                ) from None
            check_finite(f"human_ranges_rad[{name!r}][0]", lo)
            check_finite(f"human_ranges_rad[{name!r}][1]", hi)
            if lo == hi:
                raise ConfigError(
                    f"human_ranges_rad[{name!r}]={pair!r} is invalid: h_min must differ from h_max"
                )
        object.__setattr__(self, "human_ranges_rad", ranges)


def human_joint_angles_for_xhand(angles: np.ndarray) -> np.ndarray:
    """``(T, 15, 3)`` MANO joint angles -> ``(T, 12)`` the human angle feeding each XHand joint
    (XHAND_JOINTS order, before range mapping)."""
    out = np.zeros((angles.shape[0], len(XHAND_JOINTS)))
    for k, name in enumerate(XHAND_JOINTS):
        for joint, comp in ANGLE_SOURCES[name]:
            out[:, k] += angles[:, joint, comp]
    return out


def angle_matching_retarget(
    angles: object, config: AngleMatchingConfig | None = None
) -> np.ndarray:
    """``(T, 15, 3)`` (or one ``(15, 3)`` frame) joint angles -> ``(T, 12)`` (or ``(12,)``)
    XHand joints in XHAND_JOINTS order, clipped to the URDF limits."""
    cfg = config or AngleMatchingConfig()
    try:
        a = np.asarray(angles, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"angles must be a numeric array: {exc}") from exc
    single = a.shape == (NUM_MANO_JOINTS, 3)
    if single:
        a = a[None]
    if a.ndim != 3 or a.shape[1:] != (NUM_MANO_JOINTS, 3) or a.shape[0] == 0:
        raise InputError(
            f"angles must have shape (T, 15, 3) (MANO joints x flexion/abduction/twist), "
            f"got {a.shape}"
        )
    if not np.isfinite(a).all():
        t = int(np.argwhere(~np.isfinite(a))[0][0])
        raise InputError(f"angles contain NaN/inf (first at frame {t})")
    limits = xhand_joint_limits()
    h_min = np.array([cfg.human_ranges_rad[j][0] for j in XHAND_JOINTS])
    h_max = np.array([cfg.human_ranges_rad[j][1] for j in XHAND_JOINTS])
    human = human_joint_angles_for_xhand(a)
    q = (human - h_min) / (h_max - h_min) * (limits.upper - limits.lower) + limits.lower
    q = np.clip(q, limits.lower, limits.upper)
    return q[0] if single else q
