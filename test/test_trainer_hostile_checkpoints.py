"""``hvp train --resume`` and ``load_trained_model`` against checkpoints that unpickle but hold
the wrong things (another shape, missing keys, None, strings for numbers, foreign optimizer /
scheduler / RNG states, NaN weights), resumes whose config differs from the checkpoint's, an
output_dir that is a file, and demos with NaN/inf: each is one ``hvp train: error:`` line
naming the file and the field (exit 2), and the run folder is byte-identical afterwards.

Each hostile checkpoint is a real tiny run's ``last.pt`` (the toy policy of
test/toy_policy.py, trained for real) loaded with ``torch.load(weights_only=False)``, one
field changed, and saved again."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import toy_policy  # registers the "toy_test" policy type
import yaml
from training_helpers import config_dict, make_demos, tree_bytes

from human_video_policy.cli.main import main as hvp_main
from human_video_policy.errors import InputError, ModelLoadError
from human_video_policy.training.demo_dataset import DemoDataset
from human_video_policy.training.record_demos import Demos
from human_video_policy.training.train_config import RESUME_MUTABLE_FIELDS, TrainConfig
from human_video_policy.training.trainer import load_checkpoint, load_trained_model, train


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demos(tmp_path_factory.mktemp("demos") / "demos.npz")


@pytest.fixture(scope="module")
def base_run(demos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-step run (checkpoint at step 3), copied by each test."""
    out = tmp_path_factory.mktemp("base") / "run"
    train(TrainConfig.from_dict(config_dict(demos, out, steps=3)))
    return out


