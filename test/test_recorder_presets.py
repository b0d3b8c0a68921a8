"""``hvp record`` over real DDS, as a lab records a graph: ``--preset GRAPH`` records exactly
what ``hvp dataset from-bags --preset GRAPH`` needs, images compressed the way image_transport
does it, a topic that never arrived named at the episode's end, ``--episodes N`` without a stub
bag; and on the real sim with ``--use-sim-time``, episodes on sim time with the sim's outcome.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from ros_helpers import PeriodicThread, RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, UInt32
from std_srvs.srv import Trigger
from test_demo_round_trip import hvp

from human_video_policy.data.bag_repair import read_custom_data
from human_video_policy.data.bag_to_dataset import (
    BagConversionConfig,
    conversion_preset,
    convert_bags,
    recording_topics,
)
from human_video_policy.data.bags import BagReader
from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.data.human_episodes import DEFAULT_CAMERA_KEY
from human_video_policy.data.recorder import MARKER_TOPICS
from human_video_policy.nodes.conversions import numpy_to_joint_state
from human_video_policy.nodes.qos import RELIABLE, SENSOR_DATA
from human_video_policy.robots.rm75 import RM75_ARM_JOINTS
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

ROBOT_VIEW = "/robot_view/camera/color/image_raw"  # config/datasets/teleop_rm75_xhand.yaml
DEPTH = "/robot_view/camera/aligned_depth_to_color/image_raw"  # --topics besides the preset
OPERATOR = "/camera/camera/color/image_raw"  # published, but not in the preset
H, W = 48, 64


def _stamp(ns: int):  # type: ignore[no-untyped-def]
    msg = Image().header.stamp
    msg.sec, msg.nanosec = ns // 10**9, ns % 10**9
    return msg


class _TeleopGraph(PeriodicThread):
    """What the teleop graph publishes, at 50 Hz (cameras every 3rd tick), freshly stamped:
    arm and hand joint states and commands, the robot view (rgb8) with its camera_info and
    aligned depth (16UC1), and the operator's camera (not in the preset)."""

    def __init__(self, probe: RosProbe) -> None:
        super().__init__(0.02)
        pub = probe.publisher
        self.joints = {
            topic: pub(topic, JointState, RELIABLE)
            for topic in (
                "/arm/joint_states",
                "/arm/joint_commands",
                "/hand/joint_states",
                "/hand/joint_commands",
            )
        }
        self.view = pub(ROBOT_VIEW, Image, SENSOR_DATA)
        self.info = pub("/robot_view/camera/color/camera_info", CameraInfo, SENSOR_DATA)
        self.depth = pub(DEPTH, Image, SENSOR_DATA)
        self.operator = pub(OPERATOR, Image, SENSOR_DATA)
        self.hand_commands = True  # False: /hand/joint_commands goes quiet
        self.sent_depth: dict[int, np.ndarray] = {}
        self._tick = 0
        self._lock = threading.Lock()

    def step(self) -> None:
        ns = time.time_ns()
        t = ns * 1e-9
        stamp = _stamp(ns)
        for topic, pub in self.joints.items():
            if topic == "/hand/joint_commands" and not self.hand_commands:
                continue
            names = RM75_ARM_JOINTS if topic.startswith("/arm") else XHAND_JOINTS
            q = 0.3 + 0.2 * np.sin(t + np.arange(len(names)))
            pub.publish(numpy_to_joint_state(names, q, stamp))
        self._tick += 1
        if self._tick % 3:
            return
        yy, xx = np.mgrid[0:H, 0:W]
        rgb = np.dstack([(xx * 4 + self._tick) % 256, yy * 5, np.full_like(xx, 90)])
        for pub in (self.view, self.operator):
            pub.publish(_image(rgb.astype(np.uint8), "rgb8", stamp))
        depth = (500 + 7 * xx + 3 * yy + self._tick).astype(np.uint16)  # mm
        with self._lock:
            self.sent_depth[ns] = depth
        self.depth.publish(_image(depth, "16UC1", stamp))
        info = CameraInfo()
        info.header.stamp, info.width, info.height = stamp, W, H
        info.k = [50.0, 0.0, W / 2, 0.0, 50.0, H / 2, 0.0, 0.0, 1.0]
        self.info.publish(info)


def _image(pixels: np.ndarray, encoding: str, stamp) -> Image:  # type: ignore[no-untyped-def]
    msg = Image()
    msg.header.stamp, msg.header.frame_id = stamp, "head_camera_optical_frame"
    msg.height, msg.width = pixels.shape[:2]
    msg.encoding = encoding
    msg.step = pixels.shape[1] * (pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1))
    msg.data = np.ascontiguousarray(pixels).tobytes()
    return msg


