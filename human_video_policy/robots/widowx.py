"""WidowX 250s (wx250s) robot spec: joint names, frames, home pose and limits.

Pure Python (no ROS, no pinocchio at import) so the sim, the executor, the nodes and the
training code all agree on one joint order. Names follow the vendor (Interbotix) description;
limits are read from the project's own urdf/wx250s.urdf, which test/test_widowx_model.py keeps
equal to the vendor's.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from human_video_policy.resources import resource_path
from human_video_policy.robots.joint_limits import JointLimits, read_urdf_joint_limits

WIDOWX_ARM_JOINTS: tuple[str, ...] = (
    "waist",
    "shoulder",
    "elbow",
    "forearm_roll",
    "wrist_angle",
    "wrist_rotate",
)
# What the policy and the executor command: arm (rad) + left finger (m, 0.015 closed .. 0.037 open).
WIDOWX_COMMAND_JOINTS: tuple[str, ...] = (*WIDOWX_ARM_JOINTS, "left_finger")
# What /arm/joint_states reports: the command joints + the right finger (= -left_finger).
WIDOWX_STATE_JOINTS: tuple[str, ...] = (*WIDOWX_COMMAND_JOINTS, "right_finger")

BASE_FRAME = "wx250s/base_link"
# Tool centre point between the finger tips (27.575 mm past the finger slide axis).
EE_FRAME = "wx250s/ee_gripper_link"

GRIPPER_CLOSED = 0.015
GRIPPER_OPEN = 0.037

# Ready pose: forearm level, gripper pointing straight down, open, tool centre point about
# (0.20, 0, 0.20) m in the base frame, i.e. 20 cm above a table the base stands on and clear
# of objects in front of the robot. Order: WIDOWX_COMMAND_JOINTS.
HOME_POSITION: np.ndarray = np.array([0.0, -0.4, 0.4, 0.0, 1.57, 0.0, GRIPPER_OPEN])
HOME_POSITION.setflags(write=False)


def widowx_urdf_path() -> Path:
    """The project's WidowX 250s URDF (primitive geometry, vendor kinematics)."""
    return resource_path("urdf", "wx250s.urdf")


@lru_cache(maxsize=1)
def widowx_joint_limits() -> JointLimits:
    """Position and velocity limits of WIDOWX_COMMAND_JOINTS, from the project's URDF."""
    return read_urdf_joint_limits(widowx_urdf_path(), WIDOWX_COMMAND_JOINTS)
