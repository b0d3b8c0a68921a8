"""WidowX 250s arm (DYNAMIXEL X-series servos) over Protocol 2.0, through ROBOTIS' dynamixel_sdk.

Why this shape: the servos speak a request/response bus protocol; one Sync Read gets every
Present Position in a single transaction and one Sync Write sends every Goal Position in a
single packet, which is what a 50-100 Hz control loop needs. Shadow servos (the second motor
on the shoulder and elbow) are given the master's id as their Secondary ID, so the master's
goal reaches both and they are never commanded separately (as Interbotix's SDK does).

Units: ticks <-> rad with 4096 ticks per turn and 2048 = 0 rad (:func:`ticks_to_rad`). Every
protocol fact used here is in docs/hardware_protocols.md with its source.

Hostile buses: the SDK's receive loops have no overall deadline (a stream of bytes that never
completes the expected status packet keeps them reading), so every driver call runs under a
deadline and a byte budget enforced in the port's ``readPort`` (:class:`_PortWithMinTimeout`).
A status packet with the wrong amount of data, and a position that is not inside the joint's
plausible range (URDF limits +- 0.5 rad, drivers/plausible.py), raise DriverProtocolError.
"""

from __future__ import annotations

import math
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import serial
from dynamixel_sdk import (
    COMM_RX_CORRUPT,
    COMM_RX_TIMEOUT,
    COMM_SUCCESS,
    COMM_TX_ERROR,
    GroupSyncRead,
    GroupSyncWrite,
    PacketHandler,
    PortHandler,
)

from human_video_policy.drivers.base import (
    DeviceFault,
    DriverCommandError,
    DriverConnectionError,
    DriverError,
    DriverProtocolError,
    DriverSession,
    DriverTimeoutError,
    Fault,
    JointState,
    check_command,
)
from human_video_policy.drivers.plausible import (
    POSITION_MARGIN_RAD,
    range_arrays,
    widened_ranges,
)
from human_video_policy.errors import ConfigError
from human_video_policy.robots.widowx import WIDOWX_ARM_JOINTS, widowx_joint_limits
from human_video_policy.validation import (
    check_choice,
    check_int_range,
    check_non_negative,
    check_positive,
)

PROTOCOL_VERSION = 2.0
# X-series control table (XM430-W350 / XM540-W270 e-Manual, identical for these fields).
ADDR_SECONDARY_ID = 12
ADDR_TORQUE_ENABLE = 64
ADDR_HARDWARE_ERROR_STATUS = 70
ADDR_GOAL_POSITION = 116
ADDR_PRESENT_POSITION = 132
POSITION_BYTES = 4
SECONDARY_ID_DISABLED = 255

TICKS_PER_TURN = 4096
CENTER_TICKS = 2048  # 0 rad
MAX_TICKS = 4095
# Most bytes one driver call may read from the bus: a sync read of 7 servos is 7 x 15 bytes,
# so a bus that sends more is babbling (or at the wrong baud rate) and the call fails at once.
MAX_BUS_BYTES_PER_CALL = 4096

# Status packet error field (Protocol 2.0): bit 7 = hardware alert, bits 0-6 = error number.
ALERT_BIT = 0x80
STATUS_ERRORS: dict[int, str] = {
    0x01: "Result Fail",
    0x02: "Instruction Error",
    0x03: "CRC Error",
    0x04: "Data Range Error",
    0x05: "Data Length Error",
    0x06: "Data Limit Error",
    0x07: "Access Error",
}
# Hardware Error Status (address 70) bits, X series.
HARDWARE_ERRORS: dict[int, str] = {
    0x01: "Input Voltage Error",
    0x04: "Overheating Error",
    0x08: "Motor Encoder Error",
    0x10: "Electrical Shock Error",
    0x20: "Overload Error",
}

WIDOWX_DYNAMIXEL_JOINTS: tuple[str, ...] = (*WIDOWX_ARM_JOINTS, "gripper")
# Interbotix wx250s motor config: servo ids per joint, and the shadows of shoulder and elbow.
WIDOWX_SERVO_IDS: dict[str, int] = {
    "waist": 1,
    "shoulder": 2,
    "elbow": 4,
    "forearm_roll": 6,
    "wrist_angle": 7,
    "wrist_rotate": 8,
    "gripper": 9,
}
WIDOWX_SHADOW_IDS: dict[str, int] = {"shoulder": 3, "elbow": 5}


