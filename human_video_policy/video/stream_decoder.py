"""Decode stretches of a dataset's camera videos with PyAV (FFmpeg's own decoders).

Why PyAV and not OpenCV: LeRobot writes AV1 by default (``libsvtav1``) and also H.264 and HEVC;
OpenCV's FFmpeg build here has no AV1 decoder and reports an undecodable stream as "0 frames",
which names the wrong cause. PyAV's wheel carries FFmpeg with dav1d, opens the container once,
seeks to the keyframe before a timestamp and decodes forward, and every failure here names the
file and the codec.

Frames are selected by presentation time, as LeRobot selects them: the stretch of an episode
that starts at ``start_s`` in a file many episodes share is the ``count`` frames from the first
one whose time is within half a frame period of ``start_s``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from human_video_policy.errors import InputError


class VideoDecodeError(InputError):
    """A camera video cannot be opened or decoded; the message names the file and codec."""


def _tag_of(stream: av.video.stream.VideoStream) -> str:
    try:
        return str(stream.codec_tag or "") or "none"
    except AttributeError:  # PyAV raises it when FFmpeg recognised no codec at all
        return "none"


class StreamDecoder:
    """One video file opened for decoding; use as a context manager or call :meth:`close`.

    ``StreamDecoder(path).frames(start_s, count, fps)`` returns ``(count, H, W, 3)`` uint8 RGB.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoDecodeError(f"{self.path}: video file is missing")
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise VideoDecodeError(f"{self.path}: cannot be opened as a video ({exc})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise VideoDecodeError(f"{self.path}: holds no video stream")
        self._stream = self._container.streams.video[0]
        self.codec = self._describe_codec()
        self._stream.thread_type = "AUTO"

    def _describe_codec(self) -> str:
        try:
            ctx = self._stream.codec_context
        except (av.FFmpegError, ValueError) as exc:
            self._container.close()
            raise VideoDecodeError(
                f"{self.path}: no decoder for its video codec (tag {_tag_of(self._stream)!r}): "
                f"{exc}"
            ) from exc
        if ctx is None or not getattr(ctx, "codec", None):
            tag = _tag_of(self._stream)
            self._container.close()
            raise VideoDecodeError(
                f"{self.path}: FFmpeg recognises no codec in its video stream (codec tag "
                f"{tag!r}), so it cannot be decoded; this build decodes AV1, H.264 and HEVC"
            )
        decoder = ctx.codec.name
        codec = getattr(ctx.codec, "canonical_name", None) or decoder
        return codec if codec == decoder else f"{codec} (decoder {decoder})"

    def frames(
        self,
        start_s: float,
        count: int,
        fps: float,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        expect_size: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """``count`` RGB frames from time ``start_s`` (s); ``transform`` (e.g. a resize) is
        applied to each frame as it is decoded, so the full-size stretch is never held.
        ``expect_size`` (height, width): a frame of another size is refused before it is
        converted (a dataset whose video does not match its info.json, or a hostile one)."""
        if count < 1:
            raise InputError(f"count={count} is invalid: at least one frame")
        if not np.isfinite(start_s) or start_s < 0:
            raise InputError(f"start_s={start_s!r} is invalid: a finite time >= 0 s")
        tol = 0.5 / fps
        base = self._stream.time_base
        out: list[np.ndarray] = []
        try:
            if start_s > tol:
                self._container.seek(
                    int(max(0.0, start_s - tol) / base), stream=self._stream, backward=True
                )
            else:
                self._container.seek(0, stream=self._stream, backward=True)
            index = 0
            for frame in self._container.decode(self._stream):
                t = frame.time if frame.time is not None else index / fps
                index += 1
                if t < start_s - tol:
                    continue
                if expect_size is not None and (frame.height, frame.width) != expect_size:
                    raise VideoDecodeError(
                        f"{self.path}: the {self.codec} stream has {frame.width}x{frame.height} "
                        f"frames; the dataset says {expect_size[1]}x{expect_size[0]}"
                    )
                rgb = frame.to_ndarray(format="rgb24")
                out.append(transform(rgb) if transform is not None else rgb)
                if len(out) == count:
                    break
        except (av.FFmpegError, ValueError) as exc:
            raise VideoDecodeError(
                f"{self.path}: the {self.codec} stream cannot be decoded after {len(out)} of "
                f"{count} frames from t={start_s:.3f} s ({exc}); corrupt or truncated file?"
            ) from exc
        if len(out) < count:
            raise VideoDecodeError(
                f"{self.path}: the {self.codec} stream ends after {len(out)} of {count} frames "
                f"from t={start_s:.3f} s; truncated file, or from_timestamp past its end?"
            )
        return np.stack(out)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> StreamDecoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def video_codec(path: str | Path) -> str:
    """The codec name of the first video stream of ``path`` (``av1``/``libdav1d``, ``h264``...)."""
    with StreamDecoder(path) as dec:
        return dec.codec


__all__ = ["StreamDecoder", "VideoDecodeError", "video_codec"]
