"""Human episodes from the real hand video and robot episodes from the sim in one dataset format,
loaded together in one batch (VITRA: one action space with masks, unified normalisation)."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from human_video_policy.cli import dataset_cmd, video_cmd
from human_video_policy.data.dataset_format import check_conformance
from human_video_policy.data.dataset_reader import DatasetReader, resize_area
from human_video_policy.data.embodiment import (
    EMBODIMENTS,
    HUMAN_STATE_NAMES,
    human_dim,
)
from human_video_policy.data.human_episodes import hand_state
from human_video_policy.errors import ConfigError, HvpError, InputError
from human_video_policy.pipeline.episode_format import read_episode, write_episode
from human_video_policy.training.torch_dataset import (
    ChunkDataset,
    ChunkDatasetConfig,
    EpisodeGroupedSampler,
    MixedChunkDataset,
    chunk_collate,
)

VIDEO = SHARED_DATA / "human_video" / "dexret_hand" / "human_hand_video.mp4"
CAM = "observation.images.camera_color"
FRAMES = 150


def hvp(module, command: str, *argv: str) -> int:  # type: ignore[no-untyped-def]
    """What ``hvp <command> ...`` does (the module's argparse registration, hvp's error rule)."""
    parser = argparse.ArgumentParser(prog="hvp")
    module.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([command, *argv])
    try:
        return int(args.func(args))
    except HvpError as exc:
        print(f"hvp {command}: error: {exc}")
        return 2


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real video through the pipeline (first 150 frames), then both datasets."""
    assert VIDEO.is_file(), f"shared test data missing: {VIDEO}"
    tmp = tmp_path_factory.mktemp("human")
    out = {"videos": tmp / "videos", "human": tmp / "human_ds", "sim": tmp / "sim_ds"}
    assert hvp(video_cmd, "video", "process", str(VIDEO), "-o", str(out["videos"]),
               "--max-frames", str(FRAMES), "-q") == 0  # fmt: skip
    code = hvp(dataset_cmd, "dataset", "from-video", str(out["videos"]), "-o", str(out["human"]),
               "--image-size", "128x96")  # fmt: skip
    assert code == 0
    code = hvp(dataset_cmd, "dataset", "from-sim", "--episodes", "3", "-o", str(out["sim"]),
               "--image-size", "96x96", "-q")  # fmt: skip
    assert code == 0
    return out


def pipeline_episode(work: dict[str, Path]):  # type: ignore[no-untyped-def]
    (folder,) = [p for p in work["videos"].iterdir() if p.is_dir()]
    (path,) = sorted(folder.glob("episode_*.npz"))
    return read_episode(path), folder


