"""Recorder node: demonstrations from the running graph into one rosbag2 bag per episode.

Thin layer over :class:`human_video_policy.data.recorder.EpisodeRecorder` (which explains the
bag layout and why it survives SIGKILL). Subscriptions are generic: each topic of ``topics`` is
subscribed with ``raw=True`` once the graph shows its type, so messages are stored as the CDR
bytes that arrived, never deserialized, except images with ``compress_images`` (the default):
they are stored as sensor_msgs/CompressedImage on ``<topic>/compressed`` the way
image_transport's ``compressed`` plugin publishes them (8-bit colour/mono as JPEG, or PNG with
``image_format: png``; 16-bit depth as lossless PNG; ``format`` e.g. ``rgb8; jpeg compressed
bgr8``), so ``ros2 bag play`` + any image_transport subscriber, Foxglove and ``hvp dataset
from-bags`` read them. Stamps are receive times on the node's clock (sim time with
``use_sim_time``: nothing is recorded before the first /clock message).

Sim time (``use_sim_time``): the node's clock reads 0 until the first /clock message, so the
writer waits for it (at most ``clock_timeout_s``; then the node exits 1 with one line saying so)
before episode 1 starts and before it handles any episode event. An event that arrived before
the clock (a latched /task/instruction, an /episode/start) is stamped with the first clock
value instead of 0, which would make the episode's bag start at 0 and span the whole sim time;
a service call before the clock is refused at once with a message saying why.

``preset`` (a ``config/datasets/`` preset or YAML file) sets ``topics`` to what
``hvp dataset from-bags --preset`` of the same preset needs (plus ``extra_topics``). At each
episode end a topic that was asked for and never arrived in that episode is named in a warning.

Callbacks only queue; the node's main thread writes (and compresses). When the queue holds more
than ``max_queue_mb`` the newest messages are dropped and counted, never the process.

Episodes:
  * ``auto_start`` starts episode 1 when the node starts;
  * /episode/start (std_msgs/UInt32, what sim_node publishes on every reset) ends the open
    episode and starts the next one;
  * /episode/success (std_msgs/Bool, what sim_node publishes when an episode ends) ends the
    open episode with that outcome. sim_node publishes it just before /episode/start; when the
    start arrives first (two topics are not ordered), the recorder waits up to
    ``OUTCOME_WAIT_S`` for the outcome while an outcome publisher exists;
  * ``~/start_episode`` (std_srvs/Trigger) starts one; ``~/stop_episode`` (std_srvs/SetBool,
    ``data`` = success) ends the open one with its outcome;
  * /task/instruction (std_msgs/String, latched) changes the instruction stored in the bag.
With ``episodes`` > 0 the node exits 0 after that many episodes ended (and starts no further
one), with ``duration_s`` > 0 after that long (the open episode is stopped first).
/diagnostics reports messages/s, bytes, dropped messages and the current episode. A full disk
ends the node with exit code 1 and one line naming the file and what the bag still holds.
"""

from __future__ import annotations

import importlib
import queue
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Bool, String, UInt32
from std_srvs.srv import SetBool, Trigger

