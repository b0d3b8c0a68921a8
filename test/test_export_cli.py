"""`hvp train` on the shipped DiT example config (tiny overrides) -> `hvp export RUN` -> the
runtime and `hvp sim-eval` run the exported policy by path, without torch on that path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_helpers import reach_demos, train_bc_mlp, train_dit

from human_video_policy.cli.main import main as hvp_main
from human_video_policy.policies.model_spec import read_spec
from human_video_policy.runtime.load_policy import load_policy
from human_video_policy.training.record_demos import Demos

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dit_run")
    return train_dit(reach_demos(root / "demos.npz"), root / "run")


def test_export_a_run_and_run_it_by_path(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "exported"
    assert hvp_main(["export", str(trained_run), "--out", str(out), "--parity-samples", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy_type"] == "dit" and report["path"] == str(out)
    spec = read_spec(out)
    assert spec.parity["denoiser_step_max_abs_error"] <= 1e-4
    assert spec.parity["chunk_max_abs_error"] <= 1e-3
    assert spec.training["step"] == 3 and spec.training["ema"] is True
    assert spec.action_names[0] == "waist" and len(spec.state_names) == 8
    assert spec.dt == pytest.approx(0.1) and spec.horizon == 10
    policy = load_policy(out)
    chunk = policy.predict_chunk(np.zeros((48, 64, 3), np.uint8), np.zeros(8, np.float32))
    assert chunk.actions.shape == (10, 7) and chunk.action_space == "widowx_joint_position"

    # Nothing overwritten without asking; a run folder without checkpoints is named.
    assert hvp_main(["export", str(trained_run), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert hvp_main(["export", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "checkpoints/last.pt" in capsys.readouterr().err

    assert hvp_main(["sim-eval", "--model", str(out), "--episodes", "1", "--no-progress"]) == 0
    assert "learned (exported)" in capsys.readouterr().out


def test_the_bc_mlp_baseline_trains_and_exports_through_the_same_commands(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    demos = trained_run.parent / "demos.npz"
    run = train_bc_mlp(demos, tmp_path / "mlp")
    capsys.readouterr()
    assert hvp_main(["export", str(run)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy_type"] == "bc_mlp" and report["path"] == str(run / "policy.onnx")
    assert report["parity"]["max_abs_error_vs_torch"] <= 1e-4
    policy = load_policy(run / "policy.onnx")
    assert policy.metadata.action_space == "widowx_joint_position"
    assert policy.predict(np.zeros((32, 32, 3), np.uint8), np.zeros(8, np.float32)).shape == (
        10,
        7,
    )
    # TensorRT engines are built for diffusion policies only: named, nothing written.
    assert hvp_main(["export", str(run), "--tensorrt", "--out", str(tmp_path / "t.onnx")]) == 2
    assert "not 'bc_mlp'" in capsys.readouterr().err
    assert not (tmp_path / "t.onnx").exists()


def test_export_with_tensorrt_on_a_machine_without_it_names_what_is_missing(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "exported"
    assert hvp_main(["export", str(trained_run), "--tensorrt", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TensorrtExecutionProvider" in err[0], err
    assert "onnxruntime-gpu" in err[0] and "without --tensorrt" in err[0]
    assert not out.exists() and not out.with_name("exported.partial").exists()


@pytest.mark.parametrize("policy_type", ["bc_mlp", "dit"])
def test_rm75_xhand_demos_train_and_export_in_its_own_joints(
    policy_type: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Demos of the RM75 + XHand (19 joints, record_task_demos names the robot) train and
    export with its action space and joint names, not the WidowX's."""
    from human_video_policy.robots.spec import get_robot

    spec = get_robot("rm75_xhand")
    rng = np.random.default_rng(1)
    states = rng.normal(0, 0.3, (32, 19)).astype(np.float32)
    actions = np.repeat(states[:, None, :], 10, axis=1)
    images = (rng.random((32, 32, 32, 3)) * 255).astype(np.uint8)
    demos = Demos(images, states, actions, np.repeat(np.arange(4), 8), "rm75_xhand", "grasp")
    path = demos.save(tmp_path / "rm75.npz")
    run = tmp_path / "run"
    dims = [f"policy.config.{k}={v}" for k, v in (("action_dim", 19), ("state_dim", 19))]
    sizes = (
        ["policy.config.image_size=[32,32]"]
        if policy_type == "dit"
        else ["policy.config.image_height=32", "policy.config.image_width=32"]
    )
    code = hvp_main(
        [
            "train",
            str(ROOT / "config" / "train" / f"{policy_type}_reach.yaml"),
            f"data.sources[0].path={path}",
            "data.image_size=[32,32]",
            "data.batch_size=8",
            "data.normalization_samples=32",
            "policy.config.action_space=rm75_xhand_joint_position",
            *dims,
            *sizes,
            "optim.warmup_steps=0",
            "train.steps=2",
            "train.progress=false",
            f"train.output_dir={run}",
        ]
    )
    assert code == 0
    capsys.readouterr()
    assert hvp_main(["export", str(run), "--parity-samples", "2"]) == 0
    exported = json.loads(capsys.readouterr().out)["path"]
    meta = load_policy(exported).metadata
    assert meta.action_space == "rm75_xhand_joint_position"
    assert tuple(meta.action_names) == tuple(spec.command_joints)
    assert tuple(meta.state_names) == tuple(spec.state_joints)


