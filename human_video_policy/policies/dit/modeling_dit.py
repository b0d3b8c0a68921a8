"""The DiT diffusion policy: condition encoders + a causal DiT that predicts the noise of an
action chunk (VITRA sections 4.1, A.2; the denoiser of method A, section III-B).

Tokens, in order: ``condition_tokens`` image tokens, one instruction token and one camera-FoV
token when those encoders are on, one state token, then ``horizon`` action tokens. An action
token is ``Linear([noisy action * mask, mask])`` plus a learned position; masked dims are zeroed
on input and excluded from the loss. Attention: prefix tokens (condition + state) see each
other; action token i sees the prefix and action tokens <= i (``causal``), or every token
(bidirectional ablation). Each block is RMSNorm + QK-normed self-attention + MLP, modulated by
AdaLN-Zero from the pooled condition plus a sinusoidal timestep embedding. Separate linear heads
predict the noise of slices of the action (``heads_split``), each with its own loss weight.

Classifier-free guidance: in training the whole condition is replaced by learned null tokens
with probability ``condition_dropout`` and the state token by a learned null token with
probability ``state_dropout``; at inference the conditional and unconditional passes run as one
batch of 2 (``cond_keep`` = 1 and 0).

The model is split into two graphs for export: :class:`EncoderGraph` (raw image, raw state,
instruction ids, FoV -> condition tokens + normalised state), run once per chunk, and
:class:`DenoiserGraph` (one denoising step), run ``inference_steps`` times by a numpy loop.
Normalisation constants are buffers set from the training data
(:meth:`DiTPolicy.fit_normalization`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from human_video_policy.errors import InputError
from human_video_policy.policies.bc_mlp.modeling_bc_mlp import SpatialSoftmax
from human_video_policy.policies.diffusion_schedule import guided_eps
from human_video_policy.policies.dit.configuration_dit import DiTConfig
from human_video_policy.policies.instruction_vocab import tokenize

NEG_INF = -1e4  # additive attention mask; finite so FP16 engines do not make NaN rows


class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich 2019), optional learned scale."""

    def __init__(self, dim: int, affine: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return out * self.weight if self.weight is not None else out


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """(B,) float timesteps -> (B, dim) sinusoidal features (float32 arange: an arange without
    dtype broke LeRobot's FP16 export)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with QK-norm and an additive mask (explicit matmuls: exports
    to any ONNX opset >= 17 and to TensorRT)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.q_norm = RMSNorm(self.head_dim)
        self.k_norm = RMSNorm(self.head_dim)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q, k = self.q_norm(q), self.k_norm(k)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask
        attn = torch.softmax(scores, dim=-1)
        return self.out(torch.matmul(attn, v).transpose(1, 2).reshape(b, n, w))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """RMSNorm -> attention -> RMSNorm -> MLP, each modulated and gated by AdaLN-Zero."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = RMSNorm(width, affine=False)
        self.attn = SelfAttention(width, heads)
        self.norm2 = RMSNorm(width, affine=False)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width)
        )
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1), mask)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class BasicBlock(nn.Module):
    """ResNet basic block with GroupNorm (batch-size independent, exports cleanly)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(min(32, cout // 4), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(min(32, cout // 4), cout)
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.GroupNorm(1, cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(out)) + self.skip(x))


def _backbone(kind: str, channels: int) -> tuple[nn.Module, int, int]:
    """(module, output channels, total stride) of an image backbone trained from scratch."""
    if kind == "cnn":
        c = channels
        net = nn.Sequential(
            nn.Conv2d(3, c, 5, 2, 2),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, 1, 1),
            nn.ReLU(),
        )
        return net, c, 4
    blocks = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}[kind]
    c = channels
    layers: list[nn.Module] = [
        nn.Conv2d(3, c, 7, 2, 3, bias=False),
        nn.GroupNorm(min(32, c // 4), c),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = c
    for stage, count in enumerate(blocks):
        cout = c * 2**stage
        for i in range(count):
            layers.append(BasicBlock(cin, cout, 2 if (i == 0 and stage > 0) else 1))
            cin = cout
    return nn.Sequential(*layers), cin, 32


class ImageEncoder(nn.Module):
    """Image -> ``tokens`` condition tokens: backbone, spatial-softmax keypoints and a global
    average, through an MLP."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.tokens = config.condition_tokens
        self.width = config.width
        self.backbone, channels, stride = _backbone(config.image_encoder, config.image_channels)
        keypoints = 32
        self.keypoint_maps = nn.Conv2d(channels, keypoints, 1)
        h, w = config.image_size
        fh, fw = h, w
        for _ in range(int(math.log2(stride))):
            fh, fw = (fh + 1) // 2, (fw + 1) // 2
        if config.image_encoder != "cnn":  # conv7/2, maxpool/2, then 3 strided stages
            fh, fw = self._feature_size(h, w)
        self.spatial_softmax = SpatialSoftmax(fh, fw)
        self.proj = nn.Sequential(
            nn.Linear(2 * keypoints + channels, config.width),
            nn.SiLU(),
            nn.Linear(config.width, self.tokens * config.width),
        )
        self.register_buffer("pixel_mean", torch.full((1, 3, 1, 1), 0.5))
        self.register_buffer("pixel_std", torch.full((1, 3, 1, 1), 0.25))

    def _feature_size(self, h: int, w: int) -> tuple[int, int]:
        with torch.no_grad():
            out = self.backbone(torch.zeros(1, 3, h, w))
        return int(out.shape[2]), int(out.shape[3])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image - self.pixel_mean) / self.pixel_std
        features = self.backbone(x)
        keypoints = self.spatial_softmax(self.keypoint_maps(features))
        pooled = features.mean(dim=(2, 3))
        out = self.proj(torch.cat([keypoints, pooled], dim=1))
        return out.reshape(-1, self.tokens, self.width)


