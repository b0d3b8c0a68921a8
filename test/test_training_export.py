"""Demonstrations -> training -> ONNX export -> runtime, and the committed default policy."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from human_video_policy.errors import ConfigError
from human_video_policy.policies.bc_mlp.configuration_bc_mlp import BCMLPConfig
from human_video_policy.policies.bc_mlp.modeling_bc_mlp import BCMLPPolicy
from human_video_policy.resources import resource_path
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS
from human_video_policy.runtime.onnx_policy import OnnxPolicy
from human_video_policy.sim.reach_expert import ReachExpert
from human_video_policy.sim.reach_task import ReachTaskConfig
from human_video_policy.sim.widowx_world import WidowXWorld, default_scene_path
from human_video_policy.training.export_onnx import export_policy, verify_onnx
from human_video_policy.training.make_default_policy import DefaultPolicyConfig
from human_video_policy.training.record_demos import (
    Demos,
    RecordConfig,
    default_world_config,
    record,
)
from human_video_policy.training.train_reach import (
    TorchPolicySource,
    TrainConfig,
    load_checkpoint,
    save_checkpoint,
    train,
)

TINY = BCMLPConfig(image_height=32, image_width=32, channels=8, keypoints=8, hidden=32)


@pytest.fixture(scope="module")
def tiny_demos():
    demos, _summary = record(
        RecordConfig(
            episodes=3,
            seed=5,
            image_height=32,
            image_width=32,
            max_episode_s=1.5,
            linger_s=0.0,
            noise_std=0.0,
            progress=False,
        )
    )
    return demos


def test_demos_hold_expert_labels_for_the_recorded_states(tiny_demos, tmp_path):
    d = tiny_demos
    assert len(d) == 3 * 15  # 1.5 s at 10 Hz, per episode
    assert d.images.shape[1:] == (32, 32, 3) and d.images.dtype == np.uint8
    assert d.states.shape[1:] == (8,) and d.actions.shape[1:] == (10, 7)
    assert sorted(set(d.episodes.tolist())) == [5, 6, 7]
    expert = ReachExpert(default_scene_path())
    with WidowXWorld(default_world_config()) as world:
        world.reset(6)
        i = int(np.nonzero(d.episodes == 6)[0][4])
        np.testing.assert_allclose(
            d.actions[i],
            expert.plan(d.states[i].astype(np.float64), world.target_position()),
            atol=1e-6,
        )
    loaded = Demos.load(d.save(tmp_path / "demos.npz"))
    np.testing.assert_array_equal(loaded.images, d.images)
    np.testing.assert_array_equal(loaded.actions, d.actions)


def test_training_reduces_the_loss_and_is_seeded(tiny_demos):
    torch.manual_seed(0)
    a = BCMLPPolicy(TINY)
    report = train(
        a,
        tiny_demos,
        TrainConfig(epochs=25, batch_size=16, learning_rate=3e-3, seed=3, progress=False),
    )
    assert report.final_loss < 0.5 * report.losses[0]
    torch.manual_seed(0)
    b = BCMLPPolicy(TINY)
    train(
        b,
        tiny_demos,
        TrainConfig(epochs=25, batch_size=16, learning_rate=3e-3, seed=3, progress=False),
    )
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb)
    with pytest.raises(ConfigError):
        TrainConfig(epochs=0)


def test_export_matches_torch_and_carries_metadata(tiny_demos, tmp_path):
    model = BCMLPPolicy(TINY)
    train(model, tiny_demos, TrainConfig(epochs=2, batch_size=16, progress=False))
    ckpt = save_checkpoint(model, tmp_path / "tiny.pt")
    model = load_checkpoint(ckpt)
    path = tmp_path / "tiny.onnx"
    report = export_policy(model, path, 0.1, {"seed": 0, "command": "test", "episodes": 3})
    assert report["max_abs_error_vs_torch"] <= 1e-4
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["hvp.format_version"] == "1"
    assert props["hvp.action_space"] == "widowx_joint_position"
    assert json.loads(props["hvp.action_names"]) == list(WIDOWX_COMMAND_JOINTS)
    assert json.loads(props["hvp.state_names"]) == list(WIDOWX_STATE_JOINTS)
    assert float(props["hvp.dt"]) == 0.1 and props["hvp.horizon"] == "10"
    assert json.loads(props["hvp.image_size"]) == [32, 32]
    assert json.loads(props["hvp.training"])["episodes"] == 3
    # Dynamic batch, real inputs: ORT == torch.
    images = tiny_demos.images[:5].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    assert verify_onnx(model, path, images, tiny_demos.states[:5].copy()) <= 1e-4
    # The runtime reads the file and gives the same chunk as the torch source.
    policy = OnnxPolicy(path)
    assert policy.metadata.horizon == 10 and policy.metadata.image_height == 32
    with WidowXWorld(default_world_config()) as world:
        world.reset(0)
        image, state = world.render_rgb(), world.joint_positions()
        ort_chunk = policy.predict_chunk(image, state, 0.7)
        torch_chunk = TorchPolicySource(model, 0.1).predict_chunk(image, state, 0.7)
    np.testing.assert_allclose(ort_chunk.actions, torch_chunk.actions, atol=1e-4)
    assert ort_chunk.names == WIDOWX_COMMAND_JOINTS and ort_chunk.observation_stamp == 0.7


def test_default_policy_config_is_validated():
    with pytest.raises(ConfigError):
        DefaultPolicyConfig(out="model.pt")
    with pytest.raises(ConfigError):
        DefaultPolicyConfig(eval_seed=5)  # would overlap training seeds
    with pytest.raises(ConfigError):
        ReachTaskConfig(max_episode_s=-1.0)


def test_committed_baseline_policy_reports_its_training(tmp_path):
    """The shipped MLP baseline carries a training report of >= 20 held-out episodes."""
    model = resource_path("assets", "policies", "widowx_reach.onnx")
    assert model.stat().st_size < 5e6
    report = json.loads(model.with_suffix(".json").read_text())
    assert report["evaluation"]["learned"]["episodes"] >= 20
    assert report["evaluation"]["learned"]["success_rate"] >= 0.8


def test_committed_default_policy_reaches_targets(tmp_path, capsys):
    """The shipped default (the DiT), through `hvp sim-eval` without --model, on 3 held-out
    seeds: >= 2 successes; its files are small and its spec records how it was made."""
    from human_video_policy.cli import sim_eval
    from human_video_policy.policies.model_spec import read_spec

    model = resource_path("assets", "policies", "widowx_reach_dit")
    assert sum(p.stat().st_size for p in model.iterdir()) < 5e6
    spec = read_spec(model)
    assert spec.policy_type == "dit" and spec.training["step"] >= 1000
    assert spec.parity["chunk_max_abs_error"] <= 1e-3
    parser = argparse.ArgumentParser()
    sim_eval.register(parser.add_subparsers())
    out = tmp_path / "eval.json"
    args = parser.parse_args(
        ["sim-eval", "--episodes", "3", "--seed", "2000000", "--no-progress", "--json", str(out)]
    )
    assert args.func(args) == 0
    rows = json.loads(out.read_text())
    (learned,) = rows.values()
    assert sum(r["success"] for r in learned["results"]) >= 2, learned
    assert "learned (widowx_reach_dit)" in capsys.readouterr().out


def test_sim_eval_keeps_a_row_per_model_when_two_share_a_folder_name(tmp_path, capsys):
    """Every `hvp export` default is RUN/export: two such models are two rows, not one."""
    import shutil

    from human_video_policy.cli.main import main as hvp_main
    from human_video_policy.cli.sim_eval import model_labels

    model = resource_path("assets", "policies", "widowx_reach_dit")
    first, second = tmp_path / "run_a" / "export", tmp_path / "run_b" / "export"
    for target in (first, second):
        shutil.copytree(model, target)
    out = tmp_path / "eval.json"
    argv = ["sim-eval", "--model", str(first), "--model", str(second), "--episodes", "1"]
    assert hvp_main([*argv, "--no-progress", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert sorted(rows) == [f"learned ({first})", f"learned ({second})"]
    assert str(second) in capsys.readouterr().out
    assert model_labels([Path("a/p.onnx"), Path("b/q")]) == ["p.onnx", "q"]
    assert model_labels([Path("x/m"), Path("x/m")]) == ["x/m", "x/m #2"]


def test_record_demos_renders_headless_without_mujoco_gl(tmp_path):
    """The README's `python -m ...record_demos` on a machine with no display and no MUJOCO_GL
    (it imported mujoco before any module chose EGL, and failed)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = tmp_path / "demos.npz"
    module = "human_video_policy.training.record_demos"
    proc = subprocess.run(
        [sys.executable, "-m", module, "--episodes", "1", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["samples"] > 0
