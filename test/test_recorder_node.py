"""Recorder node over real DDS: exact content, JPEG images, episode control, SIGKILL bound."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from ros_helpers import PeriodicThread, RosProbe, node_command, start_process, wait_for
from rosgraph_msgs.msg import Clock
from ruamel.yaml import YAML
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from human_video_policy.data import BagReader
from human_video_policy.data.bag_repair import read_custom_data, repair_bag
from human_video_policy.nodes.qos import CLOCK, LATCHED, RELIABLE, SENSOR_DATA

JOINTS = "/arm/joint_states"
CAMERA = "/camera/camera/color/image_raw"


def _joint_state(i: int) -> JointState:
    msg = JointState()
    msg.header.stamp.sec = i
    msg.name = ["waist", "shoulder"]
    msg.position = [0.001 * i, -0.5]
    return msg


def _image(i: int) -> tuple[Image, np.ndarray]:
    yy, xx = np.mgrid[0:48, 0:64]
    rgb = np.stack([(xx * 4 + i) % 256, yy * 5, np.full_like(xx, 100)], axis=-1).astype(np.uint8)
    msg = Image()
    msg.height, msg.width, msg.encoding, msg.step = 48, 64, "rgb8", 64 * 3
    msg.data = rgb.tobytes()
    return msg, rgb


def _session(out: Path) -> Path:
    sessions = list(out.iterdir())
    assert len(sessions) == 1, sessions
    return sessions[0]


def _stop_episode_and_node(probe, node) -> None:
    """Stop the episode through /recorder/stop_episode, then the node with SIGINT (exit 0)."""
    client = probe.node.create_client(SetBool, "/recorder/stop_episode")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(SetBool.Request(data=True))
    assert wait_for(future.done, 10)
    assert future.result().success, future.result().message
    assert node.stop(signal.SIGINT) == 0, node.output()


def test_records_published_topics_exactly_with_jpeg_images(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    command = node_command(
        "recorder_node",
        "-p", f"output_dir:={out}",
        "-p", f"topics:=['{JOINTS}', '{CAMERA}']",
        "-p", "compress_images:=true",
        "-p", "fsync:=false",
    )  # fmt: skip
    with RosProbe("recorder_test") as probe, start_process(command) as node:
        joints = probe.publisher(JOINTS, JointState, RELIABLE)
        camera = probe.publisher(CAMERA, Image, SENSOR_DATA)
        instruction = probe.publisher("/task/instruction", String, LATCHED)
        instruction.publish(String(data="reach the red cube"))
        assert probe.wait_for_subscribers(joints), node.output()
        assert probe.wait_for_subscribers(camera), node.output()
        assert wait_for(lambda: "episode 1 started" in node.output(), 10), node.output()
        time.sleep(0.5)  # the subscriptions are matched both ways
        sent_images = []
        for i in range(150):  # 1.5 s at 100 Hz, a 15 Hz image every 7th tick
            joints.publish(_joint_state(i))
            if i % 7 == 0:
                msg, rgb = _image(i)
                camera.publish(msg)
                sent_images.append(rgb)
            time.sleep(0.01)
        time.sleep(0.5)
        _stop_episode_and_node(probe, node)

    bag = _session(out) / "episode_000001"
    with BagReader(bag) as reader:
        states = [m for _, _, m in reader.messages([JOINTS])]
        assert [round(m.position[0] * 1000) for m in states] == list(range(150))
        assert all(list(m.name) == ["waist", "shoulder"] for m in states)
        assert [m.header.stamp.sec for m in states] == list(range(150))
        images = [m for _, _, m in reader.messages([CAMERA + "/compressed"])]
        assert reader.topics[CAMERA + "/compressed"].msgtype == "sensor_msgs/msg/CompressedImage"
        assert len(images) >= len(sent_images) - 2  # best effort on loopback: nearly all
        for msg in images:
            assert msg.format == "rgb8; jpeg compressed bgr8"
            bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.int16)
            errors = [np.abs(rgb - sent).mean() for sent in sent_images]
            assert min(errors) < 3.0  # a JPEG of one of the sent frames
        success = [m.data for _, _, m in reader.messages(["/episode/success"])]
        assert success == [True]
        instructions = [m.data for _, _, m in reader.messages(["/task/instruction"])]
        assert instructions[-1] == "reach the red cube"
    custom = read_custom_data(bag)
    assert custom["hvp.success"] == "true" and custom["hvp.instruction"] == "reach the red cube"


def test_sigkill_of_the_node_mid_episode_loses_at_most_one_second(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    command = node_command(
        "recorder_node", "-p", f"output_dir:={out}", "-p", f"topics:=['{JOINTS}']"
    )
    with RosProbe("recorder_kill") as probe, start_process(command) as node:
        joints = probe.publisher(JOINTS, JointState, RELIABLE)
        assert probe.wait_for_subscribers(joints), node.output()
        assert wait_for(lambda: "episode 1 started" in node.output(), 10), node.output()
        time.sleep(0.3)
        sent: list[int] = []
        for i in range(250):  # 2.5 s at 100 Hz
            joints.publish(_joint_state(i))
            sent.append(time.time_ns())
            time.sleep(0.01)
        node.send_signal(signal.SIGKILL)
        assert node.wait(10) == -signal.SIGKILL
    bag = _session(out) / "episode_000001"
    report = repair_bag(bag, fsync=False)
    with BagReader(bag) as reader:
        states = [(s, round(m.position[0] * 1000)) for _, s, m in reader.messages([JOINTS])]
    indices = [i for _, i in states]
    assert indices == list(range(len(indices))), "messages lost or reordered before the kill"
    last_stamp = states[-1][0]
    loss_s = (sent[-1] - last_stamp) * 1e-9
    assert len(indices) >= 100, report.summary()
    print(f"SIGKILL loss: {loss_s:.3f} s, {len(indices)} of 250 messages kept")
    assert loss_s <= 1.0, f"lost {loss_s:.3f} s ({250 - len(indices)} of 250 messages)"
    assert read_custom_data(bag)["hvp.end_reason"] == "interrupted"


def test_hvp_record_runs_the_node_for_a_duration_and_repairs(tmp_path: Path, capsys) -> None:
    import argparse

    from human_video_policy.cli import record_cmd

    parser = argparse.ArgumentParser(prog="hvp")
    record_cmd.register(parser.add_subparsers(dest="command"))

    def hvp_record(*argv: str) -> int:
        args = parser.parse_args(["record", *argv])
        return args.func(args)

    out = tmp_path / "rec"
    code = hvp_record(
        "-o", str(out), "--session", "cli", "--storage", "sqlite3", "--duration", "1.0",
        "--topics", JOINTS, "--instruction", "42",
    )  # fmt: skip
    assert code == 0
    bag = out / "cli" / "episode_000001"
    assert any(bag.glob("*.db3"))
    custom = read_custom_data(bag)
    assert custom["hvp.instruction"] == "42" and custom["hvp.end_reason"] == "stopped"
    assert hvp_record("repair", str(out / "cli")) == 0
    assert "complete sqlite3 file(s)" in capsys.readouterr().out
    assert hvp_record("--duration", "1") == 2  # no -o
    assert hvp_record("-o", str(out), "--episodes", "0") == 2
    assert hvp_record("-o", str(out), "--clock-timeout", "5") == 2  # without --use-sim-time
    sim = parser.parse_args(["record", "-o", str(out), "--use-sim-time", "--clock-timeout", "5"])
    assert "clock_timeout_s:=5.0" in record_cmd.node_command(sim)


def test_a_topic_that_goes_silent_is_reported(tmp_path: Path) -> None:
    """A subscribed topic with no message for SILENT_TOPIC_S is a WARN on /diagnostics naming it
    (a camera whose QoS was not matched, or a node that died, shows up at once)."""
    from diagnostic_msgs.msg import DiagnosticArray

    from human_video_policy.nodes.recorder_node import SILENT_TOPIC_S

    command = node_command(
        "recorder_node",
        "-p", f"output_dir:={tmp_path / 'rec'}",
        "-p", f"topics:=['{JOINTS}']",
        "-p", "fsync:=false",
    )  # fmt: skip

    def status(diagnostics):  # the newest recorder status, or None
        for msg in reversed(diagnostics.messages()):
            for s in msg.status:
                if s.name == "recorder":
                    return s
        return None

    with RosProbe("recorder_silent") as probe, start_process(command) as node:
        diagnostics = probe.record("/diagnostics", DiagnosticArray, RELIABLE)
        joints = probe.publisher(JOINTS, JointState, RELIABLE)
        assert probe.wait_for_subscribers(joints), node.output()
        assert wait_for(lambda: f"recording {JOINTS}" in node.output(), 10), node.output()
        for i in range(20):  # alive for 1 s ...
            joints.publish(_joint_state(i))
            time.sleep(0.05)
        healthy = status(diagnostics)
        assert healthy is not None and "no message" not in healthy.message, healthy
        # ... then silent: reported within the threshold + one diagnostics period.
        assert wait_for(
            lambda: (s := status(diagnostics)) is not None and JOINTS in s.message,
            SILENT_TOPIC_S + 5.0,
        ), node.output()
        warn = status(diagnostics)
        assert warn.level == b"\x01" and "no message for" in warn.message
        assert {kv.key: kv.value for kv in warn.values}["silent_topics"] == JOINTS
        assert node.stop(signal.SIGINT) == 0, node.output()


class _SimClock(PeriodicThread):
    """/clock at 100 Hz as a simulator publishes it: sim time from ``start_s`` on, at the wall
    clock's pace, from the moment the ``with`` block opens."""

    def __init__(self, probe: RosProbe, start_s: float) -> None:
        super().__init__(0.01)
        self.pub = probe.publisher("/clock", Clock, CLOCK)
        self.start_ns = int(start_s * 1e9)
        self._t0: float | None = None

    def step(self) -> None:
        if self._t0 is None:
            self._t0 = time.monotonic()
        ns = self.start_ns + int((time.monotonic() - self._t0) * 1e9)
        self.pub.publish(Clock(clock=Time(sec=ns // 10**9, nanosec=ns % 10**9)))


def test_sim_time_episode_starts_when_a_late_clock_arrives(tmp_path: Path) -> None:
    """use_sim_time with a /clock that starts late, at 1000 s of sim time, and an instruction
    latched before it. Before: what arrived before the first /clock (the instruction) was
    stamped 0, so episode 1's metadata said starting_time 0 and a duration of the whole sim
    time (1000+ s for ~2 s of data). Now the bag starts at the clock and spans the data."""
    out = tmp_path / "rec"
    command = node_command(
        "recorder_node",
        "-p", f"output_dir:={out}",
        "-p", f"topics:=['{JOINTS}']",
        "-p", "use_sim_time:=true",
        "-p", "fsync:=false",
    )  # fmt: skip
    with RosProbe("recorder_sim_clock") as probe:
        instruction = probe.publisher("/task/instruction", String, LATCHED)
        instruction.publish(String(data="reach the red cube"))
        joints = probe.publisher(JOINTS, JointState, RELIABLE)
        with start_process(command) as node:
            assert probe.wait_for_subscribers(joints), node.output()
            assert wait_for(lambda: "waiting" in node.output() and "/clock" in node.output(), 10), (
                node.output()
            )
            time.sleep(1.0)  # the latched instruction reaches the recorder before any /clock
            assert "episode 1 started" not in node.output(), node.output()
            with _SimClock(probe, start_s=1000.0):
                assert wait_for(lambda: "episode 1 started" in node.output(), 10), node.output()
                time.sleep(0.3)
                for i in range(100):  # 1 s at 100 Hz
                    joints.publish(_joint_state(i))
                    time.sleep(0.01)
                time.sleep(0.3)
                _stop_episode_and_node(probe, node)
            log = node.output()

    bag = _session(out) / "episode_000001"
    with BagReader(bag) as reader:
        start_s, duration_s = reader.start_ns * 1e-9, reader.duration_ns * 1e-9
        stamps = {t: [s * 1e-9 for _, s, _ in reader.messages([t])] for t in reader.topics}
    info = YAML(typ="safe").load((bag / "metadata.yaml").read_text(encoding="utf-8"))
    info = info["rosbag2_bagfile_information"]
    meta_start_s = info["starting_time"]["nanoseconds_since_epoch"] * 1e-9
    meta_duration_s = info["duration"]["nanoseconds"] * 1e-9
    data = stamps[JOINTS]
    print(
        f"\nmetadata: starting_time {meta_start_s:.3f} s, duration {meta_duration_s:.3f} s; "
        f"data {data[0]:.3f}..{data[-1]:.3f} s ({len(data)} messages)"
    )
    assert len(data) >= 90, log
    assert (meta_start_s, meta_duration_s) == (start_s, duration_s)
    assert 1000.0 <= meta_start_s <= data[0], (meta_start_s, data[0], log)
    assert data[0] - meta_start_s < 2.0, (meta_start_s, data[0])  # the episode's start marker
    assert data[-1] - data[0] <= meta_duration_s < data[-1] - data[0] + 3.0, log
    assert stamps["/task/instruction"] == [meta_start_s]  # at the clock, not at 0
    assert stamps["/episode/start"] == [meta_start_s]


def test_sim_time_without_a_clock_gives_up_at_the_deadline(tmp_path: Path) -> None:
    """use_sim_time and no simulator. Before: the recorder waited for /clock forever, and a
    start request held its spin thread 5 s before failing with "did not answer". Now the request
    is refused at once saying why, and after clock_timeout_s the node exits 1 with one line
    naming the cause (no traceback); nothing is recorded."""
    out = tmp_path / "rec"
    command = node_command(
        "recorder_node",
        "-p", f"output_dir:={out}",
        "-p", f"topics:=['{JOINTS}']",
        "-p", "use_sim_time:=true",
        "-p", "clock_timeout_s:=6.0",
        "-p", "fsync:=false",
    )  # fmt: skip
    with RosProbe("recorder_no_clock") as probe, start_process(command) as node:
        client = probe.node.create_client(Trigger, "/recorder/start_episode")
        assert client.wait_for_service(timeout_sec=10), node.output()
        asked = time.monotonic()
        future = client.call_async(Trigger.Request())
        assert wait_for(future.done, 10), node.output()
        answered_s = time.monotonic() - asked
        assert not future.result().success
        assert "no /clock message yet" in future.result().message, future.result().message
        assert answered_s < 2.0, answered_s
        assert wait_for(lambda: node.popen.poll() is not None, 20), node.output()
        code, log = node.popen.returncode, node.output()
    assert code == 1, log
    assert "no /clock message arrived within 6 s (clock_timeout_s); nothing was recorded" in log
    assert "Traceback" not in log, log
    assert not list(out.rglob("episode_*")), list(out.rglob("*"))
