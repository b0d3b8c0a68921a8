"""metadata.yaml of split rosbag2 bags: build it, write it atomically, rebuild it (repair).

A recorded episode is one rosbag2 directory holding several small storage files
(``<dir>_0.mcap``, ``<dir>_1.mcap`` ... like ``ros2 bag record --max-bag-duration``) and one
metadata.yaml listing them. :func:`write_bag_metadata` writes that file in rosbag2 format
version 9 (the version ROS 2 Jazzy's rosbag2 writes and ``rosbags``' ``Writer`` uses), through a
temporary file and an atomic rename, so a process killed at any moment leaves either the old or
the new metadata.yaml, never half of one.

:func:`repair_bag` is the step after a recorder died (SIGKILL, power loss, disk full): it opens
every storage file of the directory with ``rosbags``' storage readers, keeps the complete ones,
reports the incomplete ones (an MCAP file without footer, which ``rosbags`` cannot read; a
sqlite3 file whose transaction never committed) and rewrites metadata.yaml from what the
complete files really hold. It is this project's stand-in for ``ros2 bag reindex``, which needs
a ROS installation.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

from rosbags.interfaces import ConnectionExtRosbag2, Qos
from rosbags.rosbag2.metadata import dump_qos_v9
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader
from ruamel.yaml import YAML

from human_video_policy.errors import HvpError, InputError

METADATA_VERSION = 9
"""rosbag2 metadata format version written here (Jazzy; rosbags' ``Writer.VERSION_LATEST``)."""

ROS_DISTRO = "jazzy"
"""``ros_distro`` every bag of the project names (metadata.yaml and the storage files), as
rosbag2 of the ROS 2 distribution the project targets writes it (rosbags would say ``rosbags``)."""

STORAGE_SUFFIX = {"mcap": ".mcap", "sqlite3": ".db3"}
CUSTOM_PREFIX = "hvp."
"""Prefix of the project's keys in metadata.yaml's ``custom_data`` (episode, instruction...)."""


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: name, full message type, offered QoS and type hash (RIHS01)."""

    name: str
    msgtype: str
    qos: tuple[Qos, ...]
    type_hash: str


@dataclass
class SplitFile:
    """One complete storage file of a split bag and what it holds.

    ``path`` is the file name relative to the bag directory; ``counts`` maps topic name to the
    number of messages; ``start_ns`` / ``end_ns`` are the first and last message stamps
    (ns since epoch; both 0 when the file holds no message).
    """

    path: str
    counts: dict[str, int] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0

    @property
    def message_count(self) -> int:
        return sum(self.counts.values())


def _yaml() -> YAML:
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    return yaml


def bag_metadata(
    storage: str,
    files: list[SplitFile],
    topics: dict[str, TopicInfo],
    custom_data: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``rosbag2_bagfile_information`` mapping for ``files`` (version 9 layout)."""
    if storage not in STORAGE_SUFFIX:
        raise InputError(f"storage={storage!r} is invalid: must be one of {list(STORAGE_SUFFIX)}")
    used = [f for f in files if f.message_count]
    start = min((f.start_ns for f in used), default=0)
    end = max((f.end_ns for f in used), default=0)
    totals: dict[str, int] = {name: 0 for name in topics}
    for split in files:
        for name, count in split.counts.items():
            totals[name] = totals.get(name, 0) + count
    if missing := sorted(set(totals) - set(topics)):
        raise InputError(f"split files count messages on undeclared topic(s) {missing}")
    return {
        "version": METADATA_VERSION,
        "storage_identifier": storage,
        "relative_file_paths": [f.path for f in files],
        "duration": {"nanoseconds": end - start},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(totals.values()),
        "topics_with_message_count": [
            {
                "topic_metadata": {
                    "name": info.name,
                    "type": info.msgtype,
                    "serialization_format": "cdr",
                    "offered_qos_profiles": dump_qos_v9(list(info.qos)),
                    "type_description_hash": info.type_hash,
                },
                "message_count": totals[info.name],
            }
            for info in topics.values()
        ],
        "compression_format": "",
        "compression_mode": "",
        "files": [
            {
                "path": f.path,
                "starting_time": {"nanoseconds_since_epoch": f.start_ns},
                "duration": {"nanoseconds": f.end_ns - f.start_ns},
                "message_count": f.message_count,
            }
            for f in files
        ],
        "custom_data": dict(custom_data) if custom_data else None,
        "ros_distro": ROS_DISTRO,
    }


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bag_metadata(bag_dir: Path, metadata: dict[str, Any], *, fsync: bool = True) -> Path:
    """Write ``bag_dir/metadata.yaml`` atomically (temporary file, fsync, rename).

    Raises OSError (e.g. ENOSPC) unchanged after removing the temporary file; the previous
    metadata.yaml then stays as it was.
    """
    text = StringIO()
    _yaml().dump({"rosbag2_bagfile_information": metadata}, text)
    target = bag_dir / "metadata.yaml"
    tmp = bag_dir / ".metadata.yaml.tmp"
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text.getvalue())
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        tmp.replace(target)
        if fsync:
            _fsync_dir(bag_dir)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return target


