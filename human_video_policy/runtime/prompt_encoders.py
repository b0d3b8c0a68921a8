"""Prompt-video encoders by name: what ``prompt_encoder_node`` runs to turn a human demonstration
video into the PromptEmbedding a prompted policy is conditioned on, swappable without editing
this project.

The interface a prompt encoder implements (duck-typed, like the runtime policies of
:mod:`~human_video_policy.runtime.policy_plugins`):

- ``encoder_id``: a non-empty string naming the model, its parameters and (when it has weights)
  a content hash of them; it travels with every embedding, and a policy refuses an embedding
  from an encoder it was not trained with;
- ``encode(frames) -> np.ndarray``: ``frames`` is the whole clip, ``(T, H, W, 3)`` uint8 RGB
  with T >= 1 (checked by :func:`check_frames` before the call); the result is a finite
  ``(num_tokens, dims)`` array castable to float32 (checked by :func:`check_embedding` after);
- optional ``input_size``: ``(height, width)`` the encoder works at; frames are then area-resized
  to it as they are decoded or received, so a clip costs T x height x width x 3 bytes of memory
  instead of T full frames (a 20 s 720p video: ~1.7 GB whole, ~7.6 MB at 64 x 64).

A prompt encoder is made by a factory ``factory(**arguments)``, registered under a name. The
built-in one is ``keyframes`` (:class:`KeyframesEncoder`, a baseline without learned weights).
Outside packages, e.g. the method issues' learned encoders, add their own through the entry-point
group :data:`ENTRY_POINT_GROUP` in their ``pyproject.toml``::

    [project.entry-points."human_video_policy.prompt_encoders"]
    my_encoder = "my_package.prompt:make_encoder"

and are selected by ``prompt_encoder_node``'s ``encoder:=my_encoder`` with ``encoder_args`` (a
JSON object of keyword arguments). A plugin that fails to import is reported with its name and
error when it is asked for (``ConfigError``), and never breaks the built-in names.

The rest is the ROS-free core of the node, so it can be driven from a test or a notebook:
:func:`read_video_frames` (a video file -> one bounded frame array), :class:`FrameClip` (frames
arriving one by one, same bounds) and :class:`PromptEmbedder` (an encoder behind a cache keyed by
the content's SHA-256, with every failure turned into one :class:`InputError` naming the cause).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.runtime.plugin_registry import PluginGroup

ENTRY_POINT_GROUP = "human_video_policy.prompt_encoders"
MIB = 1 << 20


# -- the interface's checks ---------------------------------------------------------------------
def check_frames(frames: Any, name: str = "frames") -> np.ndarray:
    """``frames`` if it is a non-empty ``(T, H, W, 3)`` uint8 RGB array, else InputError."""
    if not isinstance(frames, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise InputError(f"{name} must have shape (T, H, W, 3) (RGB clip), got {frames.shape}")
    if min(frames.shape[:3]) < 1:
        raise InputError(f"{name} is empty: shape {frames.shape} (need T, H, W >= 1)")
    if frames.dtype != np.uint8:
        raise InputError(f"{name} must be uint8 RGB, got dtype {frames.dtype}")
    return frames


def check_embedding(output: Any, encoder_id: str = "encoder") -> np.ndarray:
    """An encoder's output as a C-contiguous float32 ``(num_tokens, dims)`` array, or an
    InputError naming the encoder and what is wrong (shape, type, NaN/inf)."""
    try:
        array = np.asarray(output)
    except Exception as exc:  # an object numpy cannot even look at
        raise InputError(
            f"encoder {encoder_id!r} returned {type(output).__name__}, not an array: {exc}"
        ) from None
    if array.ndim != 2:
        raise InputError(
            f"encoder {encoder_id!r} returned shape {array.shape}: an embedding must be 2-D "
            "(num_tokens, dims)"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise InputError(f"encoder {encoder_id!r} returned an empty embedding {array.shape}")
    if array.dtype.kind not in "biuf":
        raise InputError(
            f"encoder {encoder_id!r} returned dtype {array.dtype}: must be real numbers "
            "(castable to float32)"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # a float64 beyond float32 -> inf
        values = np.array(array, dtype=np.float32, order="C", copy=True)  # never the encoder's
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InputError(
            f"encoder {encoder_id!r} returned {int(bad.sum())} non-finite values (NaN/inf, or "
            f"beyond float32) in its {array.shape[0]}x{array.shape[1]} embedding, first at "
            f"[{row}, {col}] = {float(array[row, col])!r}"
        )
    return values


# -- the baseline encoder -----------------------------------------------------------------------
def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix averaging each output cell's exact share of the input pixels.

    Why not runtime.image_ops.resize_rgb: it is area averaging only for integer factors and
    rounds to uint8; a feature wants the exact float average for any size (720 -> 16).
    """
    edges = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
    pixel = np.arange(n_in, dtype=np.float64)[None, :]
    overlap = np.minimum(edges[1:, None], pixel + 1) - np.maximum(edges[:-1, None], pixel)
    weights = np.clip(overlap, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


class KeyframesEncoder:
    """The baseline prompt encoder: a few evenly spaced frames as tiny images, no learned weights.

    It exists so that ``prompt_encoder_node`` can be run and tested end to end (video in,
    embedding out, cached, published) before a learned encoder is installed; it is not a
    learned representation and carries no semantics beyond coarse colour and layout.

    ``num_tokens`` frames are sampled evenly over the clip (first and last included; a clip with
    fewer frames repeats some), each is area-averaged down to ``size`` x ``size`` RGB and scaled
    to [0, 1]; the clip's mean colour (per channel, over all sampled pixels) is subtracted, and
    each frame is flattened row-major into one token: ``(num_tokens, size * size * 3)`` float32.
    Deterministic: the same frames give the same embedding.
    """

    def __init__(self, num_tokens: int = 8, size: int = 16) -> None:
        for name, value, high in (("num_tokens", num_tokens, 1024), ("size", size, 256)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ConfigError(
                    f"keyframes encoder: {name}={value!r} is invalid: must be an integer in "
                    f"[1, {high}]"
                )
        self.num_tokens, self.size = num_tokens, size
        self.encoder_id = f"keyframes-{num_tokens}x{size}x{size}"
        # frames arrive at 4 x the token size (at least 64): an exact area average of an area
        # average, without holding whole video frames
        side = max(64, 4 * size)
        self.input_size = (side, side)
        self._weights: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def encode(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames)
        count, height, width = frames.shape[:3]
        picks = np.round(np.linspace(0, count - 1, self.num_tokens)).astype(int)
        rows, cols = self._weights.setdefault(
            (height, width), (_area_weights(height, self.size), _area_weights(width, self.size))
        )
        tokens = np.empty((self.num_tokens, self.size, self.size, 3), np.float32)
        for k, index in enumerate(picks):
            frame = frames[index].astype(np.float32) * np.float32(1.0 / 255.0)
            tall = (rows @ frame.reshape(height, width * 3)).reshape(self.size, width, 3)
            tokens[k] = np.einsum("xw,ywc->yxc", cols, tall)
        tokens -= tokens.mean(axis=(0, 1, 2), keepdims=True)
        return tokens.reshape(self.num_tokens, -1)


BUILT_IN: dict[str, Callable[..., Any]] = {"keyframes": KeyframesEncoder}


# -- discovery ----------------------------------------------------------------------------------
PROMPT_ENCODERS = PluginGroup(
    ENTRY_POINT_GROUP, BUILT_IN, "prompt encoder", "encoder", "encoder_args"
)


def prompt_encoder_names() -> list[str]:
    """The built-in names and those of the installed plugins."""
    return PROMPT_ENCODERS.names()


def parse_encoder_args(text: str) -> dict[str, Any]:
    """``encoder_args``: a JSON object of keyword arguments ("" = none)."""
    return PROMPT_ENCODERS.parse_args(text)


def make_prompt_encoder(name: str, **arguments: Any):
    """The prompt encoder ``name`` made with ``arguments``; checked to implement the interface
    (module docstring), with a ConfigError naming what is wrong otherwise."""
    encoder = PROMPT_ENCODERS.make(name, **arguments)
    encoder_id = getattr(encoder, "encoder_id", None)
    if (
        not isinstance(encoder_id, str)
        or not encoder_id
        or not callable(getattr(encoder, "encode", None))
    ):
        raise ConfigError(
            f"prompt encoder {name!r} does not implement the prompt encoder interface: it needs "
            "a non-empty str `encoder_id` and `encode(frames) -> (num_tokens, dims) array`"
        )
    return encoder


# -- bounded clips ------------------------------------------------------------------------------
class FrameClip:
    """A clip assembled one frame at a time, bounded by ``max_frames`` and ``max_bytes``.

    :meth:`add` never raises: the first problem (a frame that is not RGB uint8, a size change,
    one frame too many) is kept, the frames are let go and later ones ignored, and
    :meth:`frames` raises an InputError saying what it was. A clip longer than the bounds is
    refused, never cut short. ``expected``: frames announced (0 = unknown); without it the
    buffer is reserved for the whole bound at once (pages not written are not used on Linux).
    ``size``: (height, width) every frame is area-resized to on arrival (an encoder's
    ``input_size``); the bounds then count resized frames.
    """

    def __init__(
        self,
        max_frames: int,
        max_bytes: int,
        what: str = "clip",
        expected: int = 0,
        size: tuple[int, int] | None = None,
    ):
        self.max_frames, self.max_bytes, self.what = int(max_frames), int(max_bytes), what
        self.expected = int(expected)
        self.size = size  # (height, width) frames are area-resized to, None = kept as they are
        self.received = 0
        self.count = 0
        self.problem = ""
        self._buffer: np.ndarray | None = None

    def fail(self, reason: str) -> None:
        """Mark the clip failed with ``reason`` (kept only if it is the first problem)."""
        if not self.problem:
            self.problem = reason
        self._buffer = None

    def reject(self, reason: str) -> None:
        """Count a frame that could not be read (e.g. a bad message) and fail the clip."""
        self.received += 1
        self.fail(f"{self.what}: frame {self.received - 1}: {reason}")

    def add(self, rgb: Any) -> None:
        self.received += 1
        if self.problem:
            return
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3:
            shape = getattr(rgb, "shape", type(rgb).__name__)
            self.fail(f"{self.what}: frame {self.received - 1} is not (H, W, 3) RGB: {shape}")
            return
        if rgb.dtype != np.uint8 or min(rgb.shape) < 1:
            self.fail(f"{self.what}: frame {self.received - 1} is {rgb.dtype} {rgb.shape}")
            return
        if self.size is not None and rgb.shape[:2] != self.size:
            import cv2

            height, width = self.size
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        if self._buffer is None:
            if not self._allocate(rgb.shape):
                return
        elif rgb.shape != self._buffer.shape[1:]:
            self.fail(
                f"{self.what}: frame {self.received - 1} is {rgb.shape[1]}x{rgb.shape[0]}, "
                f"the clip started at {self._buffer.shape[2]}x{self._buffer.shape[1]}"
            )
            return
        if self.count == self.max_frames:
            self.fail(
                f"{self.what} has more than max_frames={self.max_frames} frames: refused, not "
                "truncated (shorten the video or raise max_frames)"
            )
            return
        if self.count == len(self._buffer):
            self._grow()
            if self.problem:
                return
        self._buffer[self.count] = rgb
        self.count += 1

    def _allocate(self, shape: tuple[int, ...]) -> bool:
        frame_bytes = int(np.prod(shape))
        limit = min(self.max_frames, self.max_bytes // frame_bytes)
        if limit < 1:
            self.fail(
                f"{self.what}: one {shape[1]}x{shape[0]} frame ({frame_bytes / MIB:.1f} MiB) "
                f"exceeds max_clip_mb={self.max_bytes / MIB:g}"
            )
            return False
        # One buffer for the whole bound unless the length is announced: growing by copies cost
        # seconds for 720p clips here (fresh pages), and pages never written cost no memory.
        capacity = self.expected if 0 < self.expected <= limit else limit
        return self._reserve(capacity, shape)

    def _reserve(self, capacity: int, shape: tuple[int, ...]) -> bool:
        try:
            buffer = np.empty((capacity, *shape), np.uint8)
        except MemoryError:
            self.fail(
                f"{self.what}: cannot reserve {capacity} frames of {shape[1]}x{shape[0]} "
                f"({capacity * int(np.prod(shape)) / MIB:.0f} MiB): lower max_clip_mb"
            )
            return False
        if self._buffer is not None:
            buffer[: self.count] = self._buffer[: self.count]
        self._buffer = buffer
        return True

    def _grow(self) -> None:
        """More frames than announced: move to a buffer for the whole bound (once)."""
        assert self._buffer is not None
        shape = self._buffer.shape[1:]
        frame_bytes = int(np.prod(shape))
        limit = min(self.max_frames, self.max_bytes // frame_bytes)
        if self.count >= limit:  # max_frames is handled in add: this is the byte bound
            self.fail(
                f"{self.what}: more than {limit} frames of {frame_bytes / MIB:.1f} MiB exceed "
                f"max_clip_mb={self.max_bytes / MIB:g}: refused, not truncated"
            )
            return
        self._reserve(limit, shape)

    def frames(self) -> np.ndarray:
        """The clip as ``(T, H, W, 3)`` uint8, or InputError naming its first problem."""
        if self.problem:
            raise InputError(self.problem)
        if self._buffer is None or self.count == 0:
            raise InputError(f"{self.what} has no frames")
        return self._buffer[: self.count]


def read_video_frames(
    path: str | Path, max_frames: int, max_bytes: int, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Every frame of the video ``path`` as ``(T, H, W, 3)`` uint8 RGB, decoded with the
    project's :class:`~human_video_policy.video.reader.VideoReader` (area-resized to ``size``,
    (height, width), as they are decoded, when given).

    Bounded: a container announcing more than ``max_frames`` frames (or more decoded bytes than
    ``max_bytes``) is refused before decoding; decoding stops at the first frame past either
    bound. Raises InputError for a missing, unreadable, empty or too long file. A file that ends
    before its announced frame count gives the frames it has (the reader warns on stderr).
    """
    from human_video_policy.video.reader import VideoReader

    reader = VideoReader(path)  # InputError: missing, cannot be opened, no decodable frame
    height, width = size if size is not None else (reader.height, reader.width)
    announced, frame_bytes = reader.frame_count, width * height * 3
    if announced > max_frames:
        raise InputError(
            f"{path}: the video has {announced} frames, more than max_frames={max_frames}: "
            "refused, not truncated (shorten the video or raise max_frames)"
        )
    if announced * frame_bytes > max_bytes:
        raise InputError(
            f"{path}: {announced} frames of {width}x{height} decode to "
            f"{announced * frame_bytes / MIB:.0f} MiB, more than max_clip_mb="
            f"{max_bytes / MIB:g}: refused"
        )
    clip = FrameClip(max_frames, max_bytes, f"{path}", expected=announced, size=size)
    frames = iter(reader)
    try:
        for frame in frames:
            clip.add(frame.rgb)
            if clip.problem:
                break
    finally:
        frames.close()  # releases the decoder at once, also after an early stop
    return clip.frames()


def file_sha256(path: str | Path, max_bytes: int) -> str:
    """SHA-256 of the file's bytes, read in chunks; InputError for a file that is missing,
    not a regular file, unreadable or larger than ``max_bytes``."""
    path = Path(path)
    try:
        regular, exists = path.is_file(), path.exists()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte in it
        raise InputError(f"video path {str(path)[:200]!r} cannot be used: {exc}") from None
    if not regular:
        raise InputError(f"video file {'not a regular file' if exists else 'not found'}: {path}")
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(MIB):
                size += len(chunk)
                if size > max_bytes:
                    raise InputError(
                        f"{path}: the file is larger than max_clip_mb={max_bytes / MIB:g}: "
                        "refused before decoding"
                    )
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"cannot read video file {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def frames_sha256(frames: np.ndarray) -> str:
    """SHA-256 of a clip's shape and pixels (the cache key of a clip that came as frames)."""
    digest = hashlib.sha256(repr(frames.shape).encode())
    digest.update(np.ascontiguousarray(frames).data)
    return digest.hexdigest()


# -- the encoder behind a cache -----------------------------------------------------------------
@dataclass(frozen=True)
class PromptResult:
    """One prompt embedding and how it was obtained."""

    embedding: np.ndarray  # (num_tokens, dims) float32
    encoder_id: str
    content_sha256: str
    encode_ms: float  # decoding + encoding; 0 when it came from the cache
    cached: bool
    frames: int  # frames of the clip that was encoded

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.embedding.shape[0]), int(self.embedding.shape[1])


def _input_size(encoder: Any) -> tuple[int, int] | None:
    """The encoder's optional ``input_size`` as (height, width), checked."""
    size = getattr(encoder, "input_size", None)
    if size is None:
        return None
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(
            f"encoder {encoder.encoder_id!r}: input_size={size!r} must be (height, width)"
        ) from None
    if not (1 <= height <= 4096 and 1 <= width <= 4096):
        raise ConfigError(f"encoder {encoder.encoder_id!r}: input_size={size!r} out of range")
    return height, width


class PromptEmbedder:
    """Runs ``encoder`` on video files or frame clips, keeping the last ``cache_size``
    embeddings by the content's SHA-256 (file bytes, or shape + pixels of a clip), so the same
    video under another path is not encoded twice. Every failure, whatever the encoder raised,
    comes out as one InputError that says what went wrong.
    """

    def __init__(
        self, encoder: Any, max_frames: int = 900, max_bytes: int = 2048 * MIB, cache_size: int = 8
    ) -> None:
        self.encoder = encoder
        self.encoder_id = str(encoder.encoder_id)
        self.input_size = _input_size(encoder)
        self.max_frames, self.max_bytes, self.cache_size = max_frames, max_bytes, cache_size
        self.cache: OrderedDict[str, tuple[np.ndarray, int]] = OrderedDict()  # (embedding, T)
        self.hits = 0
        self.misses = 0

    def embed_file(self, path: str | Path) -> PromptResult:
        start = time.perf_counter()
        key = file_sha256(path, self.max_bytes)
        found = self._cached(key)
        if found is not None:
            return found
        frames = read_video_frames(path, self.max_frames, self.max_bytes, self.input_size)
        return self._encode(key, frames, start, f"{path}")

    def embed_frames(self, frames: np.ndarray, what: str = "clip") -> PromptResult:
        start = time.perf_counter()
        check_frames(frames, what)
        if len(frames) > self.max_frames:
            raise InputError(
                f"{what} has {len(frames)} frames, more than max_frames={self.max_frames}: refused"
            )
        key = frames_sha256(frames)
        found = self._cached(key)
        if found is not None:
            return found
        return self._encode(key, frames, start, what)

    def _cached(self, key: str) -> PromptResult | None:
        entry = self.cache.get(key)
        if entry is None:
            return None
        self.cache.move_to_end(key)
        self.hits += 1
        return PromptResult(entry[0], self.encoder_id, key, 0.0, True, entry[1])

    def _encode(self, key: str, frames: np.ndarray, start: float, what: str) -> PromptResult:
        self.misses += 1
        try:
            output = self.encoder.encode(frames)
        except Exception as exc:  # whatever a plugin raises: the node reports it and goes on
            raise InputError(
                f"encoder {self.encoder_id!r} failed on {what} ({frames.shape[0]} frames of "
                f"{frames.shape[2]}x{frames.shape[1]}): {type(exc).__name__}: {exc}"
            ) from exc
        embedding = check_embedding(output, self.encoder_id)
        embedding.setflags(write=False)  # shared by the cache and every result
        elapsed_ms = max((time.perf_counter() - start) * 1e3, 1e-6)
        if self.cache_size > 0:
            self.cache[key] = (embedding, len(frames))
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return PromptResult(embedding, self.encoder_id, key, elapsed_ms, False, len(frames))
