"""human_video_policy: learn robot manipulation from videos of human hands.

ROS at the edges (``nodes/``, ``bringup/``), a pure-Python core everywhere else.
"""

__version__ = "0.1.0"
