"""Hostile behaviours shared by the serial fakes: how a broken or babbling device answers.

A driver must survive a device that answers wrongly, not only one that is silent or drops the
link. :class:`Hostility` names the ways tested in test/test_fault_hostile_xhand_dynamixel.py;
:class:`Flood` is a thread that writes bytes to a fake's pty without end (a device stuck
transmitting, or a wrong baud rate turning noise into bytes), so a test can show that a read
stays inside its deadline and its memory bound while bytes keep coming.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
from collections.abc import Callable
from enum import Enum


class Hostility(str, Enum):
    """How a hostile fake answers a request (which apply depends on the device).

    ``NONE``: as the honest fake. ``SHORT``: a well-framed reply (valid CRC) whose payload is
    too short. ``HUGE_LENGTH``: a header that announces the largest length the field allows,
    then garbage. ``GARBAGE``: a few hundred random bytes instead of a reply. ``GARBAGE_FLOOD``:
    random bytes without end. ``FRAME_FLOOD``: well-formed frames that are never the expected
    reply (another address), without end. ``HEADER_FLOOD``: the header bytes over and over.
    ``SPLIT``: the honest reply in small pieces a few ms apart (must still be read).
    ``PARTIAL``: the first half of the reply, then silence. ``LATE``: the honest reply, but
    only after the driver's timeout (it must not be taken as the answer to a later request).
    ``TRAILING``: the honest reply followed by garbage. ``MUTATED``: the honest reply with a
    few random bytes replaced and the checksum recomputed, so the change reaches the parser.
    """

    NONE = "none"
    SHORT = "short"
    HUGE_LENGTH = "huge_length"
    GARBAGE = "garbage"
    GARBAGE_FLOOD = "garbage_flood"
    FRAME_FLOOD = "frame_flood"
    HEADER_FLOOD = "header_flood"
    SPLIT = "split"
    PARTIAL = "partial"
    LATE = "late"
    TRAILING = "trailing"
    MUTATED = "mutated"


FLOODS = (Hostility.GARBAGE_FLOOD, Hostility.FRAME_FLOOD, Hostility.HEADER_FLOOD)


class Flood:
    """Writes ``chunk()`` to ``fd_of()`` (a pty master) again and again until :meth:`stop`.

    Small chunks, each only once select() says the pty can take bytes, so the thread never
    blocks for long in write() and stops promptly; ``written`` counts the bytes sent.
    """

    def __init__(self, fd_of: Callable[[], int], chunk: Callable[[], bytes]) -> None:
        self._fd_of = fd_of
        self._chunk = chunk
        self._stop = threading.Event()
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="Flood", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            fd = self._fd_of()
            if fd < 0:
                return
            try:
                _, writable, _ = select.select([], [fd], [], 0.02)
                if writable:
                    self.written += os.write(fd, self._chunk())
                else:
                    time.sleep(0.001)
            except (OSError, ValueError):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def mutate(data: bytes, rng: random.Random, keep: int, count: int = 3) -> bytes:
    """``data`` with ``count`` random bytes after the first ``keep`` replaced by random values
    (the caller recomputes the checksum)."""
    out = bytearray(data)
    for _ in range(count):
        if len(out) > keep:
            out[rng.randrange(keep, len(out))] = rng.randrange(256)
    return bytes(out)


def write_in_pieces(fd: int, data: bytes, piece: int = 16, gap_s: float = 0.002) -> None:
    """Write ``data`` to ``fd`` in ``piece``-byte writes ``gap_s`` apart (a reply that arrives
    over several reads of the host)."""
    for start in range(0, len(data), piece):
        try:
            os.write(fd, data[start : start + piece])
        except OSError:
            return
        time.sleep(gap_s)


class HostileDevice:
    """What the hostile serial fakes share: the mode, the flood, and the reply rewrites every
    framed protocol suffers alike. Mix it in before the fake (``class X(HostileDevice,
    FakeY)``), call :meth:`_init_hostility` before the fake's own ``__init__``, and define
    ``_flood_chunk``; the fake's ``feed`` passes its honest reply through :meth:`_hostile`.
    """

    _master: int  # the fake's pty master (PtyPeer)

    def _init_hostility(self, late_s: float) -> None:
        self.hostility = Hostility.NONE
        self.late_s = late_s
        self.rng = random.Random(0)
        self._flood: Flood | None = None

    def _flood_chunk(self) -> bytes:
        """What a flood writes; devices override it for their own frames and headers."""
        return os.urandom(64)

    def set_hostility(self, hostility: Hostility) -> None:
        """Switch behaviour; a flood starts at once and runs until the next switch."""
        if self._flood is not None:
            self._flood.stop()
            self._flood = None
        self.hostility = hostility
        if hostility in FLOODS:
            self._flood = Flood(lambda: self._master, self._flood_chunk)

    @property
    def flooded_bytes(self) -> int:
        return self._flood.written if self._flood is not None else 0

    def close(self) -> None:
        self.set_hostility(Hostility.NONE)
        super().close()  # type: ignore[misc]

    def _hostile(self, reply: bytes, huge_tail: int, split_piece: int) -> bytes | None:
        """``reply`` as the common modes rewrite it, or None for a mode the device handles
        itself (SHORT, MUTATED, NONE)."""
        mode = self.hostility
        if mode in FLOODS:
            return b""
        if mode is Hostility.HUGE_LENGTH:  # the largest length the field allows, then noise
            return reply[:5] + b"\xff\xff" + os.urandom(huge_tail)
        if mode is Hostility.GARBAGE:
            return os.urandom(300)
        if mode is Hostility.SPLIT:
            write_in_pieces(self._master, reply, piece=split_piece, gap_s=0.002)
            return b""
        if mode is Hostility.PARTIAL:
            return reply[: len(reply) // 2]
        if mode is Hostility.LATE:
            threading.Timer(self.late_s, self._write_late, (reply,)).start()
            return b""
        if mode is Hostility.TRAILING:
            return reply + os.urandom(40)
        return None

    def _write_late(self, reply: bytes) -> None:
        try:
            os.write(self._master, reply)
        except OSError:
            pass
