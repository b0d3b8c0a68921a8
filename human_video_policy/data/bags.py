"""rosbag2 reading and writing through ``rosbags`` (no rosbag2_py, no rclpy).

* :func:`make_typestore` knows ROS 2 Jazzy's standard messages plus the project's own
  ``human_video_policy_msgs`` types, parsed from the .msg files in ``msg/msg/``.
* :class:`BagReader` opens a rosbag2 directory (sqlite3 or MCAP storage), lists its topics and
  yields ``(topic, stamp_ns, msg)`` with deserialized messages.
* :class:`BagWriter` writes a rosbag2 directory (MCAP by default, sqlite3 on request) with the
  QoS the stack publishes with (sensor-data QoS for images). It and the recorder's split files
  open their ``rosbags`` writer with :func:`open_rosbag2_writer`, so the files say what ROS 2
  Jazzy's rosbag2 says (MCAP channels with ``topic_type_hash``, ``ros_distro: jazzy``).

QoS note: rosbag2 keeps each topic's offered QoS twice, in metadata.yaml and in the storage
file, and some recorders write different values to the two (e.g. ``deadline: {sec: 0, nsec: 0}``
in metadata.yaml but ``{sec: 2147483647, nsec: 4294967295}``, i.e. "infinite", in the storage).
``rosbags`` matches storage connections to metadata connections by equal QoS, so such a bag
yields no messages at all through ``rosbags.rosbag2.Reader.messages()``. :class:`BagReader`
iterates the storage's own connections instead and reports the differences in
:attr:`BagReader.qos_mismatches`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO, StringIO
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, cast

from rosbags.interfaces import (
    Connection,
    ConnectionExtRosbag2,
    MessageDefinitionFormat,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapWriter, write_channel, write_string
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore
from ruamel.yaml import YAML

from human_video_policy.data.bag_repair import ROS_DISTRO, write_bag_metadata
from human_video_policy.errors import ConfigError, HvpError, InputError

PROJECT_MSG_PACKAGE = "human_video_policy_msgs"
ROS_DISTRO_STORE = Stores.ROS2_JAZZY
STORAGES = ("mcap", "sqlite3")

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the checkout (holds msg/ and package.xml)

# --------------------------------------------------------------------------------------------
# Types


def project_msg_dir() -> Path:
    """Folder holding the project's .msg files (``msg/msg``)."""
    try:
        from human_video_policy.resources import resource_path

        return resource_path("msg", "msg")
    except HvpError:
        pass
    candidate = _PACKAGE_ROOT / "msg" / "msg"
    if candidate.is_dir():
        return candidate
    raise HvpError(
        f"cannot find the {PROJECT_MSG_PACKAGE} .msg files: looked in the installed share folder "
        f"and in {candidate}. Reinstall human_video_policy."
    )


def normalize_msgtype(msgtype: str) -> str:
    """``sensor_msgs/JointState`` -> ``sensor_msgs/msg/JointState``; full names pass through."""
    parts = msgtype.strip("/").split("/")
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    if len(parts) == 3 and all(parts):
        return "/".join(parts)
    raise InputError(
        f"message type {msgtype!r} is invalid: use 'package/msg/Name' (or 'package/Name')"
    )


def project_types(msg_dir: Path | None = None) -> dict[str, Any]:
    """Type definitions of the project's messages, parsed from their .msg files."""
    folder = msg_dir if msg_dir is not None else project_msg_dir()
    types: dict[str, Any] = {}
    for path in sorted(folder.glob("*.msg")):
        name = f"{PROJECT_MSG_PACKAGE}/msg/{path.stem}"
        try:
            types.update(get_types_from_msg(path.read_text(encoding="utf-8"), name))
        except Exception as exc:  # the parser raises its own error types
            raise HvpError(f"cannot parse message definition {path}: {exc}") from exc
    if not types:
        raise HvpError(f"no .msg files found in {folder}")
    return types


def make_typestore(extra_types: dict[str, Any] | None = None) -> Typestore:
    """A fresh typestore: ROS 2 Jazzy's standard types, the project's messages and extras."""
    store = get_typestore(ROS_DISTRO_STORE)
    store.register(project_types())
    if extra_types:
        store.register(extra_types)
    return store


