"""Inverse kinematics as a node: /arm/target_pose (EE pose) -> /arm/joint_commands (arm joints).

Subscribes geometry_msgs/PoseStamped on /arm/target_pose: the pose of the robot's EE frame
(RM75 + XHand: right_hand_ee_link, 65 mm down the palm) in ``base_frame`` or in
``camera_frame``. Camera-frame poses go through the configured extrinsic
(``camera_extrinsic``: the camera optical frame in the base frame) to the base frame. Each
target is solved with :class:`kinematics.inverse.IkSolver` warm-started from the newest
/arm/joint_states, and the 7 arm joint positions are published on /arm/joint_commands
(sensor_msgs/JointState, names joint1..joint7; the hand joints are not touched: the hand is
commanded by the retarget node).

A target that cannot be solved is never turned into a command: unreachable (no solution within
tolerance), a wild jump (the solution moves a joint farther from the current state than its
velocity limit allows in ``max_jump_s``), no or stale joint state, an unknown frame, a
malformed pose. With ``relaxed_orientation_max_rad`` > 0 (teleoperation), a target whose whole
pose is out of reach but whose position is not gets the position exactly and the orientation as
close as the joint limits allow (``IkSolver.solve_position_first``), if that is within the
given angle; such commands are counted (``orientation_relaxed``) with the largest recent
orientation error. Every refusal is counted by reason on /diagnostics; the first of a burst is
logged with its reason, the rest of the burst silently, and the end of the burst once with its
count, so a stream of 30 Hz unreachable targets does not flood the log.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import sys
import time
from collections import Counter, deque
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState

from human_video_policy.camera.pinhole import IDENTITY_POSE_PARAM, CameraExtrinsics
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.kinematics.inverse import (
    RM75_IK_CONFIG,
    IkSolver,
    camera_pose_to_base,
    pose_from_position_quaternion,
)
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import joint_state_to_numpy, numpy_to_joint_state
from human_video_policy.nodes.qos import RELIABLE
from human_video_policy.robots.rm75 import BASE_FRAME, RM75_ARM_JOINTS, HandMount
from human_video_policy.validation import (
    check_choice,
    check_float_list,
    check_int_range,
    check_range,
)

ROBOTS = ("rm75",)


class IkNode(HvpNode):
    """PoseStamped targets -> arm joint commands via IK; see the module docstring."""

    default_name = "ik"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        self.param(
            "robot",
            "rm75",
            f"Robot whose URDF, joints and limits IK uses: one of {list(ROBOTS)}.",
            lambda n, v: check_choice(n, v, ROBOTS),
        )
        self.base_frame = self.param(
            "base_frame",
            BASE_FRAME,
            "frame_id of targets already in the robot's base frame.",
            self._check_frame_name,
        )
        self.camera_frame = self.param(
            "camera_frame",
            "",
            "frame_id of targets in the camera's optical frame, converted with "
            "camera_extrinsic; empty = camera-frame targets are refused.",
        )
        self.T_base_camera = self.param(
            "camera_extrinsic",
            list(IDENTITY_POSE_PARAM),
            "Camera optical frame in the base frame: [x, y, z (m), qx, qy, qz, qw].",
            lambda n, v: CameraExtrinsics.from_param(n, v).matrix,
        )
        mount = HandMount(
            xyz=tuple(
                self.param(
                    "hand_mount_xyz",
                    [0.0, 0.0, 0.0],
                    "Hand wrist flange position in the arm flange frame Link7 (m).",
                    lambda n, v: check_float_list(n, v, 3),
                )
            ),
            rpy=tuple(
                self.param(
                    "hand_mount_rpy",
                    [math.pi, 0.0, 0.0],
                    "Hand wrist flange orientation in Link7, URDF roll-pitch-yaw (rad).",
                    lambda n, v: check_float_list(n, v, 3),
                )
            ),
        )
        config = dataclasses.replace(
            RM75_IK_CONFIG,
            position_tolerance_m=self.param(
                "position_tolerance_m",
                RM75_IK_CONFIG.position_tolerance_m,
                "A solution must put the EE within this distance of the target (m).",
                lambda n, v: check_range(n, v, 1e-6, 0.05),
            ),
            rotation_tolerance_rad=self.param(
                "rotation_tolerance_rad",
                RM75_IK_CONFIG.rotation_tolerance_rad,
                "... and within this orientation error (rad).",
                lambda n, v: check_range(n, v, 1e-6, 0.5),
            ),
            random_restarts=self.param(
                "random_restarts",
                2,
                "Extra attempts from random configurations when the warm start fails.",
                lambda n, v: check_int_range(n, v, 0, 50),
            ),
            jump_dt_s=self.param(
                "max_jump_s",
                0.5,
                "Refuse a solution that moves any joint farther from the current state than "
                "its URDF velocity limit allows in this time (s): no wild jumps.",
                lambda n, v: check_range(n, v, 0.01, 10.0),
            ),
        )
        self.max_state_age_s = self.param(
            "max_joint_state_age_s",
            0.5,
            "Refuse targets while the newest joint state is older than this (s, steady "
            "clock): the jump check needs the arm's actual position.",
            lambda n, v: check_range(n, v, 0.01, 60.0),
        )
        self.relaxed_orientation_max_rad = self.param(
            "relaxed_orientation_max_rad",
            0.0,
            "When a target's whole pose is out of reach: 0 refuses it (a policy's pose or "
            "nothing); > 0 reaches its position exactly with the orientation as close as the "
            "joint limits allow, if within this angle (rad) of the target (teleoperation: the "
            "operator's wrist asks for orientations the arm's wrist cannot reach).",
            lambda n, v: check_range(n, v, 0.0, math.pi),
        )
        self.solver = IkSolver.for_rm75(config, mount=mount)
        self.joint_names: tuple[str, ...] = RM75_ARM_JOINTS

        self._command_pub = self.create_publisher(JointState, "/arm/joint_commands", RELIABLE)
        self.create_subscription(PoseStamped, "/arm/target_pose", self._on_target, RELIABLE)
        self.create_subscription(JointState, "/arm/joint_states", self._on_joint_state, RELIABLE)
        self._state: np.ndarray | None = None
        self._state_time = -math.inf
        self.invalid_states = 0
        self.solved = 0
        self.refused: Counter[str] = Counter()
        self.orientation_relaxed = 0
        self._relaxed_errors: deque[float] = deque(maxlen=200)
        self._burst = 0
        self._last_refusal = ""
        self._solve_ms: deque[float] = deque(maxlen=200)
        self._command_rate = RateMeter()
        self.enable_diagnostics()
        self.get_logger().info(
            f"IK for {self.solver.ee_frame} over {list(self.joint_names)}; targets in "
            f"{self.base_frame!r}" + (f" or {self.camera_frame!r}" if self.camera_frame else "")
        )

    @staticmethod
    def _check_frame_name(name: str, value: str) -> str:
        if not value:
            raise ConfigError(f"{name}='' is invalid: must be a frame name")
        return value

    # -- callbacks -----------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self._state = joint_state_to_numpy(msg, self.joint_names)
            self._state_time = time.monotonic()
        except InputError as exc:
            self.invalid_states += 1
            self._state = None  # never warm-start (or jump-check) from a bad state
            self.get_logger().warning(f"invalid joint state: {exc}", throttle_duration_sec=2.0)

    def _on_target(self, msg: PoseStamped) -> None:
        try:
            target = self._target_in_base(msg)
        except InputError as exc:
            self._refuse("bad_target", str(exc))
            return
        if self._state is None:
            self._refuse("no_joint_state", "no valid /arm/joint_states received yet")
            return
        age = time.monotonic() - self._state_time
        if age > self.max_state_age_s:
            self._refuse(
                "stale_joint_state",
                f"newest joint state is {age:.2f} s old (max_joint_state_age_s "
                f"{self.max_state_age_s:g})",
            )
            return
        started = time.perf_counter()
        if self.relaxed_orientation_max_rad > 0.0:
            result = self.solver.solve_position_first(target, self._state)
        else:
            result = self.solver.solve(target, self._state)
        self._solve_ms.append(1e3 * (time.perf_counter() - started))
        if not result.success:
            kind = "wild_jump" if result.reason.startswith("wild jump") else "unreachable"
            self._refuse(kind, result.reason)
            return
        if result.orientation_relaxed:
            if result.rotation_error_rad > self.relaxed_orientation_max_rad:
                self._refuse(
                    "orientation_out_of_reach",
                    f"{result.reason}: more than relaxed_orientation_max_rad "
                    f"{self.relaxed_orientation_max_rad:g}",
                )
                return
            self.orientation_relaxed += 1
            self._relaxed_errors.append(result.rotation_error_rad)
        command = numpy_to_joint_state(self.joint_names, result.q, msg.header.stamp)
        self._command_pub.publish(command)
        self._command_rate.tick()
        self.solved += 1
        if self._burst:
            self.get_logger().info(f"IK solving again after {self._burst} refused targets")
            self._burst = 0

    def _target_in_base(self, msg: PoseStamped) -> np.ndarray:
        p, o = msg.pose.position, msg.pose.orientation
        pose = pose_from_position_quaternion((p.x, p.y, p.z), (o.x, o.y, o.z, o.w))
        frame = msg.header.frame_id
        if frame == self.base_frame:
            return pose
        if self.camera_frame and frame == self.camera_frame:
            return camera_pose_to_base(self.T_base_camera, pose)
        known = [self.base_frame] + ([self.camera_frame] if self.camera_frame else [])
        raise InputError(f"target frame_id {frame!r} is not one of {known}")

    def _refuse(self, kind: str, reason: str) -> None:
        """Count a refused target; log the first of a burst only."""
        self.refused[kind] += 1
        self._last_refusal = f"{kind}: {reason}"
        if self._burst == 0:
            self.get_logger().warning(
                f"no command for this target ({kind}): {reason}; further refusals are "
                "counted on /diagnostics until a target is solved"
            )
        self._burst += 1

    def diagnostics_report(self) -> DiagnosticsReport:
        values: dict[str, Any] = {
            "solved": self.solved,
            "refused": sum(self.refused.values()),
            **{f"refused_{kind}": count for kind, count in sorted(self.refused.items())},
            "refused_in_a_row": self._burst,
            "last_refusal": self._last_refusal,
            "orientation_relaxed": self.orientation_relaxed,
            "relaxed_orientation_error_rad_max": (
                max(self._relaxed_errors) if self._relaxed_errors else 0.0
            ),
            "invalid_joint_state_messages": self.invalid_states,
            "command_rate_hz_wall": self._command_rate.rate_hz,
            "solve_ms_median": statistics.median(self._solve_ms) if self._solve_ms else math.nan,
            "solve_ms_max": max(self._solve_ms) if self._solve_ms else math.nan,
        }
        if self._state is None:
            return DiagnosticsReport(Level.WARN, "waiting for /arm/joint_states", values)
        if self._burst:
            return DiagnosticsReport(Level.WARN, f"refusing targets ({self._last_refusal})", values)
        return DiagnosticsReport(Level.OK, "solving" if self.solved else "waiting", values)


def main(args: list[str] | None = None) -> int:
    return run_node(IkNode, args)


if __name__ == "__main__":
    sys.exit(main())
