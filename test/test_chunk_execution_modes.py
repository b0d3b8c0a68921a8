"""Chunk handover: the executor's modes (k of N, temporal ensembling, real-time chunking), the
smoothness metrics that compare them, and RTC's guided DDIM on the committed DiT (ONNX
Runtime, no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.resources import default_policy_path
from human_video_policy.robots.joint_limits import JointLimits
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.chunk_executor import ChunkExecutor, ChunkExecutorConfig
from human_video_policy.runtime.rtc import (
    RealTimeChunker,
    chunk_prefix,
    guided_x0_eps,
    soft_mask,
)
from human_video_policy.runtime.smoothness import command_smoothness

NAMES = ("a", "b")
LIMITS = JointLimits(NAMES, np.full(2, -10.0), np.full(2, 10.0), np.full(2, 50.0))


def chunk(values, stamp: float, dt: float = 0.1) -> ActionChunk:
    rows = np.asarray(values, dtype=np.float32)
    if rows.ndim == 1:
        rows = np.stack([rows, rows], axis=1)
    return ActionChunk(rows, dt, NAMES, "test", stamp)


def play(mode: str, chunks: list[tuple[float, ActionChunk]], until: float, **cfg):
    """Commands at 50 Hz while chunks arrive at their given times; (times, commands, starts)."""
    ex = ChunkExecutor(ChunkExecutorConfig(mode=mode, control_rate_hz=50.0, **cfg), LIMITS)
    out_t, out_q, starts = [], [], []
    queue = sorted(chunks, key=lambda c: c[0])
    for k in range(round(until * 50)):
        now = k / 50.0
        while queue and queue[0][0] <= now + 1e-9:
            ex.submit(queue.pop(0)[1], now)
        q = ex.command(now, np.zeros(2))
        if q is not None:
            out_t.append(now)
            out_q.append(q)
            starts.append(ex.last_command_started_chunk)
    return np.array(out_t), np.array(out_q), np.flatnonzero(starts)


def test_modes_hand_over_where_they_say() -> None:
    # chunk 1: a ramp 0.1 .. 1.0; chunk 2 (observed at 0.2 s, arrives 0.25 s): offset by +0.5
    first = chunk(np.linspace(0.1, 1.0, 10), 0.0)
    second = chunk(np.linspace(0.3, 1.2, 10) + 0.5, 0.2)
    arrivals = [(0.0, first), (0.25, second)]
    t, q, starts = play("k_of_n", arrivals, 1.0, execute_steps=4)
    assert t[starts[1]] == pytest.approx(0.4)  # 4 rows of 0.1 s after the first observation
    t, q, starts = play("rtc", arrivals, 1.0)
    assert t[starts[1]] == pytest.approx(0.26)  # the first tick after it arrived
    t, q, starts = play("ensemble", arrivals, 1.0, ensemble_decay=0.0)
    # plain mean of the two where both cover the time: half the offset
    i = int(np.argmin(np.abs(t - 0.6)))
    assert q[i, 0] == pytest.approx(0.6 + 0.25, abs=0.02)
    with pytest.raises(ConfigError, match="mode"):
        ChunkExecutorConfig(mode="fastest")
    with pytest.raises(ConfigError, match="ensemble_decay"):
        ChunkExecutorConfig(mode="ensemble", ensemble_decay=-1.0)


def test_smoothness_sees_the_jump_at_a_boundary_and_not_a_steady_motion() -> None:
    t = np.arange(100) * 0.02
    ramp = np.stack([t, -t], axis=1)
    steady = command_smoothness(t, ramp, [25, 50, 75], 0.02)
    assert steady.boundary_jump == pytest.approx(0.0, abs=1e-9)
    assert steady.boundary_step == pytest.approx(steady.within_step)
    assert steady.deadline_misses == 0 and steady.period_median_ms == pytest.approx(20.0)
    jumped = ramp.copy()
    jumped[50:, 0] += 0.2  # a 0.2 rad jump where the chunk changes
    report = command_smoothness(t, jumped, [25, 50, 75], 0.02, latencies_ms=[30.0, 50.0])
    assert report.boundaries == 3
    assert report.boundary_jump == pytest.approx(0.2 / 3, abs=1e-9)  # one of three boundaries
    assert report.boundary_step > report.within_step
    assert report.jerk_rms > steady.jerk_rms
    assert report.latency_median_ms == pytest.approx(40.0)
    late = t.copy()
    late[60:] += 0.05  # one period of 70 ms
    assert command_smoothness(late, ramp, [], 0.02).deadline_misses == 1
    for bad in (np.full((10, 2), np.nan), np.zeros((3, 2))):
        with pytest.raises(InputError):
            command_smoothness(np.arange(len(bad)) * 0.02, bad, [], 0.02)
    with pytest.raises(InputError, match="increase"):
        command_smoothness(np.zeros(10), np.zeros((10, 2)), [], 0.02)


def test_the_soft_mask_and_the_prefix_follow_black_et_al() -> None:
    w = soft_mask(10, 2, 1)
    assert w[:2].tolist() == [1.0, 1.0] and w[9] == 0.0
    assert np.all(np.diff(w[2:]) <= 0) and 0 < w[2] < 1
    previous = chunk(np.linspace(0.1, 1.0, 10), 0.0)
    prefix = chunk_prefix(previous, 0.3, 10, 0.1, delay_s=0.15, execute_rows=1)
    assert prefix is not None and prefix.delay_rows == 2
    # the new chunk's row 0 is at 0.4 s: the previous chunk's row 3 (0.4)
    assert prefix.actions[0, 0] == pytest.approx(0.4)
    assert prefix.weights[7:].tolist() == [0.0, 0.0, 0.0]  # past the previous chunk's end
    assert chunk_prefix(previous, 1.2, 10, 0.1, 0.0, 1) is None  # it no longer reaches
    # a shorter guidance window: frozen rows as before, the decay over 2 rows, then free
    short = soft_mask(10, 2, 1, guidance_rows=2)
    assert short[:2].tolist() == [1.0, 1.0] and 0 < short[3] < short[2] < 1
    assert short[4:].tolist() == [0.0] * 6
    assert soft_mask(10, 2, 1, guidance_rows=0).tolist() == [1.0, 1.0] + [0.0] * 8
    assert np.allclose(soft_mask(10, 2, 1, guidance_rows=10), w)  # the whole overlap


def test_the_guided_noise_implies_the_wanted_clean_chunk() -> None:
    rng = np.random.default_rng(0)
    x, eps, target = (rng.standard_normal((1, 10, 2)) for _ in range(3))
    weights = soft_mask(10, 3, 1)
    abar = 0.6
    guided = guided_x0_eps(x, eps, target, weights, abar)
    x0 = (x - np.sqrt(1 - abar) * guided) / np.sqrt(abar)
    x0_free = (x - np.sqrt(1 - abar) * eps) / np.sqrt(abar)
    want = weights[None, :, None] * target + (1 - weights[None, :, None]) * x0_free
    assert np.allclose(x0, want, atol=1e-5)


@pytest.fixture(scope="module")
def dit():
    from human_video_policy.runtime.load_policy import load_policy

    return load_policy(str(default_policy_path()))


def test_rtc_guidance_freezes_the_delay_rows_of_the_default_dit(dit) -> None:
    """The committed DiT (DDIM + CFG on ONNX Runtime): with a prefix, the rows executing
    during the delay come out equal to the previous chunk's; without one, unchanged."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    state = np.array([0.0, -0.4, 0.4, 0.0, 1.57, 0.0, 0.03, -0.03], dtype=np.float32)
    meta = dit.metadata
    noise = rng.standard_normal((1, meta.horizon, len(meta.action_names))).astype(np.float32)
    free = dit.predict(image, state, noise=noise)
    previous = ActionChunk(free + 0.05, meta.dt, meta.action_names, meta.action_space, 0.0)
    prefix = chunk_prefix(previous, 0.1, meta.horizon, meta.dt, 0.15, 1)
    guided = dit.predict(image, state, noise=noise, prefix=prefix)
    rows = prefix.delay_rows
    assert np.allclose(guided[:rows], prefix.actions[:rows], atol=1e-4)
    assert not np.allclose(free[:rows], prefix.actions[:rows], atol=1e-3)
    zero = type(prefix)(prefix.actions, np.zeros_like(prefix.weights), 0)
    assert np.allclose(dit.predict(image, state, noise=noise, prefix=zero), free, atol=1e-5)
    with pytest.raises(InputError, match="RTC prefix"):
        dit.predict(image, state, prefix=type(prefix)(prefix.actions[:3], prefix.weights, 0))


