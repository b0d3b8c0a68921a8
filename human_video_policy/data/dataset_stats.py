"""Dataset statistics computed the way LeRobot v3 computes them.

Why: ``meta/stats.json`` and the per-episode ``stats/<feature>/<stat>`` columns are read by
LeRobot's normalisers and recombined by its edit tools (``aggregate_stats`` after a split, merge
or delete). Statistics written here have the shapes, keys and values LeRobot itself gives for
the same rows (checked against datasets written by LeRobot 0.4.4 in
test/test_dataset_lerobot_interop.py):

* numeric features: reduced over the frame axis and every axis but the last, so a ``(6,)``
  action gives ``(6,)`` statistics and a ``(2, 21, 3)`` feature gives ``(3,)``; ``count`` is the
  number of frames; integer columns (``index``, ``frame_index``...) get statistics too;
* cameras: per-channel statistics of pixel values in [0, 1], shape ``(3, 1, 1)``, over a sample
  of frames (``sample_indices``) each decimated to about 150 pixels on its long side when it is
  300 or more; ``count`` is the number of sampled frames;
* quantiles ``q01 q10 q50 q90 q99`` per dimension, estimated per episode from a 5,000-bin
  histogram between the episode's min and max, and combined across episodes as LeRobot does:
  the count-weighted mean of the episodes' quantiles (an approximation of the dataset's
  quantiles, exact for min/max/mean/std, which combine by the parallel-variance formula).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from human_video_policy.data.normalization import FeatureStats
from human_video_policy.errors import InputError

QUANTILES: tuple[float, ...] = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS: tuple[str, ...] = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
HISTOGRAM_BINS = 5000
_EDGE_PAD = 1e-10  # LeRobot widens the histogram range by this much on each side
IMAGE_STATS_TARGET_SIZE = 150  # long side of a decimated frame (LeRobot's auto-downsampling)
IMAGE_STATS_MAX_SIZE = 300  # frames smaller than this on both sides are used as they are


def _histogram_quantiles(x: np.ndarray) -> dict[str, np.ndarray]:
    """Quantiles of each column of ``x`` (N, D) from a histogram of ``HISTOGRAM_BINS`` bins,
    interpolated linearly inside the bin where the cumulative count crosses ``q * N``."""
    n, dims = x.shape
    out = {key: np.empty(dims) for key in QUANTILE_KEYS}
    lo, hi = x.min(axis=0), x.max(axis=0)
    for d in range(dims):
        edges = np.linspace(lo[d] - _EDGE_PAD, hi[d] + _EDGE_PAD, HISTOGRAM_BINS + 1)
        if not np.all(np.diff(edges) > 0):  # a constant column too large for the padding
            for key in QUANTILE_KEYS:
                out[key][d] = lo[d]
            continue
        hist, _ = np.histogram(x[:, d], bins=edges)
        cum = np.cumsum(hist)
        for q, key in zip(QUANTILES, QUANTILE_KEYS, strict=True):
            target = q * n
            i = int(np.searchsorted(cum, target))
            if i == 0:
                value = edges[0]
            elif i >= len(cum):
                value = edges[-1]
            else:
                before = cum[i - 1]
                inside = cum[i] - before
                value = edges[i] + (
                    0.0 if inside == 0 else (target - before) / inside * (edges[i + 1] - edges[i])
                )
            out[key][d] = value
    return out


def _stats_of_rows(x: np.ndarray, count: int) -> FeatureStats:
    """Statistics of the rows of ``x`` (N, D); ``count`` is what LeRobot records as count."""
    if x.shape[0] == 0:
        raise InputError("no rows were given: statistics of an empty feature are undefined")
    if not np.all(np.isfinite(x)):
        raise InputError("values hold NaN or inf; statistics refuse them")
    mean = x.mean(axis=0)
    std = np.sqrt(np.maximum(((x - mean) ** 2).mean(axis=0), 0.0))
    if x.shape[0] < 2:  # LeRobot: too few rows for a histogram; quantiles are the mean
        quantiles = {key: mean.copy() for key in QUANTILE_KEYS}
    else:
        quantiles = _histogram_quantiles(x)
    return FeatureStats(
        mean=mean, std=std, min=x.min(axis=0), max=x.max(axis=0), count=count, quantiles=quantiles
    )


def episode_stats(values: np.ndarray, name: str = "feature") -> FeatureStats:
    """Statistics of one numeric feature over one episode; ``values`` is ``(T, *shape)``.

    Reduced over every axis but the last (``(T,)`` scalars give shape ``(1,)``)."""
    a = np.asarray(values)
    if a.ndim == 0 or a.shape[0] == 0:
        raise InputError(f"{name}: statistics need at least one frame, got shape {a.shape}")
    frames = a.shape[0]
    rows = a.reshape(-1, 1) if a.ndim == 1 else a.reshape(-1, a.shape[-1])
    try:
        return _stats_of_rows(rows.astype(np.float64), frames)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from exc


def sample_indices(length: int) -> np.ndarray:
    """Frames of an episode of ``length`` frames that feed the camera statistics (LeRobot's
    ``length ** 0.75`` rule, between 100 and 10,000 frames, all frames when fewer than 100)."""
    if length < 1:
        raise InputError(f"length={length} is invalid: an episode has at least one frame")
    floor = min(100, length)
    num = max(floor, min(int(length**0.75), 10_000))
    return np.unique(np.round(np.linspace(0, length - 1, num)).astype(int))


def decimate_for_stats(frame: np.ndarray) -> np.ndarray:
    """An (H, W, 3) frame decimated to about ``IMAGE_STATS_TARGET_SIZE`` on its long side (every
    k-th pixel, as LeRobot's auto-downsampling) when either side is 300 or more."""
    height, width = frame.shape[:2]
    if max(height, width) < IMAGE_STATS_MAX_SIZE:
        return frame
    step = int((width if width > height else height) / IMAGE_STATS_TARGET_SIZE)
    return frame[::step, ::step]


def image_episode_stats(frames: Sequence[np.ndarray], name: str = "camera") -> FeatureStats:
    """Per-channel statistics (shape (3, 1, 1), pixel values / 255) of the sampled frames."""
    if not len(frames):
        raise InputError(f"{name}: no frames were sampled for the camera statistics")
    stack = np.stack([np.asarray(f) for f in frames])
    if stack.ndim != 4 or stack.shape[-1] != 3:
        raise InputError(f"{name}: sampled frames have shape {stack.shape[1:]}, expected (H, W, 3)")
    s = _stats_of_rows(stack.reshape(-1, 3).astype(np.float64), len(frames))

    def chw(v: np.ndarray) -> np.ndarray:
        return (v / 255.0).reshape(3, 1, 1)

    return FeatureStats(
        mean=chw(s.mean),
        std=chw(s.std),
        min=chw(s.min),
        max=chw(s.max),
        count=s.count,
        quantiles={k: chw(v) for k, v in s.quantiles.items()},
    )


def aggregate_stats(parts: Sequence[FeatureStats], name: str = "feature") -> FeatureStats:
    """One feature's statistics over several episodes (or datasets), as LeRobot combines them:
    exact min, max, count-weighted mean and pooled variance; count-weighted mean of quantiles
    (only the quantiles every part has)."""
    if not parts:
        raise InputError(f"{name}: no statistics to aggregate")
    shapes = {p.mean.shape for p in parts}
    if len(shapes) != 1:
        raise InputError(f"{name}: statistics of different shapes cannot combine: {shapes}")
    counts = np.array([p.count for p in parts], dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise InputError(f"{name}: total count is {total:g}; nothing to aggregate")
    w = counts.reshape(-1, *([1] * parts[0].mean.ndim)) / total
    means = np.stack([p.mean for p in parts])
    mean = (w * means).sum(axis=0)
    var = (w * (np.stack([p.std for p in parts]) ** 2 + (means - mean) ** 2)).sum(axis=0)
    keys = [k for k in QUANTILE_KEYS if all(k in p.quantiles for p in parts)]
    return FeatureStats(
        mean=mean,
        std=np.sqrt(np.maximum(var, 0.0)),
        min=np.min(np.stack([p.min for p in parts]), axis=0),
        max=np.max(np.stack([p.max for p in parts]), axis=0),
        count=int(total),
        quantiles={k: (w * np.stack([p.quantiles[k] for p in parts])).sum(axis=0) for k in keys},
    )


__all__ = [
    "HISTOGRAM_BINS",
    "QUANTILES",
    "QUANTILE_KEYS",
    "aggregate_stats",
    "decimate_for_stats",
    "episode_stats",
    "image_episode_stats",
    "sample_indices",
]
