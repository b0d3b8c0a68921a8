"""ros2 launch human_video_policy policy_widowx.launch.py [name:=value ...]

Starts the graph of config/graphs/policy_widowx.yaml (the same file
`hvp launch policy_widowx` reads); see human_video_policy.bringup.ros2_launch.
"""


def generate_launch_description():
    from human_video_policy.bringup.ros2_launch import launch_description

    return launch_description("policy_widowx")
