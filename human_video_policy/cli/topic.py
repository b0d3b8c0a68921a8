"""``hvp topic``: list, measure and print topics (ros2cli is not installable from PyPI).

The rclpy work lives in :mod:`human_video_policy.bringup.topic_tools` (rclpy is used only in
nodes/ and bringup/); this module only registers the command.
"""

from human_video_policy.bringup.topic_tools import register

__all__ = ["register"]
