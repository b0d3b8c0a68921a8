"""Per-dimension statistics and mean/std normalisation, shared by training and inference.

Why one module: the statistics a model was trained with must be the ones the runtime applies,
so both read them from the dataset's ``meta/stats.json`` through :func:`load_stats` and apply
them with :class:`Normalizer` (numpy only: the inference path never imports torch).

* :class:`RunningStats` accumulates count/mean/M2/min/max in one pass over batches of rows
  (Welford's update inside a batch, Chan et al.'s pairwise merge between batches), so a dataset
  larger than memory gets exact statistics while it is written.
* :func:`mix_stats` combines the statistics of several datasets into one normalisation, each
  weighted by its frame sampling probability (VITRA, appendix A.2.3): the moments of the mixture
  distribution, ``mean = sum w_i mean_i`` and ``var = sum w_i (var_i + mean_i^2) - mean^2``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.validation import check_choice, check_positive

STAT_NAMES = ("min", "max", "mean", "std", "count")
_QUANTILE_KEY = re.compile(r"^q\d\d$")


@dataclass(frozen=True)
class FeatureStats:
    """Statistics of one feature, per dimension.

    Fields:
        mean, std, min, max: arrays of the statistics' shape (LeRobot's: the feature's last
            axis for numeric features, (3, 1, 1) for cameras).
        count: the number of frames the statistics saw (sampled frames for cameras).
        quantiles: ``q01``, ``q10``, ``q50``, ``q90``, ``q99`` (LeRobot's keys) -> arrays of the
            same shape; empty when the source had none (older stats files).
    """

    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    count: int
    quantiles: Mapping[str, np.ndarray] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The LeRobot stats.json entry: lists per statistic, ``count`` as a one-element list."""
        out: dict[str, Any] = {
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "count": [int(self.count)],
        }
        for key in sorted(self.quantiles):
            out[key] = np.asarray(self.quantiles[key]).tolist()
        return out

    @classmethod
    def from_json(cls, name: str, entry: Mapping[str, Any]) -> FeatureStats:
        missing = [k for k in ("mean", "std", "min", "max") if k not in entry]
        if missing:
            raise InputError(f"stats for {name!r} lack {missing}: got keys {sorted(entry)}")
        arrays = {k: np.asarray(entry[k], dtype=np.float64) for k in ("mean", "std", "min", "max")}
        shapes = {k: v.shape for k, v in arrays.items()}
        if len(set(shapes.values())) != 1:
            raise InputError(f"stats for {name!r} have mismatched shapes {shapes}")
        for k, v in arrays.items():
            if not np.all(np.isfinite(v)):
                raise InputError(f"stats for {name!r}: {k} holds NaN or inf")
        if np.any(arrays["std"] < 0):
            raise InputError(f"stats for {name!r}: std < 0")
        count_raw = entry.get("count", [0])
        count = int(np.asarray(count_raw).reshape(-1)[0]) if np.size(count_raw) else 0
        quantiles: dict[str, np.ndarray] = {}
        for key in sorted(k for k in entry if _QUANTILE_KEY.match(str(k))):
            q = np.asarray(entry[key], dtype=np.float64)
            if q.shape != arrays["mean"].shape or not np.all(np.isfinite(q)):
                raise InputError(
                    f"stats for {name!r}: {key} has shape {q.shape} or non-finite values; "
                    f"expected finite values of shape {arrays['mean'].shape}"
                )
            quantiles[key] = q
        return cls(count=count, quantiles=quantiles, **arrays)


class RunningStats:
    """Streaming count, mean, variance, min and max of rows of shape ``shape``.

    ``update(batch)`` takes an array ``(N, *shape)``; NaN rows are refused (the caller decides
    what a NaN means; statistics must not silently absorb it).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)
        self.count = 0
        self.mean = np.zeros(self.shape)
        self.m2 = np.zeros(self.shape)
        self.min = np.full(self.shape, np.inf)
        self.max = np.full(self.shape, -np.inf)

    def update(self, batch: np.ndarray, name: str = "batch") -> None:
        x = np.asarray(batch, dtype=np.float64)
        if x.shape[1:] != self.shape:
            raise InputError(f"{name}: rows of shape {x.shape[1:]} given, expected {self.shape}")
        if x.shape[0] == 0:
            return
        if not np.all(np.isfinite(x)):
            raise InputError(f"{name}: holds NaN or inf; statistics refuse it")
        n_b = x.shape[0]
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        self._merge(n_b, mean_b, m2_b, x.min(axis=0), x.max(axis=0))

    def merge(self, other: RunningStats) -> None:
        """Add another accumulator's rows (Chan et al.'s parallel update)."""
        if other.shape != self.shape:
            raise InputError(f"cannot merge stats of shape {other.shape} into {self.shape}")
        if other.count:
            self._merge(other.count, other.mean, other.m2, other.min, other.max)

    def _merge(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray, lo, hi) -> None:
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (n_a * n_b / n)
        self.min = np.minimum(self.min, lo)
        self.max = np.maximum(self.max, hi)
        self.count = n

    def result(self) -> FeatureStats:
        """Population statistics (``std = sqrt(M2 / count)``, as LeRobot computes them)."""
        if self.count == 0:
            raise InputError("no rows were given: statistics of an empty feature are undefined")
        return FeatureStats(
            mean=self.mean.copy(),
            std=np.sqrt(np.maximum(self.m2 / self.count, 0.0)),
            min=self.min.copy(),
            max=self.max.copy(),
            count=self.count,
        )


def stats_to_json(stats: Mapping[str, FeatureStats]) -> dict[str, Any]:
    return {name: s.to_json() for name, s in stats.items()}


def write_stats(path: str | Path, stats: Mapping[str, FeatureStats]) -> None:
    Path(path).write_text(json.dumps(stats_to_json(stats), indent=4) + "\n", encoding="utf-8")


def load_stats(path: str | Path) -> dict[str, FeatureStats]:
    """Read a LeRobot ``meta/stats.json`` (or a dataset root holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "meta" / "stats.json"
    if not p.is_file():
        raise InputError(f"statistics file {p} does not exist")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"statistics file {p} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InputError(f"statistics file {p}: top level must be an object of features")
    return {name: FeatureStats.from_json(name, entry) for name, entry in raw.items()}


def mix_stats(
    sources: Sequence[Mapping[str, FeatureStats]], weights: Sequence[float]
) -> dict[str, FeatureStats]:
    """One set of statistics for a mixture of datasets sampled with probabilities ``weights``.

    Weights are normalised to sum 1; only features present in every source are mixed. A
    feature whose shape differs between sources is an error (map the datasets into one action
    space first, e.g. with :mod:`human_video_policy.data.embodiment`).
    """
    if len(sources) != len(weights) or not sources:
        raise InputError(
            f"mix_stats needs one weight per source: {len(sources)} sources, {len(weights)} weights"
        )
    w = np.array([check_positive(f"weights[{i}]", float(x)) for i, x in enumerate(weights)])
    w = w / w.sum()
    common = set(sources[0])
    for s in sources[1:]:
        common &= set(s)
    out: dict[str, FeatureStats] = {}
    for name in sorted(common):
        items = [s[name] for s in sources]
        shapes = {it.mean.shape for it in items}
        if len(shapes) != 1:
            raise InputError(f"feature {name!r} has different shapes across datasets: {shapes}")
        mean = sum(wi * it.mean for wi, it in zip(w, items, strict=True))
        second = sum(wi * (it.std**2 + it.mean**2) for wi, it in zip(w, items, strict=True))
        out[name] = FeatureStats(
            mean=np.asarray(mean),
            std=np.sqrt(np.maximum(np.asarray(second) - mean**2, 0.0)),
            min=np.min([it.min for it in items], axis=0),
            max=np.max([it.max for it in items], axis=0),
            count=sum(it.count for it in items),
        )
    return out


NORMALIZATION_MODES = ("mean_std", "min_max")


@dataclass(frozen=True)
class Normalizer:
    """Normalise one feature with fixed statistics (numpy; usable in the runtime).

    Fields:
        stats: the feature's statistics.
        mode: ``"mean_std"`` (VITRA: zero mean, unit variance per dimension) or ``"min_max"``
            (to [-1, 1]).
        eps: floor of the divisor, so a constant dimension (std 0, e.g. a masked joint) maps to
            0 instead of inf.
    """

    stats: FeatureStats
    mode: str = "mean_std"
    eps: float = 1e-8

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, NORMALIZATION_MODES)
        check_positive("eps", self.eps)
        if not math.isfinite(self.eps):
            raise ConfigError(f"eps={self.eps!r} is invalid: must be finite")

    def _scale_offset(self) -> tuple[np.ndarray, np.ndarray]:
        if self.mode == "mean_std":
            return np.maximum(self.stats.std, self.eps), self.stats.mean
        half = np.maximum((self.stats.max - self.stats.min) / 2.0, self.eps)
        return half, (self.stats.max + self.stats.min) / 2.0

    def normalize(self, x: np.ndarray) -> np.ndarray:
        scale, offset = self._scale_offset()
        a = np.asarray(x, dtype=np.float64)
        if a.shape[-scale.ndim :] != scale.shape:
            raise InputError(f"normalize: trailing shape {a.shape} does not end in {scale.shape}")
        return ((a - offset) / scale).astype(np.float32)

    def unnormalize(self, y: np.ndarray) -> np.ndarray:
        scale, offset = self._scale_offset()
        a = np.asarray(y, dtype=np.float64)
        if a.shape[-scale.ndim :] != scale.shape:
            raise InputError(f"unnormalize: trailing shape {a.shape} does not end in {scale.shape}")
        return (a * scale + offset).astype(np.float32)


__all__ = [
    "NORMALIZATION_MODES",
    "STAT_NAMES",
    "FeatureStats",
    "Normalizer",
    "RunningStats",
    "load_stats",
    "mix_stats",
    "stats_to_json",
    "write_stats",
]
