"""Bags the project writes hold what ROS 2 Jazzy's rosbag2 writes, read with third-party readers.

rosbags (our writer) departs from rosbag2 in two places, and both matter to ROS tools: MCAP
channels lacked ``topic_type_hash`` (rosbag2 reads a topic's type description hash from it) and
every file said ``ros_distro: rosbags``. Here the project's writers (:class:`BagWriter` and the
recorder's split files) write both storages, and what they wrote is read back without rosbags:
``mcap`` (CRCs validated, every record walked) and ``mcap_ros2``'s decoder for MCAP, Python's
sqlite3 for sqlite3. The same reading is applied to the real bags ROS 2 recorded
(``shared/data/rosbags/rosbag2_talker``) as the reference for what rosbag2 writes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED_DATA
from mcap.reader import make_reader
from mcap.records import Channel, Metadata, Schema
from mcap.stream_reader import StreamReader
from mcap_ros2.decoder import DecoderFactory
from rosbags.typesys.store import Typestore
from ruamel.yaml import YAML

from human_video_policy.data import BagReader, BagWriter, make_typestore
from human_video_policy.data.bag_repair import ROS_DISTRO
from human_video_policy.data.recorder import EpisodeRecorder, RecorderConfig

TALKER = SHARED_DATA / "rosbags" / "rosbag2_talker"
ROS2_CHANNEL_KEYS = {"offered_qos_profiles", "topic_type_hash"}  # rosbag2_storage_mcap (Jazzy)
SQLITE3_TABLES = {"schema", "metadata", "topics", "message_definitions", "messages"}

# -- what is written ---------------------------------------------------------------------------


def _messages(store: Typestore) -> dict[str, tuple[str, list[tuple[int, Any]]]]:
    """topic -> (type, [(stamp, message)]): standard types (nested, string and numeric arrays,
    bytes) and one of the project's own (human_video_policy_msgs)."""
    t = store.types

    def header(i: int) -> Any:
        stamp = t["builtin_interfaces/msg/Time"](sec=1_700_000_000 + i, nanosec=250 * i)
        return t["std_msgs/msg/Header"](stamp=stamp, frame_id=f"frame_{i}")

    base = 1_700_000_000_000_000_000
    out: dict[str, tuple[str, list[tuple[int, Any]]]] = {
        "/arm/joint_states": ("sensor_msgs/msg/JointState", []),
        "/operator/note": ("std_msgs/msg/String", []),
        "/camera/image/compressed": ("sensor_msgs/msg/CompressedImage", []),
        "/prompt/embedding": ("human_video_policy_msgs/msg/PromptEmbedding", []),
        "/sim/ee_pose": ("geometry_msgs/msg/PoseStamped", []),
    }
    for i in range(3):
        stamp = base + i * 10_000_000
        out["/arm/joint_states"][1].append(
            (
                stamp,
                t["sensor_msgs/msg/JointState"](
                    header=header(i),
                    name=["waist", "shoulder"],
                    position=np.array([0.25 * i, -1.5], dtype=np.float64),
                    velocity=np.array([0.0, 1e-3 * i], dtype=np.float64),
                    effort=np.zeros(0, dtype=np.float64),
                ),
            )
        )
        out["/operator/note"][1].append((stamp + 1, t["std_msgs/msg/String"](data=f"pick {i}")))
        out["/camera/image/compressed"][1].append(
            (
                stamp + 2,
                t["sensor_msgs/msg/CompressedImage"](
                    header=header(i),
                    format="rgb8; jpeg compressed bgr8",
                    data=np.arange(i, i + 40, dtype=np.uint8),
                ),
            )
        )
        out["/prompt/embedding"][1].append(
            (
                stamp + 3,
                t["human_video_policy_msgs/msg/PromptEmbedding"](
                    header=header(i),
                    source=f"demo_{i}.mp4",
                    encoder_id="encoder.onnx@abc",
                    num_tokens=2,
                    dims=3,
                    data=np.linspace(-1.0, 1.0, 6, dtype=np.float32) * (i + 1),
                ),
            )
        )
        point = t["geometry_msgs/msg/Point"](x=0.1 * i, y=-0.2, z=0.3)
        quat = t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)
        out["/sim/ee_pose"][1].append(
            (
                stamp + 4,
                t["geometry_msgs/msg/PoseStamped"](
                    header=header(i),
                    pose=t["geometry_msgs/msg/Pose"](position=point, orientation=quat),
                ),
            )
        )
    return out


