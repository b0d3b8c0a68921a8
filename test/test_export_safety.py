"""`hvp export` never destroys what it was not asked to replace: the training run, a folder that
is not an earlier export, a stray ``<out>.partial``, a good policy.onnx when the new export
fails; and its arguments are checked so a mistake is one line, not a traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from export_helpers import reach_demos, train_bc_mlp, train_dit

from human_video_policy.cli.main import main as hvp_main
from human_video_policy.errors import ModelLoadError
from human_video_policy.export.diffusion_onnx import export_dit
from human_video_policy.policies.model_spec import read_spec
from human_video_policy.training.export_onnx import export_policy
from human_video_policy.training.trainer import load_trained_model


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reach_demos(tmp_path_factory.mktemp("demos") / "demos.npz")


@pytest.fixture(scope="module")
def dit_run(demos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_dit(demos, tmp_path_factory.mktemp("dit") / "run")


@pytest.fixture(scope="module")
def mlp_run(demos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_bc_mlp(demos, tmp_path_factory.mktemp("mlp") / "run")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes): what must survive a refusal."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _export(run: Path, out: Path | str, *extra: str) -> int:
    return hvp_main(["export", str(run), "--out", str(out), "--parity-samples", "2", *extra])


def _one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hvp export: error: "), err
    return err[0]


def test_an_output_over_the_training_run_is_refused_and_the_run_survives(
    dit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = shutil.copytree(dit_run, tmp_path / "run")  # a copy: the old code deleted it
    before = _snapshot(run)
    checkpoint = run / "checkpoints" / "last.pt"
    for out in (run, tmp_path, checkpoint, run / "checkpoints" / "export"):
        assert _export(run, out, "--overwrite") == 2, out
        line = _one_line(capsys)
        assert str(out) in line and str(checkpoint) in line, line
        assert _snapshot(run) == before
    assert "run folder" in _export_message(run, run, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _export_message(run: Path, out: Path, capsys: pytest.CaptureFixture) -> str:
    assert _export(run, out, "--overwrite") == 2
    return _one_line(capsys)


def test_overwrite_refuses_a_folder_that_is_not_an_earlier_export(
    dit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "policy.json").write_text("{}")  # looks like an export at first glance
    (data / "recordings.npz").write_bytes(b"precious")
    (data / "notes").mkdir()
    before = _snapshot(data)
    assert _export(dit_run, data, "--overwrite") == 2
    line = _one_line(capsys)
    assert "not an earlier export" in line and "recordings.npz" in line and "notes/" in line
    assert _snapshot(data) == before and sorted(p.name for p in tmp_path.iterdir()) == ["data"]

    (data / "policy.json").unlink()
    assert _export(dit_run, data, "--overwrite") == 2
    assert "no policy.json" in _one_line(capsys)
    assert (data / "recordings.npz").read_bytes() == b"precious"


def test_overwrite_replaces_an_earlier_export_in_place_and_leaves_nothing_beside_it(
    dit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "exported"
    assert _export(dit_run, out, "--seed", "1") == 0
    (out / "tensorrt").mkdir()  # an engine cache is part of an export
    (out / "tensorrt" / "engine").write_bytes(b"old engine")
    assert read_spec(out).sampler.seed == 1
    assert _export(dit_run, out, "--seed", "2") == 2  # not without asking
    assert "not empty" in _one_line(capsys)
    assert _export(dit_run, out, "--seed", "2", "--overwrite") == 0
    assert read_spec(out).sampler.seed == 2
    assert sorted(p.name for p in out.iterdir()) == ["denoiser.onnx", "encoder.onnx", "policy.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # not the temp folder's mode


def test_a_folder_named_like_the_old_staging_folder_survives_an_export(
    dit_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "exported"
    partial = tmp_path / "exported.partial"
    partial.mkdir()
    (partial / "mine.txt").write_text("user data")
    assert _export(dit_run, out) == 0
    assert (partial / "mine.txt").read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported", "exported.partial"]


def test_out_dot_exports_into_an_empty_current_folder_and_otherwise_follows_the_rules(
    dit_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    inode = os.stat(".").st_ino
    assert _export(dit_run, ".") == 0
    # The current folder itself holds the export (a shell in it sees the files).
    assert os.stat(".").st_ino == inode and Path.cwd() == here.resolve()
    assert sorted(p.name for p in here.iterdir()) == [
        "denoiser.onnx",
        "encoder.onnx",
        "policy.json",
    ]
    capsys.readouterr()
    assert _export(dit_run, ".") == 2  # no longer empty
    assert "not empty" in _one_line(capsys)
    assert _export(dit_run, ".", "--overwrite", "--seed", "4") == 0  # an earlier export
    assert os.stat(".").st_ino == inode and read_spec(here).sampler.seed == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]

    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("do not delete")
    monkeypatch.chdir(other)
    assert _export(dit_run, ".", "--overwrite") == 2
    assert "thesis.tex" in _one_line(capsys)
    assert sorted(p.name for p in other.iterdir()) == ["thesis.tex"]


def _poison(run: Path, into: Path) -> Path:
    """A copy of ``run`` whose checkpoint has a NaN in its first float weight (raw and EMA)."""
    copy = shutil.copytree(run, into)
    checkpoint = copy / "checkpoints" / "last.pt"
    blob = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for key in ("model", "ema"):
        if blob.get(key) is not None:
            name = next(k for k, v in blob[key].items() if v.is_floating_point())
            blob[key][name].view(-1)[0] = float("nan")
    torch.save(blob, checkpoint)
    return copy


def test_a_bc_mlp_checkpoint_with_nan_weights_leaves_the_good_policy_as_it_was(
    mlp_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = _poison(mlp_run, tmp_path / "run")
    good = run / "policy.onnx"
    assert hvp_main(["export", str(mlp_run), "--out", str(good)]) == 0  # from the good weights
    capsys.readouterr()
    before = _snapshot(run)
    assert hvp_main(["export", str(run), "--overwrite"]) == 2
    line = _one_line(capsys)
    # Refused up front, naming the file (load_checkpoint's check or export's own one).
    assert str(run / "checkpoints" / "last.pt") in line, line
    assert "NaN" in line or "non-finite" in line, line
    assert _snapshot(run) == before  # byte-identical policy.onnx, no temp file beside it


def test_a_bc_mlp_export_that_fails_its_check_replaces_nothing(
    mlp_run: Path, tmp_path: Path
) -> None:
    model, _ = load_trained_model(mlp_run / "checkpoints" / "last.pt")
    path = tmp_path / "policy.onnx"
    export_policy(model, path, 0.1, {})
    before = path.read_bytes()
    with pytest.raises(ModelLoadError, match="disagrees with torch"):
        export_policy(model, path, 0.2, {}, tolerance=-1.0)  # no export can pass this
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["policy.onnx"]
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(ModelLoadError, match="NaN/inf weights"):
        export_policy(model, path, 0.1, {})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["policy.onnx"]


def test_a_bc_mlp_output_is_neither_the_checkpoint_nor_a_folder(
    mlp_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    checkpoint = mlp_run / "checkpoints" / "last.pt"
    before = checkpoint.read_bytes()
    assert hvp_main(["export", str(mlp_run), "--out", str(checkpoint), "--overwrite"]) == 2
    assert "is the checkpoint" in _one_line(capsys)
    assert checkpoint.read_bytes() == before
    assert hvp_main(["export", str(mlp_run), "--out", str(tmp_path), "--overwrite"]) == 2
    assert "existing directory" in _one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_dit_checkpoint_with_nan_weights_or_a_failing_export_keeps_the_earlier_export(
    dit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "exported"
    assert _export(dit_run, out) == 0
    before = _snapshot(out)
    run = _poison(dit_run, tmp_path / "run")
    capsys.readouterr()
    assert _export(run, out, "--overwrite") == 2
    line = _one_line(capsys)
    assert "NaN" in line or "non-finite" in line, line
    # A failing parity check after the graphs were written: the earlier export stays.
    model, _ = load_trained_model(dit_run / "checkpoints" / "last.pt")
    spec = read_spec(out)
    with pytest.raises(ModelLoadError, match="beyond tolerance"):
        export_dit(
            model,
            out,
            action_names=spec.action_names,
            state_names=spec.state_names,
            dt=spec.dt,
            step_tolerance=-1.0,
            overwrite=True,
        )
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported", "run"]


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_outside_numpys_range_is_one_line(
    dit_run: Path, tmp_path: Path, seed: str, capsys: pytest.CaptureFixture
) -> None:
    assert hvp_main(["export", str(dit_run), "--out", str(tmp_path / "x"), "--seed", seed]) == 2
    assert "--seed" in _one_line(capsys)
    assert list(tmp_path.iterdir()) == []
