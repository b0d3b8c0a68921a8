"""Recorder node: demonstrations from the running graph into one rosbag2 bag per episode.

Thin layer over :class:`human_video_policy.data.recorder.EpisodeRecorder` (which explains the
bag layout and why it survives SIGKILL). Subscriptions are generic: each topic of ``topics`` is
subscribed with ``raw=True`` once the graph shows its type, so messages are stored as the CDR
bytes that arrived, never deserialized (except camera images with ``compress_images``, which
become sensor_msgs/CompressedImage JPEGs on ``<topic>/compressed``; depth images stay raw).
Stamps are receive times on the node's clock (sim time with ``use_sim_time``).

Callbacks only queue; the node's main thread writes (and compresses). When the queue holds more
than ``max_queue_mb`` the newest messages are dropped and counted, never the process.

Episodes:
  * ``auto_start`` starts episode 1 when the node starts;
  * /episode/start (std_msgs/UInt32, what sim_node publishes on every reset) ends the open
    episode (outcome unknown) and starts the next one;
  * ``~/start_episode`` (std_srvs/Trigger) starts one; ``~/stop_episode`` (std_srvs/SetBool,
    ``data`` = success) ends the open one with its outcome;
  * /task/instruction (std_msgs/String, latched) changes the instruction stored in the bag.
With ``episodes`` > 0 the node exits 0 after that many episodes ended, with ``duration_s`` > 0
after that long (the open episode is stopped first). /diagnostics reports messages/s, bytes,
dropped messages and the current episode. A full disk ends the node with exit code 1 and one
line naming the file and what the bag still holds.
"""

from __future__ import annotations

import importlib
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String, UInt32
from std_srvs.srv import SetBool, Trigger

from human_video_policy.data.recorder import (
    INSTRUCTION_TOPIC,
    MARKER_TOPICS,
    START_TOPIC,
    EpisodeRecorder,
    RecorderConfig,
    RecorderStorageError,
)
from human_video_policy.errors import ConfigError, HvpError, InputError
from human_video_policy.nodes.base import (
    EXIT_FAILURE,
    EXIT_OK,
    DiagnosticsReport,
    HvpNode,
    Level,
    RateMeter,
    run_node,
)
from human_video_policy.nodes.qos import LATCHED, RELIABLE
from human_video_policy.validation import check_choice, check_int_range, check_range

DEFAULT_TOPICS = [
    "/camera/color/image_raw",
    "/camera/color/camera_info",
    "/camera/aligned_depth_to_color/image_raw",
    "/arm/joint_states",
    "/arm/joint_commands",
    "/hand/keypoints",
]
JPEG_ENCODINGS = {"rgb8", "bgr8", "mono8"}
IMAGE_TYPE = "sensor_msgs/msg/Image"


#: A subscribed topic without a message for this long is reported on /diagnostics (WARN): a
#: camera whose QoS the recorder failed to match, or a node that died, shows up at once.
SILENT_TOPIC_S = 3.0


@dataclass
class _Item:
    """One unit of work for the writer (main) thread."""

    kind: str  # "msg", "start", "stop", "instruction"
    topic: str = ""
    msgtype: str = ""
    data: Any = None
    stamp_ns: int = 0
    done: threading.Event | None = None
    result: list[Any] | None = None


def message_class(msgtype: str) -> type:
    """``sensor_msgs/msg/Image`` -> the rclpy message class (raises InputError if missing)."""
    parts = msgtype.split("/")
    if len(parts) != 3:
        raise InputError(f"message type {msgtype!r} is invalid: expected 'package/msg/Name'")
    try:
        module = importlib.import_module(f"{parts[0]}.{parts[1]}")
        return getattr(module, parts[2])
    except (ImportError, AttributeError) as exc:
        raise InputError(f"message type {msgtype} is not installed here: {exc}") from exc


def _check_topics(name: str, value: list[Any]) -> list[str]:
    if not value or not all(isinstance(t, str) and t.startswith("/") for t in value):
        raise ConfigError(f"{name}={value!r} is invalid: must be a non-empty list of '/topic's")
    if clash := sorted(set(value) & set(MARKER_TOPICS)):
        raise ConfigError(
            f"{name}={value!r} is invalid: {clash} are written by the recorder itself"
        )
    return list(dict.fromkeys(value))


