"""Issue 13's GPU checks in one run, for a lent GPU machine (one call, a few minutes):

1. DiT-B chunk latency (VITRA's action head: width 768, 12 layers, 12 heads; 17 action tokens,
   10 DDIM steps, CFG as a batch of 2): PyTorch eager fp32 and bf16, torch.compile (default
   and reduce-overhead = CUDA graphs), ONNX Runtime CUDA and TensorRT FP16 where this
   onnxruntime has those providers; the same for the project's default policy's config;
2. the GPU chunk against the CPU reference for the same noise (max abs error);
3. training throughput (samples/s, forward + backward + AdamW) of DiT-B and of the default
   config, fp32 and bf16 autocast, on synthetic batches of the model's input shapes;
4. with TensorRT: `hvp export --tensorrt`'s FP16 parity report on DiT-B.

    PYTHONPATH=. python3 benchmarks/gpu_checks.py --json $OUT/gpu_checks.json
    .venv/bin/python benchmarks/gpu_checks.py --device cpu --quick    # smoke run, no GPU

Needs torch, numpy, onnx, onnxruntime (the device image has them; nothing of ROS). A provider
that is missing is recorded as such with the list of available ones, not skipped silently.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from human_video_policy.export.diffusion_onnx import FusedSampler, export_dit, measure_parity
from human_video_policy.policies.dit.configuration_dit import DiTConfig
from human_video_policy.policies.dit.modeling_dit import DiTPolicy, EncoderGraph
from human_video_policy.policies.model_spec import read_spec
from human_video_policy.runtime.latency import timing_summary

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = ROOT / "assets" / "policies" / "widowx_reach_dit"


def _configs(quick: bool) -> dict[str, DiTConfig]:
    default = DiTConfig.from_dict(read_spec(DEFAULT_POLICY).model_config)
    big = DiTConfig(size="tiny" if quick else "b", horizon=17, action_target="delta")
    return {"dit_b" if not quick else "dit_tiny_as_b": big, "default_policy": default}


def _model(config: DiTConfig, device: str) -> DiTPolicy:
    torch.manual_seed(0)
    model = DiTPolicy(config)
    with torch.no_grad():  # random weights away from the zero init: every path carries signal
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval().to(device)


def _inputs(config: DiTConfig, batch: int, device: str) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    h, w = config.image_size
    image = torch.rand(batch, 3, h, w, generator=g)
    state = torch.randn(batch, config.state_dim, generator=g) * 0.3
    return [image.to(device), state.to(device)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn: Callable[[], object], device: str, iterations: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _chunk_fn(model: DiTPolicy, sampler: Callable, inputs, noise, dtype) -> Callable[[], object]:
    encoder = EncoderGraph(model)

    def run() -> torch.Tensor:
        with (
            torch.no_grad(),
            torch.autocast(noise.device.type, dtype=dtype, enabled=dtype != torch.float32),
        ):
            condition, state_norm = encoder(*inputs)
            return sampler(condition, state_norm, noise)

    return run


def torch_latency(
    config: DiTConfig, device: str, iterations: int, compile_modes: list[str]
) -> dict:
    """Chunk latency in PyTorch on ``device``: eager fp32/bf16 and each torch.compile mode,
    plus the fp32 chunk against the CPU reference for the same noise."""
    model = _model(config, device)
    inputs = _inputs(config, 1, device)
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(1, config.horizon, config.action_dim, generator=g).to(device)
    out: dict = {"parameters": sum(p.numel() for p in model.parameters())}
    sampler = FusedSampler(model)
    for name, dtype in (("eager_fp32", torch.float32), ("eager_bf16", torch.bfloat16)):
        fn = _chunk_fn(model, sampler, inputs, noise, dtype)
        out[name] = timing_summary(_time(fn, device, iterations, warmup=5))
    with torch.no_grad():
        gpu = _chunk_fn(model, sampler, inputs, noise, torch.float32)().float().cpu()
        bf16 = _chunk_fn(model, sampler, inputs, noise, torch.bfloat16)().float().cpu()
        cpu_model = _model(config, "cpu")
        reference = _chunk_fn(
            cpu_model,
            FusedSampler(cpu_model),
            [t.cpu() for t in inputs],
            noise.cpu(),
            torch.float32,
        )()
    out["fp32_vs_cpu_max_abs_error"] = float((gpu - reference).abs().max())
    out["bf16_vs_cpu_max_abs_error"] = float((bf16 - reference).abs().max())
    for mode in compile_modes:
        try:
            start = time.perf_counter()
            compiled = torch.compile(sampler, mode=mode, dynamic=False)
            fn = _chunk_fn(model, compiled, inputs, noise, torch.float32)
            fn()
            _sync(device)
            compile_s = time.perf_counter() - start
            out[f"compile_{mode}_fp32"] = {
                **timing_summary(_time(fn, device, iterations, warmup=5)),
                "compile_s": compile_s,
            }
        except Exception as exc:  # report and go on: one failed mode must not lose the rest
            out[f"compile_{mode}_fp32"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return out


def onnxruntime_latency(config: DiTConfig, iterations: int, tensorrt_parity: bool) -> dict:
    """The exported policy (two ONNX graphs + numpy DDIM loop) on ONNX Runtime: CPU (this
    machine's cores, for the ratio), CUDA and TensorRT FP16 where this onnxruntime has them."""
    import onnxruntime as ort

    from human_video_policy.export.diffusion_onnx import judge_fp16
    from human_video_policy.runtime.diffusion_policy import DiffusionPolicy
    from human_video_policy.runtime.providers import PROVIDERS

    available = ort.get_available_providers()
    out: dict = {"onnxruntime": ort.__version__, "available_providers": available}
    wanted = [c for c in ("cpu", "cuda", "tensorrt") if PROVIDERS[c][0] in available]
    for choice in ("cuda", "tensorrt"):
        if choice not in wanted:
            out[choice] = f"unavailable: {PROVIDERS[choice][0]} not in {available}"
    model = _model(config, "cpu")
    names = [f"a{i}" for i in range(config.action_dim)]
    states = [*names, *[f"s{i}" for i in range(config.state_dim - config.action_dim)]]
    rng = np.random.default_rng(0)
    h, w = config.image_size
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    state = rng.normal(0, 0.3, config.state_dim).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "policy"
        export_dit(model, directory, action_names=names, state_names=states, dt=0.1)
        for choice in wanted:
            try:
                start = time.perf_counter()
                threads = 1 if choice != "cpu" else torch.get_num_threads()
                policy = DiffusionPolicy(directory, PROVIDERS[choice], intra_op_threads=threads)
                load_s = time.perf_counter() - start
                times = _time(lambda p=policy: p.predict(image, state), "cpu", iterations, 5)
                out[choice] = {
                    **timing_summary(times),
                    "load_s": load_s,
                    "providers": policy.providers,
                }
            except Exception as exc:
                out[choice] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        if tensorrt_parity and "tensorrt" in wanted:
            try:
                inputs = {
                    "image": torch.rand(4, 3, h, w, generator=torch.Generator().manual_seed(3)),
                    "state": torch.from_numpy(rng.normal(0, 0.3, (4, config.state_dim))).float(),
                }
                report = measure_parity(model, directory, inputs, 0, PROVIDERS["tensorrt"])
                try:
                    out["tensorrt_fp16_parity"] = judge_fp16(report)
                except Exception as exc:  # the numbers matter more than the verdict here
                    out["tensorrt_fp16_parity"] = {**report, "verdict": str(exc)[:300]}
            except Exception as exc:
                out["tensorrt_fp16_parity"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    return out


def training_throughput(config: DiTConfig, device: str, batch: int, steps: int) -> dict:
    """Samples/s of forward + backward + AdamW on synthetic batches, fp32 and bf16 autocast."""
    out: dict = {"batch": batch}
    h, w = config.image_size
    g = torch.Generator().manual_seed(4)
    data = {
        config.image_key: torch.rand(batch, 3, h, w, generator=g).to(device),
        "observation.state": (torch.randn(batch, config.state_dim, generator=g) * 0.3).to(device),
        "action": (torch.randn(batch, config.horizon, config.action_dim, generator=g) * 0.3).to(
            device
        ),
    }
    for name, dtype in (("fp32", torch.float32), ("bf16_autocast", torch.bfloat16)):
        model = _model(config, device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(model=model, optimizer=optimizer, dtype=dtype) -> None:
            with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
                loss = model.compute_loss(data)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        times = _time(step, device, steps, warmup=3)
        seconds = float(np.median(times)) / 1e3
        out[name] = {"samples_per_s": batch / seconds, "step_median_ms": seconds * 1e3}
        if device.startswith("cuda"):
            out[name]["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            torch.cuda.reset_peak_memorytiming_summary()
        del model, optimizer
    return out


def _environment(device: str) -> dict:
    env = {"machine": platform.machine(), "python": platform.python_version()}
    env["torch"] = torch.__version__
    if device.startswith("cuda"):
        env["device"] = torch.cuda.get_device_name(0)
        env["cuda"] = torch.version.cuda
        props = torch.cuda.get_device_properties(0)
        env["multiprocessors"] = props.multi_processor_count
        env["memory_gib"] = round(props.total_memory / 2**30, 1)
    else:
        env["device"] = f"cpu ({torch.get_num_threads()} threads)"
    try:
        import tensorrt

        env["tensorrt"] = tensorrt.__version__
    except Exception as exc:
        env["tensorrt"] = f"not importable: {type(exc).__name__}"
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few iterations")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument(
        "--compile-modes", default="default,reduce-overhead", help="torch.compile modes"
    )
    parser.add_argument("--json", default="", help="write the results here too")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no GPU here (use --device cpu --quick)")
    if args.quick:
        args.iterations, args.train_batch, args.train_steps = 5, 8, 3
    modes = [m for m in args.compile_modes.split(",") if m]
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 in these numbers
    torch.backends.cudnn.allow_tf32 = False
    result: dict = {"environment": _environment(args.device), "command": argv}
    sections = []
    for name, config in _configs(args.quick).items():
        sections += [
            (
                f"{name}.torch",
                lambda c=config: torch_latency(c, args.device, args.iterations, modes),
            ),
            (
                f"{name}.onnxruntime",
                lambda c=config, n=name: onnxruntime_latency(
                    c, args.iterations, n != "default_policy"
                ),
            ),
            (
                f"{name}.training",
                lambda c=config: training_throughput(
                    c, args.device, args.train_batch, args.train_steps
                ),
            ),
        ]
    for key, fn in sections:
        start = time.perf_counter()
        try:
            value = fn()
        except Exception:
            value = {"error": traceback.format_exc()[-1500:]}
        model, part = key.split(".")
        result.setdefault(model, {})[part] = value
        print(f"{key} ({time.perf_counter() - start:.1f} s): {json.dumps(value)}", flush=True)
        if args.json:  # written after each part: a run cut short keeps what it measured
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