def test_fine_tuning_starts_from_the_pretrained_weights_and_refits_the_statistics(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """train.init_from (VITRA A.3): the pretrained EMA weights, statistics recomputed on the new
    (robot) data; a run whose policy config differs is refused naming the fields."""
    import torch

    from human_video_policy.training.trainer import load_checkpoint, load_trained_model

    shifted = reach_demos(tmp_path / "robot.npz")
    data = Demos.load(shifted)
    Demos(data.images, data.states + 0.5, data.actions + 0.5, data.episodes).save(shifted)
    args = [
        "train",
        str(ROOT / "config" / "train" / "dit_reach.yaml"),
        f"data.sources[0].path={shifted}",
        "data.image_size=[32,32]",
        "data.batch_size=8",
        "data.normalization_samples=32",
        "policy.config.image_size=[32,32]",
        "optim.lr=1e-12",
        "optim.warmup_steps=0",
        "train.steps=1",
        "train.ema_decay=0",
        "train.progress=false",
        f"train.init_from={trained_run}",
    ]
    assert hvp_main([*args, f"train.output_dir={tmp_path / 'ft'}"]) == 0
    pretrained = load_checkpoint(trained_run / "checkpoints" / "last.pt")["ema"]
    tuned, _ = load_trained_model(tmp_path / "ft" / "checkpoints" / "last.pt")
    state = tuned.state_dict()
    for name, value in pretrained.items():
        if name.startswith(("state_", "action_")):  # statistics: refit on the new data
            continue
        assert torch.allclose(state[name], value, atol=1e-6), name
    assert not torch.allclose(state["state_mean"], pretrained["state_mean"])
    # the new data's states are shifted by +0.5 (sampled statistics: within 0.2)
    assert np.abs(pretrained["state_mean"].numpy()).max() < 0.2
    assert np.abs(state["state_mean"].numpy() - 0.5).max() < 0.2
    capsys.readouterr()
    wider = [*args, "policy.config.condition_tokens=2", f"train.output_dir={tmp_path / 'x'}"]
    assert hvp_main(wider) == 2
    assert "condition_tokens" in capsys.readouterr().err


def test_a_checkpoint_exports_where_its_training_data_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Trained on one machine, exported on another: the checkpoint stores the action/state
    names and dt, parity runs on random inputs (said in the spec); a checkpoint from before
    the names were stored still needs its data and says so."""
    import torch

    demos = reach_demos(tmp_path / "demos.npz")
    run = train_dit(demos, tmp_path / "run")
    here = tmp_path / "with_data"
    assert hvp_main(["export", str(run), "--out", str(here), "--parity-samples", "2"]) == 0
    demos.unlink()
    capsys.readouterr()
    away = tmp_path / "without_data"
    assert hvp_main(["export", str(run), "--out", str(away)]) == 0
    assert "the run's data is not here" in capsys.readouterr().err
    spec, reference = read_spec(away), read_spec(here)
    assert spec.action_names == reference.action_names and spec.dt == reference.dt
    assert spec.state_names == reference.state_names
    assert spec.training["parity_inputs"].startswith("random")
    assert spec.parity["chunk_max_abs_error"] <= 1e-3
    last = run / "checkpoints" / "last.pt"
    blob = torch.load(last, map_location="cpu", weights_only=False)
    del blob["data_names"]
    torch.save(blob, last)
    assert hvp_main(["export", str(run), "--out", str(tmp_path / "old")]) == 2
    assert "data sources are needed" in capsys.readouterr().err
    assert not (tmp_path / "old").exists()