def read_custom_data(bag_dir: Path) -> dict[str, str]:
    """``custom_data`` of a bag's metadata.yaml ({} when there is none or no metadata.yaml)."""
    path = bag_dir / "metadata.yaml"
    if not path.is_file():
        return {}
    try:
        data = _yaml().load(path.read_text(encoding="utf-8"))
        info = data["rosbag2_bagfile_information"]
    except Exception as exc:  # a truncated or foreign file: repair starts from scratch
        raise InputError(f"{path} is not a rosbag2 metadata file: {exc}") from exc
    custom = info.get("custom_data") or {}
    return {str(k): str(v) for k, v in custom.items()}


# -- reading storage files --------------------------------------------------------------------


def scan_storage_file(path: Path) -> tuple[SplitFile, dict[str, TopicInfo]]:
    """Open one storage file with ``rosbags`` and say what it holds.

    Raises :class:`InputError` when the file is incomplete or corrupt (e.g. an MCAP file whose
    writer was killed before it wrote the footer).
    """
    reader: McapReader | Sqlite3Reader
    if path.suffix == ".mcap":
        reader = McapReader(path)
    elif path.suffix == ".db3":
        reader = Sqlite3Reader(path)
    else:
        raise InputError(f"{path} is not a rosbag2 storage file (.mcap or .db3)")
    try:
        reader.open()
    except Exception as exc:
        raise InputError(f"{path.name} cannot be read: {exc}") from exc
    try:
        counts: dict[str, int] = {}
        topics: dict[str, TopicInfo] = {}
        start, end = 2**63 - 1, 0
        ids = {c.id: c for c in reader.connections}
        for conn in reader.connections:
            ext = conn.ext
            qos = tuple(ext.offered_qos_profiles) if isinstance(ext, ConnectionExtRosbag2) else ()
            topics[conn.topic] = TopicInfo(conn.topic, conn.msgtype, qos, conn.digest)
            counts.setdefault(conn.topic, 0)
        try:
            for conn, stamp, _data in reader.messages(list(ids.values())):
                counts[conn.topic] += 1
                start, end = min(start, stamp), max(end, stamp)
        except Exception as exc:
            raise InputError(f"{path.name}: reading messages failed: {exc}") from exc
    finally:
        with contextlib.suppress(Exception):
            reader.close()
    if not any(counts.values()):
        start = end = 0
    return SplitFile(path.name, counts, start, end), topics


def _split_index(name: str) -> tuple[int, str]:
    match = re.search(r"_(\d+)\.(mcap|db3)$", name)
    return (int(match.group(1)) if match else 1 << 30, name)


@dataclass
class RepairReport:
    """What :func:`repair_bag` found: files kept, files left out (with why), messages kept."""

    bag: Path
    storage: str
    kept: list[str]
    incomplete: dict[str, str]
    message_count: int
    start_ns: int
    end_ns: int

    def summary(self) -> str:
        lines = [
            f"{self.bag}: {len(self.kept)} complete {self.storage} file(s), "
            f"{self.message_count} messages, {(self.end_ns - self.start_ns) * 1e-9:.3f} s"
        ]
        for name, why in sorted(self.incomplete.items()):
            lines.append(f"  left out {name}: {why}")
        return "\n".join(lines)


