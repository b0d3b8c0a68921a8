"""The Foxglove bridge: ROS messages published over real rclpy/DDS (loopback, this test's own
ROS_DOMAIN_ID) reach a WebSocket client speaking the Foxglove protocol, decoded the way Foxglove
decodes them (protobuf from the advertised descriptors, JSON).

The node is a real process (``foxglove_bridge_node``); it finds the topics itself, so nothing
tells it which graph runs. The converters are also checked on their own, on rclpy messages.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import sys
import time

import numpy as np
import pytest
from foxglove_client import FoxgloveClient, protobuf_decoder
from geometry_msgs.msg import PoseStamped
from human_video_policy_msgs.msg import ActionChunk, Hand, HandKeypoints
from ros_helpers import PeriodicThread, RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import UInt32

from human_video_policy.nodes.qos import LATCHED, RELIABLE, SENSOR_DATA
from human_video_policy.viz.foxglove_bridge import FoxgloveBridge
from human_video_policy.viz.foxglove_convert import (
    KEYPOINT_NAMES,
    choose_qos,
    chunk_columns,
    compressed_format,
    conversion_for,
    to_json,
)

pytestmark = pytest.mark.ros

W, H = 64, 48
JOINTS = ["waist", "shoulder", "elbow"]
COLUMNS = ["waist", "shoulder", "elbow", "left_finger"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_msg(i: int) -> Image:
    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + i, 5
    msg.header.frame_id = "camera_color_optical_frame"
    msg.width, msg.height, msg.encoding, msg.step = W, H, "rgb8", 3 * W
    pixels = (np.arange(H * W * 3, dtype=np.uint32) * 7 + i).astype(np.uint8)
    msg.data = pixels.tobytes()
    return msg


def keypoints_msg(i: int) -> HandKeypoints:
    msg = HandKeypoints()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + i, 5
    msg.header.frame_id = "camera_color_optical_frame"
    msg.image_width, msg.image_height = W, H
    hand = Hand()
    hand.handedness, hand.confidence = "right", 0.9
    uv = np.stack([np.linspace(5, 60, 21), np.linspace(4, 40, 21)], axis=1)
    hand.keypoints_2d = uv.astype(np.float32).ravel().tolist()
    xyz = np.stack([np.linspace(-0.05, 0.05, 21), np.zeros(21), np.full(21, 0.5)], axis=1)
    hand.keypoints_3d = xyz.astype(np.float32).ravel().tolist()
    hand.keypoint_confidence = [1.0] * 21
    msg.hands = [hand]
    return msg


def joint_state_msg(i: int) -> JointState:
    msg = JointState()
    msg.header.stamp.sec = 100 + i
    msg.name = JOINTS
    msg.position = [0.1 * i, -0.5, 1.25]
    msg.velocity = [0.0, 0.0, 0.0]
    return msg


def chunk_msg(i: int) -> ActionChunk:
    msg = ActionChunk()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + i, 50_000_000
    msg.observation_stamp.sec = 100 + i
    msg.action_space, msg.names = "widowx_joints", COLUMNS
    msg.horizon, msg.dims, msg.dt = 3, 4, 0.1
    msg.data = (np.arange(12, dtype=np.float32) + i).tolist()
    return msg


class Publishers(PeriodicThread):
    """Publishes every test topic at 20 Hz, as a graph would."""

    def __init__(self, probe: RosProbe) -> None:
        super().__init__(0.05)
        self.i = 0
        kinds = {
            "/camera/camera/color/image_raw": (Image, SENSOR_DATA, image_msg),
            "/hand/keypoints": (HandKeypoints, SENSOR_DATA, keypoints_msg),
            "/arm/joint_states": (JointState, RELIABLE, joint_state_msg),
            "/policy/action_chunk": (ActionChunk, RELIABLE, chunk_msg),
            "/episode/start": (UInt32, RELIABLE, lambda i: UInt32(data=i)),
        }
        self.pubs = {
            topic: (probe.publisher(topic, kind, qos), make)
            for topic, (kind, qos, make) in kinds.items()
        }

    def step(self) -> None:
        self.i += 1
        for pub, make in self.pubs.values():
            pub.publish(make(self.i))


async def _watch(url: str, topics: list[str], count: dict[str, int]) -> tuple[dict, dict]:
    async with FoxgloveClient(url) as client:
        channels = await client.wait_for_channels(topics, timeout=20.0)
        await client.subscribe(topics)
        got = await client.receive(topics, count=count, timeout=20.0)
    return channels, got


def test_a_foxglove_client_receives_every_kind_of_topic_of_a_live_graph() -> None:
    port = free_port()
    node = start_process(
        node_command("foxglove_bridge_node", "-p", f"port:={port}", "-p", "discovery_period_s:=0.2")
    )
    try:
        assert wait_for(
            lambda: f"127.0.0.1:{port}" in node.output() or node.popen.poll() is not None, 30
        )
        assert node.popen.poll() is None, node.output()
        with RosProbe("fox_pub") as probe, Publishers(probe) as pubs:
            latched = probe.publisher("/camera/camera/extrinsic", PoseStamped, LATCHED)
            pose = PoseStamped()
            pose.header.frame_id = "base_link"
            pose.pose.position.x, pose.pose.orientation.w = 0.25, 1.0
            latched.publish(pose)
            topics = [
                "/camera/camera/color/image_raw",
                "/hand/keypoints",
                "/hand/keypoints/annotations",
                "/hand/keypoints/scene",
                "/arm/joint_states",
                "/policy/action_chunk",
                "/episode/start",
                "/camera/camera/extrinsic",
            ]
            counts = {t: 3 for t in topics} | {"/camera/camera/extrinsic": 1}
            started = time.monotonic()
            channels, got = asyncio.run(_watch(f"ws://127.0.0.1:{port}", topics, counts))
            elapsed = time.monotonic() - started
            sent = pubs.i
        assert node.popen.poll() is None, node.output()
    finally:
        node.stop()
        output = node.output()
        node.close()
    assert "ws://127.0.0.1:" in output

    # the schemas Foxglove's panels know
    assert channels["/camera/camera/color/image_raw"]["schemaName"] == "foxglove.RawImage"
    assert channels["/hand/keypoints/annotations"]["schemaName"] == "foxglove.ImageAnnotations"
    assert channels["/hand/keypoints/scene"]["schemaName"] == "foxglove.SceneUpdate"
    assert channels["/arm/joint_states"]["encoding"] == "json"
    assert channels["/arm/joint_states"]["schemaName"] == "hvp.JointState"
    assert channels["/policy/action_chunk"]["schemaName"] == "hvp.ActionChunk"

    # the image, byte for byte, with its stamp and frame
    _, image = got["/camera/camera/color/image_raw"][-1]
    i = image["__proto__"].timestamp.seconds - 100
    assert 1 <= i <= sent
    assert (image["width"], image["height"], image["encoding"]) == (W, H, "rgb8")
    assert image["__proto__"].step == 3 * W and image["frame_id"] == "camera_color_optical_frame"
    assert image["__proto__"].data == image_msg(i).data.tobytes()

    # hand keypoints: 21 points + 20 bones over the image, at the image's stamp; 3D hand
    _, notes = got["/hand/keypoints/annotations"][-1]
    proto = notes["__proto__"]
    kinds = sorted(len(p.points) for p in proto.points)
    assert kinds == [21, 40]  # 21 keypoints; 20 bones as a line list
    dots = next(p for p in proto.points if len(p.points) == 21)
    assert dots.points[20].x == pytest.approx(60.0) and dots.points[0].y == pytest.approx(4.0)
    assert proto.texts[0].text == "right 0.90"
    assert proto.points[0].timestamp.nanos == 5
    _, scene = got["/hand/keypoints/scene"][-1]
    entity = scene["__proto__"].entities[0]
    assert entity.id == "hand_right" and entity.frame_id == "camera_color_optical_frame"
    assert len(entity.spheres) == 21 and entity.spheres[0].pose.position.z == pytest.approx(0.5)
    _, summary = got["/hand/keypoints"][-1]
    assert set(summary["hands"]["right"]["keypoints_3d"]) == set(KEYPOINT_NAMES)

    # joint states and action chunks, every dimension by name
    _, joints = got["/arm/joint_states"][-1]
    assert joints["name"] == JOINTS
    assert joints["by_name"]["elbow"]["position"] == pytest.approx(1.25)
    assert joints["header"]["stamp"]["sec"] >= 101
    _, chunk = got["/policy/action_chunk"][-1]
    k = chunk["header"]["stamp"]["sec"] - 100
    assert chunk["names"] == COLUMNS
    assert chunk["first"] == {c: pytest.approx(j + k) for j, c in enumerate(COLUMNS)}
    assert chunk["columns"]["left_finger"] == pytest.approx([3 + k, 7 + k, 11 + k])
    assert chunk["latency_s"] == pytest.approx(0.05)

    # a latched pose published once, before anyone watched, still reaches the late client
    _, extrinsic = got["/camera/camera/extrinsic"][0]
    assert channels["/camera/camera/extrinsic"]["schemaName"] == "foxglove.PoseInFrame"
    assert extrinsic["frame_id"] == "base_link"
    assert extrinsic["__proto__"].pose.position.x == pytest.approx(0.25)

    # a type without a conversion arrives as JSON of its fields
    assert channels["/episode/start"]["schemaName"] == "std_msgs/msg/UInt32"
    _, start = got["/episode/start"][-1]
    assert 1 <= start["data"] <= sent
    print(f"[foxglove] 3 messages on each of {len(topics)} channels in {elapsed:.2f} s")


def test_the_bridge_converts_only_what_a_client_watches_and_counts_bad_messages() -> None:
    async def run(bridge: FoxgloveBridge) -> tuple[bool, bool, dict]:
        async with FoxgloveClient(bridge.url) as client:
            await client.wait_for_channels(["/arm/joint_states", "/img"], timeout=5.0)
            unwatched = bridge.publish("/img", image_msg(1))
            await client.subscribe(["/arm/joint_states"])
            assert wait_for(lambda: bridge.publish("/arm/joint_states", joint_state_msg(2)), 5)
            broken = bridge.publish("/arm/joint_states", object())  # no fields at all
            got = await client.receive(["/arm/joint_states"], count=1, timeout=5.0)
            return unwatched, broken, got

    with FoxgloveBridge(port=0) as bridge:
        assert bridge.add_topic("/arm/joint_states", "sensor_msgs/JointState") == [
            "/arm/joint_states"
        ]
        bridge.add_topic("/img", "sensor_msgs/msg/Image")
        unwatched, broken, got = asyncio.run(run(bridge))
        stats = bridge.topics()
        assert bridge.publish("/not_added", image_msg(1)) is False
    assert unwatched is False and broken is False
    assert stats["/img"].received == 1 and stats["/img"].forwarded == 0
    joints = stats["/arm/joint_states"]
    assert joints.forwarded >= 1 and joints.errors == 1
    assert "AttributeError" in joints.last_error
    assert got["/arm/joint_states"][0][1]["by_name"]["waist"]["position"] == pytest.approx(0.2)


def test_conversions_on_their_own() -> None:
    assert compressed_format("rgb8; jpeg compressed bgr8") == "jpeg"
    assert compressed_format("png") == "png"
    bad = chunk_msg(0)
    bad.names = ["a", "a", "b", "c"]
    assert chunk_columns(bad) == ["dim_0", "dim_1", "dim_2", "dim_3"]
    bad.data = [1.0]
    assert "error" in conversion_for("human_video_policy_msgs/msg/ActionChunk").convert(bad)[""]
    # generic JSON: nested messages, stamps, long arrays cut with their length
    state = joint_state_msg(1)
    state.position = list(range(300))
    generic = to_json(state, max_array=10)
    assert generic["header"]["stamp"] == {"sec": 101, "nsec": 0}
    assert generic["position"] == list(range(10)) and generic["position__len"] == 300
    assert conversion_for("std_msgs/msg/UInt32", generic=False) is None
    # QoS: sensor streams best effort; others reliable/latched only if every publisher is
    assert choose_qos("sensor_msgs/msg/Image", [(True, False)]).reliable is False
    assert choose_qos("sensor_msgs/msg/JointState", [(True, False)]).reliable is True
    mixed = choose_qos("std_msgs/msg/Bool", [(True, True), (False, False)])
    assert (mixed.reliable, mixed.transient_local) == (False, False)
    assert choose_qos("geometry_msgs/msg/PoseStamped", [(True, True)]).transient_local is True
    assert choose_qos("std_msgs/msg/Bool", []) is None
    # a lost keypoint (NaN) is left out of the overlay and its bone, null in the JSON
    msg = keypoints_msg(1)
    uv = list(msg.hands[0].keypoints_2d)
    uv[40] = float("nan")  # keypoint 20 (pinky tip) u
    msg.hands[0].keypoints_2d = uv
    out = conversion_for("human_video_policy_msgs/msg/HandKeypoints").convert(msg)
    schema = type(out["/annotations"]).get_schema()
    decode = protobuf_decoder(schema.name, base64.b64encode(schema.data).decode())
    bones, dots = decode(out["/annotations"].encode())["__proto__"].points
    assert (len(bones.points), len(dots.points)) == (2 * 19, 20)
    keypoints_2d = out[""]["hands"]["right"]["keypoints_2d"]
    assert keypoints_2d["pinky_4"] == {"u": None, "v": None}
    assert keypoints_2d["pinky_3"]["u"] == pytest.approx(uv[38])


def test_bad_parameters_stop_the_node_with_exit_code_2() -> None:
    for arg, word in (("port:=70000", "port"), ("include:='(['", "include")):
        node = start_process(node_command("foxglove_bridge_node", "-p", arg))
        try:
            code = node.wait(timeout=30)
            output = node.output()
        finally:
            node.close()
        assert code == 2, output
        assert word in output


def test_the_view_graph_runs_the_bridge_beside_any_graph() -> None:
    """`hvp launch view port:=P` (the graph a lab adds to whatever runs) serves a topic that
    another process publishes, with no topic list given."""
    port = free_port()
    launcher = start_process(
        [sys.executable, "-m", "human_video_policy.cli.main", "launch", "view", f"port:={port}"]
    )
    try:
        assert wait_for(
            lambda: f"127.0.0.1:{port}" in launcher.output() or launcher.popen.poll() is not None,
            30,
        )
        assert launcher.popen.poll() is None, launcher.output()
        with RosProbe("view_pub") as probe:
            pub = probe.publisher("/leader/joint_states", JointState, RELIABLE)

            class States(PeriodicThread):
                def step(self) -> None:
                    pub.publish(joint_state_msg(7))

            with States(0.05):
                topic = ["/leader/joint_states"]
                _, got = asyncio.run(_watch(f"ws://127.0.0.1:{port}", topic, {topic[0]: 2}))
    finally:
        code = launcher.stop()
        output = launcher.output()
        launcher.close()
    assert got["/leader/joint_states"][-1][1]["by_name"]["waist"]["position"] == pytest.approx(0.7)
    assert code == 0, output


def test_hvp_view_live_bridges_what_its_options_select() -> None:
    """`hvp view live --port P --include RE --exclude RE` (the command the docs give a lab):
    of three topics published together, the client is offered only the included one that is
    not excluded, and receives it."""
    port = free_port()
    view = start_process(
        [sys.executable, "-m", "human_video_policy.cli.main", "view", "live", "--port", str(port),
         "--include", "^/leader/", "--exclude", "^/leader/secret"]
    )  # fmt: skip

    async def watch() -> tuple[set[str], dict]:
        async with FoxgloveClient(f"ws://127.0.0.1:{port}") as client:
            await client.wait_for_channels(["/leader/joint_states"], timeout=20.0)
            await client.subscribe(["/leader/joint_states"])
            got = await client.receive(["/leader/joint_states"], count=2, timeout=20.0)
            await asyncio.sleep(1.0)  # several discovery periods after the first advertisement
            await client.receive(["/leader/joint_states"], count=3, timeout=20.0)
            return set(client.channels), got

    try:
        assert wait_for(
            lambda: f"127.0.0.1:{port}" in view.output() or view.popen.poll() is not None, 30
        )
        assert view.popen.poll() is None, view.output()
        with RosProbe("view_live_pub") as probe:
            shown = probe.publisher("/leader/joint_states", JointState, RELIABLE)
            hidden = probe.publisher("/leader/secret_states", JointState, RELIABLE)
            other = probe.publisher("/arm/joint_states", JointState, RELIABLE)

            class States(PeriodicThread):
                def step(self) -> None:
                    for pub in (shown, hidden, other):
                        pub.publish(joint_state_msg(7))

            with States(0.05):
                advertised, got = asyncio.run(watch())
    finally:
        code = view.stop()
        output = view.output()
        view.close()
    assert got["/leader/joint_states"][-1][1]["by_name"]["waist"]["position"] == pytest.approx(0.7)
    assert advertised == {"/leader/joint_states"}, advertised
    assert code == 0, output
