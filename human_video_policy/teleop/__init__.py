"""Teleoperation cores (numpy only): a camera-tracked wrist or a leader arm drives the robot.

- :mod:`.wrist_mapping`: human wrist pose (camera frame) -> robot end-effector target (base
  frame) through a clutch, with filtering, step limits and a workspace box;
- :mod:`.leader_follower`: leader-arm joint states -> follower joint commands, with alignment
  on engage and a stale-leader stop.

The ROS adapters are ``nodes/wrist_teleop_node.py`` and ``nodes/leader_follower_node.py``;
the deadman rules and how to run them are in docs/teleoperation.md.
"""
