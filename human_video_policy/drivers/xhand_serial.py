"""Robotera XHand (12 joints) over RS-485 with pyserial, without the vendor's binary SDK.

Why our own framing: Robotera ships the XHand SDK (``xhand_controller``) only as compiled
wheels, which cannot run everywhere this stack runs and cannot be tested against a fake. The
frame layout below is the only public byte-level description we found (a community
implementation, see docs/hardware_protocols.md); parts of it are inconsistent or missing, so
every such choice lives in the "wire format" block below and is marked UNVERIFIED there.
Check those constants with a serial sniffer next to the vendor SDK on the first hardware run.

Frame (both directions): ``AA 55 | src | dst | cmd | len (u16 LE) | payload | CRC16 (u16 LE)``,
CRC-16/XMODEM (poly 0x1021, init 0) over everything before it. Units: joint positions are
float32 radians on the wire, so no conversion is needed beyond float32 rounding.

Hostile replies: a reply is read within one deadline (``timeout_s``) and at most
``MAX_PAYLOAD_BYTES`` of payload, input left over from an earlier reply is discarded before
each request, and every decoded position must be finite and inside the joint's plausible
range (URDF limits +- 0.5 rad, drivers/plausible.py), else DriverProtocolError.
"""

from __future__ import annotations

import struct
import termios
import time
from dataclasses import dataclass

import numpy as np
import serial

from human_video_policy.drivers.base import (
    DeviceFault,
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
    POSITION_MARGIN_RAD,
    check_plausible,
    range_arrays,
    widened_ranges,
)
from human_video_policy.errors import ConfigError
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits
from human_video_policy.validation import check_int_range, check_non_negative, check_positive

# --- wire format (source: wanweiwei07/wrs wrs/robot_con/xhand/data_type.py, xhand_x.py) -------
FRAME_HEADER = b"\xaa\x55"  # uint16 0x55AA little-endian (xhand_x.py packs 0xAA55: UNVERIFIED)
HOST_ADDRESS = 0xFE
DEFAULT_HAND_ADDRESS = 0x80
CMD_CONTROL = 0x02  # 12 finger commands; the hand answers with a state frame
CMD_READ_STATE = 0x01  # UNVERIFIED: no public source names the state request; assumed
# Finger command, 24 bytes: id u16, kp i16, ki i16, kd i16, position f32 (rad), tor_max u16,
# mode u16, 4 reserved u16.
FINGER_COMMAND = struct.Struct("<HhhhfHH4H")
# Finger state, 24 bytes (the source's comment says 22, its format string packs 24):
# id u8, sensor id u8, position f32 (rad), torque u16, raw position u16, temperature u16,
# comm board / joint board / tip board error u16, 3 reserved u16. Tactile data follows the 12
# finger states; its size is inconsistent in the source (366 vs 384 bytes/finger) and it is
# not used here, so any tail is accepted.
FINGER_STATE = struct.Struct("<BBfHHHHHH3H")
MODE_POWERLESS = 0
MODE_POSITION = 3
HEADER_BYTES = 7
CRC_BYTES = 2
# Largest reply payload read: 12 finger states (288 B) + the tactile block, whose size the
# source gives inconsistently (5 x 366 or 5 x 384 B). A longer announced length is a protocol
# error at once, so a corrupted length field never makes the driver wait for 64 KiB.
MAX_PAYLOAD_BYTES = 4096
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
    """The 12 finger states at the start of a state payload (tactile tail ignored)."""
    need = FINGER_STATE.size * len(XHAND_JOINTS)
    if len(payload) < need:
        raise ValueError(f"state payload of {len(payload)} bytes, need at least {need}")
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


