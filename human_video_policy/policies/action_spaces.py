"""Every action space by id: what each dimension is called, its unit and its frame.

Why: datasets, models, exported files and action chunks name their action space by id
(``ActionChunk.action_space``, ``hvp/action_space`` of a dataset, the model spec). One registry
gives each id its dimensions, so code compares ids and reads names from here instead of
spelling string literals, and a mismatch can be reported with both names.

Use the constants (``WIDOWX_JOINT_POSITION`` ...) rather than the strings. Joint-position spaces
list a robot's command joints in command order (robots/spec.py names the space its robot acts
in). ``joint_position`` is the open space of a robot with no registered spec: its width and
names come with the data.
"""

from __future__ import annotations

from dataclasses import dataclass

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.joint_angles import ANGLE_NAMES, MANO_JOINT_NAMES
from human_video_policy.robots.rm75 import RM75_ARM_JOINTS, RM75_XHAND_JOINTS
from human_video_policy.robots.widowx import WIDOWX_ARM_JOINTS, WIDOWX_COMMAND_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS

WIDOWX_JOINT_POSITION = "widowx_joint_position"
WIDOWX_EE_DELTA = "widowx_ee_delta"
XHAND_JOINT_POSITION = "xhand_joint_position"
RM75_JOINT_POSITION = "rm75_joint_position"
RM75_XHAND_JOINT_POSITION = "rm75_xhand_joint_position"
XHAND_WRIST_METHOD_A = "xhand_wrist_method_a"
HUMAN_HAND_102 = "human_hand_102"
JOINT_POSITION = "joint_position"

#: What the dimensions of a space are; a model's output heads and losses may depend on it.
KINDS = ("joint_position", "ee_delta", "hand_wrist_pose", "human_hand")


