"""Learned baselines of the multi-task benchmark: record demos -> train -> export -> hvp bench.

One (task, robot, policy) per run, every step the project's own command, so a row of the
benchmark table in benchmarks/README.md is reproduced by one line:

    python benchmarks/task_baselines.py --task push --policy dit --work /tmp/tb
    python benchmarks/task_baselines.py --task pick_place --robot rm75_xhand --policy bc_mlp

1. demos: ``python -m human_video_policy.training.record_task_demos`` (the task's scripted
   expert with DART noise, training seeds 0.., failed episodes dropped; 64x64 images);
2. training: ``hvp train config/train/{bc_mlp,dit}_reach.yaml`` (the reach configurations,
   unchanged but for the robot's dimensions and the step count);
3. export: ``hvp export`` (ONNX, run without torch as deployed);
4. evaluation: ``hvp bench`` on each level's first evaluation seeds (1,000,000..).

Each step is skipped when its output exists in ``--work`` (a stopped run resumes). The result
(JSON: the commands, timings, the bench rows) goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"bc_mlp": "config/train/bc_mlp_reach.yaml", "dit": "config/train/dit_reach.yaml"}
DEFAULT_STEPS = {"bc_mlp": 1600, "dit": 3000}
# The reach configurations name the WidowX's dimensions; another robot's replace them.
DIMENSIONS = {
    "widowx": ("widowx_joint_position", 7, 8),
    "rm75_xhand": ("rm75_xhand_joint_position", 19, 19),
}


def hvp(*args: str) -> list[str]:
    return [sys.executable, "-m", "human_video_policy.cli.main", *args]


def run(cmd: list[str], log: list[dict]) -> float:
    """Run ``cmd`` from the project root (its output goes to ours); returns the seconds."""
    print("+", " ".join(cmd), flush=True)
    start = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, check=True)
    seconds = time.monotonic() - start
    log.append({"command": " ".join(cmd), "seconds": round(seconds, 1)})
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--robot", default="widowx")
    parser.add_argument("--policy", choices=sorted(CONFIGS), required=True)
    parser.add_argument("--demos", type=int, default=200, help="demo episodes (default: 200)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: config)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    parser.add_argument("--episodes", type=int, default=30, help="bench episodes per cell")
    parser.add_argument(
        "--level", action="append", default=None, help="levels (default: position, scene)"
    )
    parser.add_argument("--work", default="/tmp/task_baselines", help="working folder")
    parser.add_argument("--out", default="", help="result JSON (default: <work>/<name>.json)")
    args = parser.parse_args(argv)
    levels = args.level or ["position", "scene"]
    steps = args.steps or DEFAULT_STEPS[args.policy]
    name = f"{args.task}_{args.robot}_{args.policy}"
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log: list[dict] = []

    demos = work / f"{args.task}_{args.robot}_demos.npz"
    if not demos.is_file():
        record = ["-m", "human_video_policy.training.record_task_demos", "--task", args.task]
        record += ["--robot", args.robot, "--episodes", str(args.demos), "--seed", "0"]
        run([sys.executable, *record, "--out", str(demos)], log)
    run_dir = work / f"{name}_run"
    model = run_dir / ("policy.onnx" if args.policy == "bc_mlp" else "export")
    if not model.exists():
        overrides = [
            f"data.sources[0].path={demos}",
            f"train.output_dir={run_dir}",
            f"train.steps={steps}",
            f"train.seed={args.seed}",
            f"train.checkpoint_every={steps}",
        ]
        if args.robot != "widowx":
            space, action_dim, state_dim = DIMENSIONS[args.robot]
            overrides += [
                f"policy.config.action_space={space}",
                f"policy.config.action_dim={action_dim}",
                f"policy.config.state_dim={state_dim}",
            ]
        shutil.rmtree(run_dir, ignore_errors=True)
        train_s = run(hvp("train", CONFIGS[args.policy], *overrides), log)
        run(hvp("export", str(run_dir)), log)  # -> RUN/policy.onnx (MLP), RUN/export (DiT)
    else:
        train_s = None
    bench_dir = work / f"{name}_bench"
    bench = ["bench", "--robot", args.robot, "--task", args.task, "--policy", str(model)]
    for level in levels:
        bench += ["--level", level]
    bench += ["--episodes", str(args.episodes), "--out", str(bench_dir), "--no-progress"]
    run(hvp(*bench), log)
    rows = json.loads((bench_dir / "results.json").read_text())
    result = {
        "task": args.task,
        "robot": args.robot,
        "policy": args.policy,
        "demo_episodes": args.demos,
        "training_steps": steps,
        "training_seed": args.seed,
        "training_seconds": train_s,
        "commands": log,
        "bench": rows,
    }
    out = Path(args.out) if args.out else work / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print((bench_dir / "results.md").read_text())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
