"""PyTorch view of a dataset: observation history + action chunk per sample (training only).

Why: VITRA's action expert and the project's policies learn chunks of ``horizon`` future
actions. A chunk that runs past the end of its episode is padded by repeating the last action
and flagged in ``action_is_pad``; its ``action.mask`` rows are zero so the loss ignores them
(VITRA trains with action masks). With ``action_space="human"`` robot actions are written into
the 102-d human hand space through the episode's embodiment (nearest joint, rest masked), so
human and robot data can be mixed in one batch.

Chunk timing follows docs/CONTRACTS.md: for an observation at frame ``t`` and
``action_offset=1`` (default), chunk row ``i`` is the dataset action at frame ``t + 1 + i``,
i.e. the target for ``t_obs + (i + 1) * dt``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.data.embodiment import EMBODIMENTS
from human_video_policy.data.normalization import Normalizer
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.validation import check_choice, check_int_range

Sample = dict[str, Any]
Transform = Callable[[Sample], Sample]


@dataclass(frozen=True)
class ChunkDatasetConfig:
    """What one training sample holds.

    Fields:
        horizon: actions per chunk (VITRA uses 16).
        history: observation frames per sample (t - history + 1 .. t); frames before the
            episode start repeat the first frame and are flagged in ``*_is_pad``.
        action_offset: frames between the observation and the first chunk row (1: row i is the
            target for t + (i + 1) dt, the ONNX policy contract; 0: LeRobot's convention).
        image_keys: cameras to load (None: all; empty: none).
        image_size: (height, width) images are centre-cropped and resized to, or None.
        action_space: ``"native"`` (the dataset's own action columns) or ``"human"`` (the
            102-d human hand space through the episode's embodiment, with its mask).
        normalize: apply mean/std from the dataset's stats.json to state and (native) action.
        transforms: augmentation hooks, each ``sample -> sample``, applied in order after the
            tensors are built (e.g. colour jitter on images, state dropout).
    """

    horizon: int = 16
    history: int = 1
    action_offset: int = 1
    image_keys: tuple[str, ...] | None = None
    image_size: tuple[int, int] | None = None
    action_space: str = "native"
    normalize: bool = False
    transforms: tuple[Transform, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        check_int_range("horizon", self.horizon, 1)
        check_int_range("history", self.history, 1)
        check_int_range("action_offset", self.action_offset, 0)
        check_choice("action_space", self.action_space, ("native", "human"))
        if self.normalize and self.action_space == "human":
            raise ConfigError(
                "normalize=True with action_space='human' is invalid: normalise in the human "
                "space with mixed statistics (data.normalization.mix_stats) instead"
            )
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ConfigError(f"image_size={self.image_size!r} is invalid: (height, width) >= 1")


class ChunkDataset(Dataset):
    """Samples of one dataset folder; index = global frame index of the observation."""

    def __init__(self, root: str | Path | DatasetReader, config: ChunkDatasetConfig | None = None):
        self.reader = root if isinstance(root, DatasetReader) else DatasetReader(root)
        self.config = config or ChunkDatasetConfig()
        keys = self.reader.video_keys
        wanted = keys if self.config.image_keys is None else list(self.config.image_keys)
        if unknown := sorted(set(wanted) - set(keys)):
            raise ConfigError(f"image_keys: {unknown} not in the dataset's cameras {keys}")
        self.image_keys = wanted
        self._rows: dict[int, dict[str, np.ndarray]] = {}
        self._norm: dict[str, Normalizer] = {}
        if self.config.normalize:
            stats = self.reader.stats()
            for key in ("observation.state", "action"):
                if key not in stats:
                    raise InputError(f"{self.reader.root}: stats.json has no {key}")
                self._norm[key] = Normalizer(stats[key])
        self._embodiment = None
        if self.config.action_space == "human":
            name = self.reader.spec.embodiment
            if name not in EMBODIMENTS:
                raise InputError(f"dataset embodiment {name!r} has no mapping to the human space")
            self._embodiment = EMBODIMENTS[name]
            if list(self._embodiment.action_names) != self.reader.names("action"):
                raise InputError(
                    f"dataset action names {self.reader.names('action')} differ from embodiment "
                    f"{name}'s {list(self._embodiment.action_names)}"
                )

    def __len__(self) -> int:
        return self.reader.num_frames

    def _episode_rows(self, episode: int) -> dict[str, np.ndarray]:
        rows = self._rows.get(episode)
        if rows is None:
            rows = self.reader.episode_rows(episode)
            self._rows[episode] = rows
        return rows

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range 0..{len(self) - 1}")
        cfg = self.config
        ep = self.reader.episode_of(index)
        info = self.reader.episodes[ep]
        rows = self._episode_rows(ep)
        n = int(info["length"])
        t = index - int(info["dataset_from_index"])

        hist = np.arange(t - cfg.history + 1, t + 1)
        hist_pad = hist < 0
        hist = np.clip(hist, 0, n - 1)
        fut = np.arange(cfg.horizon) + t + cfg.action_offset
        fut_pad = fut >= n
        fut = np.clip(fut, 0, n - 1)

        state = rows["observation.state"][hist]
        action = rows["action"][fut]
        mask = rows["action.mask"][fut] if "action.mask" in rows else np.ones_like(action)
        if self._embodiment is not None:
            action, human_mask = self._embodiment.to_human(action)
            mask = np.broadcast_to(human_mask, action.shape) * mask.max(axis=1, keepdims=True)
        if "observation.state" in self._norm:
            state = self._norm["observation.state"].normalize(state)
        if "action" in self._norm:
            action = self._norm["action"].normalize(action)
        mask = np.where(fut_pad[:, None], 0.0, mask)

        sample: Sample = {
            "index": index,
            "episode_index": ep,
            "frame_index": t,
            "task": self.reader.tasks[int(rows["task_index"][t])],
            "observation.state": torch.from_numpy(np.ascontiguousarray(state, np.float32)),
            "observation.state_is_pad": torch.from_numpy(hist_pad),
            "action": torch.from_numpy(np.ascontiguousarray(action, np.float32)),
            "action_is_pad": torch.from_numpy(fut_pad),
            "action.mask": torch.from_numpy(np.ascontiguousarray(mask, np.float32)),
        }
        for key in self.image_keys:
            frames = [self._image(ep, key, int(i)) for i in hist]
            sample[key] = torch.from_numpy(np.stack(frames))
        for transform in cfg.transforms:
            sample = transform(sample)
        return sample

    def _image(self, ep: int, key: str, i: int) -> np.ndarray:
        from human_video_policy.runtime.image_ops import prepare_rgb, to_chw_float

        img = self.reader.video_frame(ep, key, i)
        if self.config.image_size is not None:
            img = prepare_rgb(img, *self.config.image_size)
        return to_chw_float(img)[0]


def chunk_collate(samples: Sequence[Sample]) -> Sample:
    """Stack tensors, keep strings and ints as lists / tensors (for DataLoader)."""
    out: Sample = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], int):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out


__all__ = ["ChunkDataset", "ChunkDatasetConfig", "chunk_collate"]