@pytest.fixture
def run(base_run: Path, demos: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(a copy of the base run, the YAML config that resumes it)."""
    out = tmp_path / "run"
    shutil.copytree(base_run, out)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(config_dict(demos, out, steps=3)))
    return out, cfg


def mutate(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    blob = torch.load(path, map_location="cpu", weights_only=False)
    change(blob)
    torch.save(blob, path)


def first_matrix(weights: dict[str, torch.Tensor]) -> str:
    return next(k for k, v in weights.items() if v.ndim == 2)


def _shape(part: str) -> Callable[[dict[str, Any]], None]:
    def change(b: dict[str, Any]) -> None:
        for p in part.split("+"):
            b[p][first_matrix(b[p])] = torch.zeros(3, 3)

    return change


def _missing(b: dict[str, Any]) -> None:
    key = next(iter(b["model"]))
    del b["model"][key]
    del b["ema"][key]


def _two_groups(b: dict[str, Any]) -> None:
    (group,) = b["optimizer"]["param_groups"]
    b["optimizer"]["param_groups"] = [
        {**group, "params": group["params"][:1]},
        {**group, "params": group["params"][1:]},
    ]


def _moment_shape(b: dict[str, Any]) -> None:
    state = next(iter(b["optimizer"]["state"].values()))
    state["exp_avg"] = torch.zeros(5, 5)


def _nan_moment(b: dict[str, Any]) -> None:
    state = next(iter(b["optimizer"]["state"].values()))
    state["exp_avg_sq"] = torch.full_like(state["exp_avg_sq"], float("nan"))


def _torch_rng(b: dict[str, Any]) -> None:
    b["rng"][0]["torch"] = b["rng"][0]["torch"][:100]


def _numpy_rng(b: dict[str, Any]) -> None:
    b["rng"][0]["numpy"]["keys"] = "not a tensor"


# (id, change, the field the error must name)
HOSTILE: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("model-shape", _shape("model+ema"), "'model'"),
    ("model-shape-not-ema", _shape("model"), "'model'"),
    ("ema-shape", _shape("ema"), "'ema'"),
    ("missing-key", _missing, "'model'"),
    ("model-none", lambda b: b.update(model=None), "'model'"),
    ("model-not-tensors", lambda b: b["model"].update(x=[1, 2]), "'model'"),
    ("ema-none-with-ema-decay", lambda b: b.update(ema=None), "'ema'"),
    ("history-int", lambda b: b.update(history=5), "'history'"),
    ("history-step-str", lambda b: b.update(history=[{"step": "x", "loss": 1.0}]), "'history'"),
    ("history-str-value", lambda b: b["history"].append({"step": 3, "loss": "low"}), "'history'"),
    ("window-str", lambda b: b.update(window="x"), "'window'"),
    ("data-names-str", lambda b: b.update(data_names="joints"), "'data_names'"),
    (
        "data-names-dt",
        lambda b: b["data_names"].update(dt=float("nan")),
        "'data_names'",
    ),
    ("step-str", lambda b: b.update(step="abc"), "'step'"),
    ("step-negative", lambda b: b.update(step=-3), "'step'"),
    ("step-bool", lambda b: b.update(step=True), "'step'"),
    ("step-float", lambda b: b.update(step=2.0), "'step'"),
    ("optimizer-two-groups", _two_groups, "'optimizer'"),
    (
        "optimizer-no-groups",
        lambda b: b.update(optimizer={"state": {}, "param_groups": []}),
        "'optimizer'",
    ),
    ("optimizer-none", lambda b: b.update(optimizer=None), "'optimizer'"),
    ("optimizer-moment-shape", _moment_shape, "'optimizer'"),
    ("optimizer-nan-moment", _nan_moment, "'optimizer'"),
    ("optimizer-lr-str", lambda b: b["optimizer"]["param_groups"][0].update(lr="x"), "'optimizer'"),
    ("optimizer-format", lambda b: b.update(optimizer_format="zero"), "'optimizer_format'"),
    ("scheduler-int", lambda b: b.update(scheduler=5), "'scheduler'"),
    ("scheduler-other-step", lambda b: b["scheduler"].update(last_epoch=99), "'scheduler'"),
    ("scheduler-no-lambdas", lambda b: b["scheduler"].pop("lr_lambdas"), "'scheduler'"),
    ("rng-python-int", lambda b: b.update(rng=[{"python": 1}]), "'rng'"),
    ("rng-empty", lambda b: b.update(rng=[]), "'rng'"),
    ("rng-python-state", lambda b: b["rng"][0].update(python=(3, (1, 2), None)), "'rng'"),
    ("rng-numpy-state", _numpy_rng, "'rng'"),
    ("rng-torch-state", _torch_rng, "'rng'"),
    ("policy-config-none", lambda b: b.update(policy_config=None), "'policy_config'"),
    ("policy-type-int", lambda b: b.update(policy_type=5), "'policy_type'"),
    ("config-unknown-field", lambda b: b.update(config={"x": 1}), "'config'"),
    ("config-none", lambda b: b.update(config=None), "'config'"),
    ("sampler-none", lambda b: b.update(sampler=None), "'sampler'"),
]


def resume_cli(cfg: Path, capsys: pytest.CaptureFixture, *overrides: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = hvp_main(["train", str(cfg), "train.steps=6", *overrides, "--resume"])
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(("change", "field"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_checkpoint_is_refused_naming_file_and_field_and_nothing_is_written(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture, change: Callable, field: str
):
    out, cfg = run
    last = out / "checkpoints" / "last.pt"
    mutate(last, change)
    shutil.rmtree(out / "tb")  # a failed resume must not create it again
    (out / "config.yaml").write_text("# the run's config, as it was\n")
    before = tree_bytes(out)
    code, err = resume_cli(cfg, capsys)
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("hvp train: error: checkpoint ")
    assert str(last) in err[0] and field in err[0], err[0]
    assert "Traceback" not in err[0]
    assert tree_bytes(out) == before


# found only when the trainer restores them into its optimizer / scheduler / EMA (a resume);
# a checkpoint loaded for export (its weights only) does not use them
RESTORE_ONLY = {
    "ema-none-with-ema-decay",
    "optimizer-two-groups",
    "optimizer-moment-shape",
    "optimizer-nan-moment",
    "optimizer-lr-str",
    "scheduler-other-step",
    "scheduler-no-lambdas",
}


@pytest.mark.parametrize(("name", "change"), [h[:2] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_checkpoint_is_refused_by_load_trained_model(
    base_run: Path, tmp_path: Path, name: str, change: Callable
):
    """What ``hvp export`` loads (EMA weights or not): every field it reads is checked, with
    a ModelLoadError naming the file on one line."""
    path = tmp_path / "last.pt"
    shutil.copyfile(base_run / "checkpoints" / "last.pt", path)
    mutate(path, change)
    for ema in (True, False):
        if name in RESTORE_ONLY:
            _model, config = load_trained_model(path, ema=ema)
            assert config.policy.type == toy_policy.NAME
            continue
        with pytest.raises(ModelLoadError) as info:
            load_trained_model(path, ema=ema)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("part", ["model", "ema"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture, part: str, value: float
):
    out, cfg = run
    last = out / "checkpoints" / "last.pt"
    name = first_matrix(torch.load(last, weights_only=True)[part])
    mutate(last, lambda b: b[part][name].view(-1)[3].fill_(value))
    before = tree_bytes(out)
    code, err = resume_cli(cfg, capsys)
    assert code == 2 and len(err) == 1, err
    assert f"checkpoint {last} has non-finite weights in {name}" in err[0]
    assert f"'{part}'" in err[0]
    assert tree_bytes(out) == before
    with pytest.raises(ModelLoadError, match="non-finite weights"):
        load_checkpoint(last)
    with pytest.raises(ModelLoadError, match="non-finite weights"):
        load_trained_model(last)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("optim.lr=1e30", "optim.lr"),
        ("optim.betas=[0.5,0.9]", "optim.betas"),
        ("train.seed=4", "train.seed"),
        ("train.ema_decay=0.5", "train.ema_decay"),
        ("data.batch_size=4", "data.batch_size"),
        ("policy.config.noise=0.5", "policy.config.noise"),
        ("data.sources[0].weight=2", "data.sources[0].weight"),
    ],
)
def test_resume_with_a_changed_config_field_is_refused_naming_it(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture, override: str, field: str
):
    out, cfg = run
    before = tree_bytes(out)
    code, err = resume_cli(cfg, capsys, override)
    assert code == 2 and len(err) == 1, err
    assert f"['{field}']" in err[0] and str(out / "checkpoints" / "last.pt") in err[0], err[0]
    assert tree_bytes(out) == before
    # several at once: every one is listed
    code, err = resume_cli(cfg, capsys, "optim.lr=1e30", "train.seed=4")
    assert code == 2 and "['optim.lr', 'train.seed']" in err[0], err


def test_resume_with_changed_steps_and_cadence_is_accepted(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture
):
    out, cfg = run
    assert "train.steps" in RESUME_MUTABLE_FIELDS and "optim.lr" not in RESUME_MUTABLE_FIELDS
    code, err = resume_cli(cfg, capsys, "train.log_every=2", "train.checkpoint_every=2")
    assert code == 0, err
    blob = load_checkpoint(out / "checkpoints" / "last.pt")
    assert blob["step"] == 6
    assert blob["config"]["train"]["steps"] == 6
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "last.pt",
        "step_000003.pt",
        "step_000004.pt",
        "step_000006.pt",
    ]


@pytest.mark.parametrize("where", ["file", "parent-file", "checkpoints-file"])
def test_output_dir_that_is_a_file_is_refused_before_anything_is_written(
    demos: Path, tmp_path: Path, capsys: pytest.CaptureFixture, where: str
):
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    out = {"file": afile, "parent-file": afile / "run", "checkpoints-file": tmp_path / "run"}[where]
    if where == "checkpoints-file":
        out.mkdir()
        (out / "checkpoints").write_text("not a folder\n")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(config_dict(demos, out, steps=3)))
    before = tree_bytes(tmp_path)
    capsys.readouterr()
    assert hvp_main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and f"train.output_dir={str(out)!r} is invalid" in err[0], err
    assert "is a file" in err[0]
    assert tree_bytes(tmp_path) == before


@pytest.mark.parametrize(
    ("array", "index", "value"),
    [("actions", 17, float("nan")), ("actions", 0, float("inf")), ("states", 9, float("-inf"))],
)
def test_non_finite_demos_are_named_with_file_array_and_sample_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture, array: str, index: int, value: float
):
    rng = np.random.default_rng(1)
    n = 24
    states = rng.standard_normal((n, 8)).astype(np.float32)
    actions = np.repeat(states[:, None, :7], 4, axis=1)
    {"actions": actions, "states": states}[array][index, ..., 2] = value
    images = np.zeros((n, 16, 16, 3), np.uint8)
    path = Demos(images, states, actions, np.repeat(np.arange(3), 8)).save(tmp_path / "bad.npz")

    with pytest.raises(
        InputError, match=rf"{re.escape(str(path))}: array '{array}' .* sample {index} "
    ):
        DemoDataset(path, 4)
    out = tmp_path / "run"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(config_dict(path, out, steps=3)))
    capsys.readouterr()
    assert hvp_main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert str(path) in err[0] and f"'{array}'" in err[0] and f"sample {index} " in err[0]
    assert not out.exists()


def test_a_clean_copy_still_resumes(run: tuple[Path, Path], capsys: pytest.CaptureFixture):
    """The checks refuse only what is wrong: the unchanged checkpoint trains on, and the
    untouched mutate round trip (weights_only=False load + save) is still a checkpoint."""
    out, cfg = run
    mutate(out / "checkpoints" / "last.pt", lambda b: None)
    code, err = resume_cli(cfg, capsys)
    assert code == 0, err
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 6


def test_a_key_given_twice_in_the_yaml_config_is_refused(
    demos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """PyYAML keeps the last of two equal keys: a second `train:` hiding the first trains with
    settings nobody reads in the file. Refused, one line, nothing written."""
    text = yaml.safe_dump(config_dict(demos, tmp_path / "out"))
    path = tmp_path / "dup.yaml"
    path.write_text(text + "train:\n  steps: 1\n")
    assert hvp_main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "key 'train' is given twice" in err[0], err
    assert not (tmp_path / "out").exists()


def test_random_bytes_are_refused_without_advice_to_unpickle_unsafely(tmp_path: Path) -> None:
    garbage = tmp_path / "last.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(ModelLoadError, match="corrupt or truncated") as info:
        load_checkpoint(garbage)
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
