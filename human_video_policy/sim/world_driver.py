"""A simulated world's commanded joints behind the driver interface, in the same process.

Why: the sim node owns physics, cameras and the task in one MuJoCo world; its arm must still be
commanded through the same controller core and safety layer as every real robot
(:class:`~human_video_policy.control.joint_controller.JointController`: limits, speed and
acceleration bounds, watchdog, e-stop). :class:`WorldJointDriver` gives the controller the
world's command joints as a :class:`~human_video_policy.drivers.base.JointDriver`; the node keeps
stepping the physics itself, so reads and writes here never advance time.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from human_video_policy.control.joint_controller import JointController
from human_video_policy.drivers.base import (
    DriverConnectionError,
    JointState,
    check_command,
)
from human_video_policy.robots.spec import get_robot
from human_video_policy.safety import SafetyConfig, SafetyLayer
from human_video_policy.sim.world_base import PositionControlledWorld


class WorldJointDriver:
    """The command joints of ``world`` (positions and velocities read from its state, targets
    written to its position actuators); ``clock()`` stamps the states (sim seconds)."""

    def __init__(self, world: PositionControlledWorld, clock: Callable[[], float]) -> None:
        self.world = world
        self.clock = clock
        self._connected = False
        self._enabled = False

    @property
    def name(self) -> str:
        return f"sim-world:{type(self.world).__name__}"

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(self.world.joint_names)

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        self._connected = True

    def close(self) -> None:
        self._connected = False
        self._enabled = False

    def enable(self) -> None:
        self._require_connection()
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def __enter__(self) -> WorldJointDriver:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_state(self) -> JointState:
        self._require_connection()
        n = len(self.joint_names)
        return JointState(
            self.joint_names,
            self.world.joint_positions()[:n],
            float(self.clock()),
            velocities=self.world.joint_velocities()[:n],
            enabled=self._enabled,
        )

    def send_positions(self, positions: np.ndarray) -> None:
        self._require_connection()
        self.world.set_joint_command(check_command(self.name, self.joint_names, positions))

    def _require_connection(self) -> None:
        if not self._connected:
            raise DriverConnectionError(f"{self.name}: not connected")


# The safety settings of the simulated arms (sim_node's parameter defaults; hvp replay runs the
# same controller so a recording replays through the same limits).
SIM_SAFETY_DEFAULTS: dict[str, float] = {
    "velocity_scale": 0.5,
    "max_acceleration": 10.0,
    "estop_deceleration": 50.0,
    "watchdog_periods": 10,
    "max_command_age_s": 0.5,
}


def sim_controller(
    world: PositionControlledWorld,
    clock: Callable[[], float],
    robot: str,
    control_rate_hz: float,
    **safety: float,
) -> JointController:
    """A started :class:`JointController` commanding ``world``'s arm through a
    :class:`SafetyLayer` with the robot's limits and :data:`SIM_SAFETY_DEFAULTS` (overridden by
    ``safety``)."""
    settings = {**SIM_SAFETY_DEFAULTS, **safety}
    config = SafetyConfig(
        limits=get_robot(robot).limits(),
        control_rate_hz=control_rate_hz,
        velocity_scale=float(settings["velocity_scale"]),
        max_acceleration=float(settings["max_acceleration"]),
        estop_deceleration=float(settings["estop_deceleration"]),
        watchdog_periods=int(settings["watchdog_periods"]),
        max_command_age_s=float(settings["max_command_age_s"]),
    )
    controller = JointController(WorldJointDriver(world, clock), SafetyLayer(config))
    controller.start()
    return controller
