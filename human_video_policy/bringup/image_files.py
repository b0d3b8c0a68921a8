"""Image messages -> PNG files (``hvp topic echo TOPIC --save-image out.png``).

:func:`image_for_png` turns a ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` into the
array ``cv2.imwrite`` writes, and says what it did:

- colour (rgb8, bgr8, rgba8, bgra8, 8UC3, 8UC4) and mono8/8UC1: the pixels, unchanged (a PNG
  is lossless, so the file holds exactly the published values);
- depth (16UC1/mono16 in mm, 32FC1 in m): scaled for viewing: the valid range (0, NaN = no
  data) maps linearly onto 1..255 (nearest dark, farthest bright) and no data is 0; with
  ``raw_depth`` 16UC1/mono16 are written as 16-bit PNG values unchanged (32FC1 as millimetres);
- CompressedImage: JPEG/PNG decoded (``format`` ``rgb8; jpeg compressed bgr8`` and friends, as
  image_transport writes them), ``compressedDepth`` (12-byte header + PNG) as depth above.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from human_video_policy.errors import InputError

# encoding -> (dtype, channels, order): order is how the channels are stored
_ENCODINGS: dict[str, tuple[np.dtype, int, str]] = {
    "rgb8": (np.dtype(np.uint8), 3, "rgb"),
    "bgr8": (np.dtype(np.uint8), 3, "bgr"),
    "8UC3": (np.dtype(np.uint8), 3, "bgr"),
    "rgba8": (np.dtype(np.uint8), 4, "rgba"),
    "bgra8": (np.dtype(np.uint8), 4, "bgra"),
    "8UC4": (np.dtype(np.uint8), 4, "bgra"),
    "mono8": (np.dtype(np.uint8), 1, "mono"),
    "8UC1": (np.dtype(np.uint8), 1, "mono"),
    "16UC1": (np.dtype(np.uint16), 1, "depth_mm"),
    "mono16": (np.dtype(np.uint16), 1, "depth_mm"),
    "32FC1": (np.dtype(np.float32), 1, "depth_m"),
}
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


@dataclass(frozen=True)
class PngImage:
    """What to write (``pixels`` in cv2's BGR/BGRA/gray order) and a one-line description."""

    pixels: np.ndarray
    description: str


def _buffer(data: Any) -> np.ndarray:
    if isinstance(data, array.array):
        return np.frombuffer(data, dtype=np.uint8)
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).reshape(-1)
    return np.frombuffer(bytes(data), dtype=np.uint8)


def raw_image_pixels(msg: Any) -> tuple[np.ndarray, str]:
    """An Image message as (H, W[, C]) in its stored channel order, and that order."""
    encoding = str(msg.encoding)
    if encoding not in _ENCODINGS:
        raise InputError(
            f"image encoding {encoding!r} cannot be saved: supported are {list(_ENCODINGS)}"
        )
    dtype, channels, order = _ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 1 or width < 1:
        raise InputError(f"image size {width}x{height} is empty")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise InputError(f"image step {step} < {row_bytes} bytes of a {encoding} row of {width}")
    data = _buffer(msg.data)
    if data.size != step * height:
        raise InputError(
            f"image data has {data.size} bytes, step * height = {step} * {height} = "
            f"{step * height} ({encoding} {width}x{height})"
        )
    rows = np.ascontiguousarray(data.reshape(height, step)[:, :row_bytes])
    stored = dtype.newbyteorder(">" if msg.is_bigendian else "<") if dtype.itemsize > 1 else dtype
    pixels = rows.view(stored).astype(dtype)
    shape = (height, width, channels) if channels > 1 else (height, width)
    return pixels.reshape(shape), order


def scale_depth(depth: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Depth (0 or NaN = no data) -> uint8 with the valid range on 1..255; (image, lo, hi)."""
    values = depth.astype(np.float64)
    valid = np.isfinite(values) & (values > 0)
    out = np.zeros(depth.shape, dtype=np.uint8)
    if not valid.any():
        return out, 0.0, 0.0
    lo, hi = float(values[valid].min()), float(values[valid].max())
    if hi > lo:
        scaled = 1.0 + (values[valid] - lo) * (254.0 / (hi - lo))
    else:
        scaled = np.full(int(valid.sum()), 255.0)
    out[valid] = np.clip(np.rint(scaled), 1, 255).astype(np.uint8)
    return out, lo, hi


def _depth_png(depth: np.ndarray, unit: str, raw_depth: bool, what: str) -> PngImage:
    if raw_depth:
        if unit == "m":
            mm = np.where(np.isfinite(depth) & (depth > 0), np.rint(depth * 1000.0), 0)
            depth = np.clip(mm, 0, 65535).astype(np.uint16)
        return PngImage(depth.astype(np.uint16), f"{what}, 16-bit depth in mm, 0 = no data")
    scaled, lo, hi = scale_depth(depth)
    return PngImage(scaled, f"{what}, depth {lo:g}..{hi:g} {unit} scaled to 1..255 (0 = no data)")


def image_for_png(msg: Any, raw_depth: bool = False) -> PngImage:
    """What to write for an Image or CompressedImage message (see the module docstring)."""
    if hasattr(msg, "encoding"):
        pixels, order = raw_image_pixels(msg)
        what = f"{msg.width}x{msg.height} {msg.encoding}"
        if order == "rgb":
            return PngImage(np.ascontiguousarray(pixels[:, :, ::-1]), what)
        if order == "rgba":
            return PngImage(cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA), what)
        if order in ("bgr", "bgra", "mono"):
            return PngImage(pixels, what)
        return _depth_png(pixels, "mm" if order == "depth_mm" else "m", raw_depth, what)
    if hasattr(msg, "format"):
        return _compressed(msg, raw_depth)
    raise InputError(
        f"a {type(msg).__name__} is not an image message: use Image or CompressedImage"
    )


def _compressed(msg: Any, raw_depth: bool) -> PngImage:
    fmt = str(msg.format)
    data = _buffer(msg.data)
    if "compresseddepth" in fmt.lower():
        # compressed_depth_image_transport: a 12-byte ConfigHeader (format, depthQuantA/B)
        # before the PNG (16UC1) or RVL data
        if "rvl" in fmt.lower():
            raise InputError(f"compressedDepth RVL ({fmt!r}) cannot be decoded here; use png")
        data = data[12:]
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise InputError(f"compressed image (format {fmt!r}, {data.size} bytes) does not decode")
    what = f"{decoded.shape[1]}x{decoded.shape[0]} compressed ({fmt or 'no format'})"
    if decoded.dtype == np.uint16:
        return _depth_png(decoded, "mm", raw_depth, what)
    if decoded.dtype != np.uint8:
        raise InputError(f"compressed image decodes to {decoded.dtype}: cannot save it")
    return PngImage(decoded, what)  # imdecode gives BGR(A) / gray, what imwrite expects


def save_png(msg: Any, path: str | Path, raw_depth: bool = False) -> str:
    """Write ``msg`` as a PNG at ``path``; returns the description."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise InputError(f"{target}: the file name must end in .png")
    image = image_for_png(msg, raw_depth)
    if target.parent and not target.parent.exists():
        raise InputError(f"{target}: the folder {target.parent} does not exist")
    if not cv2.imwrite(str(target), image.pixels):
        raise InputError(f"{target}: cannot write the PNG")
    return image.description
