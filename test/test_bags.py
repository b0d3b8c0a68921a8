"""rosbag2 I/O: real bags written by ROS 2 itself, round trips in both storages, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from human_video_policy.data import BagReader, BagWriter, make_typestore, qos_profile
from human_video_policy.errors import InputError

TALKER = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rosbags" / "rosbag2_talker"
)
STORAGE_FILE = {"mcap": "talker.mcap", "sqlite3": "talker.db3"}


def talker_bag(storage: str) -> Path:
    path = TALKER / f"{storage}_talker"
    assert (path / "metadata.yaml").is_file(), (
        f"real rosbag2 test data missing: {path} (see ../shared/data/SOURCES.md)"
    )
    return path


# -- real bags --------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_reads_real_talker_bag(storage: str) -> None:
    with BagReader(talker_bag(storage)) as bag:
        assert bag.storage == storage
        topics = bag.topics
        assert set(topics) == {"/topic", "/rosout", "/parameter_events"}
        assert topics["/topic"].msgtype == "std_msgs/msg/String"
        assert topics["/topic"].count == 10
        assert topics["/rosout"].msgtype == "rcl_interfaces/msg/Log"
        assert bag.message_count == 20
        assert bag.duration_ns == 4_531_096_768
        assert bag.start_ns == 1_585_866_235_112_411_371

        # The recorder stored other QoS values than metadata.yaml lists; reading must not care.
        assert "/topic" in bag.qos_mismatches

        msgs = list(bag.messages(["/topic"]))
        assert [m.msg.data for m in msgs] == [f"Hello, world! {i}" for i in range(10)]
        assert all(topic == "/topic" for topic, _, _ in msgs)
        stamps = [m.stamp_ns for m in msgs]
        assert stamps == sorted(stamps)
        assert bag.start_ns <= stamps[0] and stamps[-1] <= bag.end_ns

        everything = list(bag)
        assert len(everything) == 20
        assert [m.stamp_ns for m in everything] == sorted(m.stamp_ns for m in everything)
        logs = [m.msg for m in everything if m.topic == "/rosout"]
        assert len(logs) == 10 and all(isinstance(log.msg, str) for log in logs)


def test_both_storages_hold_the_same_messages() -> None:
    def content(storage: str) -> list[tuple[str, int, bytes]]:
        with BagReader(talker_bag(storage)) as bag:
            return [(t, s, bytes(m)) for t, s, m in bag.messages(raw=True)]

    assert content("mcap") == content("sqlite3")


# -- round trip -------------------------------------------------------------------------------


def _sample_messages(store):
    t = store.types
    Time = t["builtin_interfaces/msg/Time"]
    Header = t["std_msgs/msg/Header"]
    rng = np.random.default_rng(0)
    out = []
    for i in range(3):
        stamp_ns = 1_700_000_000_000_000_000 + i * 100_000_000
        sec, nsec = divmod(stamp_ns, 1_000_000_000)
        header = Header(stamp=Time(sec=sec, nanosec=nsec), frame_id="wx250s/base_link")
        chunk = t["human_video_policy_msgs/msg/ActionChunk"](
            header=header,
            observation_stamp=Time(sec=sec, nanosec=max(nsec - 1000, 0)),
            action_space="widowx_joint_position",
            names=["waist", "shoulder", "elbow", "roll", "wrist_angle", "wrist_rotate", "g"],
            horizon=4,
            dims=7,
            dt=0.25,  # exact in float32
            data=rng.standard_normal(28).astype(np.float32),
        )
        joints = t["sensor_msgs/msg/JointState"](
            header=header,
            name=["joint1", "joint2"],
            position=rng.standard_normal(2),
            velocity=np.zeros(2),
            effort=np.array([], dtype=np.float64),
        )
        pixels = rng.integers(0, 255, size=(4, 6, 3), dtype=np.uint8)
        image = t["sensor_msgs/msg/Image"](
            header=Header(stamp=header.stamp, frame_id="camera_color_optical_frame"),
            height=4,
            width=6,
            encoding="rgb8",
            is_bigendian=0,
            step=18,
            data=pixels.reshape(-1),
        )
        out += [
            ("/policy/action_chunk", stamp_ns, chunk),
            ("/arm/joint_states", stamp_ns + 1, joints),
            ("/camera/camera/color/image_raw", stamp_ns + 2, image),
        ]
    return out


def _assert_same(a, b) -> None:
    assert type(a).__name__ == type(b).__name__
    for field in a.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if hasattr(x, "__dataclass_fields__"):
            _assert_same(x, y)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype
        else:
            assert x == y, field


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip(tmp_path: Path, storage: str) -> None:
    store = make_typestore()
    written = _sample_messages(store)
    path = tmp_path / "demo"
    with BagWriter(path, storage=storage) as bag:
        bag.add_topic("/policy/action_chunk", "human_video_policy_msgs/msg/ActionChunk")
        bag.add_topic("/arm/joint_states", "sensor_msgs/JointState")
        bag.add_topic("/camera/camera/color/image_raw", "sensor_msgs/msg/Image")
        for topic, stamp, msg in written:
            bag.write(topic, stamp, msg)
    assert (path / "metadata.yaml").is_file()

    with BagReader(path) as bag:
        assert bag.storage == storage
        assert {n: s.count for n, s in bag.topics.items()} == {
            "/policy/action_chunk": 3,
            "/arm/joint_states": 3,
            "/camera/camera/color/image_raw": 3,
        }
        assert bag.qos_mismatches == {}
        qos = {c.topic: c.ext.offered_qos_profiles for c in bag._meta_connections}
        assert qos["/camera/camera/color/image_raw"] == [qos_profile("sensor_data")]
        assert qos["/arm/joint_states"] == [qos_profile("default")]
        read = list(bag)
        assert [(t, s) for t, s, _ in read] == [(t, s) for t, s, _ in written]
        for (_, _, a), (_, _, b) in zip(written, read, strict=True):
            _assert_same(a, b)
        only_images = list(bag.messages(["/camera/camera/color/image_raw"]))
        assert len(only_images) == 3
        img = only_images[0].msg
        assert img.data.reshape(img.height, img.width, 3).shape == (4, 6, 3)


def test_writer_refuses_existing_path_and_bad_storage(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="exists already"):
        BagWriter(tmp_path)
    with pytest.raises(ValueError, match="storage='rosbag1'"):
        BagWriter(tmp_path / "x", storage="rosbag1")


# -- bad input --------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        BagReader(tmp_path / "nope").open()


def test_directory_without_metadata(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    bag.mkdir()
    shutil.copy(talker_bag("mcap") / "talker.mcap", bag)
    with pytest.raises(InputError, match=r"no metadata\.yaml"):
        BagReader(bag).open()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_storage_file(tmp_path: Path, storage: str) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(talker_bag(storage), bag)
    data_file = bag / STORAGE_FILE[storage]
    raw = data_file.read_bytes()
    data_file.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated or corrupt") as info, BagReader(bag) as reader:
        list(reader)
    assert str(bag) in str(info.value)


def test_unknown_type(tmp_path: Path) -> None:
    from rosbags.typesys import get_types_from_msg

    writer_store = make_typestore(get_types_from_msg("float64 level", "acme_msgs/msg/Mystery"))
    path = tmp_path / "bag"
    with BagWriter(path, typestore=writer_store) as bag:
        bag.add_topic("/mystery", "acme_msgs/msg/Mystery")
        bag.add_topic("/topic", "std_msgs/msg/String")
        bag.write("/mystery", 1, writer_store.types["acme_msgs/msg/Mystery"](level=2.5))
        bag.write("/topic", 2, writer_store.types["std_msgs/msg/String"](data="hi"))

    # The bag stores the definition: a reader learns the type from it.
    with BagReader(path) as reader:
        assert [m.msg.level for m in reader.messages(["/mystery"])] == [2.5]

    # Without using stored definitions the type is unknown: raise naming topic and type ...
    with BagReader(path, use_bag_definitions=False) as reader:
        assert reader.topics["/mystery"].known_type is False
        with pytest.raises(InputError, match=r"/mystery \(acme_msgs/msg/Mystery\)"):
            list(reader)
    # ... or skip it when asked.
    with BagReader(path, use_bag_definitions=False, on_unknown="skip") as reader:
        assert [m.msg.data for m in reader] == ["hi"]
        assert reader.skipped_topics == {"/mystery": "acme_msgs/msg/Mystery"}

    with BagReader(path) as reader, pytest.raises(InputError, match="no topic"):
        list(reader.messages(["/absent"]))
    with pytest.raises(InputError, match="unknown message type"), BagWriter(tmp_path / "w") as w:
        w.add_topic("/x", "acme_msgs/msg/Mystery")
