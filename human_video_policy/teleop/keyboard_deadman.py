"""A deadman held with a key on a terminal: the key counts as held while its presses keep coming.

Terminals report key presses, not releases, but a held key auto-repeats (typically after a
250-600 ms delay, then at 25-40 Hz; X11's default is 660 ms / 25 Hz, ``xset q``). So
:class:`KeyHold` treats the key as held from a press until ``hold_s`` without another press:
``hold_s`` must exceed the auto-repeat delay (0.7 s covers the usual settings), which is also
the longest the robot can keep moving after the key is let go, before the subscriber's own
``deadman_timeout_s`` runs out. A foot pedal or a joystick button publishing its real state is
better; this is for a desk.

:class:`TerminalKeys` puts a TTY into non-canonical, no-echo mode and returns whatever keys
arrived without blocking; it restores the terminal on exit. numpy/ROS-free, used by
``nodes/deadman_node.py`` (``hvp teleop enable --key``).
"""

from __future__ import annotations

import os
import select
import sys
import termios
from typing import IO

from human_video_policy.errors import InputError
from human_video_policy.validation import check_range


class KeyHold:
    """Held from a press of ``key`` until ``hold_s`` seconds pass without one."""

    def __init__(self, key: str = " ", hold_s: float = 0.7) -> None:
        if not isinstance(key, str) or len(key) != 1:
            raise InputError(f"key={key!r} is invalid: must be one character")
        self.key = key
        self.hold_s = check_range("hold_s", hold_s, 0.05, 5.0)
        self._last_press: float | None = None

    def feed(self, keys: str, now_s: float) -> None:
        """Keys typed since the last call (any order), read at ``now_s`` (s, monotonic)."""
        if self.key in keys:
            self._last_press = now_s

    def held(self, now_s: float) -> bool:
        return self._last_press is not None and now_s - self._last_press <= self.hold_s


class TerminalKeys:
    """Non-blocking key reads from a TTY (no echo, no line buffering); a context manager."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdin
        if not self.stream.isatty():
            raise InputError("key mode needs a terminal (stdin is not a TTY)")
        self._fd = self.stream.fileno()
        self._saved: list | None = None

    def __enter__(self) -> TerminalKeys:
        self._saved = termios.tcgetattr(self._fd)
        mode = termios.tcgetattr(self._fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)  # lflags: no line buffering, no echo
        mode[6][termios.VMIN] = 0
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self._fd, termios.TCSANOW, mode)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSANOW, self._saved)

    def read(self, timeout_s: float = 0.0) -> str:
        """Keys typed so far (waits up to ``timeout_s`` for the first)."""
        ready, _, _ = select.select([self._fd], [], [], timeout_s)
        if not ready:
            return ""
        return os.read(self._fd, 1024).decode(errors="replace")
