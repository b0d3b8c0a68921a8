"""Robotera XHand (12 joints) over RS-485 with pyserial, without the vendor's binary SDK.

Why our own framing: Robotera ships the XHand SDK (``xhand_controller``) only as compiled
wheels, which cannot run everywhere this stack runs and cannot be tested against a fake. The
frame layout below follows Robotera's SDK as redistributed publicly: its headers
(``data_type.hpp``, ``parse_data.h``, ``communiation_interface.hpp``) and, where the serial code
ships only compiled, the disassembled ``libxhand_control.so``; docs/hardware_protocols.md cites
each fact. It has not been checked on a hand yet: until it is, :meth:`XHandSerialDriver.enable`
refuses position mode on a real serial port unless ``acknowledge_unverified_wire_format`` is
set (fake hands on a pseudo-terminal are not affected).

Frame (both directions): ``55 AA | src | dst | cmd | len (u16 LE) | payload | CRC16 (u16 LE)``,
CRC-16/XMODEM (poly 0x1021, init 0) over everything before it; the host is 0xFE, a hand is
``0x80 | hand_id``. There is no state request: the hand answers each control frame (cmd 0x02,
12 finger commands) with its state (12 finger states + 5 tactile blocks, 2208 bytes), and
:meth:`XHandSerialDriver.read_state` re-sends the last control frame, as the SDK's
``read_state(force_update=True)`` does. Cmd 0x00 is an error reply carrying a u16 code; cmd
0x15 reads registers (the liveness probe at connect reads the hand's side, serial number, id).
Units: joint positions are float32 radians on the wire (the SDK copies those 4 bytes as a float
although its header types the field int32: see docs/hardware_protocols.md).

Hostile replies: a reply is read within one deadline (``timeout_s``) and at most
``MAX_PAYLOAD_BYTES`` of payload, input left over from an earlier reply is discarded before
each request, and every decoded position must be finite and inside the joint's plausible
range (URDF limits +- 0.5 rad, drivers/plausible.py), else DriverProtocolError.
"""

from __future__ import annotations

import os
import stat
import struct
import termios
import time
from dataclasses import dataclass

import numpy as np
import serial

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
)
from human_video_policy.drivers.plausible import (
    check_plausible,
    range_arrays,
    widened_ranges,
)
from human_video_policy.drivers.xhand import (
    XHandConfig,
    check_hand_identity,
    refuse_integer_positions,
)
from human_video_policy.errors import ConfigError
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits

# --- wire format (source: Robotera XHand SDK, see docs/hardware_protocols.md) -----------------
FRAME_HEADER = b"\x55\xaa"  # the SDK writes u16 0xAA55 little-endian; its parser wants 55 then AA
HOST_ADDRESS = 0xFE
BROADCAST_ADDRESS = 0xFF
CMD_ERROR = 0x00  # reply: payload u16 LE error code
CMD_CONTROL = 0x02  # 12 finger commands; the hand answers with its state
CMD_READ_REGISTER = 0x15  # payload: u16 index, u16 length; reply: u16 index + the bytes
REGISTER_HAND_INFO = 20  # side char (1 B), serial number (32), hand id (1), name (32), ...
HAND_INFO_BYTES = 186  # registers 20..205, as the SDK's read_device_info reads them
# Finger command (FingerCommand_t), 24 bytes: id u16, kp i16, ki i16, kd i16, position f32
# (rad), tor_max u16, mode u16, 4 reserved u16.
FINGER_COMMAND = struct.Struct("<HhhhfHH4H")
# Finger state (RawFingerState_t / FingerState_t), 24 bytes: id u8, sensor id u8, position f32
# (rad; typed int32 in the header, copied as float by the SDK), torque u16, raw position u16
# (bits 0-3: the finger's current mode), temperature u16, comm board / joint board / tip board
# error u16, 3 reserved u16.
FINGER_STATE = struct.Struct("<BBfHHHHHH3H")
TACTILE_BYTES = 5 * 384  # 5 x SenserData_t: calc force 3 + raw force 120 x 3 + temp 20 + 1
STATE_PAYLOAD_BYTES = 12 * FINGER_STATE.size + TACTILE_BYTES  # SerialHandState_t, 2208
MODE_POWERLESS = 0
MODE_POSITION = 3
HEADER_BYTES = 7
CRC_BYTES = 2
# Largest reply payload read (the state frame). A longer announced length is a protocol error
# at once, so a corrupted length field never makes the driver wait for 64 KiB.
MAX_PAYLOAD_BYTES = STATE_PAYLOAD_BYTES
# ----------------------------------------------------------------------------------------------

