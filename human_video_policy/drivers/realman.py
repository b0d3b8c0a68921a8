"""RealMan arm (RM75 and kin) through the controller's JSON protocol over TCP.

Why JSON/TCP and not the vendor's C library: the controller itself speaks JSON on port 8080,
one object per command, so a pure-Python client needs no binary SDK and can be tested against
a local fake byte for byte. Streaming uses ``movej_canfd`` (angle pass-through): the
controller forwards each target straight to the joints' CAN-FD bus without planning, which is
what a 50-100 Hz loop needs; ``follow`` picks the joints' high-follow (true) or low-follow
(false, smoother) mode.

Units: joint angles travel as integers in 0.001 degree (:func:`rad_to_millidegrees`).
Sources of every protocol fact, and what is unverified: docs/hardware_protocols.md.
"""

from __future__ import annotations

import json
import math
import socket
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from human_video_policy.drivers.base import (
    DeviceFault,
    DriverConnectionError,
    DriverError,
    DriverProtocolError,
    DriverSession,
    DriverTimeoutError,
    DriverWrapper,
    Fault,
    JointState,
    check_command,
)
from human_video_policy.errors import ConfigError
from human_video_policy.robots.rm75 import RM75_ARM_JOINTS
from human_video_policy.validation import check_int_range, check_positive

DEFAULT_PORT = 8080
RM75_JOINTS: tuple[str, ...] = RM75_ARM_JOINTS
# Command terminator. The vendor manual shows bare JSON objects; its SDKs end each with CR LF.
# Replies are split on LF and stripped, so either convention is read correctly.
LINE_END = b"\r\n"
MAX_LINE_BYTES = 65536
# Bounds on what a reply may hold before it is parsed (a hostile controller could otherwise
# make the JSON parser recurse 60,000 levels deep, or turn a 5,000-digit number into an error
# nobody catches): nesting depth, digits of one integer.
MAX_JSON_DEPTH = 16
# A real state reply is about 300 bytes; longer lines that look like a reply are refused
# before they are scanned or parsed.
MAX_REPLY_BYTES = 4096
MAX_INT_DIGITS = 19  # int64; a 400-digit number is refused before int() sees it
# Whatever the controller pushes between commands is discarded before each movej_canfd, but
# at most this many bytes per call (the socket and TCP flow control hold the rest), so a
# controller that never stops pushing cannot hold a control tick.
MAX_DISCARD_BYTES_PER_CALL = 256 * 1024
# A joint angle outside +-360 degrees is not something a RealMan joint reports.
MAX_ABS_JOINT_MDEG = 360_000
# Longest wait for the kernel to take one command line: it only blocks when the controller
# stops reading and the socket buffer is full.
SEND_TIMEOUT_S = 0.002

# System error codes of the controller (RealMan JSON/ROS manual, "System error code").
SYSTEM_ERRORS: dict[int, str] = {
    0x0000: "Normal system",
    0x1001: "Abnormal joint communication",
    0x1002: "Target angle out of limit",
    0x1003: "Point unreachable as a singularity",
    0x1004: "Real-time kernel communication error",
    0x1005: "Joint communication bus error",
    0x1006: "Planning layer kernel error",
    0x1007: "Joint overspeed",
    0x1008: "End interface board disconnected",
    0x1009: "Speed out of limit",
    0x100A: "Acceleration out of limit",
    0x100B: "Joint brake release failed",
    0x100C: "Overspeed during drag teaching",
    0x100D: "Robotic arm collision",
    0x100E: "Null work frame",
    0x100F: "Null tool frame",
    0x1010: "Joint disabling error",
    0x1011: "Circular planning error",
    0x1012: "Self-collision error",
    0x1013: "Electronic fence collision error",
    0x5003: "Controller over-temperature",
    0x5005: "Controller overcurrent",
    0x5006: "Controller undercurrent",
    0x5007: "Controller overvoltage",
    0x5008: "Controller undervoltage",
    0x5009: "Real-time layer communication error",
}