def _types_from_definition(connection: Connection) -> dict[str, Any]:
    """Types described by the definition a bag stored for a connection (empty if none)."""
    msgdef = connection.msgdef
    if msgdef.format == MessageDefinitionFormat.MSG and msgdef.data:
        return dict(get_types_from_msg(msgdef.data, connection.msgtype))
    if msgdef.format == MessageDefinitionFormat.IDL and msgdef.data:
        sep = "=" * 80 + "\n"
        types: dict[str, Any] = {}
        if msgdef.data.startswith(f"{sep}IDL: "):
            for part in msgdef.data.split(sep)[1:]:
                types.update(get_types_from_idl(part.split("\n", 1)[1]))
        else:
            types.update(get_types_from_idl(msgdef.data))
        return types
    return {}


# --------------------------------------------------------------------------------------------
# QoS

_UNSET = QosTime(sec=0, nsec=0)  # rosbag2 writes 0/0 for "not set" in metadata.yaml


def qos_profile(kind: Literal["default", "sensor_data", "latched"] = "default") -> Qos:
    """The offered QoS the stack publishes with, as stored in a bag.

    ``default``: reliable, volatile, keep last 10. ``sensor_data``: best effort, volatile,
    keep last 5 (images, camera info). ``latched``: reliable, transient local, keep last 1
    (prompt embedding, estop).
    """
    presets = {
        "default": (QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE, QosDurability.VOLATILE),
        "sensor_data": (
            QosHistory.KEEP_LAST,
            5,
            QosReliability.BEST_EFFORT,
            QosDurability.VOLATILE,
        ),
        "latched": (
            QosHistory.KEEP_LAST,
            1,
            QosReliability.RELIABLE,
            QosDurability.TRANSIENT_LOCAL,
        ),
    }
    if kind not in presets:
        raise ConfigError(f"qos={kind!r} is invalid: must be one of {sorted(presets)}")
    history, depth, reliability, durability = presets[kind]
    return Qos(
        history=history,
        depth=depth,
        reliability=reliability,
        durability=durability,
        deadline=_UNSET,
        lifespan=_UNSET,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_UNSET,
        avoid_ros_namespace_conventions=False,
    )


_SENSOR_DATA_TYPES = frozenset(
    {
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/CompressedImage",
        "sensor_msgs/msg/CameraInfo",
        "sensor_msgs/msg/PointCloud2",
    }
)
_LATCHED_TYPES = frozenset({f"{PROJECT_MSG_PACKAGE}/msg/PromptEmbedding"})


def default_qos_for(msgtype: str) -> Qos:
    """QoS matching the topic contract: sensor data for images, latched for the prompt."""
    msgtype = normalize_msgtype(msgtype)
    if msgtype in _SENSOR_DATA_TYPES:
        return qos_profile("sensor_data")
    if msgtype in _LATCHED_TYPES:
        return qos_profile("latched")
    return qos_profile("default")


# --------------------------------------------------------------------------------------------
# Reading


class BagStorageError(InputError):
    """A storage file of a bag cannot be opened or read (truncated or corrupt).

    Why its own type: a caller can then fall back to the bag's readable files
    (:func:`human_video_policy.data.bag_repair.readable_view`) instead of losing the bag.
    """


@dataclass(frozen=True)
class TopicSummary:
    """One topic of a bag as listed in its metadata."""

    name: str
    msgtype: str
    count: int
    known_type: bool


class BagMessage(NamedTuple):
    """One message of a bag; unpacks as ``topic, stamp_ns, msg``."""

    topic: str
    stamp_ns: int
    msg: Any


OnUnknown = Literal["raise", "skip"]


