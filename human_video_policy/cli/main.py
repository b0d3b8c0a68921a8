"""``hvp``: one entry point, one subcommand per job.

Each subcommand lives in its own module exposing ``register(subparsers)``; the module sets
``func(args) -> int`` on its parser. Adding a command = writing one module + one line below.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from human_video_policy import __version__
from human_video_policy.cli.common import apply_help_format, print_help
from human_video_policy.errors import HvpError

# module name under human_video_policy.cli, in --help order
COMMAND_MODULES = (
    "launch_cmd",
    "sim_eval",
    "bench_cmd",
    "replay_cmd",
    "policy_cmd",
    "doctor",
    "topic",
    "service_cmd",
    "bag_cmd",
    "train",
    "export_cmd",
    "video_cmd",
    "record_cmd",
    "dataset_cmd",
    "view_cmd",
    "teleop_cmd",
    "safety_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hvp",
        description="human_video_policy: learn robot manipulation from human hand videos. "
        "Run 'hvp <command> --help' for each command.",
    )
    parser.add_argument("--version", action="version", version=f"hvp {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"human_video_policy.cli.{name}")
        module.register(subparsers)
    return apply_help_format(parser)  # every option's help shows its default


def main(argv: list[str] | None = None) -> int:
    # Headless MuJoCo rendering (hvp dataset from-sim, bench, eval...) as the sim nodes do; must
    # be set before mujoco is imported. A user's own MUJOCO_GL (glfw, osmesa) wins.
    os.environ.setdefault("MUJOCO_GL", "egl")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        return print_help(parser)
    try:
        return int(args.func(args) or 0)
    except HvpError as exc:
        print(f"hvp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
