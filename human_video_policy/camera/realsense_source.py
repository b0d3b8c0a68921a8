"""A RealSense camera (or a recording of one) as a stream of :class:`CameraFrame` objects.

The source drives a pyrealsense2 pipeline: a live device chosen by serial number, a device a
test injected into an ``rs.context`` (``rs.software_device``, see :func:`add_software_device`),
or a recording played back with ``config.enable_device_from_file``. Colour comes as RGB, depth
as millimetres on the depth grid and, with ``align_depth``, re-projected onto the colour grid
by ``rs.align`` (what realsense-ros publishes on ``aligned_depth_to_color``).

Time: every frame's device timestamp is mapped to host time by :class:`DeviceClockMapper`
(see its docstring and docs/camera.md). Loss: when no frame arrives for ``frame_timeout_s`` the
device counts as lost; the source stops the pipeline, says so through ``log`` and retries with
exponential backoff until the device (same serial) streams again.

No rclpy here: ``nodes/camera_node.py`` publishes what this produces.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyrealsense2 as rs

from human_video_policy.camera import (
    COLOR_OPTICAL_FRAME,
    DEPTH_OPTICAL_FRAME,
    CameraFrame,
    CameraIntrinsics,
    SourceStats,
)
from human_video_policy.errors import ConfigError, HvpError, InputError
from human_video_policy.validation import check_int_range, check_range

_LOG = logging.getLogger(__name__)

HOST_CLOCK_DOMAINS = ("system_time", "global_time")
"""Timestamp domains whose values already are host time (ms since the Unix epoch)."""


class DeviceLostError(HvpError):
    """The RealSense device stopped delivering frames and could not be restarted."""


# -- time ------------------------------------------------------------------------------------
class DeviceClockMapper:
    """Maps a frame's device timestamp (ms) to host time (s since the Unix epoch).

    - ``system_time`` and ``global_time`` stamps are host time already (librealsense takes the
      host clock at arrival, or maps the device clock to it itself): ``host = device_ms / 1000``.
    - ``hardware_clock`` stamps count from an arbitrary device origin. The offset
      ``host - device`` is estimated as the *minimum* of ``arrival_s - device_ms / 1000`` over
      the last ``window_s`` seconds: transport latency only ever adds to that difference, so the
      least-delayed frame in the window is the best estimate (mapped stamps are never later
      than arrival). The sliding window follows clock drift (error <= drift rate x window,
      e.g. 100 ppm x 2 s = 0.2 ms). A device clock that jumps (reset, reconnect, wrap) by more
      than ``reset_jump_s`` against the host restarts the estimate.

    Mapped stamps never go backwards: a stamp earlier than the previous one is raised to it.
    """

    def __init__(self, window_s: float = 2.0, reset_jump_s: float = 0.5) -> None:
        self.window_s = check_range("window_s", window_s, 0.01, 600.0)
        self.reset_jump_s = check_range("reset_jump_s", reset_jump_s, 0.001, 3600.0)
        self._samples: deque[tuple[float, float]] = deque()  # (arrival_s, offset_s)
        self._last_stamp = -math.inf
        self.resets = 0

    @property
    def offset_s(self) -> float:
        """Current estimate of host minus device time (s); NaN before the first sample."""
        return min(o for _, o in self._samples) if self._samples else math.nan

    def map(self, device_ms: float, domain: str, arrival_s: float) -> float:
        """Host time (s) of a frame stamped ``device_ms`` in ``domain`` that arrived at
        ``arrival_s`` (host seconds)."""
        if not math.isfinite(device_ms) or not math.isfinite(arrival_s):
            raise InputError(f"timestamps must be finite, got {device_ms=} {arrival_s=}")
        if domain in HOST_CLOCK_DOMAINS:
            stamp = device_ms / 1000.0
        elif domain == "hardware_clock":
            offset = arrival_s - device_ms / 1000.0
            if self._samples and abs(offset - self.offset_s) > self.reset_jump_s:
                self._samples.clear()  # the device clock restarted or jumped
                self._last_stamp = -math.inf
                self.resets += 1
            self._samples.append((arrival_s, offset))
            while self._samples and arrival_s - self._samples[0][0] > self.window_s:
                self._samples.popleft()
            stamp = device_ms / 1000.0 + self.offset_s
        else:
            raise InputError(
                f"timestamp domain {domain!r} is unknown: expected one of "
                f"{[*HOST_CLOCK_DOMAINS, 'hardware_clock']}"
            )
        stamp = max(stamp, self._last_stamp)
        self._last_stamp = stamp
        return stamp


# -- configuration ---------------------------------------------------------------------------
@dataclass
class RealSenseConfig:
    """What to stream and how to cope with a lost device.

    Attributes:
        serial_no: serial number of the device to open; empty = the first device found. Ignored
            for playback.
        width, height: colour (and depth) resolution in pixels; 0 = the device's default.
        fps: frames per second of colour and depth (a mode the device offers, e.g. 6/15/30).
        enable_depth: stream depth (z16) beside colour.
        align_depth: also re-project depth onto the colour grid (``rs.align``); needs depth.
        playback_path: a recording (``.db3`` with librealsense >= 2.56, ``.bag`` before) to
            play instead of a device; empty = live device.
        playback_loop: start the recording again at its end (otherwise the source finishes).
        playback_realtime: play at the recorded pace (False = as fast as frames are read).
        frame_timeout_s: no frame for this long means the device is lost (s).
        reconnect_initial_s, reconnect_max_s: first and largest wait between restart attempts
            (s); the wait doubles after each failed attempt.
        clock_window_s: window of the device-to-host offset estimate (s), see
            :class:`DeviceClockMapper`.
    """

    serial_no: str = ""
    width: int = 640
    height: int = 480
    fps: int = 30
    enable_depth: bool = True
    align_depth: bool = True
    playback_path: str = ""
    playback_loop: bool = False
    playback_realtime: bool = True
    frame_timeout_s: float = 2.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 5.0
    clock_window_s: float = 2.0

    def __post_init__(self) -> None:
        self.serial_no = str(self.serial_no).strip()
        check_int_range("width", self.width, 0, 4096)
        check_int_range("height", self.height, 0, 4096)
        if (self.width == 0) != (self.height == 0):
            raise ConfigError(
                f"width={self.width}, height={self.height} is invalid: set both or neither (0)"
            )
        check_int_range("fps", self.fps, 1, 300)
        if self.align_depth and not self.enable_depth:
            raise ConfigError("align_depth=True is invalid without enable_depth=True")
        check_range("frame_timeout_s", self.frame_timeout_s, 0.05, 60.0)
        check_range("reconnect_initial_s", self.reconnect_initial_s, 0.01, 60.0)
        check_range("reconnect_max_s", self.reconnect_max_s, self.reconnect_initial_s, 600.0)
        check_range("clock_window_s", self.clock_window_s, 0.01, 600.0)
        if self.playback_path:
            path = Path(self.playback_path).expanduser()
            if not path.is_file():
                raise ConfigError(
                    f"playback_path={self.playback_path!r} is invalid: file not found "
                    f"({path.resolve()})"
                )


# -- software devices ------------------------------------------------------------------------
def add_software_device(context: rs.context, device: rs.software_device) -> Any:
    """Add ``device`` to ``context`` so pipelines and queries on that context find it.

    Returns a handle that must stay alive as long as the device should be found. Why: in
    pyrealsense2 2.59.1 ``software_device.add_to(ctx)`` registers the device with only a weak
    reference, and nothing else holds the registered entry, so ``ctx.query_devices()`` returns
    nothing and ``pipeline.start`` fails with "No device connected" although the
    devices-changed callback reports one new device. Holding the device list that callback
    delivers keeps the entry alive (measured; docs/camera.md).
    """
    held: list[Any] = []
    context.set_devices_changed_callback(lambda info: held.append(info.get_new_devices()))
    device.add_to(context)
    if not held:
        raise HvpError("software_device.add_to(context) did not announce the device")
    return held


def connected_serials(context: rs.context) -> list[str]:
    """Serial numbers of the devices ``context`` finds now."""
    serials = []
    for dev in context.query_devices():
        if dev.supports(rs.camera_info.serial_number):
            serials.append(dev.get_info(rs.camera_info.serial_number))
    return serials


def intrinsics_from_rs(intr: rs.intrinsics, frame_id: str) -> CameraIntrinsics:
    """pyrealsense2 intrinsics -> CameraIntrinsics (Brown-Conrady models as ROS plumb_bob, as
    realsense-ros does; Kannala-Brandt as equidistant)."""
    coeffs = tuple(float(c) for c in intr.coeffs)
    if intr.model == rs.distortion.kannala_brandt4:
        model, distortion = "equidistant", coeffs[:4]
    else:
        model, distortion = "plumb_bob", coeffs[:5]
    return CameraIntrinsics(
        width=int(intr.width),
        height=int(intr.height),
        fx=float(intr.fx),
        fy=float(intr.fy),
        cx=float(intr.ppx),
        cy=float(intr.ppy),
        frame_id=frame_id,
        distortion_model=model,
        distortion=distortion,
    )


def depth_frame_to_mm(frame: rs.depth_frame) -> np.ndarray:
    """A z16 depth frame as (H, W) uint16 millimetres (0 = no data).

    With the usual depth unit of 1 mm the values pass unchanged; other units (e.g. 0.1 mm on a
    D405) are scaled and rounded to whole millimetres, saturating at 65535.
    """
    raw = np.asanyarray(frame.get_data())
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise InputError(f"depth frame must be z16 (H, W) uint16, got {raw.dtype} {raw.shape}")
    units_m = float(frame.get_units())
    if not units_m > 0:
        raise InputError(f"depth frame has depth unit {units_m} m: must be > 0")
    if abs(units_m - 1e-3) < 1e-9:
        return raw.copy()
    mm = np.rint(raw.astype(np.float64) * (units_m * 1000.0))
    return np.clip(mm, 0, 65535).astype(np.uint16)


def color_frame_to_rgb(frame: rs.video_frame) -> np.ndarray:
    """A colour frame (rgb8, bgr8, rgba8 or bgra8) as (H, W, 3) uint8 RGB."""
    fmt = frame.get_profile().format()
    pixels = np.asanyarray(frame.get_data())
    if fmt == rs.format.rgb8:
        return pixels.copy()
    if fmt == rs.format.bgr8:
        return np.ascontiguousarray(pixels[:, :, ::-1])
    if fmt == rs.format.rgba8:
        return np.ascontiguousarray(pixels[:, :, :3])
    if fmt == rs.format.bgra8:
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    raise InputError(f"colour format {fmt} is not supported: use rgb8, bgr8, rgba8 or bgra8")


def _domain_name(frame: rs.frame) -> str:
    return str(frame.get_frame_timestamp_domain()).rsplit(".", 1)[-1]


# -- the source ------------------------------------------------------------------------------
class RealSenseSource:
    """Colour + depth frames from a RealSense pipeline; see the module docstring.

    ``context``: the ``rs.context`` to find devices in (default: a new one, i.e. USB devices);
    pass the context a software device was added to (:func:`add_software_device`) to stream
    injected frames. ``log``: where loss and reconnect messages go (default: this module's
    logger). ``clock``: host clock in seconds since the epoch (default ``time.time``, which is
    the ROS system clock).
    """

    def __init__(
        self,
        config: RealSenseConfig,
        context: rs.context | None = None,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.context = context if context is not None else rs.context()
        self._log = log or _LOG.warning
        self._clock = clock
        self.stats = SourceStats()
        self.clock_mapper = DeviceClockMapper(window_s=config.clock_window_s)
        self.color_intrinsics: CameraIntrinsics | None = None
        self.depth_intrinsics: CameraIntrinsics | None = None
        self.serial_no = ""
        self.device_name = ""
        self.finished = False
        self._pipeline: rs.pipeline | None = None
        self._align = rs.align(rs.stream.color) if config.align_depth else None
        self._last_frame_number: int | None = None
        self._last_frame_at = 0.0
        self._retry_at = 0.0
        self._retry_wait = config.reconnect_initial_s

    @property
    def is_playback(self) -> bool:
        return bool(self.config.playback_path)

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the device (or recording) and start streaming.

        Raises ConfigError when the requested device is not connected (the message lists the
        serials that are) or the recording cannot be played, or the mode is not offered.
        """
        if not self.is_playback:
            serials = connected_serials(self.context)
            wanted = self.config.serial_no
            if wanted and wanted not in serials:
                raise ConfigError(
                    f"serial_no={wanted!r} is invalid: no RealSense device with that serial is "
                    f"connected; connected serials: {serials or 'none'}"
                )
            if not serials:
                raise ConfigError(
                    "no RealSense device is connected (check the USB cable and the udev rules "
                    "in docs/camera.md)"
                )
            self.serial_no = wanted or serials[0]
        try:
            self._start_pipeline()
        except RuntimeError as exc:
            what = (
                f"playback_path={self.config.playback_path!r}"
                if self.is_playback
                else f"device {self.serial_no}"
            )
            raise ConfigError(f"cannot start {what} with {self._mode()}: {exc}") from None

    def _mode(self) -> str:
        c = self.config
        size = f"{c.width}x{c.height}" if c.width else "default size"
        depth = "colour+depth" if c.enable_depth else "colour"
        return f"{depth} {size} @ {c.fps} fps"

    def _start_pipeline(self) -> None:
        c = self.config
        pipeline = rs.pipeline(self.context)
        cfg = rs.config()
        if self.is_playback:
            cfg.enable_device_from_file(str(Path(c.playback_path).expanduser()), c.playback_loop)
            cfg.enable_stream(rs.stream.color)
            if c.enable_depth:
                cfg.enable_stream(rs.stream.depth)
        else:
            cfg.enable_device(self.serial_no)
            cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
            if c.enable_depth:
                cfg.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)
        profile = pipeline.start(cfg)
        device = profile.get_device()
        if self.is_playback:
            device.as_playback().set_real_time(c.playback_realtime)
            if device.supports(rs.camera_info.serial_number):
                self.serial_no = device.get_info(rs.camera_info.serial_number)
        if device.supports(rs.camera_info.name):
            self.device_name = device.get_info(rs.camera_info.name)
        self.color_intrinsics = intrinsics_from_rs(
            profile.get_stream(rs.stream.color).as_video_stream_profile().get_intrinsics(),
            COLOR_OPTICAL_FRAME,
        )
        if c.enable_depth:
            self.depth_intrinsics = intrinsics_from_rs(
                profile.get_stream(rs.stream.depth).as_video_stream_profile().get_intrinsics(),
                DEPTH_OPTICAL_FRAME,
            )
        self._pipeline = pipeline
        self._last_frame_at = time.monotonic()
        self._last_frame_number = None
        self.stats.connected = True

    def stop(self) -> None:
        """Stop streaming (safe to call twice)."""
        pipeline, self._pipeline = self._pipeline, None
        self.stats.connected = False
        if pipeline is not None:
            try:
                pipeline.stop()
            except RuntimeError:
                pass  # already stopped, e.g. the device was unplugged

    def __enter__(self) -> RealSenseSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- frames --------------------------------------------------------------------------------
    def read(self, timeout_s: float = 1.0) -> CameraFrame | None:
        """The next frame, or None when none came within ``timeout_s`` (or while the device
        is lost and being retried, or after a non-looping recording ended: ``finished``)."""
        if self.finished:
            return None
        if self._pipeline is None:
            self._retry(timeout_s)
            return None
        try:
            ok, frames = self._pipeline.try_wait_for_frames(max(1, int(timeout_s * 1000)))
        except RuntimeError as exc:  # the device vanished under the pipeline
            self._lose(f"{exc}")
            return None
        if not ok:
            if self.is_playback and self._playback_stopped():
                self.finished = True
                self.stop()
            elif time.monotonic() - self._last_frame_at > self.config.frame_timeout_s:
                self._lose(f"no frame for {self.config.frame_timeout_s:g} s")
            return None
        arrival = self._clock()
        frame = self._convert(frames, arrival)
        if frame is not None:
            self._last_frame_at = time.monotonic()
            self.stats.frames += 1
            self.stats.last_latency_s = self._clock() - frame.stamp_s
        return frame

    def _playback_stopped(self) -> bool:
        try:
            device = self._pipeline.get_active_profile().get_device().as_playback()
            return device.current_status() == rs.playback_status.stopped
        except RuntimeError:
            return True

    def _convert(self, frames: rs.composite_frame, arrival_s: float) -> CameraFrame | None:
        color = frames.get_color_frame()
        if not color:
            return None
        number = int(color.get_frame_number())
        if number == self._last_frame_number:
            return None  # the syncer repeats the last colour frame when only depth is new
        depth_mm = aligned_mm = None
        depth_number = -1
        if self.config.enable_depth:
            depth = frames.get_depth_frame()
            if not depth:
                return None
            depth_number = int(depth.get_frame_number())
            depth_mm = depth_frame_to_mm(depth)
            if self._align is not None:
                aligned_mm = depth_frame_to_mm(self._align.process(frames).get_depth_frame())
        if self._last_frame_number is not None and number > self._last_frame_number:
            self.stats.dropped += number - self._last_frame_number - 1
        self._last_frame_number = number
        device_ms = float(color.get_timestamp())
        domain = _domain_name(color)
        return CameraFrame(
            color_rgb=color_frame_to_rgb(color),
            stamp_s=self.clock_mapper.map(device_ms, domain, arrival_s),
            depth_mm=depth_mm,
            aligned_depth_mm=aligned_mm,
            frame_number=number,
            depth_frame_number=depth_number,
            device_timestamp_ms=device_ms,
            timestamp_domain=domain,
        )

    # -- loss and reconnection -----------------------------------------------------------------
    def _lose(self, reason: str) -> None:
        self.stop()
        self.stats.last_error = reason
        self._retry_wait = self.config.reconnect_initial_s
        self._retry_at = time.monotonic() + self._retry_wait
        self._log(
            f"RealSense {self.serial_no or '?'} lost ({reason}); retrying in {self._retry_wait:g} s"
        )

    def _retry(self, timeout_s: float) -> None:
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, timeout_s))
            if time.monotonic() < self._retry_at:
                return
        serials = [] if self.is_playback else connected_serials(self.context)
        try:
            if not self.is_playback and self.serial_no not in serials:
                raise RuntimeError(f"not connected (connected serials: {serials or 'none'})")
            self._start_pipeline()
        except RuntimeError as exc:
            self.stats.last_error = str(exc)
            self._retry_wait = min(2.0 * self._retry_wait, self.config.reconnect_max_s)
            self._retry_at = time.monotonic() + self._retry_wait
            self._log(
                f"RealSense {self.serial_no} still unavailable ({exc}); retrying in "
                f"{self._retry_wait:g} s"
            )
            return
        self.stats.reconnects += 1
        self.stats.last_error = ""
        self._log(f"RealSense {self.serial_no} streams again (reconnect #{self.stats.reconnects})")