class BagReader:
    """Read a rosbag2 directory (metadata.yaml + sqlite3 or MCAP storage files).

    ``on_unknown`` decides what happens to topics whose message type is neither in the
    typestore nor (with ``use_bag_definitions``) described by the bag itself: ``"raise"``
    raises :class:`InputError` naming topic and type when such a topic is selected for reading,
    ``"skip"`` leaves it out and lists it in :attr:`skipped_topics`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        typestore: Typestore | None = None,
        on_unknown: OnUnknown = "raise",
        use_bag_definitions: bool = True,
    ) -> None:
        if on_unknown not in ("raise", "skip"):
            raise ConfigError(f"on_unknown={on_unknown!r} is invalid: must be 'raise' or 'skip'")
        self.path = Path(path)
        self.typestore = typestore if typestore is not None else make_typestore()
        self.on_unknown: OnUnknown = on_unknown
        self.use_bag_definitions = use_bag_definitions
        self._reader: Reader | None = None
        self._meta_connections: list[Connection] = []
        self._storage_connections: list[Connection] = []
        self.storage: str = ""
        self.qos_mismatches: dict[str, tuple[list[Qos], list[Qos]]] = {}
        self.unknown_topics: dict[str, str] = {}
        self.skipped_topics: dict[str, str] = {}

    # -- opening ------------------------------------------------------------------------------

    def _check_path(self) -> Path:
        if not self.path.exists():
            raise InputError(f"bag {self.path} does not exist")
        if not self.path.is_dir():
            raise InputError(
                f"bag {self.path} is a file; give the rosbag2 directory that holds it and "
                "its metadata.yaml"
            )
        meta = self.path / "metadata.yaml"
        if not meta.is_file():
            raise InputError(
                f"bag directory {self.path} has no metadata.yaml: not a rosbag2 bag (re-index "
                "it with `ros2 bag reindex` on a ROS machine)"
            )
        return meta

    def open(self) -> BagReader:
        if self._reader is not None:
            return self
        self._check_path()
        reader = Reader(self.path)
        try:
            reader.open()
        except Exception as exc:
            raise BagStorageError(
                f"bag {self.path} cannot be opened: {exc} (storage files: {self._files()}); "
                "is a storage file truncated or corrupt?"
            ) from exc
        self._reader = reader
        try:
            self._index()
        except BaseException:
            self.close()
            raise
        return self

    def _files(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.name != "metadata.yaml")

    def _index(self) -> None:
        assert self._reader is not None
        storage = self._reader.storage
        self._meta_connections = list(self._reader.connections)
        metadata_text = (self.path / "metadata.yaml").read_text(encoding="utf-8")
        self.storage = "mcap" if "storage_identifier: mcap" in metadata_text else "sqlite3"
        storages = getattr(storage, "storages", None)
        if storages:
            self._storage_connections = [c for s in storages for c in s.connections]
        else:  # pragma: no cover - rosbags changed its internals; fall back to metadata
            self._storage_connections = list(self._meta_connections)
        self.qos_mismatches = {}
        for meta_conn in self._meta_connections:
            for st_conn in self._storage_connections:
                if st_conn.topic != meta_conn.topic or st_conn.msgtype != meta_conn.msgtype:
                    continue
                meta_ext, st_ext = meta_conn.ext, st_conn.ext
                if (
                    isinstance(meta_ext, ConnectionExtRosbag2)
                    and isinstance(st_ext, ConnectionExtRosbag2)
                    and meta_ext != st_ext
                ):
                    self.qos_mismatches[meta_conn.topic] = (
                        list(meta_ext.offered_qos_profiles),
                        list(st_ext.offered_qos_profiles),
                    )
        self.unknown_topics = {}
        known = set(self.typestore.fielddefs)
        for conn in self._meta_connections + self._storage_connections:
            if conn.msgtype in known:
                continue
            if self.use_bag_definitions:
                definition = next(
                    (
                        c
                        for c in self._storage_connections + self._meta_connections
                        if c.msgtype == conn.msgtype
                        and c.msgdef.format != MessageDefinitionFormat.NONE
                        and c.msgdef.data
                    ),
                    None,
                )
                if definition is not None:
                    try:
                        types = _types_from_definition(definition)
                    except Exception:  # a broken stored definition: treat the type as unknown
                        types = {}
                    new = {k: v for k, v in types.items() if k not in known}
                    if conn.msgtype in new:
                        self.typestore.register(new)
                        known = set(self.typestore.fielddefs)
                        continue
            self.unknown_topics[conn.topic] = conn.msgtype

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception:
                pass

    def __enter__(self) -> BagReader:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _require_open(self) -> Reader:
        if self._reader is None:
            raise InputError(f"bag {self.path} is not open: use `with BagReader(path) as bag:`")
        return self._reader

    # -- metadata -----------------------------------------------------------------------------

    @property
    def topics(self) -> dict[str, TopicSummary]:
        """Topics by name, with type and message count from metadata.yaml."""
        self._require_open()
        out: dict[str, TopicSummary] = {}
        for conn in self._meta_connections:
            prev = out.get(conn.topic)
            count = conn.msgcount + (prev.count if prev else 0)
            out[conn.topic] = TopicSummary(
                name=conn.topic,
                msgtype=conn.msgtype,
                count=count,
                known_type=conn.topic not in self.unknown_topics,
            )
        return dict(sorted(out.items()))

    @property
    def message_count(self) -> int:
        return self._require_open().message_count

    @property
    def start_ns(self) -> int:
        """Stamp of the first message (ns since epoch); 0 for an empty bag."""
        reader = self._require_open()
        return reader.start_time if reader.message_count else 0

    @property
    def end_ns(self) -> int:
        """Stamp of the last message (ns since epoch); 0 for an empty bag."""
        reader = self._require_open()
        return reader.end_time - 1 if reader.message_count else 0

    @property
    def duration_ns(self) -> int:
        """Last minus first message stamp (ns), as ``ros2 bag info`` reports it."""
        return self.end_ns - self.start_ns

    # -- messages -----------------------------------------------------------------------------

    def messages(
        self,
        topics: Iterable[str] | None = None,
        *,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        raw: bool = False,
    ) -> Iterator[BagMessage]:
        """Yield ``(topic, stamp_ns, msg)`` for the chosen topics (all when None) in the
        storage's order (time order within a storage file), with ``start_ns <= stamp <
        stop_ns``. ``raw=True`` yields the CDR bytes instead of deserialized messages."""
        reader = self._require_open()
        available = {c.topic for c in self._meta_connections} | {
            c.topic for c in self._storage_connections
        }
        if topics is None:
            wanted = set(available)
        else:
            wanted = set(topics)
            if missing := sorted(wanted - available):
                raise InputError(
                    f"bag {self.path} has no topic(s) {missing}; it has {sorted(available)}"
                )
        unknown = {t: ty for t, ty in self.unknown_topics.items() if t in wanted}
        if unknown and not raw:
            if self.on_unknown == "raise":
                listing = ", ".join(f"{t} ({ty})" for t, ty in sorted(unknown.items()))
                raise InputError(
                    f"bag {self.path}: unknown message type on topic(s) {listing}: not a ROS 2 "
                    f"Jazzy or {PROJECT_MSG_PACKAGE} type and the bag stores no definition; "
                    "pass a typestore that knows it or on_unknown='skip'"
                )
            self.skipped_topics.update(unknown)
            wanted -= set(unknown)
        connections = [c for c in self._storage_connections if c.topic in wanted]
        if not connections:
            return
        stream = reader.messages(connections, start=start_ns, stop=stop_ns)
        while True:
            try:
                item = next(stream)
            except StopIteration:
                return
            except Exception as exc:
                raise BagStorageError(
                    f"bag {self.path}: reading the storage failed: {exc} (storage files: "
                    f"{self._files()}); is a storage file truncated or corrupt?"
                ) from exc
            conn, stamp, data = item
            if raw:
                yield BagMessage(conn.topic, stamp, bytes(data))
                continue
            try:
                msg = self.typestore.deserialize_cdr(data, conn.msgtype)
            except Exception as exc:
                raise InputError(
                    f"bag {self.path}: message on {conn.topic} ({conn.msgtype}) at {stamp} ns "
                    f"cannot be deserialized: {exc}"
                ) from exc
            yield BagMessage(conn.topic, stamp, msg)

    def __iter__(self) -> Iterator[BagMessage]:
        return self.messages()


# --------------------------------------------------------------------------------------------
# Writing

TYPE_HASH_KEY = "topic_type_hash"
"""MCAP channel metadata key that holds a topic's RIHS01 type hash (rosbag2's MCAP storage)."""


def _safe_yaml() -> YAML:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False  # how rosbags and rosbag2 lay out bag metadata
    return yaml


_TOP_LEVEL_DISTRO = re.compile(r"^ros_distro: .*$", re.MULTILINE)


def with_ros_distro(serialized_metadata: str) -> str:
    """``serialized_metadata`` (the YAML rosbag2 keeps inside a storage file) naming
    :data:`ROS_DISTRO` as the distribution.

    The one top-level ``ros_distro:`` line is replaced in place: parsing and dumping the YAML
    again costs ~30 ms for a dozen topics, at every split file the recorder closes. Any other
    layout is parsed and dumped again.
    """
    text, count = _TOP_LEVEL_DISTRO.subn(f"ros_distro: {ROS_DISTRO}", serialized_metadata)
    if count == 1:
        return text
    try:
        info = _safe_yaml().load(serialized_metadata)
    except Exception as exc:  # ruamel raises its own error types
        raise HvpError(f"bag metadata written by rosbags is not YAML: {exc}") from exc
    if not isinstance(info, dict):
        raise HvpError(f"bag metadata written by rosbags is not a mapping: {info!r}")
    info["ros_distro"] = ROS_DISTRO
    out = StringIO()
    _safe_yaml().dump(info, out)
    return out.getvalue().strip()


class _Rosbag2Storage:
    """Adapter around the storage object of a rosbags ``Writer`` (set after ``open``) so that the
    storage file holds what ROS 2 Jazzy's rosbag2 writes.

    Why: rosbags 0.11.9 (pinned) departs from rosbag2 in two places and has no option for
    either: its MCAP channels carry only ``offered_qos_profiles`` (rosbag2 adds
    ``topic_type_hash``, which it reads back as the topic's type description hash), and it
    writes ``ros_distro: rosbags`` into the serialized metadata it keeps in the storage file
    (the MCAP ``rosbag2`` metadata record, the sqlite3 ``metadata`` table) and into the sqlite3
    ``schema`` table. Subclassing ``Writer`` would mean copying its ``close``; this adapter keeps
    rosbags' own record and table code and changes only those values. It uses the writers'
    internals (``McapWriter.chunk``/``channels``, ``Sqlite3Writer.conn``), checked on creation,
    so a rosbags upgrade that changes them fails loudly instead of writing different bags.
    """

    def __init__(self, storage: McapWriter | Sqlite3Writer, file_name: str | None = None) -> None:
        self._storage = storage
        self._file_name = file_name
        if isinstance(storage, McapWriter):
            needed = ("chunk", "channels", "schemas", "add_connection")
        elif isinstance(storage, Sqlite3Writer):
            needed = ("conn", "add_connection")
        else:
            raise HvpError(f"rosbags storage {type(storage).__name__} is not supported here")
        if missing := [name for name in needed if not hasattr(storage, name)]:
            raise HvpError(
                f"rosbags' {type(storage).__name__} lacks {missing}: this rosbags version is "
                "not the one human_video_policy supports (see requirements/)"
            )
        if isinstance(storage, Sqlite3Writer):
            # rosbags' script committed the schema row already; change it the same way.
            storage.conn.execute("UPDATE schema SET ros_distro = ?", (ROS_DISTRO,))
            storage.conn.commit()

    @property
    def path(self) -> Path:
        return self._storage.path

    def add_msgtype(self, connection: Connection) -> None:
        self._storage.add_msgtype(connection)

    def add_connection(self, connection: Connection, offered_qos_profiles: str) -> None:
        """rosbags' connection, plus ``topic_type_hash`` on an MCAP channel."""
        storage = self._storage
        if not isinstance(storage, McapWriter):
            storage.add_connection(connection, offered_qos_profiles)
            return
        bio = storage.chunk.bio
        start = bio.tell()
        storage.add_connection(connection, offered_qos_profiles)
        channel = storage.channels[-1]
        if channel.id != connection.id or storage.chunk.bio is not bio or bio.tell() <= start:
            raise HvpError(
                "rosbags' McapWriter.add_connection no longer appends one channel record to the "
                "open chunk: this rosbags version is not the one human_video_policy supports"
            )
        extra = BytesIO()
        write_string(extra, TYPE_HASH_KEY)
        write_string(extra, connection.digest)
        channel = channel._replace(metadata=channel.metadata + extra.getvalue())
        storage.channels[-1] = channel
        bio.seek(start)  # replace the record rosbags just wrote with the completed one
        bio.truncate()
        write_channel(bio, channel, storage.schemas)

    def write(self, connection: Connection, timestamp: int, data: bytes | memoryview) -> None:
        self._storage.write(connection, timestamp, data)

    def close(self, version: int, metadata: str) -> None:
        text = with_ros_distro(metadata)
        if self._file_name:  # the name the file will have once the caller renames it
            text = text.replace(self._storage.path.name, self._file_name)
        self._storage.close(version, text)

    def abort(self) -> None:
        self._storage.abort()


def open_rosbag2_writer(path: Path, storage: str, file_name: str | None = None) -> Writer:
    """An open rosbags ``Writer`` (format version 9) for a new bag at ``path`` whose storage
    file says what ROS 2 Jazzy's rosbag2 says (see :class:`_Rosbag2Storage`).

    ``file_name``: the name the storage file gets after the caller moves it (the recorder
    writes split files in hidden folders), used in the metadata stored inside the file.

    metadata.yaml, which ``Writer.close`` writes with ``ros_distro: rosbags``, is the caller's
    to fix (:func:`fix_metadata_yaml`) or to replace (the recorder writes its own).
    """
    if storage not in STORAGES:
        raise ConfigError(f"storage={storage!r} is invalid: must be one of {list(STORAGES)}")
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=plugin)
    writer.open()
    try:
        adapter = _Rosbag2Storage(cast("McapWriter | Sqlite3Writer", writer.storage), file_name)
    except BaseException:
        writer.abort()
        raise
    writer.storage = cast(Any, adapter)
    return writer


