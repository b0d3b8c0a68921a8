"""The simulated WidowX obeys the safety layer of every real robot (sim_node, real DDS): commands
beyond the joint limits and faster than the speed bound are clamped, an e-stop on
/safety/estop brakes and holds the arm until released and reset, and the watchdog holds the arm
when commands stop. Checked from outside, on /arm/joint_states and /diagnostics."""

from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_helpers import RosProbe, diagnostic_values, node_command, start_process, wait_for
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from human_video_policy.nodes.conversions import numpy_to_joint_state, stamp_to_seconds
from human_video_policy.nodes.qos import LATCHED, RELIABLE
from human_video_policy.robots.spec import get_robot
from human_video_policy.robots.widowx import HOME_POSITION, WIDOWX_COMMAND_JOINTS

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(180)]

LIMITS = get_robot("widowx").limits()
VELOCITY_SCALE = 0.5  # sim_node's default


def _positions(msg: JointState) -> np.ndarray:
    index = {n: i for i, n in enumerate(msg.name)}
    return np.array([msg.position[index[n]] for n in WIDOWX_COMMAND_JOINTS])


def _call(probe: RosProbe, service: str) -> Trigger.Response:
    client = probe.node.create_client(Trigger, service)
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(Trigger.Request())
    assert wait_for(future.done, 10.0)
    return future.result()


def test_the_sim_arm_is_commanded_through_the_safety_layer() -> None:
    sim = node_command(
        "sim_node",
        "-p", "image_width:=32", "-p", "image_height:=32", "-p", "camera_rate_hz:=10.0",
        "-p", "publish_depth:=false",
    )  # fmt: skip
    home = np.array(HOME_POSITION[:7], dtype=np.float64)
    with RosProbe("sim_safety") as probe, start_process(sim) as node:
        states = probe.record("/arm/joint_states", JointState, RELIABLE)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        commands = probe.publisher("/arm/joint_commands", JointState, RELIABLE)
        estop = probe.publisher("/safety/estop", Bool, LATCHED)
        assert wait_for(lambda: len(states) > 20, 60.0), node.output()
        assert probe.wait_for_subscribers(commands)

        def command(q: np.ndarray, seconds: float) -> None:
            stop = stamp_to_seconds(states.messages()[-1].header.stamp) + seconds
            while stamp_to_seconds(now := states.messages()[-1].header.stamp) < stop:
                commands.publish(numpy_to_joint_state(WIDOWX_COMMAND_JOINTS, q, now))  # sim time
                wait_for(lambda: False, 0.02)

        # 1. Beyond the elbow's upper limit, far away: clamped, and no faster than allowed.
        start = len(states)
        target = home.copy()
        target[2] = 3.0  # limit 1.61 rad
        command(target, 3.0)
        moved = [
            (stamp_to_seconds(m.header.stamp), _positions(m)) for m in states.messages()[start:]
        ]
        elbow = np.array([q[2] for _, q in moved])
        assert elbow.max() <= LIMITS.upper[2] + 0.02, elbow.max()
        assert elbow.max() > LIMITS.upper[2] - 0.1  # it did go to the limit
        times = np.array([t for t, _ in moved])
        speed = np.abs(np.diff(elbow)) / np.maximum(np.diff(times), 1e-9)
        smoothed = np.convolve(speed, np.ones(10) / 10, mode="valid")  # over 0.1 s
        allowed = VELOCITY_SCALE * LIMITS.max_velocity[2]
        assert 0.5 * allowed < smoothed.max() <= allowed * 1.15, (smoothed.max(), allowed)

        # 2. E-stop: the arm brakes and holds although commands keep coming.
        estop.publish(Bool(data=True))
        assert wait_for(
            lambda: diagnostic_values(diagnostics, "sim").get("estop_latched") == "true", 10.0
        )
        held = _positions(states.messages()[-1])
        elsewhere = held.copy()
        elsewhere[0] += 1.0  # waist
        command(elsewhere, 1.5)
        assert abs(_positions(states.messages()[-1])[0] - held[0]) < 0.05
        assert not _call(probe, "/sim/reset_estop").success  # input still asserted
        estop.publish(Bool(data=False))
        wait_for(lambda: False, 0.3)
        assert _call(probe, "/sim/reset_estop").success
        command(elsewhere, 2.5)  # a new command after the reset moves it again
        assert abs(_positions(states.messages()[-1])[0] - elsewhere[0]) < 0.05

        # 3. Watchdog: commands stop, the arm holds where it is.
        wait_for(lambda: False, 1.0)
        values = diagnostic_values(diagnostics, "sim")
        assert int(values["safety_watchdog_trips"]) >= 1, values
        assert values["safety_holding"] == "true", values
        node.stop()
