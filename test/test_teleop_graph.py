"""The real teleop_rm75_xhand graph, started with `hvp launch`, driven by the real hand video.

Every node is the real one as a separate process over DDS: camera_node plays a 320x180 copy of
the dexret hand video (re-encoded by ffmpeg into tmp: 720p rgb8 over DDS loses most frames,
docs/hand_lifting.md), MediaPipe tracks the hand, the retarget node and the clutched wrist
mapping drive the XHand and (through IK) the RM75 in their MuJoCo controllers. The test holds
the deadman itself by publishing /teleop/enable at 20 Hz, and checks from outside:

- without the deadman nothing moves: no target, no hand command, still joints (while the
  tracker and the retargeter are demonstrably working upstream of the gate);
- with it: /arm/target_pose and /hand/joint_commands flow, the arm's EE moves (non-zero and
  bounded displacement, inside the teleop workspace), the hand's joint states follow the
  retargeted commands;
- after the deadman stops, both streams stop within deadman_timeout_s (+ delivery slack) and
  the arm comes to rest;
- SIGINT to the launcher ends the graph with exit code 0.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import SHARED_DATA
from geometry_msgs.msg import PoseStamped
from human_video_policy_msgs.msg import HandKeypoints
from ros_helpers import PROJECT_ROOT, RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from human_video_policy.kinematics.robots import rm75_xhand_forward_kinematics
from human_video_policy.nodes.conversions import joint_state_to_numpy, numpy_to_joint_state
from human_video_policy.nodes.qos import SENSOR_DATA
from human_video_policy.robots.rm75 import EE_FRAME, RM75_ARM_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

VIDEO = SHARED_DATA / "human_video" / "dexret_hand" / "human_hand_video.mp4"
DEADMAN_TIMEOUT_S = 0.25  # config/teleop.params.yaml, wrist_teleop
DELIVERY_SLACK_S = 0.35  # a tracked frame in flight when the deadman lapses, on 2 busy cores
WORKSPACE_MIN, WORKSPACE_MAX = np.array([0.1, -0.5, 0.08]), np.array([0.7, 0.5, 0.8])


def _small_clip(tmp_path: Path) -> Path:
    assert VIDEO.is_file(), f"shared test data missing: {VIDEO} (see ../shared/data/SOURCES.md)"
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "the ffmpeg CLI is needed to make the 320x180 clip"
    clip = tmp_path / "hand_320x180.mp4"
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(VIDEO),
            "-vf",
            "scale=320:180",
            "-an",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(clip),
        ],
        check=True,
        timeout=60,
    )
    return clip


def _positions(recording, names) -> np.ndarray:
    return np.array([joint_state_to_numpy(m, names) for m in recording.messages()])


def test_teleop_graph_moves_the_robot_only_while_the_deadman_is_held(tmp_path: Path) -> None:
    clip = _small_clip(tmp_path)
    command = [sys.executable, "-m", "human_video_policy.cli.main", "launch", "teleop_rm75_xhand"]
    command += [
        "camera_source:=video",
        f"video_path:={clip}",
        "video_rate_hz:=15.0",
        "robot_view_rate_hz:=1.0",
    ]
    fk = rm75_xhand_forward_kinematics()

    def ee(q: np.ndarray) -> np.ndarray:
        return fk.frame_position(dict(zip(RM75_ARM_JOINTS, q, strict=True)), EE_FRAME)

    with RosProbe("probe_teleop_graph") as probe:
        keypoints = probe.record("/hand/keypoints", HandKeypoints, SENSOR_DATA)
        retargeted = probe.record("/teleop/hand/joint_commands", JointState)
        hand_commands = probe.record("/hand/joint_commands", JointState)
        targets = probe.record("/arm/target_pose", PoseStamped)
        arm_commands = probe.record("/arm/joint_commands", JointState)
        arm_states = probe.record("/arm/joint_states", JointState)
        hand_states = probe.record("/hand/joint_states", JointState)
        enable = probe.publisher("/teleop/enable", Bool)
        with start_process(command) as launcher:
            # Phase 1: the pipeline runs, the deadman is not held.
            assert wait_for(lambda: len(retargeted) >= 10 and len(arm_states) > 0, 60.0), (
                launcher.output()[-4000:]
            )
            assert probe.wait_for_subscribers(enable, 1), "wrist_teleop never subscribed"
            arm_states.clear()
            time.sleep(2.0)
            assert len(targets) == 0 and len(hand_commands) == 0 and len(arm_commands) == 0
            still = _positions(arm_states, RM75_ARM_JOINTS)
            assert len(still) > 50
            assert np.abs(still - still[0]).max() < 1e-3, "the arm moved without the deadman"
            rest_ee = ee(still[-1])
            hand_before = _positions(hand_states, XHAND_JOINTS)[-1]

            # Phase 2: hold the deadman for 8 s, as a pedal would (20 Hz).
            held_at = time.monotonic()
            while time.monotonic() - held_at < 8.0:
                enable.publish(Bool(data=True))
                time.sleep(0.05)
            released_at = time.monotonic()
            n_targets, n_hand = len(targets), len(hand_commands)
            assert n_targets >= 20, f"only {n_targets} targets in 8 s\n{launcher.output()[-4000:]}"
            assert n_hand >= 20, f"only {n_hand} hand commands in 8 s"
            # Position-first IK (ik_relaxed_orientation_max_rad 0.8): targets whose orientation
            # the wrist cannot reach still become commands (strict IK refused 66 % of them,
            # benchmarks/teleop_ik_session.py).
            assert len(arm_commands) >= 0.9 * n_targets, (
                f"ik sent {len(arm_commands)} commands for {n_targets} targets\n"
                + launcher.output()[-4000:]
            )
            poses = np.array(
                [
                    [m.pose.position.x, m.pose.position.y, m.pose.position.z]
                    for m in targets.messages()
                ]
            )
            assert np.all(poses >= WORKSPACE_MIN - 1e-9) and np.all(poses <= WORKSPACE_MAX + 1e-9)
            assert {m.header.frame_id for m in targets.messages()} == {"base_link"}
            moving = _positions(arm_states, RM75_ARM_JOINTS)
            path = np.array([ee(q) for q in moving[::10]])
            displacement = np.linalg.norm(path - rest_ee, axis=1).max()
            assert 0.005 < displacement < 0.5, f"EE displacement {displacement:.4f} m"
            # The hand followed the retargeted (gated) commands: once the last one in flight has
            # arrived (deadman timeout + delivery slack), the hand settles on it (sim servos:
            # 0.3 s for a 0.3 rad step, drivers/sim.py).
            time.sleep(DEADMAN_TIMEOUT_S + DELIVERY_SLACK_S + 0.5)
            last_command = joint_state_to_numpy(hand_commands.messages()[-1], XHAND_JOINTS)
            hand_after = _positions(hand_states, XHAND_JOINTS)[-1]
            assert np.abs(hand_after - hand_before).max() > 0.05, "the hand did not move"
            assert np.abs(hand_after - last_command).max() < 0.1, (hand_after, last_command)

            # Phase 3: released -> both streams stopped within the deadman timeout.
            time.sleep(0.4)
            late = released_at + DEADMAN_TIMEOUT_S + DELIVERY_SLACK_S
            assert not [t for t, _ in targets.items() if t > late], "targets after the release"
            assert not [t for t, _ in hand_commands.items() if t > late], "hand commands after"
            assert len(keypoints) > 0 and retargeted.since(late), "upstream stopped instead"
            arm_states.clear()
            time.sleep(1.0)
            resting = _positions(arm_states, RM75_ARM_JOINTS)
            assert np.abs(resting - resting[0]).max() < 2e-3, "the arm kept moving after release"

            launcher.send_signal(signal.SIGINT)
            assert launcher.wait(30.0) == 0, launcher.output()[-4000:]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["camera_extrinsic:=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]"], "camera_extrinsic=.* norm"),
        (["workspace_max:=[0.1, 0.5, 0.8]"], "workspace_max=\\[0.1, 0.5, 0.8\\] is invalid"),
        (["smoothing:=0.0"], "smoothing=0.0 is invalid"),
        (["handedness:=both"], "handedness='both' is invalid"),
    ],
)
def test_wrist_teleop_rejects_bad_parameters_with_exit_2(params: list[str], message: str) -> None:
    args = [x for p in params for x in ("-p", p)]
    with start_process(node_command("wrist_teleop_node", *args)) as process:
        assert process.wait(30.0) == 2, process.output()
        assert re.search(message, process.output()), process.output()


def test_wrist_teleop_node_clutch_over_dds_is_exact_and_re_anchors(tmp_path: Path) -> None:
    """wrist_teleop_node alone, fed synthetic keypoints (a real hand posture from the shared
    data, shifted by known amounts) and joint states: targets are exactly the clutch formula."""
    from human_video_policy.kinematics.inverse import pose_from_position_quaternion
    from human_video_policy.nodes.conversions import hand_keypoints_to_msg, hand_to_msg
    from human_video_policy.robots.rm75 import HOME_ARM_POSITION

    posture = np.load(SHARED_DATA / "human_video" / "dexret_hand" / "human_joint_right.npy")[0]
    base_kp = posture.astype(np.float64) + np.array([0.0, 0.0, 0.6])
    params = PROJECT_ROOT / "config" / "teleop.params.yaml"
    extrinsic = yaml.safe_load(params.read_text())["wrist_teleop"]["ros__parameters"]
    R_bc = pose_from_position_quaternion(
        extrinsic["camera_extrinsic"][:3], extrinsic["camera_extrinsic"][3:]
    )[:3, :3]
    fk = rm75_xhand_forward_kinematics()
    ee0 = fk.frame_position(dict(zip(RM75_ARM_JOINTS, HOME_ARM_POSITION, strict=True)), EE_FRAME)
    command = node_command(
        "wrist_teleop_node",
        "-r",
        "__node:=wrist_teleop",
        "--params-file",
        str(params),
        "-p",
        "smoothing:=1.0",
        "-p",
        "max_step_m:=1.0",
    )
    with RosProbe("probe_wrist_teleop") as probe:
        targets = probe.record("/arm/target_pose", PoseStamped)
        forwarded = probe.record("/hand/joint_commands", JointState)
        keypoints_pub = probe.publisher("/hand/keypoints", HandKeypoints)
        states_pub = probe.publisher("/arm/joint_states", JointState)
        hand_pub = probe.publisher("/teleop/hand/joint_commands", JointState)
        enable = probe.publisher("/teleop/enable", Bool)
        state = {"shift": np.zeros(3), "hand": True, "deadman": False}

        def tick() -> None:
            now = probe.node.get_clock().now().to_msg()
            states_pub.publish(numpy_to_joint_state(RM75_ARM_JOINTS, HOME_ARM_POSITION, now))
            if state["deadman"]:
                enable.publish(Bool(data=True))
            if state["hand"]:
                kp = base_kp + state["shift"]
                hand = hand_to_msg("right", 0.9, np.zeros((21, 2)), kp)
                keypoints_pub.publish(hand_keypoints_to_msg([hand], now, "cam", 320, 180))
                hand_pub.publish(numpy_to_joint_state(XHAND_JOINTS, np.zeros(12), now))

        with start_process(command) as node:
            assert probe.wait_for_subscribers(keypoints_pub, 1, 20.0), node.output()
            assert probe.wait_for_subscribers(enable, 1) and probe.wait_for_subscribers(hand_pub)
            probe.node.create_timer(0.04, tick)
            time.sleep(1.0)
            assert len(targets) == 0 and len(forwarded) == 0, "output without the deadman"

            def position(msg: PoseStamped) -> np.ndarray:
                p = msg.pose.position
                return np.array([p.x, p.y, p.z])

            state["deadman"] = True
            assert wait_for(lambda: len(targets) >= 5, 5.0), node.output()
            np.testing.assert_allclose(position(targets.messages()[-1]), ee0, atol=1e-6)
            d = np.array([0.05, -0.02, 0.0])  # camera frame: 5 cm right, 2 cm up
            state["shift"] = d
            time.sleep(0.5)
            expected = ee0 + R_bc @ d
            np.testing.assert_allclose(position(targets.messages()[-1]), expected, atol=1e-5)
            assert len(forwarded) > 5, "finger commands were not forwarded with the deadman"

            # Hand lost while the deadman is held: the clutch lets go; the hand comes back
            # 10 cm further left: the robot continues from where it is, no jump.
            state["hand"] = False
            time.sleep(0.6)
            state["shift"] = d + np.array([-0.1, 0.0, 0.0])
            n = len(targets)
            state["hand"] = True
            assert wait_for(lambda: len(targets) > n + 3, 5.0)
            np.testing.assert_allclose(position(targets.messages()[n]), ee0, atol=1e-6)

            state["deadman"] = False
            released = time.monotonic()
            time.sleep(1.0)
            late = released + DEADMAN_TIMEOUT_S + DELIVERY_SLACK_S
            assert not [t for t, _ in targets.items() if t > late], "targets after the release"
            assert not [t for t, _ in forwarded.items() if t > late], "fingers after the release"
            node.send_signal(signal.SIGINT)
            assert node.wait(20.0) == 0, node.output()
