"""ros2 launch human_video_policy camera.launch.py [name:=value ...]

Starts the graph of config/graphs/camera.yaml (the same file `hvp launch camera` reads); see
human_video_policy.bringup.ros2_launch.
"""


def generate_launch_description():
    from human_video_policy.bringup.ros2_launch import launch_description

    return launch_description("camera")
