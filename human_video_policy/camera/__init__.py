"""Camera frame sources without ROS: a RealSense device (or recording) and a video file.

Both sources hand out :class:`CameraFrame` objects through the same small verb set
(``start()``, ``read(timeout_s)``, ``stop()``, ``stats``), so ``nodes/camera_node.py`` publishes
either one the same way and a test or notebook can drive them directly.

- ``camera.realsense_source.RealSenseSource``: pyrealsense2 pipeline (live device, injected
  ``rs.software_device`` or a recording), colour + depth aligned to colour, device timestamps
  mapped to host time.
- ``camera.video_source.VideoCameraSource``: a video file played as a camera at its frame rate.
- ``camera.pinhole``: the one pinhole model (validated intrinsics, camera -> base extrinsics).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from human_video_policy.camera.pinhole import CameraExtrinsics, CameraIntrinsics

__all__ = ["CameraExtrinsics", "CameraFrame", "CameraIntrinsics", "SourceStats"]

COLOR_OPTICAL_FRAME = "camera_color_optical_frame"
DEPTH_OPTICAL_FRAME = "camera_depth_optical_frame"


@dataclass(frozen=True)
class CameraFrame:
    """One capture: colour, optional depth, and when it was taken.

    Attributes:
        color_rgb: (H, W, 3) uint8 RGB.
        stamp_s: capture time on the host clock (seconds since the Unix epoch; the ROS system
            clock), mapped from the device timestamp as documented in docs/camera.md.
        depth_mm: (h, w) uint16 depth in millimetres on the depth sensor's grid (0 = no
            data), or None when depth is off.
        aligned_depth_mm: (H, W) uint16 depth in millimetres re-projected onto the colour grid
            (rs.align), or None when alignment is off.
        frame_number: the device's frame counter of the colour frame (or the video frame
            index).
        depth_frame_number: the device's frame counter of the depth frame (-1 without depth).
        device_timestamp_ms: the raw device timestamp (ms) the stamp was mapped from.
        timestamp_domain: ``hardware_clock``, ``global_time``, ``system_time`` or ``video``.
    """

    color_rgb: np.ndarray
    stamp_s: float
    depth_mm: np.ndarray | None = None
    aligned_depth_mm: np.ndarray | None = None
    frame_number: int = 0
    depth_frame_number: int = -1
    device_timestamp_ms: float = 0.0
    timestamp_domain: str = "system_time"


@dataclass
class SourceStats:
    """Counters a source keeps for /diagnostics.

    Attributes:
        frames: frames handed out by ``read``.
        dropped: frames lost between two handed-out frames (gaps in the device frame counter,
            or video frames skipped to keep up with the clock).
        reconnects: times the source lost its device and got it back.
        last_latency_s: host time at hand-out minus the frame's stamp, for the last frame.
        last_error: the last device error (empty when none).
        connected: whether the source currently streams.
    """

    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    last_latency_s: float = float("nan")
    last_error: str = ""
    connected: bool = False
    extra: dict[str, float | int | str] = field(default_factory=dict)
