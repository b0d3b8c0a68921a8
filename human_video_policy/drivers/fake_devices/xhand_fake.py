"""A Robotera XHand on a pseudo-terminal, speaking the RS-485 frames of Robotera's XHand SDK.

Built from the vendor's published layout (docs/hardware_protocols.md), with constants of its
own rather than the driver's, so a misreading in the driver shows as a failed test: frames
``55 AA | src | dst | cmd | len u16 LE | payload | CRC-16/XMODEM u16 LE``, the hand at
``0x80 | hand_id`` (and the broadcast 0xFF for register reads). It checks each request's header
and CRC (a request with a bad CRC is ignored, as a bus device would), keeps 12 joint positions,
answers a control frame (cmd 0x02) with its state (12 x 24-byte finger states + 5 x 384-byte
tactile blocks = 2208 bytes), a register read (cmd 0x15) of the info registers with side,
serial number, id and name, and nothing else (there is no state request). Faults: dropped
link, reply with a broken CRC, silence, per-joint board error codes, and an error reply
(cmd 0x00 with a u16 code).
"""

from __future__ import annotations

import argparse
import binascii
import os
import struct
import threading

import numpy as np

from human_video_policy.drivers.fake_devices import FaultMode, PtyPeer
from human_video_policy.drivers.fake_devices.hostile import (
    HostileDevice,
    Hostility,
    mutate,
)
from human_video_policy.robots.xhand import XHAND_JOINTS

# The vendor's layout (Robotera XHand SDK: data_type.hpp, parse_data.h, libxhand_control.so).
HEAD = b"\x55\xaa"
HOST = 0xFE
BROADCAST = 0xFF
ERROR_REPLY = 0x00
CONTROL = 0x02
READ_REGISTER = 0x15
INFO_REGISTER, INFO_BYTES = 20, 186
FINGER_COMMAND = struct.Struct("<HhhhfHH4H")  # FingerCommand_t
FINGER_STATE = struct.Struct("<BBfHHHHHH3H")  # RawFingerState_t as the SDK reads it
HEADER_BYTES, CRC_BYTES = 7, 2
TACTILE_BYTES = 5 * 384  # 5 x SenserData_t
POSITION_MODE = 3


def _crc(data: bytes) -> int:
    """CRC-16/XMODEM via the standard library (CRC-CCITT from 0), not the driver's code."""
    return binascii.crc_hqx(data, 0)


def frame(src: int, dst: int, command: int, payload: bytes) -> bytes:
    """One frame of the vendor's layout."""
    body = HEAD + struct.pack("<BBBH", src, dst, command, len(payload)) + payload
    return body + struct.pack("<H", _crc(body))


