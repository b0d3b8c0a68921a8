"""Local stand-ins for the robots, speaking the vendors' protocols byte for byte.

Each fake is a real peer on a real transport (a TCP socket on 127.0.0.1, or a pseudo-terminal
that pyserial and the Dynamixel SDK open like a USB serial adapter), so a driver cannot tell it
from hardware. They exist so that the drivers can be tested, and so that people can try a graph
without a robot::

    python -m human_video_policy.drivers.fake_devices.realman_fake --port 8080
    python -m human_video_policy.drivers.fake_devices.xhand_fake        # prints the pty path
    python -m human_video_policy.drivers.fake_devices.dynamixel_fake    # prints the pty path

Every fake records what it received (``received``) and can inject the failures a driver must
survive: a dropped link, a malformed reply, no reply (timeout) and a device error code.
"""

from __future__ import annotations

import abc
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from enum import Enum


class FaultMode(str, Enum):
    """What a fake does instead of answering normally.

    ``NONE``: answer as the device would. ``DROP``: close the link on the next request.
    ``MALFORMED``: answer with bytes that break the protocol (bad checksum / not JSON).
    ``SILENT``: swallow requests without answering (the driver must time out).
    """

    NONE = "none"
    DROP = "drop"
    MALFORMED = "malformed"
    SILENT = "silent"


class PtyPeer(abc.ABC):
    """A pseudo-terminal whose master end is served by a thread: the base of the serial fakes.

    ``path`` is the slave device (e.g. ``/dev/pts/7``) to give a driver as its serial port.
    Subclasses implement :meth:`feed` (bytes in, reply bytes out); the thread reads whatever
    arrives, calls it and writes the reply. :meth:`close` stops the thread and closes both fds,
    also when called twice. Use as a context manager so tests never leak fds.
    """

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.fault = FaultMode.NONE
        self.received: list[bytes] = []  # every request as it arrived (after framing)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)
        self._thread.start()

    # --- what each device defines -------------------------------------------------------------
    @abc.abstractmethod
    def feed(self, data: bytes) -> bytes:
        """Consume bytes from the host; return the bytes to send back (b"" for none)."""

    # --- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> PtyPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drop_link(self) -> None:
        """Hang up now, like unplugging the USB adapter: the host's next read/write fails."""
        self._close_master()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._close_master()
        with self._lock:
            if self._slave >= 0:
                os.close(self._slave)
                self._slave = -1

    def _close_master(self) -> None:
        with self._lock:
            if self._master >= 0:
                os.close(self._master)
                self._master = -1

    def _serve(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                fd = self._master
            if fd < 0:
                return
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(fd, 65536)
            except (OSError, ValueError):
                return
            if not data:
                continue
            reply = self.feed(data)
            if self.fault is FaultMode.DROP and self._master >= 0:
                self.drop_link()
                return
            if reply:
                try:
                    os.write(fd, reply)
                except OSError:
                    return


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` s pass (tests and CLIs use it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())
