"""``hvp train-default``: rebuild the default WidowX reach policy (ONNX + JSON report)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from human_video_policy.training.make_default_policy import add_arguments

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
