"""Demonstration data: rosbag2 reading and writing (pure Python, no rclpy)."""

from human_video_policy.data.bags import (
    BagMessage,
    BagReader,
    BagWriter,
    TopicSummary,
    make_typestore,
    qos_profile,
)

__all__ = [
    "BagMessage",
    "BagReader",
    "BagWriter",
    "TopicSummary",
    "make_typestore",
    "qos_profile",
]
