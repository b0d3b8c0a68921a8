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
from human_video_policy.drivers.xhand import XHandConfig
from human_video_policy.drivers.xhand_serial import (
    XHandSerialDriver,
    crc16_xmodem,
    is_pseudo_terminal,
)
from human_video_policy.errors import ConfigError
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits


def frame(src: int, dst: int, command: int, payload: bytes) -> bytes:
    """A frame built by hand as the vendor SDK writes it (header u16 0xAA55 little-endian:
    bytes 55 AA), CRC from the standard library's CRC-CCITT (XMODEM with init 0)."""
    body = bytes([0x55, 0xAA, src, dst, command]) + len(payload).to_bytes(2, "little") + payload
    return body + binascii.crc_hqx(body, 0).to_bytes(2, "little")


def control_payload(positions: np.ndarray, mode: int) -> bytes:
    """12 FingerCommand_t as the SDK packs them (defaults kp 100, tor_max 300)."""
    return b"".join(
        struct.pack("<H", k)  # finger id
        + struct.pack("<hhh", 100, 0, 0)  # kp, ki, kd
        + struct.pack("<f", positions[k])  # position, rad
        + struct.pack("<HH", 300, mode)  # tor_max, mode (3 = position, 0 = powerless)
        + bytes(8)  # reserved
        for k in range(12)
    )


@pytest.fixture
def hand() -> Iterator[FakeXHand]:
    with FakeXHand() as fake:
        yield fake


@pytest.fixture
def driver(hand: FakeXHand) -> Iterator[XHandSerialDriver]:
    # A generous timeout: the fake shares 2 loaded cores with the test.
    xhand = XHandSerialDriver(XHandConfig(port=hand.path, timeout_s=0.5))
    xhand.connect()
    yield xhand
    xhand.close()


def test_crc_matches_independent_implementations() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value
    data = bytes(range(256)) * 3
    assert crc16_xmodem(data) == binascii.crc_hqx(data, 0)


def test_connect_reads_the_info_registers_and_state_comes_from_control_replies(
    hand: FakeXHand, driver: XHandSerialDriver
) -> None:
    assert isinstance(driver, JointDriver)
    # the liveness probe: read registers 20..205 (side, serial number, id, name), as the SDK's
    # read_device_info does; there is no state request on the XHand bus
    assert hand.received[0] == frame(0xFE, 0x80, 0x15, struct.pack("<HH", 20, 186))
    assert driver.hand_info is not None
    assert (driver.hand_info.side, driver.hand_info.serial_number) == ("R", "XH-FAKE-0001")
    hand.positions[:] = np.linspace(0.0, 1.1, 12)
    state = driver.read_state()  # re-sends the last control frame: powerless before enable
    assert hand.received[-1] == frame(0xFE, 0x80, 0x02, control_payload(np.zeros(12), 0))
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
    payload = control_payload(target.astype(np.float32), 3)
    assert len(payload) == 12 * 24
    assert hand.received[-1] == frame(0xFE, 0x80, 0x02, payload)
    state = driver.read_state()  # the same frame again, answered with the state
    assert hand.received[-1] == frame(0xFE, 0x80, 0x02, payload)
    np.testing.assert_allclose(state.positions, target, atol=1e-6)


def test_board_error_is_a_fault_in_state_and_a_device_fault_on_command(
    hand: FakeXHand, driver: XHandSerialDriver
) -> None:
    driver.enable()
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
    other = XHandSerialDriver(XHandConfig(port=hand.path, hand_id=1, timeout_s=0.03))
    with pytest.raises(DriverTimeoutError):
        other.connect()  # it asked 0x81; the hand is 0x80
    assert not other.is_connected
    assert hand.received[-1][3] == 0x81


def test_a_renumbered_hand_is_addressed_with_the_mask() -> None:
    with FakeXHand(hand_id=2) as renumbered:
        driver = XHandSerialDriver(XHandConfig(port=renumbered.path, hand_id=2, timeout_s=0.5))
        driver.connect()
        driver.read_state()
        assert {f[3] for f in renumbered.received} == {0x82}
        assert driver.hand_info is not None and driver.hand_info.hand_id == 2
        driver.close()


def test_an_error_reply_is_a_device_fault_with_its_code(
    hand: FakeXHand, driver: XHandSerialDriver
) -> None:
    hand.error_reply = 0x1234
    with pytest.raises(DeviceFault, match="error") as info:
        driver.read_state()
    assert info.value.code == 0x1234


