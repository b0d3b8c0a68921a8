"""Fault injection: ROS arguments that rcl cannot parse end a node with one line and exit 2.

Why: an unquoted ``-p driver_config:={host: 127.0.0.1}`` (the shell splits it at the space) used
to print rcl's 15-line traceback and exit 1, where every other bad parameter gives one line
naming it and exit code 2 (README). Real node processes, argv exactly as a shell passes it.
"""

from __future__ import annotations

import pytest
from ros_helpers import node_command, start_process

pytestmark = pytest.mark.ros


def _run(module: str, *ros_args: str) -> tuple[int, list[str]]:
    with start_process(node_command(module, *ros_args)) as process:
        code = process.wait(timeout=60)
        lines = [line for line in process.output().splitlines() if line.strip()]
    return code, lines


def test_unquoted_driver_config_gives_one_line_and_exit_2() -> None:
    # what bash passes for: -p driver:=realman -p driver_config:={host: 127.0.0.1}
    code, lines = _run(
        "arm_controller_node", "-p", "driver:=realman", "-p", "driver_config:={host:", "127.0.0.1}"
    )
    assert code == 2, lines
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("arm_controller: error: parameter driver_config=")
    assert "'{host: 127.0.0.1}'" in line  # the value as the user typed it, rejoined
    assert """-p 'driver_config:="{host: 127.0.0.1}"'""" in line  # the form that works
    assert "Traceback" not in line


@pytest.mark.parametrize(
    ("ros_args", "expected"),
    [
        (["-p", "topics:=[/a,", "/b]"], "recorder: error: parameter topics='[/a, /b]' cannot"),
        (["-p", "storage"], "recorder: error: parameter storage: '-p storage' is not NAME:=VALUE"),
        (["-r", "bad"], "recorder: error: remap rule '-r bad' cannot be parsed"),
        (
            ["--params-file", "/nonexistent/x.yaml"],
            "recorder: error: --params-file /nonexistent/x.yaml cannot be used",
        ),
        (["-p", "storage:=mcap", "stray"], "recorder: error: unknown ROS argument(s) ['stray']"),
    ],
)
def test_other_unparsable_ros_args_give_one_line_and_exit_2(
    ros_args: list[str], expected: str
) -> None:
    code, lines = _run("recorder_node", *ros_args)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_messages_that_are_not_about_arguments_are_left_alone() -> None:
    from human_video_policy.nodes.base import ros_args_error

    assert ros_args_error("failed to initialize rmw implementation", []) is None
