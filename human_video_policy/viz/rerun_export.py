"""Dataset episodes and rosbag2 bags -> Rerun recordings, every dimension named.

A dataset episode (LeRobot v3, :class:`~human_video_policy.data.dataset_reader.DatasetReader`):

* timelines ``frame_index`` (sequence) and ``timestamp`` (seconds from the episode's start);
* each vector feature (``observation.state``, ``action``, their masks, ...) as one scalar series
  per dimension at ``<feature>/<name>``, the name taken from the feature's ``names`` in
  ``meta/info.json`` (``dim_<i>`` where a dataset gives none), with that name as the series
  label; one-value features (``segment_index``) at ``<feature>``;
* each camera (``observation.images.*``) as JPEG frames at ``<camera key>``;
* ``human.hand_keypoints`` as 3D points with a hand skeleton (MediaPipe keypoint names and
  bones through an annotation context) at ``human.hand_keypoints/left|right``; a hand the
  dataset marks missing (all zeros) is not drawn;
* the task text at ``task`` and the dataset's info.json at ``dataset/info``.

A bag (:class:`~human_video_policy.data.bags.BagReader`), on the timeline ``ros_time`` (the bag's
receive stamps): Image / CompressedImage at ``<topic>`` (colour as JPEG, depth as a depth image
in metres), JointState as ``<topic>/<position|velocity|effort>/<joint>``, ActionChunk as the row
executed next at ``<topic>/<column>``, HandKeypoints as 2D points (over the image) and 3D points
with the skeleton, PoseStamped as ``<topic>/<x|y|z>``, std_msgs numbers and booleans as
``<topic>``. Other types are listed as skipped.

Entity-path parts are escaped with Rerun's own rules, so a name with a space or a slash stays
one part.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rerun as rr

from human_video_policy.data.bags import BagReader
from human_video_policy.data.dataset_format import HAND_KEYPOINTS_KEY, hand_keypoints_array
from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.errors import InputError
from human_video_policy.viz.skeleton import BONES, HAND_COLOURS, KEYPOINT_NAMES

#: Default columns of every LeRobot dataset: indices and time, not signals worth plotting.
_INDEX_FEATURES = {"timestamp", "frame_index", "episode_index", "index", "task_index"}
HAND_ORDER = ("left", "right")  # the dataset's hand axis (dataset_format.hand_keypoints_feature)
DEFAULT_JPEG_QUALITY = 90


@dataclass
class ExportSummary:
    """What was logged: entity path -> what (``scalars``, ``image``, ``points3d``, ...), the
    number of frames or messages, and what was left out (with the reason)."""

    entities: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    skipped: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        kinds: dict[str, list[str]] = defaultdict(list)
        for path, kind in self.entities.items():
            kinds[kind].append(path)
        out = [
            f"{kind}: {len(paths)} ({', '.join(sorted(paths)[:6])}"
            f"{', ...' if len(paths) > 6 else ''})"
            for kind, paths in sorted(kinds.items())
        ]
        out += [f"skipped {topic}: {why}" for topic, why in sorted(self.skipped.items())]
        return out


def entity(*parts: str) -> str:
    """An entity path from unescaped parts (``observation.state``, ``left finger``)."""
    return "/" + "/".join(rr.escape_entity_path_part(str(p)) for p in parts)


def dimension_names(names: Iterable[Any] | None, count: int) -> list[str]:
    """``count`` unique, non-empty names: the given ones, else ``dim_<i>``."""
    given = [str(n) for n in names] if names is not None else []
    if len(given) == count and len(set(given)) == count and all(given):
        return given
    return [f"dim_{i}" for i in range(count)]


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError(f"JPEG encoding of a {rgb.shape} image failed")
    return buf.tobytes()


def _hand_annotation(rec: rr.RecordingStream, path: str, side: str) -> None:
    colour = [int(255 * c) for c in HAND_COLOURS.get(side, (0.9, 0.9, 0.9))]
    rec.log(
        path,
        rr.AnnotationContext(
            [
                rr.ClassDescription(
                    info=rr.AnnotationInfo(id=0, label=f"{side} hand", color=colour),
                    keypoint_annotations=[
                        rr.AnnotationInfo(id=i, label=name) for i, name in enumerate(KEYPOINT_NAMES)
                    ],
                    keypoint_connections=list(BONES),
                )
            ]
        ),
        static=True,
    )


def _send_scalars(
    rec: rr.RecordingStream,
    path: str,
    name: str,
    indexes: list[rr.TimeColumn],
    values: np.ndarray,
    summary: ExportSummary,
) -> None:
    rec.log(path, rr.SeriesLines(names=name), static=True)
    rec.send_columns(path, indexes=indexes, columns=rr.Scalars.columns(scalars=values))
    summary.entities[path] = "scalars"


# -- datasets -------------------------------------------------------------------------------
def log_dataset_episode(
    reader: DatasetReader,
    episode: int,
    rec: rr.RecordingStream,
    *,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    cameras: bool = True,
) -> ExportSummary:
    """Log one episode of ``reader`` to ``rec`` (see the module docstring)."""
    rows = reader.episode_rows(episode)
    length = len(rows["frame_index"])
    summary = ExportSummary(frames=length)
    indexes = [
        rr.TimeColumn("frame_index", sequence=rows["frame_index"].astype(np.int64).ravel()),
        rr.TimeColumn("timestamp", duration=rows["timestamp"].astype(np.float64).ravel()),
    ]
    rec.log("/dataset/info", rr.TextDocument(json.dumps(reader.info, indent=2)), static=True)
    summary.entities["/dataset/info"] = "text"
    task_index = int(rows["task_index"].ravel()[0]) if length else 0
    if 0 <= task_index < len(reader.tasks):
        rec.log("/task", rr.TextDocument(reader.tasks[task_index]), static=True)
        summary.entities["/task"] = "text"

    for key, values in rows.items():
        if key in _INDEX_FEATURES:
            continue
        values = np.asarray(values)
        if key == HAND_KEYPOINTS_KEY:
            _log_dataset_hands(rec, hand_keypoints_array(values), indexes, summary)
            continue
        if not np.issubdtype(values.dtype, np.number) and values.dtype != np.bool_:
            summary.skipped[key] = f"dtype {values.dtype} is not numeric"
            continue
        flat = values.reshape(length, -1).astype(np.float64)
        if flat.shape[1] == 1:
            _send_scalars(rec, entity(key), key, indexes, flat[:, 0], summary)
            continue
        names = reader.names(key) if values.ndim == 2 else []
        for j, name in enumerate(dimension_names(names, flat.shape[1])):
            _send_scalars(rec, entity(key, name), name, indexes, flat[:, j], summary)

    if cameras:
        for key in reader.video_keys:
            frames = reader.video_frames(episode, key)
            blobs = [_jpeg(frame, jpeg_quality) for frame in frames]
            rec.send_columns(
                entity(key),
                indexes=indexes,
                columns=rr.EncodedImage.columns(blob=blobs, media_type=["image/jpeg"] * len(blobs)),
            )
            summary.entities[entity(key)] = "image"
    return summary


def _log_dataset_hands(
    rec: rr.RecordingStream,
    values: np.ndarray,
    indexes: list[rr.TimeColumn],
    summary: ExportSummary,
) -> None:
    for h, side in enumerate(HAND_ORDER):
        path = entity(HAND_KEYPOINTS_KEY, side)
        _hand_annotation(rec, path, side)
        hand = values[:, h].astype(np.float32)  # (T, 21, 3)
        present = np.isfinite(hand).all(axis=(1, 2)) & (np.abs(hand).sum(axis=(1, 2)) > 0)
        lengths = np.where(present, len(KEYPOINT_NAMES), 0)
        positions = hand[present].reshape(-1, 3)
        ids = np.tile(np.arange(len(KEYPOINT_NAMES)), int(present.sum()))
        rec.send_columns(
            path,
            indexes=indexes,
            columns=rr.Points3D.columns(
                positions=positions, keypoint_ids=ids, class_ids=np.zeros_like(ids)
            ).partition(lengths),
        )
        summary.entities[path] = "points3d"


def export_dataset_episode(
    dataset: str | Path,
    episode: int,
    rec: rr.RecordingStream,
    **kwargs: Any,
) -> ExportSummary:
    """Open ``dataset`` and log ``episode`` (an error names the episodes that exist)."""
    reader = DatasetReader(dataset)
    try:
        if not 0 <= episode < reader.num_episodes:
            raise InputError(
                f"{dataset} has episodes 0..{reader.num_episodes - 1}; there is no episode "
                f"{episode}"
            )
        return log_dataset_episode(reader, episode, rec, **kwargs)
    finally:
        reader.close()


# -- bags -----------------------------------------------------------------------------------
_IMAGE_DTYPES = {
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "mono8": (np.uint8, 1),
    "16UC1": (np.uint16, 1),
    "mono16": (np.uint16, 1),
    "32FC1": (np.float32, 1),
}
_NUMBER_TYPES = {
    f"std_msgs/msg/{t}"
    for t in ("Bool", "Float32", "Float64", "Int8", "Int16", "Int32", "Int64", "UInt8",
              "UInt16", "UInt32", "UInt64")
}  # fmt: skip


def _pixels(msg: Any) -> np.ndarray:
    if msg.encoding not in _IMAGE_DTYPES:
        raise InputError(f"image encoding {msg.encoding!r} is not shown: use {list(_IMAGE_DTYPES)}")
    dtype, channels = _IMAGE_DTYPES[msg.encoding]
    dtype = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    raw = np.frombuffer(np.asarray(msg.data, dtype=np.uint8).tobytes(), np.uint8)
    rows = raw[: msg.step * msg.height].reshape(msg.height, msg.step)
    row_bytes = msg.width * channels * dtype.itemsize
    pixels = rows[:, :row_bytes].copy().view(dtype).reshape(msg.height, msg.width, channels)
    return pixels[..., 0] if channels == 1 else pixels


class _BagLogger:
    """Per-message logging of a bag, scalars buffered and sent as columns at the end."""

    def __init__(self, rec: rr.RecordingStream, jpeg_quality: int) -> None:
        self.rec = rec
        self.jpeg_quality = jpeg_quality
        self.summary = ExportSummary()
        self.series: dict[str, tuple[str, list[int], list[float]]] = {}
        self.annotated: set[str] = set()

    def scalar(self, path: str, name: str, stamp_ns: int, value: float) -> None:
        entry = self.series.setdefault(path, (name, [], []))
        entry[1].append(stamp_ns)
        entry[2].append(float(value))

    def message(self, topic: str, msgtype: str, stamp_ns: int, msg: Any) -> None:
        rec = self.rec
        base = entity(*topic.strip("/").split("/"))
        if msgtype == "sensor_msgs/msg/Image":
            pixels = _pixels(msg)
            rec.set_time("ros_time", timestamp=np.datetime64(stamp_ns, "ns"))
            if msg.encoding in ("16UC1", "mono16", "32FC1"):
                meter = 1000.0 if msg.encoding != "32FC1" else 1.0
                rec.log(base, rr.DepthImage(pixels, meter=meter))
                self.summary.entities[base] = "depth_image"
            else:
                rgb = pixels[..., ::-1] if msg.encoding == "bgr8" else pixels
                rec.log(
                    base,
                    rr.EncodedImage(
                        contents=_jpeg(rgb, self.jpeg_quality), media_type="image/jpeg"
                    ),
                )
                self.summary.entities[base] = "image"
        elif msgtype == "sensor_msgs/msg/CompressedImage":
            fmt = str(msg.format).lower()
            media = "image/png" if "png" in fmt else "image/jpeg"
            rec.set_time("ros_time", timestamp=np.datetime64(stamp_ns, "ns"))
            data = np.asarray(msg.data, dtype=np.uint8).tobytes()
            rec.log(base, rr.EncodedImage(contents=data, media_type=media))
            self.summary.entities[base] = "image"
        elif msgtype == "sensor_msgs/msg/JointState":
            names = dimension_names(msg.name, len(msg.name))
            for kind in ("position", "velocity", "effort"):
                values = np.asarray(getattr(msg, kind), dtype=np.float64)
                for name, value in zip(names, values, strict=False):
                    self.scalar(
                        entity(*topic.strip("/").split("/"), kind, name), name, stamp_ns, value
                    )
        elif msgtype == "human_video_policy_msgs/msg/ActionChunk":
            data = np.asarray(msg.data, dtype=np.float64)
            dims = int(msg.dims)
            if dims and data.size >= dims:
                for name, value in zip(dimension_names(msg.names, dims), data[:dims], strict=True):
                    self.scalar(entity(*topic.strip("/").split("/"), name), name, stamp_ns, value)
        elif msgtype == "human_video_policy_msgs/msg/HandKeypoints":
            self._hands(topic, stamp_ns, msg)
        elif msgtype == "geometry_msgs/msg/PoseStamped":
            p = msg.pose.position
            for axis in ("x", "y", "z"):
                path = entity(*topic.strip("/").split("/"), axis)
                self.scalar(path, axis, stamp_ns, getattr(p, axis))
        elif msgtype in _NUMBER_TYPES:
            self.scalar(base, topic, stamp_ns, float(msg.data))
        else:
            self.summary.skipped[topic] = f"type {msgtype} is not shown"

    def _hands(self, topic: str, stamp_ns: int, msg: Any) -> None:
        rec = self.rec
        rec.set_time("ros_time", timestamp=np.datetime64(stamp_ns, "ns"))
        parts = topic.strip("/").split("/")
        seen = set()
        for hand in msg.hands:
            side = str(hand.handedness).lower() or "hand"
            seen.add(side)
            path2, path3 = entity(*parts, side), entity(*parts, side, "3d")
            if side not in self.annotated:
                _hand_annotation(rec, entity(*parts), side)
                self.annotated.add(side)
            ids = np.arange(len(KEYPOINT_NAMES))
            uv = np.asarray(hand.keypoints_2d, dtype=np.float32).reshape(-1, 2)
            xyz = np.asarray(hand.keypoints_3d, dtype=np.float32).reshape(-1, 3)
            rec.log(path2, rr.Points2D(uv, keypoint_ids=ids, class_ids=0))
            rec.log(path3, rr.Points3D(xyz, keypoint_ids=ids, class_ids=0))
            self.summary.entities[path2] = "points2d"
            self.summary.entities[path3] = "points3d"
        for side in self.annotated - seen:  # a hand that left the picture
            rec.log(entity(*parts, side), rr.Clear(recursive=True))

    def finish(self) -> ExportSummary:
        for path, (name, stamps, values) in self.series.items():
            times = np.asarray(stamps, dtype="datetime64[ns]")
            order = np.argsort(times, kind="stable")
            self.rec.log(path, rr.SeriesLines(names=name), static=True)
            self.rec.send_columns(
                path,
                indexes=[rr.TimeColumn("ros_time", timestamp=times[order])],
                columns=rr.Scalars.columns(scalars=np.asarray(values)[order]),
            )
            self.summary.entities[path] = "scalars"
        return self.summary


def export_bag(
    bag: str | Path,
    rec: rr.RecordingStream,
    *,
    topics: list[str] | None = None,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
) -> ExportSummary:
    """Log every message of ``bag`` (or of ``topics``) to ``rec``; unknown types are skipped."""
    logger = _BagLogger(rec, jpeg_quality)
    with BagReader(bag, on_unknown="skip") as reader:
        types = {name: t.msgtype for name, t in reader.topics.items()}
        for topic, stamp_ns, msg in reader.messages(topics):
            logger.message(topic, types[topic], stamp_ns, msg)
            logger.summary.frames += 1
        for topic, msgtype in reader.skipped_topics.items():
            logger.summary.skipped[topic] = f"type {msgtype} is unknown to this reader"
    return logger.finish()
