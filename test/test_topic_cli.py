"""`hvp topic` (list / hz / echo) against live publishers in the test process."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from ros_helpers import RosProbe, ros_env
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool

from human_video_policy.bringup.topic_tools import format_message, import_message_type
from human_video_policy.nodes.conversions import numpy_to_joint_state, seconds_to_stamp
from human_video_policy.nodes.qos import LATCHED


def test_format_message_nests_and_abbreviates() -> None:
    msg = DiagnosticArray(
        status=[
            DiagnosticStatus(level=b"\x01", name="policy", values=[KeyValue(key="k", value="")])
        ]
    )
    assert format_message(msg)[5:] == [
        "status:",
        "- level: 1",
        "  name: policy",
        "  message: ''",
        "  hardware_id: ''",
        "  values:",
        "  - key: k",
        "    value: ''",
    ]
    image = Image(height=10, width=10, encoding="rgb8", data=bytes(300))
    (line,) = [x for x in format_message(image) if x.startswith("data:")]
    assert line.endswith(", ...]  # 300 values")
    (full,) = [x for x in format_message(image, max_items=None) if x.startswith("data:")]
    assert full == "data: [" + ", ".join(["0"] * 300) + "]"
    assert import_message_type("sensor_msgs/msg/JointState") is JointState
    with pytest.raises(ValueError, match="package/msg/Type"):
        import_message_type("JointState")


def _hvp(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "human_video_policy.cli.main", *args],
        env=ros_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.ros
def test_topic_list_hz_and_echo() -> None:
    with RosProbe("probe_topic_cli") as probe:
        states = probe.publisher("/cli_test/joint_states", JointState)
        estop = probe.publisher("/cli_test/estop", Bool, LATCHED)
        estop.publish(Bool(data=True))  # before anyone listens: latched
        stop = threading.Event()

        def publish() -> None:
            while not stop.is_set():
                msg = numpy_to_joint_state(
                    ["a", "b"], np.array([1.0, 2.0]), seconds_to_stamp(time.time())
                )
                states.publish(msg)
                time.sleep(0.02)

        thread = threading.Thread(target=publish, daemon=True)
        thread.start()
        try:
            listing = _hvp("topic", "list")
            hz = _hvp("topic", "hz", "/cli_test/joint_states", "--duration", "3")
            echo = _hvp("topic", "echo", "/cli_test/estop", "--count", "1")
            missing = _hvp("topic", "echo", "/cli_test/nothing", "--wait", "1")
        finally:
            stop.set()
            thread.join()
    assert "/cli_test/joint_states [sensor_msgs/msg/JointState]" in listing.stdout
    assert hz.returncode == 0, hz.stderr
    rates = [float(r) for r in re.findall(r"average rate: ([\d.]+)", hz.stdout)]
    assert rates and 35.0 < rates[-1] < 60.0, hz.stdout  # ~50 Hz, sleep-paced
    assert echo.returncode == 0 and echo.stdout.splitlines()[:2] == ["data: true", "---"]
    assert missing.returncode == 1 and "/cli_test/nothing not found" in missing.stderr
