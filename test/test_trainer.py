"""The generic trainer and ``hvp train``: config validation and overrides, a single-process run
with its outputs (TensorBoard events, PNG, config.yaml, checkpoints), exact resume after a
crash, the 2-process gloo torchrun run against the single-process curve, NaN stop, corrupt and
truncated checkpoints, model/data mismatches. A toy policy type (test/toy_policy.py) is
registered through the real policy registry; torch runs for real everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import toy_policy  # registers the "toy_test" policy type
import yaml
from training_helpers import config_dict, make_demos, tree_bytes

from human_video_policy.cli.main import main as hvp_main
from human_video_policy.errors import ConfigError, ModelLoadError
from human_video_policy.training.demo_dataset import DEMO_CAMERA, REACH_TASK, DemoDataset
from human_video_policy.training.train_config import (
    TrainConfig,
    apply_overrides,
    config_reference_markdown,
    load_train_config,
)
from human_video_policy.training.trainer import (
    StepBatchSampler,
    Trainer,
    TrainingDivergedError,
    load_checkpoint,
    load_trained_model,
    train,
)

HERE = Path(__file__).parent
ROOT = HERE.parent


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demos(tmp_path_factory.mktemp("demos") / "demos.npz")


# --------------------------------------------------------------------------------------------
# config


def test_unknown_fields_and_wrong_types_are_refused_with_their_path(demos: Path, tmp_path: Path):
    def refused(match: str, **sections) -> str:
        with pytest.raises(ConfigError, match=match) as info:
            TrainConfig.from_dict(config_dict(demos, tmp_path, **sections))
        return str(info.value)

    msg = refused(r"optim\.lrr: unknown field", optim={"lrr": 1e-3})
    assert "lr, weight_decay, betas" in msg  # the valid names are listed
    refused(r"train\.steps='ten' is invalid: must be an integer", train={"steps": "ten"})
    refused(r"train\.steps=0 is invalid", train={"steps": 0})
    refused(r"train\.progress='yes' is invalid: must be true or false", train={"progress": "yes"})
    refused(
        r"data\.sources\[0\]\.kind='video' is invalid",
        data={"sources": [{"kind": "video", "path": "x"}]},
    )
    refused(
        r"data\.sources\[0\]\.colour: unknown field", data={"sources": [{"path": "x", "colour": 1}]}
    )
    refused(r"data\.image_size=\[64\] is invalid", data={"image_size": [64]})
    refused(r"optim\.betas\[1\]=1\.5 is invalid", optim={"betas": [0.9, 1.5]})
    refused(r"train\.strategy='zero' is invalid", train={"strategy": "zero"})
    refused(r"train\.device='gpu' is invalid", train={"device": "gpu"})
    msg = refused(r"policy\.config", policy={"config": {"hiden": 3}})
    assert "hiden" in msg
    refused(r"policy\.type='nope'", policy={"type": "nope"})
    with pytest.raises(
        ConfigError,
        match=r"optimizer: unknown field; valid fields of the config: policy, data, optim, train",
    ):
        TrainConfig.from_dict({**config_dict(demos, tmp_path), "optimizer": {}})
    # FSDP is accepted by validation (it runs only under torchrun with several processes)
    cfg = TrainConfig.from_dict(
        config_dict(demos, tmp_path, train={"strategy": "fsdp", "ema_decay": 0.0})
    )
    assert cfg.train.strategy == "fsdp"
    # YAML 1.1 reads 3e-4 as a string: a float field takes it
    assert (
        TrainConfig.from_dict(config_dict(demos, tmp_path, optim={"lr": "3e-4"})).optim.lr == 3e-4
    )


def test_yaml_file_overrides_and_resolved_config(demos: Path, tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config_dict(demos, tmp_path / "out")))
    cfg = load_train_config(
        path,
        [
            "train.steps=200",
            "optim.lr=3e-4",
            "data.sources[0].weight=2",
            "policy.config.hidden=8",
            "data.image_size=[8, 8]",
        ],
    )
    assert cfg.train.steps == 200 and cfg.optim.lr == 3e-4
    assert cfg.data.sources[0].weight == 2.0 and cfg.data.image_size == [8, 8]
    resolved = cfg.to_dict()
    assert resolved["policy"]["config"]["hidden"] == 8
    assert resolved["policy"]["config"]["nan_after"] == 0  # the policy's defaults filled in
    assert TrainConfig.from_dict(yaml.safe_load(cfg.to_yaml())).to_dict() == resolved
    with pytest.raises(ConfigError, match=r"optim\.lrr: unknown field"):
        load_train_config(path, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match=r"write key.path=value"):
        load_train_config(path, ["train.steps"])
    with pytest.raises(ConfigError, match=r"data\.sources\.3 is not an element"):
        apply_overrides({"data": {"sources": [{}]}}, ["data.sources[3].weight=1"])
    # every field of every section is documented in its docstring and in docs/training.md
    reference = config_reference_markdown()
    assert "| `ema_decay` |" in reference and "| `weight` |" in reference
    assert "| `` |" not in reference and "|  |\n" not in reference
    doc = (ROOT / "docs" / "training.md").read_text()
    assert reference in doc, "docs/training.md is stale: paste config_reference_markdown()"


def test_demo_dataset_has_the_chunk_dataset_keys(demos: Path):
    ds = DemoDataset(demos, horizon=3, image_size=(8, 8))
    s = ds[9]
    assert s["observation.state"].shape == (1, 8) and s[DEMO_CAMERA].shape == (1, 3, 8, 8)
    assert s["action"].shape == (3, 7) and torch.all(s["mask.action"] == 1)
    assert s["task"] == REACH_TASK and s["embodiment"] == "widowx"
    assert s["episode_index"] == 1 and s["frame_index"] == 1
    assert float(s[DEMO_CAMERA].min()) >= 0 and float(s[DEMO_CAMERA].max()) <= 1
    assert ds.stats()["action"].mean.shape == (7,)
    with pytest.raises(ConfigError, match="horizon=5 is invalid"):
        DemoDataset(demos, horizon=5)


def test_sampler_weights_sharding_and_determinism(demos: Path):
    a, b = DemoDataset(demos), DemoDataset(demos)
    one = StepBatchSampler([a, b], [3, 1], 8, seed=1, total_steps=400)
    steps = list(one)
    from_a = np.mean([i < len(a) for batch in steps for i, _ in batch])
    assert abs(from_a - 0.75) < 0.03  # 3200 draws: 4 standard deviations
    # step s's samples depend on (seed, s) only: a resumed sampler gives the same batches
    later = StepBatchSampler([a, b], [3, 1], 8, seed=1, total_steps=400, start_step=250)
    assert list(later) == steps[250:]
    # the ranks of a 2-process run share the global batch, slot j -> rank j % 2
    r0, r1 = (
        StepBatchSampler([a, b], [3, 1], 8, seed=1, total_steps=5, rank=r, world_size=2)
        for r in (0, 1)
    )
    for s in range(1, 6):
        merged = [x for pair in zip(r0.step_items(s), r1.step_items(s), strict=True) for x in pair]
        assert merged == one.step_items(s)


# --------------------------------------------------------------------------------------------
# runs


def test_single_process_run_writes_every_output(demos: Path, tmp_path: Path):
    out = tmp_path / "run"
    cfg = TrainConfig.from_dict(
        config_dict(demos, out, train={"steps": 40, "checkpoint_every": 20})
    )
    result = train(cfg)
    assert result.step == 40 and set(result.final_losses) == {"loss", "loss_mse", "loss_aux"}
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])  # it learns
    assert yaml.safe_load((out / "config.yaml").read_text()) == cfg.to_dict()
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["last.pt", "step_000020.pt", "step_000040.pt"]
    assert (out / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "metrics.json").read_text())["history"] == result.history

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (event_file,) = (out / "tb").glob("events.out.tfevents.*")
    events = EventAccumulator(str(event_file))
    events.Reload()
    assert {"train/loss", "train/loss_mse", "train/loss_aux", "train/lr"} <= set(
        events.Tags()["scalars"]
    )
    logged = [e.value for e in events.Scalars("train/loss")]
    np.testing.assert_allclose(logged, losses, rtol=1e-6)

    blob = load_checkpoint(out / "checkpoints" / "last.pt")
    assert blob["step"] == 40 and blob["config"] == cfg.to_dict()
    assert blob["policy_config"]["noise"] == 0.1
    assert blob["model"]["action_mean"].abs().sum() > 0  # fit_normalization ran
    ema_model, loaded_cfg = load_trained_model(out / "checkpoints" / "last.pt")
    raw_model, _ = load_trained_model(out / "checkpoints" / "last.pt", ema=False)
    assert loaded_cfg.to_dict() == cfg.to_dict()
    assert torch.equal(ema_model.head.weight, blob["ema"]["head.weight"])
    assert not torch.equal(ema_model.head.weight, raw_model.head.weight)
    # a second fresh run into the same folder is refused: nothing is overwritten
    before = tree_bytes(out)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train(cfg)
    assert tree_bytes(out) == before


class Jitter(torch.utils.data.Dataset):
    """Demos with a random state augmentation (torch and numpy generators)."""

    def __init__(self, inner: DemoDataset) -> None:
        self.inner = inner
        self.demos = inner.demos  # episode table for the sampler

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> dict:
        s = self.inner[index]
        noise = torch.randn(s["observation.state"].shape) + float(np.random.normal())
        s["observation.state"] = s["observation.state"] + 0.1 * noise
        return s


def test_samples_and_their_augmentation_do_not_depend_on_worker_processes(
    demos: Path, tmp_path: Path
):
    histories = []
    for workers in (0, 2):
        cfg = config_dict(
            demos, tmp_path / f"w{workers}", data={"num_workers": workers}, train={"steps": 3}
        )
        result = Trainer(TrainConfig.from_dict(cfg), datasets=[Jitter(DemoDataset(demos))]).fit()
        histories.append(result.history)
    assert histories[0] == histories[1]


class Crash(Exception):
    pass


def test_resume_after_a_crash_gives_exactly_the_uninterrupted_weights(demos: Path, tmp_path: Path):
    def eval_fn(crash_at: int | None):
        def run(model, step):
            if step == crash_at:
                raise Crash(step)
            return {"calls": float(step)}

        return run

    straight = TrainConfig.from_dict(config_dict(demos, tmp_path / "a", train={"eval_every": 1}))
    train(straight, eval_fn=eval_fn(None))

    cut = TrainConfig.from_dict(config_dict(demos, tmp_path / "b", train={"eval_every": 1}))
    with pytest.raises(Crash):  # dies in step 4, after its update, before any checkpoint of it
        train(cut, eval_fn=eval_fn(4))
    assert load_checkpoint(tmp_path / "b/checkpoints/last.pt")["step"] == 3
    result = Trainer(cut, eval_fn=eval_fn(None)).fit(resume=True)
    assert result.step == 6

    a = load_checkpoint(tmp_path / "a/checkpoints/last.pt")
    b = load_checkpoint(tmp_path / "b/checkpoints/last.pt")
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs after resume"
    for pa, pb in zip(
        a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True
    ):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert a["history"] == b["history"]  # the same losses, step by step (noise included)
    # the events of the crashed step 4 were purged from TensorBoard on resume
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert len(list((tmp_path / "b/tb").glob("events.out.tfevents.*"))) == 2
    events = EventAccumulator(str(tmp_path / "b/tb"))  # the folder, as TensorBoard reads it
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(
        [h["loss"] for h in a["history"] if "loss" in h], rel=1e-6
    )


def test_nan_loss_stops_with_the_step_and_part_and_keeps_the_last_good_checkpoint(
    demos: Path, tmp_path: Path
):
    out = tmp_path / "nan"
    cfg = TrainConfig.from_dict(
        config_dict(demos, out, policy={"config": {"nan_after": 4}}, train={"checkpoint_every": 2})
    )
    with pytest.raises(TrainingDivergedError) as info:
        train(cfg)
    msg = str(info.value)
    assert "step 5" in msg and "loss_aux" in msg and "step 4" in msg and "last.pt" in msg
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["last.pt", "step_000002.pt", "step_000004.pt"]
    blob = load_checkpoint(out / "checkpoints" / "last.pt")
    assert blob["step"] == 4
    assert all(torch.isfinite(v).all() for v in blob["model"].values())
    # through the CLI: exit status 2 and the message on stderr
    path = tmp_path / "nan.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert hvp_main(["train", str(path), f"train.output_dir={tmp_path / 'nan2'}"]) == 2


def test_corrupt_or_truncated_checkpoints_are_refused_and_nothing_is_overwritten(
    demos: Path, tmp_path: Path
):
    out = tmp_path / "run"
    cfg = TrainConfig.from_dict(config_dict(demos, out, train={"steps": 3}))
    train(cfg)
    last = out / "checkpoints" / "last.pt"
    data = last.read_bytes()
    more = TrainConfig.from_dict(config_dict(demos, out, train={"steps": 6}))

    last.write_bytes(data[: len(data) // 2])  # truncated
    before = tree_bytes(out)
    with pytest.raises(ModelLoadError, match=rf"checkpoint {last} is corrupt or truncated"):
        train(more, resume=True)
    assert tree_bytes(out) == before

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(3000))
    with pytest.raises(ModelLoadError, match=rf"{garbage} is corrupt or truncated"):
        train(more, resume=garbage)
    not_ours = tmp_path / "weights.pt"
    torch.save({"state_dict": {}}, not_ours)
    with pytest.raises(ModelLoadError, match=rf"{not_ours} is not an hvp training checkpoint"):
        train(more, resume=not_ours)
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(more, resume=tmp_path / "missing.pt")
    assert tree_bytes(out) == before

    last.write_bytes(data)  # the intact file resumes
    assert train(more, resume=True).step == 6


def test_model_and_data_mismatches_name_both_sides(demos: Path, tmp_path: Path):
    def refused(match: str, **sections) -> None:
        cfg = TrainConfig.from_dict(config_dict(demos, tmp_path / "x", **sections))
        with pytest.raises(ConfigError, match=match):
            train(cfg)
        assert not (tmp_path / "x").exists()  # refused before anything was written

    refused(
        r"policy\.config\.action_dim=5 but data\.sources\[0\] .* has 7 action dims",
        policy={"config": {"action_dim": 5}},
    )
    refused(r"policy\.config\.horizon=3 but data\.horizon=4", policy={"config": {"horizon": 3}})
    refused(
        r"policy\.config\.action_space='xhand_joint_position' but .* "
        r"action space 'widowx_joint_position'",
        policy={"config": {"action_space": "xhand_joint_position"}},
    )
    refused(
        r"image_key='observation.images.wrist' but .* cameras \['observation.images.scene'\]",
        policy={"config": {"image_key": "observation.images.wrist", "image_encoder": "cnn"}},
    )
    refused(
        r"policy\.config\.image_size=\[8, 8\] but data\.sources\[0\] .* gives \[16, 16\] images",
        policy={"config": {"image_key": DEMO_CAMERA, "image_encoder": "cnn", "image_size": [8, 8]}},
    )
    other = make_demos(tmp_path / "short.npz", horizon=2)
    refused(
        r"data\.sources\[1\] .*horizon=4 is invalid.*2 rows",
        data={
            "sources": [
                {"kind": "demos", "path": str(demos)},
                {"kind": "demos", "path": str(other)},
            ]
        },
    )


def test_lerobot_dataset_source(tmp_path: Path):
    from test_dataset_format import CAM, write_small

    root = write_small(tmp_path / "ds")
    cfg = TrainConfig.from_dict(
        {
            "policy": {
                "type": toy_policy.NAME,
                "config": {
                    "action_dim": 2,
                    "state_dim": 3,
                    "horizon": 3,
                    "action_space": "x",
                    "image_key": CAM,
                    "image_encoder": "cnn",
                },
            },
            "data": {
                "sources": [{"kind": "dataset", "path": str(root)}],
                "horizon": 3,
                "image_size": [8, 12],
                "batch_size": 4,
                "normalization_samples": 8,
                "samples_per_episode": 4,
                "episodes_per_group": 2,
            },
            "train": {
                "steps": 2,
                "checkpoint_every": 0,
                "output_dir": str(tmp_path / "run"),
                "threads": 1,
                "progress": False,
            },
        }
    )
    result = train(cfg)
    assert result.step == 2 and np.isfinite(result.final_losses["loss"])
    bad = cfg.to_dict()
    bad["policy"]["config"]["action_space"] = "widowx_joint_position"
    bad["train"]["output_dir"] = str(tmp_path / "bad")
    with pytest.raises(
        ConfigError,
        match=r"action_space='widowx_joint_position' but data\.sources\[0\] .* action space 'x'",
    ):
        train(TrainConfig.from_dict(bad))


def write_mixed_sources(root: Path) -> tuple[Path, Path]:
    """A human-hand dataset (right hand, 102-d with masks) and a WidowX dataset, no cameras."""
    from human_video_policy.data.dataset_format import DatasetSpec, vector_feature
    from human_video_policy.data.dataset_writer import DatasetWriter
    from human_video_policy.data.embodiment import (
        EMBODIMENTS,
        HUMAN_ACTION_NAMES,
        HUMAN_ACTION_SPACE,
        HUMAN_STATE_NAMES,
    )

    rng = np.random.default_rng(5)
    human_spec = DatasetSpec(
        fps=10,
        robot_type="human_hand",
        embodiment="human_hand",
        action_space=HUMAN_ACTION_SPACE,
        features=(
            vector_feature("observation.state", HUMAN_STATE_NAMES),
            vector_feature("mask.observation.state", HUMAN_STATE_NAMES),
            vector_feature("action", HUMAN_ACTION_NAMES),
            vector_feature("mask.action", HUMAN_ACTION_NAMES),
        ),
    )
    right = np.zeros(102)
    right[51:] = 1
    with DatasetWriter(root / "human", human_spec) as w:
        for n in (12, 9):
            w.add_episode(
                {
                    "observation.state": rng.standard_normal((n, 102)) * right,
                    "mask.observation.state": np.tile(right, (n, 1)),
                    "action": rng.standard_normal((n, 102)) * right,
                    "mask.action": np.tile(right, (n, 1)),
                },
                "wave",
            )
    widowx = EMBODIMENTS["widowx"]
    robot_spec = DatasetSpec(
        fps=10,
        robot_type="widowx",
        embodiment="widowx",
        action_space=widowx.action_space,
        features=(
            vector_feature("observation.state", widowx.state_names),
            vector_feature("action", widowx.action_names),
        ),
    )
    with DatasetWriter(root / "robot", robot_spec) as w:
        for n in (10, 14):
            w.add_episode(
                {
                    "observation.state": rng.uniform(0.015, 0.037, (n, len(widowx.state_names))),
                    "action": rng.uniform(0.015, 0.037, (n, len(widowx.action_names))),
                },
                "pick",
            )
    return root / "human", root / "robot"


def test_mixed_human_and_robot_sources_with_weights(tmp_path: Path):
    """Human and WidowX episodes in the 102-d human space, drawn 3:1, masks passed through."""
    human, robot = write_mixed_sources(tmp_path)
    from human_video_policy.data.embodiment import HUMAN_ACTION_SPACE, human_dim

    raw = {
        "policy": {
            "type": toy_policy.NAME,
            "config": {
                "action_dim": 102,
                "state_dim": 102,
                "horizon": 3,
                "action_space": HUMAN_ACTION_SPACE,
            },
        },
        "data": {
            "sources": [
                {"kind": "dataset", "path": str(human), "weight": 3.0},
                {"kind": "dataset", "path": str(robot), "weight": 1.0},
            ],
            "horizon": 3,
            "action_space": "human",
            "batch_size": 16,
            "normalization_samples": 32,
        },
        "train": {
            "steps": 25,
            "checkpoint_every": 0,
            "output_dir": str(tmp_path / "run"),
            "threads": 1,
            "progress": False,
        },
    }
    cfg = TrainConfig.from_dict(raw)
    model = toy_policy.ToyPolicy(cfg.policy_config())
    result = Trainer(cfg, model=model).fit()
    assert result.step == 25 and np.isfinite(result.final_losses["loss"])
    share = np.mean(np.asarray(model.seen) == 0)
    assert len(model.seen) == 400 and abs(share - 0.75) < 0.09  # 4 standard deviations
    # fit_normalization saw both embodiments in the human space: the WidowX gripper lands on
    # the right index1 flexion, no sample has a left hand (masked, zero)
    pinch = human_dim("right", "index1", "flexion")
    assert model.action_std[pinch] > 0.5 and float(model.action_mean[:51].abs().max()) == 0
    # the native action spaces of the two sources disagree: refused naming both
    raw["data"]["action_space"] = "native"
    raw["policy"]["config"]["action_space"] = ""
    raw["train"]["output_dir"] = str(tmp_path / "native")
    with pytest.raises(ConfigError, match=r"data sources disagree: .*human.* 102 .*robot.* 7"):
        train(TrainConfig.from_dict(raw))


def test_cli_train_prints_outputs_and_resumes(
    demos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    path = tmp_path / "toy.yaml"
    out = tmp_path / "cli"
    path.write_text(yaml.safe_dump(config_dict(demos, out)))
    assert hvp_main(["train", str(path), "train.steps=2", "train.ema_decay=0"]) == 0
    text = capsys.readouterr().out
    assert f"outputs in {out}" in text and "final loss=" in text and "last.pt" in text
    assert hvp_main(["train", str(path), "--resume", "train.steps=4", "train.ema_decay=0"]) == 0
    assert load_checkpoint(out / "checkpoints/last.pt")["step"] == 4
    assert "resuming from" in capsys.readouterr().out
    assert hvp_main(["train", str(path), "optim.lrr=1"]) == 2
    assert "optim.lrr: unknown field" in capsys.readouterr().err
    assert hvp_main(["train", str(path), "--resum"]) == 2
    assert "unknown option '--resum'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        hvp_main(["train", "--help"])
    assert info.value.code == 0 and "usage: hvp train CONFIG.yaml" in capsys.readouterr().out


def test_periodic_closed_loop_sim_evaluation(demos: Path, tmp_path: Path):
    """train.eval_every without an eval_fn: the WidowX reach task in the sim, on the EMA model
    (the toy policy holds the measured joints, so it never reaches the target)."""
    out = tmp_path / "eval"
    cfg = config_dict(demos, out, train={"steps": 2, "eval_every": 2, "eval_episodes": 1})
    result = train(TrainConfig.from_dict(cfg))
    (entry,) = [h for h in result.history if "eval/success_rate" in h]
    assert entry["step"] == 2 and entry["eval/success_rate"] == 0.0
    assert entry["eval/mean_final_distance_m"] > 0.02

    class Unrunnable(toy_policy.ToyPolicy):
        predict_chunk = None  # no policy interface

    with pytest.raises(ConfigError, match="needs an eval_fn or a policy exposing"):
        cfg["train"]["output_dir"] = str(tmp_path / "x")
        Trainer(TrainConfig.from_dict(cfg), model=Unrunnable(toy_policy.ToyConfig())).fit()
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------------------------
# several processes


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_process_gloo_run_matches_the_single_process_curve(
    demos: Path, tmp_path: Path, strategy: str
):
    """Same global batch (8) split 4 + 4 over 2 gloo processes (torchrun) vs one process: the
    same loss at every step within 1e-5 relative and the same final weights within 1e-6
    (float summation order may differ in the gradient all-reduce). FSDP (fully_shard) runs on
    CPU too; its checkpoint holds the full weights."""
    base = config_dict(
        demos,
        tmp_path / "single",
        policy={"config": {"noise": 0.0}},
        train={"steps": 4, "checkpoint_every": 2, "ema_decay": 0.0},
    )
    single = train(TrainConfig.from_dict(base))
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(base))
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    start = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            str(HERE / "toy_train_entry.py"),
            str(path),
            f"train.output_dir={tmp_path / 'multi'}",
            f"train.strategy={strategy}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("final loss=") == 1  # rank 0 alone reports (and writes)
    history = json.loads((tmp_path / "multi/metrics.json").read_text())["history"]
    np.testing.assert_allclose(
        [h["loss"] for h in history], [h["loss"] for h in single.history], rtol=1e-5
    )
    a = load_checkpoint(tmp_path / "single/checkpoints/last.pt")
    b = load_checkpoint(tmp_path / "multi/checkpoints/last.pt")
    assert len(b["rng"]) == 2  # each process's generator states
    for name in a["model"]:
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=0, atol=1e-6)
    if strategy == "fsdp":
        # the sharded run's optimizer state is keyed by name: one process cannot resume it
        resumed = config_dict(
            demos, tmp_path / "multi", policy={"config": {"noise": 0.0}}, train={"ema_decay": 0}
        )
        before = tree_bytes(tmp_path / "multi")
        with pytest.raises(ConfigError, match="written by a 'fsdp' run"):
            train(TrainConfig.from_dict(resumed), resume=True)
        assert tree_bytes(tmp_path / "multi") == before
    print(f"torchrun 2 x gloo ({strategy}): {time.monotonic() - start:.1f} s")


def test_two_process_dit_run_matches_the_single_process_curve(demos: Path, tmp_path: Path):
    """The DiT draws its training noise, timestep and CFG dropouts per sample from the
    trainer's per-sample seed: 2 gloo processes (4 + 4 samples) give the single-process loss
    curve of the same global batch (8), noise and all, within float summation order."""
    base = config_dict(
        demos,
        tmp_path / "single",
        policy={
            "type": "dit",
            "config": {
                "horizon": 4,
                "size": "tiny",
                "image_size": [16, 16],
                "action_target": "delta",
                "condition_dropout": 0.3,  # the dropouts are drawn too
                "state_dropout": 0.3,
            },
        },
        data={"image_size": [16, 16]},
        train={"steps": 4, "checkpoint_every": 4, "ema_decay": 0.0},
    )
    base["policy"]["config"].pop("noise")
    single = train(TrainConfig.from_dict(base))
    path = tmp_path / "dit.yaml"
    path.write_text(yaml.safe_dump(base))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    hvp = ["-m", "human_video_policy.cli.main", "train", str(path)]
    proc = subprocess.run(
        [*torchrun, "--standalone", *hvp, f"train.output_dir={tmp_path / 'multi'}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    history = json.loads((tmp_path / "multi/metrics.json").read_text())["history"]
    losses = [h["loss"] for h in history]
    np.testing.assert_allclose(losses, [h["loss"] for h in single.history], rtol=1e-5)
    assert len(set(np.round(losses, 6))) == len(losses)  # a real, moving curve