def rad_to_millidegrees(rad: np.ndarray) -> list[int]:
    """Joint angles (rad) -> the protocol's integers in 0.001 degree (rounded)."""
    return [round(math.degrees(float(q)) * 1000.0) for q in np.asarray(rad).ravel()]


def millidegrees_to_rad(values: list[int] | np.ndarray) -> np.ndarray:
    return np.radians(np.asarray(values, dtype=np.float64) / 1000.0)


def joint_millidegrees(values: list[Any]) -> np.ndarray:
    """Joint angles of a reply (0.001 degree) as radians, or ValueError naming the bad one.

    Only JSON numbers (not booleans or strings), finite, within +-360 degrees are angles.
    """
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"joint {i + 1} angle {value!r} is not a number")
        if not math.isfinite(value) or abs(value) > MAX_ABS_JOINT_MDEG:
            raise ValueError(
                f"joint {i + 1} angle {value!r} (0.001 deg) is not a finite value within "
                f"+-{MAX_ABS_JOINT_MDEG}"
            )
        out[i] = math.radians(value / 1000.0)
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number the protocol allows")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(text)} digits ({text[:20]}...)")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]!r} is out of range")
    return value


def parse_reply(line: bytes) -> dict[str, Any]:
    """One reply line as a JSON object, refusing what no controller sends: text that is not
    UTF-8, NaN/Infinity, numbers that overflow, integers of more than MAX_INT_DIGITS digits,
    nesting deeper than MAX_JSON_DEPTH. Raises ValueError naming the problem."""
    text = line.decode("utf-8")  # strict: json would guess UTF-16/32 and defeat the scan
    depth = 0
    in_string = escaped = False
    for char in text:  # one pass, no recursion
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        elif char in "]}":
            depth -= 1
    reply = json.loads(
        text,
        parse_constant=_reject_constant,
        parse_int=_bounded_int,
        parse_float=_finite_float,
    )
    if not isinstance(reply, dict):
        raise ValueError("reply is not a JSON object")
    return reply


def error_codes_of(arm_state: dict[str, Any]) -> list[int]:
    """Non-zero error codes of a ``current_arm_state`` reply.

    Firmware differs here: the current manual shows ``"err": 0`` (an int; some controllers
    send a list of codes), older controllers send ``arm_err`` and ``sys_err``. All are read.
    """
    codes: list[int] = []
    for key in ("err", "arm_err", "sys_err"):
        value = arm_state.get(key, 0)
        values = value if isinstance(value, list) else [value]
        if len(values) > 64 or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFF for v in values
        ):
            raise ValueError(
                f"field {key!r} must be an error code 0..0xFFFF or a list of them: "
                f"{str(value)[:80]}"
            )
        codes += [v for v in values if v]
    return codes


@dataclass(frozen=True)
class RealmanArmConfig:
    """Where the controller is and how to stream to it.

    host: controller IP (factory default 192.168.1.18), or 127.0.0.1 for the fake.
    port: JSON protocol TCP port (8080 on RealMan controllers).
    timeout_s: connect timeout and the longest wait for the reply to a set-up command (power).
    state_timeout_s: the longest a control tick waits for the state reply (s). A control tick
        must not block longer than its period: the controller node refuses a value that does
        not fit its period (:attr:`RealmanArmDriver.tick_io_bound_s`).
    joint_names: command/state order, one per arm joint; default RM75 ``joint1..joint7``.
    follow: ``movej_canfd`` follow flag: true = high follow (the joint tracks each target
        at once; send at a steady high rate), false = low follow (smoothed).
    backend: "json" (this module's client, the default) or "sdk" (Realman's own Python SDK,
        ``robotic-arm``, where installed, run in a child process: drivers/realman_sdk.py; the
        timeouts above become the SDK's ``rm_set_timeout`` in ms, which it counts in 2 ms
        polling steps); see :class:`RealmanDriver`.
    """

    host: str
    port: int = DEFAULT_PORT
    timeout_s: float = 0.5
    state_timeout_s: float = 0.005
    joint_names: tuple[str, ...] = RM75_JOINTS
    follow: bool = False
    backend: str = "json"

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ConfigError(f"host={self.host!r} is invalid: must be an IP address or name")
        check_int_range("port", self.port, 1, 65535)
        check_positive("timeout_s", self.timeout_s)
        check_positive("state_timeout_s", self.state_timeout_s)
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        if not 1 <= len(self.joint_names) <= 7 or len(set(self.joint_names)) != len(
            self.joint_names
        ):
            raise ConfigError(f"joint_names={self.joint_names!r} is invalid: 1 to 7 unique names")
        if not isinstance(self.follow, bool):
            raise ConfigError(f"follow={self.follow!r} is invalid: must be true or false")
        if self.backend not in ("json", "sdk"):
            raise ConfigError(f"backend={self.backend!r} is invalid: 'json' or 'sdk'")


