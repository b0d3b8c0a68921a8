"""Child processes that end when the process that started them dies, even by SIGKILL.

Why: ``hvp record`` and ``hvp launch`` run nodes as child processes. A parent killed with
SIGKILL (or by an OOM killer, or a closed terminal) cannot pass anything on, so its nodes lived
on: a recorder kept recording into the bag and a controller kept publishing into the next
graph. Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``) makes the kernel send the child
a signal when its parent dies; the nodes stop cleanly on SIGTERM (stop_signals.SignalBridge), so
a recorder closes its bag.

Use :func:`die_with_parent` as ``subprocess.Popen``'s ``preexec_fn``. The signal is tied to the
thread that forks the child: start children from a thread that lives as long as they should
(the main thread in the CLI commands). Off Linux it returns None (no preexec_fn).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved in the parent: the child between fork and exec must not dlopen."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child ``sig`` when this process dies (None off Linux).

    The check after ``prctl`` closes the race where the parent died between fork and prctl:
    the child then signals itself, since the kernel would not.
    """
    if _PRCTL is None:
        return None
    prctl = _PRCTL
    parent = os.getpid()

    def preexec() -> None:  # in the child, between fork and exec
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(int(sig)))
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


__all__ = ["PR_SET_PDEATHSIG", "die_with_parent"]
