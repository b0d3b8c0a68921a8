"""``hvp bench``: policies x tasks x generalisation levels in the MuJoCo task suite."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run the multi-task benchmark (success rate with 95 %% CI and task score)",
        description="Run N closed-loop episodes per (task, generalisation level, policy) in "
        "the MuJoCo task suite, on each level's fixed evaluation seeds, and write "
        "results.json, results.md (success rate [95 %% Wilson CI], mean task score) and "
        "results.png. Policies: expert (privileged scripted expert), frozen, random, or an "
        "exported model path. Exit code 1 when a rate is below a floor of the config.",
    )
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    parser.add_argument(
        "--config",
        default="",
        metavar="YAML",
        help="a BenchConfig file (config/bench/*.yaml) (default: the BenchConfig defaults)",
    )
    parser.add_argument("--robot", default=None, help="robot (default: widowx)")
    parser.add_argument(
        "--task", action="append", default=None, help="task name; repeat (default: all)"
    )
    parser.add_argument(
        "--level", action="append", default=None, help="level; repeat (default: position)"
    )
    parser.add_argument(
        "--policy",
        action="append",
        default=None,
        help="expert, frozen, random or an exported model path; repeat (default: expert, frozen)",
    )
    parser.add_argument(
        "--episodes", type=int, default=None, help="episodes per cell (default: the config's, 20)"
    )
    parser.add_argument(
        "--out", default="runs/bench", help="output folder for results.json/.md/.png"
    )
    parser.add_argument(
        "--ros",
        action="store_true",
        help="run each cell through the real node graph (hvp launch sim_task / "
        "sim_task_policy over DDS) instead of in process (default: in process)",
    )
    parser.add_argument(
        "--realtime-factor",
        type=float,
        default=None,
        help="--ros: sim seconds per wall second (default: the config's, 1.0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _list() -> int:
    from human_video_policy.sim.tasks import task_class, task_names

    for name in task_names():
        cls = task_class(name)
        print(
            f"{name:14s} robots: {', '.join(cls.robots):10s} tags: {', '.join(cls.tags):28s} "
            f"stages: {' > '.join(cls.stages)}\n{'':14s} {cls.description}"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    from human_video_policy.sim.bench import (
        BenchConfig,
        floor_failures,
        markdown_table,
        run_bench,
        write_results,
    )

    config = BenchConfig.from_yaml(args.config) if args.config else BenchConfig()
    overrides = {
        "robot": args.robot,
        "tasks": args.task,
        "levels": args.level,
        "policies": args.policy,
        "episodes": args.episodes,
        "through_ros": True if args.ros else None,
        "realtime_factor": args.realtime_factor,
    }
    fields = {k: v for k, v in vars(config).items()}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    if args.robot is not None and args.task is None:
        fields["tasks"] = []
    config = BenchConfig(**fields)
    rows, episodes = run_bench(config, progress=not args.no_progress)
    paths = write_results(rows, episodes, config, Path(args.out))
    print(markdown_table(rows), end="")
    print(f"wrote {paths['json']}, {paths['markdown']}, {paths['plot']}")
    failures = floor_failures(rows, config.floors)
    for line in failures:
        print(f"below floor: {line}", file=sys.stderr)
    return 1 if failures else 0
