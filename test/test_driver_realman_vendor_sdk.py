"""Realman's own SDK (PyPI ``robotic-arm``, import ``Robotic_Arm``) against the fake controller.

Why: the fake and the project's driver were written from the same reading of the JSON protocol,
so they could share a misunderstanding. The vendor's client is an independent peer: it must
complete its whole connect handshake against the fake, read the same joint angles, and send
byte-for-byte the same ``movej_canfd`` targets as the project's driver for the same trajectory.
Skipped only where the SDK's binary (``libapi_c.so``) does not load.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from human_video_policy.drivers.base import (
    DeviceFault,
    DriverConnectionError,
    DriverError,
    DriverProtocolError,
    DriverTimeoutError,
)
from human_video_policy.drivers.fake_devices import FaultMode
from human_video_policy.drivers.fake_devices.realman_fake import FakeRealmanController
from human_video_policy.drivers.realman import RealmanArmConfig, RealmanArmDriver, RealmanDriver
from human_video_policy.drivers.realman_sdk import PIPE_MARGIN_S
from human_video_policy.errors import ConfigError

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


@pytest.mark.parametrize("follow", [False, True])
def test_the_vendor_sdk_and_the_driver_send_the_same_trajectory(follow: bool) -> None:
    """The same joint trajectory (rad -> the SDK's degrees) through both clients, in low and
    high follow: each fake receives identical integer targets in 0.001 degree (units,
    rounding, joint order) and the same follow flag."""
    rng = np.random.default_rng(12)
    trajectory = np.cumsum(rng.normal(0.0, 0.01, (40, 7)), axis=0)  # rad, a random walk
    with FakeRealmanController() as ours, FakeRealmanController() as theirs:
        ours.joint_mdeg = theirs.joint_mdeg = list(START_MDEG)
        driver = RealmanArmDriver(RealmanArmConfig(host="127.0.0.1", port=ours.port, follow=follow))
        driver.connect()
        driver.enable()
        arm = _vendor_arm(theirs)
        try:
            assert arm.rm_set_arm_power(1) == 0
            for q in trajectory:
                driver.send_positions(q)
                assert arm.rm_movej_canfd([float(v) for v in np.degrees(q)], follow) == 0
            deadline = time.monotonic() + 5.0  # both clients' targets may still be in flight
            while min(ours.movej_canfd_count(), theirs.movej_canfd_count()) < len(trajectory):
                assert time.monotonic() < deadline, (
                    ours.movej_canfd_count(),
                    theirs.movej_canfd_count(),
                )
                time.sleep(0.01)
        finally:
            arm.rm_delete_robot_arm()
            driver.close()
        assert {flag for _, flag in _canfd_targets(ours) + _canfd_targets(theirs)} == {follow}
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
    with FakeRealmanController() as hostile:  # before: this reply aborted the doctor (SIGABRT)
        huge = b'{"min_pos": [' + b"-1000," * 999 + b'-1000], "state": "joint_min_pos"}\r\n'
        hostile.reply_hook = lambda request: (
            huge if request.get("command") == "get_joint_min_pos" else None
        )
        result = check_realman(f"127.0.0.1:{hostile.port}")
        assert not result.ok and "killed by SIGABRT" in result.detail, result


def test_the_sdk_backend_drives_the_arm_behind_the_controller_core() -> None:
    """driver_config backend: sdk: the same JointDriver on Realman's SDK, ticked by the
    controller core (safety layer) against the fake: it reads, powers on, follows, holds."""
    from human_video_policy.control import JointController
    from human_video_policy.robots.rm75 import rm75_joint_limits
    from human_video_policy.safety import SafetyConfig, SafetyLayer

    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        # 20 ms: the fake is a Python thread in this busy process, not a controller's firmware
        config = RealmanArmConfig(
            host="127.0.0.1", port=fake.port, backend="sdk", state_timeout_s=0.02
        )
        driver = RealmanDriver(config)
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
        errors = core.counters.driver_errors
        # the SDK reads 1e400 as the int 2147483647 (2147483.75 deg): the adapter's bound
        # refuses it; an error, held, no state
        result = core.tick(time.monotonic())
        assert result.state is None and not result.sent
        assert "2147483.75 deg is not finite within +-360" in result.error, result.error
        assert core.counters.driver_errors == errors + 1 and core.layer.holding
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


def test_stop_and_slow_stop_halt_a_planned_move() -> None:
    """Found by the audit: the fake acknowledged stops but its planned move still arrived.
    Now a quick stop after a non-blocking movej leaves the joints where they were, and a slow
    stop during a blocking movej ends it early with the SDK's "controller returned false" (1),
    the end of the move pushed as failed."""
    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        fake.motion_s = 0.4
        arm = _vendor_arm(fake)
        try:
            assert arm.rm_set_arm_power(1) == 0
            goal = [5.0, -10.0, 15.0, -20.0, 25.0, -30.0, 35.0]
            assert arm.rm_movej(goal, 20, 0, 0, 0) == 0  # non-blocking: returns on the ack
            assert arm.rm_set_arm_stop() == 0
            time.sleep(fake.motion_s + 0.2)
            assert fake.joint_mdeg == START_MDEG and fake.moves_halted == 1

            stopped: list[int] = []
            stopper = threading.Timer(0.1, lambda: stopped.append(arm.rm_set_arm_slow_stop()))
            stopper.start()
            start = time.monotonic()
            assert arm.rm_movej(goal, 20, 0, 0, 1) == 1  # blocking: ended by the slow stop
            assert time.monotonic() - start < fake.motion_s
            stopper.join()
            assert stopped == [0] and fake.moves_halted == 2
            time.sleep(fake.motion_s)
            assert fake.joint_mdeg == START_MDEG
            assert arm.rm_movej(goal, 20, 0, 0, 1) == 0  # an unstopped move still arrives
            assert fake.joint_mdeg == [round(v * 1000) for v in goal]
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


# -- the adapter (backend sdk): what the SDK's codes and states become ------------------------
def _sdk_driver(fake: FakeRealmanController, **extra: object) -> RealmanDriver:
    # 20 ms: the fake is a Python thread in this busy process, not a controller's firmware
    fields: dict = {"state_timeout_s": 0.02, **extra}
    driver = RealmanDriver(
        RealmanArmConfig(host="127.0.0.1", port=fake.port, backend="sdk", **fields)
    )
    driver.connect()
    return driver


def _gone(pid: int | None) -> bool:
    return pid is not None and not Path(f"/proc/{pid}").exists()


def test_the_sdk_backend_reports_the_controllers_error_codes_as_faults() -> None:
    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        driver = _sdk_driver(fake)
        try:
            assert driver.read_state().faults == ()
            fake.error_code = 0x100D
            faults = driver.read_state().faults
            assert [(f.code, f.meaning) for f in faults] == [(0x100D, "Robotic arm collision")]
        finally:
            driver.close()


def test_a_refused_power_on_raises_the_controllers_error() -> None:
    """The SDK's code 1 (controller said false) is a DeviceFault naming the standing error,
    as the JSON client gives it; the arm is not reported enabled."""
    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        fake.error_code = 0x100D
        driver = _sdk_driver(fake)
        try:
            with pytest.raises(DeviceFault) as caught:
                driver.enable()
            assert caught.value.code == 0x100D and "set_arm_power 1" in str(caught.value)
            assert not driver.read_state().enabled and not fake.powered
            fake.error_code = 0
            driver.enable()
            assert driver.read_state().enabled and fake.powered
            driver.disable()
            assert not fake.powered
        finally:
            driver.close()


# err as an int, the manual's form: the SDK cannot read it (-3); the JSON client can
ERR_AS_INT = (
    b'{"state":"current_arm_state","arm_state":{"joint":[0,0,0,0,0,0,0],'
    b'"pose":[0,0,0,0,0,0],"err":4109}}\r\n'
)


@pytest.mark.parametrize(
    ("fault", "reply", "error", "text"),
    [
        (FaultMode.SILENT, None, DriverTimeoutError, "no reply in time (-2)"),
        (FaultMode.NONE, ERR_AS_INT, DriverProtocolError, "reply not readable (-3)"),
    ],
)
def test_sdk_link_errors_map_to_the_drivers_and_drop_the_connection(
    fault: FaultMode, reply: bytes | None, error: type[DriverError], text: str
) -> None:
    """-2 and -3 are link errors, not device faults; after either the SDK process and its
    connection are gone (a late reply can never answer a later request), and a reconnect
    starts a fresh process."""
    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        driver = _sdk_driver(fake)
        pid = driver.inner.child_pid
        fake.fault = fault
        fake.reply_hook = lambda request: (
            reply if request.get("command") == "get_current_arm_state" else None
        )
        with pytest.raises(error, match=re.escape(text)):
            driver.read_state()
        assert not driver.is_connected and _gone(pid)
        fake.fault, fake.reply_hook = FaultMode.NONE, None
        driver.connect()
        assert driver.inner.child_pid != pid
        np.testing.assert_allclose(
            driver.read_state().positions, np.radians(np.array(START_MDEG) / 1000.0)
        )
        driver.close()


def test_a_reset_connection_is_a_connection_error() -> None:
    with FakeRealmanController() as fake:
        driver = _sdk_driver(fake)
        driver.enable()
        fake.reset_connection()
        deadline = time.monotonic() + 2.0
        with pytest.raises(DriverError):
            while time.monotonic() < deadline:
                driver.read_state()
                driver.send_positions(np.zeros(7))
                time.sleep(0.01)
        assert not driver.is_connected
        driver.connect()  # the fake accepts the next connection
        driver.read_state()
        driver.close()


def test_angles_beyond_360_degrees_are_refused() -> None:
    with FakeRealmanController() as fake:
        driver = _sdk_driver(fake)
        fake.joint_mdeg = [0, 0, 0, 361000, 0, 0, 0]
        with pytest.raises(DriverProtocolError, match=r"joint 4 angle 361.0 deg .*\+-360"):
            driver.read_state()
        assert not driver.is_connected
        fake.joint_mdeg = [0, 0, 0, -359000, 0, 0, 0]
        driver.connect()
        assert np.degrees(driver.read_state().positions[3]) == pytest.approx(-359.0)
        driver.close()


def test_the_sdk_backend_declares_its_tick_io_bound() -> None:
    """The node checks the bound against its period: with the default timeouts it fits
    100 Hz; the SDK's timeout follows state_timeout_s."""
    default = RealmanDriver(RealmanArmConfig(host="127.0.0.1", backend="sdk"))
    assert default.tick_io_bound_s is not None and default.tick_io_bound_s <= 0.01
    slow = RealmanDriver(RealmanArmConfig(host="127.0.0.1", backend="sdk", state_timeout_s=0.02))
    assert slow.tick_io_bound_s == pytest.approx(0.02 + PIPE_MARGIN_S)
    with pytest.raises(ConfigError, match="backend"):
        RealmanArmConfig(host="127.0.0.1", backend="vendor")


def test_an_sdk_that_does_not_load_is_a_connection_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where libapi_c.so does not load (another OS or CPU), connect says so and names the
    other backend; the import fails in the SDK process, which a stand-in package makes
    happen here (it shadows the real one on PYTHONPATH)."""
    package = tmp_path / "Robotic_Arm"
    package.mkdir()
    (package / "__init__.py").write_text("raise OSError('libapi_c.so: wrong ELF class')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    driver = RealmanDriver(RealmanArmConfig(host="127.0.0.1", port=1, backend="sdk"))
    with pytest.raises(DriverConnectionError, match=r"does not load: OSError.*use backend json"):
        driver.connect()
    assert not driver.is_connected


@pytest.mark.ros
def test_the_node_builds_the_sdk_backend_from_its_driver_config() -> None:
    """driver_config as the arm controller node parses it selects backend sdk; the built
    driver runs the controller core against the fake and declares its I/O bound."""
    from human_video_policy.control import JointController
    from human_video_policy.nodes.arm_controller_node import build_real_driver
    from human_video_policy.robots.rm75 import rm75_joint_limits
    from human_video_policy.safety import SafetyConfig, SafetyLayer

    with FakeRealmanController() as fake:
        fake.joint_mdeg = list(START_MDEG)
        driver = build_real_driver(
            "realman",
            f"{{host: 127.0.0.1, port: {fake.port}, backend: sdk, state_timeout_s: 0.02}}",
        )
        assert driver.name.startswith("realman-sdk@")
        assert driver.tick_io_bound_s == pytest.approx(0.02 + PIPE_MARGIN_S)
        core = JointController(driver, SafetyLayer(SafetyConfig(limits=rm75_joint_limits())))
        start = core.start()
        target = start.positions - 0.02
        for _ in range(60):
            core.submit(target, time.monotonic())
            result = core.tick(time.monotonic())
            assert result.error == "" and result.sent, result.error
            time.sleep(0.01)
        np.testing.assert_allclose(
            np.radians(np.array(fake.joint_mdeg) / 1000.0), target, atol=1e-4
        )
        core.stop()
        assert not fake.powered and not driver.is_connected
