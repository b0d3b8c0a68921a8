"""Realman RM75 (7 DoF) + XHand right hand (12 DoF) robot spec: joints, frames, limits, mount.

Pure Python (no ROS, no pinocchio at import), like robots/widowx.py and robots/xhand.py, so IK,
the sim, the executor and the nodes agree on one joint order. Names follow the vendor
descriptions (Realman's rm_75.urdf: joint1..joint7, base_link, Link1..Link7; the XHand's
right_hand_*); limits are read from the project's own urdf/rm75_xhand_right.urdf, which
test/test_rm75_model.py keeps equal to the vendor files.

Frames: BASE_FRAME (z up, the arm's mounting plate), FLANGE_FRAME (Link7: +Z out of the tool
flange along joint7's axis), the hand's PALM_FRAME at its wrist flange (fingers along -Z, thumb
+X, palm normal +Y) and EE_FRAME, 65 mm down the palm from the wrist flange (vendor XHand frame),
the point IK places. The hand is bolted to the flange through the fixed joint MOUNT_JOINT whose
transform is :class:`HandMount` (default DEFAULT_HAND_MOUNT, a placeholder until the real
adapter plate is measured; see urdf/rm75_xhand_right.urdf).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from human_video_policy.errors import ConfigError
from human_video_policy.resources import resource_path
from human_video_policy.robots.joint_limits import JointLimits, read_urdf_joint_limits
from human_video_policy.robots.xhand import EE_FRAME as HAND_EE_FRAME
from human_video_policy.robots.xhand import PALM_FRAME, XHAND_JOINTS

RM75_ARM_JOINTS: tuple[str, ...] = tuple(f"joint{i}" for i in range(1, 8))
# What the executor and the sim command, in this order: 7 arm joints then the 12 hand joints
# (robots/xhand.py order). /arm/joint_states reports the same 19 joints.
RM75_XHAND_JOINTS: tuple[str, ...] = (*RM75_ARM_JOINTS, *XHAND_JOINTS)

BASE_FRAME = "base_link"
FLANGE_FRAME = "Link7"
EE_FRAME = HAND_EE_FRAME  # right_hand_ee_link: 65 mm down the palm from the wrist flange
HAND_ROOT_FRAME = PALM_FRAME  # right_hand_link, at the hand's wrist flange
MOUNT_JOINT = "rm75_xhand_mount_joint"

# Ready pose of the arm (rad, RM75_ARM_JOINTS order): upper arm forward and up, elbow bent, the
# hand pointing down with its EE point about (0.30, 0, 0.25) m in the base frame, above the
# table in front of the robot and away from every joint limit.
HOME_ARM_POSITION: np.ndarray = np.array([0.0, 0.36, 0.0, 1.31, 0.0, 1.47, 0.0])
HOME_ARM_POSITION.setflags(write=False)
# The hand open (all 12 joints at 0, within the limits: the thumb bend's range starts at 0).
HOME_POSITION: np.ndarray = np.concatenate([HOME_ARM_POSITION, np.zeros(len(XHAND_JOINTS))])
HOME_POSITION.setflags(write=False)


@dataclass(frozen=True)
class HandMount:
    """Pose of the hand's wrist flange (right_hand_link) in the arm's flange frame (Link7).

    Attributes:
        xyz: translation (m) from the Link7 origin, in Link7 axes; e.g. (0, 0, 0.012) for a
            12 mm adapter plate.
        rpy: URDF roll-pitch-yaw (rad; R = Rz(yaw) Ry(pitch) Rx(roll)) of right_hand_link in
            Link7. The default (pi, 0, 0) points the fingers out of the flange.
    """

    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (math.pi, 0.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("xyz", "rpy"):
            raw = getattr(self, name)
            try:
                values = tuple(float(v) for v in raw)
            except (TypeError, ValueError):
                raise ConfigError(f"HandMount.{name}={raw!r} is invalid: 3 numbers") from None
            if len(values) != 3 or not all(math.isfinite(v) for v in values):
                raise ConfigError(f"HandMount.{name}={raw!r} is invalid: 3 finite numbers")
            object.__setattr__(self, name, values)
        if max(abs(v) for v in self.xyz) > 0.5:
            raise ConfigError(f"HandMount.xyz={self.xyz} is invalid: an adapter is under 0.5 m")

    def transform(self) -> np.ndarray:
        """4x4 transform Link7 <- right_hand_link."""
        roll, pitch, yaw = self.rpy
        cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
        cy, sy = math.cos(yaw), math.sin(yaw)
        rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
        ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
        rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
        T = np.eye(4)
        T[:3, :3] = rz @ ry @ rx
        T[:3, 3] = self.xyz
        return T


DEFAULT_HAND_MOUNT = HandMount()


def rm75_urdf_path() -> Path:
    """The project's RM75 arm-only URDF (primitive geometry, vendor kinematics)."""
    return resource_path("urdf", "rm75.urdf")


def rm75_xhand_urdf_path() -> Path:
    """The project's RM75 + XHand right hand URDF (default mount)."""
    return resource_path("urdf", "rm75_xhand_right.urdf")


def rm75_xhand_urdf_xml(mount: HandMount | None = None) -> str:
    """URDF text of the RM75 + XHand with ``mount`` as the flange-to-hand transform.

    ``None`` returns the file unchanged (its mount is DEFAULT_HAND_MOUNT; the tests check it).
    """
    text = rm75_xhand_urdf_path().read_text(encoding="utf-8")
    if mount is None:
        return text
    if not isinstance(mount, HandMount):
        raise ConfigError(f"mount={mount!r} is invalid: must be a HandMount")
    root = ET.fromstring(text)
    joint = next((j for j in root.findall("joint") if j.get("name") == MOUNT_JOINT), None)
    if joint is None:
        raise ConfigError(f"{rm75_xhand_urdf_path()} has no fixed joint {MOUNT_JOINT!r}")
    origin = joint.find("origin")
    assert origin is not None
    origin.set("xyz", " ".join(repr(v) for v in mount.xyz))
    origin.set("rpy", " ".join(repr(v) for v in mount.rpy))
    return ET.tostring(root, encoding="unicode")


@lru_cache(maxsize=1)
def rm75_joint_limits() -> JointLimits:
    """Position and velocity limits of RM75_ARM_JOINTS (rad, rad/s), from the project's URDF."""
    return read_urdf_joint_limits(rm75_xhand_urdf_path(), RM75_ARM_JOINTS)


@lru_cache(maxsize=1)
def rm75_xhand_joint_limits() -> JointLimits:
    """Limits of the 19 RM75_XHAND_JOINTS (arm then hand), from the project's URDF."""
    return read_urdf_joint_limits(rm75_xhand_urdf_path(), RM75_XHAND_JOINTS)
