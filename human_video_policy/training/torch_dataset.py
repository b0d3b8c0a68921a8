"""PyTorch view of a dataset: observation history + action chunk per sample (training only).

Why: VITRA's action expert and the project's policies learn chunks of ``horizon`` future
actions. A chunk that runs past the end of its episode is padded by repeating the last action
and flagged in ``action_is_pad``; its ``mask.action`` rows are zero so the loss ignores them
(VITRA trains with action masks). With ``action_space="human"`` robot actions are written into
the 102-d human hand space through the episode's embodiment (nearest joint, rest masked), so
human and robot data can be mixed in one batch.

Chunk timing follows docs/CONTRACTS.md: for an observation at frame ``t`` and
``action_offset=1`` (default), chunk row ``i`` is the dataset action at frame ``t + 1 + i``,
i.e. the target for ``t_obs + (i + 1) * dt``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from human_video_policy.data.dataset_reader import DatasetReader, resize_area
from human_video_policy.data.embodiment import EMBODIMENTS, HUMAN_DIM, EmbodimentSpec
from human_video_policy.data.normalization import FeatureStats, Normalizer, mix_stats
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.validation import check_choice, check_int_range, check_positive

Sample = dict[str, Any]
Transform = Callable[[Sample], Sample]
IMAGE_ACCESS = ("episode_cache", "seek")


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
        image_access: ``"episode_cache"`` decodes an episode's video once, front to back,
            resizes each frame to ``image_size`` with ``cv2.INTER_AREA`` and keeps the episode
            in a per-process LRU cache (pair it with :class:`EpisodeGroupedSampler` so samples
            of one episode come together); ``"seek"`` seeks in the MP4 for every frame and
            resizes with the runtime's ``prepare_rgb`` (bit-identical to inference, slow).
        video_cache_mb: bound of the episode cache per process (each DataLoader worker has
            its own), in MiB of uint8 frames at the training size. An episode larger than a
            quarter of it is not cached; its frames are read by seeking.
    """

    horizon: int = 16
    history: int = 1
    action_offset: int = 1
    image_keys: tuple[str, ...] | None = None
    image_size: tuple[int, int] | None = None
    action_space: str = "native"
    normalize: bool = False
    transforms: tuple[Transform, ...] = field(default_factory=tuple)
    image_access: str = "episode_cache"
    video_cache_mb: float = 256.0

    def __post_init__(self) -> None:
        check_int_range("horizon", self.horizon, 1)
        check_int_range("history", self.history, 1)
        check_int_range("action_offset", self.action_offset, 0)
        check_choice("action_space", self.action_space, ("native", "human"))
        check_choice("image_access", self.image_access, IMAGE_ACCESS)
        check_positive("video_cache_mb", self.video_cache_mb)
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
        self._frames: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._frame_bytes = 0
        self._norm: dict[str, Normalizer] = {}
        if self.config.normalize:
            stats = self.reader.stats()
            for key in ("observation.state", "action"):
                if key not in stats:
                    raise InputError(f"{self.reader.root}: stats.json has no {key}")
                self._norm[key] = Normalizer(stats[key])
        self.embodiment = self.reader.spec.embodiment
        self._embodiment: EmbodimentSpec | None = None
        self._state_names = tuple(self.reader.names("observation.state"))
        if self.config.action_space == "human":
            name = self.embodiment
            if name not in EMBODIMENTS:
                raise InputError(f"dataset embodiment {name!r} has no mapping to the human space")
            self._embodiment = EMBODIMENTS[name]
            if list(self._embodiment.action_names) != self.reader.names("action"):
                raise InputError(
                    f"dataset action names {self.reader.names('action')} differ from embodiment "
                    f"{name}'s {list(self._embodiment.action_names)}"
                )
            self._embodiment.state_to_human(np.zeros(len(self._state_names)), self._state_names)

    def __len__(self) -> int:
        return self.reader.num_frames

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers start with an empty cache
        state = dict(self.__dict__)
        state["_frames"] = OrderedDict()
        state["_frame_bytes"] = 0
        return state

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
        state_mask = (
            rows["mask.observation.state"][hist]
            if "mask.observation.state" in rows
            else np.ones_like(state)
        )
        action = rows["action"][fut]
        mask = rows["mask.action"][fut] if "mask.action" in rows else np.ones_like(action)
        emb = self._embodiment
        if emb is not None and emb.name == "human_hand":
            pass  # already in the human space, with per-hand masks
        elif emb is not None:
            action, human_mask = emb.to_human(action)
            mask = np.broadcast_to(human_mask, action.shape) * mask.max(axis=1, keepdims=True)
            state, human_state_mask = emb.state_to_human(state, self._state_names)
            state_mask = np.broadcast_to(human_state_mask, state.shape) * state_mask.max(
                axis=1, keepdims=True
            )
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
            "embodiment": self.embodiment,
            "observation.state": torch.from_numpy(np.ascontiguousarray(state, np.float32)),
            "mask.observation.state": torch.from_numpy(
                np.ascontiguousarray(state_mask, np.float32)
            ),
            "observation.state_is_pad": torch.from_numpy(hist_pad),
            "action": torch.from_numpy(np.ascontiguousarray(action, np.float32)),
            "action_is_pad": torch.from_numpy(fut_pad),
            "mask.action": torch.from_numpy(np.ascontiguousarray(mask, np.float32)),
        }
        for key in self.image_keys:
            sample[key] = self._images(ep, key, hist)
        for transform in cfg.transforms:
            sample = transform(sample)
        return sample

    def _images(self, ep: int, key: str, hist: np.ndarray) -> torch.Tensor:
        """(history, 3, H, W) float32 in [0, 1]."""
        if self.config.image_access == "seek":
            from human_video_policy.runtime.image_ops import prepare_rgb, to_chw_float

            frames = []
            for i in hist:
                img = self.reader.video_frame(ep, key, int(i))
                if self.config.image_size is not None:
                    img = prepare_rgb(img, *self.config.image_size)
                frames.append(to_chw_float(img)[0])
            return torch.from_numpy(np.stack(frames))
        if not self._fits_cache(ep, key):  # one episode would crowd the cache: seek instead
            frames = [self.reader.video_frame(ep, key, int(i)) for i in hist]
            if self.config.image_size is not None:
                frames = [resize_area(f, *self.config.image_size) for f in frames]
            return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0)
        episode = self.episode_frames(ep, key)
        return torch.from_numpy(episode[hist]).permute(0, 3, 1, 2).float().div_(255.0)

    def _fits_cache(self, ep: int, key: str) -> bool:
        """Whether the episode's frames take at most a quarter of the cache, so the episodes
        of a sampler group (4 by default) stay cached together instead of evicting each
        other on every sample."""
        h, w, _ = self.reader.info["features"][key]["shape"]
        if self.config.image_size is not None:
            h, w = self.config.image_size
        size = int(self.reader.episodes[ep]["length"]) * h * w * 3
        return size <= self.config.video_cache_mb * 2**20 / 4

    def episode_frames(self, ep: int, key: str) -> np.ndarray:
        """(T, H, W, 3) uint8 frames of one episode at the training size, from the LRU cache
        (decoded once, front to back, on a miss)."""
        cache_key = (key, ep)
        frames = self._frames.get(cache_key)
        if frames is not None:
            self._frames.move_to_end(cache_key)
            return frames
        frames = self.reader.decode_episode(ep, key, self.config.image_size)
        self._frames[cache_key] = frames
        self._frame_bytes += frames.nbytes
        limit = self.config.video_cache_mb * 2**20
        while self._frame_bytes > limit and len(self._frames) > 1:
            _, old = self._frames.popitem(last=False)
            self._frame_bytes -= old.nbytes
        return frames