def rad_to_ticks(rad: np.ndarray) -> np.ndarray:
    """Joint angle (rad) -> X-series position value (ticks), rounded to the nearest tick."""
    return (
        np.rint(np.asarray(rad, dtype=np.float64) * TICKS_PER_TURN / (2 * math.pi)).astype(np.int64)
        + CENTER_TICKS
    )


def ticks_to_rad(ticks: np.ndarray) -> np.ndarray:
    """X-series position value (ticks) -> joint angle (rad); 2048 ticks is 0 rad."""
    return (np.asarray(ticks, dtype=np.float64) - CENTER_TICKS) * (2 * math.pi / TICKS_PER_TURN)


def default_position_ranges(
    joint_names: tuple[str, ...], margin: float = POSITION_MARGIN_RAD
) -> dict[str, tuple[float, float]]:
    """Plausible servo angles (rad) per joint: URDF limits widened by ``margin`` for the WidowX
    arm joints; the servo's single-turn range [-pi, pi] widened by ``margin`` for any other
    joint (the gripper servo, whose URDF joint is the prismatic finger)."""
    ranges = {n: (-math.pi - margin, math.pi + margin) for n in joint_names}
    arm = widened_ranges(widowx_joint_limits(), margin)
    ranges.update({n: arm[n] for n in joint_names if n in arm})
    return ranges


def describe_hardware_error(bits: int) -> str:
    names = [text for bit, text in HARDWARE_ERRORS.items() if bits & bit]
    return ", ".join(names) if names else f"unknown hardware error bits {bits:#04x}"