def repair_bag(
    bag_dir: str | Path, *, custom_data: dict[str, str] | None = None, fsync: bool = True
) -> RepairReport:
    """Rebuild ``bag_dir/metadata.yaml`` from the complete storage files found in it.

    Storage files directly in ``bag_dir`` and in leftover ``.part_*`` folders (splits a killed
    recorder had not moved into place) are opened; complete ones are kept (a complete leftover
    is moved into place), incomplete ones are listed in the report and left where they are
    (never deleted). ``custom_data`` entries are merged over those of the old metadata.yaml;
    an episode the recorder left open (``hvp.end_reason: recording``) is marked ``interrupted``.
    """
    bag = Path(bag_dir)
    if not bag.is_dir():
        raise InputError(f"bag {bag} is not a directory")
    candidates = sorted(
        [
            *bag.glob("*.mcap"),
            *bag.glob("*.db3"),
            *bag.glob(".part_*/*.mcap"),
            *bag.glob(".part_*/*.db3"),
        ],
        key=lambda p: _split_index(p.name),
    )
    if not candidates:
        raise InputError(f"bag {bag} holds no .mcap or .db3 storage file: nothing to repair")
    storages = {p.suffix for p in candidates}
    if len(storages) > 1:
        raise InputError(f"bag {bag} mixes .mcap and .db3 files; repair one storage at a time")
    storage = "mcap" if ".mcap" in storages else "sqlite3"
    try:
        custom = read_custom_data(bag)
    except InputError:
        custom = {}
    if custom.get(f"{CUSTOM_PREFIX}end_reason") == "recording":
        custom[f"{CUSTOM_PREFIX}end_reason"] = "interrupted"  # the recorder died mid-episode
    custom.update(custom_data or {})

    files: list[SplitFile] = []
    topics: dict[str, TopicInfo] = {}
    incomplete: dict[str, str] = {}
    for path in candidates:
        try:
            split, split_topics = scan_storage_file(path)
        except InputError as exc:
            incomplete[str(path.relative_to(bag))] = str(exc)
            continue
        if path.parent != bag:  # a complete split the recorder had not moved into place yet
            target = bag / f"{bag.name}_{_next_index(bag, files)}{path.suffix}"
            path.replace(target)
            split.path = target.name
            with contextlib.suppress(OSError):
                path.parent.rmdir()
        files.append(split)
        for name, info in split_topics.items():
            topics.setdefault(name, info)
    metadata = bag_metadata(storage, files, topics, custom)
    write_bag_metadata(bag, metadata, fsync=fsync)
    return RepairReport(
        bag=bag,
        storage=storage,
        kept=[f.path for f in files],
        incomplete=incomplete,
        message_count=metadata["message_count"],
        start_ns=metadata["starting_time"]["nanoseconds_since_epoch"],
        end_ns=metadata["starting_time"]["nanoseconds_since_epoch"]
        + metadata["duration"]["nanoseconds"],
    )


def _next_index(bag: Path, files: list[SplitFile]) -> int:
    used = [_split_index(f.path)[0] for f in files]
    used += [_split_index(p.name)[0] for p in [*bag.glob("*.mcap"), *bag.glob("*.db3")]]
    valid = [u for u in used if u < 1 << 30]
    return max(valid, default=-1) + 1


@dataclass
class LostFile:
    """A storage file of a bag left out because it cannot be read, and what it held.

    ``messages`` and the span come from the bag's metadata.yaml (``files`` entry); when it has
    none, ``messages`` is None and the span is the gap between the readable neighbours.
    """

    path: str
    reason: str
    messages: int | None
    start_ns: int
    end_ns: int

    def describe(self, bag_start_ns: int) -> str:
        count = "an unknown number of" if self.messages is None else str(self.messages)
        t0 = max(0.0, (self.start_ns - bag_start_ns) * 1e-9)
        t1 = max(t0, (self.end_ns - bag_start_ns) * 1e-9)
        return (
            f"damaged storage file {self.path} left out ({self.reason}): {count} message(s) "
            f"lost, {t0:.3f}..{t1:.3f} s into the bag"
        )


