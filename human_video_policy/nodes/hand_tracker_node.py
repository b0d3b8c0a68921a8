"""Hand tracking on a camera stream: colour (+ aligned depth) -> /hand/keypoints.

Subscribes (sensor-data QoS, realsense-ros names; remap for other drivers):

- ``/camera/camera/color/image_raw`` (rgb8 / bgr8),
- ``/camera/camera/color/camera_info`` (intrinsics; until one arrives, or when it does not
  match the image size, they are estimated from ``assumed_hfov_deg``),
- ``/camera/camera/aligned_depth_to_color/image_raw`` (16UC1 mm or 32FC1 m) when
  ``use_depth`` is true.

Publishes ``human_video_policy_msgs/HandKeypoints`` on ``/hand/keypoints`` (reliable): the
image's header, 2D keypoints in its pixels, 3D keypoints in its optical frame from
:mod:`human_video_policy.hands.lifting` (RGB-D when a depth image within
``max_depth_offset_s`` of the colour image exists, else RGB only; NaN when lifting is off or
impossible).

Frames are never queued: the image callback keeps only the newest frame and the main thread
processes it, so a slow tracker skips frames (counted as ``frames_skipped``) instead of falling
behind; frames older than ``max_image_age_s`` when their turn comes are dropped as stale.
/diagnostics reports latency (image stamp -> publish), processing time and the counters.

A bad parameter or a missing / broken ONNX model ends the node at start with exit code 2.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
from human_video_policy_msgs.msg import Hand, HandKeypoints
from sensor_msgs.msg import CameraInfo, Image

from human_video_policy.camera.pinhole import CameraIntrinsics
from human_video_policy.errors import ConfigError, HvpError, InputError
from human_video_policy.hands.lifting import LiftedHand, lift_rgb, lift_rgbd
from human_video_policy.hands.tracker import HandDetection, HandTracker
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import (
    depth_image_to_metres,
    image_to_rgb,
    stamp_to_seconds,
)
from human_video_policy.nodes.qos import RELIABLE, SENSOR_DATA
from human_video_policy.runtime.latency import LatencyStats
from human_video_policy.validation import check_choice, check_int_range, check_range

BACKENDS = ("mediapipe", "onnx")
IMAGE_TOPIC = "/camera/camera/color/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera/color/camera_info"
DEPTH_TOPIC = "/camera/camera/aligned_depth_to_color/image_raw"
KEYPOINTS_TOPIC = "/hand/keypoints"


def make_tracker(backend: str, options: dict[str, Any]) -> HandTracker:
    """The HandTracker for ``backend`` with the node's options (ConfigError / ModelLoadError)."""
    if backend == "onnx":
        from human_video_policy.hands.onnx_tracker import OnnxHandTracker, OnnxHandTrackerConfig

        if not options["model_path"]:
            raise ConfigError("parameter model_path='' is invalid: backend 'onnx' needs a model")
        return OnnxHandTracker(
            OnnxHandTrackerConfig(
                model_path=options["model_path"],
                max_num_hands=options["max_num_hands"],
                min_confidence=options["min_detection_confidence"],
                intra_op_threads=options["intra_op_threads"],
            )
        )
    from human_video_policy.hands.tracker import MediaPipeHandsConfig, MediaPipeHandTracker

    return MediaPipeHandTracker(
        MediaPipeHandsConfig(
            max_num_hands=options["max_num_hands"],
            min_detection_confidence=options["min_detection_confidence"],
            min_tracking_confidence=options["min_tracking_confidence"],
            model_complexity=options["model_complexity"],
            static_image_mode=options["static_image_mode"],
            image_is_mirrored=options["image_is_mirrored"],
        )
    )


def hand_message(detection: HandDetection, lifted: LiftedHand | None) -> Hand:
    """One Hand message (3D NaN when there is no lifted hand)."""
    msg = Hand()
    msg.handedness = detection.handedness
    msg.confidence = float(detection.confidence)
    msg.keypoints_2d = detection.keypoints_px.astype(np.float32).ravel()
    points = lifted.keypoints_cam if lifted is not None else np.full((21, 3), np.nan)
    msg.keypoints_3d = points.astype(np.float32).ravel()
    msg.keypoint_confidence = np.ones(21, dtype=np.float32)
    return msg


