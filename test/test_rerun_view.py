"""`hvp view dataset` / `hvp view bag` write Rerun recordings that Rerun's own reader
(rerun.chunk.RrdReader) reads back with every dimension at an entity path named after it, the
values of the data, the camera frames and the hand skeletons."""

from __future__ import annotations

import signal
import socket
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
from rerun.chunk import RrdReader
from ros_helpers import start_process, wait_for

from human_video_policy.cli.main import main
from human_video_policy.data.bags import BagWriter, make_typestore
from human_video_policy.data.dataset_format import (
    DatasetSpec,
    FeatureSpec,
    hand_keypoints_feature,
    vector_feature,
    video_feature,
)
from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.data.dataset_writer import DatasetWriter
from human_video_policy.viz.rerun_export import entity
from human_video_policy.viz.skeleton import KEYPOINT_NAMES

CAM = "observation.images.wrist"
JOINTS = ["waist", "shoulder", "elbow", "left finger"]  # a space: one escaped path part
ACTIONS = ["waist", "shoulder", "elbow", "gripper/open"]  # a slash: still one part
LENGTHS = (6, 9)


def _episode(n: int, seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    hands = rng.uniform(-0.2, 0.6, (n, 2, 21, 3)).astype(np.float32)
    hands[:, 0] = 0.0  # the left hand is missing in every frame (zeros, as the writer stores it)
    hands[n // 2, 1] = 0.0  # the right hand is lost for one frame
    frames = {
        "observation.state": rng.standard_normal((n, 4)),
        "action": rng.standard_normal((n, 4)),
        "mask.action": np.ones((n, 4)),
        "segment_index": np.arange(n) // 3,
        "human.hand_keypoints": hands.reshape(n, -1),
    }
    yy, xx = np.mgrid[0:32, 0:48]
    pictures = [
        np.dstack([xx * 5 + 12 * i, yy * 7 + 40 * seed, np.full_like(xx, 30 + 20 * i)])
        for i in range(n)
    ]
    return frames, {CAM: np.clip(np.stack(pictures), 0, 255).astype(np.uint8)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("view") / "ds"
    spec = DatasetSpec(
        fps=10,
        robot_type="widowx",
        features=(
            vector_feature("observation.state", JOINTS),
            vector_feature("action", ACTIONS),
            vector_feature("mask.action", ACTIONS),
            FeatureSpec("segment_index", "int64", (1,)),
            hand_keypoints_feature(),
            video_feature(CAM, 32, 48, 10),
        ),
        embodiment="widowx",
        action_space="widowx_joints",
    )
    with DatasetWriter(root, spec) as writer:
        for i, n in enumerate(LENGTHS):
            frames, video = _episode(n, i)
            writer.add_episode(frames, "reach the red cube", video)
    return root


def read_rrd(path: Path) -> dict[str, list]:
    """entity path -> its chunks' record batches (static ones included)."""
    out: dict[str, list] = {}
    for chunk in RrdReader(path).stream().to_chunks():
        out.setdefault(chunk.entity_path, []).append(chunk.to_record_batch())
    return out


def column(batches: list, name: str) -> list:
    """A component's values over all (temporal) rows of an entity, in row order."""
    rows = [b for b in batches if name in b.schema.names]
    assert rows, f"no {name} in {[b.schema.names for b in batches]}"
    return [v for b in rows for v in b.column(name).to_pylist()]


def test_a_dataset_episode_in_rerun_has_every_dimension_named(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "ep1.rrd"
    assert main(["view", "dataset", str(dataset), "--episode", "1", "--save", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "rerun " in printed
    entities = read_rrd(out)
    reader = DatasetReader(dataset)
    rows = reader.episode_rows(1)
    n = LENGTHS[1]

    # every dimension at <feature>/<name>, its values, and its name as the series label
    for key, names in (("observation.state", JOINTS), ("action", ACTIONS)):
        assert reader.names(key) == names
        for j, name in enumerate(names):
            path = entity(key, name)
            assert path in entities, f"{path} missing; entities: {sorted(entities)}"
            values = [v[0] for v in column(entities[path], "Scalars:scalars")]
            np.testing.assert_allclose(values, rows[key][:, j], rtol=1e-6)
            assert column(entities[path], "frame_index") == list(range(n))
            assert column(entities[path], "SeriesLines:names") == [[name]]
    assert entity("observation.state", "left finger") == "/observation.state/left\\ finger"
    assert entity("action", "gripper/open") == "/action/gripper\\/open"
    assert entity("segment_index") in entities and entity("mask.action", "waist") in entities

    # the camera: one JPEG per frame, close to the dataset's decoded video
    blobs = column(entities[entity(CAM)], "EncodedImage:blob")
    assert len(blobs) == n
    frames = reader.video_frames(1, CAM)
    for i in (0, n - 1):
        decoded = cv2.imdecode(np.frombuffer(bytes(blobs[i][0]), np.uint8), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(int)
        assert rgb.shape == (32, 48, 3)
        assert np.abs(rgb - frames[i].astype(int)).mean() < 4.0

    # hands: the right hand as 21 named keypoints, not drawn where lost; the left never drawn
    right = entities[entity("human.hand_keypoints", "right")]
    positions = column(right, "Points3D:positions")
    counts = [len(p or []) for p in positions]
    assert counts == [21] * (n // 2) + [0] + [21] * (n - n // 2 - 1)
    np.testing.assert_allclose(
        positions[0], rows["human.hand_keypoints"].reshape(-1, 2, 21, 3)[0, 1], rtol=1e-6
    )
    context = str(column(right, "AnnotationContext:context"))
    assert all(name in context for name in KEYPOINT_NAMES)
    left = entities[entity("human.hand_keypoints", "left")]
    assert all(not p for p in column(left, "Points3D:positions"))
    assert "reach the red cube" in str(column(entities["/task"], "TextDocument:text"))


def _bag(path: Path) -> None:
    store = make_typestore()
    t = store.types
    Time, Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
    with BagWriter(path) as bag:
        for topic, kind in (
            ("/camera/camera/color/image_raw", "sensor_msgs/msg/Image"),
            ("/camera/camera/color/image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
            ("/camera/camera/aligned_depth_to_color/image_raw", "sensor_msgs/msg/Image"),
            ("/arm/joint_states", "sensor_msgs/msg/JointState"),
            ("/policy/action_chunk", "human_video_policy_msgs/msg/ActionChunk"),
            ("/hand/keypoints", "human_video_policy_msgs/msg/HandKeypoints"),
            ("/episode/start", "std_msgs/msg/UInt32"),
            ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray"),
        ):
            bag.add_topic(topic, kind)
        for i in range(4):
            ns = 1_700_000_000_000_000_000 + i * 100_000_000
            header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="cam")
            rgb = np.full((8, 12, 3), 40 * i, np.uint8)
            _, jpeg = cv2.imencode(".jpg", rgb)
            depth = np.full((8, 12), 500 + i, np.uint16)
            hand = t["human_video_policy_msgs/msg/Hand"](
                handedness="right",
                confidence=0.9,
                keypoints_2d=np.arange(42, dtype=np.float32),
                keypoints_3d=np.full(63, 0.1 * i, np.float32),
                keypoint_confidence=np.ones(21, np.float32),
            )
            messages = [
                ("/camera/camera/color/image_raw", t["sensor_msgs/msg/Image"](
                    header=header, height=8, width=12, encoding="rgb8", is_bigendian=0,
                    step=36, data=rgb.reshape(-1))),
                ("/camera/camera/color/image_raw/compressed", t["sensor_msgs/msg/CompressedImage"](
                    header=header, format="rgb8; jpeg compressed bgr8",
                    data=jpeg.reshape(-1))),
                ("/camera/camera/aligned_depth_to_color/image_raw", t["sensor_msgs/msg/Image"](
                    header=header, height=8, width=12, encoding="16UC1", is_bigendian=0,
                    step=24, data=depth.view(np.uint8).reshape(-1))),
                ("/arm/joint_states", t["sensor_msgs/msg/JointState"](
                    header=header, name=["waist", "left finger"],
                    position=np.array([0.1 * i, 0.02]), velocity=np.zeros(2),
                    effort=np.array([], np.float64))),
                ("/policy/action_chunk", t["human_video_policy_msgs/msg/ActionChunk"](
                    header=header, observation_stamp=header.stamp, action_space="widowx_joints",
                    names=["waist", "gripper"], horizon=2, dims=2, dt=0.1,
                    data=np.array([i, -i, 9, 9], np.float32))),
                ("/hand/keypoints", t["human_video_policy_msgs/msg/HandKeypoints"](
                    header=header, image_width=12, image_height=8, hands=[hand] if i < 3 else [])),
                ("/episode/start", t["std_msgs/msg/UInt32"](data=i)),
                ("/diagnostics", t["diagnostic_msgs/msg/DiagnosticArray"](
                    header=header, status=[])),
            ]  # fmt: skip
            for topic, msg in messages:
                bag.write(topic, ns, msg)


def test_a_bag_in_rerun_names_joints_and_columns_and_shows_images(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bag = tmp_path / "bag"
    _bag(bag)
    out = tmp_path / "bag.rrd"
    assert main(["view", "bag", str(bag), "--save", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped /diagnostics" in printed
    entities = read_rrd(out)
    stamps = [1_700_000_000_000_000_000 + i * 100_000_000 for i in range(4)]

    waist = entities["/arm/joint_states/position/waist"]
    assert [v[0] for v in column(waist, "Scalars:scalars")] == pytest.approx([0, 0.1, 0.2, 0.3])
    times = [
        b.column("ros_time").cast(pa.int64()).to_pylist()
        for b in waist
        if "ros_time" in b.schema.names
    ]
    assert [t for chunk in times for t in chunk] == stamps
    assert column(waist, "SeriesLines:names") == [["waist"]]
    assert "/arm/joint_states/position/left\\ finger" in entities
    gripper = entities["/policy/action_chunk/gripper"]  # the row executed next
    assert [v[0] for v in column(gripper, "Scalars:scalars")] == [0, -1, -2, -3]
    assert [v[0] for v in column(entities["/episode/start"], "Scalars:scalars")] == [0, 1, 2, 3]

    assert len(column(entities["/camera/camera/color/image_raw"], "EncodedImage:blob")) == 4
    compressed = column(entities["/camera/camera/color/image_raw/compressed"], "EncodedImage:blob")
    assert len(compressed) == 4
    depth = entities["/camera/camera/aligned_depth_to_color/image_raw"]
    assert column(depth, "DepthImage:meter") == [[1000.0]] * 4

    right = entities["/hand/keypoints/right"]
    assert [len(p) for p in column(right, "Points2D:positions")] == [21, 21, 21]
    assert column(right, "Points2D:positions")[0][1] == pytest.approx([2.0, 3.0])
    assert "/hand/keypoints/right/3d" in entities
    assert "/diagnostics" not in entities


def test_bad_requests_name_the_problem(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    save = ["--save", str(tmp_path / "x.rrd")]
    assert main(["view", "dataset", str(dataset), "--episode", "5", *save]) == 2
    assert "has episodes 0..1; there is no episode 5" in capsys.readouterr().err
    assert main(["view", "dataset", str(dataset), "--save", str(tmp_path / "x.mp4")]) == 2
    assert "must end in .rrd" in capsys.readouterr().err
    assert main(["view", "bag", str(tmp_path / "nothing"), "--save", str(tmp_path / "y.rrd")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["view"]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_shows_the_episode_in_a_browser_on_localhost_only(dataset: Path) -> None:
    web, grpc = _free_port(), _free_port()
    command = [sys.executable, "-m", "human_video_policy.cli.main", "view", "dataset",
               str(dataset), "--episode", "0", "--serve", "--web-port", str(web),
               "--grpc-port", str(grpc)]  # fmt: skip
    process = start_process(command)
    url = f"http://127.0.0.1:{web}/"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    try:
        assert wait_for(lambda: answers() or process.popen.poll() is not None, 60, poll=0.5)
        assert process.popen.poll() is None, process.output()
        assert f"serving on {url[:-1]}" in process.output()
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        local = {line.split()[1] for line in listening if line.split()[3] == "0A"}
        assert f"0100007F:{web:04X}" in local  # 127.0.0.1, not 0.0.0.0
        assert f"00000000:{web:04X}" not in local
    finally:
        code = process.stop(signal.SIGINT, timeout=15)
        output = process.output()
        process.close()
    assert code == 0, output
    # the viewer server went with it (a leaked `rerun --serve-web` kept a core busy)
    gone = wait_for(lambda: not _serving_on(grpc), 10, poll=0.2)
    assert gone, "the Rerun server outlived hvp view"


def _serving_on(grpc_port: int) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--serve-web" in args and str(grpc_port).encode() in args:
            return True
    return False
