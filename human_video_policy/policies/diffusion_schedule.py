"""The diffusion noise schedule and the DDIM update, in numpy, shared by training and inference.

Why numpy: the training side (torch) and the inference side (ONNX Runtime, no torch) must use
bit-for-bit the same ``alphas_cumprod`` and the same DDIM arithmetic, or a chunk sampled on the
robot would differ from the one checked against PyTorch at export. Training converts the table
to a tensor; the runtime uses it as is.

Conventions (DDPM, Ho et al. 2020; DDIM, Song et al. 2021; cosine schedule, Nichol & Dhariwal
2021), as in VITRA (100 training steps, 10 DDIM steps, eta 0) and diffusers' DDIMScheduler with
``timestep_spacing="leading"`` and ``set_alpha_to_one=True``:

- forward process: ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for t in 0..T-1;
- DDIM inference timesteps: ``[k * T // n for k in reversed(range(n))]`` (90, 80, ..., 0 for
  T=100, n=10); each step goes from t to ``t - T // n`` (abar = 1 past the end);
- the model predicts eps; ``x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)`` is optionally
  clipped to ``+-clip_sample`` (normalised units), then
  ``x_prev = sqrt(abar_prev) x_0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from human_video_policy.validation import check_choice, check_int_range, check_non_negative

SCHEDULES = ("cosine", "linear")


def cosine_betas(steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule: abar(t) = cos^2(((t/T + s) / (1 + s)) pi/2)."""

    def abar(t: float) -> float:
        return math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2

    return np.array(
        [min(1.0 - abar(i + 1) / abar(i), max_beta) for i in range(steps)], dtype=np.float64
    )


def linear_betas(steps: int, start: float = 1e-4, end: float = 0.02) -> np.ndarray:
    """DDPM's linear schedule, rescaled so T steps span the same range as 1000 would."""
    scale = 1000.0 / steps
    return np.linspace(start * scale, end * scale, steps, dtype=np.float64)


@dataclass(frozen=True)
class DiffusionSchedule:
    """A DDPM training schedule and its DDIM sampler.

    Attributes:
        train_steps: diffusion steps T of training (VITRA: 100).
        kind: ``"cosine"`` (default, VITRA/iDDPM) or ``"linear"`` (DDPM).
        inference_steps: DDIM steps at inference (VITRA: 10); must divide nothing, but must be
            <= ``train_steps``.
        eta: DDIM stochasticity (0: deterministic, as VITRA).
        clip_sample: clip the predicted x_0 to +-this (normalised units); 0 disables.
    """

    train_steps: int = 100
    kind: str = "cosine"
    inference_steps: int = 10
    eta: float = 0.0
    clip_sample: float = 0.0

    def __post_init__(self) -> None:
        check_int_range("train_steps", self.train_steps, 2, 10_000)
        check_choice("kind", self.kind, SCHEDULES)
        check_int_range("inference_steps", self.inference_steps, 1, self.train_steps)
        check_non_negative("eta", self.eta)
        check_non_negative("clip_sample", self.clip_sample)

    @property
    def betas(self) -> np.ndarray:
        if self.kind == "cosine":
            return cosine_betas(self.train_steps)
        return linear_betas(self.train_steps)

    @property
    def alphas_cumprod(self) -> np.ndarray:
        """abar_t for t = 0..T-1 (float64)."""
        return np.cumprod(1.0 - self.betas)

    def timesteps(self) -> np.ndarray:
        """DDIM timesteps, descending (int64): 90, 80, ..., 0 for T=100, n=10."""
        ratio = self.train_steps // self.inference_steps
        return (np.arange(self.inference_steps)[::-1] * ratio).astype(np.int64)

    def previous(self, t: int) -> int:
        """The timestep after ``t`` in the DDIM sequence (-1: the end, abar = 1)."""
        return int(t) - self.train_steps // self.inference_steps

    def abar(self, t: int) -> float:
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def add_noise(self, x0: np.ndarray, noise: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Forward process for a batch: x0, noise (B, ...), t (B,) int."""
        abar = self.alphas_cumprod[np.asarray(t)].reshape((-1,) + (1,) * (x0.ndim - 1))
        return (np.sqrt(abar) * x0 + np.sqrt(1.0 - abar) * noise).astype(x0.dtype)

    def ddim_step(
        self,
        sample: np.ndarray,
        eps: np.ndarray,
        t: int,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """One DDIM update from timestep ``t``; float32 in, float32 out.

        ``rng`` draws the eta noise (needed only when eta > 0).
        """
        a_t = self.abar(t)
        a_prev = self.abar(self.previous(t))
        x = sample.astype(np.float64)
        e = eps.astype(np.float64)
        x0 = (x - math.sqrt(1.0 - a_t) * e) / math.sqrt(a_t)
        if self.clip_sample > 0:
            x0 = np.clip(x0, -self.clip_sample, self.clip_sample)
            e = (x - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)  # eps consistent with x0
        sigma = 0.0
        if self.eta > 0:
            sigma = self.eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        out = math.sqrt(a_prev) * x0 + math.sqrt(max(1.0 - a_prev - sigma**2, 0.0)) * e
        if sigma > 0:
            if rng is None:
                raise ValueError("ddim_step with eta > 0 needs an rng for the added noise")
            out = out + sigma * rng.standard_normal(out.shape)
        return out.astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "train_steps": self.train_steps,
            "kind": self.kind,
            "inference_steps": self.inference_steps,
            "eta": self.eta,
            "clip_sample": self.clip_sample,
        }


def guided_eps(eps_cond: np.ndarray, eps_uncond: np.ndarray, scale: float) -> np.ndarray:
    """Classifier-free guidance (Ho & Salimans 2022): eps_u + s (eps_c - eps_u); s=1 is
    the plain conditional model."""
    return eps_uncond + scale * (eps_cond - eps_uncond)
