"""The arm and hand controller nodes as real processes with the MuJoCo sim driver, over DDS."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_helpers import (
    PROJECT_ROOT,
    PeriodicThread,
    RosProbe,
    diagnostic_values,
    node_command,
    start_process,
    wait_for,
)
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from human_video_policy.nodes.conversions import numpy_to_joint_state, seconds_to_stamp
from human_video_policy.nodes.qos import LATCHED
from human_video_policy.robots.widowx import (
    HOME_POSITION,
    WIDOWX_COMMAND_JOINTS,
    WIDOWX_STATE_JOINTS,
)
from human_video_policy.robots.xhand import XHAND_JOINTS

pytestmark = pytest.mark.ros

NODE = "arm_controller"  # the name config/controllers.params.yaml configures
PARAMS = PROJECT_ROOT / "config" / "controllers.params.yaml"


def _latest(states) -> np.ndarray:
    return np.asarray(states.messages()[-1].position, dtype=np.float64)


class _Commander(PeriodicThread):
    """Publishes /arm/joint_commands at 100 Hz (wall-clock stamps): ``target`` or NaN."""

    def __init__(self, probe: RosProbe) -> None:
        super().__init__(0.01)
        self.publisher = probe.publisher("/arm/joint_commands", JointState)
        self.target: np.ndarray | None = None
        self.sent = 0

    def step(self) -> None:
        target = self.target
        if target is not None:
            stamp = seconds_to_stamp(time.time())
            self.publisher.publish(numpy_to_joint_state(WIDOWX_COMMAND_JOINTS, target, stamp))
            self.sent += 1


def _reset_estop(probe: RosProbe) -> Trigger.Response:
    client = probe.node.create_client(Trigger, f"/{NODE}/reset_estop")
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(Trigger.Request())
    assert wait_for(future.done, 10.0)
    return future.result()


def test_arm_controller_follows_refuses_and_latches_the_estop() -> None:
    command = node_command("arm_controller_node", "--params-file", str(PARAMS))
    with RosProbe("probe_controller") as probe, start_process(command) as process:
        states = probe.record("/arm/joint_states", JointState)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        estop = probe.publisher("/safety/estop", Bool, LATCHED)
        assert wait_for(lambda: len(states) > 20, 30.0), process.output()

        # joint_states at the set rate, the 8 state joints, the arm at home
        time.sleep(1.0)
        start = time.monotonic()
        count = len(states)
        time.sleep(2.0)
        rate = (len(states) - count) / (time.monotonic() - start)
        assert 80.0 <= rate <= 115.0, rate
        assert list(states.messages()[-1].name) == list(WIDOWX_STATE_JOINTS)
        assert np.allclose(_latest(states)[:7], HOME_POSITION, atol=0.03)

        with _Commander(probe) as commander:
            # commands at 100 Hz are followed
            target = np.array(HOME_POSITION)
            target[0], target[2] = 0.4, 0.6
            commander.target = target
            assert wait_for(lambda: np.allclose(_latest(states)[:7], target, atol=0.02), 10.0), (
                _latest(states)[:7] - target
            )
            assert wait_for(
                lambda: int(diagnostic_values(diagnostics, NODE).get("commands_accepted", 0)) > 100,
                5.0,
            )
            values = diagnostic_values(diagnostics, NODE)
            assert values["holding"] == "false"

            # a target that puts the gripper under the table (outside the configured
            # workspace box) is refused; the arm stays
            under = np.array(HOME_POSITION)
            under[1] = 1.0
            commander.target = under
            assert wait_for(
                lambda: int(diagnostic_values(diagnostics, NODE).get("refused_workspace", 0)) > 10,
                5.0,
            )
            assert np.allclose(_latest(states)[:7], target, atol=0.02)

            # NaN commands are refused and counted; the arm stays
            commander.target = np.full(7, np.nan)
            assert wait_for(
                lambda: int(diagnostic_values(diagnostics, NODE).get("refused_nonfinite", 0)) > 10,
                5.0,
            )
            assert np.allclose(_latest(states)[:7], target, atol=0.02)
            assert diagnostic_values(diagnostics, NODE)["holding"] == "true"

            # e-stop latches: commands are refused, the arm holds
            estop.publish(Bool(data=True))
            assert wait_for(
                lambda: diagnostic_values(diagnostics, NODE).get("estop_latched") == "true", 5.0
            )
            elsewhere = np.array(HOME_POSITION)
            commander.target = elsewhere
            time.sleep(1.0)
            assert np.allclose(_latest(states)[:7], target, atol=0.02)
            assert int(diagnostic_values(diagnostics, NODE)["refused_estop"]) > 50
            response = _reset_estop(probe)
            assert not response.success and "still asserted" in response.message
            estop.publish(Bool(data=False))
            time.sleep(0.5)
            assert diagnostic_values(diagnostics, NODE)["estop_latched"] == "true"  # still latched
            assert np.allclose(_latest(states)[:7], target, atol=0.02)
            response = _reset_estop(probe)
            assert response.success, response.message
            # the reset releases it: the streamed command is followed again
            assert wait_for(lambda: np.allclose(_latest(states)[:7], elsewhere, atol=0.02), 10.0), (
                _latest(states)[:7]
            )
            assert wait_for(
                lambda: diagnostic_values(diagnostics, NODE)["estop_resets"] == "1", 5.0
            )
            values = diagnostic_values(diagnostics, NODE)
        assert process.stop(signal.SIGINT) == 0, process.output()
    assert int(values["estop_engagements"]) == 1 and int(values["estop_resets"]) == 1
    assert int(values["estop_resets_refused"]) == 1
    assert int(values["driver_driver_errors"]) == 0


def test_hand_controller_publishes_the_hand_joints() -> None:
    command = node_command("hand_controller_node", "--params-file", str(PARAMS))
    with RosProbe("probe_hand") as probe, start_process(command) as process:
        states = probe.record("/hand/joint_states", JointState)
        assert wait_for(lambda: len(states) > 10, 30.0), process.output()
        msg = states.messages()[-1]
        assert list(msg.name) == list(XHAND_JOINTS)
        assert np.all(np.isfinite(np.asarray(msg.position)))
        assert process.stop(signal.SIGTERM) == 0, process.output()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-p", "driver:=canbus"], "parameter driver='canbus' is invalid"),
        (["-p", "driver:=realman"], "RealmanArmConfig"),
        (["-p", "driver:=realman", "-p", 'driver_config:="{hots: x}"'], "unknown fields"),
        (["-p", "workspace_enabled:=true", "-p", "workspace_max:=[-2.0, 0.0, 0.0]"], "maximum"),
        (["-p", "watchdog_periods:=0"], "watchdog_periods=0"),
    ],
)
def test_bad_parameters_exit_2_naming_them(args: list[str], expected: str) -> None:
    command = node_command("arm_controller_node", "-r", "__node:=arm_bad", *args)
    with start_process(command) as process:
        assert process.wait(timeout=60) == 2, process.output()
        lines = [line for line in process.output().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("arm_bad: error:"), lines
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("robot", ["widowx", "xhand", "rm75"])
def test_every_robot_of_the_nodes_runs_on_its_sim(robot: str) -> None:
    # The node's robot table, driven without ROS: its sim model, limits and kinematics fit.
    from human_video_policy.control import JointController
    from human_video_policy.drivers.sim import MujocoJointDriver, sim_driver_config
    from human_video_policy.kinematics.robots import ee_position_function
    from human_video_policy.robots.spec import get_robot
    from human_video_policy.safety import SafetyConfig, SafetyLayer, WorkspaceBox

    spec = get_robot(robot)
    now = [0.0]
    driver = MujocoJointDriver(sim_driver_config(spec, 1.0), clock=lambda: now[0])
    limits = spec.limits()
    box = WorkspaceBox((-2.0, -2.0, -2.0), (2.0, 2.0, 2.0))
    layer = SafetyLayer(SafetyConfig(limits, workspace=box, ee_position=ee_position_function(spec)))
    controller = JointController(driver, layer)
    start = controller.start().positions
    goal = np.clip(start + 0.2, limits.lower, limits.upper)
    for _ in range(300):
        now[0] += 0.01
        controller.submit(goal, now[0])
        result = controller.tick(now[0])
    controller.stop()
    assert result.sent and not result.decision.holding
    assert np.allclose(result.state.positions, goal, atol=0.03), result.state.positions - goal


def test_a_real_driver_that_cannot_connect_ends_the_node_with_exit_1() -> None:
    command = node_command(
        "arm_controller_node",
        "-r",
        "__node:=arm_unreachable",
        "-p",
        "robot:=rm75",
        "-p",
        "driver:=realman",
        "-p",
        'driver_config:="{host: 127.0.0.1, port: 9, timeout_s: 0.2}"',
    )
    with start_process(command) as process:
        assert process.wait(timeout=60) == 1, process.output()
        output = process.output()
    assert "arm_unreachable: error:" in output and "127.0.0.1" in output, output
