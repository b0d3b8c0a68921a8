"""Leader-arm teleoperation: a leader arm's joint states mirrored to the follower's controller.

Thin adapter over :class:`teleop.leader_follower.LeaderFollower` (mapping, alignment on
engage, stale leader and jump checks: see that module). Every ``1 / rate_hz`` s (steady clock)
it steps the core with the newest leader and follower states and the deadman, and publishes:

- ``/arm/joint_commands`` (sensor_msgs/JointState, stamped now): the follower arm joints,
  plus the gripper joint when ``gripper_output`` is ``arm`` (WidowX: the arm controller
  commands ``left_finger`` with the arm);
- ``/hand/joint_commands``: the gripper joint alone when ``gripper_output`` is ``hand`` (a
  gripper with its own controller);
- nothing when the core says so (deadman released, stale leader, misaligned...): the follower
  controller's watchdog holds the robot. Why is on /diagnostics and logged once per change.

Inputs: ``/leader/joint_states`` (sensor_msgs/JointState) when ``leader_driver`` is ``topic``;
with ``dynamixel`` or ``realman`` the node reads the leader itself through that driver
(``leader_driver_config``, a YAML mapping of the driver's config), **read-only**: it never
sends the leader a position (a Dynamixel leader gets its torque switched off so a hand can
move it; put a Realman leader in drag-teach mode on its pendant) and republishes what it reads
on /leader/joint_states for recording. ``/arm/joint_states``: the follower, for alignment.
``/teleop/enable`` (std_msgs/Bool): the deadman, as in wrist_teleop_node: each ``true`` holds
it for ``deadman_timeout_s``; with ``require_deadman: false`` the leader alone drives (a
leader arm is itself a deliberate input; the lab decides).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from human_video_policy.drivers.base import DriverError, JointDriver
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import joint_state_to_numpy, numpy_to_joint_state
from human_video_policy.nodes.qos import RELIABLE
from human_video_policy.teleop.leader_follower import (
    GripperMap,
    LeaderFollower,
    LeaderFollowerConfig,
    LeaderReading,
)
from human_video_policy.validation import check_choice, check_range

ROBOTS = ("widowx", "rm75")
GRIPPER_OUTPUTS = ("arm", "hand", "none")
LEADER_DRIVERS = ("topic", "dynamixel", "realman")


def _robot_defaults(robot: str) -> tuple[tuple[str, ...], Any]:
    """Follower arm joints and their JointLimits."""
    if robot == "widowx":
        from human_video_policy.robots.widowx import WIDOWX_ARM_JOINTS, widowx_joint_limits

        return WIDOWX_ARM_JOINTS, widowx_joint_limits()
    from human_video_policy.robots.rm75 import RM75_ARM_JOINTS, rm75_joint_limits

    return RM75_ARM_JOINTS, rm75_joint_limits()


class LeaderFollowerNode(HvpNode):
    """Leader joint states + deadman -> follower joint commands; see the module docstring."""

    default_name = "leader_follower"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        p = self.param
        robot = p(
            "robot",
            "widowx",
            f"Follower robot (joints and limits): one of {list(ROBOTS)}.",
            lambda n, v: check_choice(n, v, ROBOTS),
        )
        arm_joints, limits = _robot_defaults(robot)
        n = len(arm_joints)
        leader_joints = p(
            "leader_joints",
            list(arm_joints),
            "Leader joint feeding each follower arm joint, in the follower's order.",
        )
        self.gripper_output = p(
            "gripper_output",
            "arm" if robot == "widowx" else "none",
            f"Where the gripper command goes: one of {list(GRIPPER_OUTPUTS)}.",
            lambda n_, v: check_choice(n_, v, GRIPPER_OUTPUTS),
        )
        gripper = None
        if self.gripper_output != "none":
            try:
                gripper = GripperMap(
                    leader_joint=p("gripper_leader_joint", "left_finger", "Leader gripper joint."),
                    follower_joint=p(
                        "gripper_follower_joint", "left_finger", "Follower gripper joint."
                    ),
                    leader_closed=p("gripper_leader_closed", 0.015, "Leader closed (rad or m)."),
                    leader_open=p("gripper_leader_open", 0.037, "Leader open (rad or m)."),
                    follower_closed=p("gripper_follower_closed", 0.015, "Follower closed."),
                    follower_open=p("gripper_follower_open", 0.037, "Follower open."),
                )
            except ConfigError as exc:
                raise ConfigError(f"parameter {exc}") from None
        order = [limits.names.index(j) for j in arm_joints]
        try:
            config = LeaderFollowerConfig(
                leader_joints=tuple(leader_joints),
                follower_joints=arm_joints,
                follower_lower=tuple(limits.lower[order]),
                follower_upper=tuple(limits.upper[order]),
                signs=tuple(p("signs", [1.0] * n, "+1 or -1 per follower joint.")),
                scales=tuple(p("scales", [1.0] * n, "Factor (> 0) per follower joint.")),
                offsets=tuple(p("offsets", [0.0] * n, "Added per follower joint (rad).")),
                gripper=gripper,
                engage_tolerance_rad=p(
                    "engage_tolerance_rad",
                    0.15,
                    "Follow only once every arm joint is this close to the follower (rad).",
                ),
                align=p("align", "refuse", "refuse (wait for the operator) or ramp (move)."),
                ramp_velocity=p("ramp_velocity", 0.3, "Alignment ramp speed (rad/s)."),
                max_leader_age_s=p(
                    "max_leader_age_s", 0.1, "Older leader states are stale: no command (s)."
                ),
                max_jump_rad=p(
                    "max_jump_rad", 0.3, "A target this far from the last one stops (rad)."
                ),
            )
        except ConfigError as exc:
            raise ConfigError(f"parameter {exc}") from None
        self.core = LeaderFollower(config)
        self.arm_joints = arm_joints
        self.rate_hz = p(
            "rate_hz",
            50.0,
            "Command rate (Hz, steady clock).",
            lambda n_, v: check_range(n_, v, 5.0, 500.0),
        )
        self.require_deadman = p(
            "require_deadman", True, "Command only while /teleop/enable is held."
        )
        self.deadman_timeout_s = p(
            "deadman_timeout_s",
            0.25,
            "Each /teleop/enable true holds the deadman this long (s).",
            lambda n_, v: check_range(n_, v, 0.02, 2.0),
        )
        leader_driver = p(
            "leader_driver",
            "topic",
            f"Where leader states come from: one of {list(LEADER_DRIVERS)}.",
            lambda n_, v: check_choice(n_, v, LEADER_DRIVERS),
        )
        leader_driver_config = p(
            "leader_driver_config", "", "Leader driver config as YAML (dynamixel, realman)."
        )
        self._lock = threading.Lock()
        self._leader: LeaderReading | None = None
        self._follower: np.ndarray | None = None
        self._deadman_until = -math.inf
        self._driver: JointDriver | None = None
        self._leader_pub = None
        if leader_driver == "topic":
            self.create_subscription(JointState, "/leader/joint_states", self._on_leader, RELIABLE)
        else:
            self._driver = self._open_leader_driver(leader_driver, leader_driver_config)
            self._leader_pub = self.create_publisher(JointState, "/leader/joint_states", RELIABLE)
        self.create_subscription(JointState, "/arm/joint_states", self._on_follower, RELIABLE)
        self.create_subscription(Bool, "/teleop/enable", self._on_enable, RELIABLE)
        self._arm_pub = self.create_publisher(JointState, "/arm/joint_commands", RELIABLE)
        self._hand_pub = (
            self.create_publisher(JointState, "/hand/joint_commands", RELIABLE)
            if self.gripper_output == "hand"
            else None
        )
        self.commands = 0
        self.invalid_inputs = 0
        self.driver_errors = 0
        self.state = "disabled"
        self.reason = "starting"
        self._rate = RateMeter()
        self.create_wall_timer(1.0 / self.rate_hz, self._tick)
        self.enable_diagnostics()
        self.get_logger().info(
            f"leader ({leader_driver}) -> {robot} follower {list(arm_joints)}, gripper "
            f"{self.gripper_output}, align {config.align}"
            + (
                f", deadman {self.topic('/teleop/enable')} ({self.deadman_timeout_s:g} s)"
                if self.require_deadman
                else ", NO deadman"
            )
        )

    def _open_leader_driver(self, kind: str, config_yaml: str) -> JointDriver:
        from human_video_policy.nodes.arm_controller_node import build_real_driver

        driver = build_real_driver(kind, config_yaml)
        try:
            driver.connect()
            if kind == "dynamixel":
                driver.disable()  # torque off: the operator moves the leader by hand
        except DriverError as exc:
            raise ConfigError(f"leader_driver {kind}: {exc}") from None
        return driver

    # -- inputs --------------------------------------------------------------------------------
    def _on_leader(self, msg: JointState) -> None:
        positions = np.asarray(msg.position, dtype=np.float64)
        if len(msg.name) != positions.size:
            self.invalid_inputs += 1
            return
        with self._lock:
            self._leader = LeaderReading(tuple(msg.name), positions, time.monotonic())

    def _on_follower(self, msg: JointState) -> None:
        try:
            q = joint_state_to_numpy(msg, self.arm_joints)
        except InputError:
            self.invalid_inputs += 1
            q = None
        with self._lock:
            self._follower = q

    def _on_enable(self, msg: Bool) -> None:
        self._deadman_until = time.monotonic() + self.deadman_timeout_s if msg.data else -math.inf

    def _read_leader_driver(self) -> None:
        assert self._driver is not None and self._leader_pub is not None
        try:
            state = self._driver.read_state()
        except DriverError as exc:
            self.driver_errors += 1
            self.get_logger().warning(f"leader read failed: {exc}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self._leader = LeaderReading(
                tuple(state.names), np.asarray(state.positions), time.monotonic()
            )
        self._leader_pub.publish(numpy_to_joint_state(state.names, state.positions, self.now_msg()))

    # -- control tick --------------------------------------------------------------------------
    def _tick(self) -> None:
        if self._driver is not None:
            self._read_leader_driver()
        now = time.monotonic()
        enabled = (not self.require_deadman) or now < self._deadman_until
        with self._lock:
            leader, follower = self._leader, self._follower
        try:
            step = self.core.step(now, enabled, leader, follower)
        except InputError as exc:
            self.invalid_inputs += 1
            self._report("invalid_input", str(exc))
            return
        self._report(step.state, step.reason)
        if step.arm is None:
            return
        stamp = self.now_msg()
        names, values = list(self.arm_joints), list(step.arm)
        if step.gripper is not None and self.gripper_output == "arm":
            names.append(self.core.config.gripper.follower_joint)
            values.append(step.gripper)
        self._arm_pub.publish(numpy_to_joint_state(names, np.array(values), stamp))
        if step.gripper is not None and self._hand_pub is not None:
            gripper_joint = self.core.config.gripper.follower_joint
            self._hand_pub.publish(
                numpy_to_joint_state([gripper_joint], np.array([step.gripper]), stamp)
            )
        self.commands += 1
        self._rate.tick()

    def _report(self, state: str, reason: str) -> None:
        if state != self.state:
            # Two call sites: rclpy refuses one call site logging at two severities.
            if state in ("following", "aligning"):
                self.get_logger().info(f"{state}: {reason}")
            else:
                self.get_logger().warning(f"{state}: {reason}")
        self.state, self.reason = state, reason

    def diagnostics_report(self) -> DiagnosticsReport:
        values: dict[str, Any] = {
            "state": self.state,
            "reason": self.reason,
            "commands": self.commands,
            "command_rate_hz_wall": self._rate.rate_hz,
            "invalid_inputs": self.invalid_inputs,
            "leader_driver_errors": self.driver_errors,
        }
        level = Level.OK if self.state in ("following", "aligning", "disabled") else Level.WARN
        return DiagnosticsReport(level, f"{self.state}: {self.reason}", values)

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()


def main(args: list[str] | None = None) -> int:
    return run_node(LeaderFollowerNode, args)


if __name__ == "__main__":
    sys.exit(main())
