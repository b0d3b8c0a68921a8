"""What the export tests share: tiny 32x32 reach demos and `hvp train` runs of the shipped
configs on them (a few seconds each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from human_video_policy.cli.main import main as hvp_main
from human_video_policy.training.record_demos import Demos

ROOT = Path(__file__).resolve().parents[1]
#: Overrides of the shipped configs that make a run tiny.
TINY = [
    "data.image_size=[32,32]",
    "data.batch_size=8",
    "data.normalization_samples=32",
    "train.progress=false",
]


def reach_demos(path: Path, n: int = 32, horizon: int = 10) -> Path:
    """``n`` random 32x32 WidowX reach samples in ``n // 8`` episodes."""
    rng = np.random.default_rng(0)
    states = rng.normal(0, 0.3, (n, 8)).astype(np.float32)
    actions = states[:, None, :7] + 0.01 * np.arange(horizon, dtype=np.float32)[None, :, None]
    images = (rng.random((n, 32, 32, 3)) * 255).astype(np.uint8)
    return Demos(images, states, actions, np.repeat(np.arange(n // 8), 8)).save(path)


def train_dit(demos: Path, run: Path, *extra: str) -> Path:
    """config/train/dit_reach.yaml, 3 steps, one checkpoint."""
    code = hvp_main(
        [
            "train",
            str(ROOT / "config" / "train" / "dit_reach.yaml"),
            f"data.sources[0].path={demos}",
            *TINY,
            "policy.config.image_size=[32,32]",
            "optim.warmup_steps=1",
            "train.steps=3",
            "train.checkpoint_every=3",
            f"train.output_dir={run}",
            *extra,
        ]
    )
    assert code == 0
    return run


def train_bc_mlp(demos: Path, run: Path, *extra: str) -> Path:
    """config/train/bc_mlp_reach.yaml, 2 steps."""
    code = hvp_main(
        [
            "train",
            str(ROOT / "config" / "train" / "bc_mlp_reach.yaml"),
            f"data.sources[0].path={demos}",
            *TINY,
            "policy.config.image_height=32",
            "policy.config.image_width=32",
            "train.steps=2",
            f"train.output_dir={run}",
            *extra,
        ]
    )
    assert code == 0
    return run
