"""``hvp train CONFIG.yaml [key.path=value ...] [--resume [PATH]]`` and ``hvp train-default``."""

from __future__ import annotations

import argparse

TRAIN_USAGE = "hvp train CONFIG.yaml [key.path=value ...] [--resume [PATH]]"


def register(subparsers: argparse._SubParsersAction) -> None:
    from human_video_policy.training.make_default_policy import add_arguments

    parser = subparsers.add_parser(
        "train",
        help="train a registered policy from a YAML config (docs/training.md)",
        usage=TRAIN_USAGE,
        description="Train the policy of CONFIG.yaml (sections policy, data, optim, train; "
        "docs/training.md lists every field) on reach demos and/or LeRobot-v3 datasets. "
        "Outputs in train.output_dir: config.yaml (the resolved config), checkpoints/ "
        "(step_XXXXXX.pt, last.pt), tb/ (TensorBoard events), metrics.json, losses.png. "
        "Under torchrun (--nproc_per_node N) each process takes a share of the batch.",
        epilog="Overrides: any field as key.path=value, the value read as YAML, e.g. "
        "train.steps=200 optim.lr=3e-4 data.sources[0].weight=2 policy.config.depth=2. "
        "--resume continues from train.output_dir/checkpoints/last.pt (or --resume=PATH from "
        "that checkpoint) with exactly the weights, optimizer, learning rate, random states and "
        "data position it saved. An argument after --resume that contains '=' is an override, "
        "not a path.",
    )
    parser.add_argument("config", help="the run's YAML config")
    parser.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="key.path=value | --resume [PATH]",
        help="overrides and --resume",
    )
    parser.set_defaults(func=run_train)

    parser = subparsers.add_parser(
        "train-default",
        help="record expert demos, train, export and evaluate the default reach policy",
        description="Same as 'python -m human_video_policy.training.make_default_policy': "
        "noisy-expert demonstrations + DAgger in the MuJoCo sim, ONNX export (checked "
        "against torch), closed-loop evaluation on held-out seeds, JSON report next to the "
        "model. Needs torch (training extra).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def split_rest(rest: list[str]) -> tuple[list[str], bool | str | None]:
    """(overrides, resume) from the arguments after CONFIG."""
    from human_video_policy.errors import ConfigError

    overrides: list[str] = []
    resume: bool | str | None = None
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--resume":
            resume = True
            if i + 1 < len(rest) and "=" not in rest[i + 1] and not rest[i + 1].startswith("-"):
                resume = rest[i + 1]
                i += 1
        elif arg.startswith("--resume="):
            resume = arg.split("=", 1)[1] or True
        elif arg.startswith("-"):
            raise ConfigError(f"unknown option {arg!r}; usage: {TRAIN_USAGE}")
        else:
            overrides.append(arg)
        i += 1
    return overrides, resume


def run_train(args: argparse.Namespace) -> int:
    import os

    from human_video_policy.training.train_config import load_train_config
    from human_video_policy.training.trainer import train

    overrides, resume = split_rest(list(args.rest))
    config = load_train_config(args.config, overrides)
    main = int(os.environ.get("RANK", "0")) == 0
    out = config.train.output_dir
    if main:
        what = (
            f"resuming from {resume if isinstance(resume, str) else out + '/checkpoints/last.pt'}"
        )
        print(
            f"hvp train: policy {config.policy.type}, {config.train.steps} steps"
            f"{', ' + what if resume else ''}; outputs in {out} (config.yaml, checkpoints/, tb/, "
            "metrics.json, losses.png)",
            flush=True,
        )
    result = train(config, resume=resume)
    if main:
        losses = " ".join(f"{k}={v:.6g}" for k, v in result.final_losses.items())
        print(f"hvp train: step {result.step} in {result.wall_s:.1f} s; final {losses}")
        print(f"hvp train: checkpoint {result.checkpoint}")
    return 0


def run(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from human_video_policy.training.make_default_policy import (
        build_default_policy,
        config_from_args,
        print_result,
    )

    config = config_from_args(args)
    command = "hvp " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print_result(build_default_policy(config, command))
    return 0
