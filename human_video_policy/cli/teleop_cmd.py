"""``hvp teleop enable``: hold the teleoperation deadman from a terminal.

    hvp teleop enable                 # /teleop/enable true at 20 Hz until Ctrl-C
    hvp teleop enable --key           # only while SPACE is held down (needs a terminal)
    hvp teleop enable --duration 10   # for 10 s, then release

Runs the deadman node (human_video_policy.nodes.deadman_node) as a process; Ctrl-C stops it
and it sends one ``false`` so the robot stops at once. See docs/teleoperation.md.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "teleop",
        help="teleoperation helpers: 'teleop enable' holds the deadman",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["enable"], help="enable: hold /teleop/enable")
    parser.add_argument("--key", action="store_true", help="hold only while SPACE is held")
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second (Hz)")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S s")
    parser.set_defaults(func=run)


def node_command(args: argparse.Namespace) -> list[str]:
    """The deadman node's command line for these options."""
    return [
        sys.executable,
        "-m",
        "human_video_policy.nodes.deadman_node",
        "--ros-args",
        "-p",
        f"mode:={'key' if args.key else 'always'}",
        "-p",
        f"rate_hz:={float(args.rate)!r}",
    ]


def run(args: argparse.Namespace) -> int:
    process = subprocess.Popen(node_command(args))
    try:
        return process.wait(timeout=args.duration)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        return process.wait(timeout=10.0)
    except KeyboardInterrupt:  # the child got the same Ctrl-C from the terminal
        return process.wait(timeout=10.0)


def main(argv: list[str] | None = None) -> int:
    """``python -m human_video_policy.cli.teleop_cmd enable`` until main.py lists this module."""
    parser = argparse.ArgumentParser(prog="hvp")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["teleop", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