ERROR_SOURCES = ("communication board", "joint board", "fingertip board")


def _crc16_xmodem_table() -> tuple[int, ...]:
    table = []
    for index in range(256):
        crc = index << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc16_xmodem_table()


def crc16_xmodem(data: bytes) -> int:
    """CRC-16 with polynomial 0x1021, initial value 0, MSB first, no final XOR (table-driven)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def encode_frame(src: int, dst: int, command: int, payload: bytes = b"") -> bytes:
    frame = FRAME_HEADER + struct.pack("<BBBH", src, dst, command, len(payload)) + payload
    return frame + struct.pack("<H", crc16_xmodem(frame))


@dataclass(frozen=True)
class FingerState:
    position_rad: float
    errors: tuple[int, int, int]  # comm board, joint board, tip board


def decode_finger_states(payload: bytes) -> list[FingerState]:
    """The 12 finger states of a state payload (the tactile blocks after them are not used).

    The position bytes are read as float32, as the vendor SDK reads them (the driver then
    refuses subnormal ones: :func:`~human_video_policy.drivers.xhand.refuse_integer_positions`).
    """
    if len(payload) != STATE_PAYLOAD_BYTES:
        raise ValueError(
            f"state payload of {len(payload)} bytes; the SDK's SerialHandState_t is "
            f"{STATE_PAYLOAD_BYTES} (12 finger states + 5 tactile blocks)"
        )
    states = []
    for k in range(len(XHAND_JOINTS)):
        fields = FINGER_STATE.unpack_from(payload, k * FINGER_STATE.size)
        states.append(FingerState(position_rad=fields[2], errors=(fields[6], fields[7], fields[8])))
    return states


def encode_finger_commands(
    positions: np.ndarray, mode: int, kp: int, ki: int, kd: int, tor_max: int
) -> bytes:
    return b"".join(
        FINGER_COMMAND.pack(k, kp, ki, kd, float(q), tor_max, mode, 0, 0, 0, 0)
        for k, q in enumerate(positions)
    )


def is_pseudo_terminal(port: str) -> bool:
    """True when ``port`` is a pseudo-terminal (a fake device), not a real serial adapter.

    Linux numbers pty slaves with character-device majors 136-143 (Unix98 ptys).
    """
    try:
        mode = os.stat(port)
    except OSError:
        return False
    return stat.S_ISCHR(mode.st_mode) and 136 <= os.major(mode.st_rdev) <= 143


@dataclass(frozen=True)
class HandInfo:
    """What the hand's info registers say: ``side`` ('R', 'L' or another char as read),
    ``serial_number``, ``hand_id`` and ``name``."""

    side: str
    serial_number: str
    hand_id: int
    name: str


def decode_hand_info(payload: bytes) -> HandInfo:
    """A register-read reply (u16 index, then registers 20..205) as :class:`HandInfo`."""
    if len(payload) != 2 + HAND_INFO_BYTES:
        raise ValueError(f"hand info reply of {len(payload)} bytes, expected {2 + HAND_INFO_BYTES}")
    index = struct.unpack_from("<H", payload)[0]
    if index != REGISTER_HAND_INFO:
        raise ValueError(f"register reply for index {index}, asked for {REGISTER_HAND_INFO}")
    data = payload[2:]

    def text(raw: bytes) -> str:
        return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")

    return HandInfo(chr(data[0]), text(data[1:33]), data[33], text(data[34:66]))


class XHandSerialDriver(DriverSession):
    """:class:`~human_video_policy.drivers.base.JointDriver` for the XHand over RS-485."""

    def __init__(self, config: XHandConfig) -> None:
        self.config = config
        self._serial: serial.Serial | None = None
        self._enabled = False
        self._low, self._high = range_arrays(
            XHAND_JOINTS, widened_ranges(xhand_joint_limits(), config.position_margin_rad)
        )
        self.hand_info: HandInfo | None = None
        self._powerless = self._payload(np.zeros(len(XHAND_JOINTS)), MODE_POWERLESS)
        # The position frame read_state() re-sends while enabled (the last one sent).
        self._last_position = self._powerless

    @property
    def name(self) -> str:
        return f"xhand@{self.config.port}"

    @property
    def joint_names(self) -> tuple[str, ...]:
        return XHAND_JOINTS

    @property
    def is_connected(self) -> bool:
        return self._serial is not None

    def connect(self) -> None:
        """Open the port and read the hand's info registers (proves it answers, checks side)."""
        try:
            self._serial = serial.Serial(
                self.config.port, self.config.baudrate, timeout=self.config.timeout_s
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DriverConnectionError(f"{self.name}: cannot open serial port: {exc}") from exc
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise DriverConnectionError(f"{self.name}: serial port unusable: {exc}") from exc
        try:
            request = struct.pack("<HH", REGISTER_HAND_INFO, HAND_INFO_BYTES)
            try:
                info = decode_hand_info(self._transact(CMD_READ_REGISTER, request))
            except ValueError as exc:
                raise DriverProtocolError(f"{self.name}: bad hand info reply: {exc}") from exc
        except DriverError:
            self.close()
            raise
        try:
            check_hand_identity(self.name, self.config, info.side, info.hand_id)
        except (ConfigError, DriverError):
            self.close()
            raise
        self.hand_info = info

    def close(self) -> None:
        link, self._serial = self._serial, None
        self._enabled = False
        self._last_position = self._powerless  # nothing from before is ever re-sent
        if link is not None:
            try:
                link.close()
            except (serial.SerialException, OSError):
                pass

    def enable(self) -> None:
        """Position mode at the current joint positions (the hand holds still).

        The positions come from the reply to a powerless frame (there is no state request).
        Refused on a real serial port while the wire format is unverified and not acknowledged.
        """
        if not self.config.acknowledge_unverified_wire_format and not is_pseudo_terminal(
            self.config.port
        ):
            raise ConfigError(
                f"{self.name}: refusing position mode: this RS-485 framing has not been verified "
                "on a real XHand (docs/hardware_protocols.md says how to check it). Set "
                "driver_config 'acknowledge_unverified_wire_format: true' to drive the hand "
                "anyway"
            )
        state = self._state_from(self._transact(CMD_CONTROL, self._powerless))
        try:
            self._control(state.positions, MODE_POSITION)
        except DriverError:
            self._power_off_quietly()  # a half-done enable must not leave the hand powered
            raise
        self._enabled = True

    def disable(self) -> None:
        """Powerless mode: the fingers go limp."""
        self._enabled = False
        self._last_position = self._powerless
        self._state_from(self._transact(CMD_CONTROL, self._powerless))

    def read_state(self) -> JointState:
        """The hand's state, from its reply to a control frame sent again: the last position
        frame while enabled, a powerless one otherwise (never a position frame the caller did
        not just send while enabled)."""
        payload = self._last_position if self._enabled else self._powerless
        return self._state_from(self._transact(CMD_CONTROL, payload))

    def send_positions(self, positions: np.ndarray) -> None:
        """One control frame; the hand's reply is read and a reported error raises DeviceFault."""
        command = check_command(self.name, self.joint_names, positions)
        if not self._enabled:
            raise DriverCommandError(f"{self.name}: not enabled (call enable() first)")
        state = self._control(command, MODE_POSITION)
        if state.faults:
            first = state.faults[0]
            raise DeviceFault(
                self.name, first.code, f"{first.meaning} on {first.joint} (command not trusted)"
            )

    # --- helpers --------------------------------------------------------------------------------
    def _payload(self, positions: np.ndarray, mode: int) -> bytes:
        c = self.config
        return encode_finger_commands(positions, mode, c.kp, c.ki, c.kd, c.tor_max)

    def _control(self, positions: np.ndarray, mode: int) -> JointState:
        payload = self._payload(positions, mode)
        self._last_position = payload
        return self._state_from(self._transact(CMD_CONTROL, payload))

    def _power_off_quietly(self) -> None:
        self._enabled = False
        self._last_position = self._powerless
        try:
            self._transact(CMD_CONTROL, self._powerless)
        except DriverError:
            pass

    def _state_from(self, payload: bytes) -> JointState:
        try:
            fingers = decode_finger_states(payload)
        except ValueError as exc:
            raise DriverProtocolError(f"{self.name}: bad state frame: {exc}") from exc
        faults = []
        for joint, finger in zip(self.joint_names, fingers, strict=True):
            for source, code in zip(ERROR_SOURCES, finger.errors, strict=True):
                if code:
                    faults.append(Fault(code=code, meaning=f"{source} error", joint=joint))
        raw = np.array([f.position_rad for f in fingers])
        refuse_integer_positions(self.name, raw)
        positions = check_plausible(
            self.name,
            self.joint_names,
            raw,
            self._low,
            self._high,
        )
        return JointState(
            names=self.joint_names,
            positions=positions,
            stamp_s=time.monotonic(),
            enabled=self._enabled,
            faults=tuple(faults),
        )

    def _transact(self, command: int, payload: bytes) -> bytes:
        link = self._serial
        if link is None:
            raise DriverConnectionError(f"{self.name}: not connected (call connect() first)")
        frame = encode_frame(HOST_ADDRESS, self.config.address, command, payload)
        deadline = time.monotonic() + self.config.timeout_s
        try:
            # Bytes still queued (a late reply, a trailing tail) belong to no request of ours.
            link.reset_input_buffer()
            link.write(frame)
            header = self._read(link, HEADER_BYTES, deadline)
            if len(header) < HEADER_BYTES:
                raise DriverTimeoutError(
                    f"{self.name}: no reply to command {command:#04x} within "
                    f"{self.config.timeout_s} s (got {len(header)} bytes)"
                )
            if header[:2] != FRAME_HEADER:
                link.reset_input_buffer()
                raise DriverProtocolError(
                    f"{self.name}: reply starts with {header[:2].hex(' ')}, expected "
                    f"{FRAME_HEADER.hex(' ')}"
                )
            src, dst, reply_command, length = struct.unpack_from("<BBBH", header, 2)
            if length > MAX_PAYLOAD_BYTES:
                link.reset_input_buffer()
                raise DriverProtocolError(
                    f"{self.name}: reply to {command:#04x} announces {length} payload bytes, "
                    f"more than the {MAX_PAYLOAD_BYTES} of the largest reply (a state frame)"
                )
            rest = self._read(link, length + CRC_BYTES, deadline)
        except (serial.SerialException, OSError, termios.error) as exc:
            raise DriverConnectionError(f"{self.name}: serial link lost: {exc}") from exc
        if len(rest) < length + CRC_BYTES:
            raise DriverTimeoutError(
                f"{self.name}: reply to {command:#04x} cut short: {len(rest)} of "
                f"{length + CRC_BYTES} bytes within {self.config.timeout_s} s"
            )
        body, crc = rest[:length], int.from_bytes(rest[length:], "little")
        if crc != crc16_xmodem(header + body):
            raise DriverProtocolError(
                f"{self.name}: CRC mismatch in reply to {command:#04x}: got {crc:#06x}, "
                f"computed {crc16_xmodem(header + body):#06x}"
            )
        # The SDK checks neither src nor dst of a reply, so what a hand puts there is not
        # known (UNVERIFIED): only the command is checked.
        if reply_command == CMD_ERROR:
            code = struct.unpack_from("<H", body)[0] if len(body) >= 2 else -1
            why = f"hand answered command {command:#04x} with an error"
            raise DeviceFault(self.name, code, why)
        if reply_command != command:
            raise DriverProtocolError(
                f"{self.name}: reply with command {reply_command:#04x} (src {src:#04x}, dst "
                f"{dst:#04x}) to a {command:#04x} request"
            )
        return body

    @staticmethod
    def _read(link: serial.Serial, size: int, deadline: float) -> bytes:
        """Up to ``size`` bytes, returning when they are in or at ``deadline``: one deadline
        for the whole reply, however its bytes are split over reads."""
        left = deadline - time.monotonic()
        if left <= 0.0:
            return b""
        if link.timeout != left:
            link.timeout = left
        return bytes(link.read(size))
