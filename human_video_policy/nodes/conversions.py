"""ROS messages <-> numpy arrays and the core's dataclasses, with validation.

Every conversion from a message checks what it reads and raises :class:`InputError` naming the
field, the value and what is allowed, so a node can count and report a bad message instead of
crashing or passing garbage to the core. Conversions to messages build the field arrays with
``array.array`` so rclpy does not check large arrays element by element.

Units follow REP-103: seconds, metres, radians. Depth images are ``16UC1`` in millimetres
(realsense-ros convention, 0 = no measurement) or ``32FC1`` in metres.
"""

from __future__ import annotations

import array
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import Hand as HandMsg
from human_video_policy_msgs.msg import HandKeypoints as HandKeypointsMsg
from human_video_policy_msgs.msg import SimState
from sensor_msgs.msg import CameraInfo, Image, JointState

from human_video_policy.camera.pinhole import CameraIntrinsics
from human_video_policy.errors import InputError
from human_video_policy.runtime.action_chunk import ActionChunk

# encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}


# -- time ----------------------------------------------------------------------------------
def stamp_to_seconds(stamp: Time) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    """Float seconds (>= 0, finite) -> builtin_interfaces/Time, rounded to the nanosecond."""
    if not (isinstance(seconds, (int, float, np.floating)) and math.isfinite(seconds)):
        raise InputError(f"time {seconds!r} is invalid: must be a finite number of seconds")
    if seconds < 0:
        raise InputError(f"time {seconds!r} is invalid: ROS time must be >= 0")
    total_ns = round(float(seconds) * 1e9)
    return Time(sec=total_ns // 1_000_000_000, nanosec=total_ns % 1_000_000_000)


# -- images --------------------------------------------------------------------------------
def image_to_numpy(msg: Image) -> np.ndarray:
    """An Image message as an (H, W, C) or (H, W) array in its own encoding (no colour swap).

    Returns a view of the message buffer where possible (no copy). Raises InputError for an
    unknown encoding, an empty image, a row step too small for the width, or a data size that
    does not match ``step * height``.
    """
    if msg.encoding not in IMAGE_ENCODINGS:
        raise InputError(
            f"image encoding {msg.encoding!r} is not supported: use one of {list(IMAGE_ENCODINGS)}"
        )
    dtype, channels = IMAGE_ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 1 or width < 1:
        raise InputError(f"image size {width}x{height} is invalid: must be at least 1x1")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise InputError(
            f"image step={step} is invalid for {msg.encoding} {width}x{height}: "
            f"must be >= width * {channels * dtype.itemsize} = {row_bytes} bytes"
        )
    if step % dtype.itemsize:
        raise InputError(
            f"image step={step} is not a multiple of {dtype.itemsize} ({msg.encoding})"
        )
    data = msg.data
    size = len(data) * (data.itemsize if isinstance(data, array.array) else 1)
    if size != step * height:
        raise InputError(
            f"image data has {size} bytes but step * height = {step} * {height} = "
            f"{step * height} ({msg.encoding} {width}x{height})"
        )
    raw = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, :row_bytes]
    if dtype.itemsize == 1:
        pixels = raw
    else:
        stored = dtype.newbyteorder(">" if msg.is_bigendian else "<")
        pixels = np.ascontiguousarray(raw).view(stored)
        if stored != dtype:  # other byte order than this machine: convert to native
            pixels = pixels.astype(dtype)
    shape = (height, width, channels) if channels > 1 else (height, width)
    return pixels.reshape(shape)


def image_to_rgb(msg: Image) -> np.ndarray:
    """An rgb8 or bgr8 Image as an (H, W, 3) uint8 RGB array."""
    if msg.encoding not in ("rgb8", "bgr8"):
        raise InputError(f"image encoding {msg.encoding!r} is not a colour image: use rgb8 or bgr8")
    pixels = image_to_numpy(msg)
    return pixels[:, :, ::-1] if msg.encoding == "bgr8" else pixels


def depth_image_to_metres(msg: Image) -> np.ndarray:
    """A 16UC1 (mm, 0 = no data) or 32FC1 (m) depth Image as (H, W) float32 metres.

    Pixels without a measurement become NaN.
    """
    if msg.encoding in ("16UC1", "mono16"):
        depth_mm = image_to_numpy(msg)
        metres = depth_mm.astype(np.float32) * np.float32(1e-3)
        metres[depth_mm == 0] = np.nan
        return metres
    if msg.encoding == "32FC1":
        metres = image_to_numpy(msg).astype(np.float32)
        metres[~(metres > 0)] = np.nan
        return metres
    raise InputError(
        f"depth encoding {msg.encoding!r} is not supported: use 16UC1 (mm) or 32FC1 (m)"
    )


