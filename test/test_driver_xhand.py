"""XHandSerialDriver against a fake hand on a pty: exact frames, units, failures."""

from __future__ import annotations

import binascii
import struct
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
from human_video_policy.drivers.fake_devices import FaultMode
from human_video_policy.drivers.fake_devices.xhand_fake import FakeXHand
from human_video_policy.drivers.xhand_serial import (
    XHandSerialConfig,
    XHandSerialDriver,
    crc16_xmodem,
)
from human_video_policy.errors import ConfigError
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits


def frame(src: int, dst: int, command: int, payload: bytes) -> bytes:
    """A frame built by hand, CRC from the standard library's CRC-CCITT (XMODEM with init 0)."""
    body = bytes([0xAA, 0x55, src, dst, command]) + len(payload).to_bytes(2, "little") + payload
    return body + binascii.crc_hqx(body, 0).to_bytes(2, "little")


@pytest.fixture
def hand() -> Iterator[FakeXHand]:
    with FakeXHand() as fake:
        yield fake


@pytest.fixture
def driver(hand: FakeXHand) -> Iterator[XHandSerialDriver]:
    # A generous timeout: the fake shares 2 loaded cores with the test.
    xhand = XHandSerialDriver(XHandSerialConfig(port=hand.path, timeout_s=0.5))
    xhand.connect()
    yield xhand
    xhand.close()


def test_crc_matches_independent_implementations() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value
    data = bytes(range(256)) * 3
    assert crc16_xmodem(data) == binascii.crc_hqx(data, 0)


def test_state_request_and_reply_bytes(hand: FakeXHand, driver: XHandSerialDriver) -> None:
    assert isinstance(driver, JointDriver)
    assert hand.received[0] == bytes.fromhex("AA 55 FE 80 01 00 00") + binascii.crc_hqx(
        bytes.fromhex("AA 55 FE 80 01 00 00"), 0
    ).to_bytes(2, "little")
    hand.positions[:] = np.linspace(0.0, 1.1, 12)
    state = driver.read_state()
    assert state.names == XHAND_JOINTS
    np.testing.assert_allclose(state.positions, np.linspace(0.0, 1.1, 12), atol=1e-7)
    assert state.faults == ()


def test_streaming_commands_bytes_on_the_wire(hand: FakeXHand, driver: XHandSerialDriver) -> None:
    limits = xhand_joint_limits()
    target = 0.5 * (limits.lower + limits.upper)
    driver.enable()
    for k in range(100):  # 100 commands back to back, each acknowledged with a state frame
        driver.send_positions(target * (k + 1) / 100)
    np.testing.assert_allclose(hand.positions, target, atol=1e-6)  # float32 on the wire
    payload = b"".join(
        struct.pack("<H", k)  # finger id
        + struct.pack("<hhh", 100, 0, 0)  # kp, ki, kd
        + struct.pack("<f", target[k])  # position, rad
        + struct.pack("<HH", 300, 3)  # tor_max, mode 3 = position
        + bytes(8)  # reserved
        for k in range(12)
    )
    assert len(payload) == 12 * 24
    assert hand.received[-1] == frame(0xFE, 0x80, 0x02, payload)
    state = driver.read_state()
    np.testing.assert_allclose(state.positions, target, atol=1e-6)


def test_board_error_is_a_fault_in_state_and_a_device_fault_on_command(
    hand: FakeXHand, driver: XHandSerialDriver
) -> None:
    hand.set_error(4, 1, 0x0008)
    state = driver.read_state()
    assert state.faults == (Fault(0x0008, "joint board error", XHAND_JOINTS[4]),)
    with pytest.raises(DeviceFault, match="joint board error") as info:
        driver.send_positions(np.zeros(12))
    assert info.value.code == 0x0008


def test_silent_hand_times_out(hand: FakeXHand, driver: XHandSerialDriver) -> None:
    hand.fault = FaultMode.SILENT
    with pytest.raises(DriverTimeoutError, match="no reply"):
        driver.read_state()


def test_bad_crc_is_a_protocol_error(hand: FakeXHand, driver: XHandSerialDriver) -> None:
    hand.fault = FaultMode.MALFORMED
    with pytest.raises(DriverProtocolError, match="CRC mismatch"):
        driver.read_state()


def test_dropped_link_is_a_connection_error(hand: FakeXHand, driver: XHandSerialDriver) -> None:
    hand.fault = FaultMode.DROP
    with pytest.raises(DriverConnectionError, match="xhand@"):
        driver.read_state()  # the hand hangs up on this request
        driver.read_state()


def test_wrong_address_gets_no_answer(hand: FakeXHand) -> None:
    other = XHandSerialDriver(XHandSerialConfig(port=hand.path, device_id=0x81, timeout_s=0.03))
    with pytest.raises(DriverTimeoutError):
        other.connect()
    assert not other.is_connected


def test_bad_commands_are_refused_and_not_sent(hand: FakeXHand, driver: XHandSerialDriver) -> None:
    sent = len(hand.received)
    for bad in (np.full(12, np.inf), np.zeros(7), "open"):
        with pytest.raises(DriverCommandError):
            driver.send_positions(bad)  # type: ignore[arg-type]
    assert len(hand.received) == sent


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="device_id"):
        XHandSerialConfig(port="/dev/x", device_id=0x1FF)
    with pytest.raises(ConfigError, match="timeout_s"):
        XHandSerialConfig(port="/dev/x", timeout_s=0)
    with pytest.raises(DriverConnectionError, match="cannot open"):
        XHandSerialDriver(XHandSerialConfig(port="/dev/does-not-exist")).connect()
