"""The camera: a RealSense device, a RealSense recording or a video file, on realsense-ros topics.

``source`` picks the frame source (``human_video_policy.camera``):

- ``realsense``: a live device (``serial_no``, ``width``, ``height``, ``fps``, ``enable_depth``,
  ``align_depth``); a lost device is retried with backoff and counted on /diagnostics;
- ``playback``: a recording of one (``bag_path``, ``loop``);
- ``video``: a video file as a colour camera at its frame rate or ``rate_hz`` (``video_path``,
  ``loop``, intrinsics ``fx, fy, cx, cy`` or ``horizontal_fov_deg``).

Publishes under ``/<camera_namespace>/<camera_name>`` (realsense-ros defaults: /camera/camera),
sensor-data QoS, every message of one capture with the same stamp (the capture time mapped to
the host clock, see docs/camera.md):

- ``color/image_raw`` (rgb8) and ``color/camera_info``, frame ``camera_color_optical_frame``;
- ``depth/image_rect_raw`` (16UC1, mm) and ``depth/camera_info``, frame
  ``camera_depth_optical_frame``;
- ``aligned_depth_to_color/image_raw`` (16UC1, mm, on the colour grid) and
  ``aligned_depth_to_color/camera_info`` (the colour intrinsics), frame
  ``camera_color_optical_frame``.

/diagnostics carries the frame rate, capture-to-publish latency, dropped frames, reconnects and
the device. A bad parameter, a missing device (the message lists the connected serials) or an
unreadable file ends the process with exit code 2 and one line; the end of a non-looping
recording or video ends it with 0.
"""

from __future__ import annotations

import statistics
import sys
import threading
from collections import deque
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from sensor_msgs.msg import CameraInfo, Image

from human_video_policy.camera import CameraFrame
from human_video_policy.errors import ConfigError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import (
    camera_info_from_intrinsics,
    numpy_to_image,
    rgb_to_image,
    seconds_to_stamp,
)
from human_video_policy.nodes.qos import SENSOR_DATA
from human_video_policy.validation import check_choice, check_int_range, check_range

SOURCES = ("realsense", "playback", "video")


def _check_name(name: str, value: str) -> str:
    if not value or not all(c.isalnum() or c == "_" for c in value) or value[0].isdigit():
        raise ConfigError(
            f"{name}={value!r} is invalid: must be a ROS name part (letters, digits, _; not "
            "starting with a digit)"
        )
    return value


