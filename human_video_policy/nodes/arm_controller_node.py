"""A joint controller node: a driver behind the safety layer, exposed on the robot's topics.

Thin rclpy adapter over :class:`human_video_policy.control.JointController` (docs/safety.md):

- publishes ``<topic_namespace>/joint_states`` (sensor_msgs/JointState: positions, velocities,
  efforts as the driver reports them) once per control tick, at ``control_rate_hz``;
- subscribes ``<topic_namespace>/joint_commands`` (sensor_msgs/JointState positions, matched
  by name, up to the control rate): each message is handed to the safety layer, which refuses
  NaN/inf, stale (header stamp older than ``max_command_age_s``; a zero stamp counts as "now")
  and out-of-workspace commands, clamps targets into the joint limits and limits velocity and
  acceleration. A message lacking a joint is ignored and counted;
- subscribes /safety/estop (std_msgs/Bool) from publishers of any QoS, latched ones included
  (:mod:`human_video_policy.nodes.estop_input`): true latches the e-stop (the robot holds
  position); ``~/reset_estop`` (std_srvs/Trigger) releases it, refused while /safety/estop is
  still true. A publisher that cannot connect is a WARN on /diagnostics, and so is having no
  e-stop publisher when ``estop_publisher_required`` is true;
- publishes /diagnostics with every safety and driver counter once per second.

``driver`` selects the driver: ``sim`` (MuJoCo, :mod:`human_video_policy.drivers.sim`) or a
real one (``realman``, ``xhand``, ``dynamixel``), imported only when selected and built from
``driver_config``, a YAML mapping of its config dataclass fields (e.g. ``"{host: 192.168.1.18}"``).
A driver error on a tick is reported and the robot holds; the node keeps trying every tick.
A state that is not finite or not plausible for the joints is a driver error, never published.
When the link is lost (connection error, or errors on every tick for 1 s) the driver reconnects
in the background with backoff (0.5 s doubling to 5 s); once connected it publishes states but
moves nothing until ``~/enable`` (std_srvs/Trigger) is called (it answers at once; the
enable runs in the background and ``link`` on /diagnostics turns ``up``). A real driver whose
per-tick I/O bound (``tick_io_bound_s``) does not fit the control period is refused at start-up.

The control loop runs in the main thread on the steady clock; callbacks only hand data to it.
``hand_controller_node`` is this node with the XHand defaults.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import threading
import time
import typing
from typing import Any

import numpy as np
import yaml
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from human_video_policy.control import JointController
from human_video_policy.control.joint_controller import (
    LINK_AWAITING_ENABLE,
    LINK_ENABLING,
    LINK_UP,
)
from human_video_policy.drivers.base import JointDriver
from human_video_policy.errors import ConfigError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import numpy_to_joint_state, stamp_to_seconds
from human_video_policy.nodes.estop_input import EstopInput
from human_video_policy.nodes.qos import RELIABLE
from human_video_policy.nodes.safety_params import declare_safety_params
from human_video_policy.robots.spec import controller_robot_names, get_robot
from human_video_policy.safety import SafetyConfig, SafetyLayer, WorkspaceBox
from human_video_policy.validation import check_choice, check_range

# Ticks may fall this far behind the steady clock before the loop stops catching up.
_MAX_LAG_S = 0.1


# driver parameter -> (module, class); real drivers are imported only when selected.
REAL_DRIVERS: dict[str, tuple[str, str]] = {
    "realman": ("human_video_policy.drivers.realman", "RealmanDriver"),
    "xhand": ("human_video_policy.drivers.xhand", "XHandDriver"),
    "dynamixel": ("human_video_policy.drivers.dynamixel", "DynamixelArmDriver"),
}
DRIVERS = ("sim", *REAL_DRIVERS)


def build_real_driver(kind: str, config_yaml: str) -> JointDriver:
    """The real driver ``kind`` built from ``config_yaml`` (its config dataclass's fields).

    The config class is the annotation of the driver constructor's ``config`` argument.
    """
    module_name, class_name = REAL_DRIVERS[kind]
    try:
        driver_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"parameter driver={kind!r} is invalid: {module_name}.{class_name} is not "
            f"available in this installation ({exc})"
        ) from None
    try:
        fields = yaml.safe_load(config_yaml) if config_yaml.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"parameter driver_config={config_yaml!r} is not YAML: {exc}") from None
    if not isinstance(fields, dict):
        raise ConfigError(
            f"parameter driver_config={config_yaml!r} is invalid: must be a YAML mapping of "
            f"{class_name}'s config fields"
        )
    hints = typing.get_type_hints(driver_class.__init__)
    names = [p for p in inspect.signature(driver_class.__init__).parameters if p != "self"]
    config_class = hints.get(names[0]) if names else None
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        raise ConfigError(f"{class_name} takes no config dataclass; cannot build it")
    allowed = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ConfigError(
            f"parameter driver_config has unknown fields {unknown} for {config_class.__name__}; "
            f"allowed: {allowed}"
        )
    try:
        config = config_class(**fields)
    except TypeError as exc:
        raise ConfigError(
            f"parameter driver_config={config_yaml!r} is invalid for {config_class.__name__}: {exc}"
        ) from None
    except ConfigError as exc:
        raise ConfigError(f"parameter driver_config: {exc}") from None
    return driver_class(config)


class JointControllerNode(HvpNode):
    """Driver + safety layer on the robot's topics; see the module docstring."""

    default_name = "arm_controller"
    DEFAULT_ROBOT = "widowx"
    DEFAULT_NAMESPACE = "/arm"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        robots = controller_robot_names()
        robot = self.param(
            "robot",
            self.DEFAULT_ROBOT,
            f"Robot whose joints, URDF limits and kinematics are used: one of {robots}.",
            lambda n, v: check_choice(n, v, robots),
        )
        driver_kind = self.param(
            "driver",
            "sim",
            f"Driver: one of {list(DRIVERS)} (sim = MuJoCo model of the robot).",
            lambda n, v: check_choice(n, v, DRIVERS),
        )
        driver_config = self.param(
            "driver_config",
            "",
            "YAML mapping of the real driver's config fields, e.g. '{host: 192.168.1.18}'.",
        )
        namespace = self.param(
            "topic_namespace",
            self.DEFAULT_NAMESPACE,
            "Prefix of joint_states and joint_commands (e.g. /arm).",
            _check_namespace,
        )
        self.control_rate_hz = self.param(
            "control_rate_hz",
            100.0,
            "Control ticks (state read, safety check, command sent, joint_states) per second.",
            lambda n, v: check_range(n, v, 10.0, 1000.0),
        )
        safety_values = declare_safety_params(
            self,
            {
                "velocity_scale": 0.5,
                "max_acceleration": 10.0,
                "estop_deceleration": 50.0,
                "watchdog_periods": 5,
                "max_command_age_s": 0.5,
            },
            "control periods",
        )
        workspace_enabled = self.param(
            "workspace_enabled",
            False,
            "Keep the end effector inside [workspace_min, workspace_max] (base frame).",
        )
        workspace_min = self.param(
            "workspace_min",
            [-1.0, -1.0, -1.0],
            "Workspace box lower corner (x, y, z), metres, base frame.",
        )
        workspace_max = self.param(
            "workspace_max",
            [1.0, 1.0, 1.0],
            "Workspace box upper corner (x, y, z), metres, base frame.",
        )
        self.estop_publisher_required = self.param(
            "estop_publisher_required",
            False,
            "Report a WARN on /diagnostics while no publisher of /safety/estop is connected "
            "(always on with a real driver).",
        )
        realtime_factor = self.param(
            "sim_realtime_factor",
            1.0,
            "driver=sim: sim seconds per second.",
            lambda n, v: check_range(n, v, 0.05, 10.0),
        )

        if driver_kind != "sim":  # a real robot without an e-stop source must be seen
            self.estop_publisher_required = True
        spec = get_robot(robot)
        workspace = None
        ee_position = None
        if workspace_enabled:
            try:
                workspace = WorkspaceBox(tuple(workspace_min), tuple(workspace_max))
            except ConfigError as exc:
                raise ConfigError(f"parameter workspace_min/workspace_max: {exc}") from None
            from human_video_policy.kinematics.robots import ee_position_function

            ee_position = ee_position_function(spec)
        safety = SafetyConfig(
            limits=spec.limits(),
            control_rate_hz=self.control_rate_hz,
            **safety_values,
            workspace=workspace,
            ee_position=ee_position,
        )
        if driver_kind == "sim":
            from human_video_policy.drivers.sim import MujocoJointDriver, sim_driver_config

            driver: JointDriver = MujocoJointDriver(sim_driver_config(spec, realtime_factor))
        else:
            driver = build_real_driver(driver_kind, driver_config)
            # e.g. the WidowX on dynamixel: the bus knows the gripper servo angle, the stack
            # commands left_finger (m); the spec names the class that translates.
            adapter = dict(spec.driver_adapters).get(driver_kind)
            if adapter is not None:
                module, name = adapter.split(":")
                driver = getattr(importlib.import_module(module), name)(driver)
        io_bound = getattr(driver, "tick_io_bound_s", None)
        if io_bound is not None and io_bound > 1.0 / self.control_rate_hz:
            raise ConfigError(
                f"parameter control_rate_hz={self.control_rate_hz:g} is invalid for "
                f"{driver.name}: one tick may wait {io_bound * 1000:.1f} ms on I/O, longer than "
                f"the {1000.0 / self.control_rate_hz:.1f} ms period; lower the rate or the "
                "driver's timeouts (driver_config)"
            )
        self.controller = JointController(driver, SafetyLayer(safety))
        self.joint_names = self.controller.joint_names
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        self._mirrored = [
            (name, self._index[source], factor) for name, source, factor in spec.mirrored
        ]
        self._state_names = [*self.joint_names, *(m[0] for m in self._mirrored)]
        self.controller.start()

        self._state_pub = self.create_publisher(JointState, f"{namespace}/joint_states", RELIABLE)
        commands = self.create_subscription(
            JointState, f"{namespace}/joint_commands", self._on_command, RELIABLE
        )
        self.estop = EstopInput(self, self._on_estop)
        self.create_service(Trigger, "~/reset_estop", self._on_reset_estop)
        self.create_service(Trigger, "~/enable", self._on_enable)
        self.invalid_command_messages = 0
        self.unstamped_commands = 0
        self.late_ticks = 0
        self._tick_rate = RateMeter()
        self._estop_input = False
        self._tick_error = ""
        self.enable_diagnostics(hardware_id=driver.name)
        self.get_logger().info(
            f"{robot} controller on {driver.name}: {self.control_rate_hz:g} Hz, topics "
            f"{self._state_pub.topic_name} and {commands.topic_name}"
        )

    # -- callbacks (spin thread) -----------------------------------------------------------
    def _on_command(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        missing = [n for n in self.joint_names if n not in index]
        if missing or len(msg.position) != len(msg.name):
            self.invalid_command_messages += 1
            why = f"lacks joints {missing}" if missing else "has names and positions of "
            if not missing:
                why += f"different lengths ({len(msg.name)} vs {len(msg.position)})"
            self.get_logger().warning(
                f"ignoring joint command: it {why}", throttle_duration_sec=2.0
            )
            return
        positions = np.array([msg.position[index[n]] for n in self.joint_names], dtype=float)
        stamp = stamp_to_seconds(msg.header.stamp)
        if stamp == 0.0:
            self.unstamped_commands += 1
            stamp = self.now_s()
        self.controller.submit(positions, stamp)  # NaN/inf: refused and counted by the layer

    def _on_estop(self, asserted: bool) -> None:
        if asserted != self._estop_input:
            self.get_logger().warning(f"e-stop input {'ASSERTED' if asserted else 'released'}")
        self._estop_input = asserted
        self.controller.set_estop(asserted)

    def _on_reset_estop(
        self, _request: Trigger.Request, response: Trigger.Response
    ) -> Trigger.Response:
        response.success, response.message = self.controller.reset_estop()
        self.get_logger().info(f"e-stop reset requested: {response.message}")
        return response

    def _on_enable(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        # Never blocks: this callback shares the spin thread with the e-stop callbacks.
        response.success, response.message = self.controller.request_enable()
        self.get_logger().info(f"enable requested: {response.message}")
        return response

    # -- control loop (main thread) --------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        period = 1.0 / self.control_rate_hz
        next_tick = time.monotonic()
        while not stop.is_set():
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            elif -delay > _MAX_LAG_S:
                self.late_ticks += 1
                next_tick = time.monotonic()
            if stop.is_set():
                break
            self._tick()

    def _tick(self) -> None:
        result = self.controller.tick(self.now_s())
        self._tick_rate.tick()
        self._tick_error = result.error
        if result.error:
            self.get_logger().error(
                f"driver error, holding: {result.error}", throttle_duration_sec=2.0
            )
        state = result.state
        if state is None:
            return
        positions = [*state.positions, *(state.positions[i] * f for _, i, f in self._mirrored)]
        velocities = None
        if state.velocities is not None:
            velocities = [
                *state.velocities,
                *(state.velocities[i] * f for _, i, f in self._mirrored),
            ]
        msg = numpy_to_joint_state(
            self._state_names, np.array(positions), self.now_msg(), velocities=velocities
        )
        if state.efforts is not None:
            msg.effort = [*map(float, state.efforts), *(0.0 for _ in self._mirrored)]
        self._state_pub.publish(msg)

    def _with_mirrored(self, values: np.ndarray) -> np.ndarray:
        """Driver-order values followed by those of the mirrored joints (WidowX right finger)."""
        extra = [values[i] * factor for _, i, factor in self._mirrored]
        return np.concatenate([values, extra]) if extra else values

    # -- reports ---------------------------------------------------------------------------
    def diagnostics_report(self) -> DiagnosticsReport:
        controller = self.controller
        layer = controller.layer
        estop_values, estop_warning = self.estop.diagnostics(self.estop_publisher_required)
        values: dict[str, Any] = {
            "tick_rate_hz_wall": self._tick_rate.rate_hz,
            "late_ticks": self.late_ticks,
            "estop_input": self._estop_input,
            "estop_latched": layer.estop_latched,
            "holding": layer.holding,
            "hold_reason": layer.hold_reason,
            "invalid_command_messages": self.invalid_command_messages,
            "unstamped_commands": self.unstamped_commands,
            **estop_values,
            "last_driver_error": controller.last_driver_error,
            "link": controller.link,
            **dataclasses.asdict(layer.counters),
            **{f"driver_{k}": v for k, v in dataclasses.asdict(controller.counters).items()},
        }
        if controller.link == LINK_AWAITING_ENABLE:
            return DiagnosticsReport(
                Level.ERROR, "reconnected: holding until ~/enable is called", values
            )
        if controller.link == LINK_ENABLING:
            return DiagnosticsReport(Level.ERROR, "enabling the driver", values)
        if controller.link != LINK_UP:
            return DiagnosticsReport(
                Level.ERROR,
                f"connection lost, reconnecting: {controller.last_driver_error}",
                values,
            )
        if controller.last_state is None or not controller.last_state.enabled:
            return DiagnosticsReport(Level.ERROR, "driver not enabled", values)
        if layer.estop_latched:
            return DiagnosticsReport(Level.WARN, "e-stop latched: holding position", values)
        if self._tick_error:
            return DiagnosticsReport(Level.ERROR, f"driver error: {self._tick_error}", values)
        if estop_warning:
            return DiagnosticsReport(Level.WARN, estop_warning, values)
        if layer.holding:
            return DiagnosticsReport(Level.OK, f"holding: {layer.hold_reason}", values)
        return DiagnosticsReport(Level.OK, "following commands", values)

    def close(self) -> None:
        self.controller.stop()


def _check_namespace(name: str, value: str) -> str:
    if not value.startswith("/") or value.endswith("/") or " " in value:
        raise ConfigError(f"{name}={value!r} is invalid: must look like /arm (leading /, no end /)")
    return value


def main(args: list[str] | None = None) -> int:
    return run_node(JointControllerNode, args)


if __name__ == "__main__":
    sys.exit(main())
