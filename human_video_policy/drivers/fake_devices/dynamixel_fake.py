"""A DYNAMIXEL Protocol 2.0 bus of X-series servos behind a pseudo-terminal.

It parses instruction packets exactly as ROBOTIS documents them (header FF FF FD 00, ID,
length, instruction, parameters, CRC-16 poly 0x8005, byte stuffing) and answers with status
packets from a control table per servo, so ``dynamixel_sdk`` opens its ``path`` like a U2D2.
Implemented: Ping, Read, Write, Sync Read, Sync Write, the Secondary ID (shadow servos act on
packets addressed to their master and stay silent), and fault injection: dropped link,
corrupted CRC, silence, and hardware-error status (alert bit + Hardware Error Status).
Facts and sources: docs/hardware_protocols.md.
"""

from __future__ import annotations

import argparse
import os
import struct
import threading

from human_video_policy.drivers.fake_devices import FaultMode, PtyPeer
from human_video_policy.drivers.fake_devices.hostile import (
    HostileDevice,
    Hostility,
    mutate,
)

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
STATUS = 0x55
PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83

# X-series control table addresses used here (XM430-W350 e-Manual).
ADDR_MODEL_NUMBER = 0
ADDR_ID = 7
ADDR_SECONDARY_ID = 12
ADDR_TORQUE_ENABLE = 64
ADDR_HARDWARE_ERROR_STATUS = 70
ADDR_GOAL_POSITION = 116
ADDR_PRESENT_POSITION = 132
CONTROL_TABLE_SIZE = 147

MODEL_XM430_W350 = 1020
FIRMWARE_VERSION = 0x2D

# Status error field: bit 7 is the hardware-error alert, bits 0-6 an error number.
ERR_INSTRUCTION = 0x02
ERR_CRC = 0x03
ERR_DATA_RANGE = 0x04
ERR_DATA_LENGTH = 0x05
ERR_ACCESS = 0x07
ALERT_BIT = 0x80


def crc16_dynamixel(data: bytes) -> int:
    """CRC-16 of Protocol 2.0 (polynomial 0x8005, initial 0, MSB first, no final XOR)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Byte stuffing: FF FF FD inside instruction+parameters becomes FF FF FD FD."""
    return body.replace(b"\xff\xff\xfd", b"\xff\xff\xfd\xfd")


def unstuff(body: bytes) -> bytes:
    return body.replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")


def build_packet(
    dxl_id: int, instruction: int, params: bytes = b"", error: int | None = None
) -> bytes:
    """A complete packet: instruction packet, or status packet when ``error`` is given."""
    body = bytes([instruction]) + (bytes([error]) if error is not None else b"") + params
    body = stuff(body)
    length = len(body) + 2  # + CRC
    packet = HEADER + bytes([dxl_id]) + struct.pack("<H", length) + body
    return packet + struct.pack("<H", crc16_dynamixel(packet))


class FakeServo:
    """One X-series servo's control table (little-endian values at the e-Manual addresses)."""

    def __init__(self, dxl_id: int) -> None:
        self.table = bytearray(CONTROL_TABLE_SIZE)
        struct.pack_into("<H", self.table, ADDR_MODEL_NUMBER, MODEL_XM430_W350)
        self.table[ADDR_ID] = dxl_id
        self.table[ADDR_SECONDARY_ID] = 255  # disabled
        struct.pack_into("<i", self.table, ADDR_PRESENT_POSITION, 2048)
        struct.pack_into("<i", self.table, ADDR_GOAL_POSITION, 2048)

    @property
    def id(self) -> int:
        return self.table[ADDR_ID]

    @property
    def secondary_id(self) -> int:
        return self.table[ADDR_SECONDARY_ID]

    def read(self, address: int, length: int) -> bytes:
        return bytes(self.table[address : address + length])

    def write(self, address: int, data: bytes) -> None:
        self.table[address : address + len(data)] = data
        # A stiff servo: with torque on it is where it was told to be.
        if self.table[ADDR_TORQUE_ENABLE] and address <= ADDR_GOAL_POSITION < address + len(data):
            self.table[ADDR_PRESENT_POSITION : ADDR_PRESENT_POSITION + 4] = self.table[
                ADDR_GOAL_POSITION : ADDR_GOAL_POSITION + 4
            ]

    @property
    def error_byte(self) -> int:
        return ALERT_BIT if self.table[ADDR_HARDWARE_ERROR_STATUS] else 0


