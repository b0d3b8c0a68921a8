"""Latency from image in to first command out, through the real graph, per execution mode.

Runs the sim_widowx graph (sim_node + policy_node + executor_node as processes over DDS,
loopback) with the committed DiT for ``--episodes`` held-out reach episodes per cell and
records, from a probe node: every chunk (its observation stamp = the image's stamp, its header
stamp = when it was published) and every handover the executor marks on /executor/chunk_start
(the stamp of the first command that plays a new chunk). Per chunk that started playing:

- image -> chunk published (the policy node: synchronisation, inference, publication);
- image -> first command out (+ DDS to the executor, the wait for its next tick, and in
  k-of-N mode the rows the executor finishes before it switches).

A handover is matched with the newest chunk published at or before its stamp. The image's own
age when the policy's 10 Hz tick takes it (the sim camera renders at 15 Hz: ~33 ms on average)
is part of both figures, as it is on a robot. All stamps are
sim time, which runs at the wall clock's pace here (realtime_factor 1); the sim's clock ticks
every 10 ms, so each figure is quantised to 10 ms. Cells: 10 DDIM steps (the model's own, a
chunk in ~6 ms) and 100 (~50 ms: longer than one 20 ms control period), k_of_n and rtc.

    cd benchmarks && ../.venv/bin/python graph_latency.py --json results/graph_latency.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _stamp(t) -> float:
    return t.sec + 1e-9 * t.nanosec


def run_cell(steps: int, mode: str, episodes: int, seed: int) -> dict:
    from builtin_interfaces.msg import Time
    from human_video_policy_msgs.msg import ActionChunk
    from ros_session import isolated_environment, spinning_probe
    from std_msgs.msg import Bool

    from human_video_policy.nodes.qos import RELIABLE

    env = isolated_environment()
    args = [
        f"episodes:={episodes}", f"episode_seed:={seed}", "execution_provider:=cpu",
        f'policy_args:={{"inference_steps": {steps}}}',
    ]  # fmt: skip
    if mode == "rtc":
        args += ["executor_mode:=rtc", "real_time_chunking:=true"]
    chunks: list[tuple[float, float]] = []
    starts: list[float] = []
    outcomes: list[bool] = []
    with spinning_probe("graph_latency_probe") as node:
        node.create_subscription(
            ActionChunk,
            "/policy/action_chunk",
            lambda m: chunks.append((_stamp(m.observation_stamp), _stamp(m.header.stamp))),
            RELIABLE,
        )
        node.create_subscription(
            Time, "/executor/chunk_start", lambda m: starts.append(_stamp(m)), RELIABLE
        )
        node.create_subscription(Bool, "/episode/success", lambda m: outcomes.append(m.data), 10)
        command = [sys.executable, "-m", "human_video_policy.cli.main", "launch", "sim_widowx"]
        graph = subprocess.run(
            [*command, *args], env=env, capture_output=True, text=True, timeout=600
        )
        time.sleep(0.5)
    if graph.returncode != 0:
        raise RuntimeError(f"the graph failed ({graph.returncode}):\n{graph.stdout[-3000:]}")
    published = np.array([c[1] for c in chunks])
    to_chunk = [(p - o) * 1e3 for o, p in chunks]
    to_command = []
    for s in starts:
        i = int(np.searchsorted(published, s, side="right")) - 1
        if i >= 0:
            to_command.append((s - chunks[i][0]) * 1e3)

    def stats(values: list[float]) -> dict:
        a = np.asarray(values)
        return {
            "n": int(a.size),
            "median_ms": float(np.median(a)),
            "p99_ms": float(np.percentile(a, 99)),
        }

    return {
        "ddim_steps": steps,
        "mode": mode,
        "episodes": len(outcomes),
        "success": int(sum(outcomes)),
        "image_to_chunk": stats(to_chunk),
        "image_to_first_command": stats(to_command),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1_000_000)
    parser.add_argument("--steps", default="10,100", help="DDIM steps, comma separated")
    parser.add_argument("--modes", default="k_of_n,rtc")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    rows = []
    print("| DDIM steps | mode | success | image -> chunk median / p99 (ms) | "
          "image -> first command median / p99 (ms) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for steps in (int(s) for s in args.steps.split(",")):
        for mode in args.modes.split(","):
            row = run_cell(steps, mode, args.episodes, args.seed)
            rows.append(row)
            a, b = row["image_to_chunk"], row["image_to_first_command"]
            print(
                f"| {steps} | {mode} | {row['success']}/{row['episodes']} | "
                f"{a['median_ms']:.0f} / {a['p99_ms']:.0f} | "
                f"{b['median_ms']:.0f} / {b['p99_ms']:.0f} |",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"seeds_from": args.seed, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