from human_video_policy.data.recorder import (
    INSTRUCTION_TOPIC,
    MARKER_TOPICS,
    START_TOPIC,
    SUCCESS_TOPIC,
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

#: Without a preset: the operator camera as camera_node (and realsense-ros) publish it, the hand
#: keypoints, and the arm and hand joints (the teleop_rm75_xhand graph's topics). Per graph,
#: use ``preset`` (``hvp record --preset GRAPH``).
DEFAULT_TOPICS = [
    "/camera/camera/color/image_raw",
    "/camera/camera/color/camera_info",
    "/camera/camera/aligned_depth_to_color/image_raw",
    "/hand/keypoints",
    "/arm/joint_states",
    "/arm/joint_commands",
    "/hand/joint_states",
    "/hand/joint_commands",
]
#: 8-bit encodings stored as JPEG (or PNG); colour ones are converted to bgr8 first, as the
#: compressed image_transport plugin does.
COLOUR_ENCODINGS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
#: 16-bit single-channel encodings (depth) stored as lossless 16-bit PNG.
DEPTH_ENCODINGS = {"16UC1", "mono16"}
IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_FORMATS = ("jpeg", "png")

#: How long a /episode/start waits for the outcome of the episode it ends (sim_node sends the
#: outcome first, but two topics are not ordered), while a publisher of /episode/success exists.
OUTCOME_WAIT_S = 1.0


#: What a service call before the first /clock answers (use_sim_time): no time to stamp it with.
NO_CLOCK_YET = "use_sim_time: no /clock message yet; call again once the simulator publishes /clock"


#: A subscribed topic without a message for this long is reported on /diagnostics (WARN): a
#: camera whose QoS the recorder failed to match, or a node that died, shows up at once.
SILENT_TOPIC_S = 3.0


@dataclass
class _Item:
    """One unit of work for the writer (main) thread."""

    kind: str  # "msg", "start", "stop", "outcome", "instruction"
    topic: str = ""
    msgtype: str = ""
    data: Any = None
    stamp_ns: int = 0
    done: threading.Event | None = None
    result: list[Any] | None = None
    from_topic: bool = False  # a start from /episode/start (may wait for the outcome)


@dataclass
class RawImage:
    """The fields of a serialized sensor_msgs/Image, ``data`` a view into the CDR bytes."""

    sec: int
    nanosec: int
    frame_id: str
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


def parse_image_cdr(data: bytes | memoryview, topic: str = "") -> RawImage:
    """A serialized sensor_msgs/Image (CDR, either byte order) without copying its pixels.

    Why not rclpy's deserialize_message: for a 1280x720 rgb8 image it takes ~3 ms holding the
    GIL (it builds a Python array of the 2.7 MB), while the spin thread must keep taking
    camera frames at 30 Hz; this reads the few header fields and views the pixels.
    """
    buf = memoryview(data).cast("B")
    try:
        order = "<" if buf[1] == 1 else ">"  # encapsulation 0x0001 = CDR little endian

        def aligned(pos: int, size: int) -> int:  # CDR aligns relative to the payload start
            return pos + (-(pos - 4)) % size

        def string(pos: int) -> tuple[str, int]:
            (n,) = struct.unpack_from(order + "I", buf, pos)
            text = bytes(buf[pos + 4 : pos + 4 + max(n - 1, 0)]).decode()
            return text, pos + 4 + n

        sec, nanosec = struct.unpack_from(order + "iI", buf, 4)
        frame_id, pos = string(12)
        pos = aligned(pos, 4)
        height, width = struct.unpack_from(order + "II", buf, pos)
        encoding, pos = string(pos + 8)
        is_bigendian = buf[pos]
        pos = aligned(pos + 1, 4)
        step, n = struct.unpack_from(order + "II", buf, pos)
        pos += 8
        if pos + n > len(buf):
            raise ValueError(f"the pixel data ends {pos + n - len(buf)} byte(s) past the message")
    except (IndexError, ValueError, UnicodeDecodeError, struct.error) as exc:
        raise InputError(f"image on {topic}: not a readable sensor_msgs/Image ({exc})") from None
    return RawImage(
        sec, nanosec, frame_id, height, width, encoding, is_bigendian, step, buf[pos : pos + n]
    )


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
        topics = self.param(
            "topics",
            DEFAULT_TOPICS,
            "Topics to record (types are taken from the graph); replaced by preset's if set.",
        )
        self.preset = self.param(
            "preset",
            "",
            "Record what 'hvp dataset from-bags --preset' of this preset needs "
            "(config/datasets/<name>.yaml or a YAML file); empty = use topics.",
        )
        extra = self.param(
            "extra_topics", [""], "Topics recorded besides the preset's (with preset)."
        )
        extra = [t for t in extra if t]
        if self.preset:
            # only here: the dataset module loads pyarrow, which a plain recorder does not need
            from human_video_policy.data.bag_to_dataset import conversion_preset, recording_topics

            try:
                topics = recording_topics(conversion_preset(self.preset)) + extra
            except ConfigError as exc:
                raise ConfigError(f"parameter preset={self.preset!r} is invalid: {exc}") from None
        elif extra:
            raise ConfigError(
                f"parameter extra_topics={extra!r} is invalid without preset: put them in topics"
            )
        try:
            self.topics: list[str] = _check_topics("topics", topics)
        except ConfigError as exc:
            raise ConfigError(f"parameter {exc}") from None
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
            True,
            "Store images as CompressedImage on <topic>/compressed (image_transport's compressed "
            "format): 8-bit colour/mono as image_format, 16-bit depth as lossless PNG.",
        )
        self.image_format = self.param(
            "image_format",
            "jpeg",
            "Codec of 8-bit images with compress_images: jpeg (lossy, small) or png (lossless).",
            lambda n, v: check_choice(n, v, IMAGE_FORMATS),
        )
        self.jpeg_quality = self.param(
            "jpeg_quality",
            90,
            "JPEG quality (1..100) with compress_images.",
            lambda n, v: check_int_range(n, v, 1, 100),
        )
        self.png_level = self.param(
            "png_level",
            1,
            "PNG level (0..9) for depth and image_format png; higher = smaller, slower.",
            lambda n, v: check_int_range(n, v, 0, 9),
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
        self.clock_timeout_s = self.param(
            "clock_timeout_s",
            30.0,
            "With use_sim_time: how long to wait for the first /clock before giving up (exit 1).",
            lambda n, v: check_range(n, v, 0.1, 3600.0),
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
        self._sim_time = self.use_sim_time()
        self.before_clock = 0  # messages dropped with use_sim_time before the first /clock
        self._clock_start_ns = 0  # with use_sim_time: the first /clock value the writer saw
        self._outcome_publishers = 0  # publishers of /episode/success seen by _discover
        self._all_done = False  # ``episodes`` episodes ended: no further episode starts

        self.create_subscription(Bool, SUCCESS_TOPIC, self._on_outcome, RELIABLE)
        self.create_subscription(UInt32, START_TOPIC, self._on_episode_start, RELIABLE)
        self.create_subscription(String, INSTRUCTION_TOPIC, self._on_instruction, LATCHED)
        self.create_service(Trigger, "~/start_episode", self._on_start_service)
        self.create_service(SetBool, "~/stop_episode", self._on_stop_service)
        self.create_wall_timer(0.5, self._discover)
        self.enable_diagnostics()
        self._discover()
        images = (
            f"images as {self.image_format} CompressedImage"
            if self.compress_images
            else "raw images"
        )
        source = f"preset {self.preset}" if self.preset else "topics"
        self.get_logger().info(
            f"recording {len(self.topics)} topic(s) ({source}: {' '.join(self.topics)}) to "
            f"{self.recorder.session_dir} ({storage}, files of <= {split_period_s:g} s, {images})"
        )

    # -- subscriptions (spin thread) -----------------------------------------------------------
    def _discover(self) -> None:
        """Subscribe to wanted topics that have appeared in the graph."""
        self._outcome_publishers = self.count_publishers(SUCCESS_TOPIC)
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
        stamp = self._stamp()
        if stamp == 0 and self._sim_time:  # no /clock yet: the message has no time to go at
            self.before_clock += 1
            return
        size = len(data)
        with self._lock:
            if self._queued_bytes + size > self._max_queue_bytes:
                self.dropped += 1
                return
            self._queued_bytes += size
        self._rate.tick()
        self._last_message[topic] = time.monotonic()
        self._queue.put(_Item("msg", topic, msgtype, data, stamp))

    def _on_episode_start(self, msg: UInt32) -> None:
        self.get_logger().info(f"/episode/start {msg.data}: next episode")
        self._queue.put(_Item("start", stamp_ns=self._stamp(), from_topic=True))

    def _on_outcome(self, msg: Bool) -> None:
        self._queue.put(_Item("outcome", data=bool(msg.data), stamp_ns=self._stamp()))

    def _on_instruction(self, msg: String) -> None:
        self._queue.put(_Item("instruction", data=msg.data, stamp_ns=self._stamp()))

    def _call(self, item: _Item, timeout: float = 5.0) -> tuple[bool, str]:
        if self._sim_time and item.stamp_ns == 0:
            # Answer now: waiting here would hold the spin thread, and with it /clock.
            return False, NO_CLOCK_YET
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
            if self._sim_time:
                if not self._wait_for_clock(stop):
                    return
                self._started_at = time.monotonic()  # duration_s counts from the clock on
            if self.auto_start:
                self._start(self._clock_start_ns if self._sim_time else self._stamp())
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
                        stamp = self._stamp()
                        self._write_queued_until(stamp)
                        if rec.recording:
                            self._stop(stamp, None, "duration reached")
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

    def _write_queued_until(self, stamp_ns: int) -> None:
        """Handle what is queued with a stamp up to ``stamp_ns`` (the end of a recording by
        duration: frames still waiting for the encoder belong to it); the rest is dropped."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item.stamp_ns > stamp_ns:
                return
            self._handle(item)

    def _wait_for_clock(self, stop: threading.Event) -> bool:
        """With use_sim_time, wait for the first /clock so that episodes start at sim time (not
        at 0, which would make the first bag as long as the whole simulation).

        At most ``clock_timeout_s``: then the node is asked to exit 1 with a line saying why
        (no simulator running, or it runs in another ROS domain). False if stopped or timed out.
        """
        deadline = time.monotonic() + self.clock_timeout_s
        logged = False
        while (now := self._stamp()) == 0:
            if not logged:
                self.get_logger().info(
                    f"use_sim_time: waiting up to {self.clock_timeout_s:g} s for /clock before "
                    "recording"
                )
                logged = True
            if time.monotonic() >= deadline:
                self.request_exit(
                    EXIT_FAILURE,
                    f"error: use_sim_time is true but no /clock message arrived within "
                    f"{self.clock_timeout_s:g} s (clock_timeout_s); nothing was recorded. Start "
                    "the simulator first (it publishes /clock, in this ROS_DOMAIN_ID), or record "
                    "without use_sim_time.",
                )
                return False
            if stop.wait(0.02):
                return False
        self._clock_start_ns = now
        if logged:
            self.get_logger().info(f"use_sim_time: /clock at {now * 1e-9:.3f} s")
        return True

    def _handle(self, item: _Item) -> None:
        result: tuple[bool, str] = (True, "")
        if self._sim_time and item.stamp_ns == 0:
            # An event from before the first /clock: it happened when sim time began, not at 0.
            item.stamp_ns = self._clock_start_ns
        try:
            if item.kind == "msg":
                with self._lock:
                    self._queued_bytes -= len(item.data)
                self._write(item)
            elif item.kind == "start":
                if item.from_topic and self.recorder.recording and self._outcome_publishers:
                    self._start_after_outcome(item)
                else:
                    started = self._start(item.stamp_ns)
                    result = (bool(started), started or "recording is finished")
            elif item.kind == "stop":
                if not self.recorder.recording:
                    result = (False, "no episode is being recorded")
                else:
                    result = (True, self._stop(item.stamp_ns, item.data, "stopped"))
            elif item.kind == "outcome":
                if self.recorder.recording:
                    outcome = "success" if item.data else "failure"
                    self._stop(item.stamp_ns, item.data, f"/episode/success: {outcome}")
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

    def _start_after_outcome(self, start: _Item) -> None:
        """/episode/start arrived before the outcome of the episode it ends: take the items
        queued after it until that outcome comes (at most OUTCOME_WAIT_S), end the episode with
        it at the start's stamp, start the next, then handle the held items in order."""
        held: list[_Item] = []
        outcome: bool | None = None
        deadline = time.monotonic() + OUTCOME_WAIT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if item.kind == "outcome":
                outcome = bool(item.data)
                break
            held.append(item)
        if outcome is None:
            self.get_logger().warning(
                f"/episode/start without the ended episode's outcome on {SUCCESS_TOPIC} within "
                f"{OUTCOME_WAIT_S:g} s: outcome unknown"
            )
            self._stop(start.stamp_ns, None, "next episode")
        else:
            reason = f"next episode, {SUCCESS_TOPIC}: {'success' if outcome else 'failure'}"
            self._stop(start.stamp_ns, outcome, reason)
        self._start(start.stamp_ns)
        for item in held:
            self._handle(item)

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
        """Image bytes -> CompressedImage bytes on ``<topic>/compressed``, as image_transport's
        compressed plugin makes them (None: an encoding it cannot compress; stored raw).

        8-bit colour is converted to bgr8 and encoded with ``image_format`` (``format``:
        ``"<encoding>; jpeg compressed bgr8"``); mono8 and 16-bit depth stay single-channel
        (``"mono8; jpeg compressed "``, ``"16UC1; png compressed "``, depth always PNG).
        """
        img = parse_image_cdr(data, topic)
        encoding = img.encoding
        if encoding in COLOUR_ENCODINGS:
            channels, dtype, codec = COLOUR_ENCODINGS[encoding], np.uint8, self.image_format
        elif encoding in DEPTH_ENCODINGS:
            channels, dtype, codec = 1, np.dtype(">u2" if img.is_bigendian else "<u2"), "png"
        else:
            return None
        itemsize = np.dtype(dtype).itemsize
        row = img.width * channels * itemsize
        if img.step < row or len(img.data) < img.step * img.height:
            raise InputError(f"image on {topic}: step/data do not match {img.width}x{img.height}")
        rows = np.frombuffer(img.data, np.uint8, img.step * img.height)
        rows = rows.reshape(img.height, img.step)[:, :row]
        pixels = np.ascontiguousarray(rows).view(dtype).reshape(img.height, img.width, channels)
        if channels == 1:
            target = ""
        else:
            conversion = {
                "rgb8": cv2.COLOR_RGB2BGR,
                "rgba8": cv2.COLOR_RGBA2BGR,
                "bgra8": cv2.COLOR_BGRA2BGR,
            }.get(encoding)
            if conversion is not None:
                pixels = cv2.cvtColor(pixels, conversion)
            target = "bgr8"
        if dtype != np.uint8:
            pixels = pixels.astype(np.uint16)  # native byte order for OpenCV
        if codec == "jpeg":
            params = [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        else:
            params = [cv2.IMWRITE_PNG_COMPRESSION, self.png_level]
        ok, encoded = cv2.imencode(".jpg" if codec == "jpeg" else ".png", pixels, params)
        if not ok:
            raise InputError(f"image on {topic}: {codec} encoding failed")
        out = CompressedImage()
        out.header.stamp.sec, out.header.stamp.nanosec = img.sec, img.nanosec
        out.header.frame_id = img.frame_id
        out.format = f"{encoding}; {codec} compressed {target}"
        out.data = encoded.tobytes()
        return f"{topic}/compressed", COMPRESSED_TYPE, serialize_message(out)

    def _start(self, stamp_ns: int) -> str:
        """Start the next episode (ending the open one); "" once ``episodes`` have ended."""
        rec = self.recorder
        if rec.recording:
            self._stop(stamp_ns, None, "next episode")
        if self._all_done:
            return ""
        episode = rec.start_episode(stamp_ns)
        self.get_logger().info(f"episode {episode.index} started: {episode.path}")
        return str(episode.path)

    def _stop(self, stamp_ns: int, success: bool | None, why: str) -> str:
        episode = self.recorder.stop_episode(stamp_ns, success=success)
        outcome = {None: "outcome unknown", True: "success", False: "failure"}[success]
        text = (
            f"episode {episode.index} stopped ({why}, {outcome}): {episode.messages} messages, "
            f"{episode.bytes / 1e6:.1f} MB, {(episode.end_ns - episode.start_ns) * 1e-9:.2f} s"
        )
        self.get_logger().info(text)
        if missing := self.missing_topics(episode):
            self.get_logger().warning(
                f"episode {episode.index}: no message on {', '.join(missing)} (requested; never "
                f"arrived in this episode, so the bag lacks them: is the publisher running, under "
                f"that name? 'hvp topic list' shows what the graph publishes)"
            )
        done = len(self.recorder.finished)
        if self.episodes_to_record and done >= self.episodes_to_record:
            self._all_done = True
            self.request_exit(EXIT_OK, f"recorded {done} episode(s)")
        return text

    def missing_topics(self, episode: Any) -> list[str]:
        """Requested topics without a message in ``episode`` (an image topic counts when its
        ``/compressed`` form was written)."""
        counts: dict[str, int] = {}
        for f in episode.files:
            for topic, n in f.counts.items():
                counts[topic] = counts.get(topic, 0) + n
        return [t for t in self.topics if not counts.get(t) and not counts.get(f"{t}/compressed")]

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
            "before_clock": self.before_clock,
        }
        if rec.failed is not None:
            return DiagnosticsReport(Level.ERROR, str(rec.failed), values)
        if self._sim_time and not self._clock_start_ns:
            return DiagnosticsReport(Level.WARN, "use_sim_time: waiting for /clock", values)
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
