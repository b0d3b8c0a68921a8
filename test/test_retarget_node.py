"""retarget_node as a real process over DDS: real hand keypoints in, XHand joints out."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from hand_fixtures import DATA_RIGHT
from human_video_policy_msgs.msg import HandKeypoints
from ros_helpers import RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import JointState

from human_video_policy.nodes.conversions import (
    hand_keypoints_to_msg,
    hand_to_msg,
    seconds_to_stamp,
    stamp_to_seconds,
)
from human_video_policy.nodes.qos import RELIABLE, SENSOR_DATA
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits

pytestmark = pytest.mark.ros

FRAMES = 30


def _camera_frame_keypoints() -> np.ndarray:
    """Real wrist-relative keypoints (first FRAMES frames) placed 0.5 m in front of a camera,
    rotated, and rounded to float32 as the message carries them."""
    kp = np.load(DATA_RIGHT)[:FRAMES].astype(np.float64)
    angle = 0.7
    R = np.array(
        [[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]]
    )
    return (kp @ R.T + np.array([0.05, -0.02, 0.5])).astype(np.float32).astype(np.float64)


def _diag(recording, key: str) -> int:
    for msg in reversed(recording.messages()):
        for status in msg.status:
            if status.name.endswith("retarget"):
                for kv in status.values:
                    if kv.key == key:
                        return int(kv.value)
                return 0
    return -1


def _msg(probe, kp3d, handedness="right", stamp_s=None, confidence=0.9) -> HandKeypoints:
    stamp = probe.node.get_clock().now().to_msg() if stamp_s is None else seconds_to_stamp(stamp_s)
    hand = hand_to_msg(handedness, confidence, np.zeros((21, 2)), kp3d)
    return hand_keypoints_to_msg([hand], stamp, "camera_color_optical_frame", 1280, 720)


def test_retarget_node_matches_in_process_retargeting_and_refuses_bad_hands() -> None:
    from human_video_policy.retargeting import XHandRetargeter

    frames = _camera_frame_keypoints()
    expected = XHandRetargeter().retarget_sequence(frames, "right").joints
    limits = xhand_joint_limits()
    with RosProbe("retarget_probe") as probe:
        commands = probe.record("/hand/joint_commands", JointState, RELIABLE)
        diagnostics = probe.record("/diagnostics", DiagnosticArray, RELIABLE)
        pub = probe.publisher("/hand/keypoints", HandKeypoints, SENSOR_DATA)
        with start_process(node_command("retarget_node")) as node:
            assert probe.wait_for_subscribers(pub, timeout=20.0), node.output()
            got = []
            for kp in frames:
                want = len(commands) + 1
                for _ in range(3):  # sensor-data QoS is best effort: resend a lost frame
                    msg = _msg(probe, kp)  # fresh stamp, or the node would call it stale
                    stamp = stamp_to_seconds(msg.header.stamp)
                    pub.publish(msg)
                    if wait_for(lambda w=want: len(commands) >= w, timeout=1.0):
                        break
                assert len(commands) >= want, node.output()[-3000:]
                out = commands.messages()[-1]
                assert stamp_to_seconds(out.header.stamp) == pytest.approx(stamp, abs=1e-9)
                assert tuple(out.name) == XHAND_JOINTS
                got.append(np.array(out.position))
            got = np.array(got)
            # Same frames, same warm-start sequence -> the same joints as in process.
            np.testing.assert_allclose(got, expected, atol=1e-4)
            assert (got >= limits.lower - 1e-9).all() and (got <= limits.upper + 1e-9).all()

            sent = len(commands)
            bad = frames[0].copy()
            bad[3, 1] = np.nan
            pub.publish(_msg(probe, bad))  # partly NaN: malformed
            pub.publish(_msg(probe, frames[0], handedness="left"))  # wrong hand
            pub.publish(_msg(probe, None))  # no metric 3D
            pub.publish(_msg(probe, frames[0], stamp_s=time.time() - 5.0))  # stale
            pub.publish(_msg(probe, frames[0], confidence=0.1))  # low confidence
            for key in (
                "skipped_malformed",
                "skipped_no_hand",
                "skipped_no_3d",
                "skipped_stale",
                "skipped_low_confidence",
            ):
                assert wait_for(lambda k=key: _diag(diagnostics, k) >= 1, timeout=10.0), (
                    key,
                    node.output()[-2000:],
                )
            assert len(commands) == sent, "a bad hand produced a joint command"
            assert node.stop() == 0, node.output()
