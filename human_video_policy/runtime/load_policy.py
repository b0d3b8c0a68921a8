"""Open any exported policy by path: the one entry point the node, sim-eval and doctor use.

A directory (or its ``policy.json``) is an exported diffusion policy (runtime.DiffusionPolicy);
a ``.onnx`` file is a single-graph policy with its metadata inside (runtime.OnnxPolicy, the
behaviour-cloning baseline). Both have ``metadata``, ``providers``, ``predict`` and
``predict_chunk``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from human_video_policy.errors import ConfigError, ModelLoadError
from human_video_policy.policies.model_spec import SPEC_FILE
from human_video_policy.runtime.diffusion_policy import DiffusionPolicy
from human_video_policy.runtime.onnx_policy import DEFAULT_MAX_ABS_ACTION, OnnxPolicy

RuntimePolicy = OnnxPolicy | DiffusionPolicy


def load_policy(
    path: str | Path,
    providers: Sequence[str] | None = None,
    intra_op_threads: int = 1,
    max_abs_action: float = DEFAULT_MAX_ABS_ACTION,
    **options: Any,
) -> RuntimePolicy:
    """The runtime policy at ``path`` (ModelLoadError naming the path when it is neither).
    ``options``: keyword arguments of the policy class (a diffusion policy's
    ``inference_steps``, ``guidance_scale``, ``seed``); a single-graph policy takes none."""
    path = Path(path).expanduser()
    if path.is_dir() or path.name == SPEC_FILE:
        return DiffusionPolicy(
            path, providers, intra_op_threads, max_abs_action=max_abs_action, **options
        )
    if path.suffix == ".onnx":
        if options:
            raise ConfigError(f"{path}: a single-graph policy takes no options, got {options}")
        return OnnxPolicy(path, providers, intra_op_threads, max_abs_action=max_abs_action)
    if not path.exists():
        raise ModelLoadError(f"policy not found: {path}")
    raise ModelLoadError(
        f"{path} is not an exported policy: give a directory written by `hvp export` (with "
        f"{SPEC_FILE}) or a .onnx policy file"
    )
