"""RealMan arm through Realman's own Python SDK (PyPI ``robotic-arm``, import ``Robotic_Arm``).

Why a second client: a lab that trusts the vendor's code can run the stack on it, behind the
same safety layer and :class:`~human_video_policy.drivers.base.JointDriver` interface; and the
project's JSON client (drivers/realman.py) stays the default. Selected with ``driver_config``
``backend: sdk``.

Why the SDK runs in a child process (drivers/realman_sdk_child.py): the SDK is not safe
against a broken or hostile controller. A crafted reply crashes ``libapi_c.so`` (SIGSEGV or
SIGABRT: an ``err`` list of 28 codes or more, a joint list of 1000 numbers, an oversized
handshake reply), a controller that stops reading holds ``rm_movej_canfd`` in C for ever, and
one reply later than the SDK's timeout makes every later read return the previous request's
state. So every SDK call goes over a pipe with a deadline: a child that dies, passes its
deadline or answers anything malformed becomes a DriverConnectionError / DriverTimeoutError /
DriverProtocolError here, the child is killed, and the next ``connect()`` starts a fresh one
(the controller core does that in its reconnect thread, then waits for ~/enable). The same
happens after any SDK code other than 0 or 1 (-1 send failed, -2 no reply, -3 bad reply):
dropping the connection is the only way to be sure a late reply is never read as the answer
to a later request (the SDK's state carries no sequence number). Nothing the child returns is
trusted: lengths, types, finite angles within +-360 degrees and error codes are checked here.

Timeouts: the SDK's own (``rm_set_timeout``, one global value in ms, default 500) is set in
the child before each call, from ``state_timeout_s`` for state reads and ``timeout_s`` for
connect and power; :attr:`RealmanSdkDriver.tick_io_bound_s` adds the pipe's margin, so the
controller node checks the tick fits its period as it does for the JSON client.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import human_video_policy
from human_video_policy.drivers.base import (
    DeviceFault,
    DriverConnectionError,
    DriverError,
    DriverProtocolError,
    DriverSession,
    DriverTimeoutError,
    Fault,
    JointState,
    check_command,
)
from human_video_policy.drivers.realman import (
    MAX_ABS_JOINT_MDEG,
    SYSTEM_ERRORS,
    RealmanArmConfig,
    parse_reply,
)
from human_video_policy.drivers.realman_sdk_child import SDK_ERR_CAPACITY

# Time a state read may take on top of the SDK's own timeout: the pipe round trip, the child's
# Python, a send still being run, and the SDK's 2 ms polling steps. Measured on the shared
# 2-core machine: a send's round trip 0.4 ms median, 2.1 ms p99, 4.1 ms max in 1000; with
# 2 ms of margin about 1 tick in 100 missed its deadline, with 4 ms none in 2000 (quiet
# machine; benchmarks/realman_clients.py).
PIPE_MARGIN_S = 0.004
# Starting Python and loading libapi_c.so in the child (about 0.15 s when idle).
CHILD_START_TIMEOUT_S = 5.0
# Requests the SDK sends while connecting (rm_create_robot_arm: software info, joint limits,
# DH, frames...; 11 counted against the fake); each may wait ``timeout_s``.
HANDSHAKE_REQUESTS = 12
# A reply of the child is a few hundred bytes; anything longer is refused unparsed.
MAX_CHILD_REPLY_BYTES = 8192
# Error codes one state may carry: the SDK's struct holds 24, more overwrite its memory.
MAX_ERROR_CODES = SDK_ERR_CAPACITY


class _SdkProcess:
    """The child process hosting the SDK: one request at a time, each with a deadline."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._next_id = 0
        self._buffer = b""
        read_fd, write_fd = os.pipe()
        package_root = str(Path(human_video_policy.__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        try:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "human_video_policy.drivers.realman_sdk_child",
                    str(write_fd),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,  # the SDK prints (versions, "Send would block")
                stderr=subprocess.DEVNULL,
                pass_fds=(write_fd,),
                env=env,
            )
        except OSError as exc:
            os.close(read_fd)
            raise DriverConnectionError(f"{name}: cannot start the SDK process: {exc}") from exc
        finally:
            os.close(write_fd)
        self._read_fd = read_fd
        os.set_blocking(read_fd, False)
        assert self._proc.stdin is not None
        self._write_fd = self._proc.stdin.fileno()
        os.set_blocking(self._write_fd, False)
        try:
            ready = self._read_reply(time.monotonic() + CHILD_START_TIMEOUT_S, "start")
        except DriverError:
            self.kill()
            raise
        if ready.get("ready") is not True:
            self.kill()
            raise DriverConnectionError(
                f"{name}: Realman's SDK (pip install robotic-arm) does not load: "
                f"{str(ready.get('error'))[:300]}; use backend json"
            )

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send ``request``; its reply within ``timeout_s``, or a DriverError."""
        deadline = time.monotonic() + timeout_s
        return self.collect(self.submit(request), deadline, str(request.get("op")))

    def submit(self, request: dict[str, Any]) -> int:
        """Hand ``request`` to the child without waiting (the pipe holds 64 KiB; a request is
        a few hundred bytes); its id, for :meth:`collect`."""
        self._next_id += 1
        ident = self._next_id
        what = str(request.get("op"))
        data = json.dumps({"id": ident, **request}, separators=(",", ":")).encode() + b"\n"
        try:
            written = os.write(self._write_fd, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            error: DriverError = self._died(what, f"took no request ({exc})")
            self.kill()
            raise error from None
        if written != len(data):  # the pipe is full: the child stopped reading long ago
            self.kill()
            raise DriverTimeoutError(f"{self.name}: SDK {what}: the SDK process is stuck")
        return ident

    def collect(self, ident: int, deadline: float, what: str) -> dict[str, Any]:
        """The reply to request ``ident`` by ``deadline`` (monotonic), or a DriverError; the
        child is killed on every error (its state is unknown)."""
        try:
            reply = self._read_reply(deadline, what)
            if reply.get("id") != ident:
                raise DriverProtocolError(
                    f"{self.name}: SDK {what}: reply {str(reply)[:80]} is not for request {ident}"
                )
            if "error" in reply:
                raise DriverProtocolError(f"{self.name}: SDK {what}: {str(reply['error'])[:300]}")
            return reply
        except DriverError:
            self.kill()
            raise

    def kill(self) -> None:
        """End the child (SIGKILL: it may be stuck in C) and reap it."""
        if self._proc.poll() is None:
            try:
                self._proc.kill()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            pass
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass
        if self._read_fd >= 0:
            os.close(self._read_fd)
            self._read_fd = -1

    def _read_reply(self, deadline: float, what: str) -> dict[str, Any]:
        poller = select.poll()  # not select(): descriptors >= 1024 in a busy process
        poller.register(self._read_fd, select.POLLIN)
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_CHILD_REPLY_BYTES:
                raise DriverProtocolError(
                    f"{self.name}: SDK {what}: reply over {MAX_CHILD_REPLY_BYTES} bytes"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DriverTimeoutError(
                    f"{self.name}: SDK {what}: no answer from the SDK process within its "
                    "deadline (the controller stalls it)"
                )
            if not poller.poll(math.ceil(remaining * 1000.0)):
                continue
            try:
                chunk = os.read(self._read_fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                raise self._died(what, "ended")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        if len(line) > MAX_CHILD_REPLY_BYTES:
            raise DriverProtocolError(
                f"{self.name}: SDK {what}: reply over {MAX_CHILD_REPLY_BYTES} bytes"
            )
        try:
            return parse_reply(line)
        except (ValueError, RecursionError) as exc:
            raise DriverProtocolError(
                f"{self.name}: SDK {what}: unreadable reply ({str(exc)[:100]})"
            ) from None

    def _died(self, what: str, how: str) -> DriverConnectionError:
        try:
            code = self._proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            try:
                cause = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                cause = f"killed by signal {-code}"
        else:
            cause = f"exit status {code}"
        return DriverConnectionError(
            f"{self.name}: SDK {what}: the SDK process {how} ({cause}; a controller reply "
            "crashed the SDK, or the link dropped)"
        )


class RealmanSdkDriver(DriverSession):
    """:class:`~human_video_policy.drivers.base.JointDriver` on Realman's Python SDK, hosted in
    a child process (see the module docstring).

    ``send_positions`` hands the target to the child and returns without waiting for the
    SDK's return code (``rm_movej_canfd`` gets no reply from the controller; the code only
    says whether the bytes left): the next call collects it first, within its own deadline,
    and raises its error. So a tick waits on the pipe once, not twice.
    """

    def __init__(self, config: RealmanArmConfig) -> None:
        self.config = config
        self._child: _SdkProcess | None = None
        self._pending_send: int | None = None  # id of a movej_canfd not yet collected
        self._enabled = False

    @property
    def name(self) -> str:
        return f"realman-sdk@{self.config.host}:{self.config.port}"

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.config.joint_names

    @property
    def is_connected(self) -> bool:
        return self._child is not None and self._child.alive

    @property
    def child_pid(self) -> int | None:
        """The SDK process's pid while connected (tests and diagnostics)."""
        return self._child.pid if self._child is not None else None

    @property
    def tick_io_bound_s(self) -> float:
        """The longest one control tick (read_state + send_positions) can wait: the SDK's
        state timeout plus the pipe's margin (the send only writes to the pipe)."""
        return self._state_timeout_ms() / 1000.0 + PIPE_MARGIN_S

    def connect(self) -> None:
        self.close()
        self._child = _SdkProcess(self.name)
        try:
            reply = self._call(
                "connect",
                {
                    "host": self.config.host,
                    "port": self.config.port,
                    "timeout_ms": self._timeout_ms(),
                },
                HANDSHAKE_REQUESTS * self.config.timeout_s + PIPE_MARGIN_S,
            )
            if reply["code"] != 0:
                raise DriverConnectionError(
                    f"{self.name}: the SDK cannot connect (handle id {reply.get('handle')!r})"
                )
            self.read_state()  # proves the controller answers
        except DriverError:
            self.close()
            raise

    def close(self) -> None:
        child, self._child = self._child, None
        self._pending_send = None
        self._enabled = False
        if child is not None:
            child.kill()

    def enable(self) -> None:
        self._set_power(1)
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False
        self._set_power(0)

    def read_state(self) -> JointState:
        timeout_s = self._state_timeout_ms() / 1000.0 + PIPE_MARGIN_S
        reply = self._call("state", {"timeout_ms": self._state_timeout_ms()}, timeout_s)
        self._check("rm_get_current_arm_state", reply["code"])
        try:
            positions = self._positions(reply.get("joint"))
            codes = self._error_codes(reply.get("err_len"), reply.get("err"))
        except DriverProtocolError:
            self.close()  # the SDK's memory may be overwritten: a fresh process next time
            raise
        return JointState(
            names=self.joint_names,
            positions=positions,
            stamp_s=time.monotonic(),
            enabled=self._enabled,
            faults=tuple(Fault(c, SYSTEM_ERRORS.get(c, "unknown error code")) for c in codes),
        )

    def send_positions(self, positions: np.ndarray) -> None:
        command = check_command(self.name, self.joint_names, positions)
        degrees = [math.degrees(float(q)) for q in command]
        child = self._connected_child()
        self._collect_send(time.monotonic() + PIPE_MARGIN_S)  # two sends in a row
        try:
            self._pending_send = child.submit(
                {"op": "canfd", "degrees": degrees, "follow": self.config.follow}
            )
        except DriverError:
            self.close()
            raise

    def product_version(self) -> str:
        """The controller's product version as the SDK reads it (``hvp doctor``); printable
        text of at most 64 characters, else DriverProtocolError."""
        reply = self._call("info", {"timeout_ms": self._timeout_ms()}, self.config.timeout_s + 0.1)
        self._check("rm_get_arm_software_info", reply["code"])
        product = reply.get("product")
        if not isinstance(product, str) or len(product) > 64 or not product.isprintable():
            self.close()
            raise DriverProtocolError(f"{self.name}: SDK product version {str(product)[:80]!r}")
        return product

    # --- helpers --------------------------------------------------------------------------------
    def _timeout_ms(self) -> int:
        return max(1, round(self.config.timeout_s * 1000.0))

    def _state_timeout_ms(self) -> int:
        return max(1, round(self.config.state_timeout_s * 1000.0))

    def _connected_child(self) -> _SdkProcess:
        child = self._child
        if child is None or not child.alive:
            self.close()
            raise DriverConnectionError(f"{self.name}: not connected (call connect() first)")
        return child

    def _call(self, op: str, fields: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """One request to the child, answered within ``timeout_s`` (which also covers a send
        still outstanding: the child runs requests in order); ``code`` checked to be an int.
        Any error drops the child, and so the connection."""
        deadline = time.monotonic() + timeout_s
        child = self._connected_child()
        try:
            ident = child.submit({"op": op, **fields})
            self._collect_send(deadline)
            reply = child.collect(ident, deadline, op)
            code = reply.get("code")
            if not isinstance(code, int) or isinstance(code, bool):
                raise DriverProtocolError(f"{self.name}: SDK {op} returned {code!r}, not a code")
        except DriverError:
            self.close()
            raise
        return reply

    def _collect_send(self, deadline: float) -> None:
        """The return code of the outstanding ``rm_movej_canfd``, if any; its error raised
        (the connection dropped with it: a request of ours may still be in the child)."""
        ident, self._pending_send = self._pending_send, None
        if ident is None or self._child is None:
            return
        try:
            code = self._child.collect(ident, deadline, "canfd").get("code")
            if not isinstance(code, int) or isinstance(code, bool):
                raise DriverProtocolError(f"{self.name}: SDK canfd returned {code!r}, not a code")
            if code != 0:
                self._check("rm_movej_canfd", code)
        except DriverError:
            self.close()
            raise

    def _check(self, what: str, code: int) -> None:
        """The SDK's return codes as the JSON client's errors: 0 success, 1 the controller
        refused (DeviceFault), -1 send failed, -2 no reply, -3 bad reply. After -1/-2/-3 the
        connection is dropped: a late reply must never answer a later request."""
        if code == 0:
            return
        if code == 1:
            raise DeviceFault(self.name, 1, f"controller refused {what} (SDK code 1)")
        self.close()
        if code == -1:
            raise DriverConnectionError(f"{self.name}: SDK {what}: send failed (-1)")
        if code == -2:
            raise DriverTimeoutError(
                f"{self.name}: SDK {what}: no reply in time (-2); connection dropped so a late "
                "reply cannot answer a later request"
            )
        if code == -3:
            raise DriverProtocolError(f"{self.name}: SDK {what}: reply not readable (-3)")
        raise DriverProtocolError(f"{self.name}: SDK {what} returned the unknown code {code}")

    def _set_power(self, on: int) -> None:
        """``rm_set_arm_power``; a refusal raises DeviceFault with the controller's error code
        (as the JSON client does)."""
        reply = self._call(
            "power", {"on": on, "timeout_ms": self._timeout_ms()}, self.config.timeout_s + 0.1
        )
        try:
            self._check(f"rm_set_arm_power({on})", reply["code"])
        except DeviceFault:
            faults = self.read_state().faults
            code, meaning = (faults[0].code, faults[0].meaning) if faults else (0, "no error code")
            raise DeviceFault(
                self.name, code, f"controller refused set_arm_power {on}: {meaning}"
            ) from None

    def _positions(self, joint: Any) -> np.ndarray:
        count = len(self.joint_names)
        if not isinstance(joint, list) or not count <= len(joint) <= 7:
            raise DriverProtocolError(
                f"{self.name}: SDK state without {count} joint angles: {str(joint)[:120]}"
            )
        out = np.empty(count)
        for i, value in enumerate(joint[:count]):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DriverProtocolError(
                    f"{self.name}: joint {i + 1} angle {value!r} not a number"
                )
            if not math.isfinite(value) or abs(value) * 1000.0 > MAX_ABS_JOINT_MDEG:
                raise DriverProtocolError(
                    f"{self.name}: joint {i + 1} angle {value!r} deg is not finite within +-360"
                )
            out[i] = math.radians(value)
        return out

    def _error_codes(self, err_len: Any, err: Any) -> list[int]:
        if (
            not isinstance(err_len, int)
            or isinstance(err_len, bool)
            or not 0 <= err_len <= MAX_ERROR_CODES
        ):
            raise DriverProtocolError(
                f"{self.name}: SDK state with {err_len!r} error codes (its struct holds "
                f"{SDK_ERR_CAPACITY}; more overwrite the SDK's memory)"
            )
        if (
            not isinstance(err, list)
            or len(err) != err_len
            or not all(
                isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 0xFFFF for c in err
            )
        ):
            raise DriverProtocolError(
                f"{self.name}: SDK error codes {str(err)[:120]} are not codes 0..0xFFFF"
            )
        return [c for c in err if c]