@dataclass
class ReadableView:
    """:func:`readable_view`'s result: a bag of the readable files, and what was left out."""

    path: Path
    lost: list[LostFile]
    kept_messages: int
    listed_messages: int
    start_ns: int

    def summary(self) -> str:
        lost = "; ".join(f.describe(self.start_ns) for f in self.lost)
        return f"kept {self.kept_messages} of {self.listed_messages} message(s); {lost}"


def readable_view(bag_dir: str | Path, into: str | Path) -> ReadableView:
    """A bag in ``into`` made of the readable storage files of ``bag_dir`` (symlinks + a new
    metadata.yaml); ``bag_dir`` itself is not touched.

    Why: one damaged split file (of 16, say) made the whole bag unreadable for ``rosbags``;
    converting it should keep what :func:`repair_bag` would keep and say what was lost.
    Raises InputError when metadata.yaml is unreadable or no storage file is readable.
    """
    bag = Path(bag_dir)
    try:
        info = _yaml().load((bag / "metadata.yaml").read_text(encoding="utf-8"))
        info = info["rosbag2_bagfile_information"]
        listed = [str(p) for p in info["relative_file_paths"]]
        storage = str(info["storage_identifier"])
    except Exception as exc:  # a truncated or foreign file
        raise InputError(f"{bag / 'metadata.yaml'} is not a rosbag2 metadata file: {exc}") from exc
    entries = {str(f.get("path")): f for f in (info.get("files") or []) if isinstance(f, dict)}
    files: list[tuple[str, SplitFile | None, str]] = []
    topics: dict[str, TopicInfo] = {}
    for rel in listed:
        path = bag / rel
        if not path.is_file():
            files.append((rel, None, "missing"))
            continue
        try:
            split, split_topics = scan_storage_file(path)
        except InputError as exc:
            files.append((rel, None, str(exc).removeprefix(f"{path.name} ")))
            continue
        files.append((rel, split, ""))
        for name, topic in split_topics.items():
            topics.setdefault(name, topic)
    kept = [s for _, s, _ in files if s is not None]
    if not any(s.message_count for s in kept):
        raise InputError(f"bag {bag}: no storage file is readable ({len(listed)} listed)")
    lost: list[LostFile] = []
    for i, (rel, split, why) in enumerate(files):
        if split is not None:
            continue
        entry = entries.get(rel)
        if entry is not None and "message_count" in entry:
            start = int(entry["starting_time"]["nanoseconds_since_epoch"])
            end = start + int(entry["duration"]["nanoseconds"])
            lost.append(LostFile(rel, why, int(entry["message_count"]), start, end))
            continue
        before = [s.end_ns for _, s, _ in files[:i] if s is not None and s.message_count]
        after = [s.start_ns for _, s, _ in files[i + 1 :] if s is not None and s.message_count]
        start = before[-1] if before else (after[0] if after else 0)
        lost.append(LostFile(rel, why, None, start, after[0] if after else start))
    view = Path(into) / bag.name
    view.mkdir(parents=True)
    for split in kept:
        (view / split.path).symlink_to((bag / split.path).resolve())
    custom = {str(k): str(v) for k, v in (info.get("custom_data") or {}).items()}
    metadata = bag_metadata(storage, kept, topics, custom)
    write_bag_metadata(view, metadata, fsync=False)
    starts = [int(info.get("starting_time", {}).get("nanoseconds_since_epoch", 0))]
    starts += [s.start_ns for s in kept if s.message_count]
    return ReadableView(
        path=view,
        lost=lost,
        kept_messages=metadata["message_count"],
        listed_messages=int(info.get("message_count", 0)),
        start_ns=min(v for v in starts if v) if any(starts) else 0,
    )


def repair_tree(root: str | Path, *, fsync: bool = True) -> list[RepairReport]:
    """Repair ``root`` if it is a bag directory, else every episode bag below it."""
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"{base} is not a directory")

    def is_bag(path: Path) -> bool:
        return any(path.glob("*.mcap")) or any(path.glob("*.db3")) or any(path.glob(".part_*"))

    if is_bag(base):
        return [repair_bag(base, fsync=fsync)]
    bags = sorted(
        p for p in base.rglob("*") if p.is_dir() and not p.name.startswith(".") and is_bag(p)
    )
    if not bags:
        raise HvpError(f"no rosbag2 storage files found under {base}")
    return [repair_bag(b, fsync=fsync) for b in bags]
