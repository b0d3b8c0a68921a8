"""Policy graphs for each robot, simulated or real by one argument (config/graphs/policy_*.yaml):
which nodes and drivers each choice starts, a mistyped choice refused, and the RM75 + XHand
graph run in sim with a replayed RM75 + XHand episode: the executor splits every chunk into the
7 arm joints for the arm controller and the 12 XHand joints, in the hand's order, for the hand
controller, and both follow."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from sensor_msgs.msg import JointState

from human_video_policy.bringup.graph import NodeSpec, load_graph
from human_video_policy.errors import ConfigError
from human_video_policy.robots.rm75 import RM75_ARM_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS


def effective(node: NodeSpec, name: str):
    """The value ``name`` takes for ``node``: its inline parameters, else the last file."""
    if name in node.parameters:
        return node.parameters[name]
    value = None
    for path in node.parameter_files:
        section = (yaml.safe_load(path.read_text()) or {}).get(node.name, {})
        value = section.get("ros__parameters", {}).get(name, value)
    return value


@pytest.mark.parametrize(
    ("graph", "driver", "expected"),
    [
        (
            "policy_rm75_xhand",
            "sim",
            {"arm_controller": "sim", "hand_controller": "sim", "scene_camera": None},
        ),
        (
            "policy_rm75_xhand",
            "real",
            {"arm_controller": "realman", "hand_controller": "xhand", "camera": "realsense"},
        ),
        ("policy_widowx", "sim", {"sim": None}),
        ("policy_widowx", "real", {"arm_controller": "dynamixel", "camera": "realsense"}),
    ],
)
def test_one_argument_picks_the_drivers(graph: str, driver: str, expected: dict) -> None:
    spec = load_graph(graph, {"driver": driver})
    names = {n.name for n in spec.nodes}
    assert names == {*expected, "policy", "executor"}
    for node, kind in expected.items():
        if kind is not None and node != "camera":
            assert effective(spec.node(node), "driver") == kind
        if node == "camera":
            assert effective(spec.node(node), "source") == kind
    robot = "rm75_xhand" if graph == "policy_rm75_xhand" else "widowx"
    for node in ("policy", "executor"):
        assert effective(spec.node(node), "robot") == robot
        sim_time = bool(effective(spec.node(node), "use_sim_time"))  # unset = false
        assert sim_time == (graph == "policy_widowx" and driver == "sim")
    # one camera naming everywhere (realsense-ros): sim_node, camera_node and policy_node agree
    assert not dict(spec.node("policy").remappings)
    with pytest.raises(
        ConfigError, match=r"driver:='rael' is invalid: choose one of \['sim', 'real'\]"
    ):
        load_graph(graph, {"driver": "rael"})


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rm75_xhand_graph_splits_chunks_between_arm_and_hand(tmp_path: Path) -> None:
    from ros_helpers import RosProbe, start_process, wait_for

    from human_video_policy.data.dataset_reader import DatasetReader
    from human_video_policy.training.sim_episodes import record_task_dataset

    dataset = tmp_path / "rm75_ds"
    record_task_dataset(dataset, "press_button", 1, robot="rm75_xhand", seed=5, image_size=(32, 32))
    reader = DatasetReader(dataset)
    names = list(reader.names("action"))
    actions = reader.episode_rows(0, ["action"])["action"]
    final = dict(zip(names, actions[-1], strict=True))
    args = json.dumps({"dataset": str(dataset), "episode": 0})
    command = [
        sys.executable, "-m", "human_video_policy.cli.main", "launch", "policy_rm75_xhand",
        "policy:=replay", f"policy_args:={args}",
    ]  # fmt: skip
    with RosProbe("probe_rm75_graph") as probe, start_process(command) as graph:
        arm_commands = probe.record("/arm/joint_commands", JointState)
        hand_commands = probe.record("/hand/joint_commands", JointState)
        arm_states = probe.record("/arm/joint_states", JointState)
        hand_states = probe.record("/hand/joint_states", JointState)
        assert wait_for(lambda: len(hand_commands) > 50, 120.0), graph.output()
        played = len(actions) * 0.1 + 3.0  # the episode, then the last row held

        def settled() -> bool:
            if not (arm_states.messages() and hand_states.messages()):
                return False
            arm, hand = arm_states.messages()[-1], hand_states.messages()[-1]
            measured = dict(zip(arm.name, arm.position, strict=True))
            measured.update(zip(hand.name, hand.position, strict=True))
            return max(abs(measured[n] - final[n]) for n in names) < 0.05

        deadline = time.monotonic() + played + 30.0
        while time.monotonic() < deadline and not settled():
            time.sleep(0.2)
        assert settled(), graph.output()
        assert graph.stop() == 0, graph.output()
    assert all(list(m.name) == list(RM75_ARM_JOINTS) for m in arm_commands.messages())
    assert all(list(m.name) == list(XHAND_JOINTS) for m in hand_commands.messages())
    # The hand moved: a press closes some fingers away from the open hand it starts with.
    hand = np.array([m.position for m in hand_commands.messages()])
    assert np.ptp(hand, axis=0).max() > 0.2


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_wrist_pose_policy_drives_the_rm75_xhand_through_ik(tmp_path: Path) -> None:
    """Method A's action space on the robot: the policy says where the wrist and fingers should
    be (base frame); policy_node gives it the wrist pose of the measured joints as its state and
    turns its chunks into joint chunks by IK; the arm puts the wrist there."""
    import os

    from fixture_packages import install_plugin_fixture
    from ros_helpers import RosProbe, ros_env, start_process, wait_for

    from human_video_policy.hands.rotations import matrix_to_rot6d
    from human_video_policy.kinematics.robots import rm75_xhand_forward_kinematics
    from human_video_policy.robots.rm75 import HAND_ROOT_FRAME
    from human_video_policy.robots.spec import get_robot

    site = install_plugin_fixture(tmp_path / "plugin")
    home = get_robot("rm75_xhand").home()
    goal = home[:7] + np.array([0.25, -0.2, 0.15, 0.2, -0.15, 0.2, 0.1])
    fk = rm75_xhand_forward_kinematics()
    target = fk.frame_pose(dict(zip(RM75_ARM_JOINTS, goal, strict=True)), HAND_ROOT_FRAME)
    limits = get_robot("xhand").limits()
    fingers = np.clip(0.4, limits.lower, limits.upper)
    pose = np.concatenate([fingers, matrix_to_rot6d(target[:3, :3]), target[:3, 3]])
    base = ros_env()
    env = {**base, "PYTHONPATH": f"{site}{os.pathsep}{base['PYTHONPATH']}"}
    args = json.dumps({"pose": [round(float(v), 6) for v in pose]})
    command = [
        sys.executable, "-m", "human_video_policy.cli.main", "launch", "policy_rm75_xhand",
        "policy:=wrist_hold", f"policy_args:={args}",
    ]  # fmt: skip
    with RosProbe("probe_wrist_graph") as probe, start_process(command, env=env) as graph:
        arm_states = probe.record("/arm/joint_states", JointState)
        hand_states = probe.record("/hand/joint_states", JointState)

        def wrist_error() -> float:
            if not arm_states.messages():
                return float("inf")
            arm = arm_states.messages()[-1]
            values = dict(zip(arm.name, arm.position, strict=True))
            reached = fk.frame_pose(values, HAND_ROOT_FRAME)
            return float(np.linalg.norm(reached[:3, 3] - target[:3, 3]))

        assert wait_for(lambda: wrist_error() < 0.01, 90.0), (wrist_error(), graph.output())
        hand = hand_states.messages()[-1]
        assert np.abs(np.asarray(hand.position) - fingers).max() < 0.05
        assert graph.stop() == 0, graph.output()


@pytest.mark.ros
def test_a_wrist_pose_policy_on_a_robot_without_the_space_is_refused(tmp_path: Path) -> None:
    import os

    from fixture_packages import install_plugin_fixture
    from ros_helpers import node_command, ros_env, start_process

    site = install_plugin_fixture(tmp_path / "plugin")
    base = ros_env()
    env = {**base, "PYTHONPATH": f"{site}{os.pathsep}{base['PYTHONPATH']}"}
    args = json.dumps({"pose": [0.0] * 12 + [1, 0, 0, 0, 1, 0] + [0.3, 0.0, 0.3]})
    command = node_command(
        "policy_node", "-p", "policy:=wrist_hold", "-p", f"policy_args:='{args}'",
        "-p", "robot:=widowx",
    )  # fmt: skip
    with start_process(command, env=env) as node:
        assert node.wait(timeout=60) == 2, node.output()
        assert "'xhand_wrist_method_a' is not one robot 'widowx' acts in" in node.output()
