"""Kinematics on pinocchio: forward kinematics by joint and frame names (IK builds on it)."""

from human_video_policy.kinematics.forward import ForwardKinematics, MimicJoint, parse_mimic_joints

__all__ = ["ForwardKinematics", "MimicJoint", "parse_mimic_joints"]
