"""Execution providers: the choice, TensorRT's FP16 and engine-cache options, and TensorRT asked
for where this onnxruntime has none (this machine: CPU only) refused before anything is
written. The FP16 bars of `hvp export --tensorrt` are checked on measured-style reports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from human_video_policy.errors import ConfigError, ModelLoadError
from human_video_policy.export import diffusion_onnx
from human_video_policy.export.diffusion_onnx import (
    TENSORRT_CHUNK_TOLERANCE_OF_SCALE,
    TENSORRT_STEP_TOLERANCE,
    export_dit,
    judge_fp16,
    measure_parity,
)
from human_video_policy.policies.dit.configuration_dit import DiTConfig
from human_video_policy.policies.dit.modeling_dit import DiTPolicy
from human_video_policy.runtime import providers
from human_video_policy.runtime.providers import (
    CPU,
    CUDA,
    TENSORRT,
    available_providers,
    choose_providers,
    open_session,
    session_providers,
    tensorrt_cache_dir,
)

ACTIONS = [f"joint_{i}" for i in range(7)]
STATES = [*ACTIONS, "gripper_finger"]


def _model() -> DiTPolicy:
    torch.manual_seed(0)
    config = DiTConfig(size="tiny", horizon=4, action_target="delta", image_size=(32, 32))
    model = DiTPolicy(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def test_auto_picks_the_best_available_and_an_explicit_missing_one_is_named() -> None:
    assert choose_providers("auto", [CPU]) == [CPU]
    assert choose_providers("auto", [CUDA, CPU]) == [CUDA, CPU]
    assert choose_providers("auto", [TENSORRT, CUDA, CPU]) == [TENSORRT, CUDA, CPU]
    assert choose_providers("tensorrt", [TENSORRT, CPU]) == [TENSORRT, CPU]
    with pytest.raises(ConfigError, match=f"{TENSORRT} is not in this onnxruntime"):
        choose_providers("tensorrt", [CUDA, CPU])
    with pytest.raises(ConfigError, match="not one of"):
        choose_providers("vulkan", [CPU])
    with pytest.raises(ConfigError, match="no usable"):
        choose_providers("auto", ["AzureExecutionProvider"])


def test_tensorrt_runs_fp16_with_its_engine_cache_next_to_the_model(tmp_path: Path) -> None:
    model_file = tmp_path / "policy" / "denoiser.onnx"
    model_file.parent.mkdir()
    model_file.write_bytes(b"graph")
    entries = session_providers([TENSORRT, CUDA, CPU], model_file)
    name, options = entries[0]
    assert name == TENSORRT and entries[1:] == [CUDA, CPU]
    assert options["trt_fp16_enable"] == "True"
    assert options["trt_engine_cache_enable"] == "True"
    assert options["trt_engine_cache_path"] == str(model_file.parent / "tensorrt")
    assert options["trt_timing_cache_path"] == str(model_file.parent / "tensorrt")
    assert session_providers([CPU], model_file) == [CPU]


def test_a_read_only_model_folder_caches_engines_in_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_file = tmp_path / "installed" / "denoiser.onnx"
    model_file.parent.mkdir()
    model_file.write_bytes(b"graph one")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # os.access answers True for root whatever the mode: the decision is what is tested.
    access = os.access
    monkeypatch.setattr(providers.os, "access", lambda path, mode: False)
    first = tensorrt_cache_dir(model_file)
    assert first.parent == tmp_path / "cache" / "human_video_policy" / "tensorrt"
    model_file.write_bytes(b"graph two")  # another graph: another cache
    assert tensorrt_cache_dir(model_file) != first
    monkeypatch.setattr(providers.os, "access", access)
    assert tensorrt_cache_dir(model_file) == model_file.parent / "tensorrt"


def test_tensorrt_where_onnxruntime_has_none_is_refused_before_a_cache_is_made(
    tmp_path: Path,
) -> None:
    if TENSORRT in available_providers():  # a GPU machine: the refusal cannot be shown
        pytest.fail("this test expects a CPU-only onnxruntime (CI's)")
    model_file = tmp_path / "m.onnx"
    model_file.write_bytes(b"not read")
    with pytest.raises(ModelLoadError, match=f"\\['{TENSORRT}'\\] are not available"):
        open_session(model_file, [TENSORRT, CPU])
    assert not (tmp_path / "tensorrt").exists()


def test_export_with_tensorrt_is_refused_up_front_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "exported"
    with pytest.raises(ModelLoadError, match=f"{TENSORRT}.*pip install tensorrt"):
        export_dit(_model(), out, action_names=ACTIONS, state_names=STATES, dt=0.1, tensorrt=True)
    assert list(tmp_path.iterdir()) == []
    # An existing export is left as it was.
    export_dit(_model(), out, action_names=ACTIONS, state_names=STATES, dt=0.1)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(ModelLoadError, match=TENSORRT):
        export_dit(
            _model(),
            out,
            action_names=ACTIONS,
            state_names=STATES,
            dt=0.1,
            tensorrt=True,
            overwrite=True,
        )
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]


def test_an_output_path_that_is_a_file_is_named(tmp_path: Path) -> None:
    out = tmp_path / "policy"
    out.write_text("a file")
    with pytest.raises(ModelLoadError, match="exists and is not a directory"):
        export_dit(_model(), out, action_names=ACTIONS, state_names=STATES, dt=0.1)
    assert out.read_text() == "a file"


def test_parity_runs_one_observation_at_a_time_on_the_named_providers(tmp_path: Path) -> None:
    model = _model()
    out = tmp_path / "p"
    spec = export_dit(model, out, action_names=ACTIONS, state_names=STATES, dt=0.1, seed=1)
    assert spec.parity["samples"] == 4 and spec.parity["providers"] == [CPU]
    rng = np.random.default_rng(2)
    inputs = diffusion_onnx._example_inputs(model, 3, rng)
    report = measure_parity(model, out, inputs, seed=5, providers=[CPU])
    assert report["samples"] == 3
    assert report["denoiser_step_max_abs_error"] <= 1e-4
    assert report["chunk_max_abs_error"] <= 1e-3
    # The report is the one written to policy.json.
    stored = json.loads((out / "policy.json").read_text())["parity"]
    assert stored["samples"] == 4


def _report(step: float, encoder: float, chunk: float, scale: float = 2.0) -> dict:
    return {
        "denoiser_step_max_abs_error": step,
        "encoder_max_abs_error": encoder,
        "chunk_max_abs_error": chunk,
        "chunk_scale": scale,
        "providers": [TENSORRT, CUDA, CPU],
    }


def test_fp16_bars_pass_fp16_sized_errors_and_name_the_larger_ones() -> None:
    judged = judge_fp16(_report(3e-3, 1e-3, 0.05))
    assert judged["precision"] == "fp16"
    assert judged["step_tolerance"] == TENSORRT_STEP_TOLERANCE
    assert judged["chunk_tolerance"] == pytest.approx(2.0 * TENSORRT_CHUNK_TOLERANCE_OF_SCALE)
    for bad in (
        _report(0.2, 1e-3, 0.05),  # a denoiser step
        _report(3e-3, 0.2, 0.05),  # the encoder
        _report(3e-3, 1e-3, 0.5),  # the chunk, past 5 % of the action scale
        _report(float("nan"), 1e-3, 0.05),
    ):
        with pytest.raises(ModelLoadError, match="beyond the FP16 bars"):
            judge_fp16(bad)
