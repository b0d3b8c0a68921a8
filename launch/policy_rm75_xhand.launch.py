"""ros2 launch human_video_policy policy_rm75_xhand.launch.py [name:=value ...]

Starts the graph of config/graphs/policy_rm75_xhand.yaml (the same file
`hvp launch policy_rm75_xhand` reads); see human_video_policy.bringup.ros2_launch.
"""


def generate_launch_description():
    from human_video_policy.bringup.ros2_launch import launch_description

    return launch_description("policy_rm75_xhand")