def test_the_real_time_chunker_continues_its_previous_chunk(dit) -> None:
    rtc = RealTimeChunker(dit, execute_rows=1)
    assert rtc.guided and rtc.expected_delay_s == 0.0
    image = np.full((128, 128, 3), 90, dtype=np.uint8)
    state = np.array([0.0, -0.4, 0.4, 0.0, 1.57, 0.0, 0.03, -0.03], dtype=np.float32)
    first = rtc.predict_chunk(image, state, 0.0)
    for latency in (1.5, 0.12, 0.13, 0.11):  # a slow first call after warm-up: the median
        rtc.record_latency(latency)  # keeps the delay estimate near the usual latency
    assert rtc.expected_delay_s == pytest.approx(0.125)
    second = rtc.predict_chunk(image, state, 0.1)
    assert rtc.last_prefix is not None and rtc.last_prefix.delay_rows == 2
    # its first two rows are the first chunk's rows 1 and 2 (same times)
    assert np.allclose(second.actions[:2], first.actions[1:3], atol=1e-4)
    rtc.reset()
    rtc.predict_chunk(image, state, 0.2)
    assert rtc.last_prefix is None
    with pytest.raises(InputError):
        rtc.record_latency(float("nan"))


def test_a_policy_without_guidance_is_blended() -> None:
    from human_video_policy.resources import resource_path
    from human_video_policy.runtime.load_policy import load_policy

    mlp = load_policy(str(resource_path("assets", "policies", "widowx_reach.onnx")))
    rtc = RealTimeChunker(mlp)
    assert not rtc.guided
    image = np.full((128, 128, 3), 90, dtype=np.uint8)
    state = np.array([0.0, -0.4, 0.4, 0.0, 1.57, 0.0, 0.03, -0.03], dtype=np.float32)
    first = rtc.predict_chunk(image, state, 0.0)
    rtc.record_latency(0.15)
    second = rtc.predict_chunk(image, state + 0.05, 0.1)
    assert np.allclose(second.actions[:2], first.actions[1:3], atol=1e-5)