class CameraNode(HvpNode):
    """Publishes one frame source; see the module docstring.

    ``source``: an already built frame source (tests inject a RealSenseSource over a
    software device this way); None = build it from the parameters.
    """

    default_name = "camera"

    def __init__(self, source: Any = None, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        kind = self.param(
            "source",
            "realsense",
            f"Frame source: one of {list(SOURCES)}.",
            lambda n, v: check_choice(n, v, SOURCES),
        )
        namespace = self.param(
            "camera_namespace",
            "camera",
            "First part of the topic names (realsense-ros).",
            _check_name,
        )
        name = self.param(
            "camera_name", "camera", "Second part of the topic names (realsense-ros).", _check_name
        )
        serial_no = self._serial_param()
        width = self.param(
            "width",
            640,
            "realsense: colour and depth width (pixels).",
            lambda n, v: check_int_range(n, v, 0, 4096),
        )
        height = self.param(
            "height",
            480,
            "realsense: colour and depth height (pixels).",
            lambda n, v: check_int_range(n, v, 0, 4096),
        )
        fps = self.param(
            "fps",
            30,
            "realsense: frames per second (a mode the device offers).",
            lambda n, v: check_int_range(n, v, 1, 300),
        )
        enable_depth = self.param("enable_depth", True, "realsense/playback: stream depth.")
        align_depth = self.param(
            "align_depth",
            True,
            "realsense/playback: also publish depth re-projected onto the colour grid.",
        )
        bag_path = self.param(
            "bag_path", "", "playback: the recording (.db3 for librealsense >= 2.56, else .bag)."
        )
        video_path = self.param("video_path", "", "video: the video file.")
        loop = self.param("loop", False, "playback/video: start again at the end.")
        rate_hz = self.param(
            "rate_hz",
            0.0,
            "video: frames per second; 0 = the file's own rate.",
            lambda n, v: check_range(n, v, 0.0, 1000.0),
        )
        intr = {
            k: self.param(k, 0.0, f"video: intrinsics {k} (pixels); all 0 = estimate from FOV.")
            for k in ("fx", "fy", "cx", "cy")
        }
        hfov = self.param(
            "horizontal_fov_deg",
            69.0,
            "video: horizontal field of view for the estimate (deg).",
            lambda n, v: check_range(n, v, 1.0, 179.0),
        )
        frame_timeout_s = self.param(
            "frame_timeout_s",
            2.0,
            "realsense: no frame for this long = device lost (s).",
            lambda n, v: check_range(n, v, 0.05, 60.0),
        )
        reconnect_max_s = self.param(
            "reconnect_max_s",
            5.0,
            "realsense: largest wait between reconnect attempts (s).",
            lambda n, v: check_range(n, v, 0.5, 600.0),
        )

        if source is None:
            source = self._build_source(
                kind,
                serial_no,
                width,
                height,
                fps,
                enable_depth,
                align_depth,
                bag_path,
                video_path,
                loop,
                rate_hz,
                intr,
                hfov,
                frame_timeout_s,
                reconnect_max_s,
            )
        self.source = source
        self.kind = kind
        if not self.source.stats.connected:
            self.source.start()

        prefix = f"/{namespace}/{name}"
        self._color_pub = self.create_publisher(Image, f"{prefix}/color/image_raw", SENSOR_DATA)
        self._color_info_pub = self.create_publisher(
            CameraInfo, f"{prefix}/color/camera_info", SENSOR_DATA
        )
        self._depth_pub = self._depth_info_pub = None
        self._aligned_pub = self._aligned_info_pub = None
        if self.source.depth_intrinsics is not None:
            self._depth_pub = self.create_publisher(
                Image, f"{prefix}/depth/image_rect_raw", SENSOR_DATA
            )
            self._depth_info_pub = self.create_publisher(
                CameraInfo, f"{prefix}/depth/camera_info", SENSOR_DATA
            )
            self._aligned_pub = self.create_publisher(
                Image, f"{prefix}/aligned_depth_to_color/image_raw", SENSOR_DATA
            )
            self._aligned_info_pub = self.create_publisher(
                CameraInfo, f"{prefix}/aligned_depth_to_color/camera_info", SENSOR_DATA
            )
        self._rate = RateMeter()
        self._latencies_ms: deque[float] = deque(maxlen=100)
        self._domain = ""
        self.published = 0
        self.enable_diagnostics(hardware_id=getattr(self.source, "serial_no", "") or kind)
        intr0 = self.source.color_intrinsics
        self.get_logger().info(
            f"camera ready: {kind} {getattr(self.source, 'device_name', '')} "
            f"{getattr(self.source, 'serial_no', '')} {intr0.width}x{intr0.height}, "
            f"depth {'on' if self._depth_pub else 'off'}, topics {self._color_pub.topic_name}, "
            f"{self._color_info_pub.topic_name}"
            + (f", {self._aligned_pub.topic_name}, ..." if self._aligned_pub else "")
        )

    def _serial_param(self) -> str:
        """``serial_no`` as text. Digits-only serials arrive as integers from the command line
        and YAML; like realsense-ros, a leading ``_`` keeps them text (and keeps leading zeros)."""
        descriptor = ParameterDescriptor(
            description="realsense: serial number of the device (prefix digits-only serials "
            "with _ to keep leading zeros); empty = the first device.",
            read_only=True,
            dynamic_typing=True,
        )
        value = self.declare_parameter("serial_no", "", descriptor).value
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigError(f"parameter serial_no={value!r} is invalid: must be a serial number")
        text = str(value).strip()
        return text[1:] if text.startswith("_") else text

    def _build_source(
        self,
        kind: str,
        serial_no: str,
        width: int,
        height: int,
        fps: int,
        enable_depth: bool,
        align_depth: bool,
        bag_path: str,
        video_path: str,
        loop: bool,
        rate_hz: float,
        intr: dict[str, float],
        hfov: float,
        frame_timeout_s: float,
        reconnect_max_s: float,
    ) -> Any:
        if kind == "video":
            from human_video_policy.camera.video_source import VideoCameraSource, VideoSourceConfig

            return VideoCameraSource(
                VideoSourceConfig(
                    path=video_path, rate_hz=rate_hz, loop=loop, horizontal_fov_deg=hfov, **intr
                )
            )
        from human_video_policy.camera.realsense_source import RealSenseConfig, RealSenseSource

        if kind == "playback" and not bag_path:
            raise ConfigError("bag_path='' is invalid: source=playback needs a recording")
        config = RealSenseConfig(
            serial_no=serial_no,
            width=width,
            height=height,
            fps=fps,
            enable_depth=enable_depth,
            align_depth=align_depth and enable_depth,
            playback_path=bag_path if kind == "playback" else "",
            playback_loop=loop,
            frame_timeout_s=frame_timeout_s,
            reconnect_max_s=max(reconnect_max_s, 0.5),
        )
        return RealSenseSource(config, log=lambda m: self.get_logger().warning(m))

    # -- main loop (main thread) -----------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            frame = self.source.read(timeout_s=0.2)
            if frame is not None:
                self.publish_frame(frame)
            elif self.source.finished:
                self.request_exit(0, f"{self.kind} finished after {self.published} frames")
                return

    def publish_frame(self, frame: CameraFrame) -> None:
        stamp = seconds_to_stamp(frame.stamp_s)
        source = self.source
        color = source.color_intrinsics
        self._color_pub.publish(rgb_to_image(frame.color_rgb, stamp, color.frame_id))
        self._color_info_pub.publish(camera_info_from_intrinsics(color, stamp))
        depth = source.depth_intrinsics
        if self._depth_pub is not None and frame.depth_mm is not None:
            self._depth_pub.publish(numpy_to_image(frame.depth_mm, "16UC1", stamp, depth.frame_id))
            self._depth_info_pub.publish(camera_info_from_intrinsics(depth, stamp))
        if self._aligned_pub is not None and frame.aligned_depth_mm is not None:
            self._aligned_pub.publish(
                numpy_to_image(frame.aligned_depth_mm, "16UC1", stamp, color.frame_id)
            )
            self._aligned_info_pub.publish(camera_info_from_intrinsics(color, stamp))
        self._latencies_ms.append((self.now_s() - frame.stamp_s) * 1e3)
        self._domain = frame.timestamp_domain
        self._rate.tick()
        self.published += 1

    # -- reports ---------------------------------------------------------------------------
    def diagnostics_report(self) -> DiagnosticsReport:
        stats = self.source.stats
        latencies = list(self._latencies_ms)
        values = {
            "source": self.kind,
            "device": getattr(self.source, "device_name", ""),
            "serial_no": getattr(self.source, "serial_no", ""),
            "connected": stats.connected,
            "frames_published": self.published,
            "rate_hz": self._rate.rate_hz,
            "latency_ms_last": latencies[-1] if latencies else float("nan"),
            "latency_ms_median": statistics.median(latencies) if latencies else float("nan"),
            "dropped_frames": stats.dropped,
            "reconnects": stats.reconnects,
            "timestamp_domain": self._domain,
            "last_error": stats.last_error,
        }
        if not stats.connected and not self.source.finished:
            return DiagnosticsReport(Level.ERROR, f"device lost: {stats.last_error}", values)
        if stats.dropped:
            return DiagnosticsReport(Level.WARN, f"{stats.dropped} frames dropped", values)
        return DiagnosticsReport(Level.OK, "streaming", values)

    def close(self) -> None:
        self.source.stop()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, args)


if __name__ == "__main__":
    sys.exit(main())