class RealmanArmDriver(DriverSession):
    """:class:`~human_video_policy.drivers.base.JointDriver` for a RealMan arm controller."""

    def __init__(self, config: RealmanArmConfig) -> None:
        self.config = config
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._enabled = False
        self.pushed_bytes_discarded = 0

    @property
    def name(self) -> str:
        return f"realman@{self.config.host}:{self.config.port}"

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.config.joint_names

    @property
    def is_connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        address = (self.config.host, self.config.port)
        try:
            sock = socket.create_connection(address, timeout=self.config.timeout_s)
        except TimeoutError as exc:
            raise DriverTimeoutError(f"{self.name}: connect timed out: {exc}") from exc
        except OSError as exc:
            raise DriverConnectionError(f"{self.name}: cannot connect: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buffer = sock, b""
        try:
            self._read_state(self.config.timeout_s)  # proves the controller answers
        except DriverError:
            self.close()
            raise

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self._enabled = False
        if sock is not None:
            sock.close()

    def enable(self) -> None:
        """Arm power on (``set_arm_power`` 1); a refusal raises DeviceFault with the error code."""
        self._set_power(1)
        self._enabled = True

    def disable(self) -> None:
        self._set_power(0)
        self._enabled = False

    @property
    def tick_io_bound_s(self) -> float:
        """The longest one control tick (read_state + send_positions) can wait on the socket."""
        return self.config.state_timeout_s + 2 * SEND_TIMEOUT_S  # request + movej_canfd

    def read_state(self) -> JointState:
        return self._read_state(self.config.state_timeout_s)

    def _read_state(self, timeout_s: float) -> JointState:
        reply = self._request(
            {"command": "get_current_arm_state"},
            "state",
            "current_arm_state",
            timeout_s,
            newest=True,
        )
        arm_state = reply.get("arm_state")
        joints = arm_state.get("joint") if isinstance(arm_state, dict) else None
        if not isinstance(joints, list) or len(joints) < len(self.joint_names):
            raise DriverProtocolError(
                f"{self.name}: current_arm_state without {len(self.joint_names)} joint angles: "
                f"{str(reply)[:200]}"
            )
        try:
            positions = joint_millidegrees(joints[: len(self.joint_names)])
            codes = error_codes_of(arm_state)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise DriverProtocolError(f"{self.name}: bad current_arm_state: {exc}") from exc
        return JointState(
            names=self.joint_names,
            positions=positions,
            stamp_s=time.monotonic(),
            enabled=self._enabled,
            faults=tuple(Fault(c, SYSTEM_ERRORS.get(c, "unknown error code")) for c in codes),
        )

    def send_positions(self, positions: np.ndarray) -> None:
        """One ``movej_canfd`` line; the controller does not answer pass-through commands."""
        command = check_command(self.name, self.joint_names, positions)
        self._discard_pushed_lines()
        self._send(
            {
                "command": "movej_canfd",
                "joint": rad_to_millidegrees(command),
                "follow": self.config.follow,
            }
        )

    # --- helpers --------------------------------------------------------------------------------
    def _set_power(self, on: int) -> None:
        reply = self._request(
            {"command": "set_arm_power", "arm_power": on},
            "command",
            "set_arm_power",
            self.config.timeout_s,
        )
        if reply.get("arm_power") is not True:
            faults = self._read_state(self.config.timeout_s).faults
            code, meaning = (faults[0].code, faults[0].meaning) if faults else (0, "no error code")
            raise DeviceFault(self.name, code, f"controller refused set_arm_power {on}: {meaning}")

    def _sock_or_raise(self) -> socket.socket:
        if self._sock is None:
            raise DriverConnectionError(f"{self.name}: not connected (call connect() first)")
        return self._sock

    def _send(self, message: dict[str, Any]) -> None:
        sock = self._sock_or_raise()
        data = json.dumps(message, separators=(",", ":")).encode() + LINE_END
        sock.settimeout(SEND_TIMEOUT_S)
        try:
            sock.sendall(data)
        except TimeoutError as exc:
            # Part of the line may be out: the stream cannot be trusted any more.
            self.close()
            raise DriverConnectionError(
                f"{self.name}: controller stopped reading (send blocked); connection closed"
            ) from exc
        except OSError as exc:
            self.close()
            raise DriverConnectionError(
                f"{self.name}: connection lost while sending: {exc}"
            ) from exc

    def _request(
        self,
        message: dict[str, Any],
        key: str,
        value: str,
        timeout_s: float,
        newest: bool = False,
    ) -> dict[str, Any]:
        """Send ``message``; return the reply whose ``key`` is ``value`` within ``timeout_s``.

        Whatever arrived before the request (pushed lines, a reply that came too late for an
        earlier request) is dropped first, so the reply read is this request's. With
        ``newest``, a newer such reply already received after it is preferred. Lines that do
        not mention ``value`` are skipped unparsed (the controller pushes e.g.
        ``current_trajectory_state``); a line that mentions it but is not a valid JSON object
        is a protocol error. The work per call is linear in the bytes received.
        """
        self._discard_pushed_lines()
        self._send(message)
        deadline = time.monotonic() + timeout_s
        marker = f'"{value}"'.encode()
        while True:
            reply = self._parse(self._await_line(marker, deadline, timeout_s))
            if reply.get(key) == value:
                break
        if newest:
            self._receive_available()
            later = self._newest_line(marker)
            self._buffer = self._buffer[self._buffer.rfind(b"\n") + 1 :]  # keep a partial line
            if len(self._buffer) > MAX_LINE_BYTES:
                self._buffer = b""
            if later is not None:
                candidate = self._parse(later)
                if candidate.get(key) == value:
                    reply = candidate
        return reply

    def _parse(self, line: bytes) -> dict[str, Any]:
        if len(line) > MAX_REPLY_BYTES:
            raise DriverProtocolError(
                f"{self.name}: reply line of {len(line)} bytes (a reply is at most "
                f"{MAX_REPLY_BYTES}): {line[:80]!r}"
            )
        try:
            return parse_reply(line)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise DriverProtocolError(
                f"{self.name}: reply is not JSON, or not a valid protocol object "
                f"({str(exc)[:120]}): {line[:120]!r}"
            ) from None

    def _await_line(self, marker: bytes, deadline: float, timeout_s: float) -> bytes:
        """The next complete line containing ``marker`` (stripped); lines before it dropped.

        Searches with bytes.find, so a flood of other lines costs C-speed scans, never a Python
        step per line; the buffer never holds more than one partial line beyond what was read.
        """
        while True:
            i = self._buffer.find(marker)
            if i >= 0:
                start = self._buffer.rfind(b"\n", 0, i) + 1
                end = self._buffer.find(b"\n", i)
                if end >= 0:
                    line = self._buffer[start:end]
                    self._buffer = self._buffer[end + 1 :]
                    return line.strip()
                self._buffer = self._buffer[start:]  # its line is not complete yet
            else:  # keep the partial last line: it may hold the start of the marker
                self._buffer = self._buffer[self._buffer.rfind(b"\n") + 1 :]
            if len(self._buffer) > MAX_LINE_BYTES:
                self._buffer = b""
                raise DriverProtocolError(f"{self.name}: reply line over {MAX_LINE_BYTES} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DriverTimeoutError(f"{self.name}: no reply within {timeout_s:g} s")
            self._receive(remaining, timeout_s)

    def _newest_line(self, marker: bytes) -> bytes | None:
        """The last complete line in the buffer containing ``marker`` (and drop up to it)."""
        last_newline = self._buffer.rfind(b"\n")
        i = self._buffer.rfind(marker, 0, max(last_newline, 0))
        if last_newline < 0 or i < 0:
            return None
        start = self._buffer.rfind(b"\n", 0, i) + 1
        end = self._buffer.find(b"\n", i)
        line = self._buffer[start:end]
        self._buffer = self._buffer[end + 1 :]
        return line.strip()

    def _recv(self, wait_s: float | None, timeout_s: float = 0.0) -> bytes:
        """Up to 64 KiB from the socket: waiting at most ``wait_s`` (DriverTimeoutError naming
        ``timeout_s`` when nothing came), or with ``wait_s`` None only what has already arrived
        (b"" for nothing; non-blocking, not select(), which fails for descriptors >= 1024)."""
        sock = self._sock_or_raise()
        if wait_s is None:
            sock.setblocking(False)
        else:
            sock.settimeout(wait_s)
        try:
            chunk = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except TimeoutError as exc:
            raise DriverTimeoutError(f"{self.name}: no reply within {timeout_s:g} s") from exc
        except OSError as exc:
            self.close()
            raise DriverConnectionError(f"{self.name}: connection lost: {exc}") from exc
        if not chunk:
            self.close()
            raise DriverConnectionError(f"{self.name}: controller closed the connection")
        return chunk

    def _receive(self, wait_s: float, timeout_s: float) -> None:
        """One recv into the buffer, waiting at most ``wait_s``."""
        self._buffer += self._recv(wait_s, timeout_s)

    def _receive_available(self) -> None:
        """One non-blocking recv of what has already arrived."""
        self._buffer += self._recv(None)

    def _discard_pushed_lines(self) -> None:
        """Drop what the controller pushed since the last call, so it cannot pile up.

        Bounded: at most MAX_DISCARD_BYTES_PER_CALL bytes are read per call (a controller that
        pushes without end is drained a bit on every tick, never holding one); only a partial
        last line (<= MAX_LINE_BYTES) is kept.
        """
        received = 0
        while received < MAX_DISCARD_BYTES_PER_CALL:
            chunk = self._recv(None)
            if not chunk:
                break  # nothing more pushed
            received += len(chunk)
            self._buffer += chunk
            self._buffer = self._buffer[self._buffer.rfind(b"\n") + 1 :]
            if len(self._buffer) > MAX_LINE_BYTES:
                self._buffer = b""
        self.pushed_bytes_discarded += received


class RealmanDriver(DriverWrapper):
    """The RealMan arm on the client ``config.backend`` names: the project's JSON client
    (:class:`RealmanArmDriver`) or Realman's SDK (``realman_sdk.RealmanSdkDriver``). The
    controller node's ``driver: realman`` builds this one."""

    def __init__(self, config: RealmanArmConfig) -> None:
        self.config = config
        if config.backend == "sdk":
            from human_video_policy.drivers.realman_sdk import RealmanSdkDriver

            super().__init__(RealmanSdkDriver(config))
        else:
            super().__init__(RealmanArmDriver(config))

    @property
    def tick_io_bound_s(self) -> float | None:
        return getattr(self.inner, "tick_io_bound_s", None)

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)  # type: ignore[attr-defined]  # disables, then closes
