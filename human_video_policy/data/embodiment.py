"""Embodiments and the one mapping between robot actions and the 102-d human hand space.

Why: VITRA trains human and robot data in one action space. Each robot joint is written into
the human dimension of its nearest joint in topology; every other human dimension is masked
(VITRA sec. 4.3 / A.3; ARCHITECTURE.md "Action spaces"). The mask travels with the data so the
loss ignores the masked dimensions.

Human space (``human_hand_102``): left hand in dims 0..50, right hand in 51..101; per hand
``[dt (3), dr (3), theta (15 MANO joints x (flexion, abduction, twist))]`` as in
:mod:`human_video_policy.hands.joint_angles`.

Mappings are linear per joint, ``human = scale * robot + offset``, so :meth:`from_human`
inverts :meth:`to_human` on the mapped joints (exactly for scale 1 and offset 0, else up to
float32 rounding). Robot joints with no human counterpart
(the WidowX and RM75 arm joints: their motion is Cartesian wrist motion, not a joint angle) stay
unmapped; :meth:`from_human` takes their values from ``fill``. Joint names and action spaces
come from the robots' specs (robots/spec.py) and the action-space registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.joint_angles import ANGLE_NAMES, MANO_JOINT_NAMES
from human_video_policy.policies.action_spaces import (
    HUMAN_HAND_102,
    get_action_space,
)
from human_video_policy.robots.spec import get_robot
from human_video_policy.robots.widowx import GRIPPER_CLOSED, GRIPPER_OPEN

HUMAN_ACTION_SPACE = HUMAN_HAND_102  # the registry's constant under this module's older name
#: The human action dims (policies/action_spaces.py defines them).
HUMAN_ACTION_NAMES: tuple[str, ...] = get_action_space(HUMAN_HAND_102).names
HUMAN_DIM = len(HUMAN_ACTION_NAMES)  # 102
HAND_DIM = HUMAN_DIM // 2  # 51


def _hand_state_names(side: str) -> list[str]:
    names = [f"{side}.wrist_p_{a}" for a in "xyz"] + [f"{side}.wrist_r_{a}" for a in "xyz"]
    names += [f"{side}.{j}.{a}" for j in MANO_JOINT_NAMES for a in ANGLE_NAMES]
    return names


#: Human hand state (VITRA sec. 4.1: wrist translation and rotation in the camera frame of the
#: current image, and the joint angles), per hand ``[wrist position (3, m), wrist rotation
#: (3, Euler xyz of R, rad), theta (45)]``; left 0..50, right 51..101. The joint-angle dims sit
#: at the same indices as in :data:`HUMAN_ACTION_NAMES`, so a robot joint maps into the state
#: and the action at one index.
HUMAN_STATE_NAMES: tuple[str, ...] = tuple(_hand_state_names("left") + _hand_state_names("right"))


def human_dim(side: str, joint: str, angle: str) -> int:
    """Index of ``side.joint.angle`` (e.g. ``"right", "index1", "flexion"``) in the 102-d space."""
    name = f"{side}.{joint}.{angle}"
    try:
        return HUMAN_ACTION_NAMES.index(name)
    except ValueError:
        raise InputError(f"{name!r} is not a human action dimension") from None


@dataclass(frozen=True)
class JointMapping:
    """One robot joint written into one human dimension: ``human = scale * robot + offset``."""

    robot_joint: str
    human_index: int
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class EmbodimentSpec:
    """What a robot (or the human hand) acts with and how it maps into the human space.

    Fields:
        name: embodiment id stored with every episode (``widowx``, ``xhand``, ``rm75_xhand``,
            ``human_hand``).
        action_space: id of the native action columns (as in ActionChunk.action_space), a
            registered action space (policies/action_spaces.py) whose dims are action_names.
        action_names: native action columns (commanded joints, in command order).
        state_names: native state columns (measured joints).
        mappings: robot joint -> human dimension, nearest joint in topology; joints not listed
            are unmapped.
    """

    name: str
    action_space: str
    action_names: tuple[str, ...]
    state_names: tuple[str, ...]
    mappings: tuple[JointMapping, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("name='' is invalid: must name the embodiment")
        if len(set(self.action_names)) != len(self.action_names):
            raise ConfigError(f"action_names={list(self.action_names)} is invalid: duplicates")
        seen: set[int] = set()
        for m in self.mappings:
            if m.robot_joint not in self.action_names:
                raise ConfigError(
                    f"mappings: {m.robot_joint!r} is not one of action_names "
                    f"{list(self.action_names)}"
                )
            if not 0 <= m.human_index < HUMAN_DIM or m.human_index in seen:
                raise ConfigError(
                    f"mappings: human_index={m.human_index} for {m.robot_joint!r} is invalid: "
                    f"must be a free index in [0, {HUMAN_DIM})"
                )
            if m.scale == 0 or not np.isfinite(m.scale) or not np.isfinite(m.offset):
                raise ConfigError(f"mappings: {m.robot_joint!r} needs a finite non-zero scale")
            seen.add(m.human_index)
        space = get_action_space(self.action_space)  # ConfigError naming the known spaces
        if not space.is_open and space.names != tuple(self.action_names):
            raise ConfigError(
                f"embodiment {self.name}: action_names differ from the dims of action space "
                f"{self.action_space} {list(space.names)}"
            )

    @property
    def unmapped_joints(self) -> tuple[str, ...]:
        mapped = {m.robot_joint for m in self.mappings}
        return tuple(n for n in self.action_names if n not in mapped)

    def human_mask(self) -> np.ndarray:
        """(102,) float32: 1 where a robot joint lands, 0 elsewhere."""
        mask = np.zeros(HUMAN_DIM, np.float32)
        for m in self.mappings:
            mask[m.human_index] = 1.0
        return mask

    def _check(self, actions: np.ndarray, width: int, what: str) -> np.ndarray:
        a = np.asarray(actions, dtype=np.float64)
        if a.ndim not in (1, 2) or a.shape[-1] != width:
            raise InputError(f"{self.name}: {what} must have shape (..., {width}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InputError(f"{self.name}: {what} holds NaN or inf")
        return a

    def to_human(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Native ``(T, A)`` or ``(A,)`` actions -> (human values, mask) of width 102.

        Masked dimensions are 0 in the values.
        """
        a = self._check(actions, len(self.action_names), "actions")
        out = np.zeros((*a.shape[:-1], HUMAN_DIM), np.float32)
        for m in self.mappings:
            j = self.action_names.index(m.robot_joint)
            out[..., m.human_index] = m.scale * a[..., j] + m.offset
        return out, self.human_mask()

    def state_to_human(
        self, state: np.ndarray, state_names: tuple[str, ...] | list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Native ``(T, S)`` or ``(S,)`` states -> (human state values, mask) of width 102.

        A robot joint's measured position lands at the same index as its action (the joint
        angle dims of :data:`HUMAN_STATE_NAMES` and :data:`HUMAN_ACTION_NAMES` coincide); the
        human hand's own state (``state_names == HUMAN_STATE_NAMES``) passes unchanged.
        """
        names = tuple(state_names)
        s = self._check(state, len(names), "state")
        if names == HUMAN_STATE_NAMES:
            return s.astype(np.float32), np.ones(HUMAN_DIM, np.float32)
        out = np.zeros((*s.shape[:-1], HUMAN_DIM), np.float32)
        for m in self.mappings:
            if m.robot_joint not in names:
                raise InputError(
                    f"{self.name}: state lacks joint {m.robot_joint!r} (state names {list(names)})"
                )
            if m.human_index % HAND_DIM < 6:
                raise InputError(
                    f"{self.name}: {m.robot_joint!r} maps to a wrist motion dim; a state has no "
                    "counterpart there"
                )
            out[..., m.human_index] = m.scale * s[..., names.index(m.robot_joint)] + m.offset
        return out, self.human_mask()

    def from_human(self, human: np.ndarray, fill: np.ndarray | None = None) -> np.ndarray:
        """Human-space values -> native actions; unmapped joints come from ``fill`` (required
        when there are any)."""
        h = self._check(human, HUMAN_DIM, "human actions")
        unmapped = self.unmapped_joints
        out = np.zeros((*h.shape[:-1], len(self.action_names)), np.float64)
        if unmapped:
            if fill is None:
                raise InputError(
                    f"{self.name}: joints {list(unmapped)} have no human counterpart; pass "
                    "fill= with their values (e.g. the current command)"
                )
            f = self._check(fill, len(self.action_names), "fill")
            out[...] = f
        for m in self.mappings:
            j = self.action_names.index(m.robot_joint)
            out[..., j] = (h[..., m.human_index] - m.offset) / m.scale
        return out.astype(np.float32)


# XHand joint -> nearest MANO joint of the right hand (flexion unless it spreads the finger).
_XHAND_NEAREST_MANO: dict[str, tuple[str, str]] = {
    "right_hand_thumb_bend_joint": ("thumb1", "abduction"),
    "right_hand_thumb_rota_joint1": ("thumb1", "flexion"),
    "right_hand_thumb_rota_joint2": ("thumb2", "flexion"),
    "right_hand_index_bend_joint": ("index1", "abduction"),
    "right_hand_index_joint1": ("index1", "flexion"),
    "right_hand_index_joint2": ("index2", "flexion"),
    "right_hand_mid_joint1": ("middle1", "flexion"),
    "right_hand_mid_joint2": ("middle2", "flexion"),
    "right_hand_ring_joint1": ("ring1", "flexion"),
    "right_hand_ring_joint2": ("ring2", "flexion"),
    "right_hand_pinky_joint1": ("pinky1", "flexion"),
    "right_hand_pinky_joint2": ("pinky2", "flexion"),
}


def _xhand_mappings() -> tuple[JointMapping, ...]:
    joints = get_robot("xhand").command_joints
    return tuple(JointMapping(j, human_dim("right", *_XHAND_NEAREST_MANO[j])) for j in joints)


def _widowx_mappings() -> tuple[JointMapping, ...]:
    # The parallel gripper acts like a pinch: closing (0.037 -> 0.015 m) maps to index MCP
    # flexion 0 -> 1 rad. The arm joints stay unmapped (their human counterpart is the wrist
    # pose, a Cartesian quantity).
    scale = 1.0 / (GRIPPER_CLOSED - GRIPPER_OPEN)
    index = human_dim("right", "index1", "flexion")
    return (JointMapping("left_finger", index, scale, -scale * GRIPPER_OPEN),)


def _robot_embodiment(robot: str, mappings: tuple[JointMapping, ...]) -> EmbodimentSpec:
    """A robot's embodiment: its spec's command and state joints and joint action space."""
    spec = get_robot(robot)
    return EmbodimentSpec(
        name=robot,
        action_space=spec.joint_action_space,
        action_names=spec.command_joints,
        state_names=spec.state_joints,
        mappings=mappings,
    )


EMBODIMENTS: dict[str, EmbodimentSpec] = {
    "widowx": _robot_embodiment("widowx", _widowx_mappings()),
    "xhand": _robot_embodiment("xhand", _xhand_mappings()),
    # The RM75 + XHand: the fingers map as the bare XHand's; the 7 arm joints stay unmapped
    # (masked), like the WidowX arm: their human counterpart is the Cartesian wrist motion.
    "rm75_xhand": _robot_embodiment("rm75_xhand", _xhand_mappings()),
    "human_hand": EmbodimentSpec(
        name="human_hand",
        action_space=HUMAN_HAND_102,
        action_names=HUMAN_ACTION_NAMES,
        state_names=HUMAN_STATE_NAMES,
        mappings=tuple(JointMapping(n, i) for i, n in enumerate(HUMAN_ACTION_NAMES)),
    ),
}


def embodiment(name: str) -> EmbodimentSpec:
    """The registered embodiment ``name``."""
    if name not in EMBODIMENTS:
        raise ConfigError(f"embodiment={name!r} is invalid: must be one of {sorted(EMBODIMENTS)}")
    return EMBODIMENTS[name]


__all__ = [
    "EMBODIMENTS",
    "HUMAN_ACTION_NAMES",
    "HUMAN_ACTION_SPACE",
    "HUMAN_DIM",
    "HUMAN_STATE_NAMES",
    "EmbodimentSpec",
    "JointMapping",
    "embodiment",
    "human_dim",
]
