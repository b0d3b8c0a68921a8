"""ROS messages -> Foxglove messages (live bridge), without rclpy.

Messages are read by field name only, so the same functions take rclpy messages (a live graph)
and rosbags' dataclasses (a bag). Each supported ROS type has a :class:`Conversion`: the Foxglove
channels it feeds (``Output``: a topic suffix and a Foxglove schema or a JSON schema) and the
function that fills them. The channel on the ROS topic's own name carries the main view:

=============================================  ===============================================
ROS type                                       Foxglove channels (``<topic>`` + suffix)
=============================================  ===============================================
sensor_msgs/Image                              ``foxglove.RawImage`` (encoding passed through)
sensor_msgs/CompressedImage                    ``foxglove.CompressedImage`` (jpeg/png)
sensor_msgs/CameraInfo                         ``foxglove.CameraCalibration``
human_video_policy_msgs/HandKeypoints          JSON (handedness, confidences, named 2D/3D
                                               keypoints); ``/annotations``
                                               ``foxglove.ImageAnnotations`` (keypoints and
                                               bones over the image, same stamp as the image);
                                               ``/scene`` ``foxglove.SceneUpdate`` (3D hands
                                               in the camera frame)
sensor_msgs/JointState                         JSON: the ROS fields plus ``by_name.<joint>``
                                               {position, velocity, effort}
human_video_policy_msgs/ActionChunk            JSON: ``first.<column>`` (the row executed next)
                                               and ``columns.<column>`` (the whole horizon)
geometry_msgs/PoseStamped                      ``foxglove.PoseInFrame``
rcl_interfaces/Log (/rosout)                   ``foxglove.Log``
anything else                                  JSON of all fields (arrays longer than
                                               ``max_array`` cut, ``<field>__len`` added)
=============================================  ===============================================

JSON messages carry ``header.stamp`` as ``{sec, nsec}``, which Foxglove's Plot panel can use as
the x axis.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from foxglove import messages as fm

from human_video_policy.hands.keypoints import NUM_KEYPOINTS
from human_video_policy.viz.skeleton import BONES as _BONES
from human_video_policy.viz.skeleton import HAND_COLOURS, KEYPOINT_NAMES

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
JOINT_STATE = "sensor_msgs/msg/JointState"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
ROS_LOG = "rcl_interfaces/msg/Log"
HAND_KEYPOINTS = "human_video_policy_msgs/msg/HandKeypoints"
ACTION_CHUNK = "human_video_policy_msgs/msg/ActionChunk"

#: Types that are high-rate sensor streams: subscribed with sensor-data QoS (best effort).
SENSOR_TYPES = frozenset({IMAGE, COMPRESSED_IMAGE, CAMERA_INFO, HAND_KEYPOINTS})

#: Arrays longer than this are cut in generic JSON (a 640x480 depth image is not a plot).
DEFAULT_MAX_ARRAY = 256

_OTHER_COLOUR = (0.9, 0.9, 0.9)
_IDENTITY = fm.Quaternion(w=1.0)
_KEYPOINT_SIZE = fm.Vector3(x=0.012, y=0.012, z=0.012)


@dataclass(frozen=True)
class Output:
    """One Foxglove channel fed by a ROS topic: ``<topic><suffix>`` with a Foxglove message
    class (a typed, protobuf-encoded channel) or a JSON schema (a JSON channel)."""

    suffix: str
    schema: type | dict[str, Any]

    @property
    def is_json(self) -> bool:
        return isinstance(self.schema, dict)


Converted = dict[str, Any]
"""suffix -> Foxglove message object or JSON-able dict."""


@dataclass(frozen=True)
class Conversion:
    outputs: tuple[Output, ...]
    convert: Callable[[Any], Converted]


# -- small helpers ------------------------------------------------------------------------
def stamp_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (``sec``/``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _timestamp(stamp: Any) -> fm.Timestamp:
    return fm.Timestamp(sec=int(stamp.sec), nsec=int(stamp.nanosec))


def _stamp_json(stamp: Any) -> dict[str, int]:
    return {"sec": int(stamp.sec), "nsec": int(stamp.nanosec)}


def _header_json(header: Any) -> dict[str, Any]:
    return {"stamp": _stamp_json(header.stamp), "frame_id": str(header.frame_id)}


def _bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, np.ndarray):
        return data.tobytes()
    return bytes(memoryview(data))


def _floats(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).ravel()


def _number(value: float) -> float | None:
    """A JSON number, or null for NaN/inf (JSON has no NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _color(rgb: Sequence[float], alpha: float = 1.0) -> fm.Color:
    return fm.Color(r=rgb[0], g=rgb[1], b=rgb[2], a=alpha)


def compressed_format(ros_format: str) -> str:
    """sensor_msgs/CompressedImage ``format`` -> Foxglove's (``jpeg``, ``png``, ...).

    image_transport writes ``rgb8; jpeg compressed bgr8``; plain ``jpeg``/``png`` pass through.
    """
    text = ros_format.lower()
    for name in ("jpeg", "png", "webp", "avif"):
        if name in text:
            return name
    if "jpg" in text:
        return "jpeg"
    return text.strip() or "jpeg"


# -- converters ---------------------------------------------------------------------------
def raw_image(msg: Any) -> Converted:
    return {
        "": fm.RawImage(
            timestamp=_timestamp(msg.header.stamp),
            frame_id=str(msg.header.frame_id),
            width=int(msg.width),
            height=int(msg.height),
            encoding=str(msg.encoding),
            step=int(msg.step),
            data=_bytes(msg.data),
        )
    }


def compressed_image(msg: Any) -> Converted:
    return {
        "": fm.CompressedImage(
            timestamp=_timestamp(msg.header.stamp),
            frame_id=str(msg.header.frame_id),
            data=_bytes(msg.data),
            format=compressed_format(str(msg.format)),
        )
    }


def camera_info(msg: Any) -> Converted:
    return {
        "": fm.CameraCalibration(
            timestamp=_timestamp(msg.header.stamp),
            frame_id=str(msg.header.frame_id),
            width=int(msg.width),
            height=int(msg.height),
            distortion_model=str(msg.distortion_model),
            D=[float(v) for v in msg.d],
            K=[float(v) for v in msg.k],
            R=[float(v) for v in msg.r],
            P=[float(v) for v in msg.p],
        )
    }


def pose_stamped(msg: Any) -> Converted:
    p, q = msg.pose.position, msg.pose.orientation
    return {
        "": fm.PoseInFrame(
            timestamp=_timestamp(msg.header.stamp),
            frame_id=str(msg.header.frame_id),
            pose=fm.Pose(
                position=fm.Vector3(x=float(p.x), y=float(p.y), z=float(p.z)),
                orientation=fm.Quaternion(x=float(q.x), y=float(q.y), z=float(q.z), w=float(q.w)),
            ),
        )
    }


_LOG_LEVELS = {10: fm.LogLevel.Debug, 20: fm.LogLevel.Info, 30: fm.LogLevel.Warning}


def ros_log(msg: Any) -> Converted:
    level = int(msg.level)
    fox_level = _LOG_LEVELS.get(level, fm.LogLevel.Error if level == 40 else fm.LogLevel.Fatal)
    return {
        "": fm.Log(
            timestamp=_timestamp(msg.stamp),
            level=fox_level,
            message=str(msg.msg),
            name=str(msg.name),
            file=str(msg.file),
            line=int(msg.line),
        )
    }


def joint_state(msg: Any) -> Converted:
    names = [str(n) for n in msg.name]
    fields = {
        key: [_number(v) for v in _floats(getattr(msg, key))]
        for key in ("position", "velocity", "effort")
    }
    by_name: dict[str, dict[str, float | None]] = {}
    for i, name in enumerate(names):
        by_name[name] = {key: vals[i] for key, vals in fields.items() if i < len(vals)}
    return {"": {"header": _header_json(msg.header), "name": names, **fields, "by_name": by_name}}


def chunk_columns(msg: Any) -> list[str]:
    """The ActionChunk's column names, ``dim_<i>`` where names are missing or not unique."""
    dims = int(msg.dims)
    names = [str(n) for n in msg.names]
    if len(names) != dims or len(set(names)) != dims or not all(names):
        return [f"dim_{i}" for i in range(dims)]
    return names


def action_chunk(msg: Any) -> Converted:
    horizon, dims = int(msg.horizon), int(msg.dims)
    data = _floats(msg.data)
    columns = chunk_columns(msg)
    out: dict[str, Any] = {
        "header": _header_json(msg.header),
        "observation_stamp": _stamp_json(msg.observation_stamp),
        "action_space": str(msg.action_space),
        "horizon": horizon,
        "dims": dims,
        "dt": float(msg.dt),
        "names": columns,
    }
    if horizon * dims == data.size and data.size:
        rows = data.reshape(horizon, dims)
        out["first"] = {c: _number(v) for c, v in zip(columns, rows[0], strict=True)}
        out["columns"] = {c: [_number(v) for v in rows[:, j]] for j, c in enumerate(columns)}
        latency = (stamp_ns(msg.header.stamp) - stamp_ns(msg.observation_stamp)) * 1e-9
        out["latency_s"] = latency
    else:
        out["error"] = f"data has {data.size} values, horizon*dims = {horizon * dims}"
    return {"": out}


def _hand_label(hand: Any, i: int) -> str:
    side = str(hand.handedness).lower()
    return side if side in HAND_COLOURS else f"hand{i}"


def hand_keypoints(msg: Any) -> Converted:
    stamp = _timestamp(msg.header.stamp)
    frame_id = str(msg.header.frame_id)
    summary: dict[str, Any] = {
        "header": _header_json(msg.header),
        "image_width": int(msg.image_width),
        "image_height": int(msg.image_height),
        "hands": {},
    }
    points: list[fm.PointsAnnotation] = []
    texts: list[fm.TextAnnotation] = []
    entities: list[fm.SceneEntity] = []
    for i, hand in enumerate(msg.hands):
        label = _hand_label(hand, i)
        rgb = HAND_COLOURS.get(label, _OTHER_COLOUR)
        colour = _color(rgb)
        uv = _floats(hand.keypoints_2d).reshape(NUM_KEYPOINTS, 2)
        xyz = _floats(hand.keypoints_3d).reshape(NUM_KEYPOINTS, 3)
        ok2 = np.isfinite(uv).all(axis=1).tolist()
        ok3 = np.isfinite(xyz).all(axis=1).tolist()
        uv_list, xyz_list = uv.tolist(), xyz.tolist()
        conf = _floats(hand.keypoint_confidence).tolist()
        summary["hands"][label] = {
            "handedness": str(hand.handedness),
            "confidence": _number(hand.confidence),
            "keypoints_2d": {
                n: {"u": u, "v": v} if ok else {"u": None, "v": None}
                for n, (u, v), ok in zip(KEYPOINT_NAMES, uv_list, ok2, strict=True)
            },
            "keypoints_3d": {
                n: {"x": x, "y": y, "z": z} if ok else {"x": None, "y": None, "z": None}
                for n, (x, y, z), ok in zip(KEYPOINT_NAMES, xyz_list, ok3, strict=True)
            },
            "keypoint_confidence": {
                n: _number(c) for n, c in zip(KEYPOINT_NAMES, conf, strict=False)
            },
        }
        # one Foxglove point per keypoint, shared by the dots and the bones (immutable objects)
        p2 = [fm.Point2(x=u, y=v) for u, v in uv_list]
        points.append(
            fm.PointsAnnotation(
                timestamp=stamp,
                type=fm.PointsAnnotationType.LineList,
                points=[p2[k] for a, b in _BONES if ok2[a] and ok2[b] for k in (a, b)],
                outline_color=colour,
                thickness=2.0,
            )
        )
        points.append(
            fm.PointsAnnotation(
                timestamp=stamp,
                type=fm.PointsAnnotationType.Points,
                points=[p for p, ok in zip(p2, ok2, strict=True) if ok],
                outline_color=colour,
                fill_color=colour,
                thickness=5.0,
            )
        )
        if ok2[0]:
            texts.append(
                fm.TextAnnotation(
                    timestamp=stamp,
                    position=fm.Point2(x=uv_list[0][0], y=uv_list[0][1] + 14.0),
                    text=f"{label} {float(hand.confidence):.2f}",
                    font_size=14.0,
                    text_color=colour,
                    background_color=_color((0.0, 0.0, 0.0), 0.6),
                )
            )
        p3 = [fm.Point3(x=x, y=y, z=z) for x, y, z in xyz_list]
        entities.append(
            fm.SceneEntity(
                timestamp=stamp,
                frame_id=frame_id,
                id=f"hand_{label}",
                spheres=[
                    fm.SpherePrimitive(
                        pose=fm.Pose(position=fm.Vector3(x=x, y=y, z=z), orientation=_IDENTITY),
                        size=_KEYPOINT_SIZE,
                        color=colour,
                    )
                    for (x, y, z), ok in zip(xyz_list, ok3, strict=True)
                    if ok
                ],
                lines=[
                    fm.LinePrimitive(
                        type=fm.LinePrimitiveLineType.LineList,
                        pose=fm.Pose(orientation=_IDENTITY),
                        thickness=0.004,
                        points=[p3[k] for a, b in _BONES if ok3[a] and ok3[b] for k in (a, b)],
                        color=colour,
                    )
                ],
            )
        )
    return {
        "": summary,
        "/annotations": fm.ImageAnnotations(timestamp=stamp, points=points, texts=texts),
        "/scene": fm.SceneUpdate(
            deletions=[
                fm.SceneEntityDeletion(timestamp=stamp, type=fm.SceneEntityDeletionType.All)
            ],
            entities=entities,
        ),
    }


# -- generic JSON -------------------------------------------------------------------------
def _field_names(msg: Any) -> list[str] | None:
    getter = getattr(msg, "get_fields_and_field_types", None)
    if callable(getter):  # rclpy message
        return list(getter())
    if dataclasses.is_dataclass(msg) and not isinstance(msg, type):  # rosbags message
        return [f.name for f in dataclasses.fields(msg) if f.name != "__msgtype__"]
    return None


def to_json(value: Any, max_array: int = DEFAULT_MAX_ARRAY) -> Any:
    """Any ROS message (rclpy or rosbags) as JSON-able data; long arrays are cut to
    ``max_array`` items and their length given in ``<field>__len``."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return to_json(value.item(), max_array)
    if isinstance(value, (bytes, bytearray)):
        return list(value[:max_array])
    if isinstance(value, np.ndarray) or type(value).__name__ == "array":
        arr = np.asarray(value)
        return [to_json(v, max_array) for v in arr.ravel()[:max_array].tolist()]
    if isinstance(value, (list, tuple)):
        return [to_json(v, max_array) for v in value[:max_array]]
    names = _field_names(value)
    if names is None:
        return str(value)
    if {"sec", "nanosec"} <= set(names) and len(names) == 2:  # builtin_interfaces/Time
        return _stamp_json(value)
    out: dict[str, Any] = {}
    for name in names:
        field = getattr(value, name)
        out[name] = to_json(field, max_array)
        length = _length(field)
        if length is not None and length > max_array:
            out[f"{name}__len"] = length
    return out


def _length(value: Any) -> int | None:
    if isinstance(value, (bytes, bytearray, list, tuple, np.ndarray)) or (
        type(value).__name__ == "array"
    ):
        return len(value)
    return None


# -- the table ----------------------------------------------------------------------------
def _object(title: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"title": title, "type": "object", "properties": properties}


_STAMP = _object("hvp.Time", {"sec": {"type": "integer"}, "nsec": {"type": "integer"}})
_HEADER = _object("hvp.Header", {"stamp": _STAMP, "frame_id": {"type": "string"}})
_NUMBERS = {"type": "array", "items": {"type": ["number", "null"]}}
JOINT_STATE_SCHEMA = _object(
    "hvp.JointState",
    {
        "header": _HEADER,
        "name": {"type": "array", "items": {"type": "string"}},
        "position": _NUMBERS,
        "velocity": _NUMBERS,
        "effort": _NUMBERS,
        "by_name": {"type": "object", "additionalProperties": {"type": "object"}},
    },
)
ACTION_CHUNK_SCHEMA = _object(
    "hvp.ActionChunk",
    {
        "header": _HEADER,
        "observation_stamp": _STAMP,
        "action_space": {"type": "string"},
        "horizon": {"type": "integer"},
        "dims": {"type": "integer"},
        "dt": {"type": "number"},
        "names": {"type": "array", "items": {"type": "string"}},
        "first": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
        "columns": {"type": "object", "additionalProperties": _NUMBERS},
        "latency_s": {"type": "number"},
    },
)
HAND_KEYPOINTS_SCHEMA = _object(
    "hvp.HandKeypoints",
    {
        "header": _HEADER,
        "image_width": {"type": "integer"},
        "image_height": {"type": "integer"},
        "hands": {"type": "object", "additionalProperties": {"type": "object"}},
    },
)
CONVERSIONS: dict[str, Conversion] = {
    IMAGE: Conversion((Output("", fm.RawImage),), raw_image),
    COMPRESSED_IMAGE: Conversion((Output("", fm.CompressedImage),), compressed_image),
    CAMERA_INFO: Conversion((Output("", fm.CameraCalibration),), camera_info),
    POSE_STAMPED: Conversion((Output("", fm.PoseInFrame),), pose_stamped),
    ROS_LOG: Conversion((Output("", fm.Log),), ros_log),
    JOINT_STATE: Conversion((Output("", JOINT_STATE_SCHEMA),), joint_state),
    ACTION_CHUNK: Conversion((Output("", ACTION_CHUNK_SCHEMA),), action_chunk),
    HAND_KEYPOINTS: Conversion(
        (
            Output("", HAND_KEYPOINTS_SCHEMA),
            Output("/annotations", fm.ImageAnnotations),
            Output("/scene", fm.SceneUpdate),
        ),
        hand_keypoints,
    ),
}


def conversion_for(ros_type: str, generic: bool = True, max_array: int = DEFAULT_MAX_ARRAY):
    """The :class:`Conversion` of a ROS type (``pkg/msg/Name``); other types become generic
    JSON when ``generic`` (else None)."""
    found = CONVERSIONS.get(normalize_type(ros_type))
    if found is not None or not generic:
        return found
    schema = {"title": normalize_type(ros_type), "type": "object"}  # named after the ROS type
    return Conversion((Output("", schema),), lambda msg: {"": to_json(msg, max_array)})


def normalize_type(ros_type: str) -> str:
    """``pkg/Name`` -> ``pkg/msg/Name`` (both spellings occur in tools)."""
    parts = ros_type.split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else ros_type


# -- QoS ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class QosChoice:
    """How the bridge subscribes to a topic (mapped onto rclpy QoS by the node)."""

    reliable: bool
    transient_local: bool
    depth: int


def choose_qos(ros_type: str, publishers: Sequence[tuple[bool, bool]]) -> QosChoice | None:
    """QoS for a subscription that matches every publisher, from their offered
    ``(reliable, transient_local)`` pairs; None when there is no publisher yet.

    Sensor streams (images, camera info, hand keypoints) are always best effort, volatile,
    depth 5 (sensor-data QoS: the newest frame matters). Others are reliable only when every
    publisher is (a reliable reader does not match a best-effort writer), and transient local
    when every publisher is (so latched values such as the camera extrinsic arrive)."""
    if not publishers:
        return None
    if normalize_type(ros_type) in SENSOR_TYPES:
        return QosChoice(reliable=False, transient_local=False, depth=5)
    reliable = all(r for r, _ in publishers)
    latched = all(t for _, t in publishers)
    return QosChoice(reliable=reliable, transient_local=latched, depth=1 if latched else 10)
