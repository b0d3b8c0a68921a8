"""Live retargeting: /hand/keypoints (human hand) -> /hand/joint_commands (XHand joints).

Subscribes human_video_policy_msgs/HandKeypoints (from hand_tracker_node), picks the most
confident hand of the configured handedness, retargets its metric 3D keypoints with
:class:`retargeting.XHandRetargeter` (warm-started from the previous frame, so the output is
temporally smooth and bounded per frame) and publishes a sensor_msgs/JointState with the 12
XHand joints in the real hand's order, stamped with the source image's stamp. The hand
controller's safety layer still limits whatever this node sends.

``mode: widowx_gripper`` instead maps the thumb-index pinch distance to the WidowX gripper
(``left_finger``, metres) on /gripper/joint_commands, as RAD does.

Nothing is published for a frame without a usable hand (none of that handedness, confidence
below ``min_confidence``, no metric 3D keypoints, stale, malformed): the controller's watchdog
then holds position. Every such frame is counted on /diagnostics by reason.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any

import numpy as np
from human_video_policy_msgs.msg import HandKeypoints
from sensor_msgs.msg import JointState

from human_video_policy.errors import ConfigError, HvpError, InputError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import (
    hands_from_msg,
    numpy_to_joint_state,
    stamp_to_seconds,
)
from human_video_policy.nodes.qos import RELIABLE, SENSOR_DATA
from human_video_policy.validation import check_choice, check_range

MODES = ("xhand", "widowx_gripper")


class RetargetNode(HvpNode):
    """HandKeypoints -> XHand (or WidowX gripper) joint commands; see the module docstring."""

    default_name = "retarget"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        self.mode = self.param(
            "mode",
            "xhand",
            f"What the hand drives: one of {list(MODES)}.",
            lambda n, v: check_choice(n, v, MODES),
        )
        self.handedness = self.param(
            "handedness",
            "right",
            "Which human hand drives the robot: 'right' or 'left' (anatomical).",
            lambda n, v: check_choice(n, v, ("right", "left")),
        )
        self.min_confidence = self.param(
            "min_confidence",
            0.5,
            "Ignore hands whose detection confidence is below this (0..1).",
            lambda n, v: check_range(n, v, 0.0, 1.0),
        )
        self.max_input_age_s = self.param(
            "max_input_age_s",
            0.3,
            "Ignore keypoints whose image is older than this on arrival (s); 0 = off.",
            lambda n, v: check_range(n, v, 0.0, 60.0),
        )
        config_path = self.param(
            "config_path",
            "",
            "Retargeting YAML (see config/retarget_xhand.yaml); empty = the project's defaults.",
        )
        self._retargeter = None
        self._gripper = None
        try:
            if self.mode == "xhand":
                from human_video_policy.retargeting import XHandRetargeter
                from human_video_policy.robots.xhand import XHAND_JOINTS

                self._retargeter = (
                    XHandRetargeter.from_yaml(config_path) if config_path else XHandRetargeter()
                )
                self.joint_names: tuple[str, ...] = tuple(XHAND_JOINTS)
                topic = "/hand/joint_commands"
            else:
                from human_video_policy.retargeting.gripper import GripperMapping

                self._gripper = GripperMapping()
                self.joint_names = ("left_finger",)
                topic = "/gripper/joint_commands"
        except (OSError, HvpError) as exc:
            raise ConfigError(f"retarget: cannot set up {self.mode} retargeting: {exc}") from exc
        self._pub = self.create_publisher(JointState, topic, RELIABLE)
        keypoints = self.create_subscription(
            HandKeypoints, "/hand/keypoints", self._on_keypoints, SENSOR_DATA
        )
        self.skipped: Counter[str] = Counter()
        self.commands = 0
        self._rate = RateMeter()
        self._solve_ms: list[float] = []
        self.enable_diagnostics()
        self.get_logger().info(
            f"retargeting the {self.handedness} hand from {keypoints.topic_name} to "
            f"{self.mode} on {self._pub.topic_name} "
            f"({len(self.joint_names)} joints)"
        )

    def _skip(self, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        if detail:
            self.get_logger().warning(f"{reason}: {detail}", throttle_duration_sec=2.0)

    def _on_keypoints(self, msg: HandKeypoints) -> None:
        if self.max_input_age_s > 0.0:
            age = self.now_s() - stamp_to_seconds(msg.header.stamp)
            if age > self.max_input_age_s:
                self._skip("stale", f"keypoints {age:.3f} s old (> {self.max_input_age_s} s)")
                return
        try:
            hands = hands_from_msg(msg)
        except InputError as exc:
            self._skip("malformed", str(exc))
            return
        candidates = [h for h in hands if h.handedness == self.handedness]
        if not candidates:
            self._skip("no_hand")
            return
        hand = max(candidates, key=lambda h: h.confidence)
        if hand.confidence < self.min_confidence:
            self._skip("low_confidence")
            return
        if not hand.has_3d:
            self._skip("no_3d", "the tracker sent no metric 3D keypoints")
            return
        started = time.perf_counter()
        try:
            if self._retargeter is not None:
                q = self._retargeter.retarget_frame(hand.keypoints_3d, self.handedness)
            else:
                q = np.atleast_1d(self._gripper.opening_from_keypoints(hand.keypoints_3d))
        except InputError as exc:
            self._skip("retarget_failed", str(exc))
            return
        self._solve_ms.append(1e3 * (time.perf_counter() - started))
        del self._solve_ms[:-200]
        self._pub.publish(numpy_to_joint_state(self.joint_names, q, msg.header.stamp))
        self.commands += 1
        self._rate.tick()

    def diagnostics_report(self) -> DiagnosticsReport:
        values: dict[str, Any] = {
            "commands": self.commands,
            "command_rate_hz_wall": self._rate.rate_hz,
            "solve_ms_median": float(np.median(self._solve_ms)) if self._solve_ms else float("nan"),
            **{f"skipped_{k}": v for k, v in sorted(self.skipped.items())},
        }
        if self.commands == 0:
            return DiagnosticsReport(Level.WARN, "waiting for a usable hand", values)
        return DiagnosticsReport(Level.OK, "running", values)


def main(args: list[str] | None = None) -> int:
    return run_node(RetargetNode, args)


if __name__ == "__main__":
    sys.exit(main())
