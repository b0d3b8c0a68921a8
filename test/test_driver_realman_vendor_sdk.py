"""Realman's own SDK (PyPI ``robotic-arm``, import ``Robotic_Arm``) against the fake controller.

Why: the fake and the project's driver were written from the same reading of the JSON protocol,
so they could share a misunderstanding. The vendor's client is an independent peer: it must
complete its whole connect handshake against the fake, read the same joint angles, and send
byte-for-byte the same ``movej_canfd`` targets as the project's driver for the same trajectory.
Skipped only where the SDK's binary (``libapi_c.so``) does not load.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from human_video_policy.drivers.fake_devices.realman_fake import FakeRealmanController
from human_video_policy.drivers.realman import RealmanArmConfig, RealmanArmDriver

try:
    from Robotic_Arm.rm_robot_interface import RoboticArm, rm_thread_mode_e
except (ImportError, OSError) as exc:  # the wheel ships libapi_c.so for linux x86/arm only
    pytest.skip(f"Realman SDK (robotic-arm) does not load here: {exc}", allow_module_level=True)

START_MDEG = [1000, -2000, 3000, -4000, 5000, -6000, 7000]


def _vendor_arm(fake: FakeRealmanController) -> RoboticArm:
    arm = RoboticArm(rm_thread_mode_e.RM_TRIPLE_MODE_E)
    handle = arm.rm_create_robot_arm("127.0.0.1", fake.port)
    assert handle.id > 0, [line.decode() for line in fake.received]
    return arm


def _canfd_targets(fake: FakeRealmanController) -> list[tuple[list[int], bool]]:
    out = []
    for line in fake.received:
        message = json.loads(line)
        if message.get("command") == "movej_canfd":
            out.append((message["joint"], message["follow"]))
    return out


def test_the_vendor_sdk_runs_a_whole_session_against_the_fake() -> None:
    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        arm = _vendor_arm(fake)
        try:
            code, info = arm.rm_get_arm_software_info()
            assert code == 0 and info["product_version"] == "RM75-B", info
            code, state = arm.rm_get_current_arm_state()
            assert code == 0
            np.testing.assert_allclose(state["joint"], np.array(START_MDEG) / 1000.0)  # degrees
            assert arm.rm_set_arm_power(1) == 0 and fake.powered
            assert arm.rm_movej_canfd([10.0, -20.0, 30.0, -40.0, 50.0, -60.0, 70.0], False) == 0
            assert arm.rm_movej_canfd([10.5, -20.0, 30.0, -40.0, 50.0, -60.0, 70.25], True) == 0
            deadline = time.monotonic() + 2.0
            while fake.movej_canfd_count() < 2:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert [follow for _, follow in _canfd_targets(fake)] == [False, True]
            assert fake.joint_mdeg == [10500, -20000, 30000, -40000, 50000, -60000, 70250]
            assert arm.rm_set_arm_slow_stop() == 0
            assert arm.rm_set_arm_stop() == 0
            fake.error_code = 0x1002  # "Target angle out of limit"
            code, state = arm.rm_get_current_arm_state()
            assert code == 0 and 0x1002 in [int(e) for e in state["err"]["err"]], state
        finally:
            arm.rm_delete_robot_arm()


def test_the_vendor_sdk_and_the_driver_send_the_same_trajectory() -> None:
    """The same joint trajectory (rad -> the SDK's degrees) through both clients: each fake
    receives identical integer targets in 0.001 degree (units, rounding, joint order)."""
    rng = np.random.default_rng(12)
    trajectory = np.cumsum(rng.normal(0.0, 0.01, (40, 7)), axis=0)  # rad, a random walk
    with FakeRealmanController() as ours, FakeRealmanController() as theirs:
        ours.joint_mdeg = theirs.joint_mdeg = list(START_MDEG)
        driver = RealmanArmDriver(RealmanArmConfig(host="127.0.0.1", port=ours.port))
        driver.connect()
        driver.enable()
        arm = _vendor_arm(theirs)
        try:
            assert arm.rm_set_arm_power(1) == 0
            for q in trajectory:
                driver.send_positions(q)
                assert arm.rm_movej_canfd([float(v) for v in np.degrees(q)], False) == 0
            deadline = time.monotonic() + 2.0
            while theirs.movej_canfd_count() < len(trajectory):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        finally:
            arm.rm_delete_robot_arm()
            driver.close()
        sent_by_driver = [joints for joints, _ in _canfd_targets(ours)]
        sent_by_vendor = [joints for joints, _ in _canfd_targets(theirs)]
        assert len(sent_by_driver) == len(sent_by_vendor) == len(trajectory)
        # Same joints, same units, same order. Measured difference: the vendor SDK truncates
        # toward zero where the driver rounds to the nearest 0.001 degree, so they differ by at
        # most one unit (0.001 deg = 1.7e-5 rad), and the driver's is the closer one.
        driver_mdeg, vendor_mdeg = np.array(sent_by_driver), np.array(sent_by_vendor)
        assert np.abs(driver_mdeg - vendor_mdeg).max() <= 1
        exact = np.degrees(trajectory) * 1000.0
        np.testing.assert_array_equal(vendor_mdeg, np.trunc(exact).astype(int))
        assert np.abs(driver_mdeg - exact).max() <= 0.5 + 1e-9


def test_doctor_reports_the_sdk_and_whether_the_controller_answers() -> None:
    from human_video_policy.bringup.doctor import check_realman

    alone = check_realman()
    assert alone.ok and "robotic-arm 1.1.6" in alone.detail
    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        result = check_realman(f"127.0.0.1:{fake.port}")
        assert result.ok, result
        assert "answers: joints" in result.detail and "connects (RM75-B)" in result.detail
        assert fake.movej_canfd_count() == 0  # a check moves nothing
    nobody = check_realman("127.0.0.1:1")
    assert not nobody.ok and "does not answer" in nobody.detail


def test_the_sdk_backend_drives_the_arm_behind_the_controller_core() -> None:
    """driver_config backend: sdk: the same JointDriver on Realman's SDK, ticked by the
    controller core (safety layer) against the fake: it reads, powers on, follows, holds."""
    from human_video_policy.control import JointController
    from human_video_policy.drivers.realman import RealmanDriver
    from human_video_policy.robots.rm75 import rm75_joint_limits
    from human_video_policy.safety import SafetyConfig, SafetyLayer

    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        driver = RealmanDriver(RealmanArmConfig(host="127.0.0.1", port=fake.port, backend="sdk"))
        assert driver.inner.name.startswith("realman-sdk@")
        core = JointController(driver, SafetyLayer(SafetyConfig(limits=rm75_joint_limits())))
        start = core.start()
        np.testing.assert_allclose(start.positions, np.radians(np.array(START_MDEG) / 1000.0))
        assert fake.powered
        target = start.positions + 0.05
        for _ in range(150):  # 1.5 s at 100 Hz: the layer ramps to the target
            core.submit(target, time.monotonic())
            result = core.tick(time.monotonic())
            assert result.error == "", result.error
            time.sleep(0.01)
        reached = np.radians(np.array(fake.joint_mdeg) / 1000.0)
        np.testing.assert_allclose(reached, target, atol=1e-4)
        fake.reply_hook = lambda request: (
            b'{"state":"current_arm_state","arm_state":{"joint":[1e400,0,0,0,0,0,0],'
            b'"pose":[0,0,0,0,0,0],"err":[0]}}\r\n'
            if request.get("command") == "get_current_arm_state"
            else None
        )
        result = core.tick(time.monotonic())  # whatever the SDK makes of it: no state, no crash
        assert result.state is None or np.all(np.isfinite(result.state.positions))
        fake.reply_hook = None
        core.stop()
        assert not driver.is_connected


def test_the_vendor_sdk_waits_for_the_pushed_end_of_a_planned_move() -> None:
    """rm_movej blocking: the fake acknowledges (receive_state) and pushes
    current_trajectory_state when the motion ends; the SDK returns only after that push. State
    reads between a non-blocking move and its push get the state reply, not the push."""
    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        fake.motion_s = 0.3
        arm = _vendor_arm(fake)
        try:
            assert arm.rm_set_arm_power(1) == 0
            goal = [5.0, -10.0, 15.0, -20.0, 25.0, -30.0, 35.0]
            start = time.monotonic()
            assert arm.rm_movej(goal, 20, 0, 0, 1) == 0
            assert time.monotonic() - start >= 0.25  # it waited for the pushed completion
            assert fake.joint_mdeg == [round(v * 1000) for v in goal]
            fake.motion_s = 0.05
            back = [float(v) / 1000.0 for v in START_MDEG]
            assert arm.rm_movej(back, 20, 0, 0, 0) == 0  # non-blocking: returns on the ack
            for _ in range(20):  # the completion is pushed among these replies
                code, state = arm.rm_get_current_arm_state()
                assert code == 0 and len(state["joint"]) == 7
                time.sleep(0.01)
            np.testing.assert_allclose(state["joint"], back)
        finally:
            arm.rm_delete_robot_arm()


def test_the_vendor_sdk_reports_the_fakes_refusals_as_error_codes() -> None:
    """Refusals the JSON protocol answers with false (receive_state / arm_power): the SDK
    returns 1 ("controller returned false"), and nothing moves."""
    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        arm = _vendor_arm(fake)
        try:
            assert arm.rm_movej([1.0] * 7, 20, 0, 0, 1) == 1  # not powered
            assert arm.rm_set_arm_power(1) == 0
            assert arm.rm_movej([179.0, 0, 0, 0, 0, 0, 0], 20, 0, 0, 1) == 1  # beyond +-178 deg
            fake.error_code = 0x100D  # collision
            assert arm.rm_movej([1.0] * 7, 20, 0, 0, 1) == 1
            assert arm.rm_set_arm_power(0) == 0
            assert arm.rm_set_arm_power(1) == 1  # power-on refused while the error stands
            assert fake.joint_mdeg == START_MDEG and not fake.powered
        finally:
            arm.rm_delete_robot_arm()


def test_the_driver_reads_state_among_pushed_trajectory_lines() -> None:
    """The project's driver on a controller that pushes planned-move lines (acknowledgement and
    completion, as the SDK's movej gets them) between the driver's requests: every state read
    is the controller's state, never a push."""
    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        config = RealmanArmConfig(host="127.0.0.1", port=fake.port, state_timeout_s=0.1)
        driver = RealmanArmDriver(config)
        driver.connect()
        driver.enable()
        try:
            for i in range(30):
                fake.push({"command": "movej", "receive_state": True})
                fake.push(
                    {"state": "current_trajectory_state", "trajectory_state": True, "device": 0}
                )
                fake.joint_mdeg = [i * 100] * 7
                time.sleep(0.002)  # the pushes reach the driver's socket before its request
                state = driver.read_state()
                np.testing.assert_allclose(state.positions, np.radians([i / 10.0] * 7), atol=1e-9)
        finally:
            driver.close()
