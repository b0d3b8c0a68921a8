"""VITRA atomic action segmentation at wrist-speed minima (vitra_hand_vla.txt, sec. 3 / A.1).

1. Smooth the 3D wrist trajectory with a Gaussian kernel (``sigma_s`` seconds; numpy
   convolution, edges padded by repeating the end samples).
2. Speed per frame ``|dp/dt|`` (central differences, ``np.gradient``).
3. A frame is a cut point when its speed is the minimum of a window of ``window_s`` seconds
   centred on it (VITRA uses 0.5 s) and some frame of that window is faster (a perfectly flat
   window, e.g. deep inside a long still stretch, gives no cut); in a run of equal minima the
   middle frame is kept. The first and last frame are never cut points.
4. Cuts closer than ``min_segment_s`` to the previous kept boundary (or to the end) are dropped,
   keeping the lower-speed one of a conflicting pair.

Segments are half-open frame ranges ``[start, end)`` that tile ``[0, T)`` in order. Each hand is
segmented on its own (run once per hand, the other hand ignored).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from human_video_policy.hands.keypoints import check_points
from human_video_policy.validation import check_non_negative, check_positive


@dataclass(frozen=True)
class SegmentationConfig:
    fps: float
    window_s: float = 0.5
    sigma_s: float = 0.05
    min_segment_s: float = 0.5

    def __post_init__(self) -> None:
        check_positive("fps", self.fps)
        check_positive("window_s", self.window_s)
        check_non_negative("sigma_s", self.sigma_s)
        check_non_negative("min_segment_s", self.min_segment_s)

    @property
    def half_window(self) -> int:
        """Frames on each side of the centre (at least 1)."""
        return max(1, round(self.window_s * self.fps / 2.0))

    @property
    def min_segment_frames(self) -> int:
        return max(1, round(self.min_segment_s * self.fps))


@dataclass(frozen=True)
class Segment:
    start: int  #: first frame (inclusive)
    end: int  #: one past the last frame
    duration_s: float
    path_length: float  #: metres along the smoothed trajectory, frames start .. end - 1
    mean_speed: float  #: path_length / duration_s (m/s)


@dataclass(frozen=True)
class SegmentationResult:
    segments: tuple[Segment, ...]
    cut_points: tuple[int, ...]
    smoothed: np.ndarray  #: (T, 3)
    speed: np.ndarray  #: (T,) m/s


def gaussian_smooth(points: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian-smooth a ``(T, D)`` array along time (edge-padded, kernel radius 3 sigma)."""
    if sigma_frames <= 0:
        return points.copy()
    radius = max(1, int(np.ceil(3.0 * sigma_frames)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma_frames) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(points, ((radius, radius), (0, 0)), mode="edge")
    out = np.empty_like(points, dtype=np.float64)
    for d in range(points.shape[1]):
        out[:, d] = np.convolve(padded[:, d], kernel, mode="valid")
    return out


def speed_minima(speed: np.ndarray, half_window: int) -> list[int]:
    """Frames (never the first/last) whose speed is the minimum of the centred window."""
    T = speed.shape[0]
    padded = np.pad(speed, half_window, mode="constant", constant_values=np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half_window + 1)
    finite_max = np.where(np.isinf(windows), -np.inf, windows).max(axis=1)
    # A minimum must sit in a dip: a perfectly flat window (a long still stretch) is no cut.
    is_min = (speed <= windows.min(axis=1)) & (finite_max > speed)
    is_min[0] = is_min[-1] = False
    cuts: list[int] = []
    t = 1
    while t < T - 1:
        if is_min[t]:
            run_end = t
            while run_end + 1 < T - 1 and is_min[run_end + 1] and speed[run_end + 1] == speed[t]:
                run_end += 1
            cuts.append((t + run_end) // 2)
            t = run_end + 1
        else:
            t += 1
    return cuts


def _enforce_min_length(cuts: list[int], speed: np.ndarray, T: int, min_len: int) -> list[int]:
    kept: list[int] = []
    for c in cuts:
        prev = kept[-1] if kept else 0
        if c - prev >= min_len:
            kept.append(c)
        elif (
            kept
            and speed[c] < speed[kept[-1]]
            and c - (kept[-2] if len(kept) > 1 else 0) >= min_len
        ):
            kept[-1] = c
    while kept and T - kept[-1] < min_len:
        kept.pop()
    return kept


def segment_wrist_trajectory(positions: object, config: SegmentationConfig) -> SegmentationResult:
    """Split a ``(T, 3)`` wrist trajectory (metres) into atomic segments."""
    p = check_points(positions, "positions", min_frames=2)
    T = p.shape[0]
    smooth = gaussian_smooth(p, config.sigma_s * config.fps)
    speed = np.linalg.norm(np.gradient(smooth, axis=0), axis=1) * config.fps
    cuts = _enforce_min_length(
        speed_minima(speed, config.half_window), speed, T, config.min_segment_frames
    )
    steps = np.linalg.norm(np.diff(smooth, axis=0), axis=1)
    bounds = [0, *cuts, T]
    segments = []
    for s, e in itertools.pairwise(bounds):
        duration = (e - s) / config.fps
        path = float(steps[s : max(s, e - 1)].sum())
        segments.append(Segment(s, e, duration, path, path / duration))
    return SegmentationResult(tuple(segments), tuple(cuts), smooth, speed)
