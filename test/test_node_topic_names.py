"""A node logs its topics by their remapped names (issue 14 item 10): the teleop graph remaps
retarget's /hand/joint_commands to /teleop/hand/joint_commands, and the log said the former."""

from __future__ import annotations

import re

import pytest
from ros_helpers import node_command, start_process, wait_for


@pytest.mark.parametrize(
    ("module", "remap", "topics"),
    [
        (
            "retarget_node",
            "/hand/joint_commands:=/teleop/hand/joint_commands",
            "subscribes /hand/keypoints; publishes /teleop/hand/joint_commands",
        ),
        (
            "executor_node",
            "/arm/joint_commands:=/follower/joint_commands",
            "publishes /executor/chunk_start, /follower/joint_commands",
        ),
    ],
)
def test_a_remapped_topic_is_logged_by_its_remapped_name(
    module: str, remap: str, topics: str
) -> None:
    original, remapped = remap.split(":=")
    with start_process(node_command(module, "-r", remap)) as node:
        assert wait_for(lambda: "topics: " in node.output(), 60.0), node.output()
        assert node.stop() == 0, node.output()
        output = node.output()
    assert topics in output, output
    assert remapped in output
    assert not re.search(rf"(?<![\w/]){re.escape(original)}", output), output
    if module == "retarget_node":
        assert "to xhand on /teleop/hand/joint_commands" in output, output