@dataclass(frozen=True)
class DynamixelArmConfig:
    """Where the bus is and which servo drives which joint.

    port: serial device of the U2D2 (or a fake bus's pty), e.g. ``/dev/ttyUSB0``.
    baudrate: bus speed in bit/s; Interbotix arms ship at 1_000_000. Must be one the SDK
        supports (9600 ... 4_000_000).
    joint_names: command/state order; default the WidowX 250s arm joints + ``gripper`` (the
        gripper servo angle in rad, not the finger opening in metres).
    servo_ids: joint name -> servo id (0-252); default the Interbotix wx250s ids.
    shadow_ids: joint name -> id of a second servo that must follow that joint's servo
        (Secondary ID); default shoulder -> 3, elbow -> 5.
    min_timeout_s: shortest wait for status packets (s). The SDK waits the packet's transfer
        time + 2 x 16 ms USB latency + 2 ms; raise this for slow adapters or a loaded host.
    call_margin_s: the deadline of one driver call (a whole sync read, one ping, one write)
        is ``min_timeout_s + call_margin_s``: the SDK's own timeout comes first on a quiet
        bus, and the deadline ends the call on a bus that keeps sending bytes.
    position_ranges: joint -> (low, high) servo angle (rad) a reply may report; default
        :func:`default_position_ranges`. A position outside is a DriverProtocolError.
    """

    port: str
    baudrate: int = 1_000_000
    joint_names: tuple[str, ...] = WIDOWX_DYNAMIXEL_JOINTS
    servo_ids: dict[str, int] = field(default_factory=lambda: dict(WIDOWX_SERVO_IDS))
    shadow_ids: dict[str, int] = field(default_factory=lambda: dict(WIDOWX_SHADOW_IDS))
    min_timeout_s: float = 0.0
    call_margin_s: float = 0.1
    position_ranges: dict[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        check_non_negative("min_timeout_s", self.min_timeout_s)
        check_positive("call_margin_s", self.call_margin_s)
        if not isinstance(self.port, str) or not self.port:
            raise ConfigError(f"port={self.port!r} is invalid: must name a serial device")
        check_choice(
            "baudrate",
            self.baudrate,
            [9600, 19200, 38400, 57600, 115200, 1_000_000, 2_000_000, 3_000_000, 4_000_000],
        )
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ConfigError(f"joint_names={self.joint_names!r} is invalid: non-empty, unique")
        missing = [j for j in self.joint_names if j not in self.servo_ids]
        if missing or set(self.servo_ids) - set(self.joint_names):
            raise ConfigError(
                f"servo_ids={self.servo_ids!r} is invalid: must give exactly one id for each "
                f"joint in {list(self.joint_names)}"
            )
        for joint, dxl_id in {**self.servo_ids, **self.shadow_ids}.items():
            check_int_range(f"servo id of {joint!r}", dxl_id, 0, 252)
        unknown = [j for j in self.shadow_ids if j not in self.servo_ids]
        if unknown:
            raise ConfigError(
                f"shadow_ids={self.shadow_ids!r} is invalid: unknown joints {unknown}"
            )
        all_ids = list(self.servo_ids.values()) + list(self.shadow_ids.values())
        if len(set(all_ids)) != len(all_ids):
            raise ConfigError(f"servo ids must be unique, got {sorted(all_ids)}")
        ranges = default_position_ranges(self.joint_names)
        ranges.update(self.position_ranges or {})
        range_arrays(self.joint_names, ranges)  # validates
        object.__setattr__(self, "position_ranges", ranges)


class _BusBudgetExceeded(Exception):
    """Raised inside the SDK's receive loop when a call's deadline or byte budget is spent."""

    def __init__(self, timed_out: bool, detail: str) -> None:
        super().__init__(detail)
        self.timed_out = timed_out


class _PortWithMinTimeout(PortHandler):
    """The SDK's port, with a floor under the reply timeout it computes per packet, and a
    deadline and byte budget per driver call (``arm``/``disarm``) checked on every read."""

    def __init__(self, port_name: str, min_timeout_ms: float) -> None:
        super().__init__(port_name)
        self.min_timeout_ms = min_timeout_ms
        self.deadline: float | None = None
        self.bytes_left = 0
        self.budget = 0

    def arm(self, deadline: float, max_bytes: int) -> None:
        self.deadline, self.bytes_left, self.budget = deadline, max_bytes, max_bytes

    def disarm(self) -> None:
        self.deadline = None

    def readPort(self, length: int) -> Any:  # the SDK's method name
        if self.deadline is not None:
            if time.monotonic() > self.deadline:
                raise _BusBudgetExceeded(True, "no complete status packet before the deadline")
            length = min(length, self.bytes_left + 1)
        data = super().readPort(length)
        if self.deadline is not None:
            self.bytes_left -= len(data)
            if self.bytes_left < 0:
                raise _BusBudgetExceeded(
                    False, f"more than {self.budget} bytes without the expected status packet"
                )
        return data

    def setPacketTimeout(self, packet_length: int) -> None:  # the SDK's method name
        super().setPacketTimeout(packet_length)
        self.packet_timeout = max(self.packet_timeout, self.min_timeout_ms)

    def setPacketTimeoutMillis(self, msec: float) -> None:  # the SDK's method name
        super().setPacketTimeoutMillis(max(msec, self.min_timeout_ms))


class DynamixelArmDriver(DriverSession):
    """:class:`~human_video_policy.drivers.base.JointDriver` for a DYNAMIXEL X-series arm."""

    def __init__(self, config: DynamixelArmConfig) -> None:
        self.config = config
        self._port: PortHandler | None = None
        self._packets = PacketHandler(PROTOCOL_VERSION)
        self._ids = [config.servo_ids[j] for j in config.joint_names]
        self._sync_read: GroupSyncRead | None = None
        self._sync_write: GroupSyncWrite | None = None
        self._enabled = False
        assert config.position_ranges is not None  # filled by the config
        self._low, self._high = range_arrays(config.joint_names, config.position_ranges)

    # --- JointDriver ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"dynamixel@{self.config.port}"

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.config.joint_names

    @property
    def is_connected(self) -> bool:
        return self._port is not None

    def connect(self) -> None:
        port = _PortWithMinTimeout(self.config.port, self.config.min_timeout_s * 1000.0)
        try:
            port.openPort()
            if not port.setBaudRate(self.config.baudrate):
                raise DriverConnectionError(
                    f"{self.name}: baud rate {self.config.baudrate} refused"
                )
        except (serial.SerialException, OSError) as exc:
            raise DriverConnectionError(f"{self.name}: cannot open serial port: {exc}") from exc
        self._port = port
        try:
            for dxl_id in [*self._ids, *self.config.shadow_ids.values()]:
                self._call(f"ping id {dxl_id}", lambda i=dxl_id: self._packets.ping(port, i))
            for joint, shadow in self.config.shadow_ids.items():
                self._make_shadow(shadow, self.config.servo_ids[joint])
        except DriverError:
            self.close()
            raise
        self._sync_read = GroupSyncRead(port, self._packets, ADDR_PRESENT_POSITION, POSITION_BYTES)
        self._sync_write = GroupSyncWrite(port, self._packets, ADDR_GOAL_POSITION, POSITION_BYTES)
        for dxl_id in self._ids:
            self._sync_read.addParam(dxl_id)

    def close(self) -> None:
        port, self._port = self._port, None
        self._enabled = False
        if port is not None and port.ser is not None:
            try:
                port.closePort()
            except (serial.SerialException, OSError):
                pass

    def enable(self) -> None:
        """Goal = present position first (so the arm holds still), then torque on."""
        state = self.read_state()
        self._write_goal(rad_to_ticks(state.positions))
        self._set_torque(1)
        self._enabled = True

    def disable(self) -> None:
        self._set_torque(0)
        self._enabled = False

    def read_state(self) -> JointState:
        port = self._require_port()
        reader = self._sync_read
        assert reader is not None  # set by connect() together with the port
        ids = self._ids
        ticks = np.empty(len(ids), dtype=np.int64)
        alerts: list[int] = []
        with self._bounded("sync read Present Position"):  # one deadline for all replies
            self._check("sync read Present Position", self._io(reader.txPacket), 0)
            for k, dxl_id in enumerate(ids):
                data, result, error = self._io(
                    lambda i=dxl_id: self._packets.readRx(port, i, POSITION_BYTES)
                )
                what = f"sync read reply of id {dxl_id}"
                self._check(what, result, error & ~ALERT_BIT)
                if len(data) != POSITION_BYTES:
                    raise DriverProtocolError(
                        f"{self.name}: {what}: {len(data)} data bytes, expected {POSITION_BYTES}"
                    )
                ticks[k] = int.from_bytes(bytes(data), "little", signed=True)
                if error & ALERT_BIT:
                    alerts.append(k)
        stamp = time.monotonic()
        positions = ticks_to_rad(ticks)
        bad = [
            f"{self.joint_names[k]}={positions[k]:.6g} rad (ticks {ticks[k]}, plausible "
            f"[{self._low[k]:.3f}, {self._high[k]:.3f}])"
            for k in range(len(ids))
            if not self._low[k] <= positions[k] <= self._high[k]
        ]
        if bad:
            raise DriverProtocolError(
                f"{self.name}: implausible joint position in reply: {', '.join(bad)}"
            )
        # Only once every reply of the sync read is in may the bus carry another request.
        faults = [self._hardware_fault(ids[k], self.joint_names[k]) for k in alerts]
        return JointState(
            names=self.joint_names,
            positions=positions,
            stamp_s=stamp,
            enabled=self._enabled,
            faults=tuple(faults),
        )

    def send_positions(self, positions: np.ndarray) -> None:
        command = check_command(self.name, self.joint_names, positions)
        ticks = rad_to_ticks(command)
        bad = [n for n, t in zip(self.joint_names, ticks, strict=True) if not 0 <= t <= MAX_TICKS]
        if bad:
            raise DriverCommandError(
                f"{self.name}: command outside the servo range [-pi, pi) for {bad}: "
                f"{command.tolist()}"
            )
        self._write_goal(ticks)

    # --- helpers ----------------------------------------------------------------------------
    def _require_port(self) -> PortHandler:
        if self._port is None:
            raise DriverConnectionError(f"{self.name}: not connected (call connect() first)")
        return self._port

    @contextmanager
    def _bounded(self, what: str) -> Iterator[None]:
        """Run the block under one deadline and byte budget for all bus reads in it (an
        enclosing block's budget, if any, governs); exceeding either is a DriverError."""
        port = self._require_port()
        assert isinstance(port, _PortWithMinTimeout)
        if port.deadline is not None:
            yield
            return
        port.arm(
            time.monotonic() + self.config.min_timeout_s + self.config.call_margin_s,
            MAX_BUS_BYTES_PER_CALL,
        )
        try:
            yield
        except _BusBudgetExceeded as exc:
            port.is_using = False  # the SDK clears it only when its loop ends normally
            try:
                port.clearPort()
            except (serial.SerialException, OSError, termios.error):
                pass
            error = DriverTimeoutError if exc.timed_out else DriverProtocolError
            raise error(f"{self.name}: {what}: {exc}") from None
        finally:
            port.disarm()

    def _io(self, action: Callable[[], Any]) -> Any:
        """Run an SDK call under the call's deadline and byte budget, turning a vanished
        serial device into DriverConnectionError and a reply the SDK's parser trips over
        into DriverProtocolError."""
        self._require_port()
        with self._bounded("bus transaction"):
            try:
                return action()
            except (serial.SerialException, OSError, termios.error, TypeError) as exc:
                # termios.error: flushing a hung-up tty; TypeError: the SDK's readPort returns
                # None after pyserial lost the device.
                raise DriverConnectionError(f"{self.name}: serial link lost: {exc}") from exc
            except (IndexError, ValueError) as exc:
                raise DriverProtocolError(f"{self.name}: unparsable status packet: {exc}") from exc

    def _call(self, what: str, action: Callable[[], Any]) -> None:
        result = self._io(action)
        if isinstance(result, tuple):
            comm, error = result[-2], result[-1]
        else:
            comm, error = result, 0
        self._check(what, comm, error)

    def _check(self, what: str, comm_result: int, error: int) -> None:
        if comm_result == COMM_RX_TIMEOUT:
            raise DriverTimeoutError(f"{self.name}: {what}: no status packet (timeout)")
        if comm_result in (COMM_RX_CORRUPT, COMM_TX_ERROR):
            raise DriverProtocolError(
                f"{self.name}: {what}: {self._packets.getTxRxResult(comm_result)}"
            )
        if comm_result != COMM_SUCCESS:
            raise DriverConnectionError(
                f"{self.name}: {what}: {self._packets.getTxRxResult(comm_result)}"
            )
        number = error & ~ALERT_BIT
        if number:
            raise DeviceFault(self.name, number, f"{what}: {STATUS_ERRORS.get(number, 'unknown')}")
        if error & ALERT_BIT:
            raise DeviceFault(self.name, ALERT_BIT, f"{what}: hardware error alert")

    def _hardware_fault(self, dxl_id: int, joint: str) -> Fault:
        port = self._require_port()
        bits, result, error = self._io(
            lambda: self._packets.read1ByteTxRx(port, dxl_id, ADDR_HARDWARE_ERROR_STATUS)
        )
        self._check(f"read Hardware Error Status of id {dxl_id}", result, error & ~ALERT_BIT)
        return Fault(code=bits, meaning=describe_hardware_error(bits), joint=joint)

    def _make_shadow(self, shadow_id: int, master_id: int) -> None:
        port = self._require_port()
        current, result, error = self._io(
            lambda: self._packets.read1ByteTxRx(port, shadow_id, ADDR_SECONDARY_ID)
        )
        self._check(f"read Secondary ID of id {shadow_id}", result, error & ~ALERT_BIT)
        if current != master_id:  # EEPROM area: only writable with torque off
            self._call(
                f"torque off id {shadow_id}",
                lambda: self._packets.write1ByteTxRx(port, shadow_id, ADDR_TORQUE_ENABLE, 0),
            )
            self._call(
                f"set Secondary ID of id {shadow_id} to {master_id}",
                lambda: self._packets.write1ByteTxRx(port, shadow_id, ADDR_SECONDARY_ID, master_id),
            )

    def _set_torque(self, value: int) -> None:
        port = self._require_port()
        for dxl_id in [*self._ids, *self.config.shadow_ids.values()]:
            self._call(
                f"torque {'on' if value else 'off'} id {dxl_id}",
                lambda i=dxl_id: self._packets.write1ByteTxRx(port, i, ADDR_TORQUE_ENABLE, value),
            )

    def _write_goal(self, ticks: np.ndarray) -> None:
        self._require_port()
        writer = self._sync_write
        assert writer is not None
        writer.clearParam()
        for dxl_id, value in zip(self._ids, ticks, strict=True):
            writer.addParam(dxl_id, int(value).to_bytes(4, "little", signed=True))
        self._check("sync write Goal Position", self._io(writer.txPacket), 0)
