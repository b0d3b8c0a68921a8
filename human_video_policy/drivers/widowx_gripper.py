"""The WidowX gripper as the URDF's ``left_finger`` (metres) instead of a servo angle (rad).

The WidowX gripper servo turns a horn whose two arms push the fingers apart symmetrically. The
URDF, the sim, the policy and the executor all use the prismatic ``left_finger`` position (the
distance of one finger from the gripper centre, 0.015..0.037 m); the Dynamixel bus only knows
the servo angle. :class:`FingerGripperDriver` wraps any :class:`JointDriver` whose joints include
the servo joint (``gripper``) and exposes ``left_finger`` in its place, converting with the
slider-crank geometry Interbotix's ``interbotix_xs_sdk`` uses (``horn_radius`` r, ``arm_length``
L, from its wx250s motor config: r = 0.014 m, L = 0.024 m)::

    finger(theta) = r sin(theta) + sqrt(L^2 - (r cos(theta))^2)
    theta(finger) = pi/2 - acos((r^2 + finger^2 - L^2) / (2 r finger))

so theta = -pi/2 is a finger at L - r = 10 mm, theta = 0 at sqrt(L^2 - r^2) = 19.5 mm and
theta = pi/2 at L + r = 38 mm (monotone in between: the URDF's 15..37 mm lies inside). Finger
positions outside what the linkage can reach are refused (DriverCommandError), never clamped
silently: the safety layer upstream keeps commands inside the URDF limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from human_video_policy.drivers.base import (
    DriverCommandError,
    DriverWrapper,
    JointDriver,
    JointState,
    check_command,
)
from human_video_policy.errors import ConfigError
from human_video_policy.validation import check_positive


@dataclass(frozen=True)
class HornGeometry:
    """Gripper linkage: ``horn_radius`` (servo horn arm, m) and ``arm_length`` (link from the
    horn to the finger, m); ``arm_length`` must exceed ``horn_radius``."""

    horn_radius: float = 0.014
    arm_length: float = 0.024

    def __post_init__(self) -> None:
        check_positive("horn_radius", self.horn_radius)
        check_positive("arm_length", self.arm_length)
        if self.arm_length <= self.horn_radius:
            raise ConfigError(
                f"arm_length={self.arm_length} must exceed horn_radius={self.horn_radius}"
            )

    @property
    def finger_range(self) -> tuple[float, float]:
        """Finger positions (m) for servo angles -pi/2 and pi/2, the linkage's working range."""
        return self.arm_length - self.horn_radius, self.arm_length + self.horn_radius

    def finger_from_angle(self, theta: np.ndarray) -> np.ndarray:
        r, L = self.horn_radius, self.arm_length
        theta = np.asarray(theta, dtype=np.float64)
        return r * np.sin(theta) + np.sqrt(L * L - (r * np.cos(theta)) ** 2)

    def angle_from_finger(self, finger: np.ndarray) -> np.ndarray:
        r, L = self.horn_radius, self.arm_length
        finger = np.asarray(finger, dtype=np.float64)
        cos_arg = (r * r + finger * finger - L * L) / (2.0 * r * finger)
        return math.pi / 2.0 - np.arccos(np.clip(cos_arg, -1.0, 1.0))


class FingerGripperDriver(DriverWrapper):
    """A :class:`JointDriver` exposing ``finger_joint`` (m) where ``inner`` has ``servo_joint``
    (rad); every other joint passes through unchanged. See the module docstring."""

    def __init__(
        self,
        inner: JointDriver,
        servo_joint: str = "gripper",
        finger_joint: str = "left_finger",
        geometry: HornGeometry | None = None,
    ) -> None:
        if servo_joint not in inner.joint_names:
            raise ConfigError(
                f"{inner.name} has no joint {servo_joint!r} to expose as {finger_joint!r}: "
                f"its joints are {list(inner.joint_names)}"
            )
        super().__init__(inner)
        self.geometry = geometry or HornGeometry()
        self._index = inner.joint_names.index(servo_joint)
        names = list(inner.joint_names)
        names[self._index] = finger_joint
        self._names = tuple(names)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self._names

    def read_state(self) -> JointState:
        state = self.inner.read_state()
        positions = state.positions.copy()
        theta = positions[self._index]
        positions[self._index] = self.geometry.finger_from_angle(theta)
        velocities = state.velocities
        if velocities is not None:
            # d finger / d theta = r cos(theta) + r^2 sin(theta) cos(theta) / sqrt(L^2 - r^2 cos^2)
            r, L = self.geometry.horn_radius, self.geometry.arm_length
            c, s = math.cos(theta), math.sin(theta)
            slope = r * c + r * r * s * c / math.sqrt(L * L - (r * c) ** 2)
            velocities = velocities.copy()
            velocities[self._index] *= slope
        return JointState(
            names=self._names,
            positions=positions,
            stamp_s=state.stamp_s,
            velocities=velocities,
            efforts=state.efforts,
            enabled=state.enabled,
            faults=state.faults,
        )

    def send_positions(self, positions: np.ndarray) -> None:
        command = check_command(self.name, self._names, positions)
        finger = command[self._index]
        low, high = self.geometry.finger_range
        if not low <= finger <= high:
            raise DriverCommandError(
                f"{self.name}: {self._names[self._index]}={finger:.4f} m is outside what the "
                f"gripper linkage reaches [{low:.4f}, {high:.4f}] m"
            )
        command = command.copy()
        command[self._index] = self.geometry.angle_from_finger(finger)
        self.inner.send_positions(command)