def _header_ns(msg) -> int:  # type: ignore[no-untyped-def]
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_record_preset_gives_from_bags_what_it_needs_compressed_and_names_missing_topics(
    tmp_path: Path,
) -> None:
    """Before: no --preset (the defaults recorded /camera/color/... while the graphs publish
    /camera/camera/... and /robot_view/...), images raw (1280x720 rgb8 at 30 Hz: 921 MB in
    12 s), a missing topic went unnoticed, and --episodes 2 left a third, stub bag. The
    outcomes come as sim_node sends them (/episode/success, then /episode/start), and once
    the other way round (the recorder waits for the outcome)."""
    preset = conversion_preset("teleop_rm75_xhand")
    out = tmp_path / "rec"
    record = hvp("record", "-o", str(out), "--session", "s", "--preset", "teleop_rm75_xhand")
    record += ["--topics", DEPTH, "--instruction", "wave", "--episodes", "2"]
    wanted = [*recording_topics(preset), DEPTH]
    with RosProbe("recorder_preset") as probe, _TeleopGraph(probe) as graph:
        start = probe.publisher("/episode/start", UInt32, RELIABLE)
        outcome = probe.publisher("/episode/success", Bool, RELIABLE)
        with start_process(record) as recorder:
            assert wait_for(
                lambda: (
                    recorder.output().count("recording /") >= len(wanted)
                    and "episode 1 started" in recorder.output()
                ),
                30.0,
            ), recorder.output()
            assert probe.wait_for_subscribers(start), recorder.output()
            assert probe.wait_for_subscribers(outcome), recorder.output()
            time.sleep(1.5)  # episode 1: every topic
            graph.hand_commands = False  # episode 2: /hand/joint_commands never arrives
            outcome.publish(Bool(data=True))  # as sim_node: the outcome, then the next episode
            start.publish(UInt32(data=2))
            assert wait_for(lambda: "episode 2 started" in recorder.output(), 10), recorder.output()
            time.sleep(1.0)
            start.publish(UInt32(data=3))  # ends episode 2: the recorder is done ...
            time.sleep(0.3)
            outcome.publish(Bool(data=False))  # ... once this late outcome came
            assert recorder.wait(15.0) == 0, recorder.output()
            log = recorder.output()

    bags = sorted((out / "s").iterdir())
    assert [b.name for b in bags] == ["episode_000001", "episode_000002"], (bags, log)  # no stub
    with BagReader(bags[0]) as reader:
        recorded = {t for t in reader.topics if t not in MARKER_TOPICS}
        images = [m for _, _, m in reader.messages([ROBOT_VIEW + "/compressed"])]
        depths = [m for _, _, m in reader.messages([DEPTH + "/compressed"])]
    compressed = {ROBOT_VIEW: ROBOT_VIEW + "/compressed", DEPTH: DEPTH + "/compressed"}
    assert recorded == {compressed.get(t, t) for t in wanted}, log  # the operator camera: no
    assert images and all(m.format == "rgb8; jpeg compressed bgr8" for m in images)
    assert depths and all(m.format == "16UC1; png compressed " for m in depths)
    assert {m.header.frame_id for m in images + depths} == {"head_camera_optical_frame"}
    for msg in depths:  # lossless: the depth that was sent, to the millimetre
        got = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_UNCHANGED)
        assert got.dtype == np.uint16 and np.array_equal(got, graph.sent_depth[_header_ns(msg)])
    raw_bytes = H * W * 3
    jpeg_bytes = np.mean([len(m.data) for m in images])
    assert jpeg_bytes < raw_bytes / 3, (jpeg_bytes, raw_bytes)

    assert [read_custom_data(b)["hvp.success"] for b in bags] == ["true", "false"], log
    assert "episode 2 stopped (next episode, /episode/success: failure" in log, log
    assert "episode 2: no message on /hand/joint_commands" in log, log
    assert "episode 1: no message" not in log, log

    report = convert_bags([out / "s"], tmp_path / "ds", preset)
    assert [o.ok for o in report.outcomes] == [True, False], report.outcomes
    assert "no topic(s) ['/hand/joint_commands']" in report.outcomes[1].error
    reader = DatasetReader(tmp_path / "ds")
    assert reader.video_keys == [DEFAULT_CAMERA_KEY]  # the human datasets' key: they mix
    assert reader.info["hvp"]["cameras"][DEFAULT_CAMERA_KEY]["topic"] == ROBOT_VIEW + "/compressed"
    print(f"\nrobot view {W}x{H}: JPEG {jpeg_bytes:.0f} B per frame vs {raw_bytes} B raw")


