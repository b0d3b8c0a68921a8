"""Export a :class:`DiTPolicy` to an exported-policy directory (two ONNX graphs + policy.json)
and report its parity against PyTorch.

Parity (issue 13's bar): for recorded or random inputs, (1) every denoiser step of ONNX Runtime
against PyTorch eager on the same inputs, max abs error; (2) the encoder; (3) a whole DDIM + CFG
chunk from the same initial noise, ONNX Runtime through ``runtime.DiffusionPolicy`` against
``DiTPolicy.sample``. The report is written into the spec; the export fails (and removes what it
wrote) when a tolerance is exceeded.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from human_video_policy.errors import ModelLoadError
from human_video_policy.policies.diffusion_schedule import guided_eps
from human_video_policy.policies.dit.modeling_dit import (
    DenoiserGraph,
    DiTPolicy,
    EncoderGraph,
    encoder_input_names,
)
from human_video_policy.policies.model_spec import (
    DENOISER_INPUTS,
    GraphSpec,
    ModelSpec,
    SamplerSpec,
    sha256_of,
)
from human_video_policy.runtime.onnx_policy import PolicyOutputError
from human_video_policy.runtime.providers import CPU, TENSORRT_CACHE_DIR, open_session
from human_video_policy.training.export_onnx import mode_under_umask, require_finite_weights

OPSET = 17
STEP_TOLERANCE = 1e-4
CHUNK_TOLERANCE = 1e-3
#: TensorRT FP16 bars. FP16 keeps ~3 significant digits; through 12 transformer layers the
#: denoiser's noise prediction (values of order 1) may move by a few 1e-3 per step, and the
#: guidance scale (5) amplifies the conditional/unconditional difference in the chunk. Chosen
#: from that arithmetic, not yet measured on a GPU (benchmarks/README.md says when it is):
#: per step 5e-2 absolute on the noise prediction, encoder 5e-2, whole chunk 5 % of the
#: largest action standard deviation (``chunk_scale``).
TENSORRT_STEP_TOLERANCE = 5e-2
TENSORRT_CHUNK_TOLERANCE_OF_SCALE = 5e-2


def _example_inputs(model: DiTPolicy, batch: int, rng: np.random.Generator) -> dict[str, Any]:
    cfg = model.config
    out: dict[str, torch.Tensor] = {}
    names = encoder_input_names(cfg)
    if "image" in names:
        h, w = cfg.image_size
        out["image"] = torch.from_numpy(rng.random((batch, 3, h, w), dtype=np.float32))
    if "state" in names:
        mean, std = model.state_mean.numpy(), model.state_std.numpy()
        state = mean + std * rng.standard_normal((batch, cfg.state_dim))
        out["state"] = torch.from_numpy(state.astype(np.float32))
    if "instruction_ids" in names:
        high = len(cfg.vocabulary) + 2
        out["instruction_ids"] = torch.from_numpy(
            rng.integers(0, high, (batch, cfg.max_words)).astype(np.int64)
        )
    if "fov" in names:
        out["fov"] = torch.from_numpy(rng.uniform(0.5, 1.5, (batch, 2)).astype(np.float32))
    return out


def _to_onnx(
    module: torch.nn.Module,
    args: tuple,
    inputs: list[str],
    outputs: list[str],
    dynamic: dict[str, dict[int, str]],
) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buffer,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    proto.producer_name = "human_video_policy"
    onnx.checker.check_model(proto)
    return proto


def _shapes(proto: onnx.ModelProto, which: str) -> dict[str, list[int | str]]:
    values = proto.graph.input if which == "inputs" else proto.graph.output
    out = {}
    for value in values:
        dims = value.type.tensor_type.shape.dim
        out[value.name] = [d.dim_param if d.dim_param else int(d.dim_value) for d in dims]
    return out


def _session(path: Path, providers: Sequence[str] | None):
    return open_session(path, providers or [CPU])


def measure_parity(
    model: DiTPolicy,
    directory: Path,
    inputs: dict[str, torch.Tensor],
    seed: int = 0,
    providers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Max abs errors ONNX Runtime (on ``providers``, default CPU) vs PyTorch eager: encoder
    outputs, each DDIM step's denoiser output (conditional and unconditional), and the whole
    chunk from the same noise. One observation at a time, as the runtime runs them (encoder
    batch 1, denoiser batch 2), so a TensorRT engine is built for the shapes it will serve."""
    from human_video_policy.runtime.diffusion_policy import DiffusionPolicy

    cfg = model.config
    model.eval()
    names = encoder_input_names(cfg)
    encoder = _session(directory / "encoder.onnx", providers)
    denoiser = _session(directory / "denoiser.onnx", providers)
    rng = np.random.default_rng(seed)
    schedule = cfg.schedule
    count = len(next(iter(inputs.values())))
    encoder_errors, step_errors = [], []
    for i in range(count):
        one = [inputs[k][i : i + 1] for k in names]
        cond_ort, state_ort = encoder.run(
            ["condition", "state_norm"], {k: v.numpy() for k, v in zip(names, one, strict=True)}
        )
        with torch.no_grad():
            cond_pt, state_pt = EncoderGraph(model)(*one)
        encoder_errors.append(
            max(
                float(np.abs(cond_ort - cond_pt.numpy()).max()),
                float(np.abs(state_ort - state_pt.numpy()).max()),
            )
        )
        x = rng.standard_normal((1, cfg.horizon, cfg.action_dim)).astype(np.float32)
        for t in schedule.timesteps():
            args = {
                "noisy_actions": np.concatenate([x, x]),
                "timestep": np.full(2, float(t), dtype=np.float32),
                "condition": np.concatenate([cond_pt.numpy()] * 2),
                "cond_keep": np.array([1.0, 0.0], dtype=np.float32),
                "state_norm": np.concatenate([state_pt.numpy()] * 2),
                "state_keep": np.ones(2, dtype=np.float32),
                "action_mask": np.ones((2, cfg.horizon, cfg.action_dim), dtype=np.float32),
            }
            (eps_ort,) = denoiser.run(["eps"], args)
            with torch.no_grad():
                eps_pt = model.denoise(
                    *[torch.from_numpy(args[k]) for k in DENOISER_INPUTS]
                ).numpy()
            step_errors.append(float(np.abs(eps_ort - eps_pt).max()))
            x = schedule.ddim_step(
                x, guided_eps(eps_pt[:1], eps_pt[1:], cfg.guidance_scale), int(t)
            )
    report = {
        "encoder_max_abs_error": max(encoder_errors),
        "denoiser_step_max_abs_error": max(step_errors),
    }
    # Whole chunk: runtime (numpy loop on ORT) vs DiTPolicy.sample, same initial noise.
    runtime = DiffusionPolicy(directory, providers, self_test=False)
    chunk_errors = []
    for i in range(count):
        noise = rng.standard_normal((1, cfg.horizon, cfg.action_dim)).astype(np.float32)
        sample_batch = _sample_batch(model, inputs, i)
        image = None
        if "image" in inputs:  # the runtime takes uint8 pixels: compare on the same pixels
            image = (inputs["image"][i].permute(1, 2, 0).numpy() * 255.0).round()
            image = image.clip(0, 255).astype(np.uint8)
            pixels = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
            sample_batch[cfg.image_key] = pixels
        reference = model.sample(sample_batch, noise=noise)[0]
        state = inputs["state"][i].numpy() if "state" in inputs else np.zeros(0, np.float32)
        ours = runtime.predict(image, state, noise=noise)
        chunk_errors.append(float(np.abs(ours - reference).max()))
    report["chunk_max_abs_error"] = max(chunk_errors)
    report["chunk_scale"] = float(np.abs(model.action_std.numpy()).max())
    report["samples"] = count
    report["providers"] = list(runtime.providers)
    return report


