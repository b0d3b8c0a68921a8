"""The one interface every joint driver implements, real or simulated.

Controllers (``nodes/*controller*``) talk only to :class:`JointDriver`, so a graph switches
between a MuJoCo sim and the real robot by one parameter. Units are SI and REP-103 everywhere
on this interface: positions in radians (metres for prismatic joints), velocities in rad/s,
efforts in N·m (or the device's nearest equivalent, documented per driver). Vendor units
(degrees x 1000, Dynamixel ticks, ...) never leave a driver.

A driver does **no** safety checking of its own beyond what its protocol requires: the safety
layer (``human_video_policy.safety``) sits between the controller and the driver and is the
only thing that decides whether a command may reach the robot. A driver does refuse to send
non-finite or wrongly shaped commands (raising :class:`DriverCommandError`), as a last line.

Errors: every failure is a :class:`DriverError` subclass naming the device (address, port) and
what happened, so a controller can log it, hold position and report it on /diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from human_video_policy.errors import HvpError


class DriverError(HvpError):
    """Base class of driver failures (always names the device)."""


class DriverConnectionError(DriverError):
    """The device cannot be reached, or the connection dropped."""


class DriverTimeoutError(DriverError):
    """The device did not answer within the driver's timeout."""


class DriverProtocolError(DriverError):
    """The device answered with bytes that do not parse as the protocol says (malformed frame,
    bad checksum/CRC, wrong length, unexpected reply)."""


class DriverCommandError(DriverError):
    """A command given to the driver is malformed (shape, NaN/inf) and was not sent."""


class DeviceFault(DriverError):
    """The device reported an error code. ``code`` is the vendor's code, ``meaning`` its text."""

    def __init__(self, device: str, code: int, meaning: str) -> None:
        super().__init__(f"{device}: device error {code:#x} ({meaning})")
        self.device = device
        self.code = code
        self.meaning = meaning


@dataclass(frozen=True)
class Fault:
    """An error the device reports in its state (not raised: the state read itself worked)."""

    code: int
    meaning: str
    joint: str | None = None


@dataclass(frozen=True)
class JointState:
    """What a driver read from its device, in ``names`` order.

    ``stamp_s``: host ``time.monotonic()`` when the reply arrived (controllers map it to ROS
    time). ``velocities``/``efforts``: None when the device does not report them.
    ``enabled``: motors powered / torque on. ``faults``: errors the device reports now.
    """

    names: tuple[str, ...]
    positions: np.ndarray
    stamp_s: float
    velocities: np.ndarray | None = None
    efforts: np.ndarray | None = None
    enabled: bool = True
    faults: tuple[Fault, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.float64)
        if pos.shape != (len(self.names),):
            raise DriverProtocolError(
                f"JointState: {len(self.names)} names but positions of shape {pos.shape}"
            )
        object.__setattr__(self, "positions", pos)
        for name in ("velocities", "efforts"):
            value = getattr(self, name)
            if value is not None:
                arr = np.asarray(value, dtype=np.float64)
                if arr.shape != pos.shape:
                    raise DriverProtocolError(
                        f"JointState: {name} of shape {arr.shape}, positions {pos.shape}"
                    )
                object.__setattr__(self, name, arr)


@runtime_checkable
class JointDriver(Protocol):
    """A robot (arm, hand, gripper) whose joints take position commands.

    Life cycle: ``connect()`` -> ``enable()`` -> loop of ``read_state()`` /
    ``send_positions()`` -> ``disable()`` -> ``close()``. ``close()`` is safe to call twice and
    after a failed ``connect()``. Drivers are context managers (``__enter__`` connects,
    ``__exit__`` disables if enabled and closes). Calls are not thread-safe: one controller
    thread owns a driver.
    """

    @property
    def name(self) -> str:
        """Human-readable device id for logs and errors, e.g. ``'realman@192.168.1.18:8080'``."""
        ...

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Joint names in command/state order (the project's URDF names)."""
        ...

    @property
    def is_connected(self) -> bool: ...

    def connect(self) -> None:
        """Open the link and check the device answers (raises DriverConnectionError/Timeout)."""
        ...

    def close(self) -> None: ...

    def enable(self) -> None:
        """Power the motors / torque on, holding the current position."""
        ...

    def disable(self) -> None:
        """Motors off / torque off (the robot may sag: callers hold position first)."""
        ...

    def read_state(self) -> JointState: ...

    def send_positions(self, positions: np.ndarray) -> None:
        """Stream one position target (``joint_names`` order, radians) to the device.

        Non-blocking in the sense of the protocol's streaming mode (Realman CANFD
        pass-through, Dynamixel sync write, XHand control frame): it returns once the bytes
        are written (and acknowledged, where the protocol acknowledges streaming commands).
        """
        ...


def check_command(driver_name: str, joint_names: tuple[str, ...], positions: object) -> np.ndarray:
    """A command as a float64 vector of the right length and finite, or DriverCommandError."""
    try:
        arr = np.asarray(positions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DriverCommandError(f"{driver_name}: command is not numeric: {exc}") from exc
    if arr.shape != (len(joint_names),):
        raise DriverCommandError(
            f"{driver_name}: command must have shape ({len(joint_names)},) for joints "
            f"{list(joint_names)}, got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise DriverCommandError(f"{driver_name}: command contains NaN/inf: {arr.tolist()}")
    return arr


def vendor_call(device: str, what: str, action: Callable[[], Any]) -> Any:
    """``action()``: one whole call into a vendor SDK (lookups, call, unpacking of its result).
    Anything it raises other than a DriverError becomes a DriverProtocolError naming the
    device and ``what``, so a binding's TypeError or RuntimeError never escapes a driver."""
    try:
        return action()
    except DriverError:
        raise
    except Exception as exc:
        raise DriverProtocolError(
            f"{device}: SDK {what} raised {type(exc).__name__}: {exc}"
        ) from exc


class DriverSession:
    """Context-manager behaviour shared by the hardware drivers.

    ``with driver:`` connects; leaving the block disables the motors if they were enabled (an
    error while disabling is swallowed so the link still closes) and closes the link. A driver
    using it sets ``self._enabled`` in enable()/disable().
    """

    _enabled: bool = False

    def __enter__(self) -> Self:
        self.connect()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._enabled and self.is_connected:  # type: ignore[attr-defined]
                self.disable()  # type: ignore[attr-defined]
        except DriverError:
            pass
        finally:
            self.close()  # type: ignore[attr-defined]


class DriverWrapper:
    """A :class:`JointDriver` that forwards everything to ``inner``: subclass it and override
    only what changes (unit conversion, joint renaming, recording what is sent)."""

    def __init__(self, inner: JointDriver) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.inner.joint_names

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    def connect(self) -> None:
        self.inner.connect()

    def close(self) -> None:
        self.inner.close()

    def enable(self) -> None:
        self.inner.enable()

    def disable(self) -> None:
        self.inner.disable()

    def read_state(self) -> JointState:
        return self.inner.read_state()

    def send_positions(self, positions: np.ndarray) -> None:
        self.inner.send_positions(positions)

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