class RecorderNode(HvpNode):
    """Records ``topics`` into per-episode rosbag2 bags (see the module docstring)."""

    stop_timeout_s = None  # it writes what was queued before the stop, then closes the bag

    default_name = "recorder"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        self.topics: list[str] = self.param(
            "topics",
            DEFAULT_TOPICS,
            "Topics to record (types are taken from the graph).",
            _check_topics,
        )
        output_dir = self.param("output_dir", "recordings", "Folder holding the session folder.")
        session = self.param("session", "", "Session folder name; empty = start time.")
        storage = self.param(
            "storage",
            "mcap",
            "Bag storage: mcap or sqlite3.",
            lambda n, v: check_choice(n, v, ("mcap", "sqlite3")),
        )
        split_period_s = self.param(
            "split_period_s",
            0.5,
            "Close the storage file every this many seconds (bounds the loss on SIGKILL).",
            lambda n, v: check_range(n, v, 0.05, 1.0),
        )
        fsync = self.param("fsync", True, "fsync each closed storage file and metadata.yaml.")
        instruction = self.param("instruction", "", "Task instruction stored in every episode.")
        self.compress_images = self.param(
            "compress_images",
            False,
            "Store rgb8/bgr8/mono8 images as JPEG CompressedImage on <topic>/compressed.",
        )
        self.jpeg_quality = self.param(
            "jpeg_quality",
            90,
            "JPEG quality (1..100) with compress_images.",
            lambda n, v: check_int_range(n, v, 1, 100),
        )
        self.auto_start = self.param("auto_start", True, "Start episode 1 when the node starts.")
        self.episodes_to_record = self.param(
            "episodes",
            0,
            "Exit 0 after this many episodes ended; 0 = until stopped.",
            lambda n, v: check_int_range(n, v, 0),
        )
        self.duration_s = self.param(
            "duration_s",
            0.0,
            "Stop the episode and exit 0 after this many seconds; 0 = never.",
            lambda n, v: check_range(n, v, 0.0, 1e9),
        )
        max_queue_mb = self.param(
            "max_queue_mb",
            256.0,
            "Drop new messages while the write queue holds more (MB).",
            lambda n, v: check_range(n, v, 1.0, 65536.0),
        )
        try:
            config = RecorderConfig(
                output_dir=output_dir,
                session=session,
                storage=storage,
                split_period_s=split_period_s,
                fsync=fsync,
                instruction=instruction,
            )
        except ConfigError as exc:
            raise ConfigError(f"parameter {exc}") from None
        self.recorder = EpisodeRecorder(config)
        self._max_queue_bytes = int(max_queue_mb * 1e6)
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self.dropped = 0
        self.rejected = 0
        self._rate = RateMeter()
        self._subscribed: dict[str, str] = {}
        self._subscribed_at: dict[str, float] = {}  # monotonic time of each subscription
        self._last_message: dict[str, float] = {}  # monotonic time of each topic's last message
        self._started_at = time.monotonic()

        self.create_subscription(UInt32, START_TOPIC, self._on_episode_start, RELIABLE)
        self.create_subscription(String, INSTRUCTION_TOPIC, self._on_instruction, LATCHED)
        self.create_service(Trigger, "~/start_episode", self._on_start_service)
        self.create_service(SetBool, "~/stop_episode", self._on_stop_service)
        self.create_wall_timer(0.5, self._discover)
        self.enable_diagnostics()
        self._discover()
        self.get_logger().info(
            f"recording {len(self.topics)} topic(s) to {self.recorder.session_dir} "
            f"({storage}, files of <= {split_period_s:g} s)"
        )

    # -- subscriptions (spin thread) -----------------------------------------------------------
    def _discover(self) -> None:
        """Subscribe to wanted topics that have appeared in the graph."""
        missing = [t for t in self.topics if t not in self._subscribed]
        if not missing:
            return
        types = dict(self.get_topic_names_and_types())
        for topic in missing:
            names = types.get(topic)
            infos = self.get_publishers_info_by_topic(topic) if names else []
            if not infos:
                # A subscriber alone makes a topic appear; wait for a publisher, whose QoS (best
                # effort for cameras) the subscription must match.
                continue
            msgtype = names[0]
            try:
                cls = message_class(msgtype)
            except InputError as exc:
                self.get_logger().error(f"cannot record {topic}: {exc}")
                self._subscribed[topic] = msgtype
                continue
            qos = self._qos_for(infos)
            self.create_subscription(
                cls,
                topic,
                lambda data, t=topic, ty=msgtype: self._on_raw(t, ty, data),
                qos,
                raw=True,
            )
            self._subscribed[topic] = msgtype
            self._subscribed_at[topic] = time.monotonic()
            reliability = (
                "best effort" if qos.reliability == ReliabilityPolicy.BEST_EFFORT else "reliable"
            )
            self.get_logger().info(f"recording {topic} ({msgtype}, {reliability})")

    @staticmethod
    def _qos_for(infos: list) -> QoSProfile:
        """Match the publishers: best effort if any offers only that, transient local if all do."""
        best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
        latched = bool(infos) and all(
            i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos
        )
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=100,
            reliability=ReliabilityPolicy.BEST_EFFORT
            if best_effort
            else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
        )

    def _stamp(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _on_raw(self, topic: str, msgtype: str, data: bytes) -> None:
        size = len(data)
        with self._lock:
            if self._queued_bytes + size > self._max_queue_bytes:
                self.dropped += 1
                return
            self._queued_bytes += size
        self._rate.tick()
        self._last_message[topic] = time.monotonic()
        self._queue.put(_Item("msg", topic, msgtype, data, self._stamp()))

    def _on_episode_start(self, msg: UInt32) -> None:
        self.get_logger().info(f"/episode/start {msg.data}: next episode")
        self._queue.put(_Item("start", stamp_ns=self._stamp()))

    def _on_instruction(self, msg: String) -> None:
        self._queue.put(_Item("instruction", data=msg.data, stamp_ns=self._stamp()))

    def _call(self, item: _Item, timeout: float = 5.0) -> tuple[bool, str]:
        item.done, item.result = threading.Event(), []
        self._queue.put(item)
        if not item.done.wait(timeout):
            return False, "the writer did not answer within 5 s"
        return item.result[0]

    def _on_start_service(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        res.success, res.message = self._call(_Item("start", stamp_ns=self._stamp()))
        return res

    def _on_stop_service(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        res.success, res.message = self._call(
            _Item("stop", data=bool(req.data), stamp_ns=self._stamp())
        )
        return res

    # -- writing (main thread) -----------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        rec = self.recorder
        try:
            if self.auto_start:
                self._start(self._stamp())
            while not stop.is_set():
                try:
                    item = self._queue.get(timeout=0.05)
                except queue.Empty:
                    item = None
                if item is not None:
                    self._handle(item)
                rec.poll()
                if self.duration_s and time.monotonic() - self._started_at >= self.duration_s:
                    if rec.recording:
                        self._stop(self._stamp(), None, "duration reached")
                    self.request_exit(EXIT_OK, f"recorded {self.duration_s:g} s")
                    return
        except RecorderStorageError as exc:
            self.request_exit(EXIT_FAILURE, f"error: {exc}")
            return
        while not self._queue.empty():  # what arrived before the stop request
            item = self._queue.get_nowait()
            if item.kind == "msg":
                try:
                    self._handle(item)
                except RecorderStorageError:
                    break

    def _handle(self, item: _Item) -> None:
        result: tuple[bool, str] = (True, "")
        try:
            if item.kind == "msg":
                with self._lock:
                    self._queued_bytes -= len(item.data)
                self._write(item)
            elif item.kind == "start":
                result = (True, self._start(item.stamp_ns))
            elif item.kind == "stop":
                if not self.recorder.recording:
                    result = (False, "no episode is being recorded")
                else:
                    result = (True, self._stop(item.stamp_ns, item.data, "stopped"))
            elif item.kind == "instruction":
                self.recorder.set_instruction(item.data, item.stamp_ns)
        except RecorderStorageError as exc:
            self._answer(item, (False, str(exc)))
            raise
        except InputError as exc:
            self.rejected += 1
            self.get_logger().warning(f"{exc}", throttle_duration_sec=2.0)
            result = (False, str(exc))
        self._answer(item, result)

    @staticmethod
    def _answer(item: _Item, result: tuple[bool, str]) -> None:
        if item.done is not None and item.result is not None:
            item.result.append(result)
            item.done.set()

    def _write(self, item: _Item) -> None:
        topic, msgtype, data = item.topic, item.msgtype, item.data
        if self.compress_images and msgtype == IMAGE_TYPE:
            compressed = self._compress(topic, data)
            if compressed is not None:
                topic, msgtype, data = compressed
        self.recorder.record(topic, msgtype, data, item.stamp_ns)

    def _compress(self, topic: str, data: bytes) -> tuple[str, str, bytes] | None:
        """rgb8/bgr8/mono8 Image bytes -> JPEG CompressedImage bytes (None: keep raw)."""
        img = deserialize_message(data, Image)
        if img.encoding not in JPEG_ENCODINGS:
            return None
        channels = 1 if img.encoding == "mono8" else 3
        if img.step < img.width * channels or len(img.data) < img.step * img.height:
            raise InputError(f"image on {topic}: step/data do not match {img.width}x{img.height}")
        rows = np.frombuffer(bytes(img.data), np.uint8).reshape(img.height, img.step)
        pixels = rows[:, : img.width * channels].reshape(img.height, img.width, channels)
        if img.encoding == "rgb8":
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
        ok, jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise InputError(f"image on {topic}: JPEG encoding failed")
        out = CompressedImage()
        out.header = img.header
        colour = "bgr8" if channels == 3 else "mono8"
        out.format = f"{img.encoding}; jpeg compressed {colour}"
        out.data = jpeg.tobytes()
        return f"{topic}/compressed", "sensor_msgs/msg/CompressedImage", serialize_message(out)

    def _start(self, stamp_ns: int) -> str:
        rec = self.recorder
        if rec.recording:
            self._stop(stamp_ns, None, "next episode")
        episode = rec.start_episode(stamp_ns)
        self.get_logger().info(f"episode {episode.index} started: {episode.path}")
        return str(episode.path)

    def _stop(self, stamp_ns: int, success: bool | None, why: str) -> str:
        episode = self.recorder.stop_episode(stamp_ns, success=success)
        outcome = {None: "outcome unknown", True: "success", False: "failure"}[success]
        text = (
            f"episode {episode.index} stopped ({why}, {outcome}): {episode.messages} messages, "
            f"{episode.bytes / 1e6:.1f} MB, {(episode.end_ns - episode.start_ns) * 1e-9:.1f} s"
        )
        self.get_logger().info(text)
        done = len(self.recorder.finished)
        if self.episodes_to_record and done >= self.episodes_to_record:
            self.request_exit(EXIT_OK, f"recorded {done} episode(s)")
        return text

    def close(self) -> None:
        try:
            if self.recorder.recording:
                self._stop(self._stamp(), None, "shutdown")
        except HvpError as exc:
            self.get_logger().error(f"closing the bag failed: {exc}")

    # -- diagnostics ---------------------------------------------------------------------------
    def diagnostics_report(self) -> DiagnosticsReport:
        rec = self.recorder
        episode = rec.episode
        values = {
            "messages_per_s": self._rate.rate_hz,
            "messages": rec.messages_total,
            "bytes": rec.bytes_total,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "queued_bytes": self._queued_bytes,
            "episode": episode.index if episode else 0,
            "episode_path": str(episode.path) if episode else "",
            "episodes_finished": len(rec.finished),
            "topics_subscribed": len(self._subscribed),
        }
        if rec.failed is not None:
            return DiagnosticsReport(Level.ERROR, str(rec.failed), values)
        if missing := [t for t in self.topics if t not in self._subscribed]:
            return DiagnosticsReport(Level.WARN, f"waiting for {missing}", values)
        now = time.monotonic()
        silent = [
            t
            for t, since in self._subscribed_at.items()
            if now - self._last_message.get(t, since) > SILENT_TOPIC_S
        ]
        values["silent_topics"] = ",".join(silent)
        if silent:
            return DiagnosticsReport(
                Level.WARN, f"no message for {SILENT_TOPIC_S:g} s on {silent}", values
            )
        if self.dropped:
            return DiagnosticsReport(Level.WARN, f"{self.dropped} message(s) dropped", values)
        return DiagnosticsReport(Level.OK, "recording" if episode else "idle", values)


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
