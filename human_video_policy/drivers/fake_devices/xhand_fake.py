"""A Robotera XHand on a pseudo-terminal, speaking the RS-485 frames of drivers/xhand_serial.py.

It checks each request's header and CRC (a request with a bad CRC is ignored, as a bus device
would), keeps 12 joint positions, answers the state request and control frames with a state
frame (12 finger states + a zeroed tactile block), and injects faults: dropped link, reply with
a broken CRC, silence, and per-joint board error codes. The frame layout is the project's
reading of public sources; see docs/hardware_protocols.md for what is unverified.
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
from human_video_policy.drivers.xhand_serial import (
    CMD_CONTROL,
    CMD_READ_STATE,
    CRC_BYTES,
    DEFAULT_HAND_ADDRESS,
    FINGER_COMMAND,
    FINGER_STATE,
    FRAME_HEADER,
    HEADER_BYTES,
    HOST_ADDRESS,
    MODE_POSITION,
)
from human_video_policy.robots.xhand import XHAND_JOINTS

TACTILE_BYTES = 5 * 384  # zeroed tactile block after the finger states (ignored by the driver)


def _crc(data: bytes) -> int:
    """CRC-16/XMODEM via the standard library (CRC-CCITT from 0), not the driver's code."""
    return binascii.crc_hqx(data, 0)


class FakeXHand(PtyPeer):
    """A 12-joint hand at ``address``; ``positions`` (rad) follow position-mode commands."""

    def __init__(self, address: int = DEFAULT_HAND_ADDRESS) -> None:
        self.address = address
        self.positions = np.zeros(len(XHAND_JOINTS))
        self.modes = np.zeros(len(XHAND_JOINTS), dtype=int)
        self.errors = np.zeros((len(XHAND_JOINTS), 3), dtype=int)  # comm, joint, tip board
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
            while (frame := self._take_frame()) is not None:
                self.received.append(frame)
                out += self._answer(frame)
            return out

    def _take_frame(self) -> bytes | None:
        start = self._buffer.find(FRAME_HEADER)
        if start < 0:
            del self._buffer[:-1]
            return None
        del self._buffer[:start]
        if len(self._buffer) < HEADER_BYTES:
            return None
        total = HEADER_BYTES + struct.unpack_from("<H", self._buffer, 5)[0] + CRC_BYTES
        if len(self._buffer) < total:
            return None
        frame = bytes(self._buffer[:total])
        del self._buffer[:total]
        return frame

    def _answer(self, frame: bytes) -> bytes:
        src, dst, command, length = struct.unpack_from("<BBBH", frame, 2)
        crc = struct.unpack_from("<H", frame, len(frame) - 2)[0]
        if crc != _crc(frame[:-2]) or dst != self.address or src != HOST_ADDRESS:
            return b""
        if self.fault is FaultMode.SILENT:
            return b""
        payload = frame[HEADER_BYTES : HEADER_BYTES + length]
        if command == CMD_CONTROL and len(payload) == FINGER_COMMAND.size * len(XHAND_JOINTS):
            for k in range(len(XHAND_JOINTS)):
                fields = FINGER_COMMAND.unpack_from(payload, k * FINGER_COMMAND.size)
                joint, position, mode = fields[0], fields[4], fields[6]
                self.modes[joint] = mode
                if mode == MODE_POSITION and not self.errors[joint].any():
                    self.positions[joint] = position
        elif command != CMD_READ_STATE:
            return b""
        state = self._state_payload()
        reply = FRAME_HEADER + struct.pack("<BBBH", self.address, HOST_ADDRESS, command, len(state))
        reply += state
        reply += struct.pack("<H", _crc(reply))
        if self.fault is FaultMode.MALFORMED:
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])
        return reply

    def _state_payload(self) -> bytes:
        fingers = b"".join(
            FINGER_STATE.pack(k, k, float(self.positions[k]), 0, 0, 30, *self.errors[k], 0, 0, 0)
            for k in range(len(XHAND_JOINTS))
        )
        return fingers + bytes(TACTILE_BYTES)


class HostileXHand(HostileDevice, FakeXHand):
    """A :class:`FakeXHand` that answers as :attr:`hostility` says (see :class:`Hostility`).

    Non-finite or absurd positions need no mode: set ``positions`` (float32 on the wire, so
    NaN, inf and 1e30 all encode). ``late_s``: how late a ``LATE`` reply comes.
    """

    def __init__(self, address: int = DEFAULT_HAND_ADDRESS, late_s: float = 0.3) -> None:
        self._init_hostility(late_s)
        super().__init__(address)

    def _flood_chunk(self) -> bytes:
        if self.hostility is Hostility.FRAME_FLOOD:  # a valid frame, from another hand
            state = self._state_payload()[: FINGER_STATE.size * len(XHAND_JOINTS)]
            head = FRAME_HEADER + struct.pack(
                "<BBBH", self.address ^ 1, HOST_ADDRESS, CMD_READ_STATE, len(state)
            )
            return head + state + struct.pack("<H", _crc(head + state))
        if self.hostility is Hostility.HEADER_FLOOD:
            return FRAME_HEADER * 32
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
    parser.add_argument("--address", type=lambda v: int(v, 0), default=DEFAULT_HAND_ADDRESS)
    args = parser.parse_args(argv)
    with FakeXHand(args.address) as hand:
        print(f"fake XHand (address {args.address:#04x}) on {hand.path}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
