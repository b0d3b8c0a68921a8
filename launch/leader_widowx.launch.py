"""ros2 launch human_video_policy leader_widowx.launch.py [name:=value ...]

Starts the graph of config/graphs/leader_widowx.yaml (the same file
`hvp launch leader_widowx` reads); see human_video_policy.bringup.ros2_launch.
"""


def generate_launch_description():
    from human_video_policy.bringup.ros2_launch import launch_description

    return launch_description("leader_widowx")
