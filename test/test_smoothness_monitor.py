"""SmoothnessMonitor (runtime/smoothness.py): the rolling window of a live command stream gives
the numbers command_smoothness gives on the same commands, with handover marks that arrive
before or after their command, a bounded window, paused-clock duplicates dropped and bad
commands refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from human_video_policy.errors import InputError
from human_video_policy.runtime.smoothness import SmoothnessMonitor, command_smoothness

PERIOD_NS = 20_000_000  # 50 Hz
START_NS = 1_700_000_000 * 1_000_000_000  # an epoch-like stamp: large numbers


def _stream(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stamps (ns, jittered), commands (n, 3) of a smooth motion with a 0.1 rad jump at every
    5th command, and those indices (the chunk starts)."""
    rng = np.random.default_rng(seed)
    stamps = START_NS + np.arange(n) * PERIOD_NS + rng.integers(-2_000_000, 2_000_000, n)
    stamps[n // 2 :] += 25_000_000  # one late command: a deadline miss
    t = (stamps - START_NS) * 1e-9
    q = np.stack([np.sin(t), 0.5 * t, np.cos(2 * t)], axis=1)
    starts = np.arange(5, n, 5)
    for i in starts:
        q[i:, 0] += 0.1
    return stamps, q, starts


def _assert_same(report, expected) -> None:  # type: ignore[no-untyped-def]
    got, want = dataclasses.asdict(report), dataclasses.asdict(expected)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float) and np.isnan(value):
            assert np.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def _feed(monitor: SmoothnessMonitor, stamps, q, starts) -> None:  # type: ignore[no-untyped-def]
    """Chunk starts three ways: flagged on the command, marked before it, marked after it."""
    for i, (stamp, row) in enumerate(zip(stamps, q, strict=True)):
        how = (i // 5) % 3 if i in set(starts.tolist()) else None
        if how == 1:
            monitor.mark_chunk_start(int(stamp))
        monitor.add_command(int(stamp), row, starts_chunk=how == 0)
        if how == 2:
            monitor.mark_chunk_start(int(stamp))


@pytest.mark.parametrize("nominal", [0.02, None])
def test_the_monitor_gives_the_numbers_of_command_smoothness(nominal: float | None) -> None:
    stamps, q, starts = _stream(60)
    monitor = SmoothnessMonitor(window=100, nominal_period_s=nominal)
    _feed(monitor, stamps, q, starts)
    latencies = [31.0, 45.0, float("nan"), 38.0]
    for latency in latencies:
        monitor.add_latency(latency)
    seconds = (stamps - stamps[0]) * 1e-9  # epoch seconds in float64 lose ~0.2 us
    period = nominal if nominal is not None else float(np.median(np.diff(seconds)))
    expected = command_smoothness(seconds, q, starts, period, latencies)
    report = monitor.report()
    assert report is not None
    _assert_same(report, expected)
    assert report.boundaries == len(starts) and report.deadline_misses >= 1
    assert report.boundary_jump == pytest.approx(0.1, abs=0.01)  # the jump, not the motion
    assert report.within_step < 0.05 and report.latency_median_ms == pytest.approx(38.0)


def test_the_window_keeps_the_newest_commands_and_bounded_marks() -> None:
    stamps, q, starts = _stream(200, seed=1)
    monitor = SmoothnessMonitor(window=40, nominal_period_s=0.02)
    _feed(monitor, stamps, q, starts)
    for k in range(1, 1001):  # marks of commands that never arrive: kept bounded, and
        monitor.mark_chunk_start(int(stamps[-1]) + k * PERIOD_NS)  # the window's marks kept
    assert len(monitor) == 40 and len(monitor._marks) <= 40
    for _ in range(1000):
        monitor.add_latency(10.0)
    monitor.add_latency(90.0)
    assert len(monitor._latencies) == 40
    last = slice(160, 200)
    window_starts = [i - 160 for i in starts if i >= 160]
    expected = command_smoothness(
        (stamps[last] - stamps[160]) * 1e-9, q[last], window_starts, 0.02, [10.0] * 39 + [90.0]
    )
    _assert_same(monitor.report(), expected)
    # a mark older than the window changes nothing
    monitor.mark_chunk_start(int(stamps[100]))
    assert monitor.report().boundaries == expected.boundaries


def test_a_paused_clock_keeps_the_first_command_of_a_stamp() -> None:
    stamps, q, _ = _stream(30, seed=2)
    monitor = SmoothnessMonitor(window=100, nominal_period_s=0.02)
    for i, (stamp, row) in enumerate(zip(stamps, q, strict=True)):
        monitor.add_command(int(stamp), row)
        if i in (10, 20):  # the clock stands still: a second command with the same stamp,
            monitor.add_command(int(stamp), row + 5.0, starts_chunk=True)  # starting a chunk
    monitor.add_command(int(stamps[3]), q[3])  # a stamp from the past
    assert monitor.dropped_commands == 3 and len(monitor) == 30
    report = monitor.report()
    expected = command_smoothness((stamps - stamps[0]) * 1e-9, q, [10, 20], 0.02)
    _assert_same(report, expected)  # the +5 rad duplicates never count
    assert report.boundaries == 2  # their mark marks the command kept with that stamp


def test_bad_commands_are_refused_and_reset_forgets_everything() -> None:
    monitor = SmoothnessMonitor(window=20)
    assert monitor.report() is None
    for i in range(9):
        monitor.add_command(START_NS + i * PERIOD_NS, np.full(3, 0.01 * i))
    assert monitor.report() is None  # 9 commands: not yet
    with pytest.raises(InputError, match="finite"):
        monitor.add_command(START_NS + 9 * PERIOD_NS, np.array([0.0, np.nan, 0.0]))
    with pytest.raises(InputError, match="4 joints"):
        monitor.add_command(START_NS + 9 * PERIOD_NS, np.zeros(4))
    with pytest.raises(InputError, match="1-D"):
        monitor.add_command(START_NS + 9 * PERIOD_NS, np.zeros((3, 1)))
    assert len(monitor) == 9  # nothing refused went in
    monitor.add_command(START_NS + 9 * PERIOD_NS, np.full(3, 0.09))
    report = monitor.report()
    assert report is not None and report.commands == 10
    assert report.period_median_ms == pytest.approx(20.0)  # nominal: the median period
    monitor.add_latency(float("inf"))
    assert np.isnan(monitor.report().latency_median_ms)
    monitor.reset()
    assert monitor.report() is None and len(monitor) == 0
    monitor.add_command(START_NS, np.zeros(4))  # a new joint count after reset is fine
    for bad in (5, 10.0, True):
        with pytest.raises(InputError, match="window"):
            SmoothnessMonitor(window=bad)  # type: ignore[arg-type]
    for bad_period in (0.0, -0.02, float("nan")):
        with pytest.raises(InputError, match="nominal_period_s"):
            SmoothnessMonitor(nominal_period_s=bad_period)
