"""Chunk execution modes under inference delay: success, handover jumps, jerk, time.

For each execution mode (runtime/chunk_executor.py: ``k_of_n``, ``ensemble``, ``rtc`` with the
policy wrapped in runtime/rtc.py's RealTimeChunker) and each injected inference delay (control
ticks at 50 Hz between an observation and its chunk; the executor keeps playing meanwhile),
run the same seeds of the WidowX reach task (sim/evaluate.py, the one closed loop of
sim/closed_loop.py) with an exported policy (default: the committed DiT), and measure from the
commands sent (runtime/smoothness.py): success, time to target, the step and the jump at chunk
boundaries, the step within chunks, jerk.

    python benchmarks/chunk_execution.py --episodes 20 --json results/chunk_execution.json

``--task T [--robot R]`` runs a benchmark task (sim/tasks) instead, with the task's scripted
expert as the policy (the one policy that succeeds on every task: what the modes do to a policy
that succeeds), through the sim node's safety layer; the table then also has the task score::

    python benchmarks/chunk_execution.py --task push --episodes 10 --json results/modes_push.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering of the sim camera

MODES = {
    "k_of_n": {"mode": "k_of_n", "execute_steps": 2},
    "ensemble": {"mode": "ensemble", "ensemble_decay": 0.5},
    "rtc": {"mode": "rtc"},
}


def _smoothness(log: list):
    """runtime/smoothness.py over one episode's command log (time, command, starts a chunk)."""
    from human_video_policy.runtime.smoothness import command_smoothness

    t = np.array([e[0] for e in log])
    q = np.array([e[1] for e in log])
    starts = np.flatnonzero([e[2] for e in log])
    return command_smoothness(t, q, starts, 1.0 / 50.0)


def _summary(rows: list) -> dict:
    """Means over the episodes of a cell: (result, smoothness report, wall seconds) rows."""
    ok = [r for r, _, _ in rows if r.success]

    def mean(key: str) -> float:
        return float(np.nanmean([getattr(rep, key) for _, rep, _ in rows]))

    return {
        "episodes": len(rows),
        "success": len(ok),
        "mean_time_to_target_s": float(np.mean([r.time_to_success for r in ok])) if ok else None,
        "boundary_step": mean("boundary_step"),
        "boundary_jump": mean("boundary_jump"),
        "within_step": mean("within_step"),
        "jerk_rms": mean("jerk_rms"),
        "wall_s_per_episode": float(np.mean([w for _, _, w in rows])),
    }


def run_cell(model: str, mode: str, delay: int, seeds: list[int]) -> dict:
    from human_video_policy.runtime.chunk_executor import ChunkExecutorConfig
    from human_video_policy.runtime.load_policy import load_policy
    from human_video_policy.runtime.rtc import RealTimeChunker
    from human_video_policy.sim.evaluate import EvaluationConfig, run_episode
    from human_video_policy.sim.widowx_world import WidowXWorld

    policy = load_policy(model)
    if mode == "rtc":
        policy = RealTimeChunker(policy, execute_rows=1)
    config = EvaluationConfig(
        episodes=len(seeds), executor=ChunkExecutorConfig(**MODES[mode]), progress=False
    )
    rows = []
    with WidowXWorld(config.world) as world:
        for seed in seeds:
            log: list = []
            start = time.perf_counter()
            result = run_episode(world, policy, seed, config, None, delay, log)
            rows.append((result, _smoothness(log), time.perf_counter() - start))
    return {"mode": mode, "delay_steps": delay, **_summary(rows)}


def run_task_cell(task: str, robot: str, mode: str, delay: int, seeds: list[int]) -> dict:
    """Like :func:`run_cell` on a benchmark task, the task's scripted expert as the policy."""
    from human_video_policy.runtime.chunk_executor import ChunkExecutorConfig
    from human_video_policy.runtime.rtc import RealTimeChunker
    from human_video_policy.sim.task_episode import run_task_episode
    from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig

    rows = []
    with TaskWorld(TaskWorldConfig(task=task, robot=robot)) as world:
        for seed in seeds:
            world.reset(seed)
            policy = world.task.expert(world)
            if mode == "rtc":
                policy = RealTimeChunker(policy, execute_rows=1)
            log: list = []
            start = time.perf_counter()
            episode = run_task_episode(
                world, policy, seed, safety=True, execution=ChunkExecutorConfig(**MODES[mode]),
                inference_delay_steps=delay, command_log=log,
            )  # fmt: skip
            rows.append((episode, _smoothness(log), time.perf_counter() - start))
    score = float(np.mean([e.score for e, _, _ in rows]))
    return {"task": task, "robot": robot, "mode": mode, "delay_steps": delay,
            "task_score": score, **_summary(rows)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from human_video_policy.resources import default_policy_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(default_policy_path()))
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1_000_000, help="first seed (held out)")
    parser.add_argument("--delays", default="0,1,3,5", help="control ticks, comma separated")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", default="", help="write the rows here")
    parser.add_argument("--task", default="", help="a benchmark task (scripted expert policy)")
    parser.add_argument("--robot", default="widowx", help="with --task: widowx or rm75_xhand")
    args = parser.parse_args(argv)
    seeds = list(range(args.seed, args.seed + args.episodes))
    rows = []
    print(
        "| mode | delay (ticks of 20 ms) | success | task score | time to success (s) | "
        "step at boundary | jump at boundary | step within chunk | jerk rms (rad/s^3) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for delay in (int(d) for d in args.delays.split(",")):
        for mode in args.modes.split(","):
            if args.task:
                row = run_task_cell(args.task, args.robot, mode, delay, seeds)
            else:
                row = run_cell(args.model, mode, delay, seeds)
            rows.append(row)
            ttt = row["mean_time_to_target_s"]
            score = row.get("task_score")
            print(
                f"| {mode} | {delay} | {row['success']}/{row['episodes']} | "
                f"{'-' if score is None else f'{score:.2f}'} | "
                f"{'-' if ttt is None else f'{ttt:.2f}'} | {row['boundary_step']:.4f} | "
                f"{row['boundary_jump']:.4f} | {row['within_step']:.4f} | {row['jerk_rms']:.0f} |",
                flush=True,
            )
    if args.json:
        what = f"scripted expert, {args.task} on {args.robot}" if args.task else args.model
        out = {"policy": what, "seeds": [seeds[0], seeds[-1]], "rows": rows}
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
