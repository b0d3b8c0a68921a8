"""The launch description of a graph for ``ros2 launch`` (lab machines with ROS 2 installed).

Every ``launch/<graph>.launch.py`` is two lines around :func:`launch_description`: it starts
the graph described in ``config/graphs/<graph>.yaml`` (the same file ``hvp launch`` reads): one
launch_ros Node per entry, with the entry's parameter files, inline parameters and remappings,
and a Shutdown of the whole launch when a required node exits. The launch arguments and their
defaults come from the yaml's ``arguments`` section.

``launch`` and ``launch_ros`` are imported inside the function, so this module (and the launch
files) import where they are missing (the PyPI-wheel venv); tests substitute stand-ins.
"""

from __future__ import annotations

from typing import Any


def launch_description(graph_name: str) -> Any:
    """A ``launch.LaunchDescription`` starting the graph ``graph_name``."""
    from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from human_video_policy.bringup.graph import ROS_PACKAGE, load_graph
    from launch import LaunchDescription

    declared = load_graph(graph_name)  # defaults only: to declare the arguments

    def nodes(context: Any, *args: Any, **kwargs: Any) -> list[Any]:
        values = {name: LaunchConfiguration(name).perform(context) for name in declared.arguments}
        graph = load_graph(graph_name, values)
        actions = []
        for spec in graph.nodes:
            parameters: list[Any] = [str(path) for path in spec.parameter_files]
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
            choices=list(argument.choices) or None,
        )
        for argument in declared.arguments.values()
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=nodes)])