def fix_metadata_yaml(bag_dir: Path) -> None:
    """Rewrite the metadata.yaml a rosbags ``Writer`` wrote with ``ros_distro`` set to
    :data:`ROS_DISTRO` (atomically; nothing else changes)."""
    path = bag_dir / "metadata.yaml"
    try:
        info = _safe_yaml().load(path.read_text(encoding="utf-8"))["rosbag2_bagfile_information"]
    except Exception as exc:  # a missing file, or not what rosbags writes
        raise HvpError(f"{path}: cannot read the metadata rosbags wrote: {exc}") from exc
    info["ros_distro"] = ROS_DISTRO
    write_bag_metadata(bag_dir, info, fsync=False)


class BagWriter:
    """Write a rosbag2 directory (rosbag2 format version 9; MCAP unless ``storage='sqlite3'``)
    as Jazzy's rosbag2 writes it (:func:`open_rosbag2_writer`, ``ros_distro: jazzy``).

    The directory must not exist yet. Use as a context manager; metadata.yaml is written on
    close.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        storage: str = "mcap",
        typestore: Typestore | None = None,
    ) -> None:
        if storage not in STORAGES:
            raise ConfigError(f"storage={storage!r} is invalid: must be one of {list(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise InputError(f"bag {self.path} exists already; choose a new directory")
        if not self.path.parent.is_dir():
            raise InputError(f"bag {self.path}: parent directory {self.path.parent} is missing")
        self.storage = storage
        self.typestore = typestore if typestore is not None else make_typestore()
        self._writer: Writer | None = None
        self._connections: dict[str, Connection] = {}

    def open(self) -> BagWriter:
        if self._writer is None:
            self._writer = open_rosbag2_writer(self.path, self.storage)
        return self

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            fix_metadata_yaml(self.path)

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add_topic(
        self,
        topic: str,
        msgtype: str,
        qos: Qos | Sequence[Qos] | str | None = None,
    ) -> None:
        """Declare a topic; ``qos`` is a :class:`Qos`, a preset name for :func:`qos_profile`,
        or None for the topic contract's default (sensor data for images)."""
        if self._writer is None:
            raise InputError(f"bag {self.path} is not open: use `with BagWriter(path) as bag:`")
        if not topic.startswith("/"):
            raise InputError(f"topic {topic!r} is invalid: must start with '/'")
        if topic in self._connections:
            raise InputError(f"bag {self.path}: topic {topic} was added already")
        msgtype = normalize_msgtype(msgtype)
        if msgtype not in self.typestore.fielddefs:
            raise InputError(
                f"bag {self.path}: cannot add topic {topic}: unknown message type {msgtype} "
                f"(not a ROS 2 Jazzy or {PROJECT_MSG_PACKAGE} type)"
            )
        if qos is None:
            profiles: list[Qos] = [default_qos_for(msgtype)]
        elif isinstance(qos, str):
            profiles = [qos_profile(qos)]  # type: ignore[arg-type]
        elif isinstance(qos, Qos):
            profiles = [qos]
        else:
            profiles = list(qos)
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=profiles
        )

    def write(self, topic: str, stamp_ns: int, msg: Any) -> None:
        """Serialize ``msg`` (a typestore message object) and store it at ``stamp_ns``."""
        conn = self._connections.get(topic)
        if conn is None:
            raise InputError(
                f"bag {self.path}: topic {topic} was not added; call add_topic first "
                f"(added: {sorted(self._connections)})"
            )
        if not isinstance(stamp_ns, int) or isinstance(stamp_ns, bool) or stamp_ns < 0:
            raise InputError(f"stamp_ns={stamp_ns!r} is invalid: must be an int >= 0")
        msgtype = getattr(msg, "__msgtype__", None)
        if msgtype != conn.msgtype:
            raise InputError(
                f"bag {self.path}: topic {topic} carries {conn.msgtype}, got a "
                f"{msgtype or type(msg).__name__} message"
            )
        try:
            data = self.typestore.serialize_cdr(msg, conn.msgtype)
        except Exception as exc:
            raise InputError(
                f"bag {self.path}: cannot serialize the {conn.msgtype} message for {topic}: {exc}"
            ) from exc
        if self._writer is None:
            raise InputError(f"bag {self.path} is closed; {topic} was not written")
        self._writer.write(conn, stamp_ns, data)