@dataclass(frozen=True)
class XHandSerialConfig:
    """Serial link and position-loop settings of one XHand.

    port: serial device of the USB-RS485 adapter (or a fake hand's pty).
    baudrate: bit/s; the vendor examples and the public source use 3_000_000.
    device_id: the hand's RS-485 address byte (frame destination). 0x80 in the public
        source; the SDK's ``hand_id`` (0 by default) may map to it differently (UNVERIFIED).
    timeout_s: how long to wait for a reply frame (s); the hand answers within milliseconds.
    kp, ki, kd: per-joint position-loop gains sent with every command (SDK example: 100, 0, 0).
    tor_max: torque limit sent with every command, vendor units (SDK example: 300).
    position_margin_rad: how far outside its URDF limits a reported joint position may be
        before the reply is refused as implausible (DriverProtocolError).
    """

    port: str
    baudrate: int = 3_000_000
    device_id: int = DEFAULT_HAND_ADDRESS
    timeout_s: float = 0.05
    kp: int = 100
    ki: int = 0
    kd: int = 0
    tor_max: int = 300
    position_margin_rad: float = POSITION_MARGIN_RAD

    def __post_init__(self) -> None:
        if not isinstance(self.port, str) or not self.port:
            raise ConfigError(f"port={self.port!r} is invalid: must name a serial device")
        check_int_range("baudrate", self.baudrate, 9600)
        check_int_range("device_id", self.device_id, 0, 0xFD)
        check_positive("timeout_s", self.timeout_s)
        for gain in ("kp", "ki", "kd"):
            check_int_range(gain, getattr(self, gain), -32768, 32767)
        check_int_range("tor_max", self.tor_max, 0, 65535)
        check_non_negative("position_margin_rad", self.position_margin_rad)


class XHandSerialDriver(DriverSession):
    """:class:`~human_video_policy.drivers.base.JointDriver` for the XHand over RS-485."""

    def __init__(self, config: XHandSerialConfig) -> None:
        self.config = config
        self._serial: serial.Serial | None = None
        self._enabled = False
        self._low, self._high = range_arrays(
            XHAND_JOINTS, widened_ranges(xhand_joint_limits(), config.position_margin_rad)
        )

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
            self.read_state()  # proves the hand answers
        except DriverError:
            self.close()
            raise

    def close(self) -> None:
        link, self._serial = self._serial, None
        self._enabled = False
        if link is not None:
            try:
                link.close()
            except (serial.SerialException, OSError):
                pass

    def enable(self) -> None:
        """Position mode at the current joint positions (the hand holds still)."""
        state = self.read_state()
        self._control(state.positions, MODE_POSITION)
        self._enabled = True

    def disable(self) -> None:
        """Powerless mode: the fingers go limp."""
        self._control(np.zeros(len(XHAND_JOINTS)), MODE_POWERLESS)
        self._enabled = False

    def read_state(self) -> JointState:
        payload = self._transact(CMD_READ_STATE, b"")
        return self._state_from(payload)

    def send_positions(self, positions: np.ndarray) -> None:
        """One control frame; the hand's reply is read and a reported error raises DeviceFault."""
        command = check_command(self.name, self.joint_names, positions)
        state = self._control(command, MODE_POSITION)
        if state.faults:
            first = state.faults[0]
            raise DeviceFault(
                self.name, first.code, f"{first.meaning} on {first.joint} (command not trusted)"
            )

    # --- helpers --------------------------------------------------------------------------------
    def _control(self, positions: np.ndarray, mode: int) -> JointState:
        c = self.config
        payload = encode_finger_commands(positions, mode, c.kp, c.ki, c.kd, c.tor_max)
        return self._state_from(self._transact(CMD_CONTROL, payload))

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
        positions = check_plausible(
            self.name,
            self.joint_names,
            np.array([f.position_rad for f in fingers]),
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
        frame = encode_frame(HOST_ADDRESS, self.config.device_id, command, payload)
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
                    f"more than the {MAX_PAYLOAD_BYTES} a state frame can have"
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
        expected = (self.config.device_id, HOST_ADDRESS, command)
        if (src, dst, reply_command) != expected:
            raise DriverProtocolError(
                f"{self.name}: unexpected reply (src {src:#04x}, dst {dst:#04x}, command "
                f"{reply_command:#04x}), expected {tuple(hex(v) for v in expected)}"
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