class FakeXHand(PtyPeer):
    """A 12-joint right hand with id ``hand_id``; ``positions`` (rad) follow position-mode
    commands. ``side`` is what its side register says ('R'); ``error_reply`` (a code, 0 = off)
    makes it answer every request with an error frame."""

    def __init__(self, hand_id: int = 0, side: str = "R") -> None:
        self.hand_id = hand_id
        self.address = 0x80 | hand_id
        self.side = side
        self.serial_number = "XH-FAKE-0001"
        self.positions = np.zeros(len(XHAND_JOINTS))
        self.modes = np.zeros(len(XHAND_JOINTS), dtype=int)
        self.errors = np.zeros((len(XHAND_JOINTS), 3), dtype=int)  # comm, joint, tip board
        self.error_reply = 0
        # "float32" as the SDK reads the position bytes; "int32" sends them as the header types
        # them (milliradians), for the test that such a hand is refused, not misread
        self.position_encoding = "float32"
        self._buffer = bytearray()
        self._hand_lock = threading.Lock()
        super().__init__()

    def set_error(self, joint_index: int, board: int, code: int) -> None:
        """Report ``code`` from board 0 (comm), 1 (joint) or 2 (tip) of one joint."""
        with self._hand_lock:
            self.errors[joint_index, board] = code

    def feed(self, data: bytes) -> bytes:
        with self._hand_lock:
            self._buffer += data
            out = b""
            while (request := self._take_frame()) is not None:
                self.received.append(request)
                out += self._answer(request)
            return out

    def _take_frame(self) -> bytes | None:
        start = self._buffer.find(HEAD)
        if start < 0:
            del self._buffer[:-1]
            return None
        del self._buffer[:start]
        if len(self._buffer) < HEADER_BYTES:
            return None
        total = HEADER_BYTES + struct.unpack_from("<H", self._buffer, 5)[0] + CRC_BYTES
        if len(self._buffer) < total:
            return None
        request = bytes(self._buffer[:total])
        del self._buffer[:total]
        return request

    def _answer(self, request: bytes) -> bytes:
        src, dst, command, length = struct.unpack_from("<BBBH", request, 2)
        crc = struct.unpack_from("<H", request, len(request) - 2)[0]
        if crc != _crc(request[:-2]) or src != HOST:
            return b""
        if dst != self.address and not (dst == BROADCAST and command == READ_REGISTER):
            return b""
        if self.fault is FaultMode.SILENT:
            return b""
        payload = request[HEADER_BYTES : HEADER_BYTES + length]
        if self.error_reply:
            body = struct.pack("<H", self.error_reply)
            command = ERROR_REPLY
        elif command == CONTROL and len(payload) == FINGER_COMMAND.size * len(XHAND_JOINTS):
            for k in range(len(XHAND_JOINTS)):
                fields = FINGER_COMMAND.unpack_from(payload, k * FINGER_COMMAND.size)
                joint, position, mode = fields[0], fields[4], fields[6]
                self.modes[joint] = mode
                if mode == POSITION_MODE and not self.errors[joint].any():
                    self.positions[joint] = position
            body = self._state_payload()
        elif command == READ_REGISTER and payload == struct.pack("<HH", INFO_REGISTER, INFO_BYTES):
            body = struct.pack("<H", INFO_REGISTER) + self._info_registers()
        else:
            return b""  # the SDK knows no other request (e.g. no state request)
        reply = frame(self.address, HOST, command, body)
        if self.fault is FaultMode.MALFORMED:
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])
        return reply

    def _position_field(self, position: float) -> float:
        """The position as FINGER_STATE packs it: the float, or an int32 as its float bits."""
        if self.position_encoding == "int32":
            raw = struct.pack("<i", round(float(position) * 1000.0))
            return struct.unpack("<f", raw)[0]
        return float(position)

    def _info_registers(self) -> bytes:
        """Registers 20..205: side char, serial number (32), hand id, name (32), calibration."""
        data = self.side.encode()[:1] + self.serial_number.encode().ljust(32, b"\0")
        data += bytes([self.hand_id]) + b"xhand_fake".ljust(32, b"\0")
        return data.ljust(INFO_BYTES, b"\0")

    def _state_payload(self) -> bytes:
        fingers = b"".join(
            FINGER_STATE.pack(
                k,
                k,
                self._position_field(self.positions[k]),
                0,
                int(self.modes[k]) & 0xF,
                30,
                *self.errors[k],
                0,
                0,
                0,
            )
            for k in range(len(XHAND_JOINTS))
        )
        return fingers + bytes(TACTILE_BYTES)


class HostileXHand(HostileDevice, FakeXHand):
    """A :class:`FakeXHand` that answers as :attr:`hostility` says (see :class:`Hostility`).

    Non-finite or absurd positions need no mode: set ``positions`` (float32 on the wire, so
    NaN, inf and 1e30 all encode). ``late_s``: how late a ``LATE`` reply comes.
    """

    def __init__(self, hand_id: int = 0, late_s: float = 0.3) -> None:
        self._init_hostility(late_s)
        super().__init__(hand_id)

    def _flood_chunk(self) -> bytes:
        if self.hostility is Hostility.FRAME_FLOOD:  # valid frames of a command never asked
            return frame(self.address ^ 1, HOST, 0x03, self._state_payload()[:288])
        if self.hostility is Hostility.HEADER_FLOOD:
            return HEAD * 32
        return os.urandom(64)

    def feed(self, data: bytes) -> bytes:
        reply = super().feed(data)
        mode = self.hostility
        if mode is Hostility.NONE or not reply:
            return reply
        common = self._hostile(reply, huge_tail=2048, split_piece=97)
        if common is not None:
            return common
        if mode is Hostility.SHORT:  # framed and CRC-valid, but 5 finger states only
            state = reply[HEADER_BYTES : HEADER_BYTES + 5 * FINGER_STATE.size]
            head = reply[:5] + struct.pack("<H", len(state))
            return head + state + struct.pack("<H", _crc(head + state))
        if mode is Hostility.MUTATED:  # finger states or header fields, CRC made valid again
            body = mutate(reply[:-CRC_BYTES], self.rng, keep=2)
            body = body[: HEADER_BYTES + FINGER_STATE.size * len(XHAND_JOINTS)]
            length = self.rng.choice([len(body) - HEADER_BYTES, body[5] | body[6] << 8])
            body = body[:5] + struct.pack("<H", length) + body[HEADER_BYTES:]
            return body + struct.pack("<H", _crc(body))
        return reply


def main(argv: list[str] | None = None) -> None:
    """Serve a fake XHand until Ctrl-C; prints the pty to open."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hand-id", type=int, default=0, help="0 from the factory")
    args = parser.parse_args(argv)
    with FakeXHand(args.hand_id) as hand:
        print(
            f"fake XHand (id {args.hand_id}, address {hand.address:#04x}) on {hand.path}",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
