"""``hvp policy stats --live`` as a real process, fed over DDS by the test: a 50 Hz command
stream with a known jump at every 5th command and its handover marks, chunks with known
latencies, a PolicyStatus naming the provider, and a few bad commands it must skip."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import PolicyStatus
from ros_helpers import RosProbe, start_process
from sensor_msgs.msg import JointState

from human_video_policy.cli.main import main
from human_video_policy.nodes.qos import RELIABLE
from human_video_policy.runtime.smoothness import command_smoothness

pytestmark = pytest.mark.ros

JOINTS = ("a", "b", "c")
START_NS = 1_000 * 1_000_000_000
PERIOD_NS = 20_000_000  # 50 Hz of stamps, whatever the wall clock does
VELOCITY_STEP = 0.002  # rad per command on every joint
JUMP = 0.05  # rad added to joint 0 at every 5th command: each handover
LATENCIES_MS = (30.0, 40.0, 50.0, 60.0, 70.0)  # cycled over the chunks: median 50
PROVIDER = "TestExecutionProvider"


def _hvp(*args: str) -> list[str]:
    return [sys.executable, "-m", "human_video_policy.cli.main", *args]


def _time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _command(i: int) -> tuple[int, np.ndarray]:
    """The i-th command: a ramp plus JUMP at every handover so far."""
    q = np.full(len(JOINTS), VELOCITY_STEP * i)
    q[0] += JUMP * (i // 5)
    return START_NS + i * PERIOD_NS, q


def _joint_state(stamp_ns: int, q: np.ndarray) -> JointState:
    msg = JointState()
    msg.header.stamp = _time(stamp_ns)
    msg.name = list(JOINTS[: len(q)]) + [f"x{k}" for k in range(len(q) - len(JOINTS))]
    msg.position = [float(v) for v in q]
    return msg


def test_live_stats_measure_what_was_published(tmp_path: Path) -> None:
    out = tmp_path / "live.json"
    command = _hvp("policy", "stats", "--live", "--duration", "4", "--interval", "0.5")
    with RosProbe("probe_stats") as probe, start_process([*command, "--json", str(out)]) as hvp:
        commands = probe.publisher("/arm/joint_commands", JointState, RELIABLE)
        starts = probe.publisher("/executor/chunk_start", Time, RELIABLE)
        chunks = probe.publisher("/policy/action_chunk", ActionChunkMsg, RELIABLE)
        status = probe.publisher("/policy/status", PolicyStatus, RELIABLE)
        for publisher in (commands, starts, chunks, status):
            assert probe.wait_for_subscribers(publisher, timeout=30.0), hvp.output()
        time.sleep(0.3)  # the reverse direction of discovery
        published: list[tuple[int, np.ndarray]] = []
        i = 0
        next_time = time.monotonic()
        deadline = next_time + 20.0
        while hvp.popen.poll() is None and time.monotonic() < deadline:
            stamp, q = _command(i)
            is_start = i % 5 == 0 and i > 0
            if is_start and (i // 5) % 2:  # the mark before its command, or after it
                starts.publish(_time(stamp))
            commands.publish(_joint_state(stamp, q))
            published.append((stamp, q))
            if is_start and not (i // 5) % 2:
                starts.publish(_time(stamp))
            if i % 5 == 0:
                chunk = ActionChunkMsg()
                latency_ms = LATENCIES_MS[(i // 5) % len(LATENCIES_MS)]
                chunk.observation_stamp = _time(stamp)
                chunk.header.stamp = _time(stamp + int(latency_ms * 1e6))
                chunks.publish(chunk)
                status.publish(
                    PolicyStatus(
                        state=PolicyStatus.STATE_RUNNING,
                        message="running",
                        execution_provider=PROVIDER,
                        chunk_index=i // 5,
                    )
                )
            if i % 37 == 11:  # bad ones between two good ones: skipped, counted
                odd = stamp + PERIOD_NS // 2
                commands.publish(_joint_state(odd, np.array([0.0, np.nan, 0.0])))
                commands.publish(_joint_state(odd, np.zeros(len(JOINTS) + 1)))
            i += 1
            next_time += PERIOD_NS * 1e-9
            time.sleep(max(0.0, next_time - time.monotonic()))
        assert hvp.wait(timeout=20.0) == 0, hvp.output()
        output = hvp.output()
    (live,) = json.loads(out.read_text()).values()
    t = np.array([s - START_NS for s, _ in published]) * 1e-9
    q = np.stack([q for _, q in published])
    expected = command_smoothness(t, q, range(5, len(published), 5), 0.02, LATENCIES_MS)
    assert live["commands"] >= 100, output  # ~4 s at 50 Hz
    assert live["boundaries"] >= live["commands"] // 5 - 3, live
    assert live["boundary_jump"] == pytest.approx(expected.boundary_jump, abs=0.005)
    assert live["boundary_jump"] == pytest.approx(JUMP, abs=0.005)
    assert live["within_step"] == pytest.approx(expected.within_step, abs=0.001)
    assert live["boundary_step"] == pytest.approx(expected.boundary_step, abs=0.005)
    assert live["latency_median_ms"] == pytest.approx(expected.latency_median_ms, abs=10.0)
    assert live["period_median_ms"] == pytest.approx(20.0, abs=1e-6)
    assert live["provider"] == PROVIDER and live["policy_state"] == "RUNNING"
    assert live["chunk_index"] >= live["boundaries"] // 2
    assert live["skipped_commands"] >= 2 and live["skipped_commands"] % 2 == 0
    assert f"provider {PROVIDER}" in output and "jump at a boundary" in output
    assert "final" in output


def test_live_stats_without_a_publisher_exit_2_naming_the_topic() -> None:
    command = _hvp("policy", "stats", "--live", "--duration", "1", "--commands", "/nobody/here")
    with start_process(command) as hvp:
        assert hvp.wait(timeout=30.0) == 2, hvp.output()
        assert "no command arrived on /nobody/here" in hvp.output()


def test_live_stats_stop_on_ctrl_c_with_exit_0_once_measured(tmp_path: Path) -> None:
    """Ctrl-C ends a run without --duration; with commands it reports and exits 0."""
    out = tmp_path / "live.json"
    command = _hvp("policy", "stats", "--live", "--json", str(out))
    with RosProbe("probe_stats_sigint") as probe, start_process(command) as hvp:
        commands = probe.publisher("/arm/joint_commands", JointState, RELIABLE)
        assert probe.wait_for_subscribers(commands, timeout=30.0), hvp.output()
        time.sleep(0.3)
        for i in range(30):
            commands.publish(_joint_state(*_command(i)))
            time.sleep(0.01)
        time.sleep(0.5)
        assert hvp.stop(signal.SIGINT) == 0, hvp.output()
    (live,) = json.loads(out.read_text()).values()
    assert live["commands"] >= 10 and live["provider"] is None


def test_bags_and_live_are_exclusive(capsys) -> None:
    for argv in (["policy", "stats"], ["policy", "stats", "--live", "some_bag"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "usage: hvp policy stats" in err and "--live" in err, err
    with pytest.raises(SystemExit):
        main(["policy", "stats", "--live", "--interval", "0"])
    assert "--interval 0.0 is invalid" in capsys.readouterr().err


def test_the_live_stats_skip_bad_commands_and_follow_a_changed_joint_count(capsys) -> None:
    """No DDS: the message handling alone. A NaN or odd-sized command is skipped and counted;
    RELOCK_AFTER commands of a new joint count in a row restart the window with that count
    (the first command seen may have been the odd one)."""
    from human_video_policy.bringup.policy_stats_live import RELOCK_AFTER, LiveStats
    from human_video_policy.runtime.smoothness import SmoothnessMonitor

    stats = LiveStats(SmoothnessMonitor(window=50))
    stats.on_command(_joint_state(START_NS, np.zeros(len(JOINTS) + 1)))  # an odd first one
    for i in range(1, RELOCK_AFTER):
        stats.on_command(_joint_state(*_command(i)))
    assert stats.skipped_commands == RELOCK_AFTER - 1 and len(stats.monitor) == 1
    stats.on_command(_joint_state(*_command(RELOCK_AFTER)))
    assert len(stats.monitor) == 1 and "now have 3 joints" in capsys.readouterr().err
    stats.on_command(_joint_state(START_NS + 99 * PERIOD_NS, np.array([0.0, np.nan, 0.0])))
    for i in range(RELOCK_AFTER + 1, RELOCK_AFTER + 12):
        stats.on_command(_joint_state(*_command(i)))
    assert len(stats.monitor) == 12 and stats.skipped_commands == RELOCK_AFTER
    assert stats.monitor.report() is not None and stats.provider is None
