"""Fault injection: killing ``hvp record`` or ``hvp launch`` leaves no node running.

Why: ``hvp record`` killed by SIGKILL or SIGTERM left its recorder node (a child process)
recording for as long as anyone let it. Now the node gets SIGTERM when its parent dies
(parent-death signal) and SIGTERM to ``hvp record`` is passed on, so the node stops and closes
its bag cleanly. Real processes, real DDS, real MCAP bags read back.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml
from ros_helpers import RosProbe, start_process, wait_for
from sensor_msgs.msg import JointState

from human_video_policy.data import BagReader
from human_video_policy.data.bag_repair import read_custom_data
from human_video_policy.nodes.qos import RELIABLE

pytestmark = pytest.mark.ros

JOINTS = "/arm/joint_states"
STOP_WITHIN_S = 10.0


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _publish(probe: RosProbe, publisher, count: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        msg = JointState()
        msg.header.stamp = probe.node.get_clock().now().to_msg()
        msg.name = ["waist"]
        msg.position = [float(i)]
        publisher.publish(msg)
        time.sleep(0.01)


def _check_bag(bag: Path, sent: int) -> int:
    """The bag reads without repair, holds the messages in order, and was closed cleanly."""
    with BagReader(bag) as reader:
        got = [round(m.position[0]) for _, _, m in reader.messages([JOINTS])]
    assert got == list(range(len(got))), "messages lost in the middle or reordered"
    assert len(got) >= sent - 5, f"{len(got)} of {sent} messages in the bag"
    reason = read_custom_data(bag)["hvp.end_reason"]
    assert reason in ("stopped", "shutdown"), reason  # closed by the node, not "recording"
    return len(got)


def _stopped_within(pid: int, timeout: float) -> float:
    start = time.monotonic()
    assert wait_for(lambda: not _alive(pid), timeout), f"node {pid} still running"
    return time.monotonic() - start


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_hvp_record_stops_its_recorder_and_the_bag_reads(
    tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "rec"
    command = [
        sys.executable, "-m", "human_video_policy.cli.main", "record",
        "-o", str(out), "--session", "s", "--topics", JOINTS,
    ]  # fmt: skip
    with RosProbe("parent_death") as probe, start_process(command) as hvp:
        joints = probe.publisher(JOINTS, JointState, RELIABLE)
        assert probe.wait_for_subscribers(joints, timeout=20), hvp.output()
        assert wait_for(lambda: "episode 1 started" in hvp.output(), 20), hvp.output()
        nodes = _children(hvp.pid)
        assert len(nodes) == 1, (nodes, hvp.output())
        time.sleep(0.3)
        _publish(probe, joints, 120)
        time.sleep(0.3)  # delivered to the recorder's queue
        hvp.send_signal(sig)
        code = hvp.wait(timeout=30)
        took = _stopped_within(nodes[0], STOP_WITHIN_S)
        output = hvp.output()
    if sig == signal.SIGTERM:
        assert code == 0, output  # passed on to the node, which ended cleanly
    else:
        assert code == -signal.SIGKILL
    kept = _check_bag(out / "s" / "episode_000001", 120)
    print(f"hvp record {sig.name}: recorder ended {took:.2f} s later, {kept} of 120 kept")


def test_killing_hvp_launch_stops_its_nodes_and_the_bag_reads(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    graph = tmp_path / "rec_graph.yaml"
    graph.write_text(
        yaml.safe_dump(
            {
                "graph": "rec_graph",
                "description": "one recorder",
                "nodes": [
                    {
                        "name": "rec",
                        "executable": "recorder_node",
                        "parameters": {
                            "output_dir": str(out),
                            "session": "s",
                            "topics": [JOINTS],
                            "fsync": False,
                        },
                    }
                ],
            },
            sort_keys=False,
        )
    )
    command = [sys.executable, "-m", "human_video_policy.cli.launch_cmd", str(graph)]
    with RosProbe("parent_death_launch") as probe, start_process(command) as launcher:
        joints = probe.publisher(JOINTS, JointState, RELIABLE)
        assert probe.wait_for_subscribers(joints, timeout=20), launcher.output()
        assert wait_for(lambda: "episode 1 started" in launcher.output(), 20), launcher.output()
        pid = int(re.search(r"started rec \(pid (\d+)\)", launcher.output()).group(1))
        time.sleep(0.3)
        _publish(probe, joints, 120)
        time.sleep(0.3)
        launcher.send_signal(signal.SIGKILL)
        assert launcher.wait(timeout=30) == -signal.SIGKILL
        took = _stopped_within(pid, STOP_WITHIN_S)
    kept = _check_bag(out / "s" / "episode_000001", 120)
    print(f"hvp launch SIGKILL: recorder ended {took:.2f} s later, {kept} of 120 kept")
