"""Fault injection: the XHand and Dynamixel drivers against hostile fake devices on a pty.

A reply that does not parse into finite joint positions in the joint's plausible range must be
a DriverError (which the controller counts), never a joint state and never any other exception;
every read ends by its deadline and reads a bounded number of bytes, whatever the device
sends. Real drivers, real fakes (drivers/fake_devices/hostile.py), real ptys; no mocks.
"""

from __future__ import annotations

import math
import time
import tracemalloc
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from human_video_policy.drivers.base import DriverError, DriverProtocolError, JointState
from human_video_policy.drivers.dynamixel import (
    DynamixelArmConfig,
    DynamixelArmDriver,
    rad_to_ticks,
)
from human_video_policy.drivers.fake_devices import wait_until
from human_video_policy.drivers.fake_devices.dynamixel_fake import HostileDynamixelBus
from human_video_policy.drivers.fake_devices.hostile import Hostility
from human_video_policy.drivers.fake_devices.xhand_fake import HostileXHand
from human_video_policy.drivers.widowx_gripper import FingerGripperDriver
from human_video_policy.drivers.xhand import XHandConfig
from human_video_policy.drivers.xhand_serial import XHandSerialDriver
from human_video_policy.robots.widowx import widowx_joint_limits
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits

XHAND_TIMEOUT_S = 0.2
DXL_MIN_TIMEOUT_S = 0.1
DXL_DEADLINE_S = DXL_MIN_TIMEOUT_S + 0.1  # + DynamixelArmConfig.call_margin_s default
SLACK_S = 0.25  # scheduling on 2 loaded cores
ALL_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9)


def timed(action: Callable[[], JointState]) -> tuple[JointState | DriverError, float]:
    """The state or the DriverError ``action`` gave, and how long it took (anything else
    propagates and fails the test)."""
    start = time.monotonic()
    try:
        result: JointState | DriverError = action()
    except DriverError as exc:
        result = exc
    return result, time.monotonic() - start


# --- XHand -----------------------------------------------------------------------------------
@pytest.fixture
def hand() -> Iterator[HostileXHand]:
    with HostileXHand(late_s=XHAND_TIMEOUT_S + 0.1) as fake:
        yield fake


@pytest.fixture
def xhand(hand: HostileXHand) -> Iterator[XHandSerialDriver]:
    driver = XHandSerialDriver(XHandConfig(port=hand.path, timeout_s=XHAND_TIMEOUT_S))
    driver.connect()
    yield driver
    driver.close()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e30, -1e30])
def test_xhand_non_finite_or_absurd_position_is_a_protocol_error(
    hand: HostileXHand, xhand: XHandSerialDriver, value: float
) -> None:
    hand.positions[3] = value
    with pytest.raises(DriverProtocolError, match=XHAND_JOINTS[3]):
        xhand.read_state()
    with pytest.raises(DriverProtocolError, match="implausible"):
        xhand.disable()  # the state frame answering a control frame is checked too
    hand.positions[3] = 0.1
    np.testing.assert_allclose(xhand.read_state().positions[3], 0.1, atol=1e-6)


def test_xhand_plausible_range_is_urdf_limits_plus_margin(
    hand: HostileXHand, xhand: XHandSerialDriver
) -> None:
    limits = xhand_joint_limits()
    hand.positions[:] = limits.upper + 0.45  # inside the 0.5 rad margin: a state
    assert np.isfinite(xhand.read_state().positions).all()
    hand.positions[:] = limits.lower - 0.45
    xhand.read_state()
    hand.positions[:] = 0.5 * (limits.lower + limits.upper)
    hand.positions[7] = limits.upper[7] + 0.6
    with pytest.raises(DriverProtocolError, match=rf"{XHAND_JOINTS[7]}=2\.5\d* rad"):
        xhand.read_state()


@pytest.mark.parametrize(
    "mode",
    [
        Hostility.SHORT,
        Hostility.HUGE_LENGTH,
        Hostility.GARBAGE,
        Hostility.GARBAGE_FLOOD,
        Hostility.FRAME_FLOOD,
        Hostility.HEADER_FLOOD,
        Hostility.PARTIAL,
        Hostility.LATE,
        Hostility.TRAILING,
    ],
)
def test_xhand_hostile_reply_is_a_driver_error_within_the_deadline_then_recovers(
    hand: HostileXHand, xhand: XHandSerialDriver, mode: Hostility
) -> None:
    hand.positions[:] = 0.05
    hand.set_hostility(mode)
    # A reply later than the timeout but within the next request's wait is indistinguishable
    # from its answer (the protocol has no sequence numbers): one LATE read only.
    for _ in range(1 if mode is Hostility.LATE else 3):
        result, elapsed = timed(xhand.read_state)
        assert elapsed < XHAND_TIMEOUT_S + SLACK_S, (mode, elapsed)
        if mode is Hostility.TRAILING:
            assert isinstance(result, JointState)  # the reply itself is fine
        else:
            assert isinstance(result, DriverError), (mode, result)
    hand.set_hostility(Hostility.NONE)
    hand.positions[:] = 0.15  # a late or trailing reply from before must not be taken for this
    time.sleep(hand.late_s)
    state = xhand.read_state()
    np.testing.assert_allclose(state.positions, 0.15, atol=1e-6)


