"""Real-time chunking (RTC) for diffusion policies sampled with DDIM + classifier-free guidance.

The problem: a chunk is computed from an observation at time ``t0`` and arrives ``delay``
seconds later, while the previous chunk keeps executing; a new chunk sampled independently
disagrees with the old one where they overlap, and the handover jumps. RTC (Black et al.
2025, "Real-Time Execution of Action Chunking Flow Policies") samples the new chunk so that
its rows that execute during the inference delay equal the previous chunk's, and the rest of
the overlap leans toward it with a decaying soft mask.

The published method guides a flow-matching policy with a vector-Jacobian product through
the network (Pi-GDM). The project's diffusion policies run DDIM + CFG on ONNX Runtime, with no
autograd, so the guidance here works on the predicted clean chunk instead (inpainting, as in
"replacement" samplers): at every DDIM step, with ``x_t`` the sample, ``eps`` the CFG-combined
noise prediction and ``abar_t`` the schedule,

    x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)           (what the model predicts)
    x0'    = W * y + (1 - W) * x0_hat                               (pulled toward the prefix)
    eps'   = (x_t - sqrt(abar_t) x0') / sqrt(1 - abar_t)            (the noise that implies x0')
    x_prev = DDIM(x_t, eps', t)                                     (the usual update)

where ``y`` is the previous chunk resampled at the new chunk's row times (in the model's
normalised units) and ``W`` (per row) is 1 for the rows that execute during the delay, then
decays to 0 over the overlap (Black et al.'s exponential soft mask), and 0 past the previous
chunk's end. Because DDIM recomputes x0 from eps', the update moves toward x0' exactly, and at
the last step (abar_prev = 1) the frozen rows equal the prefix. CFG is untouched: eps is the
guided prediction before the replacement. Everything is numpy around the ONNX denoiser
(runtime/diffusion_policy.py), so it runs without torch.

:class:`RealTimeChunker` wraps a policy: it keeps the last chunk it returned, estimates the
inference delay from measured latencies (the median of the recent ones, so one slow first call
after warm-up does not inflate it), builds the prefix, and asks a diffusion policy for a guided
chunk. A policy without guidance (the BC MLP) gets the same soft mask applied to its output
(a blend), so every policy can run in ``rtc`` mode. The executor switches to each new chunk as
soon as it arrives (runtime/chunk_executor.py ``mode=rtc``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.validation import check_int_range

#: Rows after the frozen delay rows over which the guidance decays (RealTimeChunker's default).
#: Black et al. decay it over the whole overlap with the previous chunk; with a new chunk every
#: row (this project's 10 Hz policies, 0.1 s rows) that anchors each chunk to the one before it
#: all the way to its end, and the policy answers new observations slowly: on the reach task
#: with 140 ms of delay, 2.50 s to the target against 2.23 s with 2 rows (2.15 s k of N), and
#: over DDS under load 8/10 episodes instead of 10/10. The rows that execute before the next
#: chunk arrives are the frozen ones, so the handover stays continuous either way.
DEFAULT_GUIDANCE_ROWS = 2


@dataclass(frozen=True)
class ChunkPrefix:
    """What the next chunk should continue (rows in the new chunk's row times).

    Attributes:
        actions: (horizon, dims) target values per row, in the action space's units.
        weights: (horizon,) in [0, 1]: 1 = frozen to ``actions``, 0 = free.
        delay_rows: rows counted as executing during the inference delay.
    """

    actions: np.ndarray
    weights: np.ndarray
    delay_rows: int


def soft_mask(
    horizon: int, delay_rows: int, execute_rows: int, guidance_rows: int | None = None
) -> np.ndarray:
    """Black et al.'s guidance weights for a chunk of ``horizon`` rows: 1 for the first
    ``delay_rows``, then ``c (e^c - 1) / (e - 1)`` with ``c`` falling linearly to 0 at row
    ``horizon - execute_rows`` (or ``delay_rows + guidance_rows`` when that comes first), 0
    after it."""
    check_int_range("horizon", horizon, 1)
    d = max(0, min(int(delay_rows), horizon))
    end = max(d, horizon - max(0, int(execute_rows)))
    if guidance_rows is not None:
        end = max(d, min(end, d + int(guidance_rows)))
    w = np.zeros(horizon, dtype=np.float64)
    w[:d] = 1.0
    span = end - d + 1
    for i in range(d, end):
        c = (end - i) / span
        w[i] = c * (math.exp(c) - 1.0) / (math.e - 1.0)
    return w


def chunk_prefix(
    previous: ActionChunk,
    observation_stamp: float,
    horizon: int,
    dt: float,
    delay_s: float,
    execute_rows: int,
    guidance_rows: int | None = None,
) -> ChunkPrefix | None:
    """The prefix a chunk for an observation at ``observation_stamp`` should continue, from the
    ``previous`` chunk (None when it does not reach the new chunk's first row);
    ``guidance_rows``: see :func:`soft_mask`."""
    times = observation_stamp + dt * np.arange(1, horizon + 1)
    prev_times = previous.observation_stamp + previous.dt * np.arange(1, previous.horizon + 1)
    covered = times <= prev_times[-1] + 1e-9
    if not covered[0]:
        return None
    acts = previous.actions.astype(np.float64)
    values = np.stack(
        [np.interp(times, prev_times, acts[:, j]) for j in range(previous.dims)], axis=1
    )
    delay_rows = math.ceil(max(0.0, delay_s) / dt - 1e-9)
    weights = soft_mask(horizon, delay_rows, execute_rows, guidance_rows) * covered
    return ChunkPrefix(values.astype(np.float32), weights, delay_rows)


def guided_x0_eps(
    sample: np.ndarray, eps: np.ndarray, target: np.ndarray, weights: np.ndarray, abar: float
) -> np.ndarray:
    """The noise prediction ``eps'`` whose clean chunk is pulled toward ``target`` by
    ``weights`` (see the module docstring); sample, eps, target: (1, horizon, dims)."""
    x = sample.astype(np.float64)
    e = eps.astype(np.float64)
    a = float(abar)
    x0 = (x - math.sqrt(1.0 - a) * e) / math.sqrt(a)
    w = np.asarray(weights, dtype=np.float64).reshape(1, -1, 1)
    x0 = w * target.astype(np.float64) + (1.0 - w) * x0
    return ((x - math.sqrt(a) * x0) / math.sqrt(max(1.0 - a, 1e-12))).astype(np.float32)


class RealTimeChunker:
    """A policy wrapped for real-time chunking (see the module docstring).

    Args:
        policy: any runtime policy (``predict_chunk``); a diffusion policy whose ``predict``
            takes ``prefix=`` is guided, others are blended.
        execute_rows: rows executed between two inferences (the policy period / the chunk's
            dt; 1 at 10 Hz with 0.1 s rows).
        latency_window: recent latencies the delay estimate takes the median of.
        guidance_rows: rows after the frozen ones the soft mask decays over
            (:data:`DEFAULT_GUIDANCE_ROWS`); None = the whole overlap, as Black et al.
    """

    needs_image = True

    def __init__(
        self,
        policy,
        execute_rows: int = 1,
        latency_window: int = 20,
        guidance_rows: int | None = DEFAULT_GUIDANCE_ROWS,
    ) -> None:
        check_int_range("execute_rows", execute_rows, 0)
        check_int_range("latency_window", latency_window, 1)
        if guidance_rows is not None:
            check_int_range("guidance_rows", guidance_rows, 0)
        self.policy = policy
        self.execute_rows = int(execute_rows)
        self.guidance_rows = guidance_rows
        self.needs_image = getattr(policy, "needs_image", True)
        self.needs_depth = getattr(policy, "needs_depth", False)
        self.needs_prompt = getattr(policy, "needs_prompt", False)
        self.needs_sim_state = getattr(policy, "needs_sim_state", False)
        self.needs_instruction = getattr(policy, "needs_instruction", False)
        self.metadata = getattr(policy, "metadata", None)
        self.providers = getattr(policy, "providers", ["CPUExecutionProvider"])
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self.previous: ActionChunk | None = None
        self.last_prefix: ChunkPrefix | None = None
        self.guided = _takes_prefix(policy)

    def record_latency(self, seconds: float) -> None:
        """A measured inference delay (observation -> chunk available), in seconds."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise InputError(f"latency {seconds!r} must be a finite number >= 0")
        self._latencies.append(float(seconds))

    @property
    def expected_delay_s(self) -> float:
        """The delay the next chunk is planned for: median of the recent latencies (0 before
        any was recorded)."""
        return float(np.median(self._latencies)) if self._latencies else 0.0

    def reset(self) -> None:
        """Forget the previous chunk (a new episode, an e-stop): the next chunk is free."""
        self.previous = None
        self.last_prefix = None

    def predict_chunk(self, image, state, observation_stamp: float = 0.0, **kwargs) -> ActionChunk:
        prefix = None
        if self.previous is not None and observation_stamp > self.previous.observation_stamp:
            meta = self.metadata
            horizon = meta.horizon if meta is not None else self.previous.horizon
            dt = meta.dt if meta is not None else self.previous.dt
            prefix = chunk_prefix(
                self.previous,
                observation_stamp,
                horizon,
                dt,
                self.expected_delay_s,
                self.execute_rows,
                self.guidance_rows,
            )
        self.last_prefix = prefix
        if prefix is not None and self.guided:
            actions = self.policy.predict(image, state, prefix=prefix, **kwargs)
            chunk = ActionChunk(
                actions, self.metadata.dt, self.metadata.action_names,
                self.metadata.action_space, observation_stamp,
            )  # fmt: skip
        else:
            chunk = self.policy.predict_chunk(image, state, observation_stamp, **kwargs)
            if prefix is not None:  # blend the output toward the prefix
                w = prefix.weights[:, None]
                actions = w * prefix.actions + (1.0 - w) * chunk.actions
                chunk = ActionChunk(
                    actions.astype(np.float32), chunk.dt, chunk.names, chunk.action_space,
                    observation_stamp, chunk.frame_id,
                )  # fmt: skip
        self.previous = chunk
        return chunk


def _takes_prefix(policy) -> bool:
    import inspect

    predict = getattr(policy, "predict", None)
    if predict is None:
        return False
    try:
        return "prefix" in inspect.signature(predict).parameters
    except (TypeError, ValueError):
        return False
