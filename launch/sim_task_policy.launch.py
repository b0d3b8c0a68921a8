"""ros2 launch human_video_policy sim_task_policy.launch.py [name:=value ...]

Starts the graph of config/graphs/sim_task_policy.yaml (the same file `hvp launch
sim_task_policy` reads); see human_video_policy.bringup.ros2_launch.
"""


def generate_launch_description():
    from human_video_policy.bringup.ros2_launch import launch_description

    return launch_description("sim_task_policy")
