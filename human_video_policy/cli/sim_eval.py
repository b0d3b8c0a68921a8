"""``hvp sim-eval``: closed-loop success rate of a policy (and the expert) in the WidowX sim."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _default_model() -> str:
    from human_video_policy.resources import default_policy_path

    return str(default_policy_path())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim-eval",
        help="evaluate a policy (and the scripted expert) on the simulated reach task",
        description="Run N reach episodes in the MuJoCo WidowX sim (episode i uses seed S+i) "
        "with the learned ONNX policy and optionally the privileged scripted expert, and "
        "print success rate and mean time to success side by side.",
    )
    parser.add_argument("--episodes", type=int, default=20, help="episodes")
    parser.add_argument(
        "--seed",
        type=int,
        default=1_000_000,
        help="first episode seed, held out from training",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        help="exported policy: a directory from `hvp export` or a .onnx file; repeat to compare "
        "several on the same seeds (default: the committed default policy)",
    )
    parser.add_argument("--expert", action="store_true", help="also evaluate the scripted expert")
    parser.add_argument("--no-model", action="store_true", help="skip the learned policy")
    parser.add_argument(
        "--json",
        default="",
        metavar="FILE",
        help="also write per-episode results to this JSON file (default: none)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from human_video_policy.errors import ConfigError
    from human_video_policy.sim.evaluate import (
        EvaluationConfig,
        evaluate,
        expert_factory,
        exported_policy_factory,
    )
    from human_video_policy.sim.statistics import wilson_interval
    from human_video_policy.training.record_demos import default_world_config
    from human_video_policy.validation import check_file

    if args.no_model and not args.expert:
        raise ConfigError("--no-model without --expert leaves nothing to evaluate")
    config = EvaluationConfig(
        episodes=args.episodes,
        seed=args.seed,
        world=default_world_config(),
        progress=not args.no_progress,
    )
    rows: dict[str, dict] = {}
    if not args.no_model:
        models = []
        for given in args.model or [_default_model()]:
            model = Path(given).expanduser()
            models.append(model if model.is_dir() else Path(check_file("--model", str(model))))
        for model, label in zip(models, model_labels(models), strict=True):
            summary = evaluate(exported_policy_factory(str(model)), config, description=label)
            rows[f"learned ({label})"] = summary.to_dict()
    if args.expert:
        rows["expert (privileged)"] = evaluate(
            expert_factory, config, description="expert"
        ).to_dict()
    print(f"{args.episodes} episodes, seeds {args.seed}..{args.seed + args.episodes - 1}")
    print(f"{'source':<36} {'success':>8} {'95% CI':>14} {'mean time':>10}")
    for name, row in rows.items():
        t = row["mean_time_to_success_s"]
        time_text = f"{t:.2f} s" if t is not None else "-"
        low, high = wilson_interval(round(row["success_rate"] * row["episodes"]), row["episodes"])
        interval = f"{low * 100:.0f}-{high * 100:.0f}%"
        print(f"{name:<36} {row['success_rate'] * 100:7.1f}% {interval:>14} {time_text:>10}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def model_labels(models: list[Path]) -> list[str]:
    """A row label per model: its file or folder name, or the path as given where two share a
    name (every `hvp export` default is RUN/export), numbered where a path is given twice."""
    names = [m.name for m in models]
    labels = [str(m) if names.count(m.name) > 1 else m.name for m in models]
    out = []
    for i, label in enumerate(labels):
        repeat = labels[:i].count(label)
        out.append(label if repeat == 0 else f"{label} #{repeat + 1}")
    return out
