"""Viewing: ROS messages to Foxglove schemas (live bridge) and datasets/bags to Rerun.

No rclpy here: :mod:`.foxglove_convert` turns messages (rclpy's or rosbags', read by their field
names) into Foxglove messages or plot-friendly JSON, :mod:`.foxglove_bridge` serves them over the
Foxglove WebSocket protocol, and :mod:`.rerun_export` logs a dataset episode or a bag to Rerun
with every dimension named. ``nodes/foxglove_bridge_node.py`` and ``cli/view_cmd.py`` are the
thin entry points (docs/viewing.md).
"""
