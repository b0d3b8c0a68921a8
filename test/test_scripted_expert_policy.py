"""The scripted expert as a runtime policy (sim/scripted_expert_policy.py): fed snapshots of a
world it does not own, it plans exactly what the expert inside that world plans; through the
real graph (sim_node -> /sim/state -> policy_node -> executor) it succeeds on the task."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from human_video_policy.errors import InputError
from human_video_policy.runtime.policy_plugins import make_runtime_policy, runtime_policy_names
from human_video_policy.sim.scripted_expert_policy import snapshot
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig


def test_the_shadow_expert_plans_what_the_expert_in_the_world_plans() -> None:
    assert "scripted_expert" in runtime_policy_names()
    policy = make_runtime_policy("scripted_expert", task="pick_place")
    policy.warmup()
    with TaskWorld(TaskWorldConfig(task="pick_place", image_width=8, image_height=8)) as world:
        world.reset(1_000_003, "new_object")
        expert = world.task.expert(world)
        start = world.joint_positions().copy()
        for _ in range(40):  # both asked every 0.1 s, as the graph asks at 10 Hz
            q = world.joint_positions()
            mine = expert.predict_chunk(None, q, world.time)
            shadow = policy.predict_chunk(
                None, q, world.time, sim_state=snapshot(world, "pick_place", "widowx", "new_object")
            )
            assert shadow.names == mine.names
            np.testing.assert_allclose(shadow.actions, mine.actions, atol=1e-5)
            world.set_joint_command(mine.actions[0])
            for _ in range(50):
                world.step(0.002)
        moved = np.abs(world.joint_positions() - start).max()
        assert moved > 0.05  # the comparison covered motion, not a robot at rest
        state = snapshot(world, "pick_place", "widowx", "new_object")
        with pytest.raises(InputError, match="task 'push'"):
            policy.predict_chunk(None, q, 0.0, sim_state=dataclasses.replace(state, task="push"))
        with pytest.raises(InputError, match="qpos has 3 values"):
            policy.predict_chunk(
                None, q, 0.0, sim_state=dataclasses.replace(state, qpos=np.zeros(3))
            )
        bad = state.qvel.copy()
        bad[0] = np.nan
        with pytest.raises(InputError, match="qvel holds NaN"):
            policy.predict_chunk(None, q, 0.0, sim_state=dataclasses.replace(state, qvel=bad))
        with pytest.raises(InputError, match="needs the sim's /sim/state"):
            policy.predict_chunk(None, q, 0.0)


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_policy_node_runs_the_scripted_expert_through_the_graph(tmp_path: Path) -> None:
    from ros_helpers import start_process

    results = tmp_path / "results.json"
    command = [
        sys.executable, "-m", "human_video_policy.cli.main", "launch", "sim_task_policy",
        "task:=press_button", "episodes:=2", "episode_seed:=1000000", "policy:=scripted_expert",
        'policy_args:={"task": "press_button"}', f"results_path:={results}",
    ]  # fmt: skip
    with start_process(command) as graph:
        assert graph.wait(timeout=240) == 0, graph.output()
    outcomes = json.loads(results.read_text())
    assert [o["success"] for o in outcomes] == [True, True], outcomes
