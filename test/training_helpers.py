"""What the trainer tests share: tiny reach demos, a toy-policy run config, a folder snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import toy_policy  # registers the "toy_test" policy type

from human_video_policy.training.record_demos import Demos


def make_demos(path: Path, n: int = 24, horizon: int = 4, seed: int = 0) -> Path:
    """``n`` random 16x16 reach samples in 3 episodes, actions = state + a ramp."""
    rng = np.random.default_rng(seed)
    states = rng.standard_normal((n, 8)).astype(np.float32)
    actions = states[:, None, :7] + 0.1 * np.arange(horizon, dtype=np.float32)[None, :, None]
    images = (rng.random((n, 16, 16, 3)) * 255).astype(np.uint8)
    return Demos(images, states, actions, np.repeat(np.arange(n // 8), 8)).save(path)


def config_dict(demos: Path, out: Path, steps: int = 6, **sections: dict[str, Any]) -> dict:
    """A toy-policy run of ``steps`` steps on ``demos`` into ``out``; ``sections`` update it
    (a dict value merges into a dict field, e.g. ``policy={"config": {"noise": 0}}``)."""
    cfg: dict[str, Any] = {
        "policy": {"type": toy_policy.NAME, "config": {"horizon": 4, "noise": 0.1}},
        "data": {
            "sources": [{"kind": "demos", "path": str(demos), "weight": 1.0}],
            "horizon": 4,
            "batch_size": 8,
            "normalization_samples": 16,
        },
        "optim": {"lr": 1e-2, "warmup_steps": 2},
        "train": {
            "steps": steps,
            "seed": 3,
            "ema_decay": 0.9,
            "log_every": 1,
            "checkpoint_every": 3,
            "output_dir": str(out),
            "threads": 1,
            "progress": False,
        },
    }
    for section, values in sections.items():
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(cfg[section].get(key), dict):
                cfg[section][key].update(value)
            else:
                cfg[section][key] = value
    return cfg


def tree_bytes(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root`` (folders as None): a new empty tb/ counts as a change."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }
