"""ros2 launch human_video_policy view.launch.py [name:=value ...]

Starts the graph of config/graphs/view.yaml (the same file `hvp launch view` reads): a Foxglove
bridge beside any running graph; see human_video_policy.bringup.ros2_launch.
"""


def generate_launch_description():
    from human_video_policy.bringup.ros2_launch import launch_description

    return launch_description("view")
