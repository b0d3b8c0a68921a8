"""The DiT diffusion policy against the MLP behaviour-cloning baseline on the same reach demos.

Both learn from one set of noisy-expert demonstrations (recorded here or given with
``--demos``), both are exported (the DiT to an exported-policy directory run by
``runtime.DiffusionPolicy``, the MLP to the single-file ONNX run by ``runtime.OnnxPolicy``) and
both are evaluated in closed loop through ``sim.evaluate`` on the same held-out seeds, as
deployed (ONNX Runtime, no torch). Success rates are printed side by side with Wilson 95 %
intervals, and written as JSON.

    .venv/bin/python benchmarks/reach_dit_vs_mlp.py --work /tmp/reach_work --seed 0
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from human_video_policy.policies.dit.configuration_dit import DiTConfig
from human_video_policy.policies.dit.modeling_dit import DiTPolicy
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS
from human_video_policy.sim.statistics import wilson_interval
from human_video_policy.training.record_demos import Demos, RecordConfig, record

EVAL_SEED = 1_000_000
IMAGE_KEY = "observation.images.scene"


def demo_batch(demos: Demos, index: np.ndarray) -> dict[str, torch.Tensor]:
    images = torch.from_numpy(demos.images[index]).permute(0, 3, 1, 2).float() / 255.0
    return {
        IMAGE_KEY: images,
        "observation.state": torch.from_numpy(demos.states[index].astype(np.float32)),
        "action": torch.from_numpy(demos.actions[index].astype(np.float32)),
    }


def train_dit(
    demos: Demos, config: DiTConfig, steps: int, batch_size: int, lr: float, seed: int
) -> tuple[DiTPolicy, dict]:
    """AdamW + warm-up/cosine LR + EMA (0.999) on the demos; returns the EMA model."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = DiTPolicy(config)
    stats_index = np.sort(rng.choice(len(demos), size=min(len(demos), 4000), replace=False))
    model.fit_normalization([demo_batch(demos, stats_index)])
    ema = copy.deepcopy(model).eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warmup = min(500, steps // 10)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    losses = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="DiT", file=sys.stderr, mininterval=2.0)
    for step in bar:
        index = rng.integers(0, len(demos), batch_size)
        loss = model.compute_loss(demo_batch(demos, index))["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            for e, p in zip(ema.parameters(), model.parameters(), strict=True):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
            for e, b in zip(ema.buffers(), model.buffers(), strict=True):
                e.copy_(b)
        losses.append(float(loss))
        if step % 200 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-200:]):.4f}")
    report = {
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "final_loss_mean_last_500": float(np.mean(losses[-500:])),
        "train_s": time.perf_counter() - start,
    }
    return ema, report


def evaluate_policy(factory, episodes: int, seed: int) -> dict:
    from human_video_policy.sim.evaluate import EvaluationConfig, evaluate
    from human_video_policy.training.record_demos import default_world_config

    summary = evaluate(
        factory, EvaluationConfig(episodes=episodes, seed=seed, world=default_world_config())
    )
    wins = sum(r.success for r in summary.results)
    return {
        "episodes": summary.episodes,
        "successes": wins,
        "success_rate": summary.success_rate,
        "wilson95": wilson_interval(wins, summary.episodes),
        "mean_time_to_success_s": summary.mean_time_to_success,
        "failed_seeds": [r.seed for r in summary.results if not r.success],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="/tmp/reach_dit_vs_mlp", help="output folder")
    parser.add_argument("--demos", default="", help="reuse this demos .npz")
    parser.add_argument("--demo-episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dit-size", default="tiny")
    parser.add_argument("--dit-steps", type=int, default=8000)
    parser.add_argument("--prediction", default="sample", help="epsilon or sample")
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--mlp-epochs", type=int, default=30)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--eval-seed", type=int, default=EVAL_SEED)
    parser.add_argument("--skip-mlp", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"command": " ".join(sys.argv), "args": vars(args)}

    if args.demos:
        demos = Demos.load(args.demos)
    else:
        demos, _driver = record(
            RecordConfig(episodes=args.demo_episodes, seed=args.seed * 100_000, noise_std=0.03)
        )
        demos.save(work / "demos.npz")
    result["demo_samples"] = len(demos)
    horizon = demos.actions.shape[1]

    from human_video_policy.export.diffusion_onnx import export_dit
    from human_video_policy.runtime.diffusion_policy import DiffusionPolicy

    dit_cfg = DiTConfig(
        size=args.dit_size,
        horizon=horizon,
        action_target="delta",
        image_size=(demos.images.shape[1], demos.images.shape[2]),
        image_key=IMAGE_KEY,
        prediction=args.prediction,
    )
    model, report = train_dit(demos, dit_cfg, args.dit_steps, args.batch_size, args.lr, args.seed)
    torch.save({"config": dit_cfg.to_dict(), "model": model.state_dict()}, work / "dit.pt")
    spec = export_dit(
        model,
        work / "dit_export",
        action_names=WIDOWX_COMMAND_JOINTS,
        state_names=WIDOWX_STATE_JOINTS,
        dt=0.1,
        training={"benchmark": "reach_dit_vs_mlp", **report},
        seed=args.seed,
        overwrite=True,
    )
    result["dit"] = {"train": report, "parity": spec.parity, "config": dit_cfg.to_dict()}
    for scale in args.guidance:
        result["dit"][f"eval_cfg{scale:g}"] = evaluate_policy(
            lambda _w, s=scale: DiffusionPolicy(work / "dit_export", guidance_scale=s),
            args.eval_episodes,
            args.eval_seed,
        )
        print(json.dumps({f"dit cfg {scale:g}": result["dit"][f"eval_cfg{scale:g}"]}))

    if not args.skip_mlp:
        from human_video_policy.policies.registry import get_policy_type
        from human_video_policy.runtime.onnx_policy import OnnxPolicy
        from human_video_policy.training.export_onnx import export_policy
        from human_video_policy.training.train_reach import TrainConfig, seed_everything, train

        seed_everything(args.seed, args.threads)
        bc_mlp = get_policy_type("bc_mlp")
        mlp = bc_mlp.make_model(
            bc_mlp.make_config(
                {
                    "image_height": demos.images.shape[1],
                    "image_width": demos.images.shape[2],
                    "horizon": horizon,
                }
            )
        )
        mlp_report = train(mlp, demos, TrainConfig(epochs=args.mlp_epochs, seed=args.seed))
        export_policy(mlp, work / "mlp.onnx", 0.1, {"benchmark": "reach_dit_vs_mlp"})
        result["mlp"] = {
            "train": mlp_report.to_dict(),
            "eval": evaluate_policy(
                lambda _w: OnnxPolicy(work / "mlp.onnx"), args.eval_episodes, args.eval_seed
            ),
        }
        print(json.dumps({"mlp": result["mlp"]["eval"]}))
    (work / "result.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {work / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
