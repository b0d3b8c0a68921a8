"""``hvp doctor``: check this machine (ROS 2, DDS, interfaces, ONNX Runtime, MuJoCo, GPU).

The checks live in :mod:`human_video_policy.bringup.doctor` (they start rclpy, which only
nodes/ and bringup/ may import); this module only registers the command.
"""

from human_video_policy.bringup.doctor import register

__all__ = ["register"]
