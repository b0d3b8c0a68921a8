"""Robotera XHand: one config and one driver, on the vendor SDK or the project's own framing.

Two backends implement the same :class:`~human_video_policy.drivers.base.JointDriver`:

- ``sdk``: Robotera's ``xhand_controller`` (``XHandControl``), the vendor's own code, where it
  is installed (a lab machine with the vendor's wheel); :mod:`.xhand_sdk`.
- ``serial``: the project's RS-485 framing with pyserial, which runs everywhere and is tested
  byte for byte against a fake hand; :mod:`.xhand_serial`. Its wire format is read from the
  vendor SDK but not yet verified on a hand, so it refuses position mode on a real port until
  acknowledged (docs/hardware_protocols.md).

``backend: auto`` (the default) takes the SDK when its module imports and the own framing
otherwise. The controller node builds :class:`XHandDriver` from ``driver_config``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from human_video_policy.drivers.base import DriverProtocolError, DriverWrapper
from human_video_policy.drivers.plausible import POSITION_MARGIN_RAD
from human_video_policy.errors import ConfigError
from human_video_policy.validation import (
    check_choice,
    check_int_range,
    check_non_negative,
    check_positive,
)

BACKENDS = ("auto", "sdk", "serial")
SDK_MODULE = "xhand_controller"
HAND_ADDRESS_MASK = 0x80  # the bus address of hand id n is 0x80 | n (both backends)


@dataclass(frozen=True)
class XHandConfig:
    """One XHand: where it is, which backend drives it, and its position-loop settings.

    port: serial device of the USB-RS485 adapter (or a fake hand's pty).
    backend: "sdk" (Robotera's xhand_controller), "serial" (the project's framing) or "auto"
        (the SDK when it imports, else serial).
    baudrate: bit/s; the vendor's examples use 3_000_000.
    hand_id: the hand's id (0 from the factory; the SDK's ``set_hand_id`` renumbers hands); on
        the bus its address is ``0x80 | hand_id``.
    handedness: "right" or "left": connect() refuses a hand that reports the other side (the
        project's XHand model is a right hand); "" skips the check.
    timeout_s: serial backend: how long to wait for a reply frame (s; the SDK waits 100 ms).
    kp, ki, kd: per-joint position-loop gains sent with every command (SDK example: 100, 0, 0).
    tor_max: torque limit sent with every command, vendor units (SDK example: 300).
    position_margin_rad: how far outside its URDF limits a reported joint position may be
        before the state is refused as implausible (DriverProtocolError).
    acknowledge_unverified_wire_format: serial backend: its framing has not been checked on a
        real hand yet (docs/hardware_protocols.md); enable() on a real serial port refuses
        position mode unless this is true. Fake hands on a pseudo-terminal need none.
    sdk_module: the SDK's Python package (``<sdk_module>.xhand_control.XHandControl``).
    """

    port: str
    backend: str = "auto"
    baudrate: int = 3_000_000
    hand_id: int = 0
    handedness: str = "right"
    timeout_s: float = 0.05
    kp: int = 100
    ki: int = 0
    kd: int = 0
    tor_max: int = 300
    position_margin_rad: float = POSITION_MARGIN_RAD
    acknowledge_unverified_wire_format: bool = False
    sdk_module: str = SDK_MODULE

    def __post_init__(self) -> None:
        if not isinstance(self.port, str) or not self.port:
            raise ConfigError(f"port={self.port!r} is invalid: must name a serial device")
        check_choice("backend", self.backend, BACKENDS)
        check_int_range("baudrate", self.baudrate, 9600)
        check_int_range("hand_id", self.hand_id, 0, 0x7D)  # 0x80 | 0x7E would be the host
        if self.handedness not in ("right", "left", ""):
            raise ConfigError(
                f"handedness={self.handedness!r} is invalid: 'right', 'left' or '' (no check)"
            )
        check_positive("timeout_s", self.timeout_s)
        for gain in ("kp", "ki", "kd"):
            check_int_range(gain, getattr(self, gain), -32768, 32767)
        check_int_range("tor_max", self.tor_max, 0, 65535)
        check_non_negative("position_margin_rad", self.position_margin_rad)
        if not isinstance(self.acknowledge_unverified_wire_format, bool):
            raise ConfigError(
                "acknowledge_unverified_wire_format="
                f"{self.acknowledge_unverified_wire_format!r} is invalid: true or false"
            )
        if not isinstance(self.sdk_module, str) or not self.sdk_module.isidentifier():
            raise ConfigError(f"sdk_module={self.sdk_module!r} is invalid: a package name")

    @property
    def address(self) -> int:
        """The hand's destination byte on the bus."""
        return HAND_ADDRESS_MASK | self.hand_id

    @property
    def wanted_side(self) -> str:
        """'R', 'L' or '' (no check), as the hand's side register spells it."""
        return {"right": "R", "left": "L"}.get(self.handedness, "")


def check_hand_identity(device: str, config: XHandConfig, side: str, hand_id: int) -> None:
    """The hand that answered is the configured one: its id, and its side ('R'/'L', any case)
    when ``handedness`` is set. ConfigError for the other side, DriverProtocolError for a side
    or id that does not read as one (both backends use this one rule)."""
    if hand_id != config.hand_id:
        raise DriverProtocolError(
            f"{device}: the hand reports id {hand_id}, hand_id={config.hand_id} is configured"
        )
    wanted = config.wanted_side
    if not wanted:
        return
    if side.upper() not in ("R", "L"):
        raise DriverProtocolError(f"{device}: the hand's side reads {side!r}, not R or L")
    if side.upper() != wanted:
        raise ConfigError(
            f"{device}: the hand reports side {side!r} but handedness={config.handedness!r} "
            "is configured"
        )


def refuse_integer_positions(device: str, positions: np.ndarray) -> None:
    """DriverProtocolError when a position's float32 bytes are subnormal: the vendor header
    types the field int32, and a positive int32 read as float32 is such a tiny number, which
    no finite or range check would catch (a negative one is a NaN, refused elsewhere)."""
    bits = np.asarray(positions, dtype="<f4").view("<u4")
    subnormal = ((bits & 0x7F800000) == 0) & ((bits & 0x007FFFFF) != 0)
    if np.any(subnormal):
        k = int(np.argmax(subnormal))
        as_int = int(np.asarray(bits[k], dtype="<u4").view("<i4"))
        raise DriverProtocolError(
            f"{device}: finger {k} position bytes {int(bits[k]):#010x} are a subnormal float32, "
            f"i.e. the int32 {as_int}: the hand may send positions as integers "
            "(docs/hardware_protocols.md)"
        )


def import_sdk(module: str = SDK_MODULE) -> ModuleType:
    """``<module>.xhand_control`` (the vendor's binding); ImportError when not installed."""
    return importlib.import_module(f"{module}.xhand_control")


def sdk_import_error(module: str = SDK_MODULE) -> str:
    """ "" when the SDK imports, else why not (for ``hvp doctor`` and backend auto)."""
    try:
        import_sdk(module)
    except ImportError as exc:
        return str(exc)
    except Exception as exc:  # a broken binary wheel must not stop the caller
        return f"{type(exc).__name__}: {exc}"
    return ""


def resolve_backend(config: XHandConfig) -> str:
    """ "sdk" or "serial" for ``config.backend`` (auto: the SDK when it imports)."""
    if config.backend != "auto":
        return config.backend
    return "sdk" if not sdk_import_error(config.sdk_module) else "serial"


class XHandDriver(DriverWrapper):
    """The XHand on the backend ``config`` selects (see the module docstring)."""

    def __init__(self, config: XHandConfig) -> None:
        self.config = config
        self.backend = resolve_backend(config)
        if self.backend == "sdk":
            from human_video_policy.drivers.xhand_sdk import XHandSdkDriver

            super().__init__(XHandSdkDriver(config))
        else:
            from human_video_policy.drivers.xhand_serial import XHandSerialDriver

            super().__init__(XHandSerialDriver(config))

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)  # type: ignore[attr-defined]  # disables, then closes
