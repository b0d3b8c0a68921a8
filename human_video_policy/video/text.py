"""Text on pictures at the size they are shown: captions and time stamps that stay readable.

Text is drawn with Pillow in DejaVu Sans (the font matplotlib ships, so the PNG text and the
plot text look alike) onto the picture at its *output* size, after any downscaling: a caption
drawn on a 1280 px frame that is then shrunk to a 240 px thumbnail is 4 px high and cannot be
read. Sizes are in pixels of the output (``font_px`` is the font's em size; a capital letter
is about 0.73 of it).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from human_video_policy.errors import InputError

#: Smallest font (em, px) any caption or stamp is drawn with: capitals ~10 px high.
MIN_FONT_PX = 14


@cache
def _font(size: int):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    path = _font_path()
    return ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size)


@cache
def _font_path() -> Path | None:
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    except ImportError:  # pragma: no cover - matplotlib is a core requirement
        return None
    return path if path.is_file() else None


def font_px_for_width(width: int, fraction: float = 0.035) -> int:
    """A font size for text across a picture ``width`` px wide (never below MIN_FONT_PX)."""
    return max(MIN_FONT_PX, round(width * fraction))


def wrap_text(text: str, width: int, font_px: int) -> list[str]:
    """``text`` split at spaces into lines that fit ``width`` px (a word longer than a line
    gets its own line)."""
    font = _font(font_px)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if line and font.getlength(trial) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def text_band(
    text: str,
    width: int,
    font_px: int,
    fg: tuple[int, int, int] = (20, 20, 20),
    bg: tuple[int, int, int] = (255, 255, 255),
    pad: int | None = None,
    min_lines: int = 1,
) -> np.ndarray:
    """An RGB ``(h, width, 3)`` band holding ``text`` wrapped to the width (at least
    ``min_lines`` lines high, so bands of one row of thumbnails line up)."""
    from PIL import Image, ImageDraw

    if width < 1 or font_px < 1:
        raise InputError(f"text band needs width >= 1 and font_px >= 1, got {width}, {font_px}")
    pad = round(0.35 * font_px) if pad is None else pad
    lines = wrap_text(text, width - 2 * pad, font_px)
    step = round(1.25 * font_px)
    height = 2 * pad + step * max(len(lines), min_lines)
    image = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(image)
    font = _font(font_px)
    for k, line in enumerate(lines):
        draw.text((pad, pad + k * step), line, font=font, fill=fg)
    return np.asarray(image).copy()


def line_count(text: str, width: int, font_px: int, pad: int | None = None) -> int:
    """Lines :func:`text_band` needs for ``text``."""
    pad = round(0.35 * font_px) if pad is None else pad
    return len(wrap_text(text, width - 2 * pad, font_px))


def draw_label(
    image: np.ndarray,
    text: str,
    xy: tuple[int, int],
    font_px: int,
    fg: tuple[int, int, int] = (255, 255, 255),
    bg: tuple[int, int, int] = (0, 0, 0),
    alpha: float = 0.65,
) -> np.ndarray:
    """``image`` (RGB uint8, not modified) with ``text`` on a translucent box whose top-left
    corner is ``xy`` (clipped to the image); returns the new image."""
    from PIL import Image, ImageDraw

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InputError(f"image must be (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
    font = _font(font_px)
    pad = max(2, round(0.3 * font_px))
    right = font.getbbox(text)[2]
    w, h = int(right) + 2 * pad, round(1.2 * font_px) + 2 * pad
    x = int(np.clip(xy[0], 0, max(0, img.shape[1] - w)))
    y = int(np.clip(xy[1], 0, max(0, img.shape[0] - h)))
    out = img.copy()
    box = out[y : y + h, x : x + w].astype(np.float64)
    out[y : y + h, x : x + w] = np.round(box * (1 - alpha) + np.asarray(bg) * alpha).astype(
        np.uint8
    )
    pil = Image.fromarray(out)
    ImageDraw.Draw(pil).text((x + pad, y + pad), text, font=font, fill=fg)
    return np.asarray(pil).copy()
