"""Rolling latency / period statistics for diagnostics and benchmarks."""

from __future__ import annotations

from collections import deque

import numpy as np


class LatencyStats:
    """Keeps the last ``window`` samples (milliseconds) and reports last / median / p99."""

    def __init__(self, window: int = 200) -> None:
        if window < 1:
            raise ValueError(f"window={window} is invalid: must be >= 1")
        self._samples: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, value_ms: float) -> None:
        self._samples.append(float(value_ms))
        self.count += 1

    @property
    def last(self) -> float:
        return self._samples[-1] if self._samples else float("nan")

    def percentile(self, q: float) -> float:
        if not self._samples:
            return float("nan")
        return float(np.percentile(np.fromiter(self._samples, dtype=np.float64), q))

    @property
    def median(self) -> float:
        return self.percentile(50.0)

    @property
    def p99(self) -> float:
        return self.percentile(99.0)

    def summary(self) -> dict[str, float]:
        return {
            "last_ms": self.last,
            "median_ms": self.median,
            "p99_ms": self.p99,
            "count": float(self.count),
        }


def timing_summary(times_ms: list[float]) -> dict[str, float]:
    """Median, p99 and max (ms) and the count of a benchmark's timings (the benchmarks'
    common report; LeRobot's peer script keeps its own copy, it runs without this package)."""
    a = np.asarray(times_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no timings to summarise")
    return {
        "median_ms": float(np.median(a)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "iterations": int(a.size),
    }
