"""WidowX 250s inverse kinematics: success rate and time per solve on this machine.

1,000 random reachable targets (forward kinematics of configurations drawn uniformly within the
joint limits), each solved twice: from HOME_POSITION (cold start, random restarts allowed) and
from a nearby warm start (the target configuration + N(0, 0.1 rad) noise, the realistic case of
tracking a moving target from the current joint state). Tolerance 1 mm / 1 mrad.

    .venv/bin/python benchmarks/ik_benchmark.py [--targets 1000] [--seed 0]

Prints a Markdown table and writes benchmarks/results/ik_widowx.json.
For comparison only: TRAC-IK's published figure is about 0.4 ms per solve for a 7-DoF arm
(a published figure, not measured here).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from human_video_policy.kinematics.inverse import IkConfig, IkSolver
from human_video_policy.robots.widowx import HOME_POSITION

RESULTS = Path(__file__).resolve().parent / "results"


def run(solver: IkSolver, targets: list[np.ndarray], seeds: list[np.ndarray]) -> dict:
    times_ms, iterations, attempts, successes = [], [], [], 0
    for T, seed in zip(targets, seeds, strict=True):
        t0 = time.perf_counter()
        result = solver.solve(T, seed, check_jump=False)
        times_ms.append(1e3 * (time.perf_counter() - t0))
        iterations.append(result.iterations)
        attempts.append(result.attempts)
        successes += result.success
    t = np.asarray(times_ms)
    return {
        "n": len(targets),
        "success_rate": successes / len(targets),
        "median_ms": float(np.median(t)),
        "p99_ms": float(np.percentile(t, 99)),
        "max_ms": float(t.max()),
        "mean_iterations": float(np.mean(iterations)),
        "mean_attempts": float(np.mean(attempts)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-rad", type=float, default=0.1)
    args = parser.parse_args()

    config = IkConfig(jump_dt_s=None)
    solver = IkSolver.for_widowx(config)
    rng = np.random.default_rng(args.seed)
    qs = [rng.uniform(solver.lower, solver.upper) for _ in range(args.targets)]
    targets = [solver.forward(q) for q in qs]
    home = np.array(HOME_POSITION[:6])
    near = [
        np.clip(q + rng.normal(0.0, args.noise_rad, q.shape), solver.lower, solver.upper)
        for q in qs
    ]
    for T in targets[:20]:  # warm-up (imports, caches)
        solver.solve(T, home, check_jump=False)

    rows = {
        "home warm start": run(solver, targets, [home] * len(targets)),
        f"nearby warm start (+N(0, {args.noise_rad} rad))": run(solver, targets, near),
    }
    print("| start | targets | success | median ms | p99 ms | max ms | mean iterations |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['n']} | {100 * r['success_rate']:.1f} % | {r['median_ms']:.3f} | "
            f"{r['p99_ms']:.3f} | {r['max_ms']:.3f} | {r['mean_iterations']:.1f} |"
        )
    print(
        "\nTRAC-IK, for comparison: ~0.4 ms per solve for a 7-DoF arm is its published figure, "
        "not measured here."
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "ik_widowx.json"
    out.write_text(
        json.dumps(
            {
                "robot": "wx250s",
                "tolerance": {
                    "position_m": config.position_tolerance_m,
                    "rotation_rad": config.rotation_tolerance_rad,
                },
                "config": {
                    k: getattr(config, k)
                    for k in (
                        "max_iterations",
                        "damping",
                        "error_damping",
                        "max_step_rad",
                        "random_restarts",
                        "seed",
                    )
                },
                "target_seed": args.seed,
                "machine": {"platform": platform.platform(), "python": platform.python_version()},
                "results": rows,
                "reference": "TRAC-IK ~0.4 ms/solve, 7-DoF arm: published figure, not measured",
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
