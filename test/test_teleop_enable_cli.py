"""``hvp teleop enable --duration S`` holds the deadman for S seconds as a real subscriber sees it
over DDS (issue 14 item 10: it held 5.9 s of 8, start-up and discovery counted in the time)."""

from __future__ import annotations

import sys

import numpy as np
from ros_helpers import RosProbe, start_process, wait_for
from std_msgs.msg import Bool

from human_video_policy.nodes.qos import RELIABLE

COMMAND = [sys.executable, "-m", "human_video_policy.cli.teleop_cmd", "enable"]
DEADMAN_TIMEOUT_S = 0.25  # config/teleop.params.yaml: what one true holds at the subscriber


def test_duration_is_the_hold_a_subscriber_sees() -> None:
    duration = 3.0
    with RosProbe("probe_duration") as probe:
        enable = probe.record("/teleop/enable", Bool, RELIABLE)
        with start_process([*COMMAND, "--duration", str(duration)]) as cli:
            assert cli.wait(60.0) == 0, cli.output()
            output = cli.output()
        assert wait_for(lambda: any(not m.data for m in enable.messages()), 2.0), output
    items = enable.items()
    trues = [t for t, m in items if m.data]
    release = next(t for t, m in items if not m.data)
    held = release - trues[0]
    # a subscriber holds the deadman from the first true to the false
    print(f"held {held:.3f} s of {duration:g}")
    assert abs(held - duration) < 0.15, f"held {held:.2f} s of {duration:g}"
    assert np.diff(trues).max() < DEADMAN_TIMEOUT_S, "a gap long enough to drop the deadman"
    assert "deadman released after 3 s" in output, output


def test_duration_without_a_subscriber_exits_1_naming_why() -> None:
    with start_process([*COMMAND, "--duration", "1", "--wait", "1"]) as cli:
        assert cli.wait(60.0) == 1, cli.output()
        assert "no subscriber of /teleop/enable within 1 s" in cli.output(), cli.output()
