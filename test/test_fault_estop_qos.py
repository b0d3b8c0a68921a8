"""Fault injection: /safety/estop from publishers of every common QoS, over real DDS.

Before the fix the controllers subscribed transient-local only, so a volatile publisher (what
``ros2 topic pub`` and most nodes use) never connected: the arm moved on after five ``true``
messages. Every publisher below must stop the arm; a latched e-stop must still reach a
controller started after it; a publisher that cannot connect must show on /diagnostics.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from ros_helpers import (
    PROJECT_ROOT,
    RosProbe,
    diagnostic_values,
    node_command,
    ros_env,
    start_process,
    wait_for,
)
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger
from test_controller_nodes import _Commander, _latest

from human_video_policy.robots.widowx import HOME_POSITION

pytestmark = pytest.mark.ros

NODE = "arm_controller"
PARAMS = PROJECT_ROOT / "config" / "controllers.params.yaml"


def _qos(reliability: ReliabilityPolicy, durability: DurabilityPolicy) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=10, reliability=reliability, durability=durability
    )


PUBLISHER_QOS = {
    "reliable_volatile (ros2 topic pub default)": _qos(
        ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE
    ),
    "best_effort_volatile": _qos(ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE),
    "reliable_transient_local": _qos(ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL),
    "best_effort_transient_local": _qos(
        ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.TRANSIENT_LOCAL
    ),
}


def _reset(probe: RosProbe) -> Trigger.Response:
    client = probe.node.create_client(Trigger, f"/{NODE}/reset_estop")
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(Trigger.Request())
    assert wait_for(future.done, 10.0)
    probe.node.destroy_client(client)
    return future.result()


def test_an_estop_from_any_qos_stops_the_arm_and_unmatched_publishers_show() -> None:
    command = node_command(
        "arm_controller_node", "--params-file", str(PARAMS), "-p", "workspace_enabled:=false"
    )
    with RosProbe("probe_estop_qos") as probe, start_process(command) as process:
        states = probe.record("/arm/joint_states", JointState)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        assert wait_for(lambda: len(states) > 20, 30.0), process.output()
        a = np.array(HOME_POSITION)
        b = np.array(HOME_POSITION)
        a[0], b[0] = 0.6, -0.6  # a waist swing of 1.2 rad, back and forth
        with _Commander(probe) as commander:
            for label, qos in PUBLISHER_QOS.items():
                commander.target = a
                assert wait_for(lambda: abs(_latest(states)[0] - a[0]) < 0.02, 10.0), label
                estop = probe.publisher("/safety/estop", Bool, qos)
                assert probe.wait_for_subscribers(estop), label
                commander.target = b  # the arm starts its swing ...
                assert wait_for(lambda: _latest(states)[0] < a[0] - 0.15, 5.0), label
                estop.publish(Bool(data=True))  # ... and is stopped on its way
                assert wait_for(
                    lambda: diagnostic_values(diagnostics, NODE).get("estop_latched") == "true", 5.0
                ), (label, diagnostic_values(diagnostics, NODE))
                time.sleep(0.5)  # braking at 10 rad/s^2 from <= 1.57 rad/s takes <= 0.16 s
                held = _latest(states)[0]
                time.sleep(1.0)
                # the commander still asks for b at 100 Hz: the arm stays where it stopped
                assert abs(_latest(states)[0] - held) < 0.01, label
                assert held > b[0] + 0.3, (label, held)
                assert not _reset(probe).success  # refused while the input is still true
                estop.publish(Bool(data=False))
                assert wait_for(lambda: _reset(probe).success, 5.0), label
                probe.node.destroy_publisher(estop)

            # each sample counted once, though it came on up to 3 subscriptions: 4 x (true,
            # false); reliable publishers reach 2 or 3 of them (the copies are recognised by
            # the MessageInfo, which rclpy passes only to a two-argument callback)
            assert wait_for(
                lambda: diagnostic_values(diagnostics, NODE).get("estop_messages") == "8", 5.0
            ), diagnostic_values(diagnostics, NODE)
            assert int(diagnostic_values(diagnostics, NODE)["estop_duplicates"]) >= 3

        # a publisher that cannot connect (wrong type) is reported, not ignored
        with RosProbe("probe_estop_wrong_type") as other:
            other.publisher("/safety/estop", String)
            assert wait_for(
                lambda: (
                    "type std_msgs/msg/String"
                    in diagnostic_values(diagnostics, NODE).get("estop_publishers_unmatched", "")
                ),
                10.0,
            ), diagnostic_values(diagnostics, NODE)
            status = [s for m in diagnostics.messages()[-3:] for s in m.status if s.name == NODE][
                -1
            ]
            assert status.level in (b"\x01", 1), status
            assert "e-stop publisher not connected" in status.message


def test_a_latched_estop_reaches_a_controller_started_later_and_a_missing_one_shows() -> None:
    with RosProbe("probe_estop_latched") as probe:
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        # no e-stop publisher while one is required: WARN
        command = node_command(
            "arm_controller_node",
            "--params-file",
            str(PARAMS),
            "-p",
            "estop_publisher_required:=true",
        )
        with start_process(command) as process:
            assert wait_for(
                lambda: diagnostic_values(diagnostics, NODE).get("estop_publishers") == "0", 30.0
            ), process.output()
            statuses = [s for m in diagnostics.messages() for s in m.status if s.name == NODE]
            assert "no e-stop publisher" in statuses[-1].message
        diagnostics.clear()
        latched = probe.publisher(
            "/safety/estop",
            Bool,
            QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=1,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
            ),
        )
        latched.publish(Bool(data=True))
        with start_process(node_command("arm_controller_node", "--params-file", str(PARAMS))):
            assert wait_for(
                lambda: diagnostic_values(diagnostics, NODE).get("estop_latched") == "true", 30.0
            )
            assert diagnostic_values(diagnostics, NODE)["estop_publishers_matched"] == "1"


def test_the_executor_obeys_a_volatile_estop() -> None:
    with (
        RosProbe("probe_estop_executor") as probe,
        start_process(node_command("executor_node")) as process,
    ):
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        assert wait_for(lambda: "estop" in diagnostic_values(diagnostics, "executor"), 30.0), (
            process.output()
        )
        estop = probe.publisher("/safety/estop", Bool)  # reliable, volatile
        assert probe.wait_for_subscribers(estop)
        estop.publish(Bool(data=True))
        assert wait_for(
            lambda: diagnostic_values(diagnostics, "executor").get("estop") == "true", 5.0
        )
        estop.publish(Bool(data=False))
        assert wait_for(
            lambda: diagnostic_values(diagnostics, "executor").get("estop") == "false", 5.0
        )


def test_hvp_safety_estops_resets_and_enables_without_ros2() -> None:
    import subprocess
    import sys

    def hvp(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "human_video_policy.cli.main", "safety", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=ros_env(),
        )

    command = node_command("arm_controller_node", "--params-file", str(PARAMS))
    with RosProbe("probe_hvp_safety") as probe, start_process(command) as process:
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        assert wait_for(lambda: "estop_latched" in diagnostic_values(diagnostics, NODE), 30.0), (
            process.output()
        )
        done = hvp("estop")
        assert done.returncode == 0 and "ASSERTED" in done.stdout, done
        assert wait_for(
            lambda: diagnostic_values(diagnostics, NODE).get("estop_latched") == "true", 5.0
        )
        refused = hvp("reset", "--node", NODE)
        assert refused.returncode == 1 and "REFUSED" in refused.stdout, refused
        assert hvp("release").returncode == 0
        reset = hvp("reset", "--node", NODE)
        assert reset.returncode == 0 and "OK" in reset.stdout, reset
        assert wait_for(
            lambda: diagnostic_values(diagnostics, NODE).get("estop_latched") == "false", 5.0
        )
        enable = hvp("enable", "--node", NODE)
        assert enable.returncode == 0 and "driver is enabled" in enable.stdout, enable
        missing = hvp("enable", "--node", "no_such_controller", "--wait", "1")
        assert missing.returncode == 1 and "no such service" in missing.stderr, missing


def test_a_flood_of_releases_cannot_unlatch_or_hide_an_estop() -> None:
    """A hostile best-effort publisher floods /safety/estop with false (~1 kHz) while one true
    arrives: the e-stop latches, stays latched during the flood, and the node keeps its rate."""
    import threading

    command = node_command("arm_controller_node", "--params-file", str(PARAMS))
    with RosProbe("probe_estop_flood") as probe, start_process(command) as process:
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        assert wait_for(lambda: "estop_latched" in diagnostic_values(diagnostics, NODE), 30.0), (
            process.output()
        )
        flood = probe.publisher("/safety/estop", Bool, PUBLISHER_QOS["best_effort_volatile"])
        stop = threading.Event()
        sent = [0]

        def run() -> None:
            while not stop.is_set():
                flood.publish(Bool(data=False))
                sent[0] += 1
                time.sleep(0.001)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            time.sleep(1.0)
            estop = probe.publisher("/safety/estop", Bool)
            assert probe.wait_for_subscribers(estop)
            estop.publish(Bool(data=True))
            assert wait_for(
                lambda: diagnostic_values(diagnostics, NODE).get("estop_latched") == "true", 5.0
            ), diagnostic_values(diagnostics, NODE)
            time.sleep(2.0)
            values = diagnostic_values(diagnostics, NODE)
            assert values["estop_latched"] == "true"
            assert float(values["tick_rate_hz_wall"]) > 90.0
            assert int(values["estop_messages"]) > 500
        finally:
            stop.set()
            thread.join()
        assert sent[0] > 1000