def test_a_hand_of_the_other_side_is_refused() -> None:
    with FakeXHand(side="L") as left:
        driver = XHandSerialDriver(XHandConfig(port=left.path, timeout_s=0.5))
        with pytest.raises(ConfigError, match=r"side 'L'.*handedness='right'"):
            driver.connect()
        assert not driver.is_connected
        anyside = XHandSerialDriver(XHandConfig(port=left.path, handedness="", timeout_s=0.5))
        anyside.connect()
        anyside.close()


def test_position_mode_on_a_real_port_needs_the_acknowledgement(hand: FakeXHand) -> None:
    """Until the framing is verified on a hand, enable() refuses a real serial port (here
    /dev/null, a character device that is no pseudo-terminal) unless acknowledged; the fake
    hand's pty is a pseudo-terminal and needs none."""
    assert is_pseudo_terminal(hand.path)
    assert not is_pseudo_terminal("/dev/null") and not is_pseudo_terminal("/dev/does-not-exist")
    real = XHandSerialDriver(XHandConfig(port="/dev/null"))
    with pytest.raises(ConfigError, match="acknowledge_unverified_wire_format"):
        real.enable()
    acknowledged = XHandSerialDriver(
        XHandConfig(port="/dev/null", acknowledge_unverified_wire_format=True)
    )
    with pytest.raises(DriverConnectionError, match="not connected"):
        acknowledged.enable()  # past the gate, to the (absent) link


def test_bad_commands_are_refused_and_not_sent(hand: FakeXHand, driver: XHandSerialDriver) -> None:
    sent = len(hand.received)
    for bad in (np.full(12, np.inf), np.zeros(7), "open"):
        with pytest.raises(DriverCommandError):
            driver.send_positions(bad)  # type: ignore[arg-type]
    assert len(hand.received) == sent


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="hand_id"):
        XHandConfig(port="/dev/x", hand_id=0x80)
    with pytest.raises(ConfigError, match="handedness"):
        XHandConfig(port="/dev/x", handedness="both")
    with pytest.raises(ConfigError, match="timeout_s"):
        XHandConfig(port="/dev/x", timeout_s=0)
    with pytest.raises(DriverConnectionError, match="cannot open"):
        XHandSerialDriver(XHandConfig(port="/dev/does-not-exist")).connect()


def test_a_hand_sending_integer_positions_is_refused_not_misread(
    hand: FakeXHand, driver: XHandSerialDriver
) -> None:
    """The SDK's header types the position int32 while its library reads the bytes as float32
    (docs/hardware_protocols.md). Should a hand send integers, they must not pass as angles:
    a positive int32 read as float32 is a tiny subnormal, a negative one a NaN; both refused."""
    hand.positions[:] = 0.0
    hand.positions[3] = 0.5  # sent as the int32 500
    hand.position_encoding = "int32"
    with pytest.raises(DriverProtocolError, match=r"subnormal.*int32 500"):
        driver.read_state()
    hand.positions[3] = -0.3  # the int32 -300: a NaN as float32
    with pytest.raises(DriverProtocolError, match="implausible"):
        driver.read_state()
    hand.position_encoding = "float32"
    np.testing.assert_allclose(driver.read_state().positions[3], -0.3, atol=1e-6)


def test_a_reconnect_or_failed_enable_never_re_sends_position_mode(
    hand: FakeXHand, driver: XHandSerialDriver
) -> None:
    """Found by review: read_state re-sent the last frame, so after a reconnect (or a failed
    enable) every tick drove the hand back to a target from before, in position mode, while
    the controller said it was holding for ~/enable. Reads while not enabled are powerless."""
    limits = xhand_joint_limits()
    target = 0.5 * (limits.lower + limits.upper)
    driver.enable()
    driver.send_positions(target)
    driver.close()
    driver.connect()
    hand.positions[:] = limits.lower  # the hand went limp and was moved meanwhile
    driver.read_state()
    assert hand.received[-1] == frame(0xFE, 0x80, 0x02, control_payload(np.zeros(12), 0))
    np.testing.assert_allclose(hand.positions, limits.lower)
    with pytest.raises(DriverCommandError, match="not enabled"):
        driver.send_positions(target)
    hand.error_reply = 0x0101  # the mode-3 frame of an enable fails ...
    with pytest.raises(DeviceFault):
        driver.enable()
    hand.error_reply = 0
    driver.read_state()  # ... and nothing in position mode is left to re-send
    assert hand.received[-1] == frame(0xFE, 0x80, 0x02, control_payload(np.zeros(12), 0))
