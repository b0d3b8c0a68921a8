"""Speed of the benchmark task suite, in process: sim stepping + rendering against real time,
and episodes per minute of `hvp bench`.

    python benchmarks/task_suite_speed.py --json benchmarks/results/task_suite_speed.json

1. Real-time factor of one task world stepping physics at 500 Hz (50 Hz control) and rendering
   one 224x224 RGB camera image at 10 Hz, the policy's input rate: sim seconds per wall second,
   per task, with the expert driving (so contacts happen). Goal (issue 16): >= 10x real time.
2. The same without rendering (physics only) and rendering alone (ms per 224x224 frame).
3. Episodes per minute of the in-process bench loop (run_task_episode) for the expert and the
   frozen policy (which always runs to the time limit), 64x64 images as in CI.
4. Episodes per minute of `hvp bench --ros` (the real graph over DDS, expert inside sim_node,
   128x128 camera at 15 Hz) at realtime factors 1 and 3, launch included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from human_video_policy.sim.task_episode import FrozenPolicy, run_task_episode
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
from human_video_policy.sim.tasks import evaluation_seeds, task_names


def realtime_factor(task: str, seconds: float, render: bool) -> float:
    """Sim seconds per wall second: expert chunks at 10 Hz, physics steps, optional render."""
    world = TaskWorld(TaskWorldConfig(task=task, image_width=224, image_height=224))
    expert = world.task.expert(world)
    sim_time, seed = 0.0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        world.reset(seed)
        seed += 1
        while world.time < 6.0:
            if render:
                world.render_rgb()
            chunk = expert.predict_chunk(None, world.joint_positions(), world.time)
            for row in chunk.actions[:5]:
                world.set_joint_command(row.astype(np.float64))
                world.step(0.02)
        sim_time += world.time
    wall = time.perf_counter() - start
    world.close()
    return sim_time / wall


def render_ms(task: str, frames: int = 200) -> float:
    world = TaskWorld(TaskWorldConfig(task=task, image_width=224, image_height=224))
    world.render_rgb()
    start = time.perf_counter()
    for _ in range(frames):
        world.render_rgb()
    took = (time.perf_counter() - start) / frames * 1e3
    world.close()
    return took


def episodes_per_minute(task: str, policy: str, episodes: int) -> float:
    world = TaskWorld(TaskWorldConfig(task=task, image_width=64, image_height=64))
    source = world.task.expert(world) if policy == "expert" else FrozenPolicy(world)
    start = time.perf_counter()
    for seed in evaluation_seeds("position", episodes):
        run_task_episode(world, source, seed)
    minutes = (time.perf_counter() - start) / 60
    world.close()
    return episodes / minutes


def ros_episodes_per_minute(task: str, episodes: int, realtime_factor: float) -> float:
    import tempfile

    from human_video_policy.sim.bench import BenchConfig, run_cell_through_ros

    config = BenchConfig(
        tasks=[task], policies=["expert"], episodes=episodes, through_ros=True,
        realtime_factor=realtime_factor,
    )  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        done = run_cell_through_ros(config, "expert", task, "position", Path(tmp))
    minutes = (time.perf_counter() - start) / 60
    assert len(done) == episodes
    return episodes / minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wall seconds per task")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per bench figure")
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--ros", action="store_true", help="also measure hvp bench --ros")
    args = parser.parse_args()
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "tasks": {},
    }
    for task in task_names(robot="widowx"):
        row = {
            "realtime_factor_render_10hz_224": realtime_factor(task, args.seconds, True),
            "realtime_factor_physics_only": realtime_factor(task, args.seconds / 2, False),
            "render_224_ms": render_ms(task),
            "bench_episodes_per_min_expert": episodes_per_minute(task, "expert", args.episodes),
            "bench_episodes_per_min_frozen": episodes_per_minute(task, "frozen", args.episodes),
        }
        if args.ros:
            for factor in (1.0, 3.0):
                key = f"bench_ros_episodes_per_min_expert_rtf{factor:g}"
                row[key] = ros_episodes_per_minute(task, 5, factor)
        results["tasks"][task] = {k: round(v, 2) for k, v in row.items()}
        print(task, results["tasks"][task], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
