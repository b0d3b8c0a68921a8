"""Latency of one action chunk of LeRobot's DiffusionPolicy at its defaults, on CPU.

Runs in the LeRobot peer environment (scripts/lerobot_peer_env.sh -> .peer/lerobot), not in the
project's: ``benchmarks/dit_latency.py --lerobot`` calls it after timing the project's DiT in
the same run and reports the ratio.

    .peer/lerobot/bin/python benchmarks/lerobot_peer/diffusion_latency.py \
        --image 64x64 --state-dim 8 --action-dim 7 --threads 2 --iterations 20

The policy is LeRobot 0.4.4's ``DiffusionConfig()`` unchanged (ResNet-18 backbone from scratch,
U-Net 512/1024/2048, two observation steps, horizon 16) with the inputs of the project's
default model (one camera, the state vector, the action vector); only the scheduler is varied:
its default DDPM with 100 steps, and DDIM with 10 steps (the project's sampler). One chunk is
``DiffusionModel.generate_actions`` on a batch of one (encoder + all denoising steps), the call
``predict_action_chunk`` makes once its observation queues are full. Weights are random:
latency does not depend on their values. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import lerobot
import numpy as np
import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy


def _stats(times_ms: list[float]) -> dict[str, float]:
    # the fields of human_video_policy.runtime.latency.timing_summary (this venv has none of
    # the project's code)
    a = np.asarray(times_ms)
    return {
        "median_ms": float(np.median(a)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "iterations": len(a),
    }


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return height, width


def _time_chunk(
    scheduler: str, steps: int | None, h: int, w: int, iterations: int, args: argparse.Namespace
) -> dict:
    config = DiffusionConfig(
        input_features={
            "observation.images.scene": PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w)),
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(args.state_dim,)),
        },
        output_features={
            "action": PolicyFeature(type=FeatureType.ACTION, shape=(args.action_dim,)),
        },
        device="cpu",
        noise_scheduler_type=scheduler,
        num_inference_steps=steps,
    )
    torch.manual_seed(0)
    policy = DiffusionPolicy(config).eval()
    n = config.n_obs_steps
    batch = {
        "observation.state": torch.randn(1, n, args.state_dim),
        # (batch, obs steps, cameras, C, H, W): what select_action stacks for generate_actions
        "observation.images": torch.rand(1, n, 1, 3, h, w),
    }
    times: list[float] = []
    with torch.no_grad():
        for i in range(args.warmup + iterations):
            start = time.perf_counter()
            chunk = policy.diffusion.generate_actions(batch)
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1e3)
    return {
        "scheduler": scheduler,
        "inference_steps": steps if steps is not None else config.num_train_timesteps,
        "chunk_shape": list(chunk.shape),
        "parameters": sum(p.numel() for p in policy.parameters()),
        **_stats(times),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="64x64", help="camera image WxH")
    parser.add_argument("--state-dim", type=int, default=8)
    parser.add_argument("--action-dim", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--iterations", type=int, default=20, help="timed DDIM-10 chunks (DDPM-100: a quarter)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    h, w = _size(args.image)
    result = {
        "lerobot": getattr(lerobot, "__version__", "0.4.4"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "image": [h, w],
        "ddim_10": _time_chunk("DDIM", 10, h, w, args.iterations, args),
        # 10x the steps: a quarter of the chunks keeps the run short
        "ddpm_100_default": _time_chunk("DDPM", None, h, w, max(3, args.iterations // 4), args),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
