"""``hvp policy stats BAG...|--live``: how smoothly a policy ran, from a recording or while it
runs (runtime/smoothness.py; the live subscriber is bringup/policy_stats_live.py)."""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="look at a policy's run: hvp policy stats BAG|--live",
        description="Tools for policies that ran on a robot or in the sim graph.",
    )
    sub = parser.add_subparsers(dest="policy_command", metavar="<stats>")
    p = sub.add_parser(
        "stats",
        help="smoothness of the commands: jumps at chunk boundaries, jerk, jitter, latency",
        description="From the commands (/arm/joint_commands), the executor's handover "
        "marks (/executor/chunk_start) and the policy's chunks (/policy/action_chunk) of a bag, "
        "or live from the running graph with --live: the step and the jump at chunk boundaries "
        "against the step within a chunk, jerk, command period median/p99/max, jitter and "
        "deadline misses, inference latency median/p99; live also the policy's state, execution "
        "provider and chunk index (/policy/status), printed every --interval seconds. Exit 2 "
        "when a bag cannot be read or no command arrived.",
    )
    p.add_argument("bags", nargs="*", help="bags or hvp record session folders (not with --live)")
    p.add_argument("--live", action="store_true", help="measure the running graph instead of bags")
    p.add_argument("--commands", default="/arm/joint_commands", help="(default: %(default)s)")
    p.add_argument("--chunk-start", default="/executor/chunk_start", help="(default: %(default)s)")
    p.add_argument("--chunks", default="/policy/action_chunk", help="(default: %(default)s)")
    p.add_argument(
        "--status",
        default="/policy/status",
        help="--live: PolicyStatus topic (default: %(default)s)",
    )
    p.add_argument(
        "--rate", type=float, default=None, help="nominal command rate, Hz (default: measured)"
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="--live: stop after S seconds (default: until Ctrl-C)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="S",
        help="--live: print the report every S seconds (default: %(default)s)",
    )
    p.add_argument(
        "--window",
        type=int,
        default=500,
        metavar="N",
        help="--live: measure the last N commands (default: %(default)s)",
    )
    p.add_argument(
        "--json",
        default="",
        metavar="FILE",
        help="write the reports as JSON (--live: the last one) (default: none)",
    )
    p.set_defaults(func=functools.partial(run, parser=p))
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _usage_problem(args: argparse.Namespace) -> str | None:
    """Why these arguments make no command (None: they do)."""
    if args.live and args.bags:
        return f"give bags or --live, not both (bags: {' '.join(args.bags)})"
    if not args.live and not args.bags:
        return "give one or more bags, or --live to measure the running graph"
    if args.rate is not None and not (math.isfinite(args.rate) and args.rate > 0):
        return f"--rate {args.rate} is invalid: must be > 0 Hz"
    if not args.live:
        return None
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        return f"--duration {args.duration} is invalid: must be > 0 s"
    if not (math.isfinite(args.interval) and args.interval > 0):
        return f"--interval {args.interval} is invalid: must be > 0 s"
    if args.window < 10:
        return f"--window {args.window} is invalid: must be >= 10 commands"
    return None


def run(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    problem = _usage_problem(args)
    if problem is not None:
        if parser is not None:
            parser.error(problem)  # usage + message, exit 2
        print(f"hvp policy stats: error: {problem}", file=sys.stderr)
        return 2
    if args.live:
        from human_video_policy.bringup.policy_stats_live import run_live

        return run_live(
            args.commands,
            args.chunk_start,
            args.chunks,
            args.status,
            args.duration,
            args.interval,
            args.json,
            args.window,
            args.rate,
        )

    from human_video_policy.data.bag_to_dataset import find_bags
    from human_video_policy.runtime.smoothness import bag_smoothness

    reports = {}
    for bag in find_bags(args.bags):
        report = bag_smoothness(bag, args.commands, args.chunk_start, args.chunks, args.rate)
        print(f"{bag}\n  " + report.text().replace("\n", "\n  "), flush=True)
        reports[str(bag)] = report.to_json()
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1) + "\n")
    return 0
