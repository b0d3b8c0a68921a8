"""ChunkExecutor: interpolation, execute-k-of-N switching and every safety clamp."""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.robots.joint_limits import JointLimits
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.chunk_executor import ChunkExecutor, ChunkExecutorConfig

LIMITS = JointLimits(
    ("j0", "j1"), np.array([-1.0, -2.0]), np.array([1.0, 2.0]), np.array([2.0, 2.0])
)


def chunk(rows, stamp, names=("j0", "j1"), dt=0.1):
    return ActionChunk(np.asarray(rows, dtype=np.float32), dt, names, "test", stamp)


def executor(**kwargs):
    cfg = ChunkExecutorConfig(**{"control_rate_hz": 100.0, "max_velocity_scale": 1.0, **kwargs})
    return ChunkExecutor(cfg, LIMITS)


def test_no_command_before_first_chunk():
    ex = executor()
    assert ex.command(0.0, np.zeros(2)) is None


def test_interpolates_rows_in_time():
    ex = executor()
    assert ex.submit(chunk([[0.1, 0.0], [0.2, 0.0]], stamp=0.0), now=0.0)
    # the first command is one tick (0.01 s) along the line from the arm (at 0.04 s, a tick
    # before) to row 0 (0.1 at 0.1 s): no tick repeats the arm's position at a handover
    assert ex.command(0.05, np.zeros(2))[0] == pytest.approx(0.1 * 0.01 / 0.06)
    assert ex.command(0.1, np.zeros(2))[0] == pytest.approx(0.1 * 0.01 / 0.06 + 0.02)  # bound
    ex2 = executor(max_velocity_scale=1.0, control_rate_hz=1.0)  # loose velocity bound
    ex2.submit(chunk([[0.1, 0.0], [0.2, 0.0]], stamp=0.0), now=0.0)
    assert ex2.command(0.0, np.zeros(2))[0] == pytest.approx(0.1 / 1.1)  # from (-1 s, 0.0)
    assert ex2.command(0.15, np.zeros(2))[0] == pytest.approx(0.15)
    assert ex2.command(5.0, np.zeros(2))[0] == pytest.approx(0.2)  # holds the last row


def test_position_limits_clamp_commands():
    ex = executor(control_rate_hz=0.01)  # velocity bound irrelevant here
    ex.submit(chunk([[5.0, -9.0]] * 3, stamp=0.0), now=0.0)
    cmd = ex.command(0.3, np.zeros(2))
    np.testing.assert_allclose(cmd, [1.0, -2.0])
    assert ex.counters.position_clamps == 1


def test_velocity_bound_limits_each_tick():
    ex = executor()  # 2 rad/s at 100 Hz -> 0.02 rad per tick
    ex.submit(chunk([[1.0, 1.0]], stamp=0.0), now=0.0)
    q = np.zeros(2)
    for k in range(1, 20):
        new = ex.command(0.1 + 0.01 * k, q)
        assert np.all(np.abs(new - q) <= 0.02 + 1e-9)
        q = new
    assert ex.counters.velocity_clamps > 0


def test_stale_and_out_of_order_chunks_are_refused():
    ex = executor(max_chunk_age_s=0.3)
    assert not ex.submit(chunk([[0, 0]], stamp=1.0), now=1.5)
    assert ex.counters.chunks_refused_stale == 1
    assert ex.submit(chunk([[0, 0]], stamp=2.0), now=2.1)
    assert not ex.submit(chunk([[0, 0]], stamp=1.9), now=2.1)
    assert ex.counters.chunks_refused_stale == 2


def test_execute_k_of_n_switching():
    ex = executor(execute_steps=3, control_rate_hz=0.01)
    ex.submit(chunk([[0.1, 0], [0.2, 0], [0.3, 0], [0.4, 0]], stamp=0.0), now=0.0)
    ex.command(0.05, np.zeros(2))
    ex.submit(chunk([[-0.5, 0]] * 4, stamp=0.1), now=0.15)
    assert ex.command(0.2, np.zeros(2))[0] == pytest.approx(0.2)  # still the first chunk
    assert ex.command(0.31, np.zeros(2))[0] == pytest.approx(-0.5)  # switched after 3 rows


def test_names_are_reordered_and_missing_names_refused():
    ex = executor(control_rate_hz=0.01)
    ex.submit(chunk([[0.5, 0.25]], stamp=0.0, names=("j1", "j0")), now=0.0)
    np.testing.assert_allclose(ex.command(0.2, np.zeros(2)), [0.25, 0.5])
    with pytest.raises(InputError, match=r"lacks joints \['j1'\]"):
        ex.submit(chunk([[0.5]], stamp=1.0, names=("j0",)), now=1.0)
    assert ex.counters.chunks_refused_invalid == 1


def test_nan_state_never_reaches_the_command():
    ex = executor()
    ex.submit(chunk([[0.1, 0.1]], stamp=0.0), now=0.0)
    with pytest.raises(InputError, match="NaN"):  # nothing to hold yet: refuse
        ex.command(0.01, np.array([np.nan, 0.0]))
    ex.command(0.02, np.zeros(2))
    cmd = ex.command(0.03, np.array([np.nan, np.inf]))
    assert np.all(np.isfinite(cmd)) and ex.counters.invalid_states == 2


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="execute_steps=0"):
        ChunkExecutorConfig(execute_steps=0)
    with pytest.raises(ConfigError, match="max_velocity_scale"):
        ChunkExecutorConfig(max_velocity_scale=1.5)
    with pytest.raises(ConfigError, match="control_rate_hz"):
        ChunkExecutorConfig(control_rate_hz=float("nan"))