class _Reacher(PeriodicThread):
    """Commands the sim's arm to touch the first target it sees (the reach expert's IK, 20 Hz),
    and nothing once the target changed: the first episode succeeds, the next one fails."""

    def __init__(self, probe: RosProbe) -> None:
        from human_video_policy.sim.reach_expert import ReachExpert
        from human_video_policy.sim.widowx_world import default_scene_path

        super().__init__(0.05)
        self.expert = ReachExpert(default_scene_path())
        self.commands = probe.publisher("/arm/joint_commands", JointState, RELIABLE)
        self.targets = probe.record("/sim/target_pose", PoseStamped, RELIABLE)
        self.first: np.ndarray | None = None
        self.goal: np.ndarray | None = None

    def step(self) -> None:
        messages = self.targets.messages()
        if not messages:
            return
        p = messages[-1].pose.position
        target = np.array([p.x, p.y, p.z])
        if self.first is None:
            self.first = target
            _pre, touch = self.expert.waypoints(target)
            self.goal = np.append(touch, 0.026)  # + the gripper half open
        if np.linalg.norm(target - self.first) > 1e-6 or self.goal is None:
            return  # a new episode's target: left alone
        self.commands.publish(numpy_to_joint_state(WIDOWX_COMMAND_JOINTS, self.goal, _stamp(0)))


def test_sim_episodes_recorded_on_sim_time_with_their_outcome(tmp_path: Path) -> None:
    """hvp record --use-sim-time --episodes 2 with the default topics on the real sim_node,
    started after the sim has run for a while, then from-bags with its defaults. Before: episode
    1 started at time 0 (no /clock yet), so its logged duration and its bag spanned the whole
    simulation; the sim published no outcome (both bags 'unknown'); the second reset started a
    third, stub bag; the default topics named /camera/color/... (the bag held no camera) while
    from-bags' default read another camera than any graph published."""
    sim = node_command(
        "sim_node",
        "-p", "image_width:=64", "-p", "image_height:=48", "-p", "camera_rate_hz:=10.0",
        "-p", "publish_depth:=false",
    )  # fmt: skip
    out = tmp_path / "rec"
    record = hvp("record", "-o", str(out), "--session", "s")  # the default topics
    record += ["--use-sim-time", "--episodes", "2", "--instruction", "reach the red target"]
    with RosProbe("recorder_sim") as probe, start_process(sim) as sim_node:
        poses = probe.record("/sim/ee_pose", PoseStamped, RELIABLE)  # stamped with sim time
        assert wait_for(lambda: len(poses) > 0, 60.0), sim_node.output()
        assert wait_for(lambda: _header_ns(poses.messages()[-1]) > 2e9, 30.0)  # sim t > 2 s
        with _Reacher(probe), start_process(record) as recorder:
            assert wait_for(lambda: "episode 1 started" in recorder.output(), 30.0), (
                recorder.output()
            )
            assert wait_for(lambda: "target reached" in sim_node.output(), 20.0), sim_node.output()
            reset = probe.node.create_client(Trigger, "/sim/reset")
            assert reset.wait_for_service(timeout_sec=10)
            for _ in range(2):  # ends episode 1 (reached), then episode 2 (left alone)
                time.sleep(1.0)
                future = reset.call_async(Trigger.Request())
                assert wait_for(future.done, 10) and future.result().success
            assert recorder.wait(15.0) == 0, recorder.output()
            log = recorder.output()

    bags = sorted((out / "s").iterdir())
    assert [b.name for b in bags] == ["episode_000001", "episode_000002"], (bags, log)  # no stub
    assert [read_custom_data(b)["hvp.success"] for b in bags] == ["true", "false"], log
    logged = [float(d) for d in re.findall(r"episode \d stopped \(.*?([\d.]+) s$", log, re.M)]
    assert len(logged) == 2, log
    for bag, seconds in zip(bags, logged, strict=True):
        with BagReader(bag) as reader:
            first_ns, span_s = reader.start_ns, reader.duration_ns * 1e-9
            success = [m.data for _, _, m in reader.messages(["/episode/success"])]
        assert first_ns > 2e9, f"{bag.name} starts at {first_ns * 1e-9:.3f} s of sim time"
        assert abs(seconds - span_s) < 0.05 and span_s < 10.0, (seconds, span_s, log)
        assert success == [bag.name == "episode_000001"]
    # what the sim does not publish is named once per episode; the rest is what from-bags reads
    missing = re.findall(r"episode 1: no message on (.*?) \(requested", log)
    assert len(missing) == 1, log
    for topic in ("/hand/keypoints", "/hand/joint_states", "/hand/joint_commands"):
        assert topic in missing[0].split(", "), log
    assert "/camera/camera/color/image_raw" not in missing[0].split(", "), log
    with BagReader(bags[0]) as reader:
        assert "/camera/camera/color/image_raw/compressed" in reader.topics, reader.topics
    report = convert_bags([bags[0]], tmp_path / "ds", BagConversionConfig(sync_tolerance_s=0.05))
    assert report.episodes == 1, report.outcomes
    assert DEFAULT_CAMERA_KEY in DatasetReader(tmp_path / "ds").video_keys
    print(f"\nlogged episode durations (sim time) {logged}")
