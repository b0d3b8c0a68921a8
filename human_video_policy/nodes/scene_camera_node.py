"""A camera that sees the RM75 + XHand where its joint states say it is: a kinematic render.

The joint controllers own the physics of their joints (each runs its own MuJoCo model or a real
robot); this node owns only a picture of them. It keeps the newest /arm/joint_states
(joint1..joint7) and /hand/joint_states (the 12 XHand joints), puts them into the project's
RM75 + XHand scene (``mjcf/rm75_xhand_scene.xml``, :class:`sim.rm75_world.RM75World`) as joint
positions (no physics: ``qpos`` set, ``mj_forward``), renders the scene's head camera and
publishes, at ``rate_hz`` on the node clock, every message of one frame with the same stamp,
under ``/<camera_namespace>/<camera_name>`` like realsense-ros (sensor-data QoS):

- ``color/image_raw`` (rgb8) and ``color/camera_info`` (pinhole, no distortion);
- ``aligned_depth_to_color/image_raw`` (16UC1, mm, 0 = nothing within ``max_depth_m``) and
  ``aligned_depth_to_color/camera_info`` (with ``publish_depth``);
- ``extrinsic`` (geometry_msgs/PoseStamped, latched): the pose of the camera's optical frame
  (``camera_frame_id``: z forward, x right, y down) in ``base_frame``, i.e. the transform
  base <- camera that ik_node's ``camera_extrinsic`` expects. tf2_ros is not installable from
  PyPI (docs/ARCHITECTURE.md), so the static transform travels as a latched pose.

Joints it has not heard of yet stay at the robot's home pose (arm ready, hand open). Joint
states older than ``max_joint_state_age_s`` (steady clock) do not stop the images: the node
keeps rendering the last known state and reports the stale (or missing) stream on /diagnostics
(WARN). A joint state with NaN/inf or with names and positions of different lengths is
ignored and counted. With the real robots the same node shows the measured state (or, remapped
onto the command topics, what is being commanded) from a fixed viewpoint.

Rendering is offscreen (MUJOCO_GL=egl unless set) in the main thread, which owns the GL context;
callbacks only store the newest positions.
"""

from __future__ import annotations

import os

if "MUJOCO_GL" not in os.environ:
    os.environ["MUJOCO_GL"] = "egl"  # headless rendering; must be set before mujoco is imported

import math
import sys
import threading
import time
from typing import Any

import mujoco
import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image, JointState

from human_video_policy.errors import ConfigError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import (
    camera_info_from_intrinsics,
    depth_to_image,
    position_to_pose,
    rgb_to_image,
)
from human_video_policy.nodes.qos import LATCHED, RELIABLE, SENSOR_DATA
from human_video_policy.robots.rm75 import BASE_FRAME, RM75_ARM_JOINTS, RM75_XHAND_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS
from human_video_policy.validation import check_int_range, check_range

# Where the target cube goes when target_seed is -1: far below the table, out of every view.
_HIDDEN_TARGET = (0.0, 0.0, -100.0)


def _check_name(name: str, value: str) -> str:
    if not value or not all(c.isalnum() or c == "_" for c in value) or value[0].isdigit():
        raise ConfigError(
            f"{name}={value!r} is invalid: must be a ROS name part (letters, digits, _; not "
            "starting with a digit)"
        )
    return value


def _check_frame(name: str, value: str) -> str:
    if not value or " " in value:
        raise ConfigError(f"{name}={value!r} is invalid: must be a frame name without spaces")
    return value