def plain(value: Any) -> Any:
    """A message (rosbags' dataclasses or mcap_ros2's decoded objects) as plain Python values,
    so that two decoders' results compare field by field."""
    if is_dataclass(value) and not isinstance(value, type):
        # rosbags: fields with a default are constants and __msgtype__, not message fields
        names = [f.name for f in fields(value) if f.default is MISSING]
        return {name: plain(getattr(value, name)) for name in names}
    if hasattr(value, "__slots__") and not isinstance(value, (str, bytes)):
        return {name: plain(getattr(value, name)) for name in value.__slots__}
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return list(bytes(value))
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _expected(sent: dict[str, tuple[str, list[tuple[int, Any]]]]) -> dict[str, list[tuple]]:
    return {topic: [(s, plain(m)) for s, m in msgs] for topic, (_, msgs) in sent.items()}


def _yaml(text: str) -> Any:
    return YAML(typ="safe").load(text)


# -- reading it back without rosbags --------------------------------------------------------------


@dataclass
class McapContent:
    """What an MCAP file holds, as the ``mcap`` and ``mcap_ros2`` packages read it."""

    profile: str
    library: str
    schemas: dict[str, Schema] = field(default_factory=dict)  # by name
    channels: dict[str, Channel] = field(default_factory=dict)  # by topic
    records: dict[str, Metadata] = field(default_factory=dict)  # metadata records by name
    messages: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)  # plain, by topic
    message_count: int = 0  # the summary's statistics
    walked_records: int = 0


def read_mcap(path: Path) -> McapContent:
    """Walk every record with CRC validation, then read summary, metadata and every message
    (decoded by mcap_ros2 from the schema the file stores)."""
    with path.open("rb") as stream:
        walked = sum(1 for _ in StreamReader(stream, validate_crcs=True).records)
    with path.open("rb") as stream:
        reader = make_reader(stream, validate_crcs=True, decoder_factories=[DecoderFactory()])
        header = reader.get_header()
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None, f"{path}: no summary"
        content = McapContent(header.profile, header.library, walked_records=walked)
        content.message_count = summary.statistics.message_count
        content.schemas = {s.name: s for s in summary.schemas.values()}
        assert len(content.schemas) == len(summary.schemas), f"{path}: a type has two schemas"
        for channel in summary.channels.values():
            assert channel.topic not in content.channels, f"{path}: {channel.topic} twice"
            content.channels[channel.topic] = channel
        for record in reader.iter_metadata():
            content.records[record.name] = record
        for _schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=True):
            content.messages.setdefault(channel.topic, []).append(
                (message.log_time, plain(decoded))
            )
    return content


