"""Swappable runtime policies (runtime/policy_plugins.py): a tiny external package
(test/plugin_fixture) is installed with pip into a folder of its own and run by policy_node
through its entry point, selected by parameter; a broken plugin is named in the error; the
built-in replay policy plays a dataset episode back."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from fixture_packages import install_plugin_fixture

from human_video_policy.errors import ConfigError
from human_video_policy.robots.widowx import HOME_POSITION, WIDOWX_STATE_JOINTS
from human_video_policy.runtime.policy_plugins import (
    ReplayPolicy,
    make_runtime_policy,
    parse_policy_args,
    runtime_policy_names,
)

POSE = [0.1, -0.3, 0.35, 0.0, 1.2, 0.05, 0.03]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin_fixture(tmp_path_factory.mktemp("plugin"))


def test_an_installed_plugin_is_found_by_name_and_a_broken_one_is_named(
    installed: Path, monkeypatch
) -> None:
    monkeypatch.syspath_prepend(str(installed))
    assert {"exported", "replay", "hold_pose", "broken_plugin"} <= set(runtime_policy_names())
    policy = make_runtime_policy("hold_pose", **parse_policy_args(json.dumps({"pose": POSE})))
    chunk = policy.predict_chunk(None, np.zeros(8, np.float32), 1.0)
    assert np.allclose(chunk.actions, POSE) and chunk.observation_stamp == 1.0
    with pytest.raises(ConfigError, match=r"broken_plugin.*cannot be loaded"):
        make_runtime_policy("broken_plugin")
    with pytest.raises(ConfigError, match="bad policy_args"):
        make_runtime_policy("hold_pose", speed=3)
    with pytest.raises(ConfigError, match="unknown: choose one of"):
        make_runtime_policy("no_such_policy")
    with pytest.raises(ConfigError, match="JSON object"):
        parse_policy_args("[1, 2]")
    with pytest.raises(ConfigError, match="runtime policy interface"):
        from human_video_policy.runtime import policy_plugins

        monkeypatch.setitem(policy_plugins.BUILT_IN, "not_a_policy", lambda: object())
        make_runtime_policy("not_a_policy")


def test_replay_plays_a_dataset_episode_at_its_rate(tmp_path: Path) -> None:
    from human_video_policy.training.sim_episodes import record_task_dataset

    record_task_dataset(tmp_path / "ds", "press_button", 1, seed=3, image_size=(32, 32))
    policy = make_runtime_policy("replay", dataset=str(tmp_path / "ds"), episode=0)
    assert isinstance(policy, ReplayPolicy) and not policy.needs_image
    recorded = policy.actions
    first = policy.predict_chunk(None, np.zeros(8, np.float32), 5.0)
    assert np.allclose(first.actions, recorded[1:11])  # row i: the target 0.1 (i + 1) s later
    later = policy.predict_chunk(None, np.zeros(8, np.float32), 5.5)
    assert np.allclose(later.actions, recorded[6:16])
    end = policy.predict_chunk(None, np.zeros(8, np.float32), 500.0)
    assert np.allclose(end.actions, recorded[-1])  # holds the last row
    policy.reset()
    assert np.allclose(policy.predict_chunk(None, None, 9.0).actions, recorded[1:11])
    for bad in ({"episode": 3}, {"episode": True}, {"episode": 0, "horizon": 0}):
        with pytest.raises(ConfigError, match=r"episode|horizon"):
            make_runtime_policy("replay", dataset=str(tmp_path / "ds"), **bad)


@pytest.mark.ros
@pytest.mark.timeout(180)
def test_policy_node_runs_the_plugin_selected_by_parameter(installed: Path) -> None:
    from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
    from ros_helpers import RosProbe, node_command, ros_env, start_process
    from sensor_msgs.msg import JointState

    from human_video_policy.nodes.conversions import (
        action_chunk_from_msg,
        numpy_to_joint_state,
        seconds_to_stamp,
    )

    base = ros_env()
    env = {**base, "PYTHONPATH": f"{installed}{os.pathsep}{base['PYTHONPATH']}"}
    args = json.dumps({"pose": POSE})
    # a YAML single-quoted string: rcl would read a bare {...} as a mapping
    command = node_command("policy_node", "-p", "policy:=hold_pose", "-p", f"policy_args:='{args}'")
    with RosProbe("probe_plugin") as probe, start_process(command, env=env) as node:
        chunks = probe.record("/policy/action_chunk", ActionChunkMsg)
        states = probe.publisher("/arm/joint_states", JointState)
        q = np.concatenate([HOME_POSITION, [-HOME_POSITION[-1]]])
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and len(chunks) < 5:
            stamp = seconds_to_stamp(time.time())
            states.publish(numpy_to_joint_state(WIDOWX_STATE_JOINTS, q, stamp))
            time.sleep(0.05)
        assert len(chunks) >= 5, node.output()
        assert node.stop() == 0, node.output()
    chunk = action_chunk_from_msg(chunks.messages()[-1])
    assert np.allclose(chunk.actions, POSE)
    broken = node_command("policy_node", "-p", "policy:=broken_plugin")
    result = subprocess.run(broken, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "broken_plugin" in result.stderr and "cannot be loaded" in result.stderr
