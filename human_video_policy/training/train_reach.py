"""Behaviour-cloning training of :class:`BCMLPPolicy` on recorded demonstrations.

Seeded (torch, numpy, data order), Adam with a cosine learning-rate decay, MSE on the
normalised action offsets, a tqdm bar on stderr and a small report (loss per epoch, wall time).

Usage: ``python -m human_video_policy.training.train_reach --demos demos.npz --out model.pt``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.policies.action_spaces import WIDOWX_JOINT_POSITION
from human_video_policy.policies.bc_mlp.configuration_bc_mlp import BCMLPConfig
from human_video_policy.policies.bc_mlp.modeling_bc_mlp import BCMLPPolicy
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.image_ops import prepare_rgb, to_chw_float
from human_video_policy.training.record_demos import Demos
from human_video_policy.validation import check_int_range, check_non_negative, check_positive


@dataclass
class TrainConfig:
    """Settings of :func:`train`.

    Attributes:
        epochs: passes over the data.
        batch_size: samples per Adam step.
        learning_rate: initial Adam learning rate (cosine-decayed to 5 % of it).
        weight_decay: Adam L2 weight decay.
        seed: seeds torch, numpy and the batch order.
        threads: torch CPU threads.
        fit_normalization: refit the model's normalisation buffers on this data (off when
            fine-tuning an already normalised model).
        progress: tqdm bar on stderr.
    """

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    threads: int = 2
    fit_normalization: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        check_int_range("epochs", self.epochs, 1)
        check_int_range("batch_size", self.batch_size, 1)
        check_positive("learning_rate", self.learning_rate)
        check_non_negative("weight_decay", self.weight_decay)
        check_int_range("seed", self.seed, 0)
        check_int_range("threads", self.threads, 1)


@dataclass
class TrainReport:
    """What :func:`train` did: losses per epoch (normalised MSE), final loss, wall time."""

    samples: int
    epochs: int
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan

    def to_dict(self) -> dict:
        out = asdict(self)
        out["final_loss"] = self.final_loss
        return out


def _images_to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


def seed_everything(seed: int, threads: int) -> None:
    """Seed torch and numpy and fix torch's CPU thread count."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    torch.set_num_threads(threads)


def train(model: BCMLPPolicy, demos: Demos, config: TrainConfig) -> TrainReport:
    """Fit ``model`` to ``demos`` in place."""
    cfg = model.config
    if len(demos) == 0:
        raise InputError("no demonstration samples to train on")
    if demos.images.shape[1:3] != (cfg.image_height, cfg.image_width):
        raise InputError(
            f"demo images are {demos.images.shape[1:3]} but the model takes "
            f"{(cfg.image_height, cfg.image_width)}"
        )
    if demos.actions.shape[1:] != (cfg.horizon, cfg.action_dim):
        raise InputError(
            f"demo actions are {demos.actions.shape[1:]} but the model predicts "
            f"{(cfg.horizon, cfg.action_dim)}"
        )
    seed_everything(config.seed, config.threads)
    start = time.perf_counter()
    states = torch.from_numpy(demos.states.astype(np.float32))
    actions = torch.from_numpy(demos.actions.astype(np.float32))
    if config.fit_normalization:
        sample = np.random.default_rng(config.seed).choice(
            len(demos), size=min(len(demos), 2000), replace=False
        )
        model.set_normalization(_images_to_tensor(demos.images[np.sort(sample)]), states, actions)
    targets = model.normalized_delta(states, actions).detach()
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(len(demos) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    )
    generator = torch.Generator().manual_seed(config.seed)
    report = TrainReport(samples=len(demos), epochs=config.epochs)
    model.train()
    bar = tqdm(
        range(config.epochs),
        desc="train",
        file=sys.stderr,
        disable=not config.progress,
        unit="epoch",
    )
    for _epoch in bar:
        order = torch.randperm(len(demos), generator=generator)
        total, count = 0.0, 0
        for i in range(steps_per_epoch):
            index = order[i * config.batch_size : (i + 1) * config.batch_size]
            images = _images_to_tensor(demos.images[index.numpy()])
            prediction = model.forward_delta(images, states[index])
            loss = torch.mean((prediction - targets[index]) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(index)
            count += len(index)
        report.losses.append(total / count)
        bar.set_postfix(loss=f"{report.losses[-1]:.4f}")
    model.eval()
    report.wall_s = time.perf_counter() - start
    return report


class TorchPolicySource:
    """A torch BCMLPPolicy behind the policy interface (same preprocessing as OnnxPolicy)."""

    needs_image = True

    def __init__(self, model: BCMLPPolicy, dt: float) -> None:
        self.model = model
        self.dt = dt

    def predict_chunk(
        self, image: np.ndarray, state: np.ndarray, observation_stamp: float = 0.0
    ) -> ActionChunk:
        cfg = self.model.config
        pixels = to_chw_float(prepare_rgb(image, cfg.image_height, cfg.image_width))
        with torch.no_grad():
            actions = self.model(
                torch.from_numpy(pixels), torch.from_numpy(np.asarray(state, np.float32)[None])
            )[0].numpy()
        return ActionChunk(
            actions, self.dt, WIDOWX_COMMAND_JOINTS, WIDOWX_JOINT_POSITION, observation_stamp
        )


def save_checkpoint(model: BCMLPPolicy, path: str | Path, extra: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"config": model.config.to_dict(), "state_dict": model.state_dict(), "extra": extra or {}},
        path,
    )
    return path


def load_checkpoint(path: str | Path) -> BCMLPPolicy:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = BCMLPPolicy(BCMLPConfig(**blob["config"]))
        model.load_state_dict(blob["state_dict"])
    except (OSError, KeyError, RuntimeError, TypeError) as exc:
        raise InputError(f"cannot load reach policy checkpoint {path}: {exc}") from exc
    model.eval()
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demos", required=True, help=".npz from record_demos")
    parser.add_argument("--out", required=True, help="checkpoint .pt")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            seed=args.seed,
            threads=args.threads,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    demos = Demos.load(args.demos)
    seed_everything(config.seed, config.threads)  # the initial weights come from torch's RNG
    horizon = demos.actions.shape[1]
    model = BCMLPPolicy(
        BCMLPConfig(
            image_height=demos.images.shape[1], image_width=demos.images.shape[2], horizon=horizon
        )
    )
    report = train(model, demos, config)
    save_checkpoint(model, args.out, {"train": report.to_dict()})
    print(json.dumps({"out": args.out, "final_loss": report.final_loss, "wall_s": report.wall_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
