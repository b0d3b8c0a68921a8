"""The XHand on the vendor SDK's API: XHandSdkDriver against a stand-in with the same API.

Robotera's ``xhand_controller`` is a compiled wheel that is not installable here; the stand-in
(test/xhand_sdk_standin) has its classes, call signatures, ``(ErrorStruct, value)`` returns and
quirks, taken from the SDK's binding and headers. What is tested is the project's adapter:
joint order, units, error structs, hand side, plausible positions, exceptions from the binding,
and the backend choice of the controller's ``driver: xhand``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from human_video_policy.drivers.base import (
    DeviceFault,
    DriverCommandError,
    DriverConnectionError,
    DriverError,
    DriverProtocolError,
    DriverTimeoutError,
    Fault,
    JointDriver,
)
from human_video_policy.drivers.xhand import XHandConfig, XHandDriver, resolve_backend
from human_video_policy.drivers.xhand_sdk import XHandSdkDriver
from human_video_policy.errors import ConfigError
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits

sys.path.insert(0, str(Path(__file__).parent / "xhand_sdk_standin"))
from xhand_controller_standin import xhand_control as standin

PORT = "/dev/ttyXHAND-standin"
SDK = "xhand_controller_standin"


@pytest.fixture
def hand() -> Iterator[standin.StandinHand]:
    standin.BUS[PORT] = [standin.StandinHand(hand_id=0, side="R")]
    yield standin.BUS[PORT][0]
    standin.BUS.pop(PORT, None)


def _driver(**extra) -> XHandSdkDriver:
    config = XHandConfig(port=PORT, backend="sdk", sdk_module=SDK, **extra)
    driver = XHandSdkDriver(config)
    driver.connect()
    return driver


def test_positions_go_out_and_come_back_in_joint_order(hand: standin.StandinHand) -> None:
    driver = _driver()
    assert isinstance(driver, JointDriver) and driver.hand_side == "R"
    limits = xhand_joint_limits()
    target = limits.lower + (limits.upper - limits.lower) * np.linspace(0.1, 0.9, 12)
    driver.enable()
    assert [m for _, _, m in hand.commands[-1]] == [3] * 12  # enable: position mode ...
    np.testing.assert_allclose([q for _, q, _ in hand.commands[-1]], 0.0)  # ... where it is
    driver.send_positions(target)
    ids, positions, modes = zip(*hand.commands[-1], strict=True)
    assert ids == tuple(range(12)) and modes == (3,) * 12
    np.testing.assert_allclose(positions, target, atol=1e-6)  # rad, float32 in the SDK
    state = driver.read_state()
    assert state.names == XHAND_JOINTS
    np.testing.assert_allclose(state.positions, target, atol=1e-6)
    driver.disable()
    assert [m for _, _, m in hand.commands[-1]] == [0] * 12
    driver.close()
    assert not driver.is_connected


def test_sdk_errors_become_driver_errors(hand: standin.StandinHand) -> None:
    driver = _driver()
    hand.error_code = 1501042
    with pytest.raises(DeviceFault, match="hand error") as info:
        driver.read_state()
    assert info.value.code == 1501042
    hand.error_code = 0
    hand.raise_in_read = True
    with pytest.raises(DriverProtocolError, match="SDK read_state raised RuntimeError"):
        driver.read_state()
    hand.raise_in_read = False
    driver.enable()
    hand.board_errors[4] = (0, 8, 0)
    state = driver.read_state()
    assert state.faults == (Fault(8, "joint board error", XHAND_JOINTS[4]),)
    with pytest.raises(DeviceFault, match="joint board error"):
        driver.send_positions(np.zeros(12))
    driver.close()


def test_implausible_and_bad_commands_are_refused(hand: standin.StandinHand) -> None:
    driver = _driver()
    hand.positions[2] = np.float32(np.nan)
    with pytest.raises(DriverProtocolError, match="implausible"):
        driver.read_state()
    hand.positions[2] = np.float32(1e30)
    with pytest.raises(DriverProtocolError, match="implausible"):
        driver.read_state()
    hand.positions[2] = 0.0
    sent = len(hand.commands)
    for bad in (np.full(12, np.inf), np.zeros(7)):
        with pytest.raises(DriverCommandError):
            driver.send_positions(bad)
    assert len(hand.commands) == sent
    driver.close()


def test_connect_checks_the_port_the_hand_id_and_the_side(hand: standin.StandinHand) -> None:
    with pytest.raises(DriverConnectionError, match="open_serial failed: 1501050"):
        XHandSdkDriver(XHandConfig(port="/dev/nothing", backend="sdk", sdk_module=SDK)).connect()
    with pytest.raises(DriverConnectionError, match=r"hand id 3 not on the bus .*\[0\]"):
        _driver(hand_id=3)
    hand.side = "L"
    with pytest.raises(ConfigError, match="side 'L' but handedness='right'"):
        _driver()
    _driver(handedness="left").close()
    _driver(handedness="").close()
    hand.side = "N"  # the SDK's answer when the side register cannot be read
    with pytest.raises(DriverProtocolError, match="side reads 'N'"):
        _driver()


def test_a_missing_sdk_is_a_clear_connection_error() -> None:
    config = XHandConfig(port=PORT, backend="sdk", sdk_module="no_such_xhand_sdk")
    with pytest.raises(DriverConnectionError, match=r"not installed.*use backend serial"):
        XHandSdkDriver(config).connect()


def test_backend_auto_takes_the_sdk_only_when_it_imports(hand: standin.StandinHand) -> None:
    assert resolve_backend(XHandConfig(port=PORT, sdk_module=SDK)) == "sdk"
    assert resolve_backend(XHandConfig(port=PORT, sdk_module="no_such_xhand_sdk")) == "serial"
    assert resolve_backend(XHandConfig(port=PORT, backend="serial", sdk_module=SDK)) == "serial"
    driver = XHandDriver(XHandConfig(port=PORT, sdk_module=SDK))
    assert driver.backend == "sdk" and driver.name.startswith("xhand-sdk@")
    driver.connect()
    np.testing.assert_allclose(driver.read_state().positions, 0.0)
    driver.close()
    with pytest.raises(ConfigError, match="backend"):
        XHandConfig(port=PORT, backend="ethercat")


def test_the_sdk_reports_a_silent_hand_as_success(hand: standin.StandinHand) -> None:
    """A known limit of the vendor SDK, kept visible: a control frame without a reply returns
    error_code 0 and the cached state, so this backend cannot see a silent hand in one tick
    (the serial backend raises DriverTimeoutError). The state is at least the last real one."""
    driver = _driver()
    driver.enable()
    hand.silent = True
    try:
        state = driver.read_state()
    except DriverError as exc:  # pragma: no cover - would mean the SDK changed
        pytest.fail(f"the stand-in SDK raised {exc}")
    np.testing.assert_allclose(state.positions, 0.0)
    driver.close()


def test_doctor_reports_the_sdk_and_the_hands_it_lists(hand: standin.StandinHand) -> None:
    from human_video_policy.bringup.doctor import check_xhand_sdk

    present = check_xhand_sdk(SDK)
    assert present.ok and "standin-0.0" in present.detail
    assert f"{PORT}: id 0 side R" in present.detail
    from human_video_policy.bringup.doctor import port_in_use

    with open(__file__) as held:  # this process's own open file is not "another process"
        assert not port_in_use(held.name)
    assert not port_in_use("/dev/does-not-exist")
    import subprocess
    import time

    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time; f = open({__file__!r}); time.sleep(30)"]
    )
    try:
        deadline = time.monotonic() + 10.0
        while not port_in_use(__file__):
            assert time.monotonic() < deadline, "another process holding the file not seen"
            time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait()
    absent = check_xhand_sdk("no_such_xhand_sdk")
    assert absent.ok and "not installed" in absent.detail and "RS-485 framing" in absent.detail


def test_a_hand_that_never_answered_is_not_taken_for_one_at_zero(
    hand: standin.StandinHand,
) -> None:
    """Found by review: the SDK reports a command without reply as success and returns its
    all-zero default state; connect and enable started from it, so enable commanded 0 rad to
    a hand elsewhere. The default state (every temperature 0) is now refused."""
    hand.positions[:] = np.float32(0.4)
    hand.silent = True
    with pytest.raises(DriverTimeoutError, match="default state"):
        _driver()
    hand.silent = False
    driver = _driver()
    driver.enable()
    np.testing.assert_allclose([q for _, q, _ in hand.commands[-1]], 0.4, atol=1e-6)
    driver.close()


def test_a_failed_enable_and_a_reconnect_never_leave_position_mode_behind(
    hand: standin.StandinHand,
) -> None:
    """Found by review: a failed enable left a mode-3 command cached in the SDK, which every
    later state read re-sent; reads while not enabled now send a powerless command first."""
    driver = _driver()
    hand.refuse_position_mode = True
    with pytest.raises(DeviceFault):
        driver.enable()
    hand.refuse_position_mode = False
    driver.read_state()
    assert [m for _, _, m in hand.commands[-1]] == [0] * 12
    with pytest.raises(DriverCommandError, match="not enabled"):
        driver.send_positions(np.zeros(12))
    driver.enable()
    driver.send_positions(np.full(12, 0.2))
    driver.close()
    driver.connect()  # a reconnect: nothing from before is re-sent in position mode
    driver.read_state()
    assert [m for _, _, m in hand.commands[-1]] == [0] * 12
    driver.close()


class _Broken:
    """An SDK whose calls return the wrong shapes: nothing but DriverErrors may come out."""

    class XHandControl(standin.XHandControl):
        def list_hands_id(self):  # type: ignore[override]
            return None

    HandCommand_t = standin.HandCommand_t


def test_wrong_shapes_from_the_sdk_are_driver_errors_and_close_the_device(
    hand: standin.StandinHand,
) -> None:
    driver = XHandSdkDriver(XHandConfig(port=PORT, backend="sdk"), sdk=_Broken)
    with pytest.raises(DriverProtocolError, match="list_hands_id raised TypeError"):
        driver.connect()
    assert not driver.is_connected


def test_the_driver_used_in_a_with_block_ends_powerless(hand: standin.StandinHand) -> None:
    with XHandDriver(XHandConfig(port=PORT, sdk_module=SDK)) as driver:
        driver.enable()
        driver.send_positions(np.full(12, 0.3))
    assert [m for _, _, m in hand.commands[-1]] == [0] * 12  # __exit__ disabled the hand
