"""Policy latency (image in -> chunk out) and 10 Hz loop period jitter on this machine.

Three measurements, one run:
  core   - OnnxPolicy.predict_chunk on camera-sized sim images (resize + ORT), 1 and 2 threads;
           beside it the same network in PyTorch eager when a checkpoint (.pt) is given.
  loop   - a 10 Hz deadline loop running that inference: period median / p99 / max deviation.
  ros    - the real policy_node process over DDS (loopback): a probe publishes images and joint
           states, and measures image stamp -> ActionChunk received, and the chunk period.

    .venv/bin/python benchmarks/policy_latency.py [--model M] [--iterations 300] [--loop-s 20]

Prints a Markdown table and writes benchmarks/results/policy_latency_<W>x<H>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from human_video_policy.resources import resource_path
from human_video_policy.runtime.onnx_policy import OnnxPolicy

RESULTS = Path(__file__).resolve().parent / "results"


def stats(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms, dtype=np.float64)
    return {
        "n": int(a.size),
        "median_ms": float(np.median(a)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


def camera_frames(count: int, width: int, height: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Real rendered frames of the reach scene (different targets), and a joint state."""
    from human_video_policy.sim.widowx_world import WidowXWorld, WidowXWorldConfig

    frames = []
    with WidowXWorld(WidowXWorldConfig(image_width=width, image_height=height)) as world:
        for seed in range(count):
            world.reset(seed)
            frames.append(world.render_rgb().copy())
        state = world.joint_positions().astype(np.float32)  # the 8 state joints
    return frames, state


def bench_core(model: Path, frames, state, iterations: int, threads: int) -> dict:
    policy = OnnxPolicy(model, intra_op_threads=threads)
    for frame in frames[:5]:
        policy.predict_chunk(frame, state)
    samples = []
    for i in range(iterations):
        start = time.perf_counter()
        policy.predict_chunk(frames[i % len(frames)], state)
        samples.append((time.perf_counter() - start) * 1e3)
    return stats(samples)


def bench_torch(checkpoint: Path | None, frames, state, iterations: int) -> dict | None:
    """The same network in PyTorch eager (the peer): trained weights from a checkpoint, or the
    default model's architecture (assets/policies/widowx_reach.json) with fresh weights - the
    cost of a forward pass does not depend on the values of the weights."""
    try:
        import torch

        from human_video_policy.policies.bc_mlp.configuration_bc_mlp import BCMLPConfig
        from human_video_policy.policies.bc_mlp.modeling_bc_mlp import BCMLPPolicy
        from human_video_policy.runtime.image_ops import prepare_rgb, to_chw_float
        from human_video_policy.training.train_reach import load_checkpoint
    except ImportError as exc:
        print(f"(torch peer skipped: {exc})")
        return None
    torch.set_num_threads(1)
    if checkpoint is not None:
        module = load_checkpoint(checkpoint)
    else:
        report = json.loads(resource_path("assets", "policies", "widowx_reach.json").read_text())
        module = BCMLPPolicy(BCMLPConfig(**report["model_config"])).eval()
    height, width = module.config.image_height, module.config.image_width
    samples = []
    with torch.inference_mode():
        for i in range(iterations + 5):
            start = time.perf_counter()
            pixels = to_chw_float(prepare_rgb(frames[i % len(frames)], height, width))
            module(torch.from_numpy(pixels), torch.from_numpy(state[None]))
            if i >= 5:
                samples.append((time.perf_counter() - start) * 1e3)
    return stats(samples)


def bench_loop(model: Path, frames, state, seconds: float, rate_hz: float = 10.0) -> dict:
    """Deadline-scheduled loop (next = previous deadline + period), like a ROS wall timer."""
    policy = OnnxPolicy(model, intra_op_threads=1)
    period = 1.0 / rate_hz
    ticks: list[float] = []
    deadline = time.perf_counter() + period
    misses = 0
    i = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        delay = deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ticks.append(time.perf_counter())
        policy.predict_chunk(frames[i % len(frames)], state)
        i += 1
        deadline += period
        if time.perf_counter() > deadline:
            misses += 1
            deadline = time.perf_counter() + period
    periods = np.diff(ticks) * 1e3
    jitter = np.abs(periods - period * 1e3)
    return {
        "rate_hz": rate_hz,
        "ticks": len(ticks),
        "period_median_ms": float(np.median(periods)),
        "jitter_median_ms": float(np.median(jitter)),
        "jitter_p99_ms": float(np.percentile(jitter, 99)),
        "jitter_max_ms": float(jitter.max()),
        "deadline_misses": misses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="ONNX policy (default: bundled)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="torch .pt for the peer")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--loop-s", type=float, default=20.0, help="seconds of the 10 Hz loop")
    parser.add_argument("--camera", default="640x480", help="camera image size WxH")
    parser.add_argument("--skip-ros", action="store_true", help="skip the DDS measurement")
    parser.add_argument("--ros-s", type=float, default=20.0, help="seconds of the ROS run")
    args = parser.parse_args()

    model = args.model or resource_path("assets", "policies", "widowx_reach.onnx")
    width, height = (int(v) for v in args.camera.lower().split("x"))
    frames, state = camera_frames(20, width, height)
    results: dict = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "model": str(model),
        "camera": f"{width}x{height}",
    }
    print(f"model {model} | camera {width}x{height} | {os.cpu_count()} CPUs")
    results["core_ort_1thread"] = bench_core(model, frames, state, args.iterations, 1)
    results["core_ort_2threads"] = bench_core(model, frames, state, args.iterations, 2)
    torch_result = bench_torch(args.checkpoint, frames, state, args.iterations)
    if torch_result is not None:
        results["core_torch_eager_1thread"] = torch_result
        results["ratio_torch_over_ort_median"] = (
            torch_result["median_ms"] / results["core_ort_1thread"]["median_ms"]
        )
    results["loop_10hz"] = bench_loop(model, frames, state, args.loop_s)
    if not args.skip_ros:
        from ros_policy_probe import measure_policy_node

        results["ros_policy_node"] = measure_policy_node(model, frames, state, args.ros_s)

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"policy_latency_{width}x{height}.json").write_text(
        json.dumps(results, indent=2) + "\n"
    )
    print("\n| measurement | median ms | p99 ms | max ms |\n|---|---|---|---|")
    for key, value in results.items():
        if isinstance(value, dict) and "median_ms" in value:
            print(
                f"| {key} | {value['median_ms']:.2f} | {value['p99_ms']:.2f} | "
                f"{value['max_ms']:.2f} |"
            )
    loop = results["loop_10hz"]
    print(
        f"\n10 Hz loop: period median {loop['period_median_ms']:.2f} ms, jitter median "
        f"{loop['jitter_median_ms']:.3f} ms, p99 {loop['jitter_p99_ms']:.3f} ms, "
        f"max {loop['jitter_max_ms']:.3f} ms, misses {loop['deadline_misses']}"
    )
    if "ratio_torch_over_ort_median" in results:
        print(
            f"PyTorch eager / ONNX Runtime (median, 1 thread): "
            f"{results['ratio_torch_over_ort_median']:.2f}x"
        )
    if "ros_policy_node" in results:
        print("ros:", json.dumps(results["ros_policy_node"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