# --------------------------------------------------------------------------------------------
# Mixing datasets (human + robot) in one loader


def human_space_stats(dataset: ChunkDataset) -> dict[str, tuple[FeatureStats, np.ndarray]]:
    """Statistics of ``observation.state`` and ``action`` in the 102-d human space over the
    entries whose mask is 1, per dimension, with a (102,) bool array of the dimensions the
    dataset has at all (a masked dimension must not pull the mixed mean toward 0)."""
    if dataset.config.action_space != "human":
        raise ConfigError("human_space_stats needs a ChunkDataset with action_space='human'")
    emb = dataset._embodiment
    assert emb is not None
    values: dict[str, list[np.ndarray]] = {"observation.state": [], "action": []}
    masks: dict[str, list[np.ndarray]] = {"observation.state": [], "action": []}
    for ep in range(dataset.reader.num_episodes):
        rows = dataset._episode_rows(ep)
        for key in values:
            x = rows[key]
            m = rows.get(f"mask.{key}", np.ones_like(x))
            if emb.name != "human_hand":
                if key == "action":
                    x, hm = emb.to_human(x)
                else:
                    x, hm = emb.state_to_human(x, dataset._state_names)
                m = hm[None] * m.max(axis=1, keepdims=True)
            values[key].append(np.asarray(x, np.float64))
            masks[key].append(np.asarray(m, np.float64))
    out: dict[str, tuple[FeatureStats, np.ndarray]] = {}
    for key in values:
        if not values[key]:
            raise InputError(f"{dataset.reader.root}: no frames, no statistics")
        x, m = np.concatenate(values[key]), np.concatenate(masks[key]) > 0.5
        count = m.sum(axis=0)
        present = count > 0
        safe = np.maximum(count, 1)
        mean = np.where(m, x, 0.0).sum(axis=0) / safe
        var = np.where(m, (x - mean) ** 2, 0.0).sum(axis=0) / safe
        big = np.where(m, x, -np.inf).max(axis=0)
        small = np.where(m, x, np.inf).min(axis=0)
        out[key] = (
            FeatureStats(
                mean=mean,
                std=np.sqrt(var),
                min=np.where(present, small, 0.0),
                max=np.where(present, big, 0.0),
                count=len(x),
            ),
            present,
        )
    return out


