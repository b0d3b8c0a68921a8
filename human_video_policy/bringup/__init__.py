"""Bring-up: graph descriptions (config/graphs/*.yaml) and the local process launcher.

With rclpy only (no launch_ros), ``hvp launch <graph>`` starts the same node processes with the
same ``--ros-args`` that ``ros2 launch human_video_policy <graph>.launch.py`` would.
"""
