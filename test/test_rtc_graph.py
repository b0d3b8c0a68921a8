"""Real-time chunking over DDS: the sim_task_policy graph with the committed DiT (DDIM + CFG on
ONNX Runtime), ``real_time_chunking:=true`` and the executor in ``mode:=rtc``. Checked from
outside on the chunks the policy node published: each one continues the one before it over the
rows that execute while it is computed (the guidance froze them), which independently sampled
chunks do not; the executor marks its handovers and reports smoothness on /diagnostics."""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from ros_helpers import RosProbe, diagnostic_values, start_process, wait_for

from human_video_policy.nodes.conversions import action_chunk_from_msg

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(200)]


def _continuity(chunks: list) -> list[float]:
    """For consecutive chunks: the largest joint difference between the new chunk's first row
    and the previous chunk at the same time (interpolated between its rows)."""
    out = []
    for prev, new in itertools.pairwise(chunks):
        t = new.observation_stamp + new.dt
        times = prev.observation_stamp + prev.dt * np.arange(1, prev.horizon + 1)
        if not times[0] <= t <= times[-1]:
            continue
        then = np.array([np.interp(t, times, prev.actions[:, j]) for j in range(prev.dims)])
        out.append(float(np.abs(new.actions[0] - then).max()))
    return out


@pytest.mark.parametrize("rtc", [False, True], ids=["independent", "rtc"])
def test_rtc_chunks_continue_each_other_over_dds(rtc: bool) -> None:
    args = ["task:=push", "episodes:=1", "episode_seed:=3", "episode_timeout_s:=5.0"]
    if rtc:
        args += ["executor_mode:=rtc", "real_time_chunking:=true"]
    launch = [sys.executable, "-m", "human_video_policy.cli.main", "launch", "sim_task_policy"]
    with RosProbe("probe_rtc") as probe, start_process([*launch, *args]) as graph:
        chunks = probe.record("/policy/action_chunk", ActionChunkMsg)
        starts = probe.record("/executor/chunk_start", Time)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        assert wait_for(lambda: len(chunks) >= 25, 120.0), graph.output()
        assert wait_for(
            lambda: "smoothness_jerk_rms" in diagnostic_values(diagnostics, "executor"), 30.0
        )
        policy = diagnostic_values(diagnostics, "policy")
        executor = diagnostic_values(diagnostics, "executor")
        graph.stop()
    decoded = [action_chunk_from_msg(m) for m in chunks.messages()]
    gaps = _continuity(decoded)
    assert len(gaps) >= 15, len(gaps)
    assert policy["real_time_chunking"] == str(rtc).lower() and executor["mode"] == (
        "rtc" if rtc else "k_of_n"
    )
    assert len(starts) >= 10
    median = float(np.median(gaps))
    print(f"\nrtc={rtc}: first-row gap to the previous chunk, median {median:.4f} rad")
    if rtc:
        # the first row runs while the chunk is computed: frozen to the previous chunk's row
        assert median < 1e-3, gaps
    else:
        assert median > 2e-3, gaps  # independent samples disagree: the bound above means it