def check_mcap(
    path: Path, store: Typestore, expected: dict[str, list[tuple]] | None
) -> McapContent:
    """The checks that tell an MCAP file as rosbag2 (Jazzy) writes it: ros2 profile, ros2msg
    schemas named after the type, cdr channels whose metadata holds the offered QoS and the
    RIHS01 type hash, a ``rosbag2`` metadata record with the serialized bag metadata naming the
    distribution; and (``expected``) every message decodes to what was written."""
    content = read_mcap(path)
    assert content.profile == "ros2"
    assert content.walked_records > 0
    for topic, channel in content.channels.items():
        schema = next(s for s in content.schemas.values() if s.id == channel.schema_id)
        assert schema.encoding == "ros2msg", (topic, schema.encoding)
        assert schema.data, f"{topic}: the schema holds no message definition"
        assert channel.message_encoding == "cdr"
        assert set(channel.metadata) == ROS2_CHANNEL_KEYS, (topic, channel.metadata)
        assert channel.metadata["topic_type_hash"] == store.hash_rihs01(schema.name), topic
        assert channel.metadata["topic_type_hash"].startswith("RIHS01_")
        qos = _yaml(channel.metadata["offered_qos_profiles"])
        assert isinstance(qos, list) and qos and "reliability" in qos[0], (topic, qos)
    assert set(content.records) == {"rosbag2"}, content.records
    info = _yaml(content.records["rosbag2"].metadata["serialized_metadata"])
    assert info["ros_distro"] == ROS_DISTRO, info["ros_distro"]
    assert info["version"] == 9
    hashes = {
        t["topic_metadata"]["name"]: t["topic_metadata"]["type_description_hash"]
        for t in info["topics_with_message_count"]
    }
    assert hashes == {t: c.metadata["topic_type_hash"] for t, c in content.channels.items()}
    if expected is not None:
        assert content.messages == {t: m for t, m in expected.items() if m}
        assert content.message_count == sum(len(m) for m in expected.values())
    return content


@dataclass
class Sqlite3Content:
    """What a rosbag2 sqlite3 file holds, read with Python's sqlite3 module."""

    columns: dict[str, list[str]]  # table -> column names
    schema: list[tuple[int, str]]  # (schema_version, ros_distro)
    metadata: list[tuple[int, str]]  # (metadata_version, serialized metadata)
    topics: dict[str, tuple[int, str, str, str, str]]  # name -> id, type, format, qos, hash
    definitions: dict[str, tuple[str, str, str]]  # type -> encoding, definition, hash
    messages: dict[str, list[tuple[int, Any]]]  # topic -> (stamp, plain message decoded)


