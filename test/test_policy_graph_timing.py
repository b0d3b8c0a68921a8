"""The 10 Hz inference stack as it runs on a lab machine, over DDS, for more than 30 s per
mode: the sim_widowx graph (sim_node + policy_node + executor_node) with the committed DiT run
at 100 DDIM steps, so that one chunk takes longer than one 20 ms control period on this
machine (~50 ms; the default 10 steps take ~6 ms). Checked on the commands the executor sent
(runtime/smoothness.py), the same seeds in each mode:

- control keeps its period while inference runs: command period p99 within 5 ms of 20 ms;
- with real-time chunking the jump at chunk boundaries is at most a third of execute-k-of-N's
  (k of N hands over without blending: its jump is the one RTC has to remove);
- success is not lower than synchronous execution of the same policy on the same seeds (the
  in-process closed loop, inference inside the control tick, sim/evaluate.py).

Command periods are measured on the commands' header stamps: the graph runs on sim time (the
sim's /clock), as every sim graph of the project does.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import PolicyStatus
from ros_helpers import RosProbe, diagnostic_values, start_process
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, UInt32

from human_video_policy.runtime.smoothness import command_smoothness

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(400)]

EPISODES = 12  # > 30 s of graph per mode at the default policy's ~2.1 s per episode
SEED = 1_000_000
STEPS = 100  # DDIM steps: one chunk > one control period here
NOMINAL_MS = 20.0


def _run_graph(mode: str) -> dict:
    args = [
        f"episodes:={EPISODES}",
        f"episode_seed:={SEED}",
        f'policy_args:={{"inference_steps": {STEPS}}}',
        "execution_provider:=cpu",
    ]
    if mode == "rtc":
        args += ["executor_mode:=rtc", "real_time_chunking:=true"]
    launch = [sys.executable, "-m", "human_video_policy.cli.main", "launch", "sim_widowx"]
    with RosProbe(f"probe_timing_{mode}") as probe, start_process([*launch, *args]) as graph:
        commands = probe.record("/arm/joint_commands", JointState)
        starts = probe.record("/executor/chunk_start", Time)
        chunks = probe.record("/policy/action_chunk", ActionChunkMsg)
        statuses = probe.record("/policy/status", PolicyStatus)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        outcomes = probe.record("/episode/success", Bool)
        episodes = probe.record("/episode/start", UInt32)
        began = time.monotonic()
        assert graph.wait(timeout=300) == 0, graph.output()
        wall_s = time.monotonic() - began
    assert len(outcomes) == EPISODES, graph.output()
    successes = sum(m.data for m in outcomes.messages())
    # One command stream per episode: a reset moves the arm home, which is no handover.
    # Episodes are told apart by when their /episode/start arrived at the probe.
    episode_starts = [t for t, _ in episodes.items()]
    start_keys = {(s.sec, s.nanosec) for s in starts.messages()}
    per_episode: list[list] = [[] for _ in episode_starts]
    for arrived, m in commands.items():
        index = int(np.searchsorted(episode_starts, arrived)) - 1
        if index >= 0:
            per_episode[index].append(m)
    periods, jumps, jerks = [], [], []
    for stream in per_episode:
        stream = stream[3:]  # the executor waits for the new episode's first state
        stamps = np.array([m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in stream])
        keep = np.concatenate([[True], np.diff(stamps) > 0])  # paused clock: first one sent
        stream = [m for m, k in zip(stream, keep, strict=True) if k]
        t = stamps[keep]
        if t.size < 20:
            continue
        q = np.stack([np.asarray(m.position) for m in stream])
        keys = [(m.header.stamp.sec, m.header.stamp.nanosec) for m in stream]
        boundaries = [i for i, k in enumerate(keys) if k in start_keys]
        report = command_smoothness(t - t[0], q, boundaries, NOMINAL_MS / 1e3)
        periods.append(np.diff(t) * 1e3)
        jumps.append(report.boundary_jump)
        jerks.append(report.jerk_rms)
    inference = [float(diagnostic_values(diagnostics, "policy").get("inference_ms_median", "nan"))]
    return {
        "successes": successes,
        "wall_s": wall_s,
        "period_p99_ms": float(np.percentile(np.concatenate(periods), 99)),
        "boundary_jump": float(np.nanmean(jumps)),
        "jerk_rms": float(np.mean(jerks)),
        "chunks": len(chunks),
        "inference_ms_median": inference[0],
        "provider": statuses.messages()[-1].execution_provider if len(statuses) else "",
    }


def _synchronous_successes() -> int:
    from human_video_policy.resources import default_policy_path
    from human_video_policy.runtime.load_policy import load_policy
    from human_video_policy.sim.evaluate import EvaluationConfig, run_episode
    from human_video_policy.sim.widowx_world import WidowXWorld

    policy = load_policy(default_policy_path(), inference_steps=STEPS)
    config = EvaluationConfig(episodes=EPISODES, progress=False)
    with WidowXWorld(config.world) as world:
        return sum(
            run_episode(world, policy, SEED + i, config, None, 0, []).success
            for i in range(EPISODES)
        )


def test_control_keeps_its_period_and_rtc_removes_the_handover_jump() -> None:
    results = {mode: _run_graph(mode) for mode in ("k_of_n", "rtc")}
    synchronous = _synchronous_successes()
    print("\n" + json.dumps({"synchronous_successes": synchronous, **results}, indent=1))
    for mode, r in results.items():
        assert r["wall_s"] >= 30.0, (mode, r)
        assert r["inference_ms_median"] > NOMINAL_MS, (mode, r)  # a chunk outlasts a period
        assert abs(r["period_p99_ms"] - NOMINAL_MS) <= 5.0, (mode, r)
        assert r["successes"] >= synchronous, (mode, r, synchronous)
    assert results["k_of_n"]["boundary_jump"] > 2e-3, results  # there is a jump to remove
    assert results["rtc"]["boundary_jump"] <= results["k_of_n"]["boundary_jump"] / 3, results
