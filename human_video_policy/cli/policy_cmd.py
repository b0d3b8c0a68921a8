"""``hvp policy stats BAG...``: how smoothly a recorded policy ran (runtime/smoothness.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="look at a policy's run: hvp policy stats BAG",
        description="Tools for policies that ran on a robot or in the sim graph.",
    )
    sub = parser.add_subparsers(dest="policy_command", metavar="<stats>")
    p = sub.add_parser(
        "stats",
        help="smoothness of recorded commands: jumps at chunk boundaries, jerk, jitter, latency",
        description="From a bag's commands (/arm/joint_commands), the executor's handover "
        "marks (/executor/chunk_start) and the policy's chunks (/policy/action_chunk): the "
        "step and the jump at chunk boundaries against the step within a chunk, jerk, command "
        "period median/p99/max, jitter and deadline misses, inference latency median/p99. "
        "Exit 2 when a bag cannot be read or holds no commands.",
    )
    p.add_argument("bags", nargs="+", help="bags or hvp record session folders")
    p.add_argument("--commands", default="/arm/joint_commands", help="(default: %(default)s)")
    p.add_argument("--chunk-start", default="/executor/chunk_start", help="(default: %(default)s)")
    p.add_argument("--chunks", default="/policy/action_chunk", help="(default: %(default)s)")
    p.add_argument(
        "--rate", type=float, default=None, help="nominal command rate, Hz (default: measured)"
    )
    p.add_argument("--json", default="", metavar="FILE", help="write the reports (default: none)")
    p.set_defaults(func=run)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run(args: argparse.Namespace) -> int:
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