def read_sqlite3(path: Path, definitions: dict[str, str] | None = None) -> Sqlite3Content:
    """Read the tables; decode the messages with mcap_ros2 from the stored definitions (or from
    ``definitions``, type -> ros2msg text, where a file's are not real)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        columns = {t: [c[1] for c in db.execute(f'PRAGMA table_info("{t}")')] for t in tables}
        schema = list(db.execute("SELECT schema_version, ros_distro FROM schema"))
        metadata = list(db.execute("SELECT metadata_version, metadata FROM metadata"))
        topics = {
            r[1]: (r[0], r[2], r[3], r[4], r[5])
            for r in db.execute(
                "SELECT id, name, type, serialization_format, offered_qos_profiles, "
                "type_description_hash FROM topics"
            )
        }
        stored = {
            r[0]: (r[1], r[2], r[3])
            for r in db.execute(
                "SELECT topic_type, encoding, encoded_message_definition, type_description_hash "
                "FROM message_definitions"
            )
        }
        rows = list(db.execute("SELECT topic_id, timestamp, data FROM messages ORDER BY id"))
    finally:
        db.close()
    factory = DecoderFactory()
    decoders = {}
    for name, (topic_id, msgtype, *_rest) in topics.items():
        encoding, text, _hash = stored[msgtype]
        if definitions is not None:
            encoding, text = "ros2msg", definitions[msgtype]
        schema_record = Schema(id=topic_id, name=msgtype, encoding=encoding, data=text.encode())
        decoder = factory.decoder_for("cdr", schema_record)
        assert decoder is not None, f"mcap_ros2 cannot decode {msgtype} ({encoding})"
        decoders[topic_id] = (name, decoder)
    messages: dict[str, list[tuple[int, Any]]] = {}
    for topic_id, stamp, data in rows:
        name, decoder = decoders[topic_id]
        messages.setdefault(name, []).append((stamp, plain(decoder(bytes(data)))))
    return Sqlite3Content(columns, schema, metadata, topics, stored, messages)


def check_sqlite3(
    path: Path, store: Typestore, expected: dict[str, list[tuple]] | None
) -> Sqlite3Content:
    """The checks that tell a sqlite3 file as rosbag2 (Jazzy) writes it: its tables, the
    distribution in ``schema``, type hashes on topics and definitions, the serialized bag
    metadata naming the distribution; and (``expected``) every message as written."""
    content = read_sqlite3(path)
    assert set(content.columns) >= SQLITE3_TABLES, content.columns
    assert [d for _, d in content.schema] == [ROS_DISTRO], content.schema
    for name, (_id, msgtype, fmt, qos, type_hash) in content.topics.items():
        assert fmt == "cdr"
        assert type_hash == store.hash_rihs01(msgtype), name
        assert isinstance(_yaml(qos), list), (name, qos)
    for msgtype, (encoding, text, type_hash) in content.definitions.items():
        assert encoding == "ros2msg" and text, msgtype
        assert type_hash == store.hash_rihs01(msgtype), msgtype
    assert len(content.metadata) == 1, content.metadata
    version, text = content.metadata[0]
    info = _yaml(text)
    assert version == 9 and info["version"] == 9
    assert info["ros_distro"] == ROS_DISTRO, info["ros_distro"]
    if expected is not None:
        assert content.messages == {t: m for t, m in expected.items() if m}
    return content


def check_metadata_yaml(bag: Path, store: Typestore) -> dict[str, Any]:
    info = _yaml((bag / "metadata.yaml").read_text(encoding="utf-8"))["rosbag2_bagfile_information"]
    assert info["ros_distro"] == ROS_DISTRO, info["ros_distro"]
    for topic in info["topics_with_message_count"]:
        meta = topic["topic_metadata"]
        assert meta["type_description_hash"] == store.hash_rihs01(meta["type"]), meta["name"]
    return info


# -- the project's writers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def store() -> Typestore:
    return make_typestore()


def _assert_talker_messages(decoded: dict, bag: Path, store) -> None:
    """Messages a third-party reader decoded equal rosbags' and are the talker's 10 strings."""
    with BagReader(bag, typestore=store) as reader:
        by_rosbags: dict = {}
        for topic, stamp, msg in reader:
            by_rosbags.setdefault(topic, []).append((stamp, plain(msg)))
    assert decoded == by_rosbags
    assert [m["data"] for _, m in decoded["/topic"]] == [f"Hello, world! {i}" for i in range(10)]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_writer_writes_what_rosbag2_writes(
    tmp_path: Path, store: Typestore, storage: str
) -> None:
    """Before: MCAP channels without topic_type_hash; ros_distro 'rosbags' in metadata.yaml,
    in the serialized metadata of either storage and in the sqlite3 schema table."""
    sent = _messages(store)
    bag = tmp_path / "bag"
    with BagWriter(bag, storage=storage, typestore=store) as writer:
        for topic, (msgtype, _msgs) in sent.items():
            writer.add_topic(topic, msgtype)
        writer.add_topic("/never/published", "std_msgs/msg/Bool")  # a topic without message
        for topic, (_msgtype, msgs) in sent.items():
            for stamp, msg in msgs:
                writer.write(topic, stamp, msg)
    expected = _expected(sent)
    if storage == "mcap":
        content = check_mcap(bag / "bag.mcap", store, expected)
        assert set(content.channels) == {*sent, "/never/published"}
        schema = content.schemas["human_video_policy_msgs/msg/PromptEmbedding"]
        assert b"float32[] data" in schema.data  # the project's own definition travels along
    else:
        content_db = check_sqlite3(bag / "bag.db3", store, expected)
        assert set(content_db.topics) == {*sent, "/never/published"}
    info = check_metadata_yaml(bag, store)
    assert info["message_count"] == 15
    with BagReader(bag, typestore=store) as reader:  # our own reader still reads it all
        assert plain([m for _, _, m in reader.messages(["/prompt/embedding"])]) == [
            m for _, m in expected["/prompt/embedding"]
        ]
        assert not reader.qos_mismatches


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_recorder_split_files_are_what_rosbag2_writes(
    tmp_path: Path, store: Typestore, storage: str
) -> None:
    """The recorder writes each episode as several storage files (rosbags' Writer per file);
    every one of them must be a rosbag2 file like BagWriter's, and the episode's metadata.yaml
    names the distribution too."""
    now = [0.0]
    rec = EpisodeRecorder(
        RecorderConfig(tmp_path, session="s", storage=storage, fsync=False, instruction="pick"),
        typestore=store,
        clock=lambda: now[0],
    )
    sent = _messages(store)
    first = min(s for _, msgs in sent.values() for s, _ in msgs)
    rec.start_episode(first - 1)
    for i in range(3):  # one split file per round: the recorder's clock moves 0.6 s
        for topic, (msgtype, msgs) in sent.items():
            stamp, msg = msgs[i]
            assert rec.record(topic, msgtype, store.serialize_cdr(msg, msgtype), stamp)
        now[0] += 0.6
        rec.poll()
    last = max(s for _, msgs in sent.values() for s, _ in msgs)
    summary = rec.stop_episode(last + 1, success=True)
    files = [summary.path / f.path for f in summary.files]
    assert len(files) >= 3, files
    got: dict[str, list[tuple[int, Any]]] = {}
    for path in files:
        if storage == "mcap":
            content = check_mcap(path, store, None)
            assert content.message_count == sum(len(m) for m in content.messages.values())
            messages = content.messages
            stored = _yaml(content.records["rosbag2"].metadata["serialized_metadata"])
        else:
            lite = check_sqlite3(path, store, None)
            messages = lite.messages
            stored = _yaml(lite.metadata[0][1])
        # the metadata inside each file names that file as it is now, not its temporary name
        assert stored["relative_file_paths"] == [path.name], stored["relative_file_paths"]
        assert [f["path"] for f in stored["files"]] == [path.name]
        for topic, msgs in messages.items():
            got.setdefault(topic, []).extend(msgs)
    expected = _expected(sent)
    assert {t: m for t, m in got.items() if t in expected} == expected
    assert [m["data"] for _, m in got["/episode/start"]] == [1]  # the recorder's markers
    assert [m["data"] for _, m in got["/episode/success"]] == [True]
    info = check_metadata_yaml(summary.path, store)
    assert info["relative_file_paths"] == [p.name for p in files]


# -- the reference: bags ROS 2 itself recorded --------------------------------------------------


def _talker(storage: str) -> Path:
    bag = TALKER / f"{storage}_talker"
    assert (bag / "metadata.yaml").is_file(), f"real rosbag2 test data missing: {bag}"
    return bag


def _talker_like(tmp_path: Path, store: Typestore, storage: str) -> Path:
    """A bag of ours with the talker's topics and types."""
    t = store.types
    bag = tmp_path / "ours"
    with BagWriter(bag, storage=storage, typestore=store) as writer:
        writer.add_topic("/topic", "std_msgs/msg/String")
        writer.add_topic("/rosout", "rcl_interfaces/msg/Log")
        writer.add_topic("/parameter_events", "rcl_interfaces/msg/ParameterEvent")
        for i in range(3):
            writer.write("/topic", 10 + i, t["std_msgs/msg/String"](data=f"Hello, world! {i}"))
    return bag


def test_mcap_as_the_real_rosbag2_recording_and_more(tmp_path: Path, store: Typestore) -> None:
    """The talker recording (ROS 2, before type hashes existed; converted by the mcap Go tool)
    passes the same reading: profile ros2, ros2msg schemas, cdr channels with the offered QoS,
    every message decodes (mcap_ros2) to what rosbags decodes. Ours matches it in all of that,
    and carries what Jazzy's rosbag2 adds: topic_type_hash and the rosbag2 metadata record."""
    real = read_mcap(_talker("mcap") / "talker.mcap")
    print(f"\nreal MCAP: header {real.profile!r} / {real.library!r}")
    print(f"  schemas: {[(n, s.encoding) for n, s in real.schemas.items()]}")
    print(f"  channel metadata keys: { {t: sorted(c.metadata) for t, c in real.channels.items()} }")
    print(f"  metadata records: {sorted(real.records)}; messages: {real.message_count}")
    assert real.profile == "ros2"
    assert {n: s.encoding for n, s in real.schemas.items()} == {
        "std_msgs/msg/String": "ros2msg",
        "rcl_interfaces/msg/Log": "ros2msg",
        "rcl_interfaces/msg/ParameterEvent": "ros2msg",
    }
    for topic, channel in real.channels.items():
        assert channel.message_encoding == "cdr"
        assert set(channel.metadata) == {"offered_qos_profiles"}, topic  # predates type hashes
        assert isinstance(_yaml(channel.metadata["offered_qos_profiles"]), list)
    assert real.records == {}  # predates the rosbag2 metadata record
    _assert_talker_messages(real.messages, _talker("mcap"), store)

    ours = check_mcap(_talker_like(tmp_path, store, "mcap") / "ours.mcap", store, None)
    assert ours.profile == real.profile
    assert {n: s.encoding for n, s in ours.schemas.items()} == {
        n: s.encoding for n, s in real.schemas.items()
    }
    for topic, channel in real.channels.items():
        mine = ours.channels[topic]
        assert mine.message_encoding == channel.message_encoding
        assert set(channel.metadata) < set(mine.metadata)


def test_sqlite3_as_the_real_rosbag2_recording(tmp_path: Path, store: Typestore) -> None:
    """The talker recording's sqlite3 file (ROS 2; its topics predate type hashes) has the tables
    and columns ours has, and names a ROS distribution in its schema table, as ours now does
    (before: 'rosbags'). Its message_definitions rows are placeholders (first line only, hashes
    'hash1'...), so its messages are decoded (mcap_ros2) from the full definitions; they match
    what rosbags decodes."""
    bag = _talker("sqlite3")
    full = {
        t: store.generate_msgdef(t, ros_version=2)[0]
        for t in (
            "std_msgs/msg/String",
            "rcl_interfaces/msg/Log",
            "rcl_interfaces/msg/ParameterEvent",
        )
    }
    real = read_sqlite3(bag / "talker.db3", definitions=full)
    print(f"\nreal sqlite3: schema {real.schema}; metadata rows {len(real.metadata)}")
    print(f"  topics.type_description_hash: { {n: t[4] for n, t in real.topics.items()} }")
    print(f"  message_definitions: { {n: d for n, d in real.definitions.items()} }")
    assert real.schema == [(4, "rolling")]  # the distribution it was recorded with
    assert real.metadata == []  # predates the serialized metadata in the storage file
    assert {n: t[4] for n, t in real.topics.items()} == dict.fromkeys(real.topics, "")
    assert {n: d[0] for n, d in real.definitions.items()} == dict.fromkeys(full, "ros2msg")
    _assert_talker_messages(real.messages, bag, store)

    ours = check_sqlite3(_talker_like(tmp_path, store, "sqlite3") / "ours.db3", store, None)
    assert {t: ours.columns[t] for t in SQLITE3_TABLES} == {
        t: real.columns[t] for t in SQLITE3_TABLES
    }
    assert [v for v, _ in ours.schema] == [v for v, _ in real.schema]
    assert {n: t[1:3] for n, t in ours.topics.items()} == {
        n: t[1:3] for n, t in real.topics.items()
    }
