"""RealmanArmDriver against a fake controller on 127.0.0.1: exact JSON lines, units, failures."""

from __future__ import annotations

import math
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from human_video_policy.drivers.base import (
    DeviceFault,
    DriverCommandError,
    DriverConnectionError,
    DriverProtocolError,
    DriverTimeoutError,
    Fault,
    JointDriver,
)
from human_video_policy.drivers.fake_devices import FaultMode, wait_until
from human_video_policy.drivers.fake_devices.realman_fake import FakeRealmanController
from human_video_policy.drivers.realman import (
    RM75_JOINTS,
    RealmanArmConfig,
    RealmanArmDriver,
    millidegrees_to_rad,
    rad_to_millidegrees,
)
from human_video_policy.errors import ConfigError

# The 7-DoF example of the vendor's JSON manual (movej): 10.1, 0.2, 20.3, 30.4, 0.5, 20.6, 20.6 deg.
MANUAL_DEGREES = [10.1, 0.2, 20.3, 30.4, 0.5, 20.6, 20.6]
MANUAL_MILLIDEGREES = [10100, 200, 20300, 30400, 500, 20600, 20600]


@pytest.fixture
def controller() -> Iterator[FakeRealmanController]:
    with FakeRealmanController() as fake:
        yield fake


@pytest.fixture
def driver(controller: FakeRealmanController) -> Iterator[RealmanArmDriver]:
    arm = RealmanArmDriver(RealmanArmConfig(host="127.0.0.1", port=controller.port, timeout_s=0.5))
    arm.connect()
    yield arm
    arm.close()


def test_unit_conversion_matches_the_manual_example() -> None:
    q = np.radians(MANUAL_DEGREES)
    assert rad_to_millidegrees(q) == MANUAL_MILLIDEGREES
    np.testing.assert_allclose(millidegrees_to_rad(MANUAL_MILLIDEGREES), q, atol=1e-12)
    assert rad_to_millidegrees(np.array([math.pi, -math.pi / 2])) == [180000, -90000]
    rng = np.random.default_rng(0)
    q = rng.uniform(-3.1, 3.1, 50)
    err = np.abs(millidegrees_to_rad(rad_to_millidegrees(q)) - q).max()
    assert err <= math.radians(0.0005) + 1e-12


def test_connect_reads_the_documented_state_reply(
    controller: FakeRealmanController, driver: RealmanArmDriver
) -> None:
    assert isinstance(driver, JointDriver)
    assert driver.name == f"realman@127.0.0.1:{controller.port}"
    assert controller.received[0] == b'{"command":"get_current_arm_state"}\r\n'
    controller.joint_mdeg = [100, 200, 300, 400, 500, 600, 700]  # the manual's 7-DoF reply
    state = driver.read_state()
    assert state.names == RM75_JOINTS
    np.testing.assert_allclose(state.positions, np.radians([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]))
    assert state.faults == () and not state.enabled


def test_power_and_streaming_bytes_on_the_wire(
    controller: FakeRealmanController, driver: RealmanArmDriver
) -> None:
    driver.enable()
    assert controller.received[-1] == b'{"command":"set_arm_power","arm_power":1}\r\n'
    assert controller.powered
    target = np.radians(MANUAL_DEGREES)
    for k in range(100):  # 100 commands back to back, as a 100 Hz loop would send them
        driver.send_positions(target * (k + 1) / 100)
    assert wait_until(lambda: controller.movej_canfd_count() == 100)
    assert controller.received[-1] == (
        b'{"command":"movej_canfd","joint":[10100,200,20300,30400,500,20600,20600],'
        b'"follow":false}\r\n'
    )
    np.testing.assert_allclose(driver.read_state().positions, target, atol=1e-9)
    driver.disable()
    assert controller.received[-1] == b'{"command":"set_arm_power","arm_power":0}\r\n'


def test_follow_flag_is_sent(controller: FakeRealmanController) -> None:
    config = RealmanArmConfig(host="127.0.0.1", port=controller.port, follow=True)
    with RealmanArmDriver(config) as arm:
        arm.send_positions(np.zeros(7))
        assert wait_until(lambda: controller.movej_canfd_count() == 1)
    assert b'"follow":true}' in controller.received[1]


def test_error_code_is_a_fault_in_state_and_refuses_power(
    controller: FakeRealmanController, driver: RealmanArmDriver
) -> None:
    controller.error_code = 0x100D
    assert driver.read_state().faults == (Fault(0x100D, "Robotic arm collision"),)
    with pytest.raises(DeviceFault, match="Robotic arm collision") as info:
        driver.enable()
    assert info.value.code == 0x100D


def test_no_reply_times_out(controller: FakeRealmanController, driver: RealmanArmDriver) -> None:
    controller.fault = FaultMode.SILENT
    with pytest.raises(DriverTimeoutError, match=r"no reply within 0\.005 s"):
        driver.read_state()


def test_malformed_reply_is_a_protocol_error(
    controller: FakeRealmanController, driver: RealmanArmDriver
) -> None:
    controller.fault = FaultMode.MALFORMED
    with pytest.raises(DriverProtocolError, match="not JSON"):
        driver.read_state()


def test_dropped_connection_is_a_connection_error(
    controller: FakeRealmanController, driver: RealmanArmDriver
) -> None:
    controller.fault = FaultMode.DROP
    with pytest.raises(DriverConnectionError, match="closed the connection"):
        driver.read_state()


def test_connect_to_nothing_is_a_connection_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    arm = RealmanArmDriver(RealmanArmConfig(host="127.0.0.1", port=port))
    with pytest.raises(DriverConnectionError, match="cannot connect"):
        arm.connect()
    arm.close()  # safe after a failed connect
    assert not arm.is_connected


def test_bad_commands_are_refused_and_not_sent(
    controller: FakeRealmanController, driver: RealmanArmDriver
) -> None:
    before = len(controller.received)
    for bad in (np.full(7, np.nan), np.zeros(6), [[0.0] * 7]):
        with pytest.raises(DriverCommandError):
            driver.send_positions(bad)  # type: ignore[arg-type]
    driver.read_state()  # a round trip: anything sent before it has arrived
    assert len(controller.received) == before + 1


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="port"):
        RealmanArmConfig(host="127.0.0.1", port=70000)
    with pytest.raises(ConfigError, match="joint_names"):
        RealmanArmConfig(host="127.0.0.1", joint_names=("j",) * 3)
    with pytest.raises(ConfigError, match="follow"):
        RealmanArmConfig(host="127.0.0.1", follow="yes")  # type: ignore[arg-type]


def test_fake_runs_standalone() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "human_video_policy.drivers.fake_devices.realman_fake",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        with RealmanArmDriver(RealmanArmConfig("127.0.0.1", int(match.group(1)))) as arm:
            np.testing.assert_allclose(arm.read_state().positions, np.zeros(7))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