def _sample_batch(model: DiTPolicy, inputs: dict[str, torch.Tensor], i: int) -> dict[str, Any]:
    cfg = model.config
    batch: dict[str, Any] = {}
    if "image" in inputs:
        batch[cfg.image_key] = inputs["image"][i : i + 1]
    if "state" in inputs:
        batch["observation.state"] = inputs["state"][i : i + 1]
    if "instruction_ids" in inputs:
        batch["task"] = [""]
    if "fov" in inputs:
        batch["observation.fov"] = inputs["fov"][i : i + 1]
    return batch


def export_dit(
    model: DiTPolicy,
    directory: str | Path,
    *,
    action_names: Sequence[str],
    state_names: Sequence[str],
    dt: float,
    training: dict[str, Any] | None = None,
    parity_inputs: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
    step_tolerance: float = STEP_TOLERANCE,
    chunk_tolerance: float = CHUNK_TOLERANCE,
    overwrite: bool = False,
    tensorrt: bool = False,
) -> ModelSpec:
    """Write ``directory`` (encoder.onnx, denoiser.onnx, policy.json) and check parity.

    ``parity_inputs``: encoder inputs by name (recorded observations); 4 random ones if None.
    Refuses a non-empty ``directory`` unless ``overwrite``, and even then one that is not an
    earlier export (:func:`earlier_export_problem`). Everything is written to a fresh temporary
    directory beside ``directory``, removed on any failure (ModelLoadError names the measured
    errors on a parity failure), and moved into place only once it passed (:func:`_install`).
    A model with NaN/inf weights is refused before anything is written. ``tensorrt``: also
    build the TensorRT FP16 engines (in ``directory/tensorrt``, through ONNX Runtime's
    TensorRT provider, as the runtime loads them) and check them with the same parity test
    against the FP16 bars; ModelLoadError before anything is written where this onnxruntime
    has no TensorRT provider.
    """
    cfg = model.config
    directory = Path(directory).expanduser().resolve()
    if cfg.language_encoder == "hf":
        raise ModelLoadError(
            "policies conditioned on a Hugging Face model (language_encoder='hf') are not "
            "exportable yet: the runtime has no tokenizer for them; train with 'vocab' or 'none' "
            "to deploy without torch"
        )
    if len(action_names) != cfg.action_dim or len(state_names) != cfg.state_dim:
        raise ModelLoadError(
            f"the model has {cfg.action_dim} action dims / {cfg.state_dim} state dims but "
            f"{len(action_names)} action names / {len(state_names)} state names were given"
        )
    if tensorrt:
        require_tensorrt()
    require_finite_weights(model)
    check_output_directory(directory, overwrite)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.partial-"))
    except OSError as exc:
        raise ModelLoadError(f"cannot write the export next to {directory}: {exc}") from exc
    try:
        spec = _write_export(
            model,
            staging,
            action_names=action_names,
            state_names=state_names,
            dt=dt,
            training=training,
            parity_inputs=parity_inputs,
            seed=seed,
            step_tolerance=step_tolerance,
            chunk_tolerance=chunk_tolerance,
            tensorrt=tensorrt,
        )
        _install(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return spec


#: What an export writes into its directory; --overwrite replaces a directory holding only these.
EXPORT_FILES = ("encoder.onnx", "denoiser.onnx", "policy.json")
EXPORT_FOLDERS = (TENSORRT_CACHE_DIR,)


def earlier_export_problem(directory: Path) -> str | None:
    """Why ``directory`` is not an earlier export (None when it is one): --overwrite must never
    delete a folder holding anything an export did not write (a run, data, the home folder)."""
    entries = sorted(directory.iterdir())
    foreign = [
        entry.name + ("/" if entry.is_dir() else "")
        for entry in entries
        if not (
            (entry.name in EXPORT_FILES and entry.is_file() and not entry.is_symlink())
            or (entry.name in EXPORT_FOLDERS and entry.is_dir() and not entry.is_symlink())
        )
    ]
    has_spec = (directory / "policy.json").is_file()
    if has_spec and not foreign:
        return None
    shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
    if not has_spec:
        listing = ", ".join(e.name for e in entries[:8]) + (" ..." if len(entries) > 8 else "")
        return f"it has no policy.json; it holds {listing}"
    return f"besides an export it holds {shown}"


def check_output_directory(directory: Path, overwrite: bool) -> None:
    """ModelLoadError unless ``directory`` may receive an export: absent, empty, or (with
    ``overwrite``) an earlier export."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise ModelLoadError(f"{directory} exists and is not a directory")
    if not any(directory.iterdir()):
        return
    if not overwrite:
        raise ModelLoadError(
            f"{directory} exists and is not empty; pass overwrite (--overwrite) to replace an "
            "earlier export"
        )
    problem = earlier_export_problem(directory)
    if problem is not None:
        raise ModelLoadError(
            f"{directory} is not an earlier export ({problem}); overwrite replaces only a "
            f"directory an export wrote ({', '.join(EXPORT_FILES)}, {TENSORRT_CACHE_DIR}/): "
            "choose another output"
        )


def _install(staging: Path, directory: Path) -> None:
    """Move the finished export ``staging`` to ``directory``. A new one is a rename; an earlier
    export is moved aside, the rename made, then the old one removed (put back if the rename
    fails). An existing directory that is empty or that this process works in keeps its inode
    (a shell inside it still sees the export): its entries are swapped instead."""
    if not directory.exists():
        staging.chmod(mode_under_umask(0o777))
        os.rename(staging, directory)
        return
    try:
        cwd: Path | None = Path.cwd()
    except OSError:
        cwd = None
    if not any(directory.iterdir()) or (cwd is not None and cwd.is_relative_to(directory)):
        _swap_entries(staging, directory)
        return
    aside = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.replaced-"))
    old = aside / "export"
    os.rename(directory, old)
    try:
        staging.chmod(mode_under_umask(0o777))
        os.rename(staging, directory)
    except BaseException:
        os.rename(old, directory)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _swap_entries(staging: Path, directory: Path) -> None:
    """Replace the entries of ``directory`` with those of ``staging`` (the old ones are parked
    in ``staging`` and removed with it; on failure everything goes back where it was)."""
    new = sorted(staging.iterdir())
    parked = Path(tempfile.mkdtemp(dir=staging, prefix=".replaced-"))
    old = sorted(directory.iterdir())
    moved_out: list[Path] = []
    moved_in: list[Path] = []
    try:
        for entry in old:
            os.rename(entry, parked / entry.name)
            moved_out.append(entry)
        for entry in new:
            os.rename(entry, directory / entry.name)
            moved_in.append(entry)
    except BaseException:
        for entry in reversed(moved_in):
            os.rename(directory / entry.name, entry)
        for entry in reversed(moved_out):
            os.rename(parked / entry.name, entry)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _write_export(
    model: DiTPolicy,
    staging: Path,
    *,
    action_names: Sequence[str],
    state_names: Sequence[str],
    dt: float,
    training: dict[str, Any] | None,
    parity_inputs: dict[str, torch.Tensor] | None,
    seed: int,
    step_tolerance: float,
    chunk_tolerance: float,
    tensorrt: bool,
) -> ModelSpec:
    """Write the graphs and policy.json into ``staging`` and check them; raises on a failure
    (the caller removes ``staging``)."""
    cfg = model.config
    model.eval()
    rng = np.random.default_rng(seed)
    example = _example_inputs(model, 2, rng)
    names = encoder_input_names(cfg)
    encoder_proto = _to_onnx(
        EncoderGraph(model),
        tuple(example[k] for k in names),
        names,
        ["condition", "state_norm"],
        {**{k: {0: "batch"} for k in names}, "condition": {0: "batch"}, "state_norm": {0: "batch"}},
    )
    with torch.no_grad():
        condition, state_norm = EncoderGraph(model)(*[example[k] for k in names])
    b = condition.shape[0]
    denoiser_args = (
        torch.randn(b, cfg.horizon, cfg.action_dim),
        torch.full((b,), 5.0),
        condition,
        torch.ones(b),
        state_norm,
        torch.ones(b),
        torch.ones(b, cfg.horizon, cfg.action_dim),
    )
    denoiser_proto = _to_onnx(
        DenoiserGraph(model),
        denoiser_args,
        list(DENOISER_INPUTS),
        ["eps"],
        {**{k: {0: "batch"} for k in DENOISER_INPUTS}, "eps": {0: "batch"}},
    )
    graphs = {}
    for name, proto in (("encoder", encoder_proto), ("denoiser", denoiser_proto)):
        path = staging / f"{name}.onnx"
        onnx.save(proto, str(path))
        graphs[name] = GraphSpec(
            file=path.name,
            sha256=sha256_of(path),
            inputs=_shapes(proto, "inputs"),
            outputs=_shapes(proto, "outputs"),
        )
    schedule = cfg.schedule
    spec = ModelSpec(
        policy_type="dit",
        action_space=cfg.action_space,
        action_names=tuple(action_names),
        state_names=tuple(state_names),
        horizon=cfg.horizon,
        dt=float(dt),
        action_target=cfg.action_target,
        image=(
            {"key": cfg.image_key, "height": cfg.image_size[0], "width": cfg.image_size[1]}
            if cfg.image_encoder != "none"
            else None
        ),
        instruction=(
            {"vocabulary": list(cfg.vocabulary), "max_words": cfg.max_words}
            if cfg.language_encoder == "vocab"
            else None
        ),
        normalization={
            "action_mean": [float(v) for v in model.action_mean],
            "action_std": [float(v) for v in model.action_std],
        },
        sampler=SamplerSpec(
            train_steps=schedule.train_steps,
            schedule=schedule.kind,
            inference_steps=schedule.inference_steps,
            eta=schedule.eta,
            clip_sample=schedule.clip_sample,
            guidance_scale=cfg.guidance_scale,
            seed=seed,
        ),
        graphs=graphs,
        training=dict(training or {}),
        model_config=cfg.to_dict(),
    )
    spec.write(staging)
    inputs = parity_inputs if parity_inputs is not None else _example_inputs(model, 4, rng)
    try:
        parity = measure_parity(model, staging, inputs, seed)
    except PolicyOutputError as exc:
        raise ModelLoadError(f"the exported graphs give invalid actions: {exc}") from exc
    parity.update(step_tolerance=step_tolerance, chunk_tolerance=chunk_tolerance)
    if not (
        parity["denoiser_step_max_abs_error"] <= step_tolerance
        and parity["encoder_max_abs_error"] <= step_tolerance
        and parity["chunk_max_abs_error"] <= chunk_tolerance
    ):
        raise ModelLoadError(f"ONNX export disagrees with PyTorch beyond tolerance: {parity}")
    if tensorrt:
        parity["tensorrt_fp16"] = tensorrt_parity(model, staging, inputs, seed)
    spec = ModelSpec(**{**spec.__dict__, "parity": parity})
    spec.write(staging)
    return spec


def require_tensorrt() -> None:
    """ModelLoadError unless this onnxruntime has the TensorRT execution provider."""
    from human_video_policy.runtime.providers import TENSORRT, available_providers

    available = available_providers()
    if TENSORRT not in available:
        raise ModelLoadError(
            f"a TensorRT engine needs ONNX Runtime's {TENSORRT}, which this onnxruntime lacks "
            f"(available: {available}): on a machine with an NVIDIA GPU install onnxruntime-gpu "
            "and TensorRT (pip install tensorrt), or export without --tensorrt"
        )


def tensorrt_parity(
    model: DiTPolicy, directory: Path, inputs: dict[str, torch.Tensor], seed: int = 0
) -> dict[str, Any]:
    """Build the TensorRT FP16 engines of ``directory`` (its ``tensorrt/`` cache) and measure
    them against PyTorch with :func:`measure_parity`; ModelLoadError beyond the FP16 bars."""
    from human_video_policy.runtime.providers import PROVIDERS, TENSORRT

    report = measure_parity(model, directory, inputs, seed, PROVIDERS["tensorrt"])
    if report["providers"][0] != TENSORRT:
        raise ModelLoadError(
            f"ONNX Runtime did not run the graphs on TensorRT (providers: {report['providers']})"
        )
    report["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return judge_fp16(report)


def judge_fp16(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` (from :func:`measure_parity`) with the FP16 bars added; ModelLoadError
    naming the errors and the bars when one is exceeded."""
    chunk_bar = TENSORRT_CHUNK_TOLERANCE_OF_SCALE * float(report["chunk_scale"])
    report = {
        **report,
        "precision": "fp16",
        "step_tolerance": TENSORRT_STEP_TOLERANCE,
        "chunk_tolerance": chunk_bar,
    }
    errors = [
        float(report[k])
        for k in ("denoiser_step_max_abs_error", "encoder_max_abs_error", "chunk_max_abs_error")
    ]
    if not all(np.isfinite(errors)) or not (
        errors[0] <= TENSORRT_STEP_TOLERANCE
        and errors[1] <= TENSORRT_STEP_TOLERANCE
        and errors[2] <= chunk_bar
    ):
        raise ModelLoadError(
            f"the TensorRT FP16 engines disagree with PyTorch beyond the FP16 bars: {report}"
        )
    return report


class FusedSampler(torch.nn.Module):
    """The whole DDIM + CFG loop unrolled into one graph (timesteps and schedule constants baked
    in): (condition, state_norm, noise) -> the normalised chunk, on the device of ``noise``.
    For the latency comparison with the runtime's numpy loop (benchmarks/dit_latency.py
    --fused) and the GPU timings (benchmarks/gpu_checks.py: eager, torch.compile)."""

    def __init__(self, policy: DiTPolicy) -> None:
        super().__init__()
        self.policy = policy
        cfg = policy.config
        schedule = cfg.schedule
        self.steps = [
            (float(t), schedule.abar(int(t)), schedule.abar(schedule.previous(int(t))))
            for t in schedule.timesteps()
        ]
        self.scale = cfg.guidance_scale

    def forward(
        self, condition: torch.Tensor, state_norm: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        b = noise.shape[0]
        cond2 = torch.cat([condition, condition])
        state2 = torch.cat([state_norm, state_norm])
        device = noise.device
        keep = torch.cat([torch.ones(b, device=device), torch.zeros(b, device=device)])
        ones = torch.ones(2 * b, device=device)
        mask = torch.ones(2 * b, noise.shape[1], noise.shape[2], device=device)
        x = noise
        for t, a_t, a_prev in self.steps:
            eps2 = self.policy.denoise(
                torch.cat([x, x]),
                torch.full((2 * b,), t, device=device),
                cond2,
                keep,
                state2,
                ones,
                mask,
            )
            eps = eps2[b:] + self.scale * (eps2[:b] - eps2[b:])
            x0 = (x - (1.0 - a_t) ** 0.5 * eps) / a_t**0.5
            x = a_prev**0.5 * x0 + (1.0 - a_prev) ** 0.5 * eps
        return x


def export_fused_sampler(model: DiTPolicy, path: str | Path) -> None:
    """Write :class:`FusedSampler` of ``model`` (eta 0, no clipping) as one ONNX graph."""
    cfg = model.config
    if cfg.eta != 0 or cfg.clip_sample != 0:
        raise ModelLoadError("the fused sampler covers eta=0 without clipping only")
    model.eval()
    rng = np.random.default_rng(0)
    example = _example_inputs(model, 1, rng)
    names = encoder_input_names(cfg)
    with torch.no_grad():
        condition, state_norm = EncoderGraph(model)(*[example[k] for k in names])
    noise = torch.randn(1, cfg.horizon, cfg.action_dim)
    proto = _to_onnx(
        FusedSampler(model),
        (condition, state_norm, noise),
        ["condition", "state_norm", "noise"],
        ["sample"],
        {},
    )
    onnx.save(proto, str(path))
