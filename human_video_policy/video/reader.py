"""Read a video file as RGB ``uint8`` frames with their index and timestamp.

OpenCV's FFmpeg backend decodes. Rotation metadata (phone videos) is applied here, not by
OpenCV, so :attr:`VideoReader.rotation_deg` says exactly what was done. A file that ends early
(truncated download or recording) yields the frames it has; :attr:`VideoReader.truncated` is
then set and a warning is emitted. Frames the decoder cannot produce are never invented.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from human_video_policy.errors import InputError

_ROTATIONS = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: ``rgb`` is ``(H, W, 3)`` uint8, ``stamp_s`` seconds from the start."""

    index: int
    stamp_s: float
    rgb: np.ndarray


class VideoReader:
    """Iterate over the frames of a video file (re-iterable: every pass starts at frame 0).

    Attributes after construction: ``fps``, ``frame_count`` (from the container; may be 0 or
    wrong for streams without an index), ``width``/``height`` (after rotation),
    ``rotation_deg`` (clockwise rotation applied to every frame: 0, 90, 180 or 270).
    After a full pass: ``frames_read`` and ``truncated`` (fewer frames decoded than announced).

    Raises InputError if the file is missing, cannot be opened, or has no decodable frame.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"video file not found: {self.path}")
        cap = self._open()
        try:
            fps = float(cap.get(cv2.CAP_PROP_FPS))
            count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            meta = cap.get(cv2.CAP_PROP_ORIENTATION_META)
            ok, first = cap.read()
        finally:
            cap.release()
        if not ok or first is None or first.ndim != 3 or first.size == 0:
            raise InputError(f"video has no decodable frame: {self.path}")
        self.fps = fps if math.isfinite(fps) and fps > 0 else 0.0
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else 0
        self.rotation_deg = self._rotation_from_meta(meta)
        rotated = self._rotate(first)
        self.height, self.width = int(rotated.shape[0]), int(rotated.shape[1])
        self.frames_read: int | None = None
        self.truncated = False

    def _open(self) -> cv2.VideoCapture:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # the InputError says it
        try:
            cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not cap.isOpened():
            cap.release()
            raise InputError(
                f"cannot open video (corrupt, truncated, without video frames or unsupported): "
                f"{self.path}"
            )
        # Rotation is applied by _rotate so that it is known and reported.
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        return cap

    @staticmethod
    def _rotation_from_meta(meta: float) -> int:
        if not math.isfinite(meta):
            return 0
        deg = round(meta) % 360
        return deg if deg in _ROTATIONS else 0

    def _rotate(self, bgr: np.ndarray) -> np.ndarray:
        if self.rotation_deg:
            return cv2.rotate(bgr, _ROTATIONS[self.rotation_deg])
        return bgr

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the frames yielded (after rotation)."""
        return self.width, self.height

    def __iter__(self) -> Iterator[VideoFrame]:
        cap = self._open()
        index = 0
        try:
            while True:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                if bgr.ndim != 3 or bgr.shape[2] != 3:
                    raise InputError(
                        f"{self.path}: frame {index} decoded with shape {bgr.shape}, expected "
                        "(H, W, 3)"
                    )
                rgb = cv2.cvtColor(self._rotate(bgr), cv2.COLOR_BGR2RGB)
                yield VideoFrame(index=index, stamp_s=self._stamp(cap, index), rgb=rgb)
                index += 1
        finally:
            cap.release()
        self.frames_read = index
        self.truncated = self.frame_count > 0 and index < self.frame_count
        if self.truncated:
            warnings.warn(
                f"{self.path}: decoded {index} of {self.frame_count} announced frames "
                "(file truncated or damaged); the remaining frames are missing",
                stacklevel=2,
            )

    def _stamp(self, cap: cv2.VideoCapture, index: int) -> float:
        msec = cap.get(cv2.CAP_PROP_POS_MSEC)  # presentation time of the frame just read
        if math.isfinite(msec) and (msec > 0 or index == 0):
            return msec / 1000.0
        return index / self.fps if self.fps > 0 else 0.0

    def __len__(self) -> int:
        """Frames announced by the container (0 if unknown)."""
        return self.frame_count

    def __repr__(self) -> str:
        return (
            f"VideoReader({str(self.path)!r}, {self.width}x{self.height}, fps={self.fps:g}, "
            f"frames={self.frame_count}, rotation={self.rotation_deg})"
        )
