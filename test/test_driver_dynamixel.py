"""DynamixelArmDriver against a fake Protocol 2.0 bus on a pty: exact bytes, units, failures."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from dynamixel_sdk import PacketHandler

from human_video_policy.drivers.base import (
    DeviceFault,
    DriverCommandError,
    DriverConnectionError,
    DriverProtocolError,
    DriverTimeoutError,
    Fault,
    JointDriver,
)
from human_video_policy.drivers.dynamixel import (
    WIDOWX_DYNAMIXEL_JOINTS,
    DynamixelArmConfig,
    DynamixelArmDriver,
    rad_to_ticks,
    ticks_to_rad,
)
from human_video_policy.drivers.fake_devices import FaultMode
from human_video_policy.drivers.fake_devices.dynamixel_fake import (
    DynamixelBus,
    build_packet,
    crc16_dynamixel,
)
from human_video_policy.errors import ConfigError


def _crc_table_8005() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_TABLE = _crc_table_8005()


def crc_reference(data: bytes) -> int:
    """Table-driven CRC-16 (0x8005), written independently of the fake's bitwise one."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def with_crc(body: bytes) -> bytes:
    return body + crc_reference(body).to_bytes(2, "little")


# ROBOTIS e-Manual, Protocol 2.0, "Ping" example: instruction to ID 1 and the XM430-W210
# status reply (model 1030, firmware 38). Source: docs/hardware_protocols.md.
PING_ID1 = bytes.fromhex("FF FF FD 00 01 03 00 01 19 4E")
PING_STATUS_ID1 = bytes.fromhex("FF FF FD 00 01 07 00 55 00 06 04 26 65 5D")

ALL_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
ARM_IDS = (1, 2, 4, 6, 7, 8, 9)


@pytest.fixture
def bus() -> Iterator[DynamixelBus]:
    with DynamixelBus(ALL_IDS) as fake:
        yield fake


@pytest.fixture
def driver(bus: DynamixelBus) -> Iterator[DynamixelArmDriver]:
    # A generous reply timeout: the fake shares 2 loaded cores with the test.
    arm = DynamixelArmDriver(DynamixelArmConfig(port=bus.path, min_timeout_s=0.5))
    arm.connect()
    yield arm
    arm.close()


def test_documented_ping_packets_have_the_documented_crc() -> None:
    for packet in (PING_ID1, PING_STATUS_ID1):
        assert crc_reference(packet[:-2]) == int.from_bytes(packet[-2:], "little")
        assert crc16_dynamixel(packet[:-2]) == int.from_bytes(packet[-2:], "little")
    sdk = PacketHandler(2.0)
    assert sdk.updateCRC(0, list(PING_ID1), 8) == 0x4E19
    assert build_packet(1, 0x01) == PING_ID1
    assert build_packet(1, 0x55, bytes([0x06, 0x04, 0x26]), error=0) == PING_STATUS_ID1


def test_byte_stuffing_matches_the_sdk() -> None:
    params = bytes([0x74, 0x00, 0xFF, 0xFF, 0xFD, 0x01])  # contains the header pattern
    packet = build_packet(5, 0x03, params)
    assert b"\xff\xff\xfd\xfd" in packet[7:]
    sdk = PacketHandler(2.0)
    raw = [0xFF, 0xFF, 0xFD, 0x00, 5, 0, 0, 0x03, *params, 0, 0]
    raw[5:7] = (len(params) + 3).to_bytes(2, "little")
    stuffed = sdk.addStuffing(raw)
    assert bytes(stuffed[:-2]) == packet[:-2]
    assert with_crc(packet[:-2]) == packet


def test_ticks_and_radians() -> None:
    assert rad_to_ticks(np.array([0.0]))[0] == 2048
    assert rad_to_ticks(np.array([math.pi / 2]))[0] == 3072
    assert rad_to_ticks(np.array([-math.pi]))[0] == 0
    assert ticks_to_rad(np.array([1024]))[0] == pytest.approx(-math.pi / 2)
    q = np.linspace(-3.1, 3.1, 41)
    assert np.abs(ticks_to_rad(rad_to_ticks(q)) - q).max() <= math.pi / 4096 + 1e-12


def test_connect_pings_every_servo_and_links_the_shadows(
    bus: DynamixelBus, driver: DynamixelArmDriver
) -> None:
    assert isinstance(driver, JointDriver)
    assert driver.joint_names == WIDOWX_DYNAMIXEL_JOINTS
    assert bus.received[0] == PING_ID1
    pinged = [p[4] for p in bus.received if p[7] == 0x01]
    assert pinged == [*ARM_IDS, 3, 5]
    assert bus.servos[3].secondary_id == 2
    assert bus.servos[5].secondary_id == 4