def mix_human_space_stats(
    per_dataset: Sequence[dict[str, tuple[FeatureStats, np.ndarray]]], weights: Sequence[float]
) -> dict[str, FeatureStats]:
    """VITRA A.2.3 unified statistics: :func:`mix_stats` per dimension over the datasets that
    have the dimension, weighted by their frame sampling probability. Dimensions no dataset
    has get mean 0, std 0 (the Normalizer maps them to 0)."""
    out: dict[str, FeatureStats] = {}
    for key in ("observation.state", "action"):
        items = [d[key] for d in per_dataset]
        present = np.stack([p for _, p in items])  # (datasets, 102)
        mean, std = np.zeros(HUMAN_DIM), np.zeros(HUMAN_DIM)
        lo, hi = np.zeros(HUMAN_DIM), np.zeros(HUMAN_DIM)
        patterns = {tuple(present[:, j]) for j in range(HUMAN_DIM)}
        for pattern in patterns:
            dims = np.nonzero((np.array(pattern) == present.T).all(axis=1))[0]
            which = [i for i, p in enumerate(pattern) if p]
            if not which:
                continue
            sliced = [
                {
                    key: FeatureStats(
                        mean=items[i][0].mean[dims],
                        std=items[i][0].std[dims],
                        min=items[i][0].min[dims],
                        max=items[i][0].max[dims],
                        count=items[i][0].count,
                    )
                }
                for i in which
            ]
            mixed = mix_stats(sliced, [weights[i] for i in which])[key]
            mean[dims], std[dims] = mixed.mean, mixed.std
            lo[dims], hi[dims] = mixed.min, mixed.max
        count = sum(s.count for s, _ in items)
        out[key] = FeatureStats(mean=mean, std=std, min=lo, max=hi, count=count)
    return out