class DynamixelBus(PtyPeer):
    """Servos with the given ids on one pty; ``servos[id]`` exposes their control tables."""

    def __init__(self, ids: list[int] | tuple[int, ...]) -> None:
        self.servos = {i: FakeServo(i) for i in ids}
        self._buffer = bytearray()
        self._bus_lock = threading.Lock()
        super().__init__()

    def set_hardware_error(self, dxl_id: int, bits: int) -> None:
        """Latch Hardware Error Status bits (e.g. 0x04 overheating) on one servo."""
        with self._bus_lock:
            self.servos[dxl_id].table[ADDR_HARDWARE_ERROR_STATUS] = bits

    def present_ticks(self, dxl_id: int) -> int:
        with self._bus_lock:
            return struct.unpack_from("<i", self.servos[dxl_id].table, ADDR_PRESENT_POSITION)[0]

    def feed(self, data: bytes) -> bytes:
        with self._bus_lock:
            self._buffer += data
            out = b""
            while True:
                packet = self._take_packet()
                if packet is None:
                    return out
                self.received.append(packet)
                out += self._answer(packet)

    def _take_packet(self) -> bytes | None:
        start = self._buffer.find(HEADER)
        if start < 0:
            del self._buffer[: max(0, len(self._buffer) - 3)]
            return None
        del self._buffer[:start]
        if len(self._buffer) < 7:
            return None
        total = 7 + struct.unpack_from("<H", self._buffer, 5)[0]
        if len(self._buffer) < total:
            return None
        packet = bytes(self._buffer[:total])
        del self._buffer[:total]
        return packet

    def _status(self, servo: FakeServo, params: bytes = b"", error: int = 0) -> bytes:
        packet = build_packet(servo.id, STATUS, params, error | servo.error_byte)
        if self.fault is FaultMode.MALFORMED:
            packet = packet[:-2] + bytes([packet[-2] ^ 0xFF, packet[-1]])
        return packet

    def _answer(self, packet: bytes) -> bytes:
        if self.fault is FaultMode.SILENT:
            return b""
        dxl_id = packet[4]
        crc_ok = struct.unpack("<H", packet[-2:])[0] == crc16_dynamixel(packet[:-2])
        body = unstuff(packet[7:-2])
        instruction, params = body[0], body[1:]
        addressed = [s for s in self.servos.values() if s.id == dxl_id]
        followers = [s for s in self.servos.values() if s.secondary_id == dxl_id]
        if not crc_ok:
            return b"".join(self._status(s, error=ERR_CRC) for s in addressed)
        if instruction == PING:
            targets = list(self.servos.values()) if dxl_id == BROADCAST_ID else addressed
            return b"".join(
                self._status(s, struct.pack("<HB", MODEL_XM430_W350, FIRMWARE_VERSION))
                for s in targets
            )
        if instruction == READ:
            address, length = struct.unpack("<HH", params[:4])
            return b"".join(self._read_status(s, address, length) for s in addressed)
        if instruction == WRITE:
            address, data = struct.unpack("<H", params[:2])[0], params[2:]
            for s in addressed + followers:
                s.write(address, data)
            return b"".join(self._status(s) for s in addressed)
        if instruction == SYNC_READ:
            address, length = struct.unpack("<HH", params[:4])
            out = b""
            for wanted in params[4:]:
                out += b"".join(
                    self._read_status(s, address, length)
                    for s in self.servos.values()
                    if s.id == wanted
                )
            return out
        if instruction == SYNC_WRITE:
            address, length = struct.unpack("<HH", params[:4])
            records = params[4:]
            for i in range(0, len(records) - length, length + 1):
                target, data = records[i], records[i + 1 : i + 1 + length]
                for s in self.servos.values():
                    if target in (s.id, s.secondary_id):
                        s.write(address, data)
            return b""  # no status packets for sync write (broadcast)
        return b"".join(self._status(s, error=ERR_INSTRUCTION) for s in addressed)

    def _read_status(self, servo: FakeServo, address: int, length: int) -> bytes:
        if address + length > CONTROL_TABLE_SIZE:
            return self._status(servo, error=ERR_ACCESS)
        return self._status(servo, servo.read(address, length))


class HostileDynamixelBus(HostileDevice, DynamixelBus):
    """A :class:`DynamixelBus` that answers as :attr:`hostility` says (see :class:`Hostility`).

    Absurd positions need no mode: write any int32 into a servo's Present Position with
    :meth:`set_present_ticks`. ``late_s``: how late a ``LATE`` reply comes.
    """

    STRANGER_ID = 200  # a servo id that is on no request: its status packets answer nothing

    def __init__(self, ids: list[int] | tuple[int, ...], late_s: float = 0.3) -> None:
        self._init_hostility(late_s)
        super().__init__(ids)

    def set_present_ticks(self, dxl_id: int, ticks: int) -> None:
        with self._bus_lock:
            struct.pack_into("<i", self.servos[dxl_id].table, ADDR_PRESENT_POSITION, ticks)

    def _flood_chunk(self) -> bytes:
        if self.hostility is Hostility.FRAME_FLOOD:  # valid status packets of a stranger
            return build_packet(self.STRANGER_ID, STATUS, struct.pack("<i", 2048), 0) * 4
        if self.hostility is Hostility.HEADER_FLOOD:  # header, then an id the SDK rejects
            return (HEADER + b"\xff\x04\x00\x55\x00") * 6
        return os.urandom(64)

    def _status(self, servo: FakeServo, params: bytes = b"", error: int = 0) -> bytes:
        if self.hostility is Hostility.SHORT and params:  # CRC-valid, one data byte only
            params = params[:1]
        packet = super()._status(servo, params, error)
        if self.hostility is Hostility.MUTATED:  # any field after the header, CRC valid again
            body = mutate(packet[:-2], self.rng, keep=4, count=2)
            packet = body + struct.pack("<H", crc16_dynamixel(body))
        return packet

    def feed(self, data: bytes) -> bytes:
        reply = super().feed(data)
        if self.hostility is Hostility.NONE or not reply:
            return reply
        common = self._hostile(reply, huge_tail=1024, split_piece=5)
        return reply if common is None else common  # SHORT, MUTATED: in _status


def main(argv: list[str] | None = None) -> None:
    """Serve a fake WidowX 250s bus (ids 1-9) until Ctrl-C; prints the pty to open."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", default="1,2,3,4,5,6,7,8,9", help="comma-separated servo ids")
    args = parser.parse_args(argv)
    ids = [int(i) for i in args.ids.split(",")]
    with DynamixelBus(ids) as bus:
        print(f"fake DYNAMIXEL bus (ids {ids}) on {bus.path}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
