"""The one parameter-validation helper used by configs and nodes alike.

Each check raises :class:`ConfigError` with a message that names the field, the value and what
is allowed, e.g. ``policy_rate_hz=-3.0 is invalid: must be > 0``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from human_video_policy.errors import ConfigError


def _fail(name: str, value: Any, rule: str) -> ConfigError:
    return ConfigError(f"{name}={value!r} is invalid: {rule}")


def check_finite(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise _fail(name, value, "must be a finite number")
    return float(value)


def check_positive(name: str, value: float) -> float:
    value = check_finite(name, value)
    if value <= 0:
        raise _fail(name, value, "must be > 0")
    return value


def check_non_negative(name: str, value: float) -> float:
    value = check_finite(name, value)
    if value < 0:
        raise _fail(name, value, "must be >= 0")
    return value


def check_range(name: str, value: float, low: float, high: float) -> float:
    value = check_finite(name, value)
    if not low <= value <= high:
        raise _fail(name, value, f"must be in [{low}, {high}]")
    return value


def check_int_range(name: str, value: int, low: int, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(name, value, "must be an integer")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise _fail(name, value, f"must be {allowed}")
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        raise _fail(name, value, f"must be one of {choices}")
    return value


def check_file(name: str, value: str | Path) -> Path:
    path = Path(value).expanduser()
    if not str(value):
        raise _fail(name, value, "must name a file")
    if not path.is_file():
        raise _fail(name, str(value), f"file not found ({path.resolve()})")
    return path


def check_same_length(name: str, value: Sequence[Any], expected: int) -> Sequence[Any]:
    if len(value) != expected:
        raise _fail(name, list(value), f"must have {expected} elements, got {len(value)}")
    return value


def check_float_list(name: str, value: Any, count: int) -> list[float]:
    """Exactly ``count`` finite numbers (a parameter such as an xyz offset), as floats."""
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        raise _fail(name, value, f"must be {count} numbers") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise _fail(name, value, f"must be {count} finite numbers")
    return values


_WXH = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def image_size_arg(text: str) -> tuple[int, int]:
    """The one parser of every ``--image-size``: ``WxH`` in pixels, width first as
    realsense-ros, ffmpeg and v4l2 write it (``640x480``) -> ``(width, height)``.

    Used as an argparse ``type`` (``hvp`` commands and module CLIs alike): anything else raises
    ``argparse.ArgumentTypeError``, which argparse prints as ``argument --image-size: ...`` with
    exit code 2.
    """
    import argparse

    match = _WXH.fullmatch(str(text))
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not WxH: give width x height in pixels, e.g. 640x480"
        )
    width, height = int(match.group(1)), int(match.group(2))
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: width and height must be >= 1")
    return width, height
