"""Run a policy's inference on a thread of its own, with a watchdog on how long it takes.

Why a thread: an inference that takes longer than a tick (a diffusion policy's DDIM loop) must
not stop the node from receiving its inputs, reporting its state or noticing that the policy
hangs. The node hands one job at a time to :class:`InferenceWorker` (a new job is refused while
one runs: the newest observation is taken at the next tick, never a queue of old ones); the
worker calls the job and hands its result, or the exception it raised, to ``on_done`` on the
worker thread. ``busy_for(now)`` tells the watchdog how long the current job has run, so the
node can hold the robot and report a hang after ``timeout`` without waiting for the call to
return. A Python thread cannot be killed: a call that never returns keeps the worker busy (the
node stays in its error state, the robot held); when it does return, the worker takes jobs again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class InferenceWorker:
    """One daemon thread that runs one job at a time (see the module docstring)."""

    def __init__(self, on_done: Callable[[Any, BaseException | None, float], None], name: str):
        """``on_done(result, error, seconds)``: called on the worker thread after each job."""
        self._on_done = on_done
        self._lock = threading.Condition()
        self._job: Callable[[], Any] | None = None
        self._started_at: float | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], Any]) -> bool:
        """Start ``job`` now; False (and nothing done) when a job is still running."""
        with self._lock:
            if self._closed or self._job is not None or self._started_at is not None:
                return False
            self._job = job
            self._lock.notify()
            return True

    def busy_for(self) -> float:
        """Seconds (monotonic) the running job has taken so far; 0 when idle."""
        started = self._started_at
        return 0.0 if started is None else time.monotonic() - started

    @property
    def busy(self) -> bool:
        return self._job is not None or self._started_at is not None

    def close(self, timeout: float = 1.0) -> None:
        """Stop taking jobs; wait up to ``timeout`` for a running one (it is a daemon)."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._job is None and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self._job
                self._started_at = time.monotonic()
            result, error = None, None
            try:
                result = job()
            except BaseException as exc:  # a policy's failure, whatever it raises, is reported
                error = exc
            seconds = time.monotonic() - self._started_at
            try:
                self._on_done(result, error, seconds)
            finally:
                with self._lock:
                    self._job, self._started_at = None, None
