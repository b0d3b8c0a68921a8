"""Streaming statistics (exact against numpy), dataset mixing by sampling probability (VITRA
A.2.3) and the numpy normaliser used at inference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from human_video_policy.data.normalization import (
    FeatureStats,
    Normalizer,
    RunningStats,
    load_stats,
    mix_stats,
    write_stats,
)
from human_video_policy.errors import ConfigError, InputError


def test_streaming_stats_equal_numpy_on_the_whole_array() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((1000, 5)) * [1, 10, 0.1, 3, 100] + [0, 5, -2, 1e4, 7]
    acc = RunningStats((5,))
    for part in np.array_split(data, [1, 7, 300, 301, 650]):
        acc.update(part)
    other = RunningStats((5,))
    other.update(data[:10])
    merged = RunningStats((5,))
    merged.update(data[10:])
    merged.merge(other)
    for s in (acc.result(), merged.result()):
        np.testing.assert_allclose(s.mean, data.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(s.std, data.std(axis=0), rtol=1e-10)
        np.testing.assert_array_equal(s.min, data.min(axis=0))
        np.testing.assert_array_equal(s.max, data.max(axis=0))
        assert s.count == 1000


def test_stats_refuse_nan_and_wrong_shapes() -> None:
    acc = RunningStats((2,))
    with pytest.raises(InputError, match="action: holds NaN"):
        acc.update(np.array([[0.0, np.nan]]), name="action")
    with pytest.raises(InputError, match=r"rows of shape \(3,\)"):
        acc.update(np.zeros((4, 3)))
    with pytest.raises(InputError, match="no rows"):
        acc.result()


def test_mixing_equals_the_moments_of_the_sampled_mixture() -> None:
    rng = np.random.default_rng(1)
    a = np.tile(rng.normal(0.0, 1.0, (1000, 3)), (4, 1))  # 4000 rows, stats of its 1000
    b = rng.normal(5.0, 2.0, (1000, 3))
    sa, sb = RunningStats((3,)), RunningStats((3,))
    sa.update(a)
    sb.update(b)
    # sampling dataset b with probability 0.75 (despite being 4x smaller)
    mixed = mix_stats([{"x": sa.result()}, {"x": sb.result()}], [0.25, 0.75])["x"]
    # the same mixture drawn explicitly: 1 row of a per 3 rows of b
    sample = np.concatenate([a[:1000], b, b, b])
    np.testing.assert_allclose(mixed.mean, sample.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(mixed.std, sample.std(axis=0), rtol=1e-9)
    np.testing.assert_allclose(mixed.mean, 0.25 * a.mean(0) + 0.75 * b.mean(0))
    assert np.all(mixed.min == np.minimum(a.min(0), b.min(0)))
    with pytest.raises(InputError, match="one weight per source"):
        mix_stats([{"x": sa.result()}], [0.5, 0.5])
    with pytest.raises(ConfigError, match=r"weights\[1\]=0.0"):
        mix_stats([{"x": sa.result()}, {"x": sb.result()}], [1.0, 0.0])
    short = RunningStats((2,))
    short.update(np.zeros((3, 2)))
    with pytest.raises(InputError, match="different shapes"):
        mix_stats([{"x": sa.result()}, {"x": short.result()}], [1, 1])


def test_stats_file_round_trip_and_normaliser(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(3.0, 2.0, (500, 4))
    data[:, 3] = 1.5  # a constant (masked) dimension
    acc = RunningStats((4,))
    acc.update(data)
    write_stats(tmp_path / "stats.json", {"action": acc.result()})
    stats = load_stats(tmp_path / "stats.json")["action"]
    norm = Normalizer(stats)
    z = norm.normalize(data)
    np.testing.assert_allclose(z[:, :3].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(z[:, :3].std(0), 1, atol=1e-5)
    assert np.all(z[:, 3] == 0)  # std 0 -> eps divisor, no inf
    np.testing.assert_allclose(norm.unnormalize(z), data, rtol=1e-5, atol=1e-5)
    mm = Normalizer(stats, mode="min_max").normalize(data)
    assert mm[:, :3].min() >= -1 - 1e-6 and mm[:, :3].max() <= 1 + 1e-6
    with pytest.raises(InputError, match="trailing shape"):
        norm.normalize(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="mode='zscore'"):
        Normalizer(stats, mode="zscore")


def test_broken_stats_files_are_named(tmp_path: Path) -> None:
    p = tmp_path / "stats.json"
    with pytest.raises(InputError, match="does not exist"):
        load_stats(p)
    p.write_text("{oops")
    with pytest.raises(InputError, match="not valid JSON"):
        load_stats(p)
    p.write_text(json.dumps({"action": {"mean": [0.0], "std": [1.0], "min": [0.0]}}))
    with pytest.raises(InputError, match=r"stats for 'action' lack \['max'\]"):
        load_stats(p)
    p.write_text(json.dumps({"action": {"mean": [0.0], "std": [-1.0], "min": [0], "max": [1]}}))
    with pytest.raises(InputError, match="std < 0"):
        load_stats(p)
    good = FeatureStats(np.zeros(1), np.ones(1), np.zeros(1), np.ones(1), 3)
    assert FeatureStats.from_json("a", good.to_json()).count == 3
