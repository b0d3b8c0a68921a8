"""The process that hosts Realman's SDK (``Robotic_Arm``) for drivers/realman_sdk.py.

Why a process of its own: a crafted controller reply crashes ``libapi_c.so`` (an ``err`` list
of 28 codes or more, a joint list of 1000 numbers, an oversized handshake reply: SIGSEGV or
SIGABRT), and a controller that stops reading holds ``rm_movej_canfd`` in C for ever. In this
process such a crash or hang kills only the SDK; the driver sees the pipe break or its
deadline pass, kills this process and starts a fresh one to reconnect.

Protocol (one JSON object per line, stdlib only so the process starts fast): requests on
stdin, replies on the file descriptor given as the first argument (stdout carries the SDK's
own prints and goes to /dev/null). The first reply, unasked, is ``{"ready": true}`` or
``{"ready": false, "error": ...}``. Each request ``{"id": n, "op": ...}`` gets one reply with
the same ``id`` and the SDK's return ``code``, or ``error`` when the binding raised. The
parent trusts nothing in a reply (it bounds and checks every value); this side only moves
values. Ends on end of input, on ``close``, or when the parent process is gone.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, BinaryIO

# The SDK's state struct holds 24 error codes; a longer list overflows it (the reply says so).
SDK_ERR_CAPACITY = 24


def _watch_parent(parent: int) -> None:
    """Exit when the parent dies, even while the main thread is stuck inside the SDK (ctypes
    releases the GIL during a C call, so this thread still runs)."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


class _Host:
    """One SDK arm handle and the requests that act on it."""

    def __init__(self) -> None:
        from Robotic_Arm.rm_robot_interface import RoboticArm, rm_thread_mode_e

        self._arm_class = RoboticArm
        self._mode = rm_thread_mode_e.RM_TRIPLE_MODE_E
        self.arm: Any = None

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "connect":
            self.arm = self._arm_class(self._mode)
            self.arm.rm_set_timeout(int(request["timeout_ms"]))
            handle = self.arm.rm_create_robot_arm(str(request["host"]), int(request["port"]))
            return {"code": 0 if handle.id > 0 else -1, "handle": int(handle.id)}
        if self.arm is None:
            return {"error": "not connected"}
        if op == "state":
            self.arm.rm_set_timeout(int(request["timeout_ms"]))
            code, state = self.arm.rm_get_current_arm_state()
            err = state.get("err", {}) if isinstance(state, dict) else {}
            return {
                "code": code,
                "joint": [float(v) for v in state.get("joint", [])][:64],
                "err_len": int(err.get("err_len", 0)),
                "err": [int(c) for c in err.get("err", [])][:64],
            }
        if op == "power":
            self.arm.rm_set_timeout(int(request["timeout_ms"]))
            return {"code": self.arm.rm_set_arm_power(int(request["on"]))}
        if op == "info":
            self.arm.rm_set_timeout(int(request["timeout_ms"]))
            code, info = self.arm.rm_get_arm_software_info()
            product = info.get("product_version", "") if isinstance(info, dict) else ""
            return {"code": code, "product": str(product)[:200]}
        if op == "canfd":
            degrees = [float(v) for v in request["degrees"]]
            return {"code": self.arm.rm_movej_canfd(degrees, bool(request["follow"]))}
        return {"error": f"unknown op {op!r}"}

    def close(self) -> None:
        if self.arm is not None:
            self.arm.rm_delete_robot_arm()
            self.arm = None


def _reply(out: BinaryIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
    out.flush()


def main(argv: list[str] | None = None) -> None:
    """Serve requests from stdin until end of input or ``close``."""
    args = sys.argv[1:] if argv is None else argv
    out = os.fdopen(int(args[0]), "wb", buffering=0)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        host = _Host()
    except Exception as exc:  # ImportError, OSError: libapi_c.so does not load here
        _reply(out, {"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    _reply(out, {"ready": True})
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            ident = request["id"]
        except (ValueError, KeyError, TypeError):
            return  # the parent never sends this: stop
        if request.get("op") == "close":
            host.close()
            _reply(out, {"id": ident, "code": 0})
            return
        try:
            message = host.handle(request)
        except Exception as exc:  # the binding's TypeError, IndexError...: the parent decides
            message = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        _reply(out, {"id": ident, **message})


if __name__ == "__main__":
    main()
