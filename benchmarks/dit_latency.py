"""Latency of one DiT action chunk (encoder + 10 DDIM steps with CFG as a batch of 2) on CPU:
ONNX Runtime (the deployed path, numpy loop) against PyTorch eager of the same weights.

    .venv/bin/python benchmarks/dit_latency.py --checkpoint runs/dit_reach --fused
    .venv/bin/python benchmarks/dit_latency.py --size b --horizon 17   # DiT-B, random weights
    .venv/bin/python benchmarks/dit_latency.py --policy assets/policies/widowx_reach_dit --lerobot

With ``--policy`` an exported policy directory (the default model) is timed on ONNX Runtime only
(no checkpoint, no eager peer). ``--lerobot`` then times LeRobot's DiffusionPolicy at its defaults
with the same camera, state and action sizes in the LeRobot peer environment
(benchmarks/lerobot_peer/diffusion_latency.py; build it with scripts/lerobot_peer_env.sh) in the
same run, one after the other, and reports LeRobot / ONNX Runtime.

With ``--checkpoint`` the model is rebuilt from it and exported to a temporary directory, so
both runtimes run the same weights; with ``--size`` a randomly initialised model of that size
is measured (latency does not depend on the weight values). Prints median, p99 and max in ms
and the eager/ORT ratio, and optionally writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from human_video_policy.export.diffusion_onnx import export_dit, export_fused_sampler
from human_video_policy.policies.dit.configuration_dit import DiTConfig
from human_video_policy.policies.dit.modeling_dit import DiTPolicy
from human_video_policy.runtime.diffusion_policy import DiffusionPolicy
from human_video_policy.runtime.latency import timing_summary

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".peer" / "lerobot" / "bin" / "python"


def _time_predict(policy: DiffusionPolicy, image, state, iterations: int) -> list[float]:
    for _ in range(10):
        policy.predict(image, state)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        policy.predict(image, state)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _lerobot_peer(image_hw: tuple[int, int], state_dim: int, action_dim: int, threads: int) -> dict:
    """LeRobot's DiffusionPolicy chunk latency, measured in the peer environment."""
    if not PEER_PYTHON.exists():
        raise SystemExit(
            f"--lerobot: no peer environment at {PEER_PYTHON}: run scripts/lerobot_peer_env.sh"
        )
    h, w = image_hw
    cmd = [
        str(PEER_PYTHON),
        str(ROOT / "benchmarks" / "lerobot_peer" / "diffusion_latency.py"),
        f"--image={w}x{h}",
        f"--state-dim={state_dim}",
        f"--action-dim={action_dim}",
        f"--threads={threads}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"--lerobot: the peer benchmark failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _exported_only(args: argparse.Namespace) -> int:
    """Time an exported policy directory on ONNX Runtime (and LeRobot's peer with --lerobot)."""
    policy = DiffusionPolicy(Path(args.policy), intra_op_threads=args.threads)
    spec = policy.spec
    h, w = policy.metadata.image_height, policy.metadata.image_width
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    state = rng.normal(0, 0.2, len(spec.state_names)).astype(np.float32)
    result: dict = {
        "machine": f"{platform.machine()}, {args.threads} threads",
        "policy": str(args.policy),
        "model": {
            "horizon": spec.horizon,
            "inference_steps": spec.sampler.inference_steps,
            "cfg_batch": 2,
        },
        "onnxruntime_cpu": timing_summary(_time_predict(policy, image, state, args.iterations)),
    }
    if args.lerobot:
        peer = _lerobot_peer((h, w), len(spec.state_names), len(spec.action_names), args.threads)
        result["lerobot_diffusion_policy"] = peer
        ours = result["onnxruntime_cpu"]["median_ms"]
        result["lerobot_ddim10_over_ours_median"] = peer["ddim_10"]["median_ms"] / ours
        result["lerobot_default_over_ours_median"] = peer["ddpm_100_default"]["median_ms"] / ours
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _model(args: argparse.Namespace) -> DiTPolicy:
    if args.checkpoint:  # an `hvp train` run folder or checkpoint (its EMA weights)
        from human_video_policy.export.from_checkpoint import find_checkpoint
        from human_video_policy.training.trainer import load_trained_model

        model, _ = load_trained_model(find_checkpoint(args.checkpoint))
        return model.eval()
    torch.manual_seed(0)
    config = DiTConfig(size=args.size, horizon=args.horizon, action_target="delta")
    model = DiTPolicy(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="", help="hvp train run folder or checkpoint")
    parser.add_argument("--policy", default="", help="exported policy directory (ONNX only)")
    parser.add_argument(
        "--lerobot", action="store_true", help="with --policy: also LeRobot's DiffusionPolicy"
    )
    parser.add_argument("--size", default="small", help="named DiT size without --checkpoint")
    parser.add_argument("--horizon", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="")
    parser.add_argument(
        "--fused", action="store_true", help="also time the whole loop as one ONNX graph"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.lerobot and not args.policy:
        parser.error(
            "--lerobot needs --policy (the exported model LeRobot's policy is compared with)"
        )
    if args.policy:
        return _exported_only(args)
    model = _model(args)
    cfg = model.config
    names = [f"joint_{i}" for i in range(cfg.action_dim)]
    states = names + [f"extra_{i}" for i in range(cfg.state_dim - cfg.action_dim)]
    rng = np.random.default_rng(0)
    h, w = cfg.image_size
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    state = rng.normal(0, 0.2, cfg.state_dim).astype(np.float32)
    result: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "model": {
            "size": cfg.size,
            "width": cfg.width,
            "depth": cfg.depth,
            "parameters": sum(p.numel() for p in model.parameters()),
            "horizon": cfg.horizon,
            "inference_steps": cfg.inference_steps,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        export_dit(model, Path(tmp) / "p", action_names=names, state_names=states, dt=0.1)
        policy = DiffusionPolicy(Path(tmp) / "p", intra_op_threads=args.threads)
        ort_ms = _time_predict(policy, image, state, args.iterations)
        if args.fused:
            import onnxruntime as ort

            export_fused_sampler(model, Path(tmp) / "fused.onnx")
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.log_severity_level = 3
            fused = ort.InferenceSession(str(Path(tmp) / "fused.onnx"), options)
            feed = policy._encoder_feed(image, state, "", None)
            noise0 = rng.standard_normal((1, cfg.horizon, cfg.action_dim)).astype(np.float32)
            fused_ms = []
            for i in range(args.iterations + 10):
                start = time.perf_counter()
                cond, snorm = policy.sessions["encoder"].run(["condition", "state_norm"], feed)
                fused_feed = {"condition": cond, "state_norm": snorm, "noise": noise0}
                out = fused.run(["sample"], fused_feed)
                if i >= 10:
                    fused_ms.append((time.perf_counter() - start) * 1e3)
            looped = policy.predict(image, state, noise=noise0)
            fused_actions = out[0][0] * policy.action_std + policy.action_mean
            if cfg.action_target == "delta":
                fused_actions = fused_actions + state[None, : cfg.action_dim]
            result["onnxruntime_cpu_fused_graph"] = timing_summary(fused_ms)
            result["fused_vs_loop_max_abs_diff"] = float(np.abs(fused_actions - looped).max())
    batch = {
        cfg.image_key: torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0,
        "observation.state": torch.from_numpy(state)[None],
    }
    noise = rng.standard_normal((1, cfg.horizon, cfg.action_dim)).astype(np.float32)
    for _ in range(5):
        model.sample(batch, noise=noise)
    eager_ms = []
    for _ in range(max(20, args.iterations // 4)):
        start = time.perf_counter()
        model.sample(batch, noise=noise)
        eager_ms.append((time.perf_counter() - start) * 1e3)
    result["onnxruntime_cpu"] = timing_summary(ort_ms)
    result["pytorch_eager_cpu"] = timing_summary(eager_ms)
    result["eager_over_ort_median"] = (
        result["pytorch_eager_cpu"]["median_ms"] / result["onnxruntime_cpu"]["median_ms"]
    )
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