def quaternion_xyzw(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w), w >= 0, of a 3x3 rotation matrix (MuJoCo's conversion)."""
    wxyz = np.zeros(4)
    mujoco.mju_mat2Quat(wxyz, np.ascontiguousarray(rotation, dtype=np.float64).ravel())
    if wxyz[0] < 0:
        wxyz = -wxyz
    return float(wxyz[1]), float(wxyz[2]), float(wxyz[3]), float(wxyz[0])


class _JointStream:
    """The newest positions of one joint-state topic, and how fresh they are (thread-safe)."""

    def __init__(self, topic: str, names: tuple[str, ...]) -> None:
        self.topic = topic
        self.names = names
        self._lock = threading.Lock()
        self._positions: dict[str, float] = {}
        self.received_at = -math.inf  # steady clock
        self.messages = 0
        self.invalid = 0
        self.last_error = ""

    def update(self, msg: JointState) -> str:
        """Store the known joints of ``msg``; returns an error text (and counts it) if bad."""
        if len(msg.position) != len(msg.name):
            error = f"{len(msg.name)} names but {len(msg.position)} positions"
        else:
            known = {
                n: float(p) for n, p in zip(msg.name, msg.position, strict=True) if n in self.names
            }
            bad = [n for n, p in known.items() if not math.isfinite(p)]
            if not known:
                error = f"none of the joints {list(self.names)} (got {list(msg.name)})"
            elif bad:
                error = f"NaN/inf positions for {bad}"
            else:
                with self._lock:
                    self._positions.update(known)
                    self.received_at = time.monotonic()
                    self.messages += 1
                return ""
        with self._lock:
            self.invalid += 1
            self.last_error = error
        return error

    def positions(self) -> dict[str, float]:
        with self._lock:
            return dict(self._positions)

    def age_s(self) -> float:
        with self._lock:
            return time.monotonic() - self.received_at


class SceneCameraNode(HvpNode):
    """Renders the RM75 + XHand scene's camera from joint states; see the module docstring."""

    default_name = "scene_camera"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        namespace = self.param(
            "camera_namespace",
            "camera",
            "First part of the topic prefix /<camera_namespace>/<camera_name> (realsense-ros).",
            _check_name,
        )
        camera_name = self.param(
            "camera_name",
            "camera",
            "Second part of the topic prefix /<camera_namespace>/<camera_name>.",
            _check_name,
        )
        self.rate_hz = self.param(
            "rate_hz",
            15.0,
            "Frames (colour, depth, camera_info) per second of the node clock.",
            lambda n, v: check_range(n, v, 1.0, 60.0),
        )
        width = self.param(
            "image_width",
            640,
            "Rendered image width (pixels).",
            lambda n, v: check_int_range(n, v, 16, 1280),
        )
        height = self.param(
            "image_height",
            480,
            "Rendered image height (pixels).",
            lambda n, v: check_int_range(n, v, 16, 960),
        )
        mjcf_camera = self.param(
            "mjcf_camera",
            "head_camera",
            "Camera of the MJCF scene the images come from.",
            _check_frame,
        )
        self.camera_frame_id = self.param(
            "camera_frame_id",
            "head_camera_optical_frame",
            "frame_id of the images and camera_info: the camera's optical frame (ik_node's "
            "camera_frame).",
            _check_frame,
        )
        self.base_frame = self.param(
            "base_frame",
            BASE_FRAME,
            "frame_id of the extrinsic pose: the arm's base frame.",
            _check_frame,
        )
        self.publish_depth = self.param(
            "publish_depth", True, "Render and publish the aligned depth image (16UC1, mm)."
        )
        max_depth_m = self.param(
            "max_depth_m",
            10.0,
            "Depth beyond this (m) is published as 0 = no return, like a RealSense.",
            lambda n, v: check_range(n, v, 0.1, 65.0),
        )
        self.max_state_age_s = self.param(
            "max_joint_state_age_s",
            0.5,
            "Report the joint states as stale on /diagnostics when the newest is older than "
            "this (s, steady clock); the node keeps rendering the last known state.",
            lambda n, v: check_range(n, v, 0.01, 60.0),
        )
        target_seed = self.param(
            "target_seed",
            -1,
            "Place the scene's red target cube on the table as RM75World.reset(seed) does; "
            "-1 = no cube (e.g. when showing the real robot).",
            lambda n, v: check_int_range(n, v, -1),
        )

        from human_video_policy.sim.rm75_world import RM75World, RM75WorldConfig

        try:
            config = RM75WorldConfig(
                image_width=width,
                image_height=height,
                camera_name=mjcf_camera,
                camera_frame_id=self.camera_frame_id,
                max_depth_m=max_depth_m,
            )
            self.world = RM75World(config)
        except ConfigError as exc:
            raise ConfigError(f"parameter mjcf_camera={mjcf_camera!r}: {exc}") from None
        self.world.reset(max(target_seed, 0))
        model = self.world.model
        if target_seed < 0:
            target = model.body("target")
            self.world.data.mocap_pos[int(model.body_mocapid[target.id])] = _HIDDEN_TARGET
        self._home = self.world.joint_positions()
        self.intrinsics = self.world.camera_intrinsics()
        mujoco.mj_forward(model, self.world.data)
        self.extrinsic = self.world.camera_pose()

        self.arm = _JointStream("/arm/joint_states", RM75_ARM_JOINTS)
        self.hand = _JointStream("/hand/joint_states", XHAND_JOINTS)
        for stream in (self.arm, self.hand):
            self.create_subscription(
                JointState, stream.topic, lambda msg, s=stream: self._on_state(s, msg), RELIABLE
            )

        prefix = f"/{namespace}/{camera_name}"
        self._color_pub = self.create_publisher(Image, f"{prefix}/color/image_raw", SENSOR_DATA)
        self._color_info_pub = self.create_publisher(
            CameraInfo, f"{prefix}/color/camera_info", SENSOR_DATA
        )
        if self.publish_depth:
            self._depth_pub = self.create_publisher(
                Image, f"{prefix}/aligned_depth_to_color/image_raw", SENSOR_DATA
            )
            self._depth_info_pub = self.create_publisher(
                CameraInfo, f"{prefix}/aligned_depth_to_color/camera_info", SENSOR_DATA
            )
        self._extrinsic_pub = self.create_publisher(PoseStamped, f"{prefix}/extrinsic", LATCHED)
        self._extrinsic_pub.publish(
            position_to_pose(
                self.extrinsic[:3, 3],
                self.now_msg(),
                self.base_frame,
                quaternion_xyzw(self.extrinsic[:3, :3]),
            )
        )
        self.frames = 0
        self.late_frames = 0
        self.render_ms = math.nan
        self._frame_rate = RateMeter()
        self.enable_diagnostics()
        self.get_logger().info(
            f"scene camera {mjcf_camera!r} {width}x{height} at {self.rate_hz:g} Hz on "
            f"{self._color_pub.topic_name}, ..., from {self.topic(self.arm.topic)} and "
            f"{self.topic(self.hand.topic)}"
        )

    # -- callbacks (spin thread) -----------------------------------------------------------
    def _on_state(self, stream: _JointStream, msg: JointState) -> None:
        error = stream.update(msg)
        if error:
            self.get_logger().warning(
                f"ignoring {stream.topic}: {error}", throttle_duration_sec=2.0
            )

    # -- render loop (main thread) ---------------------------------------------------------
    def scene_positions(self) -> np.ndarray:
        """(19,) positions in RM75_XHAND_JOINTS order: the newest known, else home."""
        known = {**self.arm.positions(), **self.hand.positions()}
        return np.array(
            [known.get(n, float(h)) for n, h in zip(RM75_XHAND_JOINTS, self._home, strict=True)]
        )

    def run(self, stop: threading.Event) -> None:
        period = 1.0 / self.rate_hz
        next_frame = time.monotonic()
        while not stop.is_set():
            self._render_and_publish()
            next_frame += period
            delay = next_frame - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            elif -delay > period:  # fell more than a frame behind: no burst of frames
                self.late_frames += 1
                next_frame = time.monotonic()

    def _render_and_publish(self) -> None:
        world = self.world
        started = time.perf_counter()
        world.set_joint_positions(self.scene_positions())
        stamp = self.now_msg()
        frame = self.camera_frame_id
        info = camera_info_from_intrinsics(self.intrinsics, stamp)
        self._color_pub.publish(rgb_to_image(world.render_rgb(), stamp, frame))
        self._color_info_pub.publish(info)
        if self.publish_depth:
            self._depth_pub.publish(depth_to_image(world.render_depth(), stamp, frame))
            self._depth_info_pub.publish(info)
        self.render_ms = 1e3 * (time.perf_counter() - started)
        self.frames += 1
        self._frame_rate.tick()

    # -- reports ---------------------------------------------------------------------------
    def diagnostics_report(self) -> DiagnosticsReport:
        values: dict[str, Any] = {
            "frames": self.frames,
            "frame_rate_hz_wall": self._frame_rate.rate_hz,
            "render_ms_last": self.render_ms,
            "late_frames": self.late_frames,
        }
        problems = []
        for label, stream in (("arm", self.arm), ("hand", self.hand)):
            age = stream.age_s()
            values[f"{label}_state_age_s"] = age if math.isfinite(age) else "never"
            values[f"{label}_state_messages"] = stream.messages
            values[f"{label}_invalid_messages"] = stream.invalid
            values[f"{label}_last_error"] = stream.last_error
            if not math.isfinite(age):
                problems.append(f"no {stream.topic} yet (showing home)")
            elif age > self.max_state_age_s:
                problems.append(f"{stream.topic} stale ({age:.1f} s old)")
        if problems:
            return DiagnosticsReport(Level.WARN, "; ".join(problems), values)
        return DiagnosticsReport(Level.OK, "rendering", values)

    def close(self) -> None:
        self.world.close()


def main(args: list[str] | None = None) -> int:
    return run_node(SceneCameraNode, args)


if __name__ == "__main__":
    sys.exit(main())
