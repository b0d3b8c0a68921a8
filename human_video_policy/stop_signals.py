"""SIGINT / SIGTERM turned into a callback on a helper thread, never inside a Python handler.

Python runs signal handlers in the main thread between bytecodes. A handler that takes a lock
(``threading.Event.set``, a Condition, a logger) deadlocks when the signal lands while the main
thread holds that lock, or while the handler itself runs (a second signal). Seen here: a node
launched by ``hvp launch`` got SIGINT from the launcher and, the launcher being killed, SIGTERM
from its parent-death signal; the nested handlers waited forever on the stop Event's lock and
the node lived on for an hour, publishing into the next test's graph.

:class:`SignalBridge` installs Python handlers that do nothing; the interpreter's C-level handler
writes the signal number to a wakeup pipe (``signal.set_wakeup_fd``, async-signal-safe), and a
daemon thread reads it and calls the callback with the signal number, as ordinary thread code.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _nothing(_signum: int, _frame: FrameType | None) -> None:
    """The Python-level handler: the wakeup pipe carries the signal to the bridge thread."""


class SignalBridge:
    """Calls ``callback(signum)`` from a daemon thread when one of ``signals`` arrives.

    Construct it in the main thread (Python's rule for signal handlers); :meth:`close` restores
    the previous handlers and wakeup fd. The callback must be thread-safe (it runs on the
    bridge's thread) and may be called more than once.
    """

    def __init__(
        self, callback: Callable[[int], None], signals: Iterable[int] = STOP_SIGNALS
    ) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("SignalBridge must be created in the main thread")
        self._callback = callback
        self._signals = tuple(int(s) for s in signals)
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._closing = threading.Event()
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._previous = {s: signal.signal(s, _nothing) for s in self._signals}
        self._thread = threading.Thread(target=self._pump, name="signal-bridge", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            try:
                data = os.read(self._read_fd, 64)
            except OSError:
                return
            if not data or self._closing.is_set():
                return
            for signum in data:
                if signum in self._signals:
                    self._callback(signum)

    def close(self) -> None:
        """Restore the previous handlers and wakeup fd; stop the bridge thread."""
        if self._closing.is_set():
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._closing.set()
        try:
            os.write(self._write_fd, b"\0")  # wake the pump so it sees the close
        except OSError:
            pass
        self._thread.join(timeout=1.0)
        os.close(self._read_fd)
        os.close(self._write_fd)

    def __enter__(self) -> SignalBridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