def test_state_and_streaming_bytes_on_the_wire(
    bus: DynamixelBus, driver: DynamixelArmDriver
) -> None:
    driver.enable()
    assert all(bus.servos[i].table[64] == 1 for i in ALL_IDS)
    before = len(bus.received)
    state = driver.read_state()
    sync_read = bus.received[before]
    expected_read = with_crc(bytes.fromhex("FF FF FD 00 FE 0E 00 82 84 00 04 00") + bytes(ARM_IDS))
    assert sync_read == expected_read
    assert state.enabled and state.faults == ()
    np.testing.assert_allclose(state.positions, 0.0)

    target = np.array([0.5, -0.4, 0.4, 0.0, 1.57, -1.0, 0.3])
    for k in range(100):  # 100 commands back to back, as a 100 Hz loop would send them
        driver.send_positions(target * (k + 1) / 100)
    ticks = rad_to_ticks(target)
    body = b"".join(
        bytes([i]) + int(t).to_bytes(4, "little") for i, t in zip(ARM_IDS, ticks, strict=True)
    )
    expected_write = with_crc(
        bytes.fromhex("FF FF FD 00 FE")
        + (len(body) + 7).to_bytes(2, "little")
        + bytes.fromhex("83 74 00 04 00")
        + body
    )
    state = driver.read_state()  # the bus answers in order: every write is in by now
    assert bus.received[-2] == expected_write
    assert sum(p[7] == 0x83 for p in bus.received) == 100 + 1  # + the hold goal of enable()
    np.testing.assert_allclose(state.positions, target, atol=math.pi / 4096)
    assert bus.present_ticks(3) == ticks[1]  # the shoulder shadow followed its master
    assert bus.present_ticks(5) == ticks[2]


def test_hardware_error_is_a_fault_in_state_and_refuses_enable(
    bus: DynamixelBus, driver: DynamixelArmDriver
) -> None:
    bus.set_hardware_error(2, 0x04)
    state = driver.read_state()
    assert state.faults == (Fault(code=0x04, meaning="Overheating Error", joint="shoulder"),)
    with pytest.raises(DeviceFault, match="hardware error") as info:
        driver.enable()
    assert info.value.code == 0x80


def test_silent_bus_times_out(bus: DynamixelBus, driver: DynamixelArmDriver) -> None:
    bus.fault = FaultMode.SILENT
    with pytest.raises(DriverTimeoutError, match="no status packet"):
        driver.read_state()


def test_corrupted_crc_is_a_protocol_error(bus: DynamixelBus, driver: DynamixelArmDriver) -> None:
    bus.fault = FaultMode.MALFORMED
    with pytest.raises(DriverProtocolError, match="dynamixel@"):
        driver.read_state()


def test_dropped_link_is_a_connection_error(bus: DynamixelBus, driver: DynamixelArmDriver) -> None:
    bus.drop_link()
    with pytest.raises(DriverConnectionError, match="dynamixel@"):
        driver.read_state()
        driver.send_positions(np.zeros(7))


def test_bad_commands_are_refused_and_not_sent(
    bus: DynamixelBus, driver: DynamixelArmDriver
) -> None:
    sent = len(bus.received)
    for bad in (np.full(7, np.nan), np.zeros(6), np.array([4.0, 0, 0, 0, 0, 0, 0])):
        with pytest.raises(DriverCommandError):
            driver.send_positions(bad)
    assert len(bus.received) == sent


def test_connect_failures() -> None:
    with pytest.raises(DriverConnectionError, match="cannot open serial port"):
        DynamixelArmDriver(DynamixelArmConfig(port="/dev/does-not-exist")).connect()
    with DynamixelBus((1, 2, 3)) as partial:  # ids 4-9 missing: ping 4 times out
        arm = DynamixelArmDriver(DynamixelArmConfig(port=partial.path, min_timeout_s=0.2))
        with pytest.raises(DriverTimeoutError, match="ping id 4"):
            arm.connect()
        assert not arm.is_connected
        arm.close()  # safe after a failed connect


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="baudrate"):
        DynamixelArmConfig(port="/dev/x", baudrate=12345)
    with pytest.raises(ConfigError, match="servo_ids"):
        DynamixelArmConfig(port="/dev/x", servo_ids={"waist": 1})
    with pytest.raises(ConfigError, match="unique"):
        DynamixelArmConfig(port="/dev/x", shadow_ids={"shoulder": 2})
    with pytest.raises(ConfigError, match="min_timeout_s"):
        DynamixelArmConfig(port="/dev/x", min_timeout_s=-1.0)


def test_fake_bus_runs_standalone() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "human_video_policy.drivers.fake_devices.dynamixel_fake"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        match = re.search(r" on (/dev/\S+)", proc.stdout.readline())
        assert match
        config = DynamixelArmConfig(port=match.group(1), min_timeout_s=0.5)
        with DynamixelArmDriver(config) as arm:
            np.testing.assert_allclose(arm.read_state().positions, np.zeros(7))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
