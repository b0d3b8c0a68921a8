"""A tiny trainable policy type (``toy_test``) for the trainer's tests, registered on import.

It follows the trainable-model contract of training/trainer.py: ``.config`` (a dataclass),
``compute_loss(batch)`` over the ChunkDataset keys returning ``loss`` plus named parts, and
``fit_normalization(batches)`` storing statistics in buffers. ``noise`` adds random target
noise (like a diffusion loss: exercises the RNG states of a resume); ``nan_after`` makes the
``loss_aux`` part NaN from that many ``compute_loss`` calls on (the NaN-stop test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from human_video_policy.errors import ConfigError
from human_video_policy.policies.registry import PolicyType, get_policy_type, register_policy_type
from human_video_policy.validation import check_int_range

NAME = "toy_test"


@dataclass
class ToyConfig:
    action_dim: int = 7
    state_dim: int = 8
    horizon: int = 4
    hidden: int = 16
    action_space: str = ""
    image_key: str = ""
    image_encoder: str = "none"
    image_size: tuple[int, ...] = ()
    noise: float = 0.0
    nan_after: int = 0

    def __post_init__(self) -> None:
        check_int_range("action_dim", self.action_dim, 1)
        check_int_range("state_dim", self.state_dim, 1)
        check_int_range("horizon", self.horizon, 1)
        check_int_range("hidden", self.hidden, 1)


class ToyPolicy(nn.Module):
    def __init__(self, config: ToyConfig | dict | None = None) -> None:
        super().__init__()
        if isinstance(config, dict):
            config = ToyConfig(**config)
        self.config = config = config or ToyConfig()
        s, a, t = config.state_dim, config.action_dim, config.horizon
        self.net = nn.Sequential(nn.Linear(s + 3, config.hidden), nn.Tanh())
        self.head = nn.Linear(config.hidden, t * a)
        self.register_buffer("state_mean", torch.zeros(s))
        self.register_buffer("state_std", torch.ones(s))
        self.register_buffer("action_mean", torch.zeros(a))
        self.register_buffer("action_std", torch.ones(a))
        self.calls = 0
        self.seen: list[int] = []
        self.fitted_on = 0

    def fit_normalization(self, batches: Any) -> None:
        states, actions = [], []
        for b in batches:
            states.append(b["observation.state"][:, -1].double())
            actions.append(b["action"].reshape(-1, self.config.action_dim).double())
        s, a = torch.cat(states), torch.cat(actions)
        self.fitted_on = len(s)
        self.state_mean.copy_(s.mean(0))
        self.state_std.copy_(s.std(0).clamp(min=1e-3))
        self.action_mean.copy_(a.mean(0))
        self.action_std.copy_(a.std(0).clamp(min=1e-3))

    def _features(self, batch: dict[str, Any]) -> torch.Tensor:
        state = (batch["observation.state"][:, -1] - self.state_mean) / self.state_std
        cams = sorted(k for k in batch if k.startswith("observation.images."))
        image = batch[cams[0]][:, -1].mean(dim=(2, 3)) if cams else torch.zeros(len(state), 3)
        return torch.cat([state, image], dim=1)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        c = self.config
        z = self.head(self.net(self._features(batch))).view(-1, c.horizon, c.action_dim)
        return z * self.action_std + self.action_mean

    def compute_loss(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        c = self.config
        pred = self.head(self.net(self._features(batch))).view(-1, c.horizon, c.action_dim)
        target = (batch["action"] - self.action_mean) / self.action_std
        if c.noise:
            target = target + c.noise * torch.randn_like(target)
        mse = ((pred - target) ** 2 * batch["mask.action"]).mean()
        aux = 0.01 * pred.pow(2).mean()
        self.calls += 1
        if "dataset_index" in batch:  # which source each trained sample came from
            self.seen.extend(batch["dataset_index"].tolist())
        if c.nan_after and self.calls > c.nan_after:
            aux = aux * float("nan")
        return {"loss": mse + aux, "loss_mse": mse, "loss_aux": aux}

    def predict_chunk(self, image: np.ndarray, state: np.ndarray, observation_stamp: float = 0.0):
        """Hold the measured command joints (a policy-interface stand-in for the sim hook)."""
        from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS
        from human_video_policy.runtime.action_chunk import ActionChunk

        rows = np.repeat(np.asarray(state, np.float64)[None, :7], self.config.horizon, 0)
        return ActionChunk(
            rows, 0.1, WIDOWX_COMMAND_JOINTS, "widowx_joint_position", observation_stamp
        )


def register() -> None:
    try:
        get_policy_type(NAME)
    except ConfigError:
        register_policy_type(
            PolicyType(
                NAME,
                config_class="toy_policy:ToyConfig",
                model_class="toy_policy:ToyPolicy",
                description="tiny MLP for the trainer tests",
            )
        )


register()
