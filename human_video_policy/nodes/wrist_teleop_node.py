"""Wrist teleoperation: the operator's tracked wrist drives /arm/target_pose while the deadman
is held; the retargeted finger commands pass to /hand/joint_commands only while it is held.

Subscribes:

- ``/hand/keypoints`` (HandKeypoints, from hand_tracker_node): the most confident hand of
  ``handedness`` with metric 3D keypoints gives the wrist pose (method A,
  hands/wrist_pose.py) in the camera optical frame;
- ``/teleop/enable`` (std_msgs/Bool, reliable, volatile): the **deadman**. Teleoperation is on
  only while ``true`` messages keep arriving: each one holds it for ``deadman_timeout_s``
  (steady clock), so a pedal, joystick button or ``hvp teleop enable`` must publish at least
  every ``deadman_timeout_s`` (20 Hz is typical); ``false`` releases it at once. A crashed
  publisher or a lost link therefore stops the robot; a latched "true" cannot be left behind;
- ``/arm/joint_states`` (RM75 joint1..joint7): forward kinematics gives the robot EE pose at
  engage (right_hand_ee_link, with ``hand_mount_xyz/rpy`` as ik_node uses);
- ``/teleop/hand/joint_commands`` (sensor_msgs/JointState; remap the retarget node's output
  here) when ``gate_hand_commands`` is true.

Publishes ``/arm/target_pose`` (PoseStamped in ``base_frame``, stamped with the keypoints'
image stamp; ik_node turns it into joint commands) and, gated, ``/hand/joint_commands``.

The clutch (teleop/wrist_mapping.py): the deadman pressed with a hand in view and a fresh
joint state engages (anchors the wrist pose and the EE pose); every tracked frame then
publishes a target; deadman released, hand not seen for ``hand_timeout_s`` or a stale joint
state disengage, and nothing is published: the controllers' watchdogs hold the robot. The next
engage re-anchors, so the robot never jumps to where the hand went meanwhile. /diagnostics:
engaged or not, why not, counters, clamps.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from typing import Any

import numpy as np
import pinocchio as pin
from geometry_msgs.msg import PoseStamped
from human_video_policy_msgs.msg import HandKeypoints
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from human_video_policy.camera.pinhole import IDENTITY_POSE_PARAM, CameraExtrinsics
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.wrist_pose import wrist_pose_from_keypoints
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import hands_from_msg, joint_state_to_numpy
from human_video_policy.nodes.qos import RELIABLE, SENSOR_DATA
from human_video_policy.robots.rm75 import BASE_FRAME, EE_FRAME, RM75_ARM_JOINTS, HandMount
from human_video_policy.teleop.wrist_mapping import WristClutch, WristTeleopConfig
from human_video_policy.validation import check_choice, check_float_list, check_range


class WristTeleopNode(HvpNode):
    """Tracked wrist + deadman -> EE targets (and gated finger commands); see the module doc."""

    default_name = "wrist_teleop"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        p = self.param
        self.handedness = p(
            "handedness",
            "right",
            "The operator's hand that drives the arm: 'right' or 'left' (anatomical).",
            lambda n, v: check_choice(n, v, ("right", "left")),
        )
        self.min_confidence = p(
            "min_confidence",
            0.5,
            "Ignore hands whose detection confidence is below this (0..1).",
            lambda n, v: check_range(n, v, 0.0, 1.0),
        )
        self.deadman_timeout_s = p(
            "deadman_timeout_s",
            0.25,
            "Each /teleop/enable true holds the deadman this long (s, steady clock).",
            lambda n, v: check_range(n, v, 0.02, 2.0),
        )
        self.hand_timeout_s = p(
            "hand_timeout_s",
            0.3,
            "No usable hand for this long disengages the clutch (s); it re-anchors on return.",
            lambda n, v: check_range(n, v, 0.02, 5.0),
        )
        self.max_state_age_s = p(
            "max_joint_state_age_s",
            0.5,
            "Engage only with an /arm/joint_states this recent; older disengages (s, steady).",
            lambda n, v: check_range(n, v, 0.01, 60.0),
        )
        self.base_frame = p("base_frame", BASE_FRAME, "frame_id of the published targets.")
        T_base_camera = p(
            "camera_extrinsic",
            list(IDENTITY_POSE_PARAM),
            "Camera optical frame in the base frame: [x, y, z (m), qx, qy, qz, qw] (only the "
            "rotation matters: the mapping moves the EE by rotated deltas).",
            lambda n, v: CameraExtrinsics.from_param(n, v).matrix,
        )
        mount = HandMount(
            xyz=tuple(
                p(
                    "hand_mount_xyz",
                    [0.0, 0.0, 0.0],
                    "Hand wrist flange position in Link7 (m); the same as ik_node's.",
                    lambda n, v: check_float_list(n, v, 3),
                )
            ),
            rpy=tuple(
                p(
                    "hand_mount_rpy",
                    [math.pi, 0.0, 0.0],
                    "Hand wrist flange orientation in Link7, roll-pitch-yaw (rad); as ik_node's.",
                    lambda n, v: check_float_list(n, v, 3),
                )
            ),
        )
        self.gate_hand = p(
            "gate_hand_commands",
            True,
            "Forward /teleop/hand/joint_commands to /hand/joint_commands only while the "
            "deadman is held.",
        )
        try:
            config = WristTeleopConfig(
                R_base_camera=T_base_camera[:3, :3],
                translation_scale=p("translation_scale", 1.0, "Robot m per human m (0..5]."),
                rotation_scale=p("rotation_scale", 1.0, "Fraction of the wrist rotation (0..2)."),
                mirror=p("mirror", False, "Reflect motion left-right (camera facing operator)."),
                smoothing=p("smoothing", 0.5, "Low-pass weight of the newest frame, (0, 1]."),
                max_step_m=p("max_step_m", 0.02, "Largest target translation per frame (m)."),
                max_step_rad=p("max_step_rad", 0.1, "Largest target rotation per frame (rad)."),
                workspace_min=tuple(
                    p("workspace_min", [0.1, -0.5, 0.08], "Target box lower corner, base (m).")
                ),
                workspace_max=tuple(
                    p("workspace_max", [0.7, 0.5, 0.8], "Target box upper corner, base (m).")
                ),
            )
        except ConfigError as exc:
            raise ConfigError(f"parameter {exc}") from None
        self.clutch = WristClutch(config)
        from human_video_policy.kinematics.robots import rm75_xhand_forward_kinematics

        self._fk = rm75_xhand_forward_kinematics(mount)

        self._target_pub = self.create_publisher(PoseStamped, "/arm/target_pose", RELIABLE)
        self._hand_pub = self.create_publisher(JointState, "/hand/joint_commands", RELIABLE)
        self.create_subscription(HandKeypoints, "/hand/keypoints", self._on_keypoints, SENSOR_DATA)
        self.create_subscription(Bool, "/teleop/enable", self._on_enable, RELIABLE)
        self.create_subscription(JointState, "/arm/joint_states", self._on_joint_state, RELIABLE)
        if self.gate_hand:
            self.create_subscription(
                JointState, "/teleop/hand/joint_commands", self._on_hand_command, RELIABLE
            )
        self._deadman_until = -math.inf
        self._q: np.ndarray | None = None
        self._q_time = -math.inf
        self._last_hand_time = -math.inf
        self._was_enabled = False
        self.targets = 0
        self.hand_forwarded = 0
        self.hand_held_back = 0
        self.skipped: Counter[str] = Counter()
        self._why_not = "deadman not held"
        self._rate = RateMeter()
        self.create_wall_timer(0.02, self._check_deadman)
        self.enable_diagnostics()
        self.get_logger().info(
            f"wrist teleop of the {self.handedness} hand -> {EE_FRAME} targets in "
            f"{self.base_frame!r}; deadman {self.topic('/teleop/enable')}, held "
            f"{self.deadman_timeout_s:g} s "
            "per message"
        )

    # -- deadman -------------------------------------------------------------------------------
    def deadman_held(self) -> bool:
        return time.monotonic() < self._deadman_until

    def _on_enable(self, msg: Bool) -> None:
        if msg.data:
            self._deadman_until = time.monotonic() + self.deadman_timeout_s
        else:
            self._deadman_until = -math.inf
            self._check_deadman()

    def _check_deadman(self) -> None:
        held = self.deadman_held()
        if held != self._was_enabled:
            self.get_logger().info("deadman held" if held else "deadman released: robot holds")
            self._was_enabled = held
        if not held:
            self._disengage("deadman not held")
        elif self.clutch.engaged:
            now = time.monotonic()
            if now - self._last_hand_time > self.hand_timeout_s:
                self._disengage(f"no {self.handedness} hand for {self.hand_timeout_s:g} s")
            elif now - self._q_time > self.max_state_age_s:
                self._disengage("/arm/joint_states stale: is the arm controller running?")

    def _disengage(self, why: str) -> None:
        if self.clutch.engaged:
            self.clutch.disengage()
            self.get_logger().info(f"clutch disengaged: {why}")
        self._why_not = why

    # -- inputs --------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self._q = joint_state_to_numpy(msg, RM75_ARM_JOINTS)
            self._q_time = time.monotonic()
        except InputError as exc:
            self._q = None
            self.skipped["bad_joint_state"] += 1
            self.get_logger().warning(f"invalid joint state: {exc}", throttle_duration_sec=2.0)

    def _on_hand_command(self, msg: JointState) -> None:
        if self.deadman_held():
            self._hand_pub.publish(msg)
            self.hand_forwarded += 1
        else:
            self.hand_held_back += 1

    def _skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def _on_keypoints(self, msg: HandKeypoints) -> None:
        if not self.deadman_held():
            self._skip("deadman_not_held")
            return
        try:
            hands = hands_from_msg(msg)
        except InputError as exc:
            self._skip("malformed")
            self.get_logger().warning(f"malformed keypoints: {exc}", throttle_duration_sec=2.0)
            return
        candidates = [
            h
            for h in hands
            if h.handedness == self.handedness and h.confidence >= self.min_confidence
        ]
        if not candidates or not max(candidates, key=lambda h: h.confidence).has_3d:
            self._skip("no_hand")
            return
        hand = max(candidates, key=lambda h: h.confidence)
        try:
            R, p = wrist_pose_from_keypoints(hand.keypoints_3d, self.handedness)
        except InputError:
            self._skip("degenerate_hand")
            return
        self._last_hand_time = time.monotonic()
        if not self.clutch.engaged and not self._engage(R, p):
            return
        target = self.clutch.update(R, p)
        self._publish(target, msg)

    def _engage(self, R: np.ndarray, p: np.ndarray) -> bool:
        age = time.monotonic() - self._q_time
        if self._q is None or age > self.max_state_age_s:
            self._skip("no_joint_state")
            self._why_not = "no fresh /arm/joint_states"
            return False
        T_ee = self._fk.frame_pose(dict(zip(RM75_ARM_JOINTS, self._q, strict=True)), EE_FRAME)
        try:
            self.clutch.engage(R, p, T_ee)
        except InputError as exc:
            self._skip("engage_refused")
            self._why_not = str(exc)
            self.get_logger().warning(f"cannot engage: {exc}", throttle_duration_sec=2.0)
            return False
        self.get_logger().info(f"clutch engaged at EE {np.round(T_ee[:3, 3], 3).tolist()} m")
        self._why_not = ""
        return True

    def _publish(self, T: np.ndarray, source: HandKeypoints) -> None:
        msg = PoseStamped()
        msg.header.stamp = source.header.stamp
        msg.header.frame_id = self.base_frame
        x, y, z = (float(v) for v in T[:3, 3])
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
        qx, qy, qz, qw = (float(v) for v in pin.Quaternion(T[:3, :3]).coeffs())
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = qx, qy, qz, qw
        self._target_pub.publish(msg)
        self.targets += 1
        self._rate.tick()

    def diagnostics_report(self) -> DiagnosticsReport:
        values: dict[str, Any] = {
            "deadman_held": self.deadman_held(),
            "engaged": self.clutch.engaged,
            "engagements": self.clutch.engagements,
            "targets": self.targets,
            "target_rate_hz_wall": self._rate.rate_hz,
            "position_clamps": self.clutch.position_clamps,
            "step_limited": self.clutch.step_limited,
            "hand_commands_forwarded": self.hand_forwarded,
            "hand_commands_held_back": self.hand_held_back,
            **{f"skipped_{k}": v for k, v in sorted(self.skipped.items())},
        }
        if self.clutch.engaged:
            return DiagnosticsReport(Level.OK, "engaged: teleoperating", values)
        return DiagnosticsReport(Level.OK, f"not engaged: {self._why_not}", values)


def main(args: list[str] | None = None) -> int:
    return run_node(WristTeleopNode, args)


if __name__ == "__main__":
    sys.exit(main())
