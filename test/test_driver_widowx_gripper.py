"""The WidowX finger adapter over the real Dynamixel driver and its fake bus."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from human_video_policy.drivers.base import DriverCommandError, JointDriver
from human_video_policy.drivers.dynamixel import (
    DynamixelArmConfig,
    DynamixelArmDriver,
    rad_to_ticks,
)
from human_video_policy.drivers.fake_devices.dynamixel_fake import DynamixelBus
from human_video_policy.drivers.widowx_gripper import FingerGripperDriver, HornGeometry
from human_video_policy.errors import ConfigError
from human_video_policy.robots.widowx import GRIPPER_CLOSED, GRIPPER_OPEN, WIDOWX_COMMAND_JOINTS

ALL_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9)


def test_geometry_round_trip_and_interbotix_end_points() -> None:
    g = HornGeometry()
    low, high = g.finger_range
    assert low == pytest.approx(0.010) and high == pytest.approx(0.038)
    np.testing.assert_allclose(
        g.finger_from_angle([-math.pi / 2, 0.0, math.pi / 2]),
        [low, math.sqrt(0.024**2 - 0.014**2), high],
    )
    fingers = np.linspace(low, high, 50)
    back = g.finger_from_angle(g.angle_from_finger(fingers))
    np.testing.assert_allclose(back, fingers, atol=1e-9)
    # The URDF's finger range lies inside what the linkage reaches, and opening is monotone.
    assert low <= GRIPPER_CLOSED and high >= GRIPPER_OPEN
    angles = g.angle_from_finger(fingers)
    assert np.all(np.diff(angles) > 0)
    with pytest.raises(ConfigError, match="arm_length"):
        HornGeometry(horn_radius=0.03, arm_length=0.02)


@pytest.fixture
def finger_driver() -> Iterator[tuple[FingerGripperDriver, DynamixelBus]]:
    with DynamixelBus(ALL_IDS) as bus:
        inner = DynamixelArmDriver(DynamixelArmConfig(port=bus.path, min_timeout_s=0.5))
        driver = FingerGripperDriver(inner)
        driver.connect()
        yield driver, bus
        driver.close()


def test_finger_commands_reach_the_servo_as_angles(finger_driver) -> None:
    driver, bus = finger_driver
    assert isinstance(driver, JointDriver)
    assert driver.joint_names == WIDOWX_COMMAND_JOINTS
    driver.enable()
    target = np.array([0.3, -0.2, 0.2, 0.0, 1.0, 0.5, 0.030])
    driver.send_positions(target)
    state = driver.read_state()  # sync write has no reply: once this answers, the write is in
    theta = HornGeometry().angle_from_finger(0.030)
    assert bus.present_ticks(9) == rad_to_ticks(np.array([theta]))[0]
    assert state.names == WIDOWX_COMMAND_JOINTS
    np.testing.assert_allclose(state.positions[:6], target[:6], atol=math.pi / 4096)
    # One servo tick is ~1.5 mrad, i.e. well under 0.1 mm of finger travel.
    assert state.positions[6] == pytest.approx(0.030, abs=1e-4)


def test_unreachable_or_bad_finger_commands_are_refused(finger_driver) -> None:
    driver, bus = finger_driver
    driver.enable()
    sent = len(bus.received)
    for finger in (0.005, 0.045, float("nan")):
        with pytest.raises(DriverCommandError):
            driver.send_positions(np.array([0, 0, 0, 0, 0, 0, finger]))
    assert len(bus.received) == sent, "a refused command reached the bus"
    with pytest.raises(ConfigError, match="no joint 'claw'"):
        FingerGripperDriver(driver.inner, servo_joint="claw")
