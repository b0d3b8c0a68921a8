"""Joint control without ROS: a driver and the safety layer ticked at the control rate
(:class:`~.joint_controller.JointController`); the controller nodes are thin adapters over it."""

from human_video_policy.control.joint_controller import (
    ControllerCounters,
    ControllerTick,
    JointController,
)

__all__ = ["ControllerCounters", "ControllerTick", "JointController"]
