"""``hvp service``: list and call ROS services from a terminal without ros2.

The rclpy work lives in :mod:`human_video_policy.bringup.service_tools` (rclpy is used only in
nodes/ and bringup/); this module only registers the command.
"""

from human_video_policy.bringup.service_tools import register

__all__ = ["register"]
