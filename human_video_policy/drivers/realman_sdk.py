"""RealMan arm through Realman's own Python SDK (PyPI ``robotic-arm``, import ``Robotic_Arm``).

Why a second client: a lab that trusts the vendor's code can run the stack on it, behind the
same safety layer and :class:`~human_video_policy.drivers.base.JointDriver` interface; and the
project's JSON client (drivers/realman.py) stays the default. This module is only the adapter:
units (the SDK takes and returns degrees; the stack uses radians), joint order, the SDK's
return codes (0 = success) and error list, plausible angles, and any exception the binding
raises turned into a :class:`DriverError`. Selected with ``driver_config`` ``backend: sdk``.

Measured against the fake controller (benchmarks/realman_clients.py, docs/hardware_protocols.md):
both clients send the same targets (the SDK truncates 0.001 degree where the JSON client
rounds). Limits: the SDK's own timeouts are not configurable here, so no ``tick_io_bound_s`` is
declared (the node cannot check the tick fits the control period with this backend).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from human_video_policy.drivers.base import (
    DeviceFault,
    DriverConnectionError,
    DriverError,
    DriverProtocolError,
    DriverSession,
    Fault,
    JointState,
    check_command,
    vendor_call,
)
from human_video_policy.drivers.realman import (
    MAX_ABS_JOINT_MDEG,
    SYSTEM_ERRORS,
    RealmanArmConfig,
)


class RealmanSdkDriver(DriverSession):
    """:class:`~human_video_policy.drivers.base.JointDriver` on Realman's Python SDK."""

    def __init__(self, config: RealmanArmConfig) -> None:
        self.config = config
        self._arm: Any = None
        self._enabled = False

    @property
    def name(self) -> str:
        return f"realman-sdk@{self.config.host}:{self.config.port}"

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.config.joint_names

    @property
    def is_connected(self) -> bool:
        return self._arm is not None

    def connect(self) -> None:
        try:
            from Robotic_Arm.rm_robot_interface import RoboticArm, rm_thread_mode_e
        except (ImportError, OSError) as exc:
            raise DriverConnectionError(
                f"{self.name}: Realman's SDK (pip install robotic-arm) does not load: {exc}; "
                "use backend json"
            ) from exc
        arm = self._do("RoboticArm()", lambda: RoboticArm(rm_thread_mode_e.RM_TRIPLE_MODE_E))
        handle = self._do(
            "rm_create_robot_arm",
            lambda: arm.rm_create_robot_arm(self.config.host, self.config.port),
        )
        if getattr(handle, "id", -1) <= 0:
            self._delete_quietly(arm)
            raise DriverConnectionError(f"{self.name}: the SDK cannot connect (handle id -1)")
        self._arm = arm
        try:
            self.read_state()  # proves the controller answers
        except DriverError:
            self.close()
            raise

    def close(self) -> None:
        arm, self._arm = self._arm, None
        self._enabled = False
        if arm is not None:
            self._delete_quietly(arm)

    def enable(self) -> None:
        self._check(
            "rm_set_arm_power(1)", self._do("power", lambda: self._arm_().rm_set_arm_power(1))
        )
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False
        self._check(
            "rm_set_arm_power(0)", self._do("power", lambda: self._arm_().rm_set_arm_power(0))
        )

    def read_state(self) -> JointState:
        arm = self._arm_()
        code, state = self._do(
            "rm_get_current_arm_state", lambda: tuple(arm.rm_get_current_arm_state())
        )
        self._check("rm_get_current_arm_state", code)
        try:
            degrees = [state["joint"][i] for i in range(len(self.joint_names))]
            codes = [int(c) for c in state["err"]["err"]]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise DriverProtocolError(f"{self.name}: SDK state unreadable: {exc}") from exc
        positions = np.empty(len(degrees))
        for i, value in enumerate(degrees):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DriverProtocolError(
                    f"{self.name}: joint {i + 1} angle {value!r} not a number"
                )
            if not math.isfinite(value) or abs(value) * 1000.0 > MAX_ABS_JOINT_MDEG:
                raise DriverProtocolError(
                    f"{self.name}: joint {i + 1} angle {value!r} deg is not finite within +-360"
                )
            positions[i] = math.radians(value)
        return JointState(
            names=self.joint_names,
            positions=positions,
            stamp_s=time.monotonic(),
            enabled=self._enabled,
            faults=tuple(Fault(c, SYSTEM_ERRORS.get(c, "unknown error code")) for c in codes if c),
        )

    def send_positions(self, positions: np.ndarray) -> None:
        command = check_command(self.name, self.joint_names, positions)
        degrees = [math.degrees(float(q)) for q in command]
        arm = self._arm_()
        code = self._do("rm_movej_canfd", lambda: arm.rm_movej_canfd(degrees, self.config.follow))
        self._check("rm_movej_canfd", code)

    # --- helpers --------------------------------------------------------------------------------
    def _arm_(self) -> Any:
        if self._arm is None:
            raise DriverConnectionError(f"{self.name}: not connected (call connect() first)")
        return self._arm

    def _do(self, what: str, action: Callable[[], Any]) -> Any:
        return vendor_call(self.name, what, action)

    def _check(self, what: str, code: Any) -> None:
        if not isinstance(code, int) or isinstance(code, bool):
            raise DriverProtocolError(f"{self.name}: SDK {what} returned {code!r}, not a code")
        if code != 0:
            # The SDK's codes: 1 controller refused, -1 send failed, -2 no reply, -3 bad reply.
            if code == -1:
                raise DriverConnectionError(f"{self.name}: SDK {what}: send failed (-1)")
            raise DeviceFault(self.name, code, f"SDK {what} returned {code}")

    @staticmethod
    def _delete_quietly(arm: Any) -> None:
        try:
            arm.rm_delete_robot_arm()
        except Exception:  # closing must not raise: we are leaving
            pass
