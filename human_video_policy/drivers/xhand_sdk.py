"""Robotera XHand through the vendor's own SDK (``xhand_controller``), where it is installed.

Why a backend on a binary SDK: it is the code Robotera supports on the hand, so a lab that has
the wheel drives the hand on the vendor's framing rather than on the project's reading of it.
This module is only the adapter: joint order (finger ``i`` is ``XHAND_JOINTS[i]``), units (the
SDK takes and returns radians as float, no conversion), the SDK's error structs (an
``error_code`` other than 0 becomes a :class:`DeviceFault` naming it), the hand's side against
``handedness``, plausible positions (drivers/plausible.py), and any exception the binding
raises turned into a :class:`DriverError`. It is tested against a stand-in module with the same
API (test/xhand_sdk_standin), since the SDK itself is not installable here.

The SDK's calls (docs/hardware_protocols.md, from its binding and headers):
``XHandControl()``, ``open_serial(port, baudrate) -> ErrorStruct``, ``list_hands_id() ->
[int]``, ``get_hand_type(id) -> (ErrorStruct, 'R'|'L'|'N')``, ``read_device_info(id) ->
(ErrorStruct, DeviceInfo_t)``, ``send_command(id, HandCommand_t) -> ErrorStruct``,
``read_state(id, force_update) -> (ErrorStruct, HandState_t)``, ``close_device()``.

Known limits of the SDK, not fixable here: it waits up to 100 ms for a reply inside a call,
and it reports a control frame that got no reply as success (error_code 0) with the previous
state cached, so a hand that falls silent is not seen within a tick on this backend (the serial
backend sees it: a DriverTimeoutError). A hand that never answered is seen: the SDK's default
state (every temperature 0) is refused, so connect and enable never start from it. The
redistributor notes that over USB only the first state frame arrived (its readme); a frozen
state would show as joint states that never change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from human_video_policy.drivers.base import (
    DeviceFault,
    DriverCommandError,
    DriverConnectionError,
    DriverError,
    DriverProtocolError,
    DriverSession,
    DriverTimeoutError,
    Fault,
    JointState,
    check_command,
    vendor_call,
)
from human_video_policy.drivers.plausible import check_plausible, range_arrays, widened_ranges
from human_video_policy.drivers.xhand import (
    XHandConfig,
    check_hand_identity,
    import_sdk,
    refuse_integer_positions,
)
from human_video_policy.errors import ConfigError
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits

MODE_POWERLESS = 0
MODE_POSITION = 3
ERROR_FIELDS = (
    ("commboard_err", "communication board"),
    ("jonitboard_err", "joint board"),  # the SDK's spelling
    ("tipboard_err", "fingertip board"),
)


class XHandSdkDriver(DriverSession):
    """:class:`~human_video_policy.drivers.base.JointDriver` for the XHand on the vendor SDK."""

    def __init__(self, config: XHandConfig, sdk: Any = None) -> None:
        self.config = config
        self._sdk = sdk  # the xhand_control module; imported on connect() when None
        self._device: Any = None
        self._enabled = False
        self._low, self._high = range_arrays(
            XHAND_JOINTS, widened_ranges(xhand_joint_limits(), config.position_margin_rad)
        )
        self.hand_side = ""

    @property
    def name(self) -> str:
        return f"xhand-sdk@{self.config.port}#{self.config.hand_id}"

    @property
    def joint_names(self) -> tuple[str, ...]:
        return XHAND_JOINTS

    @property
    def is_connected(self) -> bool:
        return self._device is not None

    def connect(self) -> None:
        """Open the port, find the hand, check its id and side, and get one state that is a
        real reply (the SDK returns its all-zero default when the hand never answered)."""
        if self._sdk is None:
            try:
                self._sdk = import_sdk(self.config.sdk_module)
            except Exception as exc:  # ImportError, or a broken binary wheel
                raise DriverConnectionError(
                    f"{self.name}: the XHand SDK ({self.config.sdk_module}) is not installed or "
                    f"does not load: {exc}; use backend serial"
                ) from exc
        device = self._do("XHandControl()", lambda: self._sdk.XHandControl())
        try:
            error = device.open_serial(self.config.port, self.config.baudrate)
            self._check("open_serial", error, connection=True)
        except Exception as exc:
            self._close_quietly(device)
            if isinstance(exc, DriverError):
                raise
            raise DriverConnectionError(
                f"{self.name}: SDK open_serial raised {type(exc).__name__}: {exc}"
            ) from exc
        self._device = device
        try:
            hands = self._do("list_hands_id", lambda: [int(h) for h in device.list_hands_id()])
            if self.config.hand_id not in hands:
                raise DriverConnectionError(
                    f"{self.name}: hand id {self.config.hand_id} not on the bus (the SDK lists "
                    f"{hands})"
                )
            error, side = self._do(
                "get_hand_type", lambda: tuple(device.get_hand_type(self.config.hand_id))
            )
            self._check("get_hand_type", error)
            check_hand_identity(self.name, self.config, str(side), self.config.hand_id)
            self.hand_side = str(side).upper()
            self.read_state()
        except (DriverError, ConfigError):
            self.close()
            raise

    def close(self) -> None:
        device, self._device = self._device, None
        self._enabled = False
        if device is not None:
            self._close_quietly(device)

    def enable(self) -> None:
        """Position mode at the current joint positions (the hand holds still); a failure
        half way leaves the hand powerless, never in position mode."""
        state = self.read_state()  # not enabled yet: a powerless frame and its reply
        try:
            self._send(state.positions, MODE_POSITION)
        except DriverError:
            self._power_off_quietly()
            raise
        self._enabled = True

    def disable(self) -> None:
        """Powerless mode: the fingers go limp."""
        self._enabled = False
        self._send(np.zeros(len(XHAND_JOINTS)), MODE_POWERLESS)

    def read_state(self) -> JointState:
        """A fresh state. Enabled: the SDK re-sends the last (position) command and returns the
        reply; not enabled: a powerless command is sent first, so the SDK's cached command that
        a later force_update would re-send is never a position command from before."""
        if self._enabled:
            return self._read(force_update=True)
        self._send(np.zeros(len(XHAND_JOINTS)), MODE_POWERLESS)
        return self._read(force_update=False)

    def send_positions(self, positions: np.ndarray) -> None:
        """One command; an error the hand reports in its reply raises DeviceFault."""
        command = check_command(self.name, self.joint_names, positions)
        if not self._enabled:
            raise DriverCommandError(f"{self.name}: not enabled (call enable() first)")
        self._send(command, MODE_POSITION)
        state = self._read(force_update=False)
        if state.faults:
            first = state.faults[0]
            raise DeviceFault(
                self.name, first.code, f"{first.meaning} on {first.joint} (command not trusted)"
            )

    # --- helpers --------------------------------------------------------------------------------
    def _device_or_raise(self) -> Any:
        if self._device is None:
            raise DriverConnectionError(f"{self.name}: not connected (call connect() first)")
        return self._device

    def _do(self, what: str, action: Callable[[], Any]) -> Any:
        return vendor_call(self.name, what, action)

    def _check(self, what: str, error: Any, connection: bool = False) -> None:
        """Raise for an ErrorStruct whose error_code is not 0 (DeviceFault, or a connection
        error for the calls that open the link)."""
        code = getattr(error, "error_code", None)
        if not isinstance(code, int) or isinstance(code, bool):
            raise DriverProtocolError(f"{self.name}: SDK {what} returned no error code: {error!r}")
        if code == 0:
            return
        message = str(getattr(error, "error_message", "")) or "no message"
        if connection:
            raise DriverConnectionError(f"{self.name}: SDK {what} failed: {code} ({message})")
        raise DeviceFault(self.name, code, f"SDK {what}: {message}")

    def _read(self, force_update: bool) -> JointState:
        device = self._device_or_raise()
        error, hand_state = self._do(
            "read_state", lambda: tuple(device.read_state(self.config.hand_id, force_update))
        )
        self._check("read_state", error)
        return self._do("state", lambda: self._state_from(hand_state))

    def _send(self, positions: np.ndarray, mode: int) -> None:
        device = self._device_or_raise()
        c = self.config

        def build_and_send() -> Any:
            command = self._sdk.HandCommand_t()
            for k, q in enumerate(positions):
                finger = command.finger_command[k]  # mutated in place (pybind11 reference)
                finger.id = k
                finger.kp, finger.ki, finger.kd = c.kp, c.ki, c.kd
                finger.position = float(q)
                finger.tor_max = c.tor_max
                finger.mode = mode
            return device.send_command(c.hand_id, command)

        self._check("send_command", self._do("send_command", build_and_send))

    def _power_off_quietly(self) -> None:
        self._enabled = False
        try:
            self._send(np.zeros(len(XHAND_JOINTS)), MODE_POWERLESS)
        except DriverError:
            pass

    @staticmethod
    def _close_quietly(device: Any) -> None:
        try:
            device.close_device()
        except Exception:  # closing must not raise: we are leaving
            pass

    def _state_from(self, hand_state: Any) -> JointState:
        """The SDK's HandState_t as a JointState; refused when it is the SDK's default (every
        temperature 0: no reply came from the hand), implausible, or integer-looking."""
        try:
            fingers = list(hand_state.finger_state)
            if len(fingers) != len(XHAND_JOINTS):
                raise ValueError(f"{len(fingers)} finger states, expected {len(XHAND_JOINTS)}")
            positions = np.array([float(f.position) for f in fingers])
            errors = [[int(getattr(f, field)) for field, _ in ERROR_FIELDS] for f in fingers]
            temperatures = [int(f.temperature) & 0xFF for f in fingers]
        except (AttributeError, TypeError, ValueError) as exc:
            raise DriverProtocolError(f"{self.name}: SDK state unreadable: {exc}") from exc
        if not any(temperatures):
            raise DriverTimeoutError(
                f"{self.name}: the SDK returned its default state (every temperature 0): no "
                "reply from the hand"
            )
        refuse_integer_positions(self.name, positions)
        check_plausible(self.name, self.joint_names, positions, self._low, self._high)
        faults = tuple(
            Fault(code=code, meaning=f"{source} error", joint=joint)
            for joint, codes in zip(self.joint_names, errors, strict=True)
            for (_, source), code in zip(ERROR_FIELDS, codes, strict=True)
            if code
        )
        return JointState(
            names=self.joint_names,
            positions=positions,
            stamp_s=time.monotonic(),
            enabled=self._enabled,
            faults=faults,
        )
