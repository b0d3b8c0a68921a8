"""Image preprocessing shared by training and inference, in numpy only.

Training and the policy node call the same ``resize_rgb`` so the pixels a model sees at run
time are the pixels it was trained on.
"""

from __future__ import annotations

import numpy as np

from human_video_policy.errors import InputError


def check_rgb(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` if it is an (H, W, 3) uint8 array, else raise InputError."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"{name} must have shape (H, W, 3), got {image.shape}")
    if image.dtype != np.uint8:
        raise InputError(f"{name} must be uint8 RGB, got dtype {image.dtype}")
    return image


def resize_rgb(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an RGB uint8 image to (height, width, 3).

    Integer down-scaling factors use area averaging (what a camera binning would do); any
    other size uses bilinear interpolation with pixel-centre alignment.
    """
    check_rgb(image)
    if height < 1 or width < 1:
        raise InputError(f"target size must be positive, got {height}x{width}")
    in_h, in_w = image.shape[:2]
    if (in_h, in_w) == (height, width):
        return image
    if in_h % height == 0 and in_w % width == 0:
        fy, fx = in_h // height, in_w // width
        blocks = image.reshape(height, fy, width, fx, 3).astype(np.float32)
        return np.clip(blocks.mean(axis=(1, 3)) + 0.5, 0, 255).astype(np.uint8)
    ys = (np.arange(height, dtype=np.float32) + 0.5) * (in_h / height) - 0.5
    xs = (np.arange(width, dtype=np.float32) + 0.5) * (in_w / width) - 0.5
    ys = np.clip(ys, 0, in_h - 1)
    xs = np.clip(xs, 0, in_w - 1)
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    y1 = np.minimum(y0 + 1, in_h - 1)
    x1 = np.minimum(x0 + 1, in_w - 1)
    wy = (ys - y0)[:, None, None]
    wx = (xs - x0)[None, :, None]
    src = image.astype(np.float32)
    top = src[y0][:, x0] * (1 - wx) + src[y0][:, x1] * wx
    bottom = src[y1][:, x0] * (1 - wx) + src[y1][:, x1] * wx
    out = top * (1 - wy) + bottom * wy
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def center_crop_to_aspect(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The largest centred crop of ``image`` with the aspect ratio height:width (a view)."""
    check_rgb(image)
    in_h, in_w = image.shape[:2]
    if in_h * width == in_w * height:
        return image
    if in_w * height > in_h * width:  # too wide: crop columns
        crop_w = max(1, round(in_h * width / height))
        left = (in_w - crop_w) // 2
        return image[:, left : left + crop_w]
    crop_h = max(1, round(in_w * height / width))
    top = (in_h - crop_h) // 2
    return image[top : top + crop_h]


def prepare_rgb(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """What a policy sees: centre-cropped to the model's aspect ratio, then resized.

    Cropping instead of stretching keeps objects' shapes and the vertical field of view of a
    camera the same whatever its aspect (a 640x480 camera and a 128x128 render of the same
    fovy show the target at the same place in the model's input).
    """
    return resize_rgb(center_crop_to_aspect(image, height, width), height, width)


def to_chw_float(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1], the ONNX model's ``image`` input."""
    check_rgb(image)
    return (image.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[None].copy()
