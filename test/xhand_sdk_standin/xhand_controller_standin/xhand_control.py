"""A stand-in for Robotera's ``xhand_controller.xhand_control`` binding, with the same API.

Why: the vendor SDK is a compiled wheel that is not installable here, but the project's
adapter (drivers/xhand_sdk.py) must be tested against its API: the classes, the call
signatures, the ``(ErrorStruct, value)`` returns, the one-character hand type and the SDK's
quirks (read_state(force_update=True) re-sends the last command; a command without a reply
still reports error_code 0). The API is taken from the SDK's pybind11 binding and headers
(docs/hardware_protocols.md). Hands live in memory: :data:`BUS` maps a port to the hands on it,
which tests edit to inject faults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FINGERS = 12
SERIAL_COMMUNICATION_ERROR = 1501050


class ErrorStruct:
    def __init__(self, error_code: int = 0, error_message: str = "") -> None:
        self.error_code = error_code
        self.error_message = error_message


class FingerCommand_t:
    def __init__(self) -> None:
        self.id = self.kp = self.ki = self.kd = self.tor_max = self.mode = 0
        self.position = 0.0


class HandCommand_t:
    """``finger_command`` returns a new list of the same element objects on each access, as the
    pybind11 std::array caster does: mutating an element sticks, replacing one is lost."""

    def __init__(self) -> None:
        self._fingers = [FingerCommand_t() for _ in range(FINGERS)]

    @property
    def finger_command(self) -> list[FingerCommand_t]:
        return list(self._fingers)


class FingerState_t:
    def __init__(self, index: int) -> None:
        self.id = self.sensor_id = index
        self.position = 0.0
        self.torque = self.raw_position = self.temperature = 0
        self.commboard_err = self.jonitboard_err = self.tipboard_err = 0


class HandState_t:
    def __init__(self) -> None:
        self.finger_state = [FingerState_t(k) for k in range(FINGERS)]
        self.sensor_data: list = []


@dataclass
class StandinHand:
    """One hand on a stand-in bus: what it reports and how it misbehaves."""

    hand_id: int = 0
    side: str = "R"
    positions: np.ndarray = field(default_factory=lambda: np.zeros(FINGERS, dtype=np.float32))
    board_errors: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    silent: bool = False  # no reply: the SDK still reports success
    refuse_position_mode: bool = False  # an error reply to mode-3 commands
    error_code: int = 0  # every call answered with this error
    raise_in_read: bool = False  # the binding raises (a broken wheel)
    commands: list[list[tuple[int, float, int]]] = field(default_factory=list)


BUS: dict[str, list[StandinHand]] = {}


class XHandControl:
    """Positional-only arguments, as the binding (no py::arg) accepts them."""

    def __init__(self) -> None:
        self._hands: list[StandinHand] | None = None
        self._last = HandCommand_t()  # one cached command, as the SDK's hand_command_
        self._state: dict[int, HandState_t] = {}

    def open_serial(self, port: str, baudrate: int, /) -> ErrorStruct:
        if port not in BUS or baudrate != 3_000_000:
            return ErrorStruct(SERIAL_COMMUNICATION_ERROR, f"cannot open {port} at {baudrate}")
        self._hands = BUS[port]
        return ErrorStruct()

    def close_device(self) -> None:
        self._hands = None

    def list_hands_id(self) -> list[int]:
        return [h.hand_id for h in self._hands or []]

    def _hand(self, hand_id: int) -> StandinHand | None:
        return next((h for h in self._hands or [] if h.hand_id == hand_id), None)

    def get_hand_type(self, hand_id: int, /) -> tuple[ErrorStruct, str]:
        hand = self._hand(hand_id)
        if hand is None:
            return ErrorStruct(SERIAL_COMMUNICATION_ERROR, "no reply"), "N"
        return ErrorStruct(), hand.side

    def send_command(self, hand_id: int, command: HandCommand_t, /) -> ErrorStruct:
        self._last = command  # cached before the write, as the SDK does (so@0x384c0)
        hand = self._hand(hand_id)
        if self._hands is None:
            return ErrorStruct(SERIAL_COMMUNICATION_ERROR, "port closed")
        if hand is None or hand.silent:
            return ErrorStruct()  # no reply within 100 ms: the SDK still reports success
        fingers = command.finger_command
        if hand.error_code or (hand.refuse_position_mode and any(f.mode == 3 for f in fingers)):
            return ErrorStruct(hand.error_code or 1501001, "hand error")
        hand.commands.append([(f.id, f.position, f.mode) for f in fingers])
        for finger in fingers:
            if finger.mode == 3 and finger.id not in hand.board_errors:
                hand.positions[finger.id] = np.float32(finger.position)
        state = HandState_t()
        for k, finger_state in enumerate(state.finger_state):
            finger_state.position = float(hand.positions[k])
            finger_state.temperature = 30  # a powered hand reports its temperature (degC)
            finger_state.raw_position = fingers[k].mode & 0xF
            errors = hand.board_errors.get(k, (0, 0, 0))
            (
                finger_state.commboard_err,
                finger_state.jonitboard_err,
                finger_state.tipboard_err,
            ) = errors
        self._state[hand_id] = state
        return ErrorStruct()

    def read_state(self, hand_id: int, force_update: bool, /) -> tuple[ErrorStruct, HandState_t]:
        hand = self._hand(hand_id)
        if hand is not None and hand.raise_in_read:
            raise RuntimeError("pybind11: bad state")
        if force_update:
            error = self.send_command(hand_id, self._last)
            if error.error_code:
                return error, HandState_t()
        return ErrorStruct(), self._state.get(hand_id, HandState_t())

    def get_sdk_version(self) -> str:
        return "standin-0.0"

    def enumerate_devices(self, comm_type: str) -> list[str]:
        return sorted(BUS) if comm_type == "RS485" else []
