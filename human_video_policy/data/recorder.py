"""Demonstration recording: one rosbag2 bag per episode that survives SIGKILL and a full disk.

:class:`EpisodeRecorder` takes ``(topic, type, CDR bytes or message, stamp)`` and writes
``<output_dir>/<session>/episode_000NNN/``, one rosbag2 directory per episode (MCAP by default,
sqlite3 on request) with ``rosbags``' ``Writer``, opened through
:func:`human_video_policy.data.bags.open_rosbag2_writer` so every storage file holds what ROS 2
Jazzy's rosbag2 writes (MCAP ``topic_type_hash``, ``ros_distro: jazzy``). No rclpy here: the
recorder node (``human_video_policy.nodes.recorder_node``) feeds it serialized messages from the
graph.

Why split files. ``rosbags``' MCAP writer keeps the open chunk (up to 1 MiB) in memory and writes
the summary and footer only on close; its reader refuses a file without footer. Its sqlite3
writer commits once, on close. So a writer killed mid-file loses that whole file. The recorder
therefore closes the storage file it is writing every ``split_period_s`` (<= 1 s) and starts
the next one, as ``ros2 bag record --max-bag-duration`` does, and after each file rewrites the
episode's metadata.yaml atomically (:mod:`human_video_policy.data.bag_repair`). A SIGKILL then
loses at most the file being written: <= ``split_period_s`` of messages, and the bag on disk
is readable at once. ``hvp record repair`` adopts a finished file the recorder had not moved
into place yet and reports the incomplete one.

Each episode bag holds, besides the recorded topics, markers written by the recorder:
``/episode/start`` (std_msgs/UInt32, the episode number), ``/task/instruction``
(std_msgs/String) at the start and whenever it changes, ``/episode/success`` (std_msgs/Bool)
when the outcome is known and ``/episode/stop`` (std_msgs/UInt32). metadata.yaml's
``custom_data`` carries ``hvp.episode``, ``hvp.session``, ``hvp.instruction``, ``hvp.success``
(true/false/unknown) and ``hvp.end_reason`` (recording while open; stopped, shutdown,
interrupted, disk_full after).

A full disk (ENOSPC, or EFBIG past a file-size limit) ends recording with
:class:`RecorderStorageError`: the file being written is abandoned, the files already closed
stay listed in metadata.yaml and readable, and the message names the file and the errno.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.interfaces import Connection, Qos
from rosbags.rosbag2 import Writer
from rosbags.typesys.store import Typestore

from human_video_policy.data.bag_repair import (
    CUSTOM_PREFIX,
    STORAGE_SUFFIX,
    SplitFile,
    TopicInfo,
    bag_metadata,
    write_bag_metadata,
)
from human_video_policy.data.bags import (
    default_qos_for,
    make_typestore,
    normalize_msgtype,
    open_rosbag2_writer,
)
from human_video_policy.errors import ConfigError, HvpError, InputError
from human_video_policy.validation import check_choice, check_range

START_TOPIC = "/episode/start"
STOP_TOPIC = "/episode/stop"
SUCCESS_TOPIC = "/episode/success"
INSTRUCTION_TOPIC = "/task/instruction"
MARKER_TOPICS = (START_TOPIC, STOP_TOPIC, SUCCESS_TOPIC, INSTRUCTION_TOPIC)
"""Topics the recorder writes itself; a recorder node must not also record them raw."""

_MARKER_TYPES = {
    START_TOPIC: "std_msgs/msg/UInt32",
    STOP_TOPIC: "std_msgs/msg/UInt32",
    SUCCESS_TOPIC: "std_msgs/msg/Bool",
    INSTRUCTION_TOPIC: "std_msgs/msg/String",
}
_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class RecorderStorageError(HvpError):
    """Writing the bag failed (disk full, file too large, I/O error); recording has stopped."""


@dataclass
class RecorderConfig:
    """Where and how episodes are written.

    Attributes:
        output_dir: folder that holds the session folder (created if missing).
        session: name of the session folder under ``output_dir``; empty = the local start time
            ``YYYYmmdd_HHMMSS``. Episodes continue the numbering of a session that exists.
        storage: ``mcap`` (default; what ``ros2 bag`` records on Jazzy) or ``sqlite3``.
        split_period_s: close the storage file being written and start the next one after
            this many seconds (0.05..1.0). It bounds what a SIGKILL or a power cut loses.
        fsync: fsync each closed storage file and metadata.yaml, so a power cut (not only a
            killed process) keeps them. Costs some disk bandwidth; off only for tests.
        instruction: the task instruction of the episodes (language prompt); may be empty.
    """

    output_dir: Path | str
    session: str = ""
    storage: str = "mcap"
    split_period_s: float = 0.5
    fsync: bool = True
    instruction: str = ""

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        check_choice("storage", self.storage, STORAGE_SUFFIX)
        check_range("split_period_s", self.split_period_s, 0.05, 1.0)
        if not isinstance(self.fsync, bool):
            raise ConfigError(f"fsync={self.fsync!r} is invalid: must be true or false")
        if not isinstance(self.instruction, str):
            raise ConfigError(f"instruction={self.instruction!r} is invalid: must be a string")
        if not isinstance(self.session, str) or "/" in self.session or self.session in (".", ".."):
            raise ConfigError(
                f"session={self.session!r} is invalid: must be a folder name without '/'"
            )
        if not self.session:
            self.session = time.strftime("%Y%m%d_%H%M%S")


@dataclass
class EpisodeSummary:
    """One episode as recorded: where, how much, and how it ended."""

    index: int
    path: Path
    messages: int = 0
    bytes: int = 0
    start_ns: int = 0
    end_ns: int = 0
    success: bool | None = None
    end_reason: str = "recording"
    files: list[SplitFile] = field(default_factory=list)


class _OpenSplit:
    """The storage file being written: a rosbags Writer in a hidden ``.part_NNNNNN`` folder."""

    def __init__(self, folder: Path, storage: str, opened_at: float, target: Path) -> None:
        self.folder = folder
        self.target = target  # where the storage file goes once complete
        # rosbag2's MCAP channel keys and ros_distro in the storage file, whose stored metadata
        # names its final file; the split's own metadata.yaml is dropped on close (the
        # episode's comes from bag_repair).
        self.writer: Writer = open_rosbag2_writer(folder, storage, file_name=target.name)
        self.storage_file = folder / f"{folder.name}{STORAGE_SUFFIX[storage]}"
        self.connections: dict[str, Connection] = {}
        self.counts: dict[str, int] = {}
        self.start_ns = 2**63 - 1
        self.end_ns = 0
        self.opened_at = opened_at


class EpisodeRecorder:
    """Writes episodes as split rosbag2 bags (see the module docstring).

    Use from one thread: ``start_episode``, ``record`` (many), ``poll`` (often, so a quiet
    period still closes the open file), ``stop_episode``, and ``close`` at the end.
    ``clock`` is a monotonic clock in seconds that times the splits.
    """

    def __init__(
        self,
        config: RecorderConfig,
        *,
        typestore: Typestore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.typestore = typestore if typestore is not None else make_typestore()
        self._clock = clock
        self.session_dir = Path(config.output_dir) / config.session
        self.instruction = config.instruction
        self.episode: EpisodeSummary | None = None
        self.finished: list[EpisodeSummary] = []
        self.failed: RecorderStorageError | None = None
        self.messages_total = 0
        self.bytes_total = 0
        self.ignored_outside_episode = 0
        self._topics: dict[str, TopicInfo] = {}
        self._definitions: dict[str, tuple[str, str]] = {}
        self._split: _OpenSplit | None = None
        self._split_index = 0
        self._next_episode = self._first_free_index()

    # -- episodes -------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.episode is not None

    def _first_free_index(self) -> int:
        if not self.session_dir.is_dir():
            return 1
        used = [
            int(p.name.split("_")[1])
            for p in self.session_dir.glob("episode_*")
            if p.name.split("_")[1].isdigit()
        ]
        return max(used, default=0) + 1

    def start_episode(self, stamp_ns: int, instruction: str | None = None) -> EpisodeSummary:
        """Start the next episode at ``stamp_ns`` (ends the open one first, outcome unknown)."""
        self._check_usable()
        _check_stamp(stamp_ns)
        if self.episode is not None:
            self.stop_episode(stamp_ns, success=None, reason="stopped")
        if instruction is not None:
            self._check_instruction(instruction)
            self.instruction = instruction
        try:
            self.session_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecorderStorageError(f"cannot create {self.session_dir}: {exc}") from exc
        index = self._next_episode
        self._next_episode += 1
        path = self.session_dir / f"episode_{index:06d}"
        try:
            path.mkdir()
        except OSError as exc:
            raise RecorderStorageError(f"cannot create episode folder {path}: {exc}") from exc
        self.episode = EpisodeSummary(index=index, path=path, start_ns=stamp_ns, end_ns=stamp_ns)
        self._topics = {}
        self._split_index = 0
        self._write_marker(START_TOPIC, stamp_ns, index)
        if self.instruction:
            self._write_marker(INSTRUCTION_TOPIC, stamp_ns, self.instruction)
        return self.episode

    def set_instruction(self, instruction: str, stamp_ns: int) -> None:
        """Change the task instruction; written to the open episode at ``stamp_ns``."""
        self._check_instruction(instruction)
        self.instruction = instruction
        if self.episode is not None:
            self._check_usable()
            _check_stamp(stamp_ns)
            self._write_marker(INSTRUCTION_TOPIC, stamp_ns, instruction)

    def stop_episode(
        self, stamp_ns: int, success: bool | None = None, reason: str = "stopped"
    ) -> EpisodeSummary:
        """End the open episode at ``stamp_ns`` with its outcome (None = unknown)."""
        if self.episode is None:
            raise InputError("stop_episode: no episode is being recorded")
        if success is not None and not isinstance(success, bool):
            raise InputError(f"success={success!r} is invalid: must be true, false or None")
        self._check_usable()
        _check_stamp(stamp_ns)
        episode = self.episode
        if success is not None:
            self._write_marker(SUCCESS_TOPIC, stamp_ns, success)
        self._write_marker(STOP_TOPIC, stamp_ns, episode.index)
        episode.success = success
        episode.end_reason = reason
        self._close_split()
        self._write_metadata()
        self.finished.append(episode)
        self.episode = None
        return episode

    def close(self, stamp_ns: int | None = None) -> None:
        """End an open episode (reason ``shutdown``, outcome unknown); safe to call twice."""
        if self.episode is None or self.failed is not None:
            return
        stamp = stamp_ns if stamp_ns is not None else max(self.episode.end_ns, 0)
        self.stop_episode(stamp, success=None, reason="shutdown")

    # -- messages -------------------------------------------------------------------------------
    def record(
        self,
        topic: str,
        msgtype: str,
        data: bytes | bytearray | memoryview | Any,
        stamp_ns: int,
        qos: Qos | list[Qos] | None = None,
    ) -> bool:
        """Write one message (CDR bytes, or a typestore message object) to the open episode.

        Returns False (and counts it) when no episode is open. ``qos`` is the publisher's
        offered QoS stored with the topic; None = the topic contract's default for the type.
        """
        self._check_usable()
        if self.episode is None:
            self.ignored_outside_episode += 1
            return False
        if not isinstance(topic, str) or not topic.startswith("/"):
            raise InputError(f"topic {topic!r} is invalid: must start with '/'")
        if topic in MARKER_TOPICS:
            raise InputError(
                f"topic {topic} is written by the recorder itself (episode markers and the "
                "instruction); use start_episode/stop_episode/set_instruction"
            )
        _check_stamp(stamp_ns)
        payload = self._payload(topic, normalize_msgtype(msgtype), data)
        self._write(topic, normalize_msgtype(msgtype), payload, stamp_ns, qos)
        self.poll()
        return True

    def poll(self, now: float | None = None) -> None:
        """Close the open storage file when it is ``split_period_s`` old (call this often)."""
        if self._split is None or self.failed is not None:
            return
        now = self._clock() if now is None else now
        if now - self._split.opened_at >= self.config.split_period_s:
            self._close_split()
            self._write_metadata()

    # -- internals ------------------------------------------------------------------------------
    def _check_usable(self) -> None:
        if self.failed is not None:
            raise RecorderStorageError(f"recording stopped earlier: {self.failed}")

    @staticmethod
    def _check_instruction(instruction: str) -> None:
        if not isinstance(instruction, str):
            raise InputError(f"instruction={instruction!r} is invalid: must be a string")

    def _payload(self, topic: str, msgtype: str, data: Any) -> bytes | memoryview:
        if isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) < 4:
                raise InputError(
                    f"message on {topic} has {len(data)} bytes: too short for CDR (needs the "
                    "4-byte encapsulation header)"
                )
            return data if not isinstance(data, bytearray) else bytes(data)
        declared = getattr(data, "__msgtype__", None)
        if declared is None:
            raise InputError(
                f"message on {topic} is a {type(data).__name__}: give CDR bytes or a message "
                "of the recorder's typestore"
            )
        if declared != msgtype:
            raise InputError(f"message on {topic} is a {declared}, the topic carries {msgtype}")
        try:
            return self.typestore.serialize_cdr(data, msgtype)
        except Exception as exc:
            raise InputError(f"cannot serialize the {msgtype} message for {topic}: {exc}") from exc

    def _definition(self, msgtype: str) -> tuple[str, str]:
        cached = self._definitions.get(msgtype)
        if cached is None:
            if msgtype not in self.typestore.fielddefs:
                raise InputError(
                    f"message type {msgtype} is unknown: not a ROS 2 Jazzy or "
                    "human_video_policy_msgs type, so the bag could not describe it"
                )
            msgdef, _ = self.typestore.generate_msgdef(msgtype, ros_version=2)
            cached = (msgdef, self.typestore.hash_rihs01(msgtype))
            self._definitions[msgtype] = cached
        return cached

    def _write_marker(self, topic: str, stamp_ns: int, value: Any) -> None:
        msgtype = _MARKER_TYPES[topic]
        msg = self.typestore.types[msgtype](data=value)
        self._write(topic, msgtype, self.typestore.serialize_cdr(msg, msgtype), stamp_ns, None)

    def _write(
        self,
        topic: str,
        msgtype: str,
        payload: bytes | memoryview,
        stamp_ns: int,
        qos: Qos | list[Qos] | None,
    ) -> None:
        assert self.episode is not None
        info = self._topics.get(topic)
        if info is None:
            msgdef, type_hash = self._definition(msgtype)
            profiles = [default_qos_for(msgtype)] if qos is None else qos
            profiles = [profiles] if isinstance(profiles, Qos) else list(profiles)
            info = TopicInfo(topic, msgtype, tuple(profiles), type_hash)
            self._topics[topic] = info
        elif info.msgtype != msgtype:
            raise InputError(f"topic {topic} carries {info.msgtype} in this episode, got {msgtype}")
        try:
            split = self._split or self._open_split()
            conn = split.connections.get(topic)
            if conn is None:
                msgdef, type_hash = self._definition(msgtype)
                conn = split.writer.add_connection(
                    topic,
                    msgtype,
                    msgdef=msgdef,
                    rihs01=type_hash,
                    offered_qos_profiles=list(info.qos),
                )
                split.connections[topic] = conn
                split.counts[topic] = 0
            split.writer.write(conn, stamp_ns, payload)
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc, "writing a message")
        split.counts[topic] += 1
        split.start_ns = min(split.start_ns, stamp_ns)
        split.end_ns = max(split.end_ns, stamp_ns)
        episode = self.episode
        episode.messages += 1
        episode.bytes += len(payload)
        episode.start_ns = min(episode.start_ns, stamp_ns)
        episode.end_ns = max(episode.end_ns, stamp_ns)
        self.messages_total += 1
        self.bytes_total += len(payload)

    def _open_split(self) -> _OpenSplit:
        assert self.episode is not None
        folder = self.episode.path / f".part_{self._split_index:06d}"
        target = self.episode.path / (
            f"{self.episode.path.name}_{self._split_index}{STORAGE_SUFFIX[self.config.storage]}"
        )
        self._split = _OpenSplit(folder, self.config.storage, self._clock(), target)
        return self._split

    def _close_split(self) -> None:
        split, self._split = self._split, None
        if split is None or self.episode is None:
            return
        target = split.target
        try:
            split.writer.close()
            if self.config.fsync:
                with split.storage_file.open("rb") as handle:
                    os.fsync(handle.fileno())
            split.storage_file.replace(target)
            with contextlib.suppress(OSError):
                (split.folder / "metadata.yaml").unlink()
            with contextlib.suppress(OSError):
                split.folder.rmdir()
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(Exception):
                split.writer.abort()
            self._split = None
            self._fail(exc, f"closing {split.storage_file.name}")
        self._split_index += 1
        self.episode.files.append(
            SplitFile(target.name, dict(split.counts), split.start_ns, split.end_ns)
        )

    def _custom_data(self, episode: EpisodeSummary) -> dict[str, str]:
        success = "unknown" if episode.success is None else str(episode.success).lower()
        return {
            f"{CUSTOM_PREFIX}episode": str(episode.index),
            f"{CUSTOM_PREFIX}session": self.config.session,
            f"{CUSTOM_PREFIX}instruction": self.instruction,
            f"{CUSTOM_PREFIX}success": success,
            f"{CUSTOM_PREFIX}end_reason": episode.end_reason,
        }

    def _write_metadata(self) -> None:
        episode = self.episode
        assert episode is not None
        metadata = bag_metadata(
            self.config.storage, episode.files, self._topics, self._custom_data(episode)
        )
        try:
            write_bag_metadata(episode.path, metadata, fsync=self.config.fsync)
        except OSError as exc:
            self._fail(exc, "writing metadata.yaml")

    def _fail(self, exc: BaseException, action: str) -> None:
        """Abandon the open file, keep what is closed, and raise a clear error."""
        episode = self.episode
        split, self._split = self._split, None
        if split is not None:
            with contextlib.suppress(Exception):
                split.writer.abort()
        where = episode.path if episode is not None else self.session_dir
        code = getattr(exc, "errno", None)
        kind = _classify(exc, split.storage_file if split is not None else None)
        full = kind.startswith("disk full")
        kept = ""
        if episode is not None:
            episode.end_reason = "disk_full" if full else "storage_error"
            kept_files = len(episode.files)
            kept_msgs = sum(f.message_count for f in episode.files)
            kept = f"; the bag keeps {kept_files} closed file(s) with {kept_msgs} messages"
            with contextlib.suppress(Exception):  # may fail too when the disk is full
                metadata = bag_metadata(
                    self.config.storage, episode.files, self._topics, self._custom_data(episode)
                )
                write_bag_metadata(episode.path, metadata, fsync=False)
        name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
        self.failed = RecorderStorageError(
            f"{kind} while {action} in {where} ({name + ': ' if name else ''}{exc}): recording "
            f"stopped{kept}. Free space, then run `hvp record repair {where}`."
        )
        self.episode = None
        raise self.failed from exc


def _classify(exc: BaseException, storage_file: Path | None) -> str:
    """'disk full', 'disk full (file size limit)' or 'storage error' for a failed write.

    sqlite3 reports a refused write past RLIMIT_FSIZE (EFBIG) as a generic "disk I/O error",
    so the file size limit and the free space are checked too.
    """
    code = getattr(exc, "errno", None)
    if code == errno.EFBIG:
        return "disk full (file size limit)"
    if code in _DISK_ERRNOS or getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
        return "disk full"
    if isinstance(exc, sqlite3.Error) and storage_file is not None:
        soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        with contextlib.suppress(OSError):
            if soft != resource.RLIM_INFINITY and storage_file.stat().st_size + 65536 >= soft:
                return "disk full (file size limit)"
        with contextlib.suppress(OSError):
            if shutil.disk_usage(storage_file.parent).free < 1 << 20:
                return "disk full"
    return "storage error"


def _check_stamp(stamp_ns: int) -> None:
    if not isinstance(stamp_ns, int) or isinstance(stamp_ns, bool) or stamp_ns < 0:
        raise InputError(f"stamp_ns={stamp_ns!r} is invalid: must be an int >= 0 (ns)")
