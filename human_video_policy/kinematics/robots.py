"""Forward kinematics of the registered robots, built from their :class:`RobotSpec`.

Why here: robot specs are plain data in the layer below (``robots/`` imports no pinocchio);
the kinematics of a robot is this layer's job, so the dependency runs one way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from human_video_policy.kinematics.forward import ForwardKinematics
from human_video_policy.robots.rm75 import (
    RM75_XHAND_JOINTS,
    HandMount,
    rm75_xhand_urdf_path,
    rm75_xhand_urdf_xml,
)
from human_video_policy.robots.spec import RobotSpec, get_robot


def _spec(robot: str | RobotSpec) -> RobotSpec:
    return robot if isinstance(robot, RobotSpec) else get_robot(robot)


def robot_forward_kinematics(robot: str | RobotSpec) -> ForwardKinematics:
    """Forward kinematics of ``robot``'s URDF taking its command joints (in that order); other
    joints stay at their reference values, mirrored ones follow their source (URDF mimic)."""
    spec = _spec(robot)
    return ForwardKinematics.from_urdf(spec.urdf_path, spec.command_joints)


def rm75_xhand_forward_kinematics(mount: HandMount | None = None) -> ForwardKinematics:
    """Forward kinematics of the RM75 + XHand (19 joints, RM75_XHAND_JOINTS order) with the
    hand on ``mount`` (None: the URDF's mount), base-frame poses."""
    if mount is None:
        return ForwardKinematics.from_urdf(rm75_xhand_urdf_path(), RM75_XHAND_JOINTS)
    return ForwardKinematics.from_urdf_string(
        rm75_xhand_urdf_xml(mount), RM75_XHAND_JOINTS, source=f"rm75_xhand_right ({mount})"
    )


def ee_position_function(robot: str | RobotSpec) -> Callable[[np.ndarray], np.ndarray]:
    """``q (command joints) -> position (3,)`` of the robot's EE frame in its base frame, for
    the safety layer's workspace box."""
    spec = _spec(robot)
    model = robot_forward_kinematics(spec)
    return lambda q: model.frame_position(q, spec.ee_frame)


__all__ = ["ee_position_function", "rm75_xhand_forward_kinematics", "robot_forward_kinematics"]
