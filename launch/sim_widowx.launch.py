"""ros2 launch human_video_policy sim_widowx.launch.py [name:=value ...]

Starts the graph described in config/graphs/sim_widowx.yaml (the same file `hvp launch`
reads): one launch_ros Node per entry, with the entry's parameter files, inline parameters and
remappings, and a Shutdown of the whole launch when a required node exits. The launch arguments
and their defaults come from the yaml's `arguments` section.
"""

GRAPH = "sim_widowx"


def generate_launch_description():
    # Imported here so this file can be imported (and tested) where launch_ros is missing.
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from human_video_policy.bringup.graph import ROS_PACKAGE, load_graph
    from launch import LaunchDescription

    declared = load_graph(GRAPH)  # defaults only: to declare the arguments

    def nodes(context, *args, **kwargs):
        values = {name: LaunchConfiguration(name).perform(context) for name in declared.arguments}
        graph = load_graph(GRAPH, values)
        actions = []
        for spec in graph.nodes:
            parameters = [str(path) for path in spec.parameter_files]
            if spec.parameters:
                parameters.append(dict(spec.parameters))
            actions.append(
                Node(
                    package=ROS_PACKAGE,
                    executable=spec.executable,
                    name=spec.name,
                    output="screen",
                    parameters=parameters,
                    remappings=list(spec.remappings),
                    on_exit=Shutdown(reason=f"required node {spec.name} exited")
                    if spec.required
                    else None,
                )
            )
        return actions

    arguments = [
        DeclareLaunchArgument(
            argument.name,
            default_value=argument.default,
            description=argument.description,
        )
        for argument in declared.arguments.values()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=nodes)])
