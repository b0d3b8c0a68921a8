"""Play action chunks as joint commands at the control rate, safely.

The policy publishes a chunk of ``horizon`` joint targets every 0.1 s; the controller wants one
command every 1/control_rate_hz. The executor interpolates chunks in time (row i of a chunk is
the target for ``observation_stamp + (i + 1) dt``, so a chunk that arrives late is picked up at
the row of the current time, never replayed from its start), and clamps every command to joint
position limits and to a per-tick velocity bound, so a bad model output becomes a slow,
in-limits motion instead of a jump. How chunks hand over (``mode``):

- ``k_of_n`` (default): play ``execute_steps`` rows of the active chunk, then switch to the
  newest one (receding horizon; VITRA executes 6 of 16);
- ``ensemble``: temporal ensembling (ACT, Zhao et al. 2023): the command is the weighted mean
  of every chunk that covers the current time, weights ``exp(-ensemble_decay * i)`` with i = 0
  the oldest chunk (ACT's convention: older predictions weigh more);
- ``rtc``: real-time chunking (Black et al. 2025): switch to a new chunk as soon as it arrives,
  because the policy generated it to continue the rows executed while it was computing
  (runtime/rtc.py); with a policy that does not, this is k_of_n with k = 0.

Every command that starts playing a new chunk is a chunk boundary (``last_command_started_chunk``,
``counters.chunk_switches``): what runtime/smoothness.py measures the handover at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.robots.joint_limits import JointLimits
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.validation import (
    check_choice,
    check_int_range,
    check_non_negative,
    check_positive,
    check_range,
)

# Clamps smaller than this (rad or m) are applied but not counted: a model that outputs the
# gripper limit plus float32 rounding should not flood /diagnostics.
CLAMP_REPORT_TOLERANCE = 1e-5

EXECUTION_MODES = ("k_of_n", "ensemble", "rtc")


@dataclass
class ChunkExecutorConfig:
    """Settings of :class:`ChunkExecutor`.

    Attributes:
        execute_steps: rows of a chunk played before a newer chunk may replace it (k of N).
            1 = always follow the newest chunk; horizon = play whole chunks.
        control_rate_hz: rate at which :meth:`ChunkExecutor.command` is called (Hz); sets
            the per-tick velocity bound.
        max_chunk_age_s: a chunk whose observation is older than this when it arrives is
            refused (s). 0 disables the check.
        max_velocity_scale: fraction (0, 1] of the URDF velocity limits allowed.
        mode: how chunks hand over: ``k_of_n``, ``ensemble`` or ``rtc`` (module docstring).
        ensemble_decay: ``ensemble`` weight decay per chunk, >= 0 (0 = plain mean).
    """

    execute_steps: int = 2
    control_rate_hz: float = 50.0
    max_chunk_age_s: float = 0.5
    max_velocity_scale: float = 0.5
    mode: str = "k_of_n"
    ensemble_decay: float = 0.5

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, EXECUTION_MODES)
        check_non_negative("ensemble_decay", self.ensemble_decay)
        check_int_range("execute_steps", self.execute_steps, 1)
        check_positive("control_rate_hz", self.control_rate_hz)
        check_non_negative("max_chunk_age_s", self.max_chunk_age_s)
        check_range("max_velocity_scale", self.max_velocity_scale, 1e-6, 1.0)


@dataclass
class ExecutorCounters:
    """Everything the executor accepted, refused or clamped (for /diagnostics)."""

    chunks_accepted: int = 0
    chunks_refused_stale: int = 0
    chunks_refused_invalid: int = 0
    position_clamps: int = 0
    velocity_clamps: int = 0
    invalid_states: int = 0
    commands: int = 0
    chunk_switches: int = 0


@dataclass
class _Playing:
    """A chunk being played: row times (s) and targets (limits' joint order)."""

    times: np.ndarray
    targets: np.ndarray
    stamp: float

    def target(self, now: float) -> np.ndarray:
        return np.array(
            [np.interp(now, self.times, self.targets[:, j]) for j in range(self.targets.shape[1])]
        )


class ChunkExecutor:
    """Turns ActionChunks into clamped joint position commands.

    Thread-compatible, not thread-safe: call submit/command from one thread (one executor
    callback group in a node).
    """

    def __init__(self, config: ChunkExecutorConfig, limits: JointLimits) -> None:
        self.config = config
        self.limits = limits
        self.counters = ExecutorCounters()
        self._max_step = limits.max_velocity * config.max_velocity_scale / config.control_rate_hz
        self._playing: list[_Playing] = []  # oldest first; one chunk except in ensemble mode
        self._active_stamp = -np.inf
        self._switch_after = -np.inf
        self._pending: ActionChunk | None = None
        self._last_command: np.ndarray | None = None
        self._last_command_time = -np.inf
        self.last_command_started_chunk = False

    # -- input -------------------------------------------------------------------------------
    def _columns(self, chunk: ActionChunk) -> np.ndarray:
        """Chunk actions reordered to the limits' joint order."""
        if chunk.names == self.limits.names:
            return chunk.actions
        index = {name: i for i, name in enumerate(chunk.names)}
        missing = [n for n in self.limits.names if n not in index]
        if missing:
            raise InputError(
                f"action chunk ({chunk.action_space}) lacks joints {missing}; it has "
                f"{list(chunk.names)}"
            )
        return chunk.actions[:, [index[n] for n in self.limits.names]]

    def submit(self, chunk: ActionChunk, now: float) -> bool:
        """Queue a chunk; returns False (and counts why) when it is refused.

        Non-finite actions, dt or stamp raise InputError even though ActionChunk checks them
        when built: its array stays writable, and one NaN row interpolated into a command
        would make :meth:`command` fail on every tick until the chunk is replaced.
        """
        try:
            columns = self._columns(chunk)
            if not (np.all(np.isfinite(columns)) and np.isfinite(chunk.dt) and chunk.dt > 0):
                raise InputError("action chunk contains NaN/inf actions or an invalid dt")
            if not np.isfinite(chunk.observation_stamp):
                raise InputError(f"action chunk observation_stamp={chunk.observation_stamp!r}")
        except InputError:
            self.counters.chunks_refused_invalid += 1
            raise
        age = now - chunk.observation_stamp
        if self.config.max_chunk_age_s > 0 and age > self.config.max_chunk_age_s:
            self.counters.chunks_refused_stale += 1
            return False
        newest = self._pending.observation_stamp if self._pending else self._active_stamp
        if chunk.observation_stamp <= newest:
            self.counters.chunks_refused_stale += 1
            return False
        self._pending = chunk
        self.counters.chunks_accepted += 1
        return True

    # -- output ------------------------------------------------------------------------------
    def _activate(self, chunk: ActionChunk, now: float, start: np.ndarray) -> None:
        targets = self._columns(chunk).astype(np.float64)
        times = chunk.observation_stamp + chunk.dt * np.arange(1, chunk.horizon + 1)
        # Start the interpolation from the last command, at the time it was sent: the command
        # at ``now`` is already a step toward the new chunk (starting at ``now`` itself would
        # repeat the last command, a one-tick stall at every handover). The time actually
        # measured, not one nominal period back: after a late tick the nominal guess would
        # make the first step of the new chunk too short or too long.
        since = self._last_command_time
        if not (np.isfinite(since) and since < now):
            since = now - 1.0 / self.config.control_rate_hz
        if times[0] > since:
            keep = times > since
            times = np.concatenate([[since], times[keep]])
            targets = np.vstack([start, targets[keep]])
        playing = _Playing(times, targets, chunk.observation_stamp)
        if self.config.mode == "ensemble":
            # Keep the chunks that still cover the present (oldest first) and add this one.
            self._playing = [p for p in self._playing if p.times[-1] >= now] + [playing]
        else:
            self._playing = [playing]
        self._active_stamp = chunk.observation_stamp
        steps = 0 if self.config.mode != "k_of_n" else self.config.execute_steps
        self._switch_after = chunk.observation_stamp + chunk.dt * steps
        self._pending = None
        self.last_command_started_chunk = True
        self.counters.chunk_switches += 1

    def _target(self, now: float) -> np.ndarray:
        if len(self._playing) == 1:
            return self._playing[0].target(now)
        # Ensemble: chunks whose rows have all passed no longer vote (the newest always does).
        voting = [p for p in self._playing[:-1] if p.times[-1] >= now] + [self._playing[-1]]
        self._playing = voting
        weights = np.exp(-self.config.ensemble_decay * np.arange(len(voting)))
        targets = np.stack([p.target(now) for p in voting])
        return (weights[:, None] * targets).sum(axis=0) / weights.sum()

    def command(self, now: float, measured_q: np.ndarray) -> np.ndarray | None:
        """The joint command for time ``now`` (s), or None before the first chunk arrived.

        ``measured_q`` (command-joint order) seeds the first command; a NaN state is counted
        and ignored once a command exists, and refused (InputError) before.
        """
        measured_q = np.asarray(measured_q, dtype=np.float64)
        n = len(self.limits.names)
        if measured_q.shape != (n,):
            raise InputError(f"measured_q must have shape ({n},), got {measured_q.shape}")
        if not np.all(np.isfinite(measured_q)):
            self.counters.invalid_states += 1
            if self._last_command is None:
                raise InputError(f"measured joint state contains NaN/inf: {measured_q.tolist()}")
            measured_q = self._last_command
        previous = self._last_command if self._last_command is not None else measured_q
        self.last_command_started_chunk = False
        if self._pending is not None and (not self._playing or now >= self._switch_after):
            self._activate(self._pending, now, previous)
        if not self._playing:
            return None
        target = self._target(now)
        clipped = self.limits.clip(target)
        if np.any(np.abs(clipped - target) > CLAMP_REPORT_TOLERANCE):
            self.counters.position_clamps += 1
        step = np.clip(clipped - previous, -self._max_step, self._max_step)
        if np.any(np.abs(clipped - previous) > self._max_step + 1e-12):
            self.counters.velocity_clamps += 1
        command = self.limits.clip(previous + step)
        self._last_command = command
        self._last_command_time = float(now)
        self.counters.commands += 1
        return command

    def reset(self) -> None:
        """Forget chunks and the last command (e.g. after an episode reset or e-stop)."""
        self._playing = []
        self._active_stamp = -np.inf
        self._switch_after = -np.inf
        self._pending = None
        self._last_command = None
        self._last_command_time = -np.inf
