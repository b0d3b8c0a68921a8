"""``hvp export``: a training checkpoint -> an exported policy the runtime runs without torch.

Reads the checkpoint (its EMA weights when the run kept them), finds the names and timing of
the actions and states from the run's data sources (the same files the model was trained on),
takes recorded observations from them as parity inputs, and writes the exported policy:

- ``dit``: a directory (encoder.onnx, denoiser.onnx, policy.json with the parity report);
- ``bc_mlp``: one .onnx with its metadata inside.

Nothing is overwritten unless asked, and never the run itself: an output that is the run
folder, the checkpoint, a folder holding them or a place inside the checkpoints folder is
refused (:func:`check_output`). A checkpoint that is corrupt, has NaN/inf weights, is from an
unknown policy type, or whose data sources cannot say the names is refused with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from human_video_policy.errors import ConfigError, InputError, ModelLoadError
from human_video_policy.training.data_names import DataNames, data_names

CHECKPOINT_NAME = "last.pt"


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder's ``checkpoints/last.pt``."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidate = path / "checkpoints" / CHECKPOINT_NAME
        if not candidate.is_file():
            raise ModelLoadError(f"{path} is a folder without checkpoints/{CHECKPOINT_NAME}")
        return candidate
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {path} does not exist")
    return path


def check_output(target: Path, checkpoint: Path, policy_type: str, overwrite: bool) -> None:
    """ModelLoadError naming both paths where writing ``target`` (replacing it with
    ``overwrite``) would destroy the training run of ``checkpoint``; all paths resolved."""
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else None
    if target == checkpoint:
        why = "is the checkpoint"
    elif run_dir is not None and target == run_dir:
        why = "is the run folder of the checkpoint"
    elif checkpoint.is_relative_to(target):
        why = "is a folder holding the checkpoint"
    elif run_dir is not None and target.is_relative_to(checkpoint.parent):
        why = "lies inside the checkpoints folder of"
    else:
        why = ""
    if why:
        raise ModelLoadError(
            f"output {target} {why} {checkpoint}; exporting there would replace the training "
            "run: choose another --out (default: RUN/export for dit, RUN/policy.onnx for bc_mlp)"
        )
    if policy_type == "bc_mlp":
        if target.is_dir():
            raise ModelLoadError(
                f"output {target} is an existing directory; a bc_mlp policy is exported to one "
                f".onnx file (e.g. {target / 'policy.onnx'})"
            )
        if target.suffix != ".onnx":
            raise ModelLoadError(
                f"output {target} does not end in .onnx; a bc_mlp policy is one .onnx file "
                "(the runtime loads it by that suffix)"
            )
        if target.exists() and not overwrite:
            raise ModelLoadError(f"{target} exists; pass --overwrite to replace it")
    elif policy_type == "dit":  # before the data are read; export_dit checks again
        from human_video_policy.export.diffusion_onnx import check_output_directory

        check_output_directory(target, overwrite)


def parity_inputs(model: Any, sources: list[Any], count: int, seed: int) -> dict[str, torch.Tensor]:
    """``count`` recorded observations (image, state) from the training sources."""
    from human_video_policy.policies.dit.modeling_dit import encoder_input_names

    cfg = model.config
    names = encoder_input_names(cfg)
    source = sources[0]
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(source), size=min(count, len(source)), replace=False)
    samples = [source[int(i)] for i in np.sort(picks)]
    out: dict[str, torch.Tensor] = {}
    if "image" in names:
        out["image"] = torch.stack([_last(s[cfg.image_key], 3) for s in samples]).float()
    if "state" in names:
        out["state"] = torch.stack([_last(s["observation.state"], 1) for s in samples]).float()
    if "instruction_ids" in names:
        out["instruction_ids"] = model.instruction_ids([s.get("task", "") for s in samples])
    if "fov" in names:
        out["fov"] = torch.stack([torch.as_tensor(s["observation.fov"]) for s in samples]).float()
    return out


def _last(value: torch.Tensor, ndim: int) -> torch.Tensor:
    value = torch.as_tensor(value)
    return value[-1] if value.ndim == ndim + 1 else value


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _sources_and_names(
    path: Path, blob: dict[str, Any], config: Any
) -> tuple[list[Any], DataNames, str]:
    """(the run's data sources, the names and dt, "") where the data is here; else, for a
    checkpoint that stores its names, ([], those names, why the data is not usable)."""
    from human_video_policy.training.trainer import build_sources

    try:
        sources = build_sources(config)
        return sources, data_names(sources), ""
    except (ConfigError, InputError) as exc:
        stored = blob.get("data_names")
        if stored is None:  # a checkpoint from before names were stored
            raise ConfigError(
                f"{path}: the run's data sources are needed for the action/state names and the "
                f"parity inputs: {exc}"
            ) from exc
        return [], DataNames.from_dict(stored), str(exc).splitlines()[0][:200]


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    parity_samples: int = 8,
    use_ema: bool = True,
    seed: int = 0,
    tensorrt: bool = False,
) -> dict[str, Any]:
    """Export ``checkpoint`` (file or run folder); returns a report (path, parity, names).
    ``tensorrt``: also build and check the TensorRT FP16 engines (diffusion policies)."""
    from human_video_policy.training.trainer import load_checkpoint, load_trained_model

    path = find_checkpoint(checkpoint).resolve()
    blob = load_checkpoint(path)
    policy_type = blob["policy_type"]
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if out:
        target = Path(out).expanduser().resolve()
    else:
        target = run_dir / ("policy.onnx" if policy_type == "bc_mlp" else "export")
    check_output(target, path, policy_type, overwrite)
    model, config = load_trained_model(path, ema=use_ema)
    from human_video_policy.training.export_onnx import first_non_finite

    if (name := first_non_finite(model)) is not None:
        weights = "EMA weights" if use_ema and blob.get("ema") is not None else "weights"
        raise ModelLoadError(
            f"checkpoint {path} has NaN/inf {weights} (first: {name}); nothing was exported: "
            "retrain, or export an earlier checkpoint"
        )
    if tensorrt:
        if policy_type != "dit":
            raise ConfigError(
                f"--tensorrt builds the engines of a diffusion policy (dit), not {policy_type!r}: "
                "a single-graph policy runs on TensorRT through policy_node's "
                "execution_provider:=tensorrt, which builds its engine at load"
            )
        from human_video_policy.export.diffusion_onnx import require_tensorrt

        require_tensorrt()
    sources, names, why_missing = _sources_and_names(path, blob, config)
    training = {
        "checkpoint": str(path),
        "step": int(blob.get("step", 0)),
        "policy_type": policy_type,
        "ema": bool(use_ema and blob.get("ema") is not None),
        "config": config.to_dict(),
        "git_commit": _git_commit(),
    }
    if why_missing:
        training["parity_inputs"] = f"random (the run's data is not here: {why_missing})"
        print(
            f"hvp export: the run's data is not here ({why_missing}): names and dt from the "
            "checkpoint, parity checked on random inputs",
            file=sys.stderr,
        )
    if policy_type == "dit":
        from human_video_policy.export.diffusion_onnx import export_dit

        spec = export_dit(
            model,
            target,
            action_names=names.action_names,
            state_names=names.state_names,
            dt=names.dt,
            training=training,
            parity_inputs=(
                parity_inputs(model, sources, parity_samples, seed) if sources else None
            ),
            seed=seed,
            overwrite=overwrite,
            tensorrt=tensorrt,
        )
        return {"path": str(target), "policy_type": policy_type, "parity": spec.parity}
    if policy_type == "bc_mlp":
        from human_video_policy.training.export_onnx import export_policy

        report = export_policy(
            model,
            target,
            names.dt,
            training,
            action_names=names.action_names,
            state_names=names.state_names,
        )
        return {"path": str(target), "policy_type": policy_type, "parity": report}
    raise ModelLoadError(f"{path}: no exporter for policy type {policy_type!r} (dit, bc_mlp)")


def print_report(report: dict[str, Any]) -> None:
    print(json.dumps(report, indent=2))
