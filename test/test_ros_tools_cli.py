"""The ros2 tools a pip-only lab needs (issue 14, item 5), against real nodes over DDS:
``hvp topic pub``, ``hvp service call``, ``hvp topic echo --save-image``, ``hvp bag info``,
the camera-only graph and the doctor's RealSense / MediaPipe / torch checks."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import SHARED_DATA
from diagnostic_msgs.msg import DiagnosticArray
from ros_helpers import (
    PROJECT_ROOT,
    PeriodicThread,
    RosProbe,
    diagnostic_values,
    node_command,
    ros_env,
    start_process,
    wait_for,
)
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, String

from human_video_policy.bringup.image_files import image_for_png
from human_video_policy.bringup.message_fields import (
    import_interface,
    message_from_yaml,
)
from human_video_policy.bringup.topic_tools import image_file_name
from human_video_policy.cli.main import main as hvp_main
from human_video_policy.data import BagReader, BagWriter, make_typestore
from human_video_policy.errors import InputError
from human_video_policy.nodes.qos import LATCHED, RELIABLE, SENSOR_DATA

VIDEO = SHARED_DATA / "human_video" / "dexret_hand" / "human_hand_video.mp4"
TALKER = SHARED_DATA / "rosbags" / "rosbag2_talker"


def _hvp(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "human_video_policy.cli.main", *args],
        env=ros_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- messages from YAML ----------------------------------------------------------------------
def test_messages_are_built_from_yaml_and_a_bad_field_is_named() -> None:
    diag = message_from_yaml(
        import_interface("diagnostic_msgs/DiagnosticArray"),
        "{header: {stamp: {sec: 3, nanosec: 4}, frame_id: base}, status: [{level: 2, name: "
        "arm, values: [{key: rate, value: 99.5}, {key: ok, value: true}]}]}",
    )
    assert (diag.header.stamp.sec, diag.header.stamp.nanosec, diag.header.frame_id) == (
        3,
        4,
        "base",
    )
    (status,) = diag.status
    assert status.level == b"\x02" and status.name == "arm"
    assert [(v.key, v.value) for v in status.values] == [("rate", "99.5"), ("ok", "true")]
    info = message_from_yaml(
        import_interface("sensor_msgs/msg/CameraInfo"), "k: [500, 0, 320, 0, 500, 240, 0, 0, 1]"
    )
    assert list(info.k) == [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    stamped = message_from_yaml(
        import_interface("geometry_msgs/PoseStamped"),
        "{header: auto}",
        now_ns=lambda: 7 * 10**9 + 5,
    )
    assert (stamped.header.stamp.sec, stamped.header.stamp.nanosec) == (7, 5)
    request = message_from_yaml(import_interface("std_srvs/SetBool", "srv").Request, "data: true")
    assert request.data is True

    camera_info = import_interface("sensor_msgs/CameraInfo")
    for text, expected in [
        ("k: [1, 2]", "field 'k' is double[9]: needs exactly 9 values, got 2"),
        ("height: -1", "field 'height' is uint32: -1 is out of range 0..4294967295"),
        ("header: {stamp: {sec: soon}}", "field 'header.stamp.sec' is an integer (int32"),
        ("roi: {left: 1}", "field 'roi.left' does not exist in sensor_msgs/msg/RegionOfInterest"),
        ("d: 0.1", "field 'd' is double[]: give a list"),
        ("nope: 1", "field 'nope' does not exist in sensor_msgs/msg/CameraInfo; its fields are"),
        ("[1, 2]", "must be a YAML mapping of field names"),
        ("{k: [", "not valid YAML"),
    ]:
        with pytest.raises(InputError, match=re.escape(expected)):
            message_from_yaml(camera_info, text)
    with pytest.raises(InputError, match=re.escape("status[0].values[0].key' is a string")):
        message_from_yaml(
            import_interface("diagnostic_msgs/msg/DiagnosticArray"),
            "status: [{values: [{key: [1]}]}]",
        )
    with pytest.raises(InputError, match="use std_srvs/srv/Trigger"):
        import_interface("std_srvs/Trigger")  # a service given as a message
    with pytest.raises(InputError, match=r"std_msgs\.msg has no Boolean"):
        import_interface("std_msgs/msg/Boolean")


def test_pub_and_call_refuse_a_bad_request_before_starting_ros() -> None:
    bad = _hvp("topic", "pub", "/x", "std_msgs/msg/Bool", "{data: maybe}")
    assert bad.returncode == 2, bad.stderr
    assert "field 'data' is a boolean: give true or false, got 'maybe'" in bad.stderr
    bad = _hvp("service", "call", "/x", "std_srvs/srv/SetBool", "{value: true}")
    assert (
        bad.returncode == 2
        and "field 'value' does not exist in std_srvs/srv/SetBool_Request" in bad.stderr
    )
    qos = _hvp("topic", "pub", "/x", "std_msgs/Bool", "--qos", "reliabel")
    assert qos.returncode == 2 and "--qos 'reliabel' is unknown" in qos.stderr


# -- hvp topic pub ---------------------------------------------------------------------------
@pytest.mark.ros
def test_topic_pub_reaches_reliable_best_effort_and_late_latched_subscribers() -> None:
    with RosProbe("probe_pub") as probe:
        reliable = probe.record("/cli_pub/joints", JointState, RELIABLE)
        best_effort = probe.record("/cli_pub/best_effort", Bool, SENSOR_DATA)
        # a reliable subscription never matches a best-effort publisher: proves the QoS
        reliable_only = probe.record("/cli_pub/best_effort", Bool, RELIABLE)

        once = _hvp(
            "topic", "pub", "/cli_pub/joints", "sensor_msgs/msg/JointState",
            "{header: {stamp: now, frame_id: base}, name: [waist, elbow], position: [0.5, -1.25]}",
            "--once",
        )  # fmt: skip
        assert once.returncode == 0, once.stdout + once.stderr
        assert wait_for(lambda: len(reliable) == 1, 5.0)
        msg = reliable.messages()[0]
        assert list(msg.name) == ["waist", "elbow"] and list(msg.position) == [0.5, -1.25]
        assert msg.header.frame_id == "base" and abs(msg.header.stamp.sec - time.time()) < 30
        assert "(reliable, volatile, depth 10)" in once.stdout and "publishing #1" in once.stdout

        times = _hvp(
            "topic", "pub", "/cli_pub/best_effort", "std_msgs/Bool", "{data: true}",
            "--qos", "best_effort", "--times", "3", "--rate", "20",
        )  # fmt: skip
        assert times.returncode == 0, times.stdout + times.stderr
        assert "(best_effort, volatile, depth 10)" in times.stdout
        assert "published 3 message(s)" in times.stdout
        assert wait_for(lambda: len(best_effort) >= 2, 5.0), len(best_effort)
        assert all(m.data is True for m in best_effort.messages()) and len(best_effort) <= 3
        assert len(reliable_only) == 0

        # latched: published before anyone listens, received by a subscriber that comes later
        latched = start_process(
            [
                sys.executable, "-m", "human_video_policy.cli.main", "topic", "pub",
                "/cli_pub/latched", "std_msgs/msg/String", "data: the last word",
                "--once", "--qos", "latched", "-w", "0", "--keep-alive", "20",
            ]
        )  # fmt: skip
        with latched:
            assert wait_for(
                lambda: "published 1" in latched.output() or "publishing #1" in latched.output(),
                15.0,
            ), latched.output()
            time.sleep(0.5)
            late = probe.record("/cli_pub/latched", String, LATCHED)
            late_volatile = probe.record("/cli_pub/latched", String, RELIABLE)
            assert wait_for(lambda: len(late) == 1, 10.0), latched.output()
            assert late.messages()[0].data == "the last word"
            time.sleep(0.5)
            assert len(late_volatile) == 0  # not latched for a volatile subscriber
            assert latched.stop(signal.SIGINT) == 0, latched.output()

        nobody = _hvp("topic", "pub", "/cli_pub/nobody", "std_msgs/Bool", "--once", "--wait", "1")
    assert nobody.returncode == 1 and "0 of 1 subscription(s) matched within 1 s" in nobody.stderr


# -- hvp service call ------------------------------------------------------------------------
@pytest.mark.ros
def test_service_call_and_topic_pub_latch_and_reset_a_controllers_estop() -> None:
    """The docs' e-stop round trip from a terminal: /safety/estop by `hvp topic pub`,
    ~/reset_estop by `hvp service call`, on a real arm_controller_node (sim driver)."""
    command = node_command(
        "arm_controller_node",
        "--params-file",
        str(PROJECT_ROOT / "config" / "controllers.params.yaml"),
    )
    with RosProbe("probe_call") as probe, start_process(command) as controller:
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        states = probe.record("/arm/joint_states", JointState)
        assert wait_for(lambda: len(states) > 5, 30.0), controller.output()

        def latched() -> str | None:
            return diagnostic_values(diagnostics, "arm_controller").get("estop_latched")

        assert wait_for(lambda: latched() == "false", 10.0)
        estop = _hvp("topic", "pub", "/safety/estop", "std_msgs/msg/Bool", "{data: true}", "--once")
        assert estop.returncode == 0, estop.stderr
        assert wait_for(lambda: latched() == "true", 5.0)

        refused = _hvp("service", "call", "/arm_controller/reset_estop", "std_srvs/srv/Trigger")
        assert refused.returncode == 0, refused.stderr
        assert "requester: making request: std_srvs/srv/Trigger" in refused.stdout
        assert "response:\n  success: false" in refused.stdout  # the input still says true
        checked = _hvp(
            "service", "call", "/arm_controller/reset_estop", "std_srvs/Trigger", "--check"
        )
        assert checked.returncode == 1

        release = _hvp("topic", "pub", "/safety/estop", "std_msgs/Bool", "{data: false}", "--once")
        assert release.returncode == 0, release.stderr
        time.sleep(0.3)
        reset = _hvp("service", "call", "/arm_controller/reset_estop", "std_srvs/srv/Trigger")
        assert reset.returncode == 0, reset.stderr
        assert "response:\n  success: true" in reset.stdout, reset.stdout
        assert wait_for(lambda: latched() == "false", 5.0)

        wrong = _hvp("service", "call", "/arm_controller/reset_estop", "std_srvs/srv/SetBool",
                     "{data: true}", "--wait", "2")  # fmt: skip
        missing = _hvp("service", "call", "/arm_controller/nope", "std_srvs/srv/Trigger",
                       "--wait", "1")  # fmt: skip
        listing = _hvp("service", "list")
    assert wrong.returncode == 1
    assert "is a std_srvs/srv/Trigger, not a std_srvs/srv/SetBool" in wrong.stderr
    assert missing.returncode == 1 and "service /arm_controller/nope not found" in missing.stderr
    assert "/arm_controller/reset_estop [std_srvs/srv/Trigger]" in listing.stdout
    assert "get_parameters" not in listing.stdout


class _Joints(PeriodicThread):
    def __init__(self, probe: RosProbe, topic: str) -> None:
        super().__init__(0.02)
        self.publisher = probe.publisher(topic, JointState, RELIABLE)

    def step(self) -> None:
        self.publisher.publish(JointState(name=["a"], position=[1.0]))


def _bag_rows(output: str) -> dict[str, dict[str, str]]:
    """``Topic: /x | Type: t | Count: 3 | ...`` lines of ``hvp bag info`` -> {topic: fields}."""
    rows = {}
    for line in output.splitlines():
        if "Topic: " not in line:
            continue
        fields = dict(
            part.strip().split(": ", 1) for part in line.split("Topic information:")[-1].split("|")
        )
        rows[fields["Topic"].strip()] = {k: v.strip() for k, v in fields.items()}
    return rows


@pytest.mark.ros
def test_recorder_episode_by_service_calls_then_bag_info(tmp_path: Path) -> None:
    """/recorder/start_episode (Trigger) and /recorder/stop_episode (SetBool) from the
    terminal; `hvp bag info` on the sqlite3 bag the recorder wrote matches its content."""
    out = tmp_path / "rec"
    command = node_command(
        "recorder_node",
        "-p", f"output_dir:={out}",
        "-p", "session:=calls",
        "-p", "topics:=['/cli_rec/joints']",
        "-p", "storage:=sqlite3",
        "-p", "auto_start:=false",
        "-p", "fsync:=false",
    )  # fmt: skip
    with RosProbe("probe_rec_calls") as probe, start_process(command) as recorder:
        with _Joints(probe, "/cli_rec/joints") as joints:
            assert probe.wait_for_subscribers(joints.publisher, 1, 20.0), recorder.output()
            start = _hvp("service", "call", "/recorder/start_episode", "std_srvs/srv/Trigger")
            assert start.returncode == 0, start.stderr
            assert "success: true" in start.stdout, start.stdout
            time.sleep(1.5)
            stop = _hvp(
                "service", "call", "/recorder/stop_episode", "std_srvs/SetBool", "{data: true}"
            )
            assert stop.returncode == 0 and "success: true" in stop.stdout, stop.stdout
        assert recorder.stop(signal.SIGINT) == 0, recorder.output()

    bag = out / "calls" / "episode_000001"
    with BagReader(bag) as reader:
        stored = {name: topic.count for name, topic in reader.topics.items()}
        stamps = [s for _, s, _ in reader.messages(["/cli_rec/joints"])]
    info = _hvp("bag", "info", str(bag))
    assert info.returncode == 0, info.stderr
    assert "Storage id:        sqlite3" in info.stdout
    rows = _bag_rows(info.stdout)
    assert {name: int(row["Count"]) for name, row in rows.items()} == stored
    assert stored["/cli_rec/joints"] >= 40  # ~1.5 s at 50 Hz
    hz = float(rows["/cli_rec/joints"]["Frequency"].split()[0])
    expected = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) * 1e-9)
    assert abs(hz - expected) < 0.01 and 35.0 < hz < 60.0, hz
    assert "hvp.success: true" in info.stdout
    session = _hvp("bag", "info", str(out / "calls"), "--metadata-only")
    assert session.returncode == 0 and f"== {bag}" in session.stdout


# -- hvp bag info ----------------------------------------------------------------------------
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_info_of_written_and_ros2_recorded_bags(
    tmp_path: Path, storage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = make_typestore()
    bag = tmp_path / f"bag_{storage}"
    t0 = 1_700_000_000_123_456_789
    with BagWriter(bag, storage=storage) as writer:
        writer.add_topic("/joints", "sensor_msgs/msg/JointState")
        writer.add_topic("/flag", "std_msgs/msg/Bool")
        joint_state = store.types["sensor_msgs/msg/JointState"]
        header = store.types["std_msgs/msg/Header"]
        time_type = store.types["builtin_interfaces/msg/Time"]
        for i in range(30):  # 10 Hz for 2.9 s
            msg = joint_state(
                header=header(stamp=time_type(sec=0, nanosec=0), frame_id=""),
                name=["a"],
                position=np.array([float(i)]),
                velocity=np.array([], dtype=np.float64),
                effort=np.array([], dtype=np.float64),
            )
            writer.write("/joints", t0 + i * 100_000_000, msg)
        for i in range(5):  # 2 Hz
            writer.write(
                "/flag",
                t0 + 50_000_000 + i * 500_000_000,
                store.types["std_msgs/msg/Bool"](data=True),
            )
    assert hvp_main(["bag", "info", str(bag)]) == 0
    out = capsys.readouterr().out
    rows = _bag_rows(out)
    assert rows["/joints"]["Type"] == "sensor_msgs/msg/JointState"
    assert rows["/joints"]["Count"] == "30" and rows["/joints"]["Frequency"] == "10.00 Hz"
    assert rows["/flag"]["Count"] == "5" and rows["/flag"]["Frequency"] == "2.00 Hz"
    assert rows["/joints"]["Serialization Format"] == "cdr"
    assert f"Storage id:        {storage}" in out and "Messages:          35" in out
    assert "Duration:          2.900000000s" in out
    assert "(1700000000.123456789)" in out.split("Start:")[1].splitlines()[0]
    assert "(1700000003.023456789)" in out.split("End:")[1].splitlines()[0]
    assert "WARNING" not in out

    # metadata.yaml that disagrees with the storage (a crashed bag) is flagged
    meta_path = bag / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    for entry in meta["rosbag2_bagfile_information"]["topics_with_message_count"]:
        if entry["topic_metadata"]["name"] == "/joints":
            entry["message_count"] = 12
    meta_path.write_text(yaml.safe_dump(meta))
    assert hvp_main(["bag", "info", str(bag)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: /joints: the storage holds 30 message(s), metadata.yaml says 12" in out

    # a bag ROS 2 itself recorded (rosbag2's test data)
    talker = TALKER / f"{storage}_talker"
    assert (talker / "metadata.yaml").is_file(), f"shared test data missing: {talker}"
    assert hvp_main(["bag", "info", str(talker)]) == 0
    out = capsys.readouterr().out
    rows = _bag_rows(out)
    assert rows["/topic"]["Count"] == "10" and rows["/rosout"]["Count"] == "10"
    assert rows["/topic"]["Type"] == "std_msgs/msg/String"
    assert (
        rows["/parameter_events"]["Count"] == "0" and rows["/parameter_events"]["Frequency"] == "-"
    )
    assert "Messages:          20" in out and "Duration:          4.531096768s" in out

    assert hvp_main(["bag", "info", str(tmp_path / "nope")]) == 2
    assert f"bag {tmp_path / 'nope'} does not exist" in capsys.readouterr().err


# -- hvp topic echo --save-image -------------------------------------------------------------
def _image(encoding: str, pixels: np.ndarray, pad: int = 0, bigendian: bool = False) -> Image:
    height, width = pixels.shape[:2]
    row = pixels.reshape(height, -1)
    if bigendian:
        row = row.astype(row.dtype.newbyteorder(">"))
    raw = row.view(np.uint8).reshape(height, -1)
    raw = np.concatenate([raw, np.full((height, pad), 77, np.uint8)], axis=1)
    return Image(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=raw.shape[1],
        data=raw.tobytes(),
    )


def _test_pixels() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    depth = rng.integers(300, 4000, (37, 53)).astype(np.uint16)
    depth[:5, :7] = 0  # no data
    return {"rgb": rgb, "mono": rgb[:, :, 1].copy(), "depth": depth}


def test_image_messages_become_pngs_of_the_same_pixels() -> None:
    p = _test_pixels()
    rgb, mono, depth = p["rgb"], p["mono"], p["depth"]
    bgr = rgb[:, :, ::-1]
    assert np.array_equal(image_for_png(_image("rgb8", rgb, pad=5)).pixels, bgr)
    assert np.array_equal(image_for_png(_image("bgr8", bgr)).pixels, bgr)
    assert np.array_equal(image_for_png(_image("mono8", mono, pad=3)).pixels, mono)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 200, np.uint8)], axis=2)
    assert np.array_equal(image_for_png(_image("rgba8", rgba)).pixels[:, :, :3], bgr)
    for bigendian in (False, True):
        raw = image_for_png(_image("16UC1", depth, pad=2, bigendian=bigendian), raw_depth=True)
        assert raw.pixels.dtype == np.uint16 and np.array_equal(raw.pixels, depth)
    scaled = image_for_png(_image("16UC1", depth))
    valid = depth > 0
    lo, hi = depth[valid].min(), depth[valid].max()
    expected = np.rint(1 + (depth.astype(float) - lo) * 254 / (hi - lo))
    assert np.array_equal(scaled.pixels[valid], expected[valid].astype(np.uint8))
    assert np.all(scaled.pixels[~valid] == 0) and scaled.pixels[valid].min() == 1
    assert f"depth {lo}..{hi} mm scaled to 1..255" in scaled.description
    metres = depth.astype(np.float32) / 1000
    metres[~valid] = np.nan
    assert np.array_equal(image_for_png(_image("32FC1", metres)).pixels, scaled.pixels)
    _ok, png = cv2.imencode(".png", bgr)
    compressed = CompressedImage(format="rgb8; png compressed bgr8", data=png.tobytes())
    assert np.array_equal(image_for_png(compressed).pixels, bgr)
    _ok, png16 = cv2.imencode(".png", depth)
    header = bytes(12)  # compressed_depth_image_transport's ConfigHeader
    cdepth = CompressedImage(format="16UC1; compressedDepth png", data=header + png16.tobytes())
    assert np.array_equal(image_for_png(cdepth, raw_depth=True).pixels, depth)
    assert image_file_name("out/c.png", 1, 1) == "out/c.png"  # --count N numbers the files
    assert image_file_name("out/c.png", 2, 3) == "out/c_0002.png"
    with pytest.raises(InputError, match="'yuv422' cannot be saved"):
        image_for_png(Image(height=1, width=1, encoding="yuv422", step=2, data=bytes(2)))
    with pytest.raises(InputError, match="step \\* height"):
        image_for_png(Image(height=2, width=2, encoding="mono8", step=2, data=bytes(3)))


@pytest.mark.ros
def test_echo_saves_published_images_as_pngs_of_the_same_pixels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = _test_pixels()
    _ok, jpeg = cv2.imencode(".jpg", p["rgb"][:, :, ::-1])
    messages = {
        "/cli_png/rgb": (Image, _image("rgb8", p["rgb"], pad=4)),
        "/cli_png/mono": (Image, _image("mono8", p["mono"])),
        "/cli_png/depth": (Image, _image("16UC1", p["depth"])),
        "/cli_png/jpeg": (
            CompressedImage,
            CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpeg.tobytes()),
        ),
        "/cli_png/not_an_image": (Bool, Bool(data=True)),
    }
    with RosProbe("probe_png") as probe:
        publishers = []
        for topic, (kind, msg) in messages.items():
            publisher = probe.publisher(topic, kind, LATCHED)
            publisher.publish(msg)
            publishers.append(publisher)
        saved = {}
        for topic in messages:
            name = topic.rsplit("/", 1)[-1]
            path = tmp_path / f"{name}.png"
            code = hvp_main(["topic", "echo", topic, "--save-image", str(path), "--wait", "10"])
            captured = capsys.readouterr()
            saved[name] = (code, path, captured.out + captured.err)
        raw = tmp_path / "depth_raw.png"
        raw_code = hvp_main(
            ["topic", "echo", "/cli_png/depth", "--save-image", str(raw), "--raw-depth"]
        )
        capsys.readouterr()
    for name in ("rgb", "mono", "depth", "jpeg"):
        code, path, output = saved[name]
        assert code == 0 and f"saved {path}" in output, output
    read = {
        name: cv2.imread(str(saved[name][1]), cv2.IMREAD_UNCHANGED)
        for name in saved
        if name != "not_an_image"
    }
    assert np.array_equal(read["rgb"], p["rgb"][:, :, ::-1])  # a PNG is the published pixels
    assert np.array_equal(read["mono"], p["mono"])
    assert read["depth"].dtype == np.uint8 and np.array_equal(read["depth"] == 0, p["depth"] == 0)
    assert np.array_equal(read["jpeg"], cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
    assert "16UC1, depth" in saved["depth"][2]
    assert raw_code == 0
    assert np.array_equal(cv2.imread(str(raw), cv2.IMREAD_UNCHANGED), p["depth"])
    code, path, output = saved["not_an_image"]
    assert code == 1 and "is a std_msgs/msg/Bool: only" in output and not path.exists()


# -- the camera graph ------------------------------------------------------------------------
@pytest.mark.ros
def test_camera_graph_plays_a_video_and_echo_saves_one_of_its_frames(tmp_path: Path) -> None:
    assert VIDEO.is_file(), f"shared test data missing: {VIDEO}"
    from human_video_policy.video.reader import VideoReader

    command = [
        sys.executable, "-m", "human_video_policy.cli.main", "launch", "camera",
        "source:=video", f"video_path:={VIDEO}", "rate_hz:=10.0", "--duration", "40",
    ]  # fmt: skip
    frame_png = tmp_path / "frame.png"
    with RosProbe("probe_camera_graph") as probe, start_process(command) as graph:
        images = probe.record("/camera/camera/color/image_raw", Image, SENSOR_DATA)
        assert wait_for(lambda: len(images) >= 3, 30.0), graph.output()
        echo = _hvp(
            "topic", "echo", "/camera/camera/color/image_raw", "--save-image", str(frame_png),
            "--wait", "10",
        )  # fmt: skip
        received = len(images)
        assert graph.stop(signal.SIGINT) == 0, graph.output()
    assert received >= 3
    assert echo.returncode == 0, echo.stdout + echo.stderr
    assert "1280x720 rgb8" in echo.stdout
    saved = cv2.imread(str(frame_png), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (720, 1280, 3)
    last = max(int(len(images) * 1.5) + 40, 80)  # frames published by then, with margin
    for frame in VideoReader(VIDEO):
        if np.array_equal(frame.rgb[:, :, ::-1], saved):
            break
        assert frame.index < last, "the saved PNG is none of the video's first frames"


# -- doctor ----------------------------------------------------------------------------------
def test_doctor_lists_realsense_devices_and_checks_mediapipe_and_torch() -> None:
    import pyrealsense2 as rs

    from human_video_policy.bringup.doctor import (
        all_checks,
        check_mediapipe,
        check_realsense,
        check_torch,
    )
    from human_video_policy.camera.realsense_source import add_software_device

    none = check_realsense(rs.context())
    assert none.ok, none  # no camera on this machine: an OK line, not a failure
    devices = rs.context().query_devices()
    if len(devices) == 0:
        assert "no RealSense connected" in none.detail

    context = rs.context()
    device = rs.software_device()
    for key, value in [
        ("name", "Intel RealSense D435"),
        ("serial_number", "_tested_0042"),
        ("firmware_version", "5.16.0.1"),
        ("usb_type_descriptor", "3.2"),
    ]:
        device.register_info(getattr(rs.camera_info, key), value)
    device.add_sensor("Color")
    handle = add_software_device(context, device)
    found = check_realsense(context)
    assert (
        found.ok
        and "Intel RealSense D435 serial _tested_0042 firmware 5.16.0.1 USB 3.2" in found.detail
    )
    usb2 = rs.software_device()
    usb2.register_info(rs.camera_info.name, "Intel RealSense D415")
    usb2.register_info(rs.camera_info.usb_type_descriptor, "2.1")
    usb2.add_sensor("Color")
    handle2 = add_software_device(context, usb2)
    slow = check_realsense(context)
    assert not slow.ok and "USB 3" in slow.fix and "2 RealSense" in slow.detail
    del handle, handle2

    mediapipe = check_mediapipe(120.0)
    assert mediapipe.ok, mediapipe
    assert "hand_landmark_full.tflite" in mediapipe.detail and "a frame tracked" in mediapipe.detail
    torch = check_torch(120.0)
    assert torch.ok and re.search(r"torch \d+\.\d+.*CUDA available: (True|False)", torch.detail)
    names = [c.name for c in all_checks(10.0)]
    assert {"realsense", "mediapipe", "torch"} <= set(names)
