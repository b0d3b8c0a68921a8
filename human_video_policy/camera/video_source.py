"""A video file played as a camera: frames at the file's frame rate (or a set rate), in real time.

Decoding is :class:`human_video_policy.video.reader.VideoReader`'s (OpenCV/FFmpeg, rotation
metadata applied), so the frames handed out are exactly the decoder's. Each frame is stamped
``start time + index / rate`` on the host clock: the time at which a camera running at that
rate would have taken it. When reading falls behind (a slow consumer) by a period or more, the
next frame is skipped and counted as dropped, as a real camera would lose it, and a schedule
still behind after that is moved to now (the stamps stay ``index / rate`` apart within one
stretch). Frames are never invented.

Intrinsics come from ``fx, fy, cx, cy`` when given, otherwise from a horizontal field of view
estimate (pinhole: ``fx = fy = (W / 2) / tan(hfov / 2)``, principal point at the image centre).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from human_video_policy.camera import (
    COLOR_OPTICAL_FRAME,
    CameraFrame,
    CameraIntrinsics,
    SourceStats,
)
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.validation import check_non_negative, check_range
from human_video_policy.video.reader import VideoFrame, VideoReader


@dataclass
class VideoSourceConfig:
    """A video file as a camera.

    Attributes:
        path: the video file.
        rate_hz: frames per second to play at; 0 = the file's own frame rate.
        loop: start again at the first frame after the last (the frame index keeps counting).
        fx, fy, cx, cy: intrinsics in pixels of the decoded (rotated) frames; all 0 = estimate
            from ``horizontal_fov_deg``.
        horizontal_fov_deg: horizontal field of view used for the estimate (degrees; a
            RealSense D435 colour camera has about 69, a phone main camera about 65-75).
        frame_id: optical frame of the images.
    """

    path: str
    rate_hz: float = 0.0
    loop: bool = False
    fx: float = 0.0
    fy: float = 0.0
    cx: float = 0.0
    cy: float = 0.0
    horizontal_fov_deg: float = 69.0
    frame_id: str = COLOR_OPTICAL_FRAME

    def __post_init__(self) -> None:
        if not str(self.path):
            raise ConfigError("video_path='' is invalid: must name a video file")
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"video_path={str(self.path)!r} is invalid: file not found ({path.resolve()})"
            )
        check_range("rate_hz", self.rate_hz, 0.0, 1000.0)
        values = [check_non_negative(n, getattr(self, n)) for n in ("fx", "fy", "cx", "cy")]
        if any(values) and not (self.fx > 0 and self.fy > 0):
            raise ConfigError(
                f"fx={self.fx}, fy={self.fy} is invalid: give fx and fy > 0 (and cx, cy), "
                "or all four 0 to estimate them from horizontal_fov_deg"
            )
        check_range("horizontal_fov_deg", self.horizontal_fov_deg, 1.0, 179.0)


class VideoCameraSource:
    """Frames of a video file, paced like a camera; the same verbs as RealSenseSource.

    ``clock`` (host seconds since the epoch) and ``monotonic`` are injectable for tests.
    Raises ConfigError (from the config or the decoder) for a missing or unreadable file.
    """

    def __init__(
        self,
        config: VideoSourceConfig,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        try:
            self.reader = VideoReader(config.path)
        except InputError as exc:
            raise ConfigError(f"video_path={str(config.path)!r} is invalid: {exc}") from None
        self.rate_hz = config.rate_hz or self.reader.fps
        if not self.rate_hz > 0:
            raise ConfigError(
                f"video_path={str(config.path)!r}: the file gives no frame rate; set rate_hz"
            )
        w, h = self.reader.width, self.reader.height
        if config.fx > 0:
            cx = config.cx or (w - 1) / 2.0
            cy = config.cy or (h - 1) / 2.0
            self.color_intrinsics = CameraIntrinsics(
                w, h, config.fx, config.fy, cx, cy, config.frame_id
            )
        else:
            self.color_intrinsics = CameraIntrinsics.from_fov(
                w, h, config.horizontal_fov_deg, config.frame_id
            )
        self.depth_intrinsics: CameraIntrinsics | None = None
        self.stats = SourceStats()
        self.finished = False
        self.serial_no = ""
        self.device_name = f"video {Path(config.path).name}"
        self._clock = clock
        self._monotonic = monotonic
        self._frames: Iterator[VideoFrame] | None = None
        self._index = 0  # frames played so far, across loops
        self._start_host = 0.0
        self._start_mono = 0.0

    def start(self) -> None:
        self._frames = iter(self.reader)
        self._index = 0
        self._start_host = self._clock()
        self._start_mono = self._monotonic()
        self.stats.connected = True
        self.finished = False

    def stop(self) -> None:
        frames, self._frames = self._frames, None
        if frames is not None and hasattr(frames, "close"):
            frames.close()  # releases the decoder
        self.stats.connected = False

    def __enter__(self) -> VideoCameraSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_decoded(self) -> VideoFrame | None:
        assert self._frames is not None
        frame = next(self._frames, None)
        if frame is None and self.config.loop:
            self._frames = iter(self.reader)
            frame = next(self._frames, None)
        return frame

    def read(self, timeout_s: float = 1.0) -> CameraFrame | None:
        """The next frame once its time has come (None if that is more than ``timeout_s``
        away, or after the last frame of a non-looping file: ``finished``)."""
        if self._frames is None or self.finished:
            return None
        period = 1.0 / self.rate_hz
        due = self._start_mono + self._index * period
        wait = due - self._monotonic()
        if wait > timeout_s:
            time.sleep(timeout_s)
            return None
        if wait > 0:
            time.sleep(wait)
        frame = self._next_decoded()
        # Behind by a period or more: skip the frame a camera would have lost (one per read, so
        # a decoder slower than the rate cannot fall ever further behind by skipping), and if
        # still behind, move the schedule so that this frame is due now.
        if frame is not None and self._monotonic() - due >= period:
            self._index += 1
            self.stats.dropped += 1
            frame = self._next_decoded()
            late = self._monotonic() - (self._start_mono + self._index * period)
            if late >= period:
                self._start_mono += late
                self._start_host += late
        if frame is None:
            self.finished = True
            self.stop()
            return None
        index = self._index
        self._index += 1
        stamp = self._start_host + index * period
        self.stats.frames += 1
        self.stats.last_latency_s = self._clock() - stamp
        return CameraFrame(
            color_rgb=frame.rgb,
            stamp_s=stamp,
            frame_number=frame.index,
            device_timestamp_ms=frame.stamp_s * 1000.0,
            timestamp_domain="video",
        )
