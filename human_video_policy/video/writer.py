"""Write RGB frames as an H.264 MP4 that browsers and GitHub play (``hvp video show``,
``hvp dataset show -o``).

OpenCV's bundled FFmpeg has no H.264 encoder here (``cv2.VideoWriter`` with ``avc1``/``H264``
does not open), so the frames are piped into the system ``ffmpeg`` (libx264, ``yuv420p``,
``+faststart`` so a browser starts playing before the whole file has arrived), as the dataset
writer does. yuv420p needs even sides: an odd width or height is padded by one white column or
row. Without ``ffmpeg`` on PATH the writer falls back to OpenCV's MPEG-4 part 2 and says so
once (:attr:`Mp4Writer.codec` tells which was written).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from human_video_policy.errors import InputError

H264 = "h264"
MPEG4 = "mpeg4"


class Mp4Writer:
    """``with Mp4Writer(path, fps) as w: w.write(rgb)``; the size is the first frame's.

    ``crf``: libx264 quality (lower = better; 20 keeps drawn text and thin lines sharp),
    ``preset``: libx264 speed preset.
    """

    def __init__(
        self, path: str | Path, fps: float, crf: int = 20, preset: str = "veryfast"
    ) -> None:
        if not fps > 0:
            raise InputError(f"fps={fps!r} is invalid: must be > 0")
        self.path = Path(path)
        self.fps = float(fps)
        self.crf, self.preset = int(crf), preset
        self.frames = 0
        self.codec = H264 if shutil.which("ffmpeg") else MPEG4
        self._size: tuple[int, int] | None = None  # (width, height) as written (even)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = None
        self._cv: cv2.VideoWriter | None = None
        self._shape = (0, 0)

    def _open(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.codec == H264:
            self._size = (width + width % 2, height + height % 2)
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
            cmd = [
                "ffmpeg", "-y", "-loglevel", "error",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "{}x{}".format(*self._size),
                "-r", f"{self.fps}", "-i", "-",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(self.crf),
                "-preset", self.preset, "-threads", "2", "-movflags", "+faststart",
                str(self.path),
            ]  # fmt: skip
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._log)
            return
        warnings.warn(
            f"ffmpeg is not on PATH: {self.path} is MPEG-4 part 2, which browsers do not play "
            "(install ffmpeg for H.264)",
            stacklevel=3,
        )
        self._size = (width, height)
        self._cv = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size
        )
        if not self._cv.isOpened():
            raise InputError(f"cannot write an MP4 to {self.path} (OpenCV's writer refused)")

    def write(self, rgb: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame (every frame the first one's size)."""
        img = np.asarray(rgb)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputError(f"frame must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
        h, w = img.shape[:2]
        if self._size is None:
            self._open(w, h)
            self._shape = (h, w)
        elif (h, w) != self._shape:
            first = f"{self._shape[1]}x{self._shape[0]}"
            raise InputError(f"frame {self.frames} is {w}x{h}, the first was {first}")
        assert self._size is not None
        if self._proc is not None:
            W, H = self._size
            if (w, h) != (W, H):
                img = np.pad(img, ((0, H - h), (0, W - w), (0, 0)), constant_values=255)
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(np.ascontiguousarray(img).tobytes())
            except BrokenPipeError as exc:
                raise InputError(f"ffmpeg stopped writing {self.path}: {self._error()}") from exc
        else:
            assert self._cv is not None
            self._cv.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def _error(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-500:]

    def close(self) -> None:
        """Finish the file (idempotent). Raises InputError when ffmpeg failed."""
        if self._cv is not None:
            self._cv.release()
            self._cv = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            assert proc.stdin is not None
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass
            code = proc.wait()
            err = self._error()
            if self._log is not None:
                self._log.close()
                self._log = None
            if code != 0:
                raise InputError(f"ffmpeg failed ({code}) writing {self.path}: {err}")

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        if self._proc is not None:
            self._proc.kill()  # an encoder whose input is incomplete: the error raised wins
        try:
            self.close()
        except InputError:
            pass
