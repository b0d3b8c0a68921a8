"""``hvp replay BAG...``: replay recorded sim episodes and check them (exit 1 on a failure)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay recorded sim episode bags and check trajectories, outcome and limits",
        description="Rebuild each bag's episode (task, level, seed from /sim/episode) in the "
        "MuJoCo task world, re-issue the recorded /arm/joint_commands at their times (open "
        "loop) and check: the joint trajectory stays within --tolerance of the recorded "
        "/arm/joint_states, the outcome equals the recorded one, no command is outside the "
        "robot's limits. With --policy, also re-run a policy at every recorded chunk (closed "
        "loop: expert or an exported model on the recorded images) and compare its chunks. "
        "Exit code 0 when every bag passes, 1 when one fails (a report says why), 2 when a bag "
        "cannot be replayed (truncated, another robot, no episode information).",
    )
    parser.add_argument("bags", nargs="+", help="episode bags or hvp record session folders")
    parser.add_argument(
        "--tolerance", type=float, default=0.05, help="max joint error (rad, m for the gripper)"
    )
    parser.add_argument(
        "--policy",
        default="",
        help="closed loop: expert or an exported model path (default: open loop only)",
    )
    parser.add_argument(
        "--chunk-tolerance", type=float, default=0.05, help="closed loop: max mean chunk error"
    )
    parser.add_argument("--no-outcome", action="store_true", help="do not compare outcomes")
    parser.add_argument(
        "--json", default="", metavar="FILE", help="write the reports here (default: none)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from human_video_policy.data.bag_to_dataset import find_bags
    from human_video_policy.sim.replay import ReplayConfig, replay_bag

    config = ReplayConfig(
        position_tolerance=args.tolerance,
        check_outcome=not args.no_outcome,
        policy=args.policy,
        chunk_tolerance=args.chunk_tolerance,
    )
    reports = []
    for bag in find_bags(args.bags):
        report = replay_bag(bag, config)
        print(report.text(), flush=True)
        reports.append(report)
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in reports], indent=1) + "\n")
    failed = [r for r in reports if not r.passed]
    print(f"{len(reports) - len(failed)}/{len(reports)} bags passed")
    return 1 if failed else 0