def test_xhand_reply_split_over_many_reads_is_read(
    hand: HostileXHand, xhand: XHandSerialDriver
) -> None:
    hand.positions[:] = 0.125
    hand.set_hostility(Hostility.SPLIT)
    np.testing.assert_allclose(xhand.read_state().positions, 0.125, atol=1e-6)


def test_xhand_endless_stream_bounds_time_and_memory(
    hand: HostileXHand, xhand: XHandSerialDriver
) -> None:
    hand.set_hostility(Hostility.HEADER_FLOOD)  # 'AA 55' forever: every length is 0x55AA
    tracemalloc.start()
    try:
        worst = 0.0
        for _ in range(20):
            result, elapsed = timed(xhand.read_state)
            assert isinstance(result, DriverError)
            worst = max(worst, elapsed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert wait_until(lambda: hand.flooded_bytes > 10_000)
    assert worst < XHAND_TIMEOUT_S + SLACK_S
    assert peak < 256 * 1024, peak


def test_xhand_mutated_replies_fuzz(hand: HostileXHand) -> None:
    """200 replies with random bytes changed and a valid CRC: a DriverError or a state whose
    positions are finite and plausible, nothing else."""
    limits = xhand_joint_limits()
    xhand = XHandSerialDriver(XHandConfig(port=hand.path, timeout_s=0.05))
    xhand.connect()
    hand.set_hostility(Hostility.MUTATED)
    outcomes = {"state": 0, "error": 0}
    for _ in range(200):
        result, elapsed = timed(xhand.read_state)
        assert elapsed < 0.05 + SLACK_S
        if isinstance(result, JointState):
            assert np.all(result.positions >= limits.lower - 0.5)
            assert np.all(result.positions <= limits.upper + 0.5)
            outcomes["state"] += 1
        else:
            outcomes["error"] += 1
    xhand.close()
    assert outcomes["error"] > 20, outcomes


# --- Dynamixel -------------------------------------------------------------------------------
@pytest.fixture
def bus() -> Iterator[HostileDynamixelBus]:
    with HostileDynamixelBus(ALL_IDS, late_s=DXL_DEADLINE_S + 0.1) as fake:
        yield fake


@pytest.fixture
def arm(bus: HostileDynamixelBus) -> Iterator[DynamixelArmDriver]:
    driver = DynamixelArmDriver(DynamixelArmConfig(port=bus.path, min_timeout_s=DXL_MIN_TIMEOUT_S))
    driver.connect()
    yield driver
    driver.close()


@pytest.mark.parametrize("ticks", [2**31 - 1, -(2**31), 10_000, -3_000, 4096 + 400])
def test_dynamixel_absurd_ticks_are_a_protocol_error(
    bus: HostileDynamixelBus, arm: DynamixelArmDriver, ticks: int
) -> None:
    bus.set_present_ticks(4, ticks)  # the elbow
    with pytest.raises(DriverProtocolError, match=rf"elbow=.* rad \(ticks {ticks}"):
        arm.read_state()
    bus.set_present_ticks(4, 2048)
    np.testing.assert_allclose(arm.read_state().positions, 0.0)


def test_dynamixel_plausible_range_is_urdf_limits_plus_margin(
    bus: HostileDynamixelBus, arm: DynamixelArmDriver
) -> None:
    limits = widowx_joint_limits()
    elbow = limits.names.index("elbow")
    bus.set_present_ticks(4, int(rad_to_ticks(np.array([limits.upper[elbow] + 0.45]))[0]))
    assert arm.read_state().positions[2] == pytest.approx(limits.upper[elbow] + 0.45, abs=2e-3)
    bus.set_present_ticks(4, int(rad_to_ticks(np.array([limits.upper[elbow] + 0.55]))[0]))
    with pytest.raises(DriverProtocolError, match="elbow"):
        arm.read_state()
    bus.set_present_ticks(4, 2048)
    bus.set_present_ticks(9, 4095)  # the gripper servo: its single-turn range + margin
    assert arm.read_state().positions[6] == pytest.approx(math.pi, abs=2e-3)


def test_dynamixel_status_with_wrong_data_length_is_a_protocol_error(
    bus: HostileDynamixelBus, arm: DynamixelArmDriver
) -> None:
    bus.set_hostility(Hostility.SHORT)  # CRC-valid status packets with 1 data byte
    with pytest.raises(DriverProtocolError, match="data bytes, expected 4"):
        arm.read_state()


@pytest.mark.parametrize(
    "mode",
    [
        Hostility.SHORT,
        Hostility.HUGE_LENGTH,
        Hostility.GARBAGE,
        Hostility.GARBAGE_FLOOD,
        Hostility.FRAME_FLOOD,
        Hostility.HEADER_FLOOD,
        Hostility.PARTIAL,
        Hostility.LATE,
        Hostility.TRAILING,
    ],
)
def test_dynamixel_hostile_bus_is_a_driver_error_within_the_deadline_then_recovers(
    bus: HostileDynamixelBus, arm: DynamixelArmDriver, mode: Hostility
) -> None:
    bus.set_hostility(mode)
    for _ in range(1 if mode is Hostility.LATE else 3):
        result, elapsed = timed(arm.read_state)
        assert elapsed < DXL_DEADLINE_S + SLACK_S, (mode, elapsed)
        if mode is Hostility.TRAILING:
            assert isinstance(result, JointState)
        else:
            assert isinstance(result, DriverError), (mode, result)
    bus.set_hostility(Hostility.NONE)
    time.sleep(bus.late_s)
    np.testing.assert_allclose(arm.read_state().positions, 0.0)


def test_dynamixel_reply_split_over_many_reads_is_read(
    bus: HostileDynamixelBus, arm: DynamixelArmDriver
) -> None:
    bus.set_present_ticks(1, 3072)
    bus.set_hostility(Hostility.SPLIT)
    assert arm.read_state().positions[0] == pytest.approx(math.pi / 2)


@pytest.mark.parametrize("mode", [Hostility.HEADER_FLOOD, Hostility.FRAME_FLOOD])
def test_dynamixel_endless_stream_bounds_time_and_memory(
    bus: HostileDynamixelBus, arm: DynamixelArmDriver, mode: Hostility
) -> None:
    """The SDK's receive loops check their timeout only while bytes are missing: a header
    repeated without end, or status packets of a servo nobody asked, kept them reading."""
    bus.set_hostility(mode)
    tracemalloc.start()
    try:
        worst = 0.0
        for _ in range(10):
            result, elapsed = timed(arm.read_state)
            assert isinstance(result, DriverError)
            worst = max(worst, elapsed)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert bus.flooded_bytes > 10_000
    assert worst < DXL_DEADLINE_S + SLACK_S, worst
    assert peak < 256 * 1024, peak
    bus.set_hostility(Hostility.NONE)
    np.testing.assert_allclose(arm.read_state().positions, 0.0)


def test_dynamixel_mutated_status_packets_fuzz(bus: HostileDynamixelBus) -> None:
    """200 sync reads whose status packets have random bytes changed and a valid CRC."""
    config = DynamixelArmConfig(port=bus.path, min_timeout_s=0.02, call_margin_s=0.05)
    arm = DynamixelArmDriver(config)
    arm.connect()
    bus.set_hostility(Hostility.MUTATED)
    errors = 0
    for _ in range(200):
        result, elapsed = timed(arm.read_state)
        assert elapsed < 0.07 + SLACK_S
        if isinstance(result, JointState):
            assert np.all(np.abs(result.positions) <= math.pi + 0.5)
        else:
            errors += 1
    arm.close()
    assert errors > 20


def test_finger_gripper_over_a_hostile_bus_never_reports_a_non_finite_finger(
    bus: HostileDynamixelBus, arm: DynamixelArmDriver
) -> None:
    gripper = FingerGripperDriver(arm)
    bus.set_present_ticks(9, 2**31 - 1)
    with pytest.raises(DriverProtocolError, match="gripper"):
        gripper.read_state()
    bus.set_present_ticks(9, 2048)
    bus.set_hostility(Hostility.MUTATED)
    for _ in range(30):
        result, _ = timed(gripper.read_state)
        if isinstance(result, JointState):
            assert np.isfinite(result.positions).all()
            assert 0.0 < result.positions[6] < 0.04  # metres, inside the linkage's reach
