"""``hvp teleop enable``: hold the teleoperation deadman from a terminal.

    hvp teleop enable                 # /teleop/enable true at 20 Hz until Ctrl-C
    hvp teleop enable --key           # only while SPACE is held down (needs a terminal)
    hvp teleop enable --duration 10   # held for 10 s once the teleop graph listens, then released

Runs the deadman node (human_video_policy.nodes.deadman_node) as a process; Ctrl-C stops it
and it sends one ``false`` so the robot stops at once. ``--duration`` counts from the moment a
subscriber of /teleop/enable (wrist_teleop, leader_follower) is connected, not from the start
of the command, so the robot is enabled for the whole time asked for. See
docs/teleoperation.md.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from human_video_policy.cli.common import print_help

    parser = subparsers.add_parser(
        "teleop",
        help="teleoperation helpers: 'teleop enable' holds the deadman",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="teleop_command", metavar="<enable>")
    parser.set_defaults(func=lambda _args: print_help(parser))
    enable = commands.add_parser(
        "enable",
        help="hold the deadman: /teleop/enable true at --rate Hz until Ctrl-C",
        description="Hold the teleoperation deadman (/teleop/enable, std_msgs/Bool true at "
        "--rate Hz); on exit one false releases it at once.",
    )
    enable.add_argument("--key", action="store_true", help="hold only while SPACE is held")
    enable.add_argument("--rate", type=float, default=20.0, help="messages per second (Hz)")
    enable.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="hold the deadman for S seconds, counted from the moment a subscriber of "
        "/teleop/enable (the teleop graph) is connected, then release it and exit (default: "
        "until Ctrl-C)",
    )
    enable.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="S",
        help="with --duration: exit 1 when no subscriber connected within S seconds",
    )
    enable.set_defaults(func=run)


def node_command(args: argparse.Namespace) -> list[str]:
    """The deadman node's command line for these options."""
    command = [
        sys.executable,
        "-m",
        "human_video_policy.nodes.deadman_node",
        "--ros-args",
        "-p",
        f"mode:={'key' if args.key else 'always'}",
        "-p",
        f"rate_hz:={float(args.rate)!r}",
    ]
    if args.duration is not None:
        command += ["-p", f"duration_s:={float(args.duration)!r}"]
        command += ["-p", f"subscriber_wait_s:={float(args.wait)!r}"]
    return command


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        print(f"hvp teleop enable: --duration {args.duration} is invalid: must be > 0")
        return 2
    process = subprocess.Popen(node_command(args))
    try:
        return process.wait()  # the node ends itself after --duration
    except KeyboardInterrupt:  # the child got the same Ctrl-C from the terminal
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        return process.wait(timeout=10.0)


def main(argv: list[str] | None = None) -> int:
    """``python -m human_video_policy.cli.teleop_cmd enable`` = ``hvp teleop enable``."""
    from human_video_policy.cli.common import apply_help_format

    parser = argparse.ArgumentParser(prog="hvp")
    register(parser.add_subparsers(dest="command"))
    apply_help_format(parser)
    args = parser.parse_args(["teleop", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