def numpy_to_image(pixels: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """An (H, W, C) / (H, W) array -> Image with ``encoding`` (dtype and channels must match)."""
    if encoding not in IMAGE_ENCODINGS:
        raise InputError(
            f"image encoding {encoding!r} is not supported: use one of {list(IMAGE_ENCODINGS)}"
        )
    dtype, channels = IMAGE_ENCODINGS[encoding]
    pixels = np.asarray(pixels)
    expected_ndim = 3 if channels > 1 else 2
    if (
        pixels.ndim != expected_ndim
        or (channels > 1 and pixels.shape[2] != channels)
        or pixels.shape[0] < 1
        or pixels.shape[1] < 1
    ):
        want = "(H, W, 3)" if channels > 1 else "(H, W)"
        raise InputError(f"{encoding} image must have shape {want}, got {pixels.shape}")
    if pixels.dtype != dtype:
        raise InputError(f"{encoding} image must have dtype {dtype}, got {pixels.dtype}")
    contiguous = np.ascontiguousarray(pixels, dtype=dtype.newbyteorder("<"))
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(pixels.shape[1] * channels * dtype.itemsize)
    msg.data = array.array("B", contiguous.tobytes())
    return msg


def rgb_to_image(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """(H, W, 3) uint8 RGB -> rgb8 Image."""
    return numpy_to_image(rgb, "rgb8", stamp, frame_id)


def depth_to_image(
    depth_m: np.ndarray, stamp: Time, frame_id: str, encoding: str = "16UC1"
) -> Image:
    """(H, W) depth in metres -> 16UC1 (mm, 0 = no data) or 32FC1 (m) Image.

    Non-finite or non-positive depths become 0 (16UC1) or NaN (32FC1); depths beyond 65.535 m
    saturate in 16UC1.
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise InputError(f"depth image must have shape (H, W), got {depth.shape}")
    valid = np.isfinite(depth) & (depth > 0)
    if encoding == "16UC1":
        mm = np.zeros(depth.shape, dtype=np.uint16)
        mm[valid] = np.clip(np.rint(depth[valid] * 1000.0), 1, 65535).astype(np.uint16)
        return numpy_to_image(mm, "16UC1", stamp, frame_id)
    if encoding == "32FC1":
        metres = np.where(valid, depth, np.float32(np.nan)).astype(np.float32)
        return numpy_to_image(metres, "32FC1", stamp, frame_id)
    raise InputError(f"depth encoding {encoding!r} is not supported: use 16UC1 (mm) or 32FC1 (m)")


def camera_info_from_intrinsics(intrinsics: CameraIntrinsics, stamp: Time) -> CameraInfo:
    """CameraInfo (K, P, the lens model and its coefficients, identity R) from the stack's
    validated pinhole model; ``stamp`` is the image's stamp."""
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    width, height, frame_id = intrinsics.width, intrinsics.height, intrinsics.frame_id
    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = str(frame_id)
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = intrinsics.distortion_model
    msg.d = [float(v) for v in intrinsics.distortion]
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


# -- joint states --------------------------------------------------------------------------
def joint_state_to_numpy(
    msg: JointState, names: Sequence[str], field: str = "position"
) -> np.ndarray:
    """``field`` values of ``names`` (in that order) from a JointState, as float64.

    Extra joints in the message are ignored. Raises InputError when a name is missing, when the
    field and name lists differ in length, or when a requested value is NaN/inf.
    """
    msg_names = list(msg.name)
    values = getattr(msg, field)
    if len(values) != len(msg_names):
        raise InputError(f"JointState has {len(msg_names)} names but {len(values)} {field} values")
    index = {name: i for i, name in enumerate(msg_names)}
    missing = [name for name in names if name not in index]
    if missing:
        raise InputError(f"JointState lacks joints {missing}; it has {msg_names}")
    all_values = np.asarray(values, dtype=np.float64)
    out = all_values[[index[name] for name in names]]
    if not np.all(np.isfinite(out)):
        bad = [name for name, v in zip(names, out, strict=True) if not math.isfinite(v)]
        raise InputError(f"JointState {field} is NaN/inf for joints {bad}")
    return out


def numpy_to_joint_state(
    names: Sequence[str],
    positions: np.ndarray,
    stamp: Time,
    velocities: np.ndarray | None = None,
    frame_id: str = "",
) -> JointState:
    """A JointState with ``positions`` (and optionally ``velocities``) for ``names``."""
    positions = np.asarray(positions, dtype=np.float64).ravel()
    if positions.shape != (len(names),):
        raise InputError(f"{len(names)} joint names but {positions.size} positions")
    msg = JointState()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.name = list(names)
    msg.position = array.array("d", positions.tobytes())
    if velocities is not None:
        velocities = np.asarray(velocities, dtype=np.float64).ravel()
        if velocities.shape != (len(names),):
            raise InputError(f"{len(names)} joint names but {velocities.size} velocities")
        msg.velocity = array.array("d", velocities.tobytes())
    return msg


# -- action chunks -------------------------------------------------------------------------
def action_chunk_to_msg(chunk: ActionChunk, stamp: Time) -> ActionChunkMsg:
    """core ActionChunk -> human_video_policy_msgs/ActionChunk stamped ``stamp``."""
    msg = ActionChunkMsg()
    msg.header.stamp = stamp
    msg.header.frame_id = chunk.frame_id
    msg.observation_stamp = seconds_to_stamp(chunk.observation_stamp)
    msg.action_space = chunk.action_space
    msg.names = list(chunk.names)
    msg.horizon = chunk.horizon
    msg.dims = chunk.dims
    msg.dt = float(chunk.dt)
    msg.data = array.array("f", np.ascontiguousarray(chunk.actions, dtype=np.float32).tobytes())
    return msg


def action_chunk_from_msg(msg: ActionChunkMsg) -> ActionChunk:
    """human_video_policy_msgs/ActionChunk -> validated core ActionChunk (InputError if bad)."""
    if len(msg.names) != msg.dims:
        raise InputError(f"ActionChunk message has dims={msg.dims} but {len(msg.names)} names")
    return ActionChunk.from_flat(
        np.frombuffer(msg.data, dtype=np.float32)
        if isinstance(msg.data, array.array)
        else np.asarray(msg.data, dtype=np.float32),
        horizon=int(msg.horizon),
        dims=int(msg.dims),
        dt=float(msg.dt),
        names=tuple(msg.names),
        action_space=msg.action_space,
        observation_stamp=stamp_to_seconds(msg.observation_stamp),
        frame_id=msg.header.frame_id,
    )


# -- poses ---------------------------------------------------------------------------------
def position_to_pose(
    position: np.ndarray,
    stamp: Time,
    frame_id: str,
    quaternion_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
) -> PoseStamped:
    """A PoseStamped at ``position`` (m) with orientation ``quaternion_xyzw`` (default identity)."""
    p = np.asarray(position, dtype=np.float64).ravel()
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InputError(f"position must be 3 finite values (m), got {p.tolist()}")
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in p)
    q = [float(v) for v in quaternion_xyzw]
    msg.pose.orientation.x, msg.pose.orientation.y = q[0], q[1]
    msg.pose.orientation.z, msg.pose.orientation.w = q[2], q[3]
    return msg


def pose_position(msg: PoseStamped) -> np.ndarray:
    """(3,) position (m) of a PoseStamped."""
    p = msg.pose.position
    return np.array([p.x, p.y, p.z], dtype=np.float64)


# -- hand keypoints ------------------------------------------------------------------------
_HANDEDNESS_LABELS = ("left", "right", "unknown")


@dataclass(frozen=True)
class ReceivedHand:
    """One hand of a HandKeypoints message, as arrays.

    ``keypoints_2d``: (21, 2) pixels. ``keypoints_3d``: (21, 3) metres in the message's frame,
    all-NaN when the tracker had no metric 3D estimate. ``has_3d``: every 3D value is finite.
    """

    handedness: str
    confidence: float
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    keypoint_confidence: np.ndarray

    @property
    def has_3d(self) -> bool:
        return bool(np.isfinite(self.keypoints_3d).all())


def hand_to_msg(
    handedness: str,
    confidence: float,
    keypoints_2d: np.ndarray,
    keypoints_3d: np.ndarray | None = None,
    keypoint_confidence: np.ndarray | None = None,
) -> HandMsg:
    """A Hand message; ``keypoints_3d=None`` fills NaN (no metric estimate)."""
    if handedness not in _HANDEDNESS_LABELS:
        raise InputError(f"handedness must be one of {_HANDEDNESS_LABELS}, got {handedness!r}")
    kp2 = np.asarray(keypoints_2d, dtype=np.float32)
    if kp2.shape != (21, 2) or not np.isfinite(kp2).all():
        raise InputError(f"keypoints_2d must be finite with shape (21, 2), got {kp2.shape}")
    kp3 = (
        np.full((21, 3), np.nan, np.float32)
        if keypoints_3d is None
        else np.asarray(keypoints_3d, dtype=np.float32)
    )
    if kp3.shape != (21, 3):
        raise InputError(f"keypoints_3d must have shape (21, 3), got {kp3.shape}")
    conf = (
        np.ones(21, np.float32)
        if keypoint_confidence is None
        else np.asarray(keypoint_confidence, dtype=np.float32)
    )
    if conf.shape != (21,):
        raise InputError(f"keypoint_confidence must have shape (21,), got {conf.shape}")
    msg = HandMsg()
    msg.handedness = handedness
    msg.confidence = float(confidence)
    msg.keypoints_2d = array.array("f", kp2.tobytes())
    msg.keypoints_3d = array.array("f", kp3.tobytes())
    msg.keypoint_confidence = array.array("f", conf.tobytes())
    return msg


def hand_keypoints_to_msg(
    hands: Sequence[HandMsg], stamp: Time, frame_id: str, width: int, height: int
) -> HandKeypointsMsg:
    """A HandKeypoints message (stamp = the source image's stamp)."""
    msg = HandKeypointsMsg()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.image_width, msg.image_height = int(width), int(height)
    msg.hands = list(hands)
    return msg


def hands_from_msg(msg: HandKeypointsMsg) -> list[ReceivedHand]:
    """Every hand of a HandKeypoints message; InputError on a malformed one."""
    out = []
    for i, hand in enumerate(msg.hands):
        if hand.handedness not in _HANDEDNESS_LABELS:
            raise InputError(
                f"hands[{i}].handedness must be one of {_HANDEDNESS_LABELS}, "
                f"got {hand.handedness!r}"
            )
        kp2 = np.asarray(hand.keypoints_2d, dtype=np.float64).reshape(21, 2)
        kp3 = np.asarray(hand.keypoints_3d, dtype=np.float64).reshape(21, 3)
        if not np.isfinite(kp2).all():
            raise InputError(f"hands[{i}].keypoints_2d contains NaN/inf")
        finite3 = np.isfinite(kp3)
        if finite3.any() and not finite3.all():
            raise InputError(
                f"hands[{i}].keypoints_3d is partly NaN/inf ({int((~finite3).sum())} values): "
                "either all 63 values are finite or all are NaN (no metric estimate)"
            )
        confidence = float(hand.confidence)
        if not (0.0 <= confidence <= 1.0):
            raise InputError(f"hands[{i}].confidence must be in [0, 1], got {confidence}")
        out.append(
            ReceivedHand(
                handedness=hand.handedness,
                confidence=confidence,
                keypoints_2d=kp2,
                keypoints_3d=kp3,
                keypoint_confidence=np.asarray(hand.keypoint_confidence, dtype=np.float64),
            )
        )
    return out


def sim_state_to_msg(state, stamp: Time) -> SimState:
    """A :class:`~human_video_policy.sim.scripted_expert_policy.SimSnapshot` as /sim/state."""
    msg = SimState()
    msg.header.stamp = stamp
    msg.task, msg.robot, msg.level = state.task, state.robot, state.level
    msg.episode_seed = int(state.episode_seed)
    msg.episode_time = float(state.episode_time)
    msg.qpos = _doubles(state.qpos)
    msg.qvel = _doubles(state.qvel)
    msg.mocap_pos = _doubles(state.mocap_pos)
    msg.mocap_quat = _doubles(state.mocap_quat)
    return msg


def _doubles(values) -> array.array:
    return array.array("d", np.asarray(values, dtype=np.float64).ravel().tobytes())


def sim_state_from_msg(msg: SimState):
    """/sim/state as a SimSnapshot (sizes and values are checked where it is restored)."""
    from human_video_policy.sim.scripted_expert_policy import SimSnapshot

    return SimSnapshot(
        msg.task, msg.robot, msg.level, int(msg.episode_seed), float(msg.episode_time),
        np.asarray(msg.qpos, dtype=np.float64), np.asarray(msg.qvel, dtype=np.float64),
        np.asarray(msg.mocap_pos, dtype=np.float64), np.asarray(msg.mocap_quat, dtype=np.float64),
    )  # fmt: skip
