"""ONNX Runtime execution providers: which to use, with what options, and one way to open a
session with them.

Every runtime graph (the single-graph baseline, a diffusion policy's encoder and denoiser, the
export's parity check) opens its session here, so a provider that this onnxruntime lacks is
refused the same way everywhere (with the list it has), and TensorRT always runs the same way:

- FP16 (``trt_fp16_enable``): the precision `hvp export --tensorrt` checks parity for;
- an engine cache (``trt_engine_cache_*``) and a timing cache next to the model, in a
  ``tensorrt/`` folder, so the engine is built once (minutes for a large model) and later
  loads take seconds; `hvp export --tensorrt` builds it. Where that folder cannot be written
  (an installed, read-only model) the cache goes under the user's cache directory, keyed by
  the graph's SHA-256.

TensorRT engines are specific to the GPU model and the TensorRT version; ONNX Runtime rebuilds
an engine that does not match.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from human_video_policy.errors import ConfigError, ModelLoadError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

#: ONNX Runtime providers in priority order for each ``execution_provider`` choice.
PROVIDERS: dict[str, list[str]] = {
    "cpu": [CPU],
    "cuda": [CUDA, CPU],
    "tensorrt": [TENSORRT, CUDA, CPU],
}
PROVIDER_CHOICES = ["auto", *sorted(PROVIDERS)]
#: The folder next to a model that holds its TensorRT engine and timing caches.
TENSORRT_CACHE_DIR = "tensorrt"


def available_providers() -> list[str]:
    """The providers this onnxruntime was built with."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def choose_providers(choice: str, available: list[str]) -> list[str]:
    """The providers for ``choice`` (``auto``: the best ``available`` one first); ConfigError
    when an explicit choice is not available in this onnxruntime."""
    if choice == "auto":
        for name in ("tensorrt", "cuda", "cpu"):
            if PROVIDERS[name][0] in available:
                return [p for p in PROVIDERS[name] if p in available]
        raise ConfigError(f"no usable ONNX Runtime execution provider among {available}")
    if choice not in PROVIDERS:
        raise ConfigError(f"execution provider {choice!r} is not one of {PROVIDER_CHOICES}")
    wanted = PROVIDERS[choice][0]
    if wanted not in available:
        raise ConfigError(
            f"execution provider {choice!r} is not available: {wanted} is not in this "
            f"onnxruntime (available: {available}); install onnxruntime-gpu (and TensorRT for "
            "tensorrt) on a machine with an NVIDIA GPU, or use auto or cpu"
        )
    return [p for p in PROVIDERS[choice] if p in available]


def check_available(providers: Sequence[str], available: list[str]) -> list[str]:
    """``providers`` as a list (default CPU); ModelLoadError naming the unavailable ones."""
    wanted = list(providers or [CPU])
    unknown = [p for p in wanted if p not in available]
    if unknown:
        raise ModelLoadError(
            f"execution providers {unknown} are not available here; available: {available}"
        )
    return wanted


def tensorrt_cache_dir(model_file: Path) -> Path:
    """Where the TensorRT caches of ``model_file`` live: ``<its folder>/tensorrt`` when that
    can be written, else ``$XDG_CACHE_HOME/human_video_policy/tensorrt/<sha256[:16]>``."""
    model_file = Path(model_file)
    local = model_file.parent / TENSORRT_CACHE_DIR
    if local.is_dir() and os.access(local, os.W_OK):
        return local
    if not local.exists() and os.access(model_file.parent, os.W_OK):
        return local
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "human_video_policy" / TENSORRT_CACHE_DIR / digest


def session_providers(providers: Sequence[str], model_file: Path) -> list[Any]:
    """``providers`` as ONNX Runtime takes them, TensorRT with its options (FP16, engine and
    timing caches in :func:`tensorrt_cache_dir`)."""
    out: list[Any] = []
    for name in providers:
        if name == TENSORRT:
            cache = tensorrt_cache_dir(model_file)
            options = {
                "trt_fp16_enable": "True",
                "trt_engine_cache_enable": "True",
                "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": "True",
                "trt_timing_cache_path": str(cache),
            }
            out.append((name, options))
        else:
            out.append(name)
    return out


def open_session(
    path: Path, providers: Sequence[str] | None, threads: int = 1, what: str = "graph"
):
    """An ONNX Runtime session of ``path`` on ``providers`` (default CPU): quiet, ``threads``
    intra-op threads, one inter-op thread. ModelLoadError for an unavailable provider or a
    file ONNX Runtime cannot load."""
    import onnxruntime as ort

    wanted = check_available(providers or [CPU], available_providers())
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if TENSORRT in wanted:
        tensorrt_cache_dir(path).mkdir(parents=True, exist_ok=True)
    try:
        return ort.InferenceSession(
            str(path), options, providers=session_providers(wanted, Path(path))
        )
    except Exception as exc:  # ORT raises its own types for corrupt files
        raise ModelLoadError(f"cannot load {what} {path}: {exc}") from exc
