"""The torch loader: action chunks with VITRA-style padding masks, observation history, the
human action space, normalisation from stats.json, augmentation hooks and worker processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_dataset_format import CAM, episode, write_small

from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.data.embodiment import EMBODIMENTS, human_dim
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.training.torch_dataset import (
    ChunkDataset,
    ChunkDatasetConfig,
    chunk_collate,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small(tmp_path_factory.mktemp("torch") / "ds")


def test_chunks_follow_the_policy_contract_and_pad_at_the_end(root: Path) -> None:
    ds = ChunkDataset(root, ChunkDatasetConfig(horizon=4, history=2))
    actions = episode(7, 1)[0]["action"].astype(np.float32)  # episode 1 = frames 5..11
    s = ds[5 + 4]
    # row i is the action at frame t + 1 + i (target for t_obs + (i + 1) dt)
    np.testing.assert_array_equal(s["action"][:2].numpy(), actions[5:7])
    assert s["action_is_pad"].tolist() == [False, False, True, True]
    np.testing.assert_array_equal(s["action"][2].numpy(), actions[6])  # padding repeats last
    assert s["mask.action"][:2].sum() == 4 and s["mask.action"][2:].sum() == 0
    assert s["observation.state"].shape == (2, 3) and s["observation.state_is_pad"].tolist() == [
        False,
        False,
    ]
    first = ds[5]
    assert first["observation.state_is_pad"].tolist() == [True, False]
    np.testing.assert_array_equal(first["observation.state"][0], first["observation.state"][1])
    assert first[CAM].shape == (2, 3, 16, 24) and first[CAM].dtype == torch.float32
    assert first["task"] == "place" and first["episode_index"] == 1


def test_normalisation_and_transforms(root: Path) -> None:
    calls = []

    def drop_state(sample):
        calls.append(sample["index"])
        sample["observation.state"] = torch.zeros_like(sample["observation.state"])
        return sample

    cfg = ChunkDatasetConfig(horizon=3, normalize=True, image_keys=(), transforms=(drop_state,))
    ds = ChunkDataset(root, cfg)
    all_actions = np.concatenate([ds.reader.episode_rows(e)["action"] for e in range(3)])
    z = np.stack(
        [ds[i]["action"][0].numpy() for i in range(len(ds)) if not ds[i]["action_is_pad"][0]]
    )
    assert np.abs(z).max() < 5 and np.abs(z.mean(0)).max() < 0.6
    stats = ds.reader.stats()["action"]
    np.testing.assert_allclose(stats.mean, all_actions.mean(0), rtol=1e-5)
    assert CAM not in ds[0] and torch.all(ds[0]["observation.state"] == 0)
    assert len(calls) > 0


def test_human_space_from_a_widowx_dataset(tmp_path: Path) -> None:
    from test_dataset_bags import make_bag

    from human_video_policy.data.bag_to_dataset import BagConversionConfig, convert_bags

    make_bag(tmp_path / "bag", seconds=1.5, with_camera=False)
    convert_bags([tmp_path / "bag"], tmp_path / "ds", BagConversionConfig(camera_topics=()))
    ds = ChunkDataset(tmp_path / "ds", ChunkDatasetConfig(horizon=5, action_space="human"))
    s = ds[0]
    assert s["action"].shape == (5, 102) and s["mask.action"].shape == (5, 102)
    pinch = human_dim("right", "index1", "flexion")
    assert s["mask.action"][0].sum() == 1 and s["mask.action"][0, pinch] == 1
    native = ds.reader.episode_rows(0)["action"][1:6]
    expected, _ = EMBODIMENTS["widowx"].to_human(native)
    np.testing.assert_array_equal(s["action"].numpy(), expected)


def test_loader_with_worker_processes(root: Path) -> None:
    ds = ChunkDataset(root, ChunkDatasetConfig(horizon=2))
    loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=2, collate_fn=chunk_collate)
    batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == 15
    assert batches[0][CAM].shape == (5, 1, 3, 16, 24)
    assert batches[0]["index"].tolist() == [0, 1, 2, 3, 4]


def test_bad_configs(root: Path) -> None:
    with pytest.raises(ConfigError, match="horizon=0"):
        ChunkDatasetConfig(horizon=0)
    with pytest.raises(ConfigError, match="action_space='joint'"):
        ChunkDatasetConfig(action_space="joint")
    with pytest.raises(ConfigError, match="mix_stats"):
        ChunkDatasetConfig(action_space="human", normalize=True)
    with pytest.raises(ConfigError, match="not in the dataset's cameras"):
        ChunkDataset(root, ChunkDatasetConfig(image_keys=("observation.images.wrist",)))
    with pytest.raises(InputError, match="action names"):
        ChunkDataset(DatasetReader(root), ChunkDatasetConfig(action_space="human"))
    with pytest.raises(IndexError):
        ChunkDataset(root)[15]
