"""Build the project's default learned policy, ``assets/policies/widowx_reach.onnx``, end to end.

One reproducible command::

    python -m human_video_policy.training.make_default_policy --seed 0 \\
        --out assets/policies/widowx_reach.onnx

1. record demonstrations of the privileged scripted expert with DART noise injection;
2. train :class:`BCMLPPolicy` (behaviour cloning);
3. DAgger rounds: the learned policy drives, the expert labels the states it visits, the
   aggregated data fine-tunes the model;
4. export to ONNX (checked against torch with ONNX Runtime);
5. evaluate the expert and the exported model (through ``runtime.OnnxPolicy``, as deployed)
   in closed loop on held-out seeds, and write a JSON report next to the model.

Training seeds are ``seed * 100000 + ...``; evaluation seeds start at ``--eval-seed``
(default 1000000), so the two never overlap.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from human_video_policy.errors import ConfigError
from human_video_policy.validation import check_int_range, check_non_negative

SEED_STRIDE = 100_000


@dataclass
class DefaultPolicyConfig:
    """Everything that determines the default policy (all recorded in the report).

    Attributes:
        seed: master seed (training seeds ``seed * 100000 + ...``, torch seed).
        out: output .onnx path; the report goes to the same path with .json.
        demo_episodes: noisy-expert demonstration episodes.
        noise_std: DART noise std (rad) while recording expert demonstrations.
        epochs: epochs of the first training.
        dagger_rounds: DAgger rounds after it.
        dagger_episodes: policy-driven episodes per DAgger round.
        finetune_epochs: epochs on the aggregated data after each DAgger round.
        batch_size, learning_rate: Adam settings (fine-tuning uses half the rate).
        eval_episodes: held-out evaluation episodes (expert and learned each).
        eval_seed: first evaluation seed.
        threads: torch CPU threads.
        image_size: policy input side (px); renders are 128x128, resized with prepare_rgb.
        progress: tqdm bars on stderr.
        work_dir: if set, demos and checkpoints are kept there.
    """

    seed: int = 0
    out: str = "assets/policies/widowx_reach.onnx"
    demo_episodes: int = 200
    noise_std: float = 0.03
    epochs: int = 30
    dagger_rounds: int = 2
    dagger_episodes: int = 80
    finetune_epochs: int = 12
    batch_size: int = 128
    learning_rate: float = 1e-3
    eval_episodes: int = 50
    eval_seed: int = 1_000_000
    threads: int = 2
    image_size: int = 64
    progress: bool = True
    work_dir: str = ""

    def __post_init__(self) -> None:
        check_int_range("seed", self.seed, 0, 9)
        if not self.out.endswith(".onnx"):
            raise ConfigError(f"out={self.out!r} is invalid: must end with .onnx")
        check_int_range("demo_episodes", self.demo_episodes, 1, 50_000)
        check_non_negative("noise_std", self.noise_std)
        check_int_range("epochs", self.epochs, 1)
        check_int_range("dagger_rounds", self.dagger_rounds, 0, 9)
        check_int_range("dagger_episodes", self.dagger_episodes, 1, 10_000)
        check_int_range("finetune_epochs", self.finetune_epochs, 1)
        check_int_range("eval_episodes", self.eval_episodes, 1)
        check_int_range("eval_seed", self.eval_seed, 0)
        if self.eval_seed < 10 * SEED_STRIDE:
            raise ConfigError(
                f"eval_seed={self.eval_seed} is invalid: must be >= {10 * SEED_STRIDE} so "
                "evaluation seeds never overlap training seeds"
            )
        check_int_range("threads", self.threads, 1)
        check_int_range("image_size", self.image_size, 16, 256)


def _summary(summary) -> dict:  # EvaluationSummary
    return {
        "episodes": summary.episodes,
        "success_rate": summary.success_rate,
        "mean_time_to_success_s": summary.mean_time_to_success,
        "failed_seeds": [r.seed for r in summary.results if not r.success],
    }


def build_default_policy(config: DefaultPolicyConfig, command: str = "") -> dict:
    """Run the whole pipeline; returns the report (also written next to the model)."""
    import numpy as np
    import torch

    from human_video_policy.policies.bc_mlp.configuration_bc_mlp import BCMLPConfig
    from human_video_policy.policies.bc_mlp.modeling_bc_mlp import BCMLPPolicy
    from human_video_policy.sim.evaluate import evaluate, expert_factory, exported_policy_factory
    from human_video_policy.sim.reach_expert import ReachExpertConfig
    from human_video_policy.training.export_onnx import export_policy
    from human_video_policy.training.record_demos import (
        RecordConfig,
        default_world_config,
        record,
    )
    from human_video_policy.training.train_reach import (
        TorchPolicySource,
        TrainConfig,
        save_checkpoint,
        seed_everything,
        train,
    )

    start = time.perf_counter()
    torch.set_num_threads(config.threads)
    world = default_world_config()
    expert_cfg = ReachExpertConfig()
    size = config.image_size
    base_seed = config.seed * SEED_STRIDE
    work = Path(config.work_dir) if config.work_dir else None
    stages: dict[str, float] = {}

    # 1. expert demonstrations
    t = time.perf_counter()
    demos, driver = record(
        RecordConfig(
            episodes=config.demo_episodes,
            seed=base_seed,
            image_height=size,
            image_width=size,
            noise_std=config.noise_std,
            world=world,
            progress=config.progress,
        ),
        description="expert demos",
    )
    stages["record_expert_s"] = time.perf_counter() - t
    rounds = [
        {
            "round": 0,
            "driver": "noisy expert",
            "episodes": config.demo_episodes,
            "samples": len(demos),
            "driver_success_rate": driver.success_rate,
        }
    ]

    # 2. behaviour cloning (seed torch first: the initial weights come from its generator)
    seed_everything(config.seed, config.threads)
    model = BCMLPPolicy(
        BCMLPConfig(image_height=size, image_width=size, horizon=expert_cfg.horizon)
    )
    train_cfg = TrainConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        threads=config.threads,
        progress=config.progress,
    )
    report = train(model, demos, train_cfg)
    rounds[0].update(epochs=config.epochs, final_loss=report.final_loss, train_s=report.wall_s)

    # 3. DAgger
    for r in range(1, config.dagger_rounds + 1):
        t = time.perf_counter()
        new, driver = record(
            RecordConfig(
                episodes=config.dagger_episodes,
                seed=base_seed + r * 10_000,
                image_height=size,
                image_width=size,
                world=world,
                progress=config.progress,
            ),
            driver_factory=lambda _world, _expert: TorchPolicySource(model, expert_cfg.dt),
            description=f"dagger {r}",
        )
        stages[f"record_dagger_{r}_s"] = time.perf_counter() - t
        demos = demos.concat(new)
        finetune = replace(
            train_cfg,
            epochs=config.finetune_epochs,
            fit_normalization=False,
            learning_rate=config.learning_rate * 0.5,
            seed=config.seed + r,
        )
        report = train(model, demos, finetune)
        rounds.append(
            {
                "round": r,
                "driver": "learned policy",
                "episodes": config.dagger_episodes,
                "samples": len(new),
                "driver_success_rate": driver.success_rate,
                "aggregate_samples": len(demos),
                "epochs": config.finetune_epochs,
                "final_loss": report.final_loss,
                "train_s": report.wall_s,
            }
        )
    if work is not None:
        demos.save(work / "demos.npz")
        save_checkpoint(model, work / "reach_policy.pt")
    train_wall = time.perf_counter() - start

    # 4. export
    training = {
        "seed": config.seed,
        "command": command,
        "pipeline": "noisy-expert BC + DAgger (human_video_policy.training.make_default_policy)",
        "episodes": config.demo_episodes + config.dagger_rounds * config.dagger_episodes,
        "samples": len(demos),
        "final_loss": report.final_loss,
        "render_size": [world.image_height, world.image_width],
        "camera": world.camera_name,
        "torch": torch.__version__,
    }
    pixels = demos.images[:16].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    export = export_policy(
        model,
        config.out,
        expert_cfg.dt,
        training,
        check_images=pixels,
        check_states=demos.states[:16].copy(),
    )

    # 5. closed-loop evaluation on held-out seeds
    from human_video_policy.sim.evaluate import EvaluationConfig

    eval_cfg = EvaluationConfig(
        episodes=config.eval_episodes, seed=config.eval_seed, world=world, progress=config.progress
    )
    t = time.perf_counter()
    expert_summary = evaluate(expert_factory, eval_cfg, description="eval expert")
    stages["eval_expert_s"] = time.perf_counter() - t
    t = time.perf_counter()
    learned_summary = evaluate(
        exported_policy_factory(config.out), eval_cfg, description="eval learned"
    )
    stages["eval_learned_s"] = time.perf_counter() - t

    result = {
        "model": str(config.out),
        "command": command,
        "settings": {k: v for k, v in vars(config).items() if k not in ("progress",)},
        "model_config": model.config.to_dict(),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "rounds": rounds,
        "export": export,
        "evaluation": {
            "seeds": [config.eval_seed, config.eval_seed + config.eval_episodes - 1],
            "success_radius_m": world.task.success_radius,
            "max_episode_s": world.task.max_episode_s,
            "expert": _summary(expert_summary),
            "learned": _summary(learned_summary),
        },
        "training_wall_s": train_wall,
        "stages_s": stages,
        "total_wall_s": time.perf_counter() - start,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch_threads": config.threads,
        },
    }
    report_path = Path(config.out).with_suffix(".json")
    report_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by this module's CLI and ``hvp train-default``."""
    d = DefaultPolicyConfig()
    parser.add_argument("--seed", type=int, default=d.seed, help="master seed (0..9)")
    parser.add_argument("--out", default=d.out, help="output .onnx (report: same name .json)")
    parser.add_argument(
        "--demo-episodes",
        type=int,
        default=d.demo_episodes,
        help="noisy-expert demonstration episodes",
    )
    parser.add_argument(
        "--noise-std", type=float, default=d.noise_std, help="DART noise of the demos (rad)"
    )
    parser.add_argument("--epochs", type=int, default=d.epochs, help="epochs of the first training")
    parser.add_argument(
        "--dagger-rounds", type=int, default=d.dagger_rounds, help="DAgger rounds after it"
    )
    parser.add_argument(
        "--dagger-episodes",
        type=int,
        default=d.dagger_episodes,
        help="policy-driven episodes per DAgger round",
    )
    parser.add_argument(
        "--finetune-epochs",
        type=int,
        default=d.finetune_epochs,
        help="epochs on the aggregated data after each DAgger round",
    )
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=d.eval_episodes,
        help="held-out evaluation episodes (expert and learned each)",
    )
    parser.add_argument("--eval-seed", type=int, default=d.eval_seed, help="first evaluation seed")
    parser.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    parser.add_argument(
        "--work-dir",
        default="",
        help="keep demos and checkpoint here (default: a temporary folder, removed)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> DefaultPolicyConfig:
    return DefaultPolicyConfig(
        seed=args.seed,
        out=args.out,
        demo_episodes=args.demo_episodes,
        noise_std=args.noise_std,
        epochs=args.epochs,
        dagger_rounds=args.dagger_rounds,
        dagger_episodes=args.dagger_episodes,
        finetune_epochs=args.finetune_epochs,
        eval_episodes=args.eval_episodes,
        eval_seed=args.eval_seed,
        threads=args.threads,
        work_dir=args.work_dir,
        progress=not args.no_progress,
    )


def print_result(result: dict) -> None:
    ev = result["evaluation"]

    def fmt(s: dict) -> str:
        t = s["mean_time_to_success_s"]
        return (
            f"{s['success_rate'] * 100:5.1f} %  mean time {t:.2f} s"
            if t
            else f"{s['success_rate'] * 100:5.1f} %"
        )

    print(f"model    {result['model']} ({result['export']['bytes'] / 1e6:.2f} MB)")
    print(f"expert   {fmt(ev['expert'])}  over {ev['expert']['episodes']} held-out episodes")
    print(f"learned  {fmt(ev['learned'])}  over {ev['learned']['episodes']} held-out episodes")
    print(f"training {result['training_wall_s']:.0f} s, total {result['total_wall_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        parser.error(str(exc))
    command = "python -m human_video_policy.training.make_default_policy " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    result = build_default_policy(config, command)
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