class VocabEncoder(nn.Module):
    """Instruction ids (B, L) -> one token: word embeddings, masked mean, MLP (trained from
    scratch on the project's own instruction vocabulary)."""

    def __init__(self, vocab_size: int, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width, padding_idx=0)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        present = (ids > 0).float()[..., None]
        summed = (self.embed(ids) * present).sum(dim=1)
        mean = summed / present.sum(dim=1).clamp_min(1.0)
        return self.mlp(mean)[:, None]


class DiTPolicy(nn.Module):
    """Condition encoders + the DiT denoiser, with masked, weighted noise-prediction loss."""

    def __init__(self, config: DiTConfig | dict | None = None) -> None:
        super().__init__()
        if isinstance(config, dict):
            config = DiTConfig.from_dict(config)
        self.config = cfg = config or DiTConfig()
        w = cfg.width
        self.image_encoder = ImageEncoder(cfg) if cfg.image_encoder != "none" else None
        self.language_encoder = (
            VocabEncoder(len(cfg.vocabulary) + 2, w) if cfg.language_encoder == "vocab" else None
        )
        # VITRA's conditioning: a local Hugging Face text/vision-language model with a cognition
        # token (and the FoV token inside its input sequence); it sees the image when it is a VLM.
        self.hf_encoder = None
        if cfg.language_encoder == "hf":
            from human_video_policy.policies.dit.modeling_hf_condition import HFConditionEncoder

            self.hf_encoder = HFConditionEncoder(
                cfg.hf_model_path, w, cfg.fov_token, max_length=cfg.max_words
            )
        self.fov_mlp = (
            nn.Sequential(nn.Linear(2, w), nn.SiLU(), nn.Linear(w, w))
            if cfg.fov_token and self.hf_encoder is None
            else None
        )
        self.n_condition = (
            (cfg.condition_tokens if self.image_encoder is not None else 0)
            + (1 if self.language_encoder is not None else 0)
            + (self.hf_encoder.n_tokens if self.hf_encoder is not None else 0)
            + (1 if self.fov_mlp is not None else 0)
        )
        self.null_condition = nn.Parameter(torch.randn(self.n_condition, w) * 0.02)
        self.has_state = cfg.state_dim > 0
        if self.has_state:
            self.state_proj = nn.Sequential(nn.Linear(cfg.state_dim, w), nn.SiLU(), nn.Linear(w, w))
            self.null_state = nn.Parameter(torch.randn(1, w) * 0.02)
        self.action_in = nn.Sequential(nn.Linear(2 * cfg.action_dim, w), nn.SiLU(), nn.Linear(w, w))
        n_prefix = self.n_condition + (1 if self.has_state else 0)
        self.n_prefix = n_prefix
        self.position = nn.Parameter(torch.randn(n_prefix + cfg.horizon, w) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(DiTBlock(w, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final_norm = RMSNorm(w, affine=False)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(w, 2 * w))
        nn.init.zeros_(self.final_ada[1].weight)
        nn.init.zeros_(self.final_ada[1].bias)
        self.heads = nn.ModuleDict(
            {g.name: nn.Linear(w, g.stop - g.start) for g in cfg.head_groups}
        )
        for head in self.heads.values():
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.register_buffer("attention_mask", self._attention_mask(n_prefix, cfg))
        self.register_buffer("alphas_cumprod", torch.from_numpy(cfg.schedule.alphas_cumprod))
        s, a = max(cfg.state_dim, 1), cfg.action_dim
        self.register_buffer("state_mean", torch.zeros(s))
        self.register_buffer("state_std", torch.ones(s))
        self.register_buffer("action_mean", torch.zeros(a))
        self.register_buffer("action_std", torch.ones(a))

    @staticmethod
    def _attention_mask(n_prefix: int, cfg: DiTConfig) -> torch.Tensor:
        n = n_prefix + cfg.horizon
        allowed = torch.ones(n, n, dtype=torch.bool)
        allowed[:n_prefix, n_prefix:] = False  # the prefix never sees actions (padding)
        if cfg.causal:
            allowed[n_prefix:, n_prefix:] = torch.tril(
                torch.ones(cfg.horizon, cfg.horizon, dtype=torch.bool)
            )
        return torch.where(allowed, 0.0, NEG_INF).float()

    # --- normalisation ---------------------------------------------------------------------
    def fit_normalization(self, batches: Iterable[dict[str, Any]]) -> dict[str, np.ndarray]:
        """Per-dim mean/std of state and of the (masked) action target over ``batches``
        (VITRA A.2.3), stored in the buffers and returned; masked dims count nowhere."""
        cfg = self.config
        s_sum = s_sq = None
        s_n = 0
        a_sum = np.zeros(cfg.action_dim)
        a_sq = np.zeros(cfg.action_dim)
        a_n = np.zeros(cfg.action_dim)
        for batch in batches:
            state, actions, mask = self._raw_inputs(batch)
            target = self._target(actions, state).double().numpy()
            m = mask.double().numpy()
            a_sum += (target * m).sum(axis=(0, 1))
            a_sq += (target**2 * m).sum(axis=(0, 1))
            a_n += m.sum(axis=(0, 1))
            if self.has_state:
                st = state.double().numpy()
                s_sum = st.sum(0) if s_sum is None else s_sum + st.sum(0)
                s_sq = (st**2).sum(0) if s_sq is None else s_sq + (st**2).sum(0)
                s_n += st.shape[0]
        if not a_n.any():
            raise InputError("fit_normalization got no supervised action values")
        a_mean = a_sum / np.maximum(a_n, 1)
        a_std = np.sqrt(np.maximum(a_sq / np.maximum(a_n, 1) - a_mean**2, 0.0))
        stats = {"action_mean": a_mean, "action_std": np.maximum(a_std, 1e-3)}
        if self.has_state and s_n:
            s_mean = s_sum / s_n
            s_std = np.sqrt(np.maximum(s_sq / s_n - s_mean**2, 0.0))
            stats["state_mean"], stats["state_std"] = s_mean, np.maximum(s_std, 1e-3)
        self.set_normalization(**stats)
        return stats

    def set_normalization(self, **stats: np.ndarray) -> None:
        """Set any of state_mean, state_std, action_mean, action_std (finite; std > 0)."""
        for name, value in stats.items():
            buffer = getattr(self, name)
            value = torch.as_tensor(np.asarray(value, dtype=np.float32))
            if value.shape != buffer.shape:
                raise InputError(f"{name} has shape {tuple(value.shape)}, expected {buffer.shape}")
            if not torch.isfinite(value).all() or (name.endswith("std") and (value <= 0).any()):
                raise InputError(f"{name} must be finite (and > 0 for a std): {value.tolist()}")
            buffer.copy_(value)

    # --- pieces used by training and by the export graphs -------------------------------------
    def encode(
        self,
        image: torch.Tensor | None,
        state: torch.Tensor | None,
        instruction_ids: torch.Tensor | None = None,
        fov: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw inputs -> (condition tokens (B, N, W), normalised state (B, S)).

        With the Hugging Face encoder, ``instruction_ids``/``attention_mask`` are its
        tokenizer's (``tokenize_instructions``) and a VLM also sees ``image``."""
        cfg = self.config
        tokens = []
        batch = None
        if self.hf_encoder is not None:
            if instruction_ids is None or attention_mask is None:
                raise InputError("the policy needs instruction ids and their attention mask")
            pixels = None
            if self.hf_encoder.is_vlm and image is not None:
                pixels = self.hf_encoder.prepare_pixels(image)
            tokens.append(self.hf_encoder(instruction_ids, attention_mask, pixels, fov))
            batch = instruction_ids.shape[0]
        if self.image_encoder is not None:
            if image is None:
                raise InputError(f"the policy needs an image ({cfg.image_key})")
            tokens.append(self.image_encoder(image))
            batch = image.shape[0]
        if self.language_encoder is not None:
            if instruction_ids is None:
                raise InputError("the policy needs an instruction (language_encoder='vocab')")
            tokens.append(self.language_encoder(instruction_ids))
            batch = instruction_ids.shape[0]
        if self.fov_mlp is not None:
            if fov is None:
                raise InputError("the policy needs the camera FoV (fov_token=True)")
            tokens.append(self.fov_mlp(fov)[:, None])
            batch = fov.shape[0]
        condition = torch.cat(tokens, dim=1)
        if self.has_state:
            if state is None:
                raise InputError(f"the policy needs a state of {cfg.state_dim} values")
            state_norm = (state - self.state_mean) / self.state_std
        else:
            state_norm = torch.zeros(batch or 1, 1, device=condition.device)
        return condition, state_norm

    def denoise(
        self,
        noisy: torch.Tensor,
        timestep: torch.Tensor,
        condition: torch.Tensor,
        cond_keep: torch.Tensor,
        state_norm: torch.Tensor,
        state_keep: torch.Tensor,
        action_mask: torch.Tensor,
    ) -> torch.Tensor:
        """One denoiser evaluation: predicted noise (B, T, A) for the noisy normalised chunk
        (a ``sample``-predicting network's clean chunk is turned into the noise it implies)."""
        out = self.network(
            noisy, timestep, condition, cond_keep, state_norm, state_keep, action_mask
        )
        if self.config.prediction == "epsilon":
            return out
        index = timestep.round().long().clamp(0, self.config.train_steps - 1)
        abar = self.alphas_cumprod[index].float()[:, None, None]
        return (noisy - abar.sqrt() * out) / (1.0 - abar).sqrt()

    def network(
        self,
        noisy: torch.Tensor,
        timestep: torch.Tensor,
        condition: torch.Tensor,
        cond_keep: torch.Tensor,
        state_norm: torch.Tensor,
        state_keep: torch.Tensor,
        action_mask: torch.Tensor,
    ) -> torch.Tensor:
        """The transformer's raw output (noise or clean chunk, per ``config.prediction``)."""
        keep = cond_keep.float()[:, None, None]
        condition = keep * condition + (1.0 - keep) * self.null_condition[None]
        parts = [condition]
        if self.has_state:
            s_keep = state_keep.float()[:, None, None]
            state_token = self.state_proj(state_norm)[:, None]
            parts.append(s_keep * state_token + (1.0 - s_keep) * self.null_state[None])
        actions = self.action_in(torch.cat([noisy * action_mask, action_mask], dim=-1))
        parts.append(actions)
        x = torch.cat(parts, dim=1) + self.position[None]
        c = self.time_mlp(timestep_embedding(timestep, self.config.width)) + condition.mean(1)
        for block in self.blocks:
            x = block(x, c, self.attention_mask)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        h = modulate(self.final_norm(x[:, self.n_prefix :]), shift, scale)
        return torch.cat([self.heads[g.name](h) for g in self.config.head_groups], dim=-1)

    # --- training -------------------------------------------------------------------------------
    def _last(self, value: torch.Tensor, ndim: int) -> torch.Tensor:
        """The newest history frame when a history axis is present."""
        return value[:, -1] if value.ndim == ndim + 1 else value

    def _raw_inputs(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        cfg = self.config
        actions = batch["action"].float()
        if actions.ndim != 3 or actions.shape[1:] != (cfg.horizon, cfg.action_dim):
            raise InputError(
                f"batch action has shape {tuple(actions.shape)}, the model predicts "
                f"(B, {cfg.horizon}, {cfg.action_dim}) in {cfg.action_space}"
            )
        mask = batch.get("mask.action")
        mask = torch.ones_like(actions) if mask is None else mask.float()
        state = None
        if self.has_state:
            state = self._last(batch["observation.state"].float(), 2)
            if state.shape[-1] != cfg.state_dim:
                raise InputError(
                    f"batch state has {state.shape[-1]} values, the model takes {cfg.state_dim}"
                )
        return state, actions, mask

    def _target(self, actions: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        if self.config.action_target == "delta":
            return actions - state[:, None, : self.config.action_dim]
        return actions

    def instruction_ids(self, tasks: list[str]) -> torch.Tensor:
        cfg = self.config
        return torch.from_numpy(tokenize(tasks, cfg.vocabulary, cfg.max_words))

    def batch_condition(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(condition tokens, normalised state, raw state) of a training/eval batch."""
        cfg = self.config
        image = None
        if self.image_encoder is not None:
            if cfg.image_key not in batch:
                raise InputError(
                    f"batch has no {cfg.image_key!r} (keys: {sorted(k for k in batch)})"
                )
            image = self._last(batch[cfg.image_key].float(), 4)
            if tuple(image.shape[-2:]) != cfg.image_size:
                raise InputError(
                    f"batch images are {tuple(image.shape[-2:])}, the model takes "
                    f"{cfg.image_size} (set the dataset's image_size)"
                )
        ids = attention = None
        if self.language_encoder is not None:
            ids = self.instruction_ids(list(batch["task"])).to(self.position.device)
        if self.hf_encoder is not None:
            tokens = self.hf_encoder.tokenize(list(batch["task"]))
            ids = tokens["input_ids"].to(self.position.device)
            attention = tokens["attention_mask"].to(self.position.device)
            if self.hf_encoder.is_vlm and image is None and cfg.image_key in batch:
                image = self._last(batch[cfg.image_key].float(), 4)
        fov = batch.get("observation.fov") if cfg.fov_token else None
        state = self._last(batch["observation.state"].float(), 2) if self.has_state else None
        condition, state_norm = self.encode(image, state, ids, fov, attention)
        return condition, state_norm, state

    def _training_draws(
        self, x0: torch.Tensor, sample_seeds: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Timestep, noise and the two CFG dropout uniforms of each sample. With the trainer's
        per-sample seeds (``batch["sample_seed"]``) each sample's draws are its own, whatever
        process or batch it lands in, so a torchrun job gives the single-process loss curve;
        without them, the global torch generator."""
        b, device = x0.shape[0], x0.device
        if sample_seeds is None:
            return (
                torch.randint(0, self.config.train_steps, (b,), device=device),
                torch.randn_like(x0),
                torch.rand(b, device=device),
                torch.rand(b, device=device),
            )
        seeds = torch.as_tensor(sample_seeds).reshape(-1).tolist()
        if len(seeds) != b:
            raise InputError(f"batch has {len(seeds)} sample seeds for {b} samples")
        t, noise, uniforms = [], [], []
        for seed in seeds:
            g = torch.Generator().manual_seed(int(seed))
            t.append(torch.randint(0, self.config.train_steps, (1,), generator=g))
            noise.append(torch.randn(x0.shape[1:], generator=g))
            uniforms.append(torch.rand(2, generator=g))
        u = torch.stack(uniforms).to(device)
        return (
            torch.cat(t).to(device),
            torch.stack(noise).to(device=device, dtype=x0.dtype),
            u[:, 0],
            u[:, 1],
        )

    def compute_loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Masked, per-head weighted MSE between the network's output and its target (the
        noise, or the clean chunk with ``prediction="sample"``)."""
        cfg = self.config
        state, actions, mask = self._raw_inputs(batch)
        condition, state_norm, _ = self.batch_condition(batch)
        x0 = (self._target(actions, state) - self.action_mean) / self.action_std * mask
        t, noise, cond_u, state_u = self._training_draws(x0, batch.get("sample_seed"))
        abar = self.alphas_cumprod[t].float()[:, None, None]
        noisy = (abar.sqrt() * x0 + (1 - abar).sqrt() * noise) * mask
        cond_keep = (cond_u >= cfg.condition_dropout).float()
        state_keep = (state_u >= cfg.state_dropout).float()
        out = self.network(noisy, t.float(), condition, cond_keep, state_norm, state_keep, mask)
        target = noise if cfg.prediction == "epsilon" else x0
        losses: dict[str, torch.Tensor] = {}
        total = x0.new_zeros(())
        for g in cfg.head_groups:
            m = mask[..., g.start : g.stop]
            err = (out[..., g.start : g.stop] - target[..., g.start : g.stop]) ** 2 * m
            part = err.sum() / m.sum().clamp_min(1.0)
            losses[f"loss_{g.name}"] = part.detach()
            total = total + g.weight * part
        losses["loss"] = total
        return losses

    # --- sampling (reference for the exported runtime) -----------------------------------------
    @torch.no_grad()
    def sample(
        self,
        batch: dict[str, Any],
        noise: np.ndarray | None = None,
        guidance_scale: float | None = None,
        seed: int = 0,
    ) -> np.ndarray:
        """DDIM + CFG in PyTorch eager, with the same numpy DDIM arithmetic as the runtime:
        (B, T, A) actions in dataset units. ``noise``: (B, T, A) initial noise."""
        cfg = self.config
        schedule = cfg.schedule
        scale = cfg.guidance_scale if guidance_scale is None else guidance_scale
        condition, state_norm, state = self.batch_condition(batch)
        b = condition.shape[0]
        if noise is None:
            noise = np.random.default_rng(seed).standard_normal((b, cfg.horizon, cfg.action_dim))
        x = np.asarray(noise, dtype=np.float32)
        mask = torch.ones(2 * b, cfg.horizon, cfg.action_dim)
        cond2 = torch.cat([condition, condition])
        state2 = torch.cat([state_norm, state_norm])
        keep = torch.cat([torch.ones(b), torch.zeros(b)])
        ones = torch.ones(2 * b)
        rng = np.random.default_rng(seed + 1)
        for t in schedule.timesteps():
            x2 = torch.from_numpy(np.concatenate([x, x]))
            tt = torch.full((2 * b,), float(t))
            eps = self.denoise(x2, tt, cond2, keep, state2, ones, mask).numpy()
            x = schedule.ddim_step(x, guided_eps(eps[:b], eps[b:], scale), int(t), rng)
        actions = x * self.action_std.numpy() + self.action_mean.numpy()
        if cfg.action_target == "delta":
            actions = actions + state.numpy()[:, None, : cfg.action_dim]
        return actions.astype(np.float32)


class EncoderGraph(nn.Module):
    """Export view: (image, state[, instruction_ids][, fov]) -> (condition, state_norm)."""

    def __init__(self, policy: DiTPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        names = encoder_input_names(self.policy.config)
        given = dict(zip(names, inputs, strict=True))
        return self.policy.encode(
            given.get("image"), given.get("state"), given.get("instruction_ids"), given.get("fov")
        )


class DenoiserGraph(nn.Module):
    """Export view of one denoising step (see :meth:`DiTPolicy.denoise`)."""

    def __init__(self, policy: DiTPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(
        self,
        noisy: torch.Tensor,
        timestep: torch.Tensor,
        condition: torch.Tensor,
        cond_keep: torch.Tensor,
        state_norm: torch.Tensor,
        state_keep: torch.Tensor,
        action_mask: torch.Tensor,
    ) -> torch.Tensor:
        return self.policy.denoise(
            noisy, timestep, condition, cond_keep, state_norm, state_keep, action_mask
        )


def encoder_input_names(config: DiTConfig) -> list[str]:
    names = []
    if config.image_encoder != "none":
        names.append("image")
    if config.state_dim > 0:
        names.append("state")
    if config.language_encoder != "none":
        names.append("instruction_ids")
    if config.fov_token:
        names.append("fov")
    return names