class HandTrackerNode(HvpNode):
    """Tracks hands in the newest colour image and publishes them; see the module docstring."""

    default_name = "hand_tracker"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        backend = self.param(
            "backend",
            "mediapipe",
            f"Hand keypoint model: one of {list(BACKENDS)} (onnx needs model_path).",
            lambda n, v: check_choice(n, v, BACKENDS),
        )
        options = {
            "model_path": self.param(
                "model_path", "", "ONNX hand keypoint model (hands/onnx_tracker.py contract)."
            ),
            "max_num_hands": self.param(
                "max_num_hands",
                2,
                "Most hands reported per image.",
                lambda n, v: check_int_range(n, v, 1, 8),
            ),
            "min_detection_confidence": self.param(
                "min_detection_confidence",
                0.5,
                "Hands scoring below this are not reported (0..1).",
                lambda n, v: check_range(n, v, 0.0, 1.0),
            ),
            "min_tracking_confidence": self.param(
                "min_tracking_confidence",
                0.5,
                "MediaPipe: below this the hand is re-detected instead of tracked (0..1).",
                lambda n, v: check_range(n, v, 0.0, 1.0),
            ),
            "model_complexity": self.param(
                "model_complexity",
                1,
                "MediaPipe landmark model: 0 lite (faster), 1 full.",
                lambda n, v: check_int_range(n, v, 0, 1),
            ),
            "static_image_mode": self.param(
                "static_image_mode",
                False,
                "MediaPipe: detect in every image instead of tracking between images.",
            ),
            "image_is_mirrored": self.param(
                "image_is_mirrored",
                False,
                "The images are selfie views (front camera): handedness labels as MediaPipe's.",
            ),
            "intra_op_threads": self.param(
                "intra_op_threads",
                1,
                "ONNX backend: ONNX Runtime threads per inference.",
                lambda n, v: check_int_range(n, v, 1, 64),
            ),
        }
        self.use_depth = self.param(
            "use_depth", False, f"Lift with the aligned depth image on {DEPTH_TOPIC}."
        )
        self.lift_3d = self.param(
            "lift_3d", True, "Publish metric 3D keypoints (false: keypoints_3d is NaN)."
        )
        self.assumed_hfov_deg = self.param(
            "assumed_hfov_deg",
            60.0,
            "Horizontal field of view (deg) assumed while no usable camera_info has arrived.",
            lambda n, v: check_range(n, v, 5.0, 160.0),
        )
        self.max_depth_offset_s = self.param(
            "max_depth_offset_s",
            0.05,
            "Largest |depth stamp - colour stamp| (s) for the depth image to be used.",
            lambda n, v: check_range(n, v, 0.0, 1.0),
        )
        self.max_image_age_s = self.param(
            "max_image_age_s",
            1.0,
            "Drop a frame older than this (s, node clock) when its turn comes; 0 = never.",
            lambda n, v: check_range(n, v, 0.0, 60.0),
        )
        self.backend = backend
        self.tracker = make_tracker(backend, options)

        self._lock = threading.Condition()
        self._newest: tuple[Image, np.ndarray] | None = None
        self._depth: tuple[float, np.ndarray] | None = None
        self._camera_info: CameraInfo | None = None
        self._intrinsics_cache: tuple[tuple, CameraIntrinsics | None] | None = None

        self._pub = self.create_publisher(HandKeypoints, KEYPOINTS_TOPIC, RELIABLE)
        self.create_subscription(Image, IMAGE_TOPIC, self._on_image, SENSOR_DATA)
        self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self._on_camera_info, SENSOR_DATA)
        if self.use_depth:
            self.create_subscription(Image, DEPTH_TOPIC, self._on_depth, SENSOR_DATA)

        self.latency = LatencyStats()
        self.processing = LatencyStats()
        self._rate = RateMeter()
        self.counters = {
            "frames_received": 0,
            "frames_processed": 0,
            "frames_skipped": 0,
            "frames_stale": 0,
            "invalid_images": 0,
            "invalid_depth": 0,
            "invalid_camera_info": 0,
            "hands_published": 0,
            "lift_rgb": 0,
            "lift_rgbd": 0,
            "lift_rgbd_fallback_rgb": 0,
            "lift_failed": 0,
        }
        self.intrinsics_source = "none yet"
        self._last_error = ""
        self.enable_diagnostics()
        self.get_logger().info(
            f"hand tracker ({backend}) on {self.topic(IMAGE_TOPIC)}"
            + (f" + {self.topic(DEPTH_TOPIC)}" if self.use_depth else "")
            + f" -> {self.topic(KEYPOINTS_TOPIC)}"
        )

    # -- inputs (spin thread) --------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        try:
            rgb = image_to_rgb(msg)
        except InputError as exc:
            self.counters["invalid_images"] += 1
            self._last_error = f"invalid image: {exc}"
            self.get_logger().warning(f"ignoring image: {exc}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self.counters["frames_received"] += 1
            if self._newest is not None:
                self.counters["frames_skipped"] += 1  # never processed: a newer one came
            self._newest = (msg, rgb)
            self._lock.notify()

    def _on_depth(self, msg: Image) -> None:
        try:
            depth = depth_image_to_metres(msg)
        except InputError as exc:
            self.counters["invalid_depth"] += 1
            self.get_logger().warning(f"ignoring depth: {exc}", throttle_duration_sec=2.0)
            return
        with self._lock:
            self._depth = (stamp_to_seconds(msg.header.stamp), depth)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._camera_info = msg

    # -- processing (main thread) ----------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._lock:
                if self._newest is None:
                    self._lock.wait(timeout=0.05)
                frame, self._newest = self._newest, None
                depth, info = self._depth, self._camera_info
            if frame is not None:
                self.process(frame[0], frame[1], depth, info)

    def intrinsics_for(self, width: int, height: int, info: CameraInfo | None) -> CameraIntrinsics:
        """The camera_info's intrinsics if they fit the image, else the assumed-FOV estimate."""
        key = (width, height, None if info is None else (tuple(info.k), info.width, info.height))
        if self._intrinsics_cache is not None and self._intrinsics_cache[0] == key:
            return self._intrinsics_cache[1]
        K = None
        if info is not None:
            try:
                if (info.width, info.height) != (width, height):
                    raise ConfigError(
                        f"camera_info is for {info.width}x{info.height}, the image is "
                        f"{width}x{height}"
                    )
                K = CameraIntrinsics.from_matrix(info.k, width, height, info.header.frame_id)
                self.intrinsics_source = "camera_info"
            except ConfigError as exc:
                self.counters["invalid_camera_info"] += 1
                self.get_logger().warning(
                    f"ignoring camera_info ({exc}); assuming hfov {self.assumed_hfov_deg:g} deg",
                    throttle_duration_sec=5.0,
                )
        if K is None:
            K = CameraIntrinsics.from_fov(width, height, self.assumed_hfov_deg)
            self.intrinsics_source = f"assumed hfov {self.assumed_hfov_deg:g} deg"
        self._intrinsics_cache = (key, K)
        return K

    def _lift(
        self, det: HandDetection, K: CameraIntrinsics, depth: np.ndarray | None
    ) -> LiftedHand | None:
        if depth is not None and depth.shape != (K.height, K.width):
            self.counters["invalid_depth"] += 1
            self._last_error = (
                f"depth image {depth.shape[1]}x{depth.shape[0]} is not aligned to the "
                f"{K.width}x{K.height} colour image: lifting from RGB only"
            )
            depth = None
        try:
            lifted = lift_rgb(det, K) if depth is None else lift_rgbd(det, depth, K)
        except InputError as exc:
            self.counters["lift_failed"] += 1
            self._last_error = f"lifting failed: {exc}"
            return None
        self.counters[f"lift_{lifted.method}"] += 1
        return lifted

    def process(
        self,
        msg: Image,
        rgb: np.ndarray,
        depth: tuple[float, np.ndarray] | None,
        info: CameraInfo | None,
    ) -> None:
        stamp = stamp_to_seconds(msg.header.stamp)
        if self.max_image_age_s > 0 and self.now_s() - stamp > self.max_image_age_s:
            self.counters["frames_stale"] += 1
            return
        start = time.perf_counter()
        try:
            detections = self.tracker.track(rgb)
        except HvpError as exc:
            self.counters["invalid_images"] += 1
            self._last_error = f"tracker refused the image: {exc}"
            self.get_logger().error(self._last_error, throttle_duration_sec=2.0)
            return
        height, width = rgb.shape[:2]
        depth_m = None
        if (
            self.use_depth
            and depth is not None
            and abs(depth[0] - stamp) <= self.max_depth_offset_s
        ):
            depth_m = depth[1]
        hands = []
        if self.lift_3d:
            K = self.intrinsics_for(width, height, info)
            hands = [hand_message(d, self._lift(d, K, depth_m)) for d in detections]
        else:
            hands = [hand_message(d, None) for d in detections]
        out = HandKeypoints()
        out.header = msg.header
        out.image_width, out.image_height = width, height
        out.hands = hands
        self.processing.add((time.perf_counter() - start) * 1e3)
        self._pub.publish(out)
        self.latency.add((self.now_s() - stamp) * 1e3)
        self._rate.tick()
        self.counters["frames_processed"] += 1
        self.counters["hands_published"] += len(hands)

    def close(self) -> None:
        self.tracker.close()

    # -- reports ---------------------------------------------------------------------------
    def diagnostics_report(self) -> DiagnosticsReport:
        values: dict[str, Any] = {
            "backend": self.backend,
            "rate_hz_wall": self._rate.rate_hz,
            "latency_ms_last": self.latency.last,
            "latency_ms_median": self.latency.median,
            "latency_ms_p99": self.latency.p99,
            "processing_ms_median": self.processing.median,
            "processing_ms_p99": self.processing.p99,
            "intrinsics": self.intrinsics_source,
            **self.counters,
        }
        if self.counters["frames_processed"] == 0:
            return DiagnosticsReport(Level.WARN, f"no frame processed yet on {IMAGE_TOPIC}", values)
        if self._last_error:
            return DiagnosticsReport(Level.WARN, self._last_error, values)
        return DiagnosticsReport(Level.OK, "tracking", values)


def main(args: list[str] | None = None) -> int:
    from human_video_policy.hands.native_logs import filtered_native_stderr

    with filtered_native_stderr():  # MediaPipe's harmless start-up noise (hands/native_logs.py)
        return run_node(HandTrackerNode, args)


if __name__ == "__main__":
    sys.exit(main())