@dataclass(frozen=True)
class ActionSpace:
    """One action space.

    Fields:
        name: id stored with chunks, datasets and models (lower_case, e.g.
            ``widowx_joint_position``).
        names: one name per dimension, in order; empty only for an open space whose width
            and names come with the data (``joint_position``).
        description: what an action is, for people (absolute or delta, frame, source).
        kind: one of :data:`KINDS`.
        units: one unit per dimension (``rad``, ``m``, ``1`` for unitless).
        frame: frame of the Cartesian dimensions (``""`` for joint spaces).
        groups: named contiguous parts ``(name, start, stop)`` that a model may give separate
            output heads and loss weights (method A: fingers, wrist rotation, wrist position).
    """

    name: str
    names: tuple[str, ...]
    description: str
    kind: str
    units: tuple[str, ...]
    frame: str = ""
    groups: tuple[tuple[str, int, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier() or self.name != self.name.lower():
            raise ConfigError(f"ActionSpace.name={self.name!r} is invalid: a lower_case id")
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "units", tuple(self.units))
        if len(set(self.names)) != len(self.names) or not all(self.names):
            raise ConfigError(f"action space {self.name}: names repeat or are empty")
        if len(self.units) != len(self.names):
            raise ConfigError(
                f"action space {self.name}: {len(self.units)} units for {len(self.names)} names"
            )
        if self.kind not in KINDS:
            raise ConfigError(
                f"action space {self.name}: kind={self.kind!r} is invalid: one of {list(KINDS)}"
            )
        covered = 0
        for group, start, stop in self.groups:
            if start != covered or stop <= start or stop > len(self.names):
                raise ConfigError(
                    f"action space {self.name}: group {group!r} ({start}, {stop}) is invalid: "
                    f"groups must tile 0..{len(self.names)} in order"
                )
            covered = stop
        if self.groups and covered != len(self.names):
            raise ConfigError(f"action space {self.name}: groups end at {covered}, not at the end")

    @property
    def dims(self) -> int:
        """Number of dimensions (0 for an open space)."""
        return len(self.names)

    @property
    def is_open(self) -> bool:
        """True when width and names come with the data (``joint_position``)."""
        return not self.names

    def group(self, name: str) -> slice:
        """The dimensions of group ``name`` as a slice."""
        for group, start, stop in self.groups:
            if group == name:
                return slice(start, stop)
        raise ConfigError(
            f"action space {self.name} has no group {name!r}; groups: {[g[0] for g in self.groups]}"
        )

    def check_names(self, names: tuple[str, ...] | list[str], what: str = "actions") -> None:
        """InputError unless ``names`` are this space's dimensions in order (any for an open
        space); the message names the space and the first difference."""
        names = tuple(names)
        if self.is_open or names == self.names:
            return
        if len(names) != len(self.names):
            raise InputError(
                f"{what} have {len(names)} dims, action space {self.name} has {len(self.names)}"
            )
        i = next(i for i, (a, b) in enumerate(zip(names, self.names, strict=True)) if a != b)
        raise InputError(
            f"{what} dim {i} is {names[i]!r}, action space {self.name} has {self.names[i]!r} there"
        )


_SPACES: dict[str, ActionSpace] = {}


def register_action_space(space: ActionSpace, replace: bool = False) -> None:
    """Add ``space``; an id already registered is a ConfigError unless ``replace``."""
    if not isinstance(space, ActionSpace):
        raise ConfigError(f"register_action_space needs an ActionSpace, got {space!r}")
    if space.name in _SPACES and not replace:
        raise ConfigError(f"action space {space.name!r} is already registered")
    _SPACES[space.name] = space


def get_action_space(name: str) -> ActionSpace:
    """The action space ``name``; unknown -> ConfigError listing the known ones."""
    space = _SPACES.get(name)
    if space is None:
        raise ConfigError(f"action space {name!r} is unknown; known: {action_space_names()}")
    return space


def action_space_names() -> list[str]:
    """Every registered id, sorted."""
    return sorted(_SPACES)


def _joint_space(name: str, joints: tuple[str, ...], robot: str, units: tuple[str, ...]) -> None:
    register_action_space(
        ActionSpace(
            name,
            joints,
            f"absolute joint position targets of the {robot} command joints (rad; m for a "
            "prismatic finger), in command order",
            "joint_position",
            units,
        )
    )


def _human_names() -> tuple[str, ...]:
    names: list[str] = []
    for side in ("left", "right"):
        names += [f"{side}.dt_{a}" for a in "xyz"] + [f"{side}.dr_{a}" for a in "xyz"]
        names += [f"{side}.{j}.{a}" for j in MANO_JOINT_NAMES for a in ANGLE_NAMES]
    return tuple(names)


_joint_space(
    WIDOWX_JOINT_POSITION,
    WIDOWX_COMMAND_JOINTS,
    "WidowX 250s",
    ("rad",) * len(WIDOWX_ARM_JOINTS) + ("m",),
)
_joint_space(XHAND_JOINT_POSITION, XHAND_JOINTS, "XHand", ("rad",) * len(XHAND_JOINTS))
_joint_space(RM75_JOINT_POSITION, RM75_ARM_JOINTS, "RM75 arm", ("rad",) * len(RM75_ARM_JOINTS))
_joint_space(
    RM75_XHAND_JOINT_POSITION,
    RM75_XHAND_JOINTS,
    "RM75 arm + XHand (arm then hand)",
    ("rad",) * len(RM75_XHAND_JOINTS),
)
register_action_space(
    ActionSpace(
        WIDOWX_EE_DELTA,
        ("ee_dx", "ee_dy", "ee_dz", "ee_droll", "ee_dpitch", "ee_dyaw", "gripper"),
        "WidowX end-effector motion per step (translation and roll-pitch-yaw of the tool "
        "centre point) + absolute gripper opening (0 closed .. 1 open)",
        "ee_delta",
        ("m", "m", "m", "rad", "rad", "rad", "1"),
        frame="WidowX base",
        groups=(("translation", 0, 3), ("rotation", 3, 6), ("gripper", 6, 7)),
    )
)
register_action_space(
    ActionSpace(
        XHAND_WRIST_METHOD_A,
        (
            *XHAND_JOINTS,
            *(f"wrist_rot6d_{i}" for i in range(6)),
            "wrist_x",
            "wrist_y",
            "wrist_z",
        ),
        "method A (human_video_prompt_policy): absolute targets of the 12 XHand finger "
        "joints, the wrist rotation as the first two columns of R (continuous 6D) and the "
        "wrist position, in the robot base frame",
        "hand_wrist_pose",
        ("rad",) * len(XHAND_JOINTS) + ("1",) * 6 + ("m",) * 3,
        frame="robot base",
        groups=(("fingers", 0, 12), ("wrist_rotation", 12, 18), ("wrist_position", 18, 21)),
    )
)
register_action_space(
    ActionSpace(
        HUMAN_HAND_102,
        _human_names(),
        "VITRA two-hand space: per hand (left 0..50, right 51..101) the wrist translation "
        "dt and rotation dr (Euler xyz) to the next frame and the 15 MANO joints' (flexion, "
        "abduction, twist) of the next frame; robots map into it through data/embodiment.py",
        "human_hand",
        (("m",) * 3 + ("rad",) * 3 + ("rad",) * 3 * len(MANO_JOINT_NAMES)) * 2,
        frame="camera of the current observation",
        groups=(("left", 0, 51), ("right", 51, 102)),
    )
)
register_action_space(
    ActionSpace(
        JOINT_POSITION,
        (),
        "absolute joint position targets of a robot with no registered spec; the dataset's "
        "action names say which joints",
        "joint_position",
        (),
    )
)


__all__ = [
    "HUMAN_HAND_102",
    "JOINT_POSITION",
    "KINDS",
    "RM75_JOINT_POSITION",
    "RM75_XHAND_JOINT_POSITION",
    "WIDOWX_EE_DELTA",
    "WIDOWX_JOINT_POSITION",
    "XHAND_JOINT_POSITION",
    "XHAND_WRIST_METHOD_A",
    "ActionSpace",
    "action_space_names",
    "get_action_space",
    "register_action_space",
]
