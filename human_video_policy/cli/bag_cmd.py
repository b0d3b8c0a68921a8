"""``hvp bag info BAG``: what a rosbag2 bag holds, like ``ros2 bag info`` (no ROS installation).

    hvp bag info recordings/20261123_120000/episode_000001
    hvp bag info recordings/20261123_120000            # every bag of a session folder
    hvp bag info BAG --metadata-only                   # metadata.yaml only, no storage read

Prints the storage files and their size, storage id (mcap or sqlite3), ROS distro, duration,
start and end (local time and seconds since the epoch), the message count, and per topic its
type, message count, frequency and serialization format, then the bag's custom data (the
recorder stores episode, instruction, outcome there). The frequency is (count - 1) / (last -
first stamp) of the topic's messages in the storage, so the storage files are read (stamps
only are used); a topic whose storage count differs from metadata.yaml (a crashed bag) is
flagged, with the fix (``hvp record repair``). Bags are read with ``rosbags``
(human_video_policy/data/bags.py): sqlite3 and MCAP, split bags, zstd file compression.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from human_video_policy.errors import InputError

LABEL_WIDTH = 19  # "Topic information: " as ros2 bag info aligns its values


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bag",
        help="what a rosbag2 bag holds (hvp bag info, like ros2 bag info)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="bag_command", metavar="<info>")
    info = commands.add_parser(
        "info",
        help="storage, duration, start/end, per-topic type, count, frequency",
        description="What a rosbag2 bag (or each bag of a session folder) holds.",
    )
    info.add_argument("bag", help="rosbag2 directory (holds metadata.yaml) or a folder of bags")
    info.add_argument(
        "--metadata-only",
        action="store_true",
        help="read metadata.yaml only: no frequencies, no check of the storage (fast)",
    )
    info.set_defaults(func=run_info)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


@dataclass
class TopicInfo:
    name: str
    msgtype: str
    count: int
    serialization_format: str
    stored: int | None = None  # messages found in the storage (None: not read)
    first_ns: int | None = None
    last_ns: int | None = None

    @property
    def frequency_hz(self) -> float | None:
        n = self.stored if self.stored is not None else None
        if n is None or n < 2 or self.first_ns is None or self.last_ns is None:
            return None
        span = (self.last_ns - self.first_ns) * 1e-9
        return (n - 1) / span if span > 0 else None


@dataclass
class BagInfo:
    path: Path
    files: list[str]
    size_bytes: int
    storage: str
    ros_distro: str
    compression: str
    start_ns: int
    duration_ns: int
    message_count: int
    topics: list[TopicInfo]
    custom_data: dict[str, Any] = field(default_factory=dict)
    services: int = 0
    storage_count: int | None = None

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ns


def _metadata(path: Path) -> dict[str, Any]:
    meta_path = path / "metadata.yaml"
    try:
        document = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"bag {path}: metadata.yaml cannot be read: {exc}") from exc
    info = document.get("rosbag2_bagfile_information") if isinstance(document, dict) else None
    if not isinstance(info, dict):
        raise InputError(f"bag {path}: metadata.yaml has no rosbag2_bagfile_information")
    return info


def read_bag_info(path: str | Path, scan: bool = True) -> BagInfo:
    """The :class:`BagInfo` of one bag directory; ``scan`` reads the storage for stamps."""
    bag = Path(path)
    if not (bag / "metadata.yaml").is_file():
        from human_video_policy.data.bags import BagReader

        BagReader(bag)._check_path()  # the error that names what is wrong
    meta = _metadata(bag)
    try:
        topics = [
            TopicInfo(
                name=str(entry["topic_metadata"]["name"]),
                msgtype=str(entry["topic_metadata"]["type"]),
                count=int(entry.get("message_count", 0)),
                serialization_format=str(entry["topic_metadata"].get("serialization_format", "")),
            )
            for entry in meta.get("topics_with_message_count") or []
        ]
        files = [Path(str(p)).name for p in meta.get("relative_file_paths") or []]
        info = BagInfo(
            path=bag,
            files=files,
            size_bytes=sum((bag / f).stat().st_size for f in files if (bag / f).is_file()),
            storage=str(meta.get("storage_identifier", "")),
            ros_distro=str(meta.get("ros_distro", "") or ""),
            compression=" ".join(
                x
                for x in (str(meta.get("compression_format") or ""), meta.get("compression_mode"))
                if x and str(x).lower() != "none"
            ),
            start_ns=int(meta["starting_time"]["nanoseconds_since_epoch"]),
            duration_ns=int(meta["duration"]["nanoseconds"]),
            message_count=int(meta.get("message_count", 0)),
            topics=topics,
            custom_data=dict(meta.get("custom_data") or {}),
            services=len(meta.get("services_with_message_count") or []),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"bag {bag}: metadata.yaml is incomplete: {exc}") from exc
    if scan:
        _scan(info)
    return info


def _scan(info: BagInfo) -> None:
    """Count the stored messages per topic and their first/last stamps."""
    from human_video_policy.data.bags import BagReader

    by_topic = {t.name: t for t in info.topics}
    for topic in info.topics:
        topic.stored = 0
    total = 0
    with BagReader(info.path, on_unknown="skip") as reader:
        for topic_name, stamp, _ in reader.messages(raw=True):
            topic = by_topic.get(topic_name)
            if topic is None:  # in the storage only
                topic = TopicInfo(topic_name, "?", 0, "cdr", stored=0)
                by_topic[topic_name] = topic
                info.topics.append(topic)
            topic.stored = (topic.stored or 0) + 1
            topic.first_ns = stamp if topic.first_ns is None else min(topic.first_ns, stamp)
            topic.last_ns = stamp if topic.last_ns is None else max(topic.last_ns, stamp)
            total += 1
    info.storage_count = total


def _time(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    local = dt.datetime.fromtimestamp(seconds)
    day = f"{local:%b} {local.day:2d} {local:%Y %H:%M:%S}"
    return f"{day}.{rest:09d} ({seconds}.{rest:09d})"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def format_bag_info(info: BagInfo) -> list[str]:
    """The lines ``hvp bag info`` prints (ros2 bag info's layout, plus frequency)."""

    def row(label: str, value: str) -> str:
        return f"{label:<{LABEL_WIDTH}}{value}"

    pad = " " * LABEL_WIDTH
    lines = [row("Files:", info.files[0] if info.files else "(none)")]
    lines += [pad + name for name in info.files[1:]]
    lines.append(row("Bag size:", _size(info.size_bytes)))
    lines.append(row("Storage id:", info.storage))
    if info.ros_distro:
        lines.append(row("ROS Distro:", info.ros_distro))
    if info.compression:
        lines.append(row("Compression:", info.compression))
    seconds, rest = divmod(info.duration_ns, 1_000_000_000)
    lines.append(row("Duration:", f"{seconds}.{rest:09d}s"))
    lines.append(row("Start:", _time(info.start_ns) if info.message_count else "-"))
    lines.append(row("End:", _time(info.end_ns) if info.message_count else "-"))
    lines.append(row("Messages:", str(info.message_count)))
    width = max((len(t.name) for t in info.topics), default=0)
    type_width = max((len(t.msgtype) for t in info.topics), default=0)
    count_width = max((len(str(t.count)) for t in info.topics), default=1)
    topic_lines = []
    mismatches = []
    for topic in info.topics:
        hz = topic.frequency_hz
        frequency = f"{hz:.2f} Hz" if hz is not None else "-"
        text = (
            f"Topic: {topic.name:<{width}} | Type: {topic.msgtype:<{type_width}} | "
            f"Count: {topic.count:>{count_width}} | Frequency: {frequency:>10} | "
            f"Serialization Format: {topic.serialization_format}"
        )
        topic_lines.append(text)
        if topic.stored is not None and topic.stored != topic.count:
            mismatches.append(topic)
    lines.append(row("Topic information:", topic_lines[0] if topic_lines else ""))
    lines += [pad + text for text in topic_lines[1:]]
    lines.append(row("Service:", str(info.services)))
    if info.custom_data:
        items = [f"{k}: {v}" for k, v in info.custom_data.items()]
        lines.append(row("Custom data:", items[0]))
        lines += [pad + item for item in items[1:]]
    for topic in mismatches:
        lines.append(
            f"WARNING: {topic.name}: the storage holds {topic.stored} message(s), metadata.yaml "
            f"says {topic.count} (a crashed bag? `hvp record repair {info.path}` rebuilds it)"
        )
    return lines


def _bags_in(path: Path) -> list[Path]:
    if (path / "metadata.yaml").is_file() or not path.is_dir():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / "metadata.yaml").is_file())
    return found or [path]


def run_info(args: argparse.Namespace) -> int:
    path = Path(args.bag)
    bags = _bags_in(path)
    for index, bag in enumerate(bags):
        info = read_bag_info(bag, scan=not args.metadata_only)
        if bag != path:  # a folder of bags: name each
            print(("\n" if index else "") + f"== {bag}")
        print("\n".join(format_bag_info(info)), flush=True)
    return 0
