"""The safety layer: the one place that decides whether a joint command may reach a robot.

Pure Python (numpy; an optional forward-kinematics callable for the workspace check), no rclpy,
so the same checks run in the controller nodes, in tests and in fuzzers. See docs/safety.md.
"""

from human_video_policy.safety.config import SafetyConfig, WorkspaceBox
from human_video_policy.safety.layer import (
    JointCommand,
    SafetyCounters,
    SafetyDecision,
    SafetyLayer,
)

__all__ = [
    "JointCommand",
    "SafetyConfig",
    "SafetyCounters",
    "SafetyDecision",
    "SafetyLayer",
    "WorkspaceBox",
]