class MixedChunkDataset(Dataset):
    """Several :class:`ChunkDataset` s (``action_space="human"``) as one, for one loader.

    ``weights`` are the frame sampling probabilities of the datasets (normalised to sum 1);
    :class:`EpisodeGroupedSampler` draws with them, and with ``normalize=True`` state and
    action are normalised with the unified statistics of VITRA A.2.3
    (:func:`mix_human_space_stats`); masked entries stay 0 after normalisation. Every sample
    gets ``dataset_index``. Index ``i`` runs over the datasets one after the other.
    """

    def __init__(
        self,
        datasets: Sequence[ChunkDataset],
        weights: Sequence[float] | None = None,
        *,
        normalize: bool = True,
    ) -> None:
        if not datasets:
            raise ConfigError("datasets=[] is invalid: give at least one ChunkDataset")
        self.datasets = list(datasets)
        w = [1.0] * len(datasets) if weights is None else list(weights)
        if len(w) != len(datasets):
            raise ConfigError(f"weights: {len(w)} given for {len(datasets)} datasets")
        for i, x in enumerate(w):
            check_positive(f"weights[{i}]", float(x))
        self.weights = np.asarray(w, np.float64) / float(np.sum(w))
        first = self.datasets[0]
        for i, d in enumerate(self.datasets):
            if d.config.action_space != "human":
                raise ConfigError(
                    f"datasets[{i}] ({d.reader.root}) has action_space="
                    f"{d.config.action_space!r}; mixing needs 'human' (one action space)"
                )
            if d.config.normalize:
                raise ConfigError(f"datasets[{i}]: normalize=True; the mix normalises instead")
            if (d.config.horizon, d.config.history, d.config.action_offset) != (
                first.config.horizon,
                first.config.history,
                first.config.action_offset,
            ):
                raise ConfigError(f"datasets[{i}]: horizon/history/action_offset differ")
            if d.image_keys != first.image_keys:
                raise ConfigError(
                    f"datasets[{i}] cameras {d.image_keys} differ from {first.image_keys}: "
                    "select common ones with image_keys"
                )
            if first.image_keys and d.config.image_size is None:
                raise ConfigError(f"datasets[{i}]: set image_size so images stack in a batch")
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])
        self.stats: dict[str, FeatureStats] | None = None
        self._norm: dict[str, Normalizer] = {}
        if normalize:
            self.stats = mix_human_space_stats(
                [human_space_stats(d) for d in self.datasets], self.weights.tolist()
            )
            self._norm = {k: Normalizer(v) for k, v in self.stats.items()}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """Global index -> (dataset, index within it)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range 0..{len(self) - 1}")
        d = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return d, index - int(self.offsets[d])

    def __getitem__(self, index: int) -> Sample:
        d, local = self.locate(index)
        sample = self.datasets[d][local]
        sample["dataset_index"] = d
        for key, norm in self._norm.items():
            mask = sample[f"mask.{key}"].numpy()
            z = norm.normalize(sample[key].numpy()) * mask
            sample[key] = torch.from_numpy(np.ascontiguousarray(z, np.float32))
        return sample


class EpisodeGroupedSampler(Sampler[int]):
    """Random samples that keep the episode cache warm, with exact frame probabilities.

    Repeatedly: draw ``episodes_per_group`` episodes (dataset by its weight, then episode by
    its length, so every frame of dataset ``d`` has probability ``w_d / frames_d``), take
    ``samples_per_episode`` uniformly random frames of each, shuffle the group and yield it.
    A batch then touches a few episodes, each decoded once per worker while it stays in the
    LRU cache, instead of one MP4 seek per sample.

    Fields: ``num_samples`` per epoch (``len``); ``seed``; :meth:`set_epoch` changes the draw.
    """

    def __init__(
        self,
        dataset: ChunkDataset | MixedChunkDataset,
        num_samples: int,
        *,
        samples_per_episode: int = 32,
        episodes_per_group: int = 4,
        seed: int = 0,
    ) -> None:
        check_int_range("num_samples", num_samples, 1)
        check_int_range("samples_per_episode", samples_per_episode, 1)
        check_int_range("episodes_per_group", episodes_per_group, 1)
        if isinstance(dataset, MixedChunkDataset):
            parts, weights = dataset.datasets, dataset.weights
            offsets = dataset.offsets[:-1]
        else:
            parts, weights, offsets = [dataset], np.ones(1), np.zeros(1, np.int64)
        self._parts = []
        for d, off in zip(parts, offsets, strict=True):
            starts = np.array([e["dataset_from_index"] for e in d.reader.episodes], np.int64)
            lengths = np.array([e["length"] for e in d.reader.episodes], np.int64)
            if lengths.sum() == 0:
                raise InputError(f"{d.reader.root}: no frames to sample")
            self._parts.append((int(off), starts, lengths, lengths / lengths.sum()))
        self.weights = np.asarray(weights, np.float64)
        self.num_samples = num_samples
        self.samples_per_episode = samples_per_episode
        self.episodes_per_group = episodes_per_group
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        left = self.num_samples
        while left > 0:
            group = []
            for _ in range(self.episodes_per_group):
                off, starts, lengths, p = self._parts[rng.choice(len(self._parts), p=self.weights)]
                e = rng.choice(len(starts), p=p)
                frames = rng.integers(0, lengths[e], self.samples_per_episode)
                group.append(off + starts[e] + frames)
            idx = np.concatenate(group)
            rng.shuffle(idx)
            for i in idx[:left].tolist():
                yield int(i)
            left -= min(left, len(idx))


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


__all__ = [
    "ChunkDataset",
    "ChunkDatasetConfig",
    "EpisodeGroupedSampler",
    "MixedChunkDataset",
    "chunk_collate",
    "human_space_stats",
    "mix_human_space_stats",
]
