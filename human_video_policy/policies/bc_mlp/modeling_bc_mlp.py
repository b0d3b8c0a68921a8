"""The behaviour-cloning MLP baseline (``bc_mlp``): image + joint state -> a chunk of absolute
joint targets. It is the default learned reach policy.

Small enough to train on two CPU cores in minutes and to run at 10 Hz anywhere:

- image encoder: 3 convolutions (64x64 -> 16x16 feature maps) and a *spatial softmax* that
  turns each of ``keypoints`` feature maps into an expected (x, y) image location, which is
  what a reach policy needs (where is the red target, where is the gripper);
- state MLP input: the 8 raw joint positions, normalised inside the module;
- head: MLP -> (horizon, 7) *offsets* from the measured command joints, scaled by the
  per-row/per-joint spread seen in training and added back to the state, so the output is
  absolute joint targets (rad / m) as docs/CONTRACTS.md requires.

All normalisation constants are registered buffers, so the exported ONNX graph takes raw
inputs: ``image`` float32 [B, 3, H, W] in [0, 1] and ``state`` float32 [B, 8].
"""

from __future__ import annotations

import torch
from torch import nn

from human_video_policy.policies.bc_mlp.configuration_bc_mlp import BCMLPConfig


class SpatialSoftmax(nn.Module):
    """(B, K, h, w) feature maps -> (B, 2K) expected (x, y) in [-1, 1] per map."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        ys, xs = torch.meshgrid(
            torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width), indexing="ij"
        )
        self.register_buffer("grid", torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, k, h, w = features.shape
        weights = torch.softmax(features.reshape(b, k, h * w), dim=-1)
        return torch.matmul(weights, self.grid).reshape(b, 2 * k)


class BCMLPPolicy(nn.Module):
    """Image + raw joint state -> (B, horizon, action_dim) absolute joint targets."""

    def __init__(self, config: BCMLPConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or BCMLPConfig()
        c = cfg.channels
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c, kernel_size=5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(c, c, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, c, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.Conv2d(c, cfg.keypoints, kernel_size=1),
        )
        feat_h = (cfg.image_height + 3) // 4
        feat_w = (cfg.image_width + 3) // 4
        self.spatial_softmax = SpatialSoftmax(feat_h, feat_w)
        self.head = nn.Sequential(
            nn.Linear(2 * cfg.keypoints + cfg.state_dim, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.horizon * cfg.action_dim),
        )
        # Normalisation (set from the training data with set_normalization).
        self.register_buffer("image_mean", torch.full((1, 3, 1, 1), 0.5))
        self.register_buffer("image_std", torch.full((1, 3, 1, 1), 0.25))
        self.register_buffer("state_mean", torch.zeros(cfg.state_dim))
        self.register_buffer("state_std", torch.ones(cfg.state_dim))
        self.register_buffer("delta_scale", torch.ones(cfg.horizon, cfg.action_dim))

    def set_normalization(
        self,
        images: torch.Tensor,
        states: torch.Tensor,
        actions: torch.Tensor,
    ) -> None:
        """Fit the buffers: images (N,3,H,W) in [0,1], states (N,S), actions (N,horizon,A)."""
        with torch.no_grad():
            self.image_mean.copy_(images.mean(dim=(0, 2, 3)).reshape(1, 3, 1, 1))
            self.image_std.copy_(images.std(dim=(0, 2, 3)).clamp_min(1e-3).reshape(1, 3, 1, 1))
            self.state_mean.copy_(states.mean(dim=0))
            self.state_std.copy_(states.std(dim=0).clamp_min(1e-3))
            deltas = actions - states[:, None, : self.config.action_dim]
            self.delta_scale.copy_(deltas.std(dim=0).clamp_min(1e-3))

    def normalized_delta(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Training target: (actions - state) / delta_scale, shape (N, horizon, A)."""
        return (actions - states[:, None, : self.config.action_dim]) / self.delta_scale

    def forward_delta(self, image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Normalised offsets (B, horizon, A); ``forward`` turns them into joint targets."""
        cfg = self.config
        x = (image - self.image_mean) / self.image_std
        keypoints = self.spatial_softmax(self.encoder(x))
        s = (state - self.state_mean) / self.state_std
        out = self.head(torch.cat([keypoints, s], dim=1))
        return out.reshape(-1, cfg.horizon, cfg.action_dim)

    def forward(self, image: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        delta = self.forward_delta(image, state) * self.delta_scale
        return state[:, None, : self.config.action_dim] + delta

    # --- the trainer's contract (training/trainer.py) ----------------------------------------
    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image = batch[self.config.image_key].float()
        state = batch["observation.state"].float()
        image = image[:, -1] if image.ndim == 5 else image
        state = state[:, -1] if state.ndim == 3 else state
        return image, state, batch["action"].float()

    def fit_normalization(self, batches) -> None:
        """Fit the normalisation buffers on training batches (what ``hvp train`` calls)."""
        images, states, actions = zip(*(self._inputs(b) for b in batches), strict=True)
        self.set_normalization(torch.cat(images), torch.cat(states), torch.cat(actions))

    def compute_loss(self, batch: dict) -> dict[str, torch.Tensor]:
        """MSE on the normalised joint offsets; masked dims and padded rows excluded."""
        image, state, actions = self._inputs(batch)
        target = self.normalized_delta(state, actions)
        mask = batch.get("mask.action")
        mask = torch.ones_like(target) if mask is None else mask.float()
        err = (self.forward_delta(image, state) - target) ** 2 * mask
        loss = err.sum() / mask.sum().clamp_min(1.0)
        return {"loss": loss}
