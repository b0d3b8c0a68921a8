"""The controller node on the real protocol drivers, each talking to its fake device: the same
graph switches from sim to hardware by the ``driver`` parameter alone."""

from __future__ import annotations

import time

import numpy as np
import pytest
from ros_helpers import RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import JointState

from human_video_policy.drivers.dynamixel import ticks_to_rad
from human_video_policy.drivers.fake_devices.dynamixel_fake import DynamixelBus
from human_video_policy.drivers.fake_devices.realman_fake import FakeRealmanController
from human_video_policy.drivers.widowx_gripper import HornGeometry
from human_video_policy.nodes.conversions import numpy_to_joint_state, seconds_to_stamp
from human_video_policy.robots.rm75 import RM75_ARM_JOINTS
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS

pytestmark = pytest.mark.ros


def _drive(probe: RosProbe, names, target: np.ndarray, done, seconds: float = 20.0) -> bool:
    """Publish ``target`` at 50 Hz (fresh stamps) until ``done()`` or ``seconds`` pass."""
    pub = probe.publisher("/arm/joint_commands", JointState)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pub.publish(numpy_to_joint_state(names, target, seconds_to_stamp(time.time())))
        if done():
            return True
        time.sleep(0.02)
    return bool(done())


def test_widowx_on_the_dynamixel_bus() -> None:
    with DynamixelBus((1, 2, 3, 4, 5, 6, 7, 8, 9)) as bus:
        config = f'driver_config:="{{port: {bus.path}, min_timeout_s: 0.5}}"'
        command = node_command(
            "arm_controller_node", "-p", "robot:=widowx", "-p", "driver:=dynamixel", "-p", config
        )
        with RosProbe("probe_dxl") as probe, start_process(command) as process:
            states = probe.record("/arm/joint_states", JointState)
            assert wait_for(lambda: len(states) > 10, 30.0), process.output()
            assert list(states.messages()[-1].name)[:7] == list(WIDOWX_COMMAND_JOINTS)
            target = np.array([0.3, -0.2, 0.3, 0.0, 0.5, 0.2, 0.030])

            def servo_angles() -> np.ndarray:
                return ticks_to_rad(np.array([bus.present_ticks(i) for i in (1, 2, 4, 6, 7, 8)]))

            reached = _drive(
                probe,
                WIDOWX_COMMAND_JOINTS,
                target,
                lambda: np.allclose(servo_angles(), target[:6], atol=0.01),
            )
            assert reached, (servo_angles(), process.output()[-2000:])
            gripper = ticks_to_rad(np.array([bus.present_ticks(9)]))[0]
            assert gripper == pytest.approx(HornGeometry().angle_from_finger(0.030), abs=0.01)
            finger = np.asarray(states.messages()[-1].position)[6]
            assert finger == pytest.approx(0.030, abs=5e-4)
            assert process.stop() == 0, process.output()


def test_rm75_on_the_realman_controller() -> None:
    with FakeRealmanController() as arm:
        config = f'driver_config:="{{host: 127.0.0.1, port: {arm.port}, timeout_s: 0.5}}"'
        command = node_command(
            "arm_controller_node", "-p", "robot:=rm75", "-p", "driver:=realman", "-p", config
        )
        with RosProbe("probe_realman") as probe, start_process(command) as process:
            states = probe.record("/arm/joint_states", JointState)
            assert wait_for(lambda: len(states) > 10, 30.0), process.output()
            target = np.array([0.2, 0.3, -0.1, 0.5, 0.0, 0.4, 0.1])

            def arm_angles() -> np.ndarray:
                return np.radians(np.array(arm.joint_mdeg, dtype=np.float64) / 1000.0)

            reached = _drive(
                probe,
                RM75_ARM_JOINTS,
                target,
                lambda: np.allclose(arm_angles(), target, atol=0.01),
            )
            assert reached, (arm_angles(), process.output()[-2000:])
            assert arm.movej_canfd_count() > 10
            assert process.stop() == 0, process.output()


def test_xhand_on_the_rs485_hand() -> None:
    """driver:=xhand (backend auto: the vendor SDK is not installed here, so the project's
    RS-485 framing) on the fake hand's pty, over DDS: fingers follow /hand/joint_commands."""
    from human_video_policy.drivers.fake_devices.xhand_fake import FakeXHand
    from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits

    with FakeXHand() as hand:
        config = f'driver_config:="{{port: {hand.path}, timeout_s: 0.5}}"'
        command = node_command(
            "hand_controller_node",
            "-p",
            "driver:=xhand",
            "-p",
            config,
            "-p",
            "control_rate_hz:=20.0",
        )
        with RosProbe("probe_xhand") as probe, start_process(command) as process:
            states = probe.record("/hand/joint_states", JointState)
            assert wait_for(lambda: len(states) > 10, 30.0), process.output()
            limits = xhand_joint_limits()
            target = limits.lower + 0.3 * (limits.upper - limits.lower)
            pub = probe.publisher("/hand/joint_commands", JointState)
            end = time.monotonic() + 20.0
            while time.monotonic() < end and not np.allclose(hand.positions, target, atol=0.01):
                pub.publish(
                    numpy_to_joint_state(XHAND_JOINTS, target, seconds_to_stamp(time.time()))
                )
                time.sleep(0.02)
            assert np.allclose(hand.positions, target, atol=0.01), (
                hand.positions - target,
                process.output()[-2000:],
            )
            assert "xhand@" in process.output()
            assert process.stop() == 0, process.output()