def test_human_dataset_is_lerobot_v3_and_valid(
    work: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    assert check_conformance(work["human"]) == []
    assert hvp(dataset_cmd, "dataset", "validate", str(work["human"])) == 0
    reader = DatasetReader(work["human"])
    ep, _ = pipeline_episode(work)
    assert reader.spec.embodiment == "human_hand" and reader.fps == ep.fps == 30.0
    assert reader.info["features"][CAM]["shape"] == [96, 128, 3]
    # one dataset episode per atomic segment, tasks = the segment captions
    segs = ep.arrays["segments"]
    assert reader.num_episodes == len(segs) and reader.num_frames == FRAMES
    for i, (a, b) in enumerate(segs.tolist()):
        row = reader.episodes[i]
        assert row["length"] == b - a
        assert row["tasks"] == [str(ep.arrays["captions"][i])]
        assert row["hvp/prompt_video"] == f"{VIDEO}#t={a / 30:.3f},{b / 30:.3f}"
        assert row["hvp/source"].endswith(f"episode_000_right.npz#segment={i}")
    k = reader.info["hvp"]["cameras"][CAM]["k"]
    # 1280x720 cropped to 4:3 (960x720) and scaled by 0.1333: fx scales, cx moves to the centre
    assert k[0] == pytest.approx(ep.intrinsics["fx"] * 128 / 960)
    assert k[2] == pytest.approx((ep.intrinsics["cx"] + 0.5 - 160) * 128 / 960 - 0.5)


def test_plot_leaves_masked_dimensions_out_and_groups_by_finger(
    work: dict[str, Path], tmp_path: Path
) -> None:
    from human_video_policy.data.episode_render import plot_episode_curves

    png = tmp_path / "human.png"
    drawn = plot_episode_curves(work["human"], 0, png)
    assert png.read_bytes()[:4] == b"\x89PNG"
    reader = DatasetReader(work["human"])
    mask = reader.episode_rows(0)["mask.action"].max(axis=0) > 0
    expected = [n for n, k in zip(reader.names("action"), mask, strict=True) if k]
    action = [name for panel in drawn["action"] for name in panel]
    assert sorted(action) == sorted(expected)
    assert not any(n.startswith("left.") for n in action)  # right only
    # The wrist translation (m) and rotation (rad), then one panel per finger in anatomical
    # order (3 joints x 3 angles).
    fingers = [{n.split(".")[1].rstrip("0123456789") for n in p} for p in drawn["action"]]
    assert fingers == [
        {"dt_x", "dt_y", "dt_z"}, {"dr_x", "dr_y", "dr_z"},
        {"thumb"}, {"index"}, {"middle"}, {"ring"}, {"pinky"},
    ], fingers  # fmt: skip
    assert all(len(panel) <= 9 for panel in drawn["action"] + drawn["observation.state"])
    sim = plot_episode_curves(work["sim"], 0, tmp_path / "sim.png")  # no masks: every dim
    assert sum(map(len, sim["action"])) == len(DatasetReader(work["sim"]).names("action"))
    with pytest.raises(InputError, match=r"must be a \.png"):
        plot_episode_curves(work["sim"], 0, tmp_path / "sim.jpg")


def test_human_columns_equal_the_pipeline_output(work: dict[str, Path]) -> None:
    reader = DatasetReader(work["human"])
    ep, _ = pipeline_episode(work)
    actions = ep.arrays["actions_51"].astype(np.float32)
    state = hand_state(ep).astype(np.float32)
    right = slice(51, 102)
    for i, (a, b) in enumerate(ep.arrays["segments"].tolist()):
        rows = reader.episode_rows(i)
        # row t holds the transition into frame t: actions_51[t - 1], exactly (float32)
        np.testing.assert_array_equal(rows["action"][1:, right], actions[a : b - 1])
        if a > 0:
            np.testing.assert_array_equal(rows["action"][0, right], actions[a - 1])
        expected_mask = np.ones(b - a)
        expected_mask[0] = 0.0 if a == 0 else 1.0  # no transition into the piece's first frame
        np.testing.assert_array_equal(rows["mask.action"][:, 51], expected_mask)
        assert np.all(rows["mask.action"][:, right] == rows["mask.action"][:, [51]])
        # the left hand is absent: masked and zero
        assert not rows["mask.action"][:, :51].any() and not rows["action"][:, :51].any()
        assert not rows["mask.observation.state"][:, :51].any()
        np.testing.assert_array_equal(rows["observation.state"][:, right], state[a:b])
        assert rows["mask.observation.state"][:, right].all()
        np.testing.assert_array_equal(
            rows["human.hand_keypoints"].reshape(-1, 2, 21, 3)[:, 1],
            ep.arrays["keypoints_cam"][a:b].astype(np.float32),
        )
        assert not rows["human.hand_keypoints"].reshape(-1, 2, 21, 3)[:, 0].any()
        assert (rows["segment_index"] == i).all()
        np.testing.assert_array_equal(rows["source_frame_index"], ep.arrays["frame_index"][a:b])
    assert reader.names("observation.state") == list(HUMAN_STATE_NAMES)


def test_human_frames_come_from_the_source_video(work: dict[str, Path]) -> None:
    reader = DatasetReader(work["human"])
    cap = cv2.VideoCapture(str(VIDEO))
    source = []
    for _ in range(FRAMES):
        ok, bgr = cap.read()
        assert ok
        source.append(resize_area(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 96, 128).astype(float))
    cap.release()
    stored = np.concatenate(
        [reader.video_frames(e, CAM) for e in range(reader.num_episodes)]
    ).astype(float)
    assert len(stored) == FRAMES
    # where the hand moves most, the stored frame matches its own source frame best
    motion = [np.abs(source[g] - source[g - 1]).mean() for g in range(1, FRAMES)]
    for g in np.argsort(motion)[::-1][:3] + 1:
        mse = [((stored[g] - img) ** 2).mean() for img in source]
        assert int(np.argmin(mse)) == g and mse[g] < 15.0  # h264 crf 18


def test_sim_dataset_is_valid_widowx(work: dict[str, Path]) -> None:
    assert check_conformance(work["sim"]) == []
    reader = DatasetReader(work["sim"])
    assert reader.validate().ok
    assert reader.spec.embodiment == "widowx" and reader.num_episodes == 3 and reader.fps == 10
    rows = reader.episode_rows(1)
    assert rows["action"].shape[1] == 7 and rows["observation.state"].shape[1] == 8
    # the command leads the measured joints: the arm moves toward it
    assert np.abs(np.diff(rows["observation.state"][:, :6], axis=0)).sum() > 0.1
    assert reader.video_frames(1, CAM).shape[1:] == (96, 96, 3)


def test_one_loader_mixes_human_and_robot_episodes(work: dict[str, Path]) -> None:
    cfg = ChunkDatasetConfig(horizon=16, action_space="human", image_size=(64, 64))
    human, robot = ChunkDataset(work["human"], cfg), ChunkDataset(work["sim"], cfg)
    mixed = MixedChunkDataset([human, robot], weights=[0.7, 0.3])
    sampler = EpisodeGroupedSampler(mixed, 128, samples_per_episode=8, episodes_per_group=4)
    loader = torch.utils.data.DataLoader(
        mixed, batch_size=32, sampler=sampler, num_workers=2, collate_fn=chunk_collate
    )
    batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == 128
    both = [b for b in batches if set(b["dataset_index"].tolist()) == {0, 1}]
    assert both, "no batch held both embodiments"
    batch = both[0]
    assert batch[CAM].shape == (32, 1, 3, 64, 64)
    assert batch["action"].shape == (32, 16, 102) and batch["observation.state"].shape == (
        32,
        1,
        102,
    )
    is_human = batch["dataset_index"] == 0
    kinds = {e for e, h in zip(batch["embodiment"], is_human.tolist(), strict=True) if h}
    assert kinds == {"human_hand"} and set(batch["embodiment"]) == {"human_hand", "widowx"}
    mask, pad = batch["mask.action"], batch["action_is_pad"]
    # human rows: right hand only; robot rows: the gripper -> right index1 flexion only
    assert not mask[is_human][..., :51].any()
    pinch = human_dim("right", "index1", "flexion")
    robot_mask = mask[~is_human]
    assert torch.all(robot_mask.sum(-1) == (~pad[~is_human]).float())
    assert torch.all(robot_mask[..., pinch] == (~pad[~is_human]).float())
    assert torch.all(batch["mask.observation.state"][~is_human].sum(-1) == 1)
    # masked entries are zero after normalisation
    assert not batch["action"][mask == 0].any()


def test_mixed_normalisation_follows_vitra(work: dict[str, Path]) -> None:
    cfg = ChunkDatasetConfig(horizon=4, action_space="human", image_keys=())
    human, robot = ChunkDataset(work["human"], cfg), ChunkDataset(work["sim"], cfg)
    mixed = MixedChunkDataset([human, robot], weights=[3.0, 1.0])
    h_rows = [human.reader.episode_rows(e) for e in range(human.reader.num_episodes)]
    h_act = np.concatenate([r["action"] for r in h_rows]).astype(np.float64)
    h_mask = np.concatenate([r["mask.action"] for r in h_rows]) > 0
    r_native = np.concatenate(
        [robot.reader.episode_rows(e)["action"] for e in range(robot.reader.num_episodes)]
    )
    r_act, _ = EMBODIMENTS["widowx"].to_human(r_native)
    stats = mixed.stats
    assert stats is not None
    dx = human_dim("right", "index2", "flexion")  # human only: its own valid entries
    valid = h_act[h_mask[:, dx], dx]
    assert stats["action"].mean[dx] == pytest.approx(valid.mean(), rel=1e-6)
    assert stats["action"].std[dx] == pytest.approx(valid.std(), rel=1e-6)
    pinch = human_dim("right", "index1", "flexion")  # both: VITRA A.2.3 weighted moments
    hv, rv = h_act[h_mask[:, pinch], pinch], r_act[:, pinch].astype(np.float64)
    mean = 0.75 * hv.mean() + 0.25 * rv.mean()
    var = 0.75 * (hv.var() + hv.mean() ** 2) + 0.25 * (rv.var() + rv.mean() ** 2) - mean**2
    assert stats["action"].mean[pinch] == pytest.approx(mean, rel=1e-6)
    assert stats["action"].std[pinch] == pytest.approx(np.sqrt(var), rel=1e-6)
    assert stats["action"].std[:51].max() == 0  # no dataset has the left hand
    s = mixed[len(human) + 5]
    raw = robot[5]
    m = raw["mask.action"].numpy()
    z = (raw["action"].numpy() - stats["action"].mean) / np.maximum(stats["action"].std, 1e-8)
    np.testing.assert_allclose(s["action"].numpy(), z * m, rtol=1e-5, atol=1e-5)
    assert s["dataset_index"] == 1


def test_sampler_draws_frames_with_the_weights(work: dict[str, Path]) -> None:
    cfg = ChunkDatasetConfig(horizon=4, action_space="human", image_keys=())
    human, robot = ChunkDataset(work["human"], cfg), ChunkDataset(work["sim"], cfg)
    mixed = MixedChunkDataset([human, robot], weights=[0.7, 0.3], normalize=False)
    sampler = EpisodeGroupedSampler(mixed, 20000, samples_per_episode=8, seed=3)
    idx = np.array(list(sampler))
    assert len(idx) == 20000 and idx.min() >= 0 and idx.max() < len(mixed)
    is_human = idx < len(human)
    assert abs(is_human.mean() - 0.7) < 0.02
    # uniform over the frames of a dataset: episodes drawn by length
    counts = np.bincount(idx[is_human], minlength=len(human))
    per_episode = [counts[e["dataset_from_index"] : e["dataset_to_index"]].sum()
                   for e in human.reader.episodes]  # fmt: skip
    lengths = np.array([e["length"] for e in human.reader.episodes])
    np.testing.assert_allclose(
        per_episode / np.sum(per_episode), lengths / lengths.sum(), atol=0.03
    )
    sampler.set_epoch(1)
    assert not np.array_equal(np.array(list(sampler))[:100], idx[:100])


def test_cached_and_seeking_images_agree(work: dict[str, Path]) -> None:
    base = ChunkDatasetConfig(horizon=2, image_size=(48, 48))
    cached = ChunkDataset(work["sim"], base)
    small = ChunkDataset(work["sim"], replace(base, video_cache_mb=0.01))  # too small: seeks
    runtime = ChunkDataset(work["sim"], replace(base, image_access="seek"))  # prepare_rgb
    for i in (0, 17, 60):
        a, b, c = cached[i][CAM], small[i][CAM], runtime[i][CAM]
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert (a - c).abs().max() <= 1.01 / 255  # 96 -> 48: both block means, rounding aside
    assert len(cached._frames) > 0 and len(small._frames) == 0


def test_embodiment_mappings_round_trip_on_the_episodes(work: dict[str, Path]) -> None:
    robot = DatasetReader(work["sim"])
    wx = EMBODIMENTS["widowx"]
    for e in range(robot.num_episodes):
        rows = robot.episode_rows(e)
        human, mask = wx.to_human(rows["action"])
        back = wx.from_human(human, fill=rows["action"])
        np.testing.assert_allclose(back, rows["action"], atol=1e-6)
        assert mask.sum() == 1
        state, smask = wx.state_to_human(
            rows["observation.state"], robot.names("observation.state")
        )
        np.testing.assert_array_equal(smask, mask)
        np.testing.assert_allclose(state[:, mask > 0], human[:, mask > 0], atol=0.01)
    # XHand: the pipeline's retargeted joints of the real video, exactly back
    ep, _ = pipeline_episode(work)
    xh = EMBODIMENTS["xhand"]
    q = ep.arrays["xhand_joints"].astype(np.float32)
    human, mask = xh.to_human(q)
    np.testing.assert_array_equal(xh.from_human(human), q)
    assert mask[:51].sum() == 0 and mask.sum() == 12


def test_two_hands_and_bad_inputs(
    work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ep, folder = pipeline_episode(work)
    # the same track as a left hand too: a two-hand video
    two = tmp_path / "two" / folder.name
    shutil.copytree(folder, two)
    ep.handedness, ep.piece = "left", 1
    write_episode(two, ep)
    record = json.loads((two / "video.json").read_text())
    record["episodes"].append({**record["episodes"][0], "file": ep.file_name, "handedness": "left"})
    (two / "video.json").write_text(json.dumps(record))
    assert hvp(dataset_cmd, "dataset", "from-video", str(two), "-o", str(tmp_path / "ds2")) == 0
    reader = DatasetReader(tmp_path / "ds2")
    assert reader.num_episodes == 2 * len(ep.arrays["segments"])
    assert reader.info["features"][CAM]["shape"] == [180, 320, 3]  # default: longest side 320
    rows = reader.episode_rows(0)
    np.testing.assert_array_equal(rows["mask.action"][:, :51], rows["mask.action"][:, 51:])
    assert rows["mask.observation.state"].all()
    task = reader.tasks[int(rows["task_index"][0])]
    caption = str(ep.arrays["captions"][0])  # the left copy carries the right hand's captions
    assert task == f"Left hand: {caption}. Right hand: {caption}."

    # the source video moved: that video fails with the reason, exit 1
    record["source"] = str(tmp_path / "gone.mp4")
    (two / "video.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert hvp(dataset_cmd, "dataset", "from-video", str(two), "-o", str(tmp_path / "ds3")) == 1
    text = capsys.readouterr().out
    assert "failed (source video" in text and "gone.mp4" in text and "was it moved?" in text
    assert DatasetReader(tmp_path / "ds3").num_episodes == 0
    # not a processed video; a bad size; an existing output
    assert hvp(dataset_cmd, "dataset", "from-video", str(tmp_path), "-o", str(tmp_path / "x")) == 2
    assert "no processed video" in capsys.readouterr().out
    assert hvp(dataset_cmd, "dataset", "from-video", str(two), "-o", str(tmp_path / "y"),
               "--image-size", "129x96") == 2  # fmt: skip
    assert "image_size=(96, 129) is invalid" in capsys.readouterr().out
    assert hvp(dataset_cmd, "dataset", "from-video", str(two), "-o", str(work["human"])) == 2
    assert "exists and is not empty" in capsys.readouterr().out
    # mixing needs one action space
    native = ChunkDataset(work["sim"], ChunkDatasetConfig(image_keys=()))
    with pytest.raises(ConfigError, match="mixing needs 'human'"):
        MixedChunkDataset([native])
    human_cfg = ChunkDatasetConfig(action_space="human")
    with pytest.raises(ConfigError, match="set image_size"):
        MixedChunkDataset([ChunkDataset(work["sim"], human_cfg)])


def test_dit_trains_on_mixed_human_and_robot_data_and_ignores_masked_dims(
    work: dict[str, Path], tmp_path: Path
) -> None:
    """The DiT through `hvp train` on the real video's human episodes (with VITRA's augmentation)
    + a robot dataset in the 102-d human space; then, on a real mixed batch, the loss does not
    move when masked targets (the absent left hand, the robot's unmapped dims, padded rows)
    are changed."""
    import yaml

    from human_video_policy.cli.main import main as hvp_main
    from human_video_policy.training.trainer import load_trained_model

    config = {
        "policy": {
            "type": "dit",
            "config": {
                "action_space": "human_hand_102",
                "action_dim": 102,
                "state_dim": 102,
                "horizon": 16,
                "size": "tiny",
                "image_key": CAM,
                "image_size": [64, 64],
            },
        },
        "data": {
            "sources": [
                {"kind": "dataset", "path": str(work["human"]), "weight": 0.7, "augment": True},
                {"kind": "dataset", "path": str(work["sim"]), "weight": 0.3},
            ],
            "horizon": 16,
            "image_size": [64, 64],
            "image_keys": [CAM],
            "action_space": "human",
            "batch_size": 8,
            "normalization_samples": 64,
        },
        "optim": {"lr": 1e-3, "warmup_steps": 1},
        "train": {"steps": 3, "output_dir": str(tmp_path / "run"), "progress": False},
    }
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(config))
    assert hvp_main(["train", str(path)]) == 0
    model, run_config = load_trained_model(tmp_path / "run" / "checkpoints" / "last.pt")
    from human_video_policy.training.trainer import build_sources

    augmented, plain = (
        build_sources(run_config)[0],
        ChunkDataset(
            work["human"], ChunkDatasetConfig(horizon=16, action_space="human", image_size=(64, 64))
        ),
    )
    np.random.seed(3)
    a, p = augmented[10], plain[10]
    assert a.keys() == p.keys()  # the camera keys the augmentation adds are dropped again
    assert not torch.equal(a[CAM], p[CAM])  # and it did change the image

    cfg = ChunkDatasetConfig(horizon=16, action_space="human", image_size=(64, 64))
    mixed = MixedChunkDataset(
        [ChunkDataset(work["human"], cfg), ChunkDataset(work["sim"], cfg)], weights=[0.7, 0.3]
    )
    batch = chunk_collate([mixed[i] for i in (0, 5, len(mixed) - 1, len(mixed) - 20)])
    mask = batch["mask.action"]
    assert (mask == 0).any() and (mask == 1).any()

    def loss(b: dict) -> torch.Tensor:
        torch.manual_seed(11)
        return model.compute_loss(b)["loss"]

    before = loss(batch)
    changed = dict(batch, action=torch.where(mask == 0, 50.0, batch["action"]))
    assert torch.equal(loss(changed), before)
    changed = dict(batch, action=torch.where(mask == 1, batch["action"] + 0.5, batch["action"]))
    assert not torch.equal(loss(changed), before)
