"""The generic trainer behind ``hvp train``: any registered policy, any mix of data sources.

A trainable model is a ``torch.nn.Module`` with ``.config`` (a dataclass) and
``compute_loss(batch) -> dict[str, Tensor]`` returning at least ``"loss"`` (the scalar that is
minimised) and optionally named parts (``"loss_fingers"``...) that are logged. Batches have the
keys of ``torch_dataset.ChunkDataset`` / ``demo_dataset.DemoDataset`` collated by
``chunk_collate`` (``observation.state`` (B, history, S), ``observation.images.<cam>``
(B, history, 3, H, W), ``action`` / ``mask.action`` (B, T, A), ``task`` list of strings...).

Normalisation: a model with ``fit_normalization(batches)`` gets, at the start of a fresh run
(not on resume: its buffers come from the checkpoint), an iterable of collated batches of
``data.normalization_samples`` samples drawn with the run's sampling weights (so mixed-data
statistics are weighted as the training draw, VITRA A.2.3), on every process alike; it stores
its statistics in its own buffers, which the checkpoints and exports carry.

What a run does (:class:`Trainer`, :func:`train`):

* AdamW, linear warm-up + cosine (or constant) learning rate, global gradient-norm clipping;
* EMA weights (``train.ema_decay``): a copy of the model updated after every step;
  checkpoints hold both, the evaluation hook and :func:`load_trained_model` use EMA;
* deterministic: python/numpy/torch seeds, model init from ``train.seed``; the samples of
  step ``s`` are a function of (seed, s) alone (:class:`StepBatchSampler`), each sample's
  transforms run under its own seeds, so the data do not depend on worker count or on resume;
* a tqdm bar on stderr, losses to TensorBoard event files (``tb/``), ``metrics.json`` and a
  PNG plot (``losses.png``) at every checkpoint and at the end;
* checkpoints ``checkpoints/step_XXXXXX.pt`` and ``last.pt`` (model, EMA, optimizer,
  scheduler, step, RNG states of every process, sampler position, loss history, resolved
  config), written atomically; ``resume`` continues bit-exactly; a corrupt or truncated
  checkpoint is refused naming the file, and so is one that unpickles with a field of the
  wrong type or shape, non-finite weights, or an optimizer / scheduler / RNG state that does
  not fit (:func:`check_checkpoint_fields`, :func:`_restore`), naming the field; a resume
  whose config differs from the checkpoint's outside ``train_config.RESUME_MUTABLE_FIELDS``
  is refused naming the fields; the checkpoint is loaded, checked and restored before
  anything in ``output_dir`` is written;
* a NaN/inf loss part or gradient norm stops the run naming the step and the part, before the
  weights change; the last checkpoint written stays the last good one;
* torchrun: ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` select DDP (gloo on CPU, nccl on CUDA) or
  FSDP (``train.strategy``); each step's global batch is split over the ranks; rank 0 alone
  writes files.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import pickle
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from human_video_policy.errors import ConfigError, HvpError, InputError, ModelLoadError
from human_video_policy.training.data_names import DataNames, data_names
from human_video_policy.training.train_config import TrainConfig

EvalFn = Callable[[nn.Module, int], Mapping[str, float]]
CHECKPOINT_FORMAT = "hvp-train-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_KEYS = (
    "format",
    "version",
    "step",
    "config",
    "policy_type",
    "policy_config",
    "model",
    "ema",
    "optimizer",
    "scheduler",
    "rng",
    "sampler",
    "history",
)


class TrainingDivergedError(HvpError):
    """A loss part or the gradient norm became NaN or infinite; training stopped."""


# --------------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


def dist_context_from_env(device: torch.device) -> DistContext:
    """Read WORLD_SIZE / RANK / LOCAL_RANK (set by torchrun) and join the process group
    (nccl on CUDA, gloo on CPU) unless it is already initialised."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {}
        if device.type == "cuda":
            kwargs["device_id"] = device
        torch.distributed.init_process_group(backend, rank=rank, world_size=world, **kwargs)
        here = True
    return DistContext(rank, world, local, here)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda (when available) else cpu; under torchrun, CUDA uses LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name!r} is invalid: CUDA is not available here")
        if name == "cuda":
            name = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(torch.device(name))
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """python / numpy / torch (CPU and CUDA) generator states, torch.load(weights_only)-safe."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(
        (
            n["kind"],
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------------
# Data


def _episode_table(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(starts, lengths) of the episodes of one source, in its own index space."""
    reader = getattr(dataset, "reader", None)
    if reader is not None:
        starts = np.array([e["dataset_from_index"] for e in reader.episodes], np.int64)
        lengths = np.array([e["length"] for e in reader.episodes], np.int64)
        return starts, lengths
    demos = getattr(dataset, "demos", None)
    n = len(dataset)  # type: ignore[arg-type]
    if demos is not None and n:
        ep = np.asarray(demos.episodes)
        cut = np.concatenate([[0], np.nonzero(ep[1:] != ep[:-1])[0] + 1])
        return cut.astype(np.int64), np.diff(np.concatenate([cut, [n]])).astype(np.int64)
    return np.zeros(1, np.int64), np.array([n], np.int64)


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """The samples of every step as a function of (seed, step) alone.

    The draw is a stream of *groups*; group ``g`` (its own generator, seeded with
    ``(seed, g)``) draws ``episodes_per_group`` episodes (source by its weight, then episode
    by its length, so every frame of source ``d`` has probability ``w_d / frames_d``), takes
    ``samples_per_episode`` uniformly random frames of each and shuffles them (with 1 sample
    per episode this is i.i.d. frame sampling; more keeps the video cache warm, as
    ``EpisodeGroupedSampler``). Step ``s`` (1-based) takes stream positions
    ``[(s-1) B, s B)``; slot ``j`` of the global batch goes to rank ``j % world_size``.
    Each item is ``(global_index, sample_seed)``.

    Iteration yields the batches of steps ``start_step + 1 .. total_steps``.
    """

    def __init__(
        self,
        sources: Sequence[Dataset],
        weights: Sequence[float],
        batch_size: int,
        *,
        seed: int,
        total_steps: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
        samples_per_episode: int = 1,
        episodes_per_group: int = 32,
    ) -> None:
        w = np.asarray(weights, np.float64)
        self.weights = w / w.sum()
        sizes = [len(s) for s in sources]  # type: ignore[arg-type]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.tables = [_episode_table(s) for s in sources]
        for i, (_, lengths) in enumerate(self.tables):
            if lengths.sum() == 0:
                raise InputError(f"data.sources[{i}] has no samples")
        self.batch_size = batch_size
        self.seed = seed
        self.total_steps = total_steps
        self.start_step = start_step
        self.rank = rank
        self.world_size = world_size
        self.samples_per_episode = samples_per_episode
        self.episodes_per_group = episodes_per_group
        self._cache: tuple[int, np.ndarray, np.ndarray] | None = None

    @property
    def group_size(self) -> int:
        return self.samples_per_episode * self.episodes_per_group

    def _group(self, g: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None and self._cache[0] == g:
            return self._cache[1], self._cache[2]
        rng = np.random.default_rng([self.seed, g])
        e, k = self.episodes_per_group, self.samples_per_episode
        which = rng.choice(len(self.tables), size=e, p=self.weights)
        index = np.empty((e, k), np.int64)
        for i, d in enumerate(which):
            starts, lengths = self.tables[d]
            ep = rng.choice(len(starts), p=lengths / lengths.sum())
            index[i] = self.offsets[d] + starts[ep] + rng.integers(0, lengths[ep], k)
        index = index.reshape(-1)
        rng.shuffle(index)
        seeds = rng.integers(0, 2**31 - 1, len(index))
        self._cache = (g, index, seeds)
        return index, seeds

    def step_items(self, step: int) -> list[tuple[int, int]]:
        """This rank's (global_index, sample_seed) of step ``step`` (1-based)."""
        first = (step - 1) * self.batch_size
        out = []
        for slot in range(self.rank, self.batch_size, self.world_size):
            pos = first + slot
            index, seeds = self._group(pos // self.group_size)
            j = pos % self.group_size
            out.append((int(index[j]), int(seeds[j])))
        return out

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step + 1, self.total_steps + 1):
            yield self.step_items(step)


class SeededSources(Dataset):
    """Several sources as one index space; item ``(index, seed)`` runs the source's
    ``__getitem__`` (and so its random transforms) under python/numpy/torch seeds derived
    from ``seed``, so a sample is the same in any worker, in-process, and after a resume.
    In the main process the generators' states are restored afterwards. Adds
    ``dataset_index`` and, for seeded items, ``sample_seed`` (derived from the item's seed,
    independent of the transforms' draws): a model that draws its training noise per sample
    from it (the DiT) gives the same loss however a step's batch is split over processes."""

    def __init__(self, sources: Sequence[Dataset]) -> None:
        self.sources = list(sources)
        self.offsets = np.concatenate([[0], np.cumsum([len(s) for s in sources])])  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, Any]:
        index, seed = item if isinstance(item, tuple) else (int(item), None)
        d = int(np.searchsorted(self.offsets, index, side="right") - 1)
        local = index - int(self.offsets[d])
        if seed is None:
            sample = self.sources[d][local]
        elif torch.utils.data.get_worker_info() is None:
            saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
            try:
                seed_everything(seed)
                sample = self.sources[d][local]
            finally:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])
        else:
            seed_everything(seed)
            sample = self.sources[d][local]
        sample["dataset_index"] = d
        if seed is not None:
            sample["sample_seed"] = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
        return sample


@dataclass(frozen=True)
class SourceInfo:
    """What the trainer checks a source against the model with."""

    name: str
    action_dim: int
    state_dim: int
    action_space: str | None
    image_keys: tuple[str, ...]
    horizon: int
    image_shapes: dict[str, tuple[int, int]] = field(default_factory=dict)


def source_info(name: str, dataset: Dataset) -> SourceInfo:
    sample = dataset[0]
    action = sample["action"]
    state = sample.get("observation.state")
    space = None
    config = getattr(dataset, "config", None)
    if getattr(config, "action_space", None) == "human":
        from human_video_policy.data.embodiment import HUMAN_ACTION_SPACE

        space = HUMAN_ACTION_SPACE
    elif hasattr(dataset, "reader"):
        space = dataset.reader.spec.action_space  # type: ignore[attr-defined]
    elif isinstance(getattr(dataset, "action_space", None), str):
        space = dataset.action_space  # type: ignore[attr-defined]
    if space in ("", "unknown"):
        space = None
    return SourceInfo(
        name=name,
        action_dim=int(action.shape[-1]),
        state_dim=int(state.shape[-1]) if state is not None else 0,
        action_space=space,
        image_keys=tuple(sorted(k for k in sample if k.startswith("observation.images."))),
        horizon=int(action.shape[0]),
        image_shapes={
            k: (int(v.shape[-2]), int(v.shape[-1]))
            for k, v in sample.items()
            if k.startswith("observation.images.")
        },
    )


def build_sources(config: TrainConfig) -> list[Dataset]:
    """The datasets of ``config.data.sources`` (DemoDataset / ChunkDataset), in order."""
    from human_video_policy.training.demo_dataset import DEMO_CAMERA, DemoDataset
    from human_video_policy.training.torch_dataset import ChunkDataset, ChunkDatasetConfig

    data = config.data
    size = tuple(data.image_size) if data.image_size is not None else None
    out: list[Dataset] = []
    for i, src in enumerate(data.sources):
        path = Path(src.path).expanduser()
        try:
            if src.kind == "demos":
                if not path.is_file():
                    raise ConfigError(f"file not found ({path.resolve()})")
                keys = data.image_keys
                out.append(
                    DemoDataset(
                        path,
                        data.horizon,
                        size,  # type: ignore[arg-type]
                        with_images=keys is None or DEMO_CAMERA in keys,
                    )
                )
            else:
                if not (path / "meta" / "info.json").is_file():
                    raise ConfigError(f"no LeRobot-v3 dataset here ({path.resolve()})")
                out.append(
                    ChunkDataset(
                        path,
                        ChunkDatasetConfig(
                            horizon=data.horizon,
                            history=data.history,
                            action_offset=data.action_offset,
                            image_keys=tuple(data.image_keys)
                            if data.image_keys is not None
                            else None,
                            image_size=size,  # type: ignore[arg-type]
                            action_space=data.action_space,
                            transforms=_augmentation(path, data) if src.augment else (),
                        ),
                    )
                )
        except (ConfigError, InputError) as exc:
            raise ConfigError(f"data.sources[{i}] ({src.kind} {src.path}): {exc}") from exc
    return out


def _augmentation(path: Path, data: Any) -> tuple[Any, ...]:
    """VITRA's augmentation of one dataset source; the camera intrinsics and keypoints it adds
    for its own use are dropped again, so augmented and plain samples batch together."""
    from human_video_policy.data.dataset_reader import DatasetReader
    from human_video_policy.training.augmentation import (
        FOV_KEY,
        INTRINSICS_PREFIX,
        KEYPOINTS_KEY,
        vitra_augmentation,
    )

    reader = DatasetReader(path)
    keys = data.image_keys or reader.video_keys()
    if not keys:
        raise ConfigError("augment needs a camera, and this dataset has none")

    def drop_added(sample: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in sample.items()
            if not (k.startswith(INTRINSICS_PREFIX) or k in (FOV_KEY, KEYPOINTS_KEY))
        }

    return (*vitra_augmentation(reader, image_key=keys[0]), drop_added)


def check_compatible(model_config: Any, infos: Sequence[SourceInfo], horizon: int) -> None:
    """Refuse a model / data mismatch with a ConfigError naming both sides."""
    first = infos[0]
    for info in infos[1:]:
        if info.action_dim != first.action_dim or info.state_dim != first.state_dim:
            raise ConfigError(
                f"data sources disagree: {first.name} has {first.action_dim} action / "
                f"{first.state_dim} state dims, {info.name} has {info.action_dim} / "
                f"{info.state_dim} (mix them in data.action_space: human)"
            )
        if first.action_space and info.action_space and info.action_space != first.action_space:
            raise ConfigError(
                f"data sources disagree: {first.name} is in action space "
                f"{first.action_space!r}, {info.name} in {info.action_space!r}"
            )
        if info.image_keys != first.image_keys:
            raise ConfigError(
                f"data sources disagree: {first.name} has cameras {list(first.image_keys)}, "
                f"{info.name} has {list(info.image_keys)} (select common ones with "
                "data.image_keys)"
            )
    for info in infos:
        if info.horizon != horizon:
            raise ConfigError(f"{info.name} gives chunks of {info.horizon} rows, not {horizon}")
    get = lambda name: getattr(model_config, name, None)  # noqa: E731
    for info in infos:
        if isinstance(get("action_dim"), int) and get("action_dim") != info.action_dim:
            raise ConfigError(
                f"policy.config.action_dim={get('action_dim')} but {info.name} has "
                f"{info.action_dim} action dims"
            )
        if isinstance(get("horizon"), int) and get("horizon") != info.horizon:
            raise ConfigError(
                f"policy.config.horizon={get('horizon')} but data.horizon={info.horizon}"
            )
        state_dim = get("state_dim")
        if isinstance(state_dim, int) and state_dim > 0 and state_dim != info.state_dim:
            raise ConfigError(
                f"policy.config.state_dim={state_dim} but {info.name} has {info.state_dim} "
                "state dims"
            )
        space = get("action_space")
        if isinstance(space, str) and space and info.action_space and space != info.action_space:
            raise ConfigError(
                f"policy.config.action_space={space!r} but {info.name} is in action space "
                f"{info.action_space!r}"
            )
        key = get("image_key")
        uses_images = get("image_encoder") not in (None, "none")
        if isinstance(key, str) and uses_images and key not in info.image_keys:
            raise ConfigError(
                f"policy.config.image_key={key!r} but {info.name} has cameras "
                f"{list(info.image_keys)}"
            )
        size = get("image_size")
        sized = isinstance(size, (tuple, list)) and len(size) == 2
        if isinstance(key, str) and uses_images and sized and tuple(size) != info.image_shapes[key]:
            raise ConfigError(
                f"policy.config.image_size={list(size)} but {info.name} gives "
                f"{list(info.image_shapes[key])} images of {key} (set data.image_size)"
            )


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {
        k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


# --------------------------------------------------------------------------------------------
# Optimisation pieces


def lr_factor(step: int, total: int, warmup: int, schedule: str, min_ratio: float) -> float:
    """Learning rate of update ``step`` (0-based) as a fraction of the peak."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class EMA:
    """Exponential moving average of a model's floating-point parameters (buffers copied).

    ``module`` is a deep copy of the model whose parameters hold the average; use it for
    evaluation and export."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema, p in zip(self.module.parameters(), model.parameters(), strict=True):
            if ema.dtype.is_floating_point:
                ema.lerp_(p.detach(), 1.0 - self.decay)
            else:
                ema.copy_(p)
        for ema, b in zip(self.module.buffers(), model.buffers(), strict=True):
            ema.copy_(b)


class _LossModule(nn.Module):
    """``forward(batch) = model.compute_loss(batch)``, so DDP/FSDP hooks see the loss pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.model.compute_loss(batch)


# --------------------------------------------------------------------------------------------
# Checkpoints


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_replace(path: Path, write: Callable[[Path], None], sync: bool = True) -> None:
    """Write ``path`` through a temporary file renamed over it: a crash leaves the old file or
    the new one, never half of one (``sync``: flushed to disk, file and folder)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        if sync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if sync:
        _fsync_dir(path.parent)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then os.replace: a crash
    leaves the old file or the new one, never half of one."""
    _atomic_replace(path, lambda tmp: torch.save(obj, tmp))


def atomic_copy(src: Path, dst: Path) -> None:
    _atomic_replace(dst, lambda tmp: shutil.copyfile(src, tmp))


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_replace(path, lambda tmp: tmp.write_text(text), sync=False)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a training checkpoint; ModelLoadError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, pickle, EOF, unpickler errors alike
        if isinstance(exc, pickle.UnpicklingError):  # not torch's advice to unpickle unsafely
            detail = "UnpicklingError: not a torch file, or it holds objects a weights-only load "
            detail += "refuses"
        else:
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise ModelLoadError(
            f"checkpoint {path} is corrupt or truncated and was not used ({detail})"
        ) from exc
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ModelLoadError(f"{path} is not an hvp training checkpoint (no format tag)")
    if blob.get("version") != CHECKPOINT_VERSION:
        raise ModelLoadError(
            f"checkpoint {path} has version {blob.get('version')}, this trainer reads "
            f"{CHECKPOINT_VERSION}"
        )
    if missing := [k for k in CHECKPOINT_KEYS if k not in blob]:
        raise ModelLoadError(f"checkpoint {path} lacks {missing}")
    check_checkpoint_fields(path, blob)
    return blob


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """An exception's text on one line (torch's load_state_dict errors span several), so the
    CLI's error stays one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_entry(entry: Any) -> bool:
    """A history / window entry as the trainer writes them: names to numbers."""
    return isinstance(entry, Mapping) and all(
        isinstance(k, str) and _is_number(v) for k, v in entry.items()
    )


def _rng_problem(state: Any) -> str | None:
    """Why ``state`` is not one process's :func:`rng_state` (None when it is). Each part is
    tried on a private generator, so the check changes no global random state."""
    if not isinstance(state, Mapping):
        return f"is a {type(state).__name__}, not a mapping"
    if missing := [k for k in ("python", "numpy", "torch") if k not in state]:
        return f"lacks {missing}"
    try:
        py = state["python"]
        random.Random().setstate((py[0], tuple(py[1]), py[2]))
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        return f"has an invalid python state ({_one_line(exc, 120)})"
    try:
        n = state["numpy"]
        np.random.RandomState().set_state(
            (
                n["kind"],
                n["keys"].numpy().astype(np.uint32),
                n["pos"],
                n["has_gauss"],
                n["cached_gaussian"],
            )
        )
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
        return f"has an invalid numpy state ({_one_line(exc, 120)})"
    try:
        torch.Generator().set_state(state["torch"])
    except (TypeError, ValueError, RuntimeError) as exc:
        return f"has an invalid torch state ({_one_line(exc, 120)})"
    cuda = state.get("cuda")
    if cuda is not None and not (
        isinstance(cuda, (list, tuple))
        and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in cuda)
    ):
        return "has an invalid cuda state (not a list of byte tensors)"
    return None


def _names_of(sources: Sequence[Dataset]) -> dict[str, Any] | None:
    """The action/state names and dt of the data (stored in checkpoints for `hvp export`), or
    None for sources that do not say them (a Python caller's own datasets)."""
    try:
        return data_names(list(sources)).to_dict()
    except (ConfigError, InputError, KeyError, TypeError, ValueError):
        return None


def check_checkpoint_fields(path: Path, blob: Mapping[str, Any]) -> None:
    """Refuse a checkpoint that unpickles but does not hold what :meth:`Trainer._save`
    writes: each field's type and shape up front (ModelLoadError naming the file and the
    field), and non-finite weights, so no resume or export starts from them (a resume from
    NaN weights would diverge and call this file "the last good checkpoint")."""

    def bad(name: str, why: str) -> ModelLoadError:
        return ModelLoadError(f"checkpoint {path}: field {name!r} {why}; it was not used")

    step = blob["step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise bad("step", f"must be a non-negative integer, got {step!r}")
    if not isinstance(blob["policy_type"], str) or not blob["policy_type"]:
        raise bad("policy_type", f"must be a policy type name, got {blob['policy_type']!r}")
    if not isinstance(blob["policy_config"], Mapping):
        raise bad(
            "policy_config",
            f"must be a mapping of the policy's config fields, got "
            f"{type(blob['policy_config']).__name__}",
        )
    config = blob["config"]
    if not isinstance(config, Mapping):
        raise bad("config", f"must be the run's resolved config, got {type(config).__name__}")
    try:
        TrainConfig.from_dict(config)
    except ConfigError as exc:
        raise bad("config", f"is not a valid training config ({_one_line(exc)})") from exc
    for name in ("model", "ema"):
        weights = blob[name]
        if weights is None and name == "ema":
            continue
        if not isinstance(weights, Mapping) or not weights:
            raise bad(
                name,
                f"must be a non-empty mapping of parameter names to tensors, got "
                f"{type(weights).__name__}",
            )
        for key, value in weights.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise bad(name, f"holds {key!r}: {type(value).__name__}, not a tensor")
        nonfinite = [
            k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()
        ]
        if nonfinite:
            more = f" and {len(nonfinite) - 1} more" if len(nonfinite) > 1 else ""
            raise ModelLoadError(
                f"checkpoint {path} has non-finite weights in {nonfinite[0]}{more} (field "
                f"{name!r}); it was not used"
            )
    if blob["ema"] is not None:  # the EMA is a copy of the model: the same names and shapes
        model_shapes = {k: tuple(v.shape) for k, v in blob["model"].items()}
        ema_shapes = {k: tuple(v.shape) for k, v in blob["ema"].items()}
        if model_shapes != ema_shapes:
            key = next(
                k
                for k in sorted(set(model_shapes) | set(ema_shapes))
                if model_shapes.get(k) != ema_shapes.get(k)
            )
            raise ModelLoadError(
                f"checkpoint {path}: fields 'model' and 'ema' disagree on {key} (shape "
                f"{model_shapes.get(key, 'missing')} vs {ema_shapes.get(key, 'missing')}); "
                "it was not used"
            )
    optim = blob["optimizer"]
    groups = optim.get("param_groups") if isinstance(optim, Mapping) else None
    if (
        not isinstance(optim, Mapping)
        or not isinstance(optim.get("state"), Mapping)
        or not isinstance(groups, list)
        or not groups
        or not all(isinstance(g, Mapping) and isinstance(g.get("params"), list) for g in groups)
    ):
        raise bad("optimizer", "is not an optimizer state (state, param_groups with params)")
    if (fmt := blob.get("optimizer_format", "torch")) not in ("torch", "fsdp"):
        raise bad("optimizer_format", f"must be 'torch' or 'fsdp', got {fmt!r}")
    sched = blob["scheduler"]
    if (
        not isinstance(sched, Mapping)
        or not isinstance(sched.get("last_epoch"), int)
        or not isinstance(sched.get("base_lrs"), list)
        or not all(_is_number(v) for v in sched["base_lrs"])
    ):
        raise bad("scheduler", "is not a learning-rate scheduler state (last_epoch, base_lrs)")
    rngs = blob["rng"]
    if not isinstance(rngs, (list, tuple)) or not rngs:
        raise bad("rng", f"must be a list of each process's generator states, got {rngs!r:.60}")
    for i, state in enumerate(rngs):
        if (why := _rng_problem(state)) is not None:
            raise bad("rng", f"entry {i} {why}")
    if not isinstance(blob["sampler"], Mapping):
        raise bad("sampler", f"must be a mapping, got {type(blob['sampler']).__name__}")
    history = blob["history"]
    if not isinstance(history, list) or not all(
        _number_entry(h) and isinstance(h.get("step"), int) for h in history
    ):
        raise bad(
            "history",
            "must be a list of {step, name: number} entries as the trainer writes them, got "
            f"{history!r:.60}",
        )
    window = blob.get("window")
    if window is not None and not _number_entry(window):
        raise bad("window", f"must be a mapping of names to numbers, got {window!r:.60}")
    names = blob.get("data_names")  # absent in checkpoints written before it was stored
    if names is not None:
        try:
            DataNames.from_dict(names)
        except ConfigError as exc:
            raise bad("data_names", str(exc)) from exc


def _restore(path: Path | None, part: str, load: Callable[[], Any]) -> Any:
    """Run one restore of a checkpoint part (load_state_dict, RNG states); torch's errors
    (another shape, missing keys, other parameter groups) become a ModelLoadError naming the
    file and the part. Nothing in the run folder has been written when this runs."""
    try:
        return load()
    except HvpError:
        raise
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ModelLoadError(
            f"checkpoint {path}: field {part!r} cannot be restored ({type(exc).__name__}: "
            f"{_one_line(exc)}); it was not used, nothing was overwritten"
        ) from exc


def build_model(policy_type: str, policy_config: Mapping[str, Any]) -> nn.Module:
    """A model of a registered policy type from its config fields."""
    from human_video_policy.policies.registry import get_policy_type

    pt = get_policy_type(policy_type)
    return pt.make_model(pt.make_config(dict(policy_config)))


def load_trained_model(path: str | Path, *, ema: bool = True) -> tuple[nn.Module, TrainConfig]:
    """The model of a training checkpoint (its EMA weights when the run kept them and
    ``ema``), in eval mode on the CPU, with the run's config."""
    blob = load_checkpoint(path)
    try:
        model = build_model(blob["policy_type"], blob["policy_config"])
    except ConfigError as exc:
        raise ModelLoadError(
            f"checkpoint {path}: fields 'policy_type' / 'policy_config' do not make a model "
            f"({_one_line(exc)})"
        ) from exc
    part = "ema" if ema and blob["ema"] is not None else "model"
    try:
        model.load_state_dict(blob[part])
    except RuntimeError as exc:
        raise ModelLoadError(
            f"checkpoint {path}: field {part!r}: the weights do not fit the model "
            f"({_one_line(exc)})"
        ) from exc
    return model.eval(), TrainConfig.from_dict(blob["config"])


def _model_config_dict(model: nn.Module) -> dict[str, Any]:
    from human_video_policy.training.train_config import _plain

    cfg = getattr(model, "config", None)
    if cfg is None or not dataclasses.is_dataclass(cfg):
        raise ConfigError(
            f"{type(model).__name__} has no dataclass .config; trainable models need one"
        )
    return _plain(dataclasses.asdict(cfg))


# --------------------------------------------------------------------------------------------
# Outputs


def plot_history(history: Sequence[Mapping[str, Any]], path: Path) -> None:
    """One PNG: the loss parts (log scale), learning rate and gradient norm, evaluations."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    keys = sorted({k for h in history for k in h if k != "step"})
    groups = [
        ("loss", [k for k in keys if k.startswith("loss")]),
        ("learning rate", [k for k in keys if k == "lr"]),
        ("gradient norm", [k for k in keys if k == "grad_norm"]),
        ("evaluation", [k for k in keys if k.startswith("eval/")]),
    ]
    groups = [g for g in groups if g[1]]
    fig, axes = plt.subplots(len(groups) or 1, 1, figsize=(8, 2.6 * max(1, len(groups))))
    axes = np.atleast_1d(axes)
    for ax, (title, names) in zip(axes, groups, strict=False):
        for name in names:
            pts = [(h["step"], h[name]) for h in history if name in h]
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                label=name,
                marker="." if len(pts) < 50 else None,
            )
        if title == "loss" and all(h[n] > 0 for h in history for n in names if n in h):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1].set_xlabel("step")
    fig.subplots_adjust(left=0.1, right=0.97, top=0.95, bottom=0.08, hspace=0.45)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


@dataclass
class TrainResult:
    """What a run did.

    Attributes:
        output_dir: the run's folder.
        step: the last step trained.
        final_losses: the last logged loss parts (means over the last ``log_every`` steps).
        history: every logged entry (``step``, loss parts, ``lr``, ``grad_norm``, ``eval/...``).
        checkpoint: ``checkpoints/last.pt`` (None on ranks other than 0).
        wall_s: seconds of this invocation.
    """

    output_dir: Path
    step: int
    final_losses: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    wall_s: float = 0.0


# --------------------------------------------------------------------------------------------
# The trainer


class Trainer:
    """One training run of ``config``.

    Args:
        config: the validated run config.
        model: the model to train; None builds ``config.policy`` through the registry (after
            seeding with ``train.seed``, so the initial weights are reproducible).
        datasets: one Dataset or a list of them (with the sample keys of ChunkDataset); None
            builds ``config.data.sources``. The sampling weights are those of
            ``config.data.sources`` when the counts agree, else ``weights``, else equal.
        weights: sampling weights for given ``datasets``.
        eval_fn: ``eval_fn(model, step) -> {name: value}`` run on rank 0 every
            ``train.eval_every`` steps with the EMA model (or the model) in eval mode under
            ``torch.no_grad``; values are logged as ``eval/<name>``. None with
            ``eval_every > 0``: the closed-loop WidowX reach evaluation
            (:func:`widowx_reach_eval`).
    """

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module | None = None,
        datasets: Dataset | Sequence[Dataset] | None = None,
        *,
        weights: Sequence[float] | None = None,
        eval_fn: EvalFn | None = None,
    ) -> None:
        self.config = config
        self._model_arg = model
        if datasets is None:
            self._datasets: list[Dataset] | None = None
        elif isinstance(datasets, Dataset):
            self._datasets = [datasets]
        else:
            self._datasets = list(datasets)
        self._weights = weights
        self.eval_fn = eval_fn
        self.output_dir = Path(config.train.output_dir).expanduser()
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self._written: tuple[int, Any] | None = None
        self._fsdp = False
        self._data_names: dict[str, Any] | None = None

    # -- setup ---------------------------------------------------------------------------
    def _sources(self) -> tuple[list[Dataset], list[float], list[str]]:
        cfg = self.config
        if self._datasets is None:
            sources = build_sources(cfg)
            names = [f"data.sources[{i}] ({s.path})" for i, s in enumerate(cfg.data.sources)]
            return sources, [s.weight for s in cfg.data.sources], names
        if not self._datasets:
            raise ConfigError("datasets=[] is invalid: give at least one")
        n = len(self._datasets)
        if self._weights is not None:
            weights = [float(w) for w in self._weights]
        elif len(cfg.data.sources) == n:
            weights = [s.weight for s in cfg.data.sources]
        else:
            weights = [1.0] * n
        if len(weights) != n or min(weights) <= 0:
            raise ConfigError(f"weights={weights} is invalid: one weight > 0 per dataset ({n})")
        return self._datasets, weights, [f"dataset {i}" for i in range(n)]

    def _check_output_dir(self) -> None:
        """Refuse an output_dir (or its checkpoints/, tb/, outputs) that is the wrong kind of
        file system entry, before anything is written: mkdir / os.replace would fail half-way
        through with an OSError."""
        out = self.output_dir
        for parent in out.absolute().parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ConfigError(
                        f"train.output_dir={str(out)!r} is invalid: {parent} is a file, not a "
                        "folder; nothing was written"
                    )
                break
        folders = (out, self.checkpoint_dir, out / "tb")
        files = (out / "config.yaml", out / "metrics.json", out / "losses.png")
        for path in folders:
            if path.exists() and not path.is_dir():
                raise ConfigError(
                    f"train.output_dir={str(out)!r} is invalid: {path} is a file, not a "
                    "folder; nothing was written"
                )
        for path in files:
            if path.is_dir():
                raise ConfigError(
                    f"train.output_dir={str(out)!r} is invalid: {path} is a folder, where the "
                    "run writes a file; nothing was written"
                )

    def _check_resume_config(
        self, path: Path, blob: Mapping[str, Any], resolved: Mapping[str, Any]
    ) -> None:
        """Refuse a resume whose config differs from the checkpoint's outside
        ``RESUME_MUTABLE_FIELDS`` (train_config.py): the checkpoint's optimizer, schedule and
        weights would win and the changed value would be written to config.yaml without
        taking effect (``optim.lr=1e30`` silently ignored)."""
        from human_video_policy.training.train_config import (
            RESUME_MUTABLE_FIELDS,
            flat_fields,
            resume_differences,
        )

        stored = TrainConfig.from_dict(blob["config"]).to_dict()  # defaults of newer fields
        diff = resume_differences(stored, resolved)
        if diff:
            old, new = flat_fields(stored), flat_fields(resolved)
            shown = ", ".join(
                f"{k}: {old.get(k, '(none)')!r} -> {new.get(k, '(none)')!r}" for k in diff[:6]
            )
            raise ConfigError(
                f"--resume from checkpoint {path}: this config differs from the one the "
                f"checkpoint was trained with in {diff} ({shown}); on resume only "
                f"{', '.join(RESUME_MUTABLE_FIELDS)} may change (start a new run, or "
                "train.init_from for a fine-tune, to change the others); nothing was overwritten"
            )

    def _resolve_resume(self, resume: bool | str | Path | None) -> Path | None:
        if resume is None or resume is False:
            existing = (
                sorted(self.checkpoint_dir.glob("*.pt")) if self.checkpoint_dir.is_dir() else []
            )
            if existing:
                raise ConfigError(
                    f"train.output_dir={str(self.output_dir)!r} already holds checkpoints "
                    f"({existing[-1].name}...): resume with --resume, or choose another "
                    "output_dir; nothing was overwritten"
                )
            return None
        path = self.checkpoint_dir / "last.pt" if resume is True else Path(resume).expanduser()
        if not path.is_file():
            raise ConfigError(f"nothing to resume: checkpoint {path} does not exist")
        return path

    # -- the run -------------------------------------------------------------------------
    def fit(self, resume: bool | str | Path | None = None) -> TrainResult:
        """Train to ``train.steps``. ``resume``: True continues from
        ``output_dir/checkpoints/last.pt``, a path from that checkpoint; None/False starts
        fresh (refused when output_dir already holds checkpoints)."""
        start_time = time.perf_counter()
        tcfg = self.config.train
        device = resolve_device(tcfg.device)
        torch.set_num_threads(tcfg.threads)
        ctx = dist_context_from_env(device)
        try:
            return self._fit(ctx, device, resume, start_time)
        finally:
            if ctx.initialized_here and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()

    def _fit(
        self,
        ctx: DistContext,
        device: torch.device,
        resume: bool | str | Path | None,
        start_time: float,
    ) -> TrainResult:
        cfg = self.config
        tcfg, dcfg, ocfg = cfg.train, cfg.data, cfg.optim
        if dcfg.batch_size % ctx.world_size:
            raise ConfigError(
                f"data.batch_size={dcfg.batch_size} is invalid with {ctx.world_size} "
                "processes: it must divide evenly (it is the global batch)"
            )
        self._check_output_dir()
        resume_path = self._resolve_resume(resume)
        blob = load_checkpoint(resume_path) if resume_path is not None else None
        resolved = cfg.to_dict()
        if blob is not None:
            assert resume_path is not None
            self._check_resume_config(resume_path, blob, resolved)
            if blob["step"] >= tcfg.steps:
                raise ConfigError(
                    f"train.steps={tcfg.steps} but checkpoint {resume_path} is already at step "
                    f"{blob['step']}: raise train.steps to train further"
                )

        # model (identical initial weights on every rank)
        seed_everything(tcfg.seed)
        if self._model_arg is not None:
            model = self._model_arg
        else:
            model = build_model(cfg.policy.type, resolved["policy"]["config"])
        if not callable(getattr(model, "compute_loss", None)):
            raise ConfigError(f"{type(model).__name__} has no compute_loss(batch); it cannot train")
        policy_config = _model_config_dict(model)
        if blob is not None and (
            blob["policy_type"] != cfg.policy.type or blob["policy_config"] != policy_config
        ):
            diff = sorted(
                k
                for k in set(policy_config) | set(blob["policy_config"])
                if policy_config.get(k) != blob["policy_config"].get(k)
            )
            raise ConfigError(
                f"checkpoint {resume_path} was trained with policy {blob['policy_type']!r} "
                f"and a different config (fields {diff}) than policy "
                f"{cfg.policy.type!r} of this config; nothing was overwritten"
            )

        sources, weights, names = self._sources()
        self._data_names = _names_of(sources)
        infos = [source_info(n, s) for n, s in zip(names, sources, strict=True)]
        check_compatible(getattr(model, "config", None), infos, dcfg.horizon)
        eval_fn = self.eval_fn
        if eval_fn is None and tcfg.eval_every > 0:
            eval_fn = widowx_reach_eval(model, tcfg.eval_episodes, tcfg.eval_seed)
        # every check passed on every rank before anything is written; a resume's state is
        # restored (and each part checked) below, still before the first write
        ctx.barrier()

        dataset = SeededSources(sources)
        model.to(device)
        start_step = 0
        self._saved_step = int(blob["step"]) if blob is not None else None
        history: list[dict[str, float]] = []
        window: dict[str, float] = {}
        if blob is None and tcfg.init_from:
            self._load_pretrained(model, policy_config)
        if blob is None:
            n_fit = dcfg.normalization_samples
            if n_fit > 0 and callable(getattr(model, "fit_normalization", None)):
                model.fit_normalization(
                    self._normalization_batches(dataset, sources, weights, n_fit, device)
                )
        else:
            _restore(resume_path, "model", lambda: model.load_state_dict(blob["model"]))
            start_step = int(blob["step"])
            history = [dict(h) for h in blob["history"]]
            window = dict(blob.get("window") or {})

        ema = EMA(model, tcfg.ema_decay) if tcfg.ema_decay > 0 else None
        if ema is not None and blob is not None:
            if blob["ema"] is None:
                raise ModelLoadError(
                    f"checkpoint {resume_path}: field 'ema' is None but train.ema_decay="
                    f"{tcfg.ema_decay}: the run kept no EMA weights; it was not used"
                )
            _restore(resume_path, "ema", lambda: ema.module.load_state_dict(blob["ema"]))

        wrapped = self._wrap(model, ctx, device)
        params = [p for p in wrapped.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            params,
            lr=ocfg.lr,
            betas=(ocfg.betas[0], ocfg.betas[1]),
            eps=ocfg.eps,
            weight_decay=ocfg.weight_decay,
        )
        total = tcfg.steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: lr_factor(s, total, ocfg.warmup_steps, ocfg.schedule, ocfg.min_lr_ratio),
        )
        if blob is not None:
            assert resume_path is not None
            fmt = blob.get("optimizer_format", "torch")
            _restore(
                resume_path,
                "optimizer",
                lambda: self._load_optimizer(wrapped, optimizer, blob["optimizer"], fmt),
            )
            self._check_optimizer_state(resume_path, wrapped, optimizer)
            _restore(resume_path, "scheduler", lambda: scheduler.load_state_dict(blob["scheduler"]))
            self._check_scheduler_state(resume_path, scheduler, optimizer, start_step)
            rngs = blob["rng"]
            if len(rngs) == ctx.world_size:
                _restore(resume_path, "rng", lambda: set_rng_state(rngs[ctx.rank]))
            else:  # another process count: reproducible, not bit-identical
                seed_everything(tcfg.seed + 7919 * start_step + ctx.rank)
        else:
            seed_everything(tcfg.seed + ctx.rank)  # the model's own noise differs per rank

        sampler = StepBatchSampler(
            sources,
            weights,
            dcfg.batch_size,
            seed=tcfg.seed,
            total_steps=total,
            start_step=start_step,
            rank=ctx.rank,
            world_size=ctx.world_size,
            samples_per_episode=dcfg.samples_per_episode,
            episodes_per_group=dcfg.episodes_per_group,
        )
        from human_video_policy.training.torch_dataset import chunk_collate

        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=dcfg.num_workers,
            collate_fn=chunk_collate,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(tcfg.seed),
            persistent_workers=False,
        )

        ctx.barrier()  # the resume's state restored on every rank: the run folder changes now
        writer = None
        if ctx.is_main:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.output_dir / "config.yaml", cfg.to_yaml())
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(
                str(self.output_dir / "tb"), purge_step=start_step + 1 if start_step else None
            )
        bar = None
        if ctx.is_main and tcfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=start_step, desc="train", file=sys.stderr, unit="step")

        last_ckpt: Path | None = (
            self.checkpoint_dir / "last.pt" if (self.checkpoint_dir / "last.pt").is_file() else None
        )
        step = start_step
        model.train()
        try:
            for batch in loader:
                step += 1
                batch = to_device(batch, device)
                out = wrapped(batch)
                parts = self._loss_parts(out, model)
                names_ = list(parts)
                values = torch.stack([parts[k].detach().float() for k in names_])
                if ctx.distributed:
                    torch.distributed.all_reduce(values)
                    values = values / ctx.world_size
                values_list = values.cpu().tolist()
                bad = [n for n, v in zip(names_, values_list, strict=True) if not math.isfinite(v)]
                if bad:
                    raise self._diverged(
                        step,
                        f"loss part(s) {bad} = {[values_list[names_.index(b)] for b in bad]}",
                        last_ckpt,
                    )
                optimizer.zero_grad(set_to_none=True)
                parts["loss"].backward()
                grad_norm = self._clip(params, ocfg.grad_clip)
                if not math.isfinite(grad_norm):
                    raise self._diverged(step, f"gradient norm {grad_norm}", last_ckpt)
                lr = optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update(model)

                for n, v in zip(names_, values_list, strict=True):
                    window[n] = window.get(n, 0.0) + v
                window["grad_norm"] = window.get("grad_norm", 0.0) + grad_norm
                window["lr"] = window.get("lr", 0.0) + lr
                window["_count"] = window.get("_count", 0.0) + 1
                if step % tcfg.log_every == 0 or step == total:
                    count = window.pop("_count")
                    entry = {"step": step, **{k: v / count for k, v in window.items()}}
                    window = {}
                    history.append(entry)
                    if writer is not None:
                        for k, v in entry.items():
                            if k != "step":
                                writer.add_scalar(f"train/{k}", v, step)
                    if bar is not None:
                        bar.set_postfix(loss=f"{entry['loss']:.4g}")
                if eval_fn is not None and tcfg.eval_every and step % tcfg.eval_every == 0:
                    if ctx.is_main:
                        metrics = self._evaluate(eval_fn, ema.module if ema else model, step)
                        history.append(
                            {"step": step, **{f"eval/{k}": v for k, v in metrics.items()}}
                        )
                        if writer is not None:
                            for k, v in metrics.items():
                                writer.add_scalar(f"eval/{k}", v, step)
                    ctx.barrier()
                if bar is not None:
                    bar.update(1)
                every = tcfg.checkpoint_every
                if step == total or (every and step % every == 0):
                    last_ckpt = self._save(
                        ctx,
                        step,
                        model,
                        ema,
                        wrapped,
                        optimizer,
                        scheduler,
                        sampler,
                        history,
                        window,
                        resolved,
                        policy_config,
                        last_ckpt,
                    )
                    if writer is not None:
                        writer.flush()
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
            if ctx.is_main and history:
                self._write_metrics(history)

        finals = next(
            (
                {k: v for k, v in h.items() if k.startswith("loss")}
                for h in reversed(history)
                if "loss" in h
            ),
            {},
        )
        return TrainResult(
            output_dir=self.output_dir,
            step=step,
            final_losses=finals,
            history=history,
            checkpoint=last_ckpt if ctx.is_main else None,
            wall_s=time.perf_counter() - start_time,
        )

    # -- pieces --------------------------------------------------------------------------
    def _normalization_batches(
        self,
        dataset: SeededSources,
        sources: Sequence[Dataset],
        weights: Sequence[float],
        n: int,
        device: torch.device,
    ) -> Iterator[dict[str, Any]]:
        """Collated batches of ``n`` samples drawn like training samples (own seed)."""
        from human_video_policy.training.torch_dataset import chunk_collate

        dcfg = self.config.data
        batch = min(n, max(dcfg.batch_size, 64))
        steps = math.ceil(n / batch)
        sampler = StepBatchSampler(
            sources,
            weights,
            batch,
            seed=self.config.train.seed + 104729,
            total_steps=steps,
            samples_per_episode=dcfg.samples_per_episode,
            episodes_per_group=dcfg.episodes_per_group,
        )
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=dcfg.num_workers,
            collate_fn=chunk_collate,
            generator=torch.Generator().manual_seed(self.config.train.seed),
        )
        for b in loader:
            yield to_device(b, device)

    def _load_pretrained(self, model: nn.Module, policy_config: dict[str, Any]) -> None:
        """``train.init_from``: the pretrained run's weights (EMA when kept); the caller then
        refits the normalisation on this run's data."""
        from human_video_policy.export.from_checkpoint import find_checkpoint

        cfg = self.config
        path = find_checkpoint(cfg.train.init_from)
        pretrained = load_checkpoint(path)
        if (
            pretrained["policy_type"] != cfg.policy.type
            or pretrained["policy_config"] != policy_config
        ):
            diff = sorted(
                k
                for k in set(policy_config) | set(pretrained["policy_config"])
                if policy_config.get(k) != pretrained["policy_config"].get(k)
            )
            raise ConfigError(
                f"train.init_from={cfg.train.init_from!r}: {path} holds policy "
                f"{pretrained['policy_type']!r} with a different config (fields {diff}) than "
                f"policy {cfg.policy.type!r} of this run"
            )
        part = "ema" if pretrained["ema"] is not None else "model"
        _restore(path, part, lambda: model.load_state_dict(pretrained[part]))

    def _wrap(self, model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
        """The loss module, under DDP or FSDP when several processes run.

        FSDP is PyTorch's ``fully_shard`` (FSDP2, runs on CPU/gloo too): every block of an
        ``nn.ModuleList`` (transformer layers) is its own shard group, then the rest."""
        loss_module = _LossModule(model)
        self._fsdp = False
        if not ctx.distributed:
            return loss_module
        if self.config.train.strategy == "fsdp":
            from torch.distributed.fsdp import fully_shard

            blocks = [b for m in loss_module.modules() if isinstance(m, nn.ModuleList) for b in m]
            for block in blocks:
                fully_shard(block)
            fully_shard(loss_module)
            self._fsdp = True
            return loss_module
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(
            loss_module,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=self.config.train.find_unused_parameters,
        )

    @property
    def optimizer_format(self) -> str:
        """``fsdp`` (full state keyed by parameter name) or ``torch`` (optimizer.state_dict)."""
        return "fsdp" if self._fsdp else "torch"

    @staticmethod
    def _full_options() -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, cpu_offload=True)

    def _clip(self, params: list[nn.Parameter], max_norm: float) -> float:
        limit = max_norm if max_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, limit)
        if hasattr(norm, "full_tensor"):  # a DTensor under FSDP
            norm = norm.full_tensor()
        return float(norm)

    def _optimizer_state(self, wrapped: nn.Module, optimizer: torch.optim.Optimizer) -> Any:
        if self._fsdp:
            from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

            return get_optimizer_state_dict(wrapped, optimizer, options=self._full_options())
        return optimizer.state_dict()

    def _load_optimizer(
        self, wrapped: nn.Module, optimizer: torch.optim.Optimizer, state: Any, fmt: str
    ) -> None:
        if fmt != self.optimizer_format:
            raise ConfigError(
                f"the checkpoint's optimizer state was written by a {fmt!r} run and this run is "
                f"{self.optimizer_format!r} (train.strategy / process count): resume with the "
                "same strategy"
            )
        if self._fsdp:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_optimizer_state_dict,
            )

            set_optimizer_state_dict(
                wrapped, optimizer, state, options=StateDictOptions(full_state_dict=True)
            )
        else:
            optimizer.load_state_dict(state)

    def _check_optimizer_state(
        self, path: Path, wrapped: nn.Module, optimizer: torch.optim.Optimizer
    ) -> None:
        """The loaded optimizer state fits the parameters (AdamW's moments have their shapes,
        are finite) and its hyper-parameters are numbers: load_state_dict checks only the
        group sizes, and a misfit would fail (or poison the weights) at the first step."""

        def bad(why: str) -> ModelLoadError:
            return ModelLoadError(f"checkpoint {path}: field 'optimizer' {why}; it was not used")

        for i, group in enumerate(optimizer.param_groups):
            for key in ("lr", "eps", "weight_decay"):
                v = group.get(key)
                v = float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v
                if not _is_number(v) or not math.isfinite(v):
                    raise bad(f"has param_groups[{i}].{key}={v!r}, not a finite number")
            betas = group.get("betas")
            if not isinstance(betas, (list, tuple)) or len(betas) != 2:
                raise bad(f"has param_groups[{i}].betas={betas!r}, not a pair")
        if self._fsdp:
            return
        names = {id(p): n for n, p in wrapped.named_parameters()}
        for p, state in optimizer.state.items():
            for key, value in state.items():
                if not isinstance(value, torch.Tensor):
                    continue
                name = names.get(id(p), "?")
                if value.dim() and value.shape != p.shape:
                    raise bad(
                        f"holds {key} of shape {list(value.shape)} for parameter {name} of "
                        f"shape {list(p.shape)}"
                    )
                if value.is_floating_point() and not torch.isfinite(value).all():
                    raise bad(f"holds a non-finite {key} for parameter {name}")

    @staticmethod
    def _check_scheduler_state(
        path: Path, scheduler: Any, optimizer: torch.optim.Optimizer, step: int
    ) -> None:
        """The schedule is at the checkpoint's step with one base rate per parameter group
        (LambdaLR.load_state_dict takes any mapping)."""
        base = getattr(scheduler, "base_lrs", None)
        if scheduler.last_epoch != step or not (
            isinstance(base, list) and len(base) == len(optimizer.param_groups)
        ):
            raise ModelLoadError(
                f"checkpoint {path}: field 'scheduler' (last_epoch {scheduler.last_epoch}, "
                f"base_lrs {base!r:.60}) does not fit step {step} with "
                f"{len(optimizer.param_groups)} parameter group(s); it was not used"
            )

    def _model_state(self, wrapped: nn.Module, model: nn.Module) -> dict[str, torch.Tensor]:
        if self._fsdp:  # a collective: every rank calls it, rank 0 gets the full weights
            from torch.distributed.checkpoint.state_dict import get_model_state_dict

            state = get_model_state_dict(wrapped, options=self._full_options())
            return {k.removeprefix("model."): v for k, v in state.items()}
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def _loss_parts(self, out: Any, model: nn.Module) -> dict[str, torch.Tensor]:
        if not isinstance(out, Mapping) or "loss" not in out:
            raise ConfigError(
                f"{type(model).__name__}.compute_loss must return a dict with 'loss', got "
                f"{type(out).__name__}{sorted(out) if isinstance(out, Mapping) else ''}"
            )
        parts = {"loss": out["loss"], **{k: v for k, v in out.items() if k != "loss"}}
        for k, v in parts.items():
            if not isinstance(v, torch.Tensor) or v.numel() != 1:
                raise ConfigError(
                    f"{type(model).__name__}.compute_loss()[{k!r}] must be a scalar tensor"
                )
        return {k: v.reshape(()) for k, v in parts.items()}

    def _diverged(self, step: int, what: str, last: Path | None) -> TrainingDivergedError:
        kept = (
            f"the last good checkpoint is {last} (step {self._saved_step})"
            if last is not None and last.is_file()
            else "no checkpoint had been written yet"
        )
        return TrainingDivergedError(
            f"training stopped at step {step}: {what} is not finite; the weights of that "
            f"step were not updated and no checkpoint was written for it; {kept}"
        )

    def _evaluate(self, eval_fn: EvalFn, model: nn.Module, step: int) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                metrics = eval_fn(model, step)
        finally:
            model.train(was_training)
        return {str(k): float(v) for k, v in dict(metrics).items()}

    def _save(
        self,
        ctx: DistContext,
        step: int,
        model: nn.Module,
        ema: EMA | None,
        wrapped: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        sampler: StepBatchSampler,
        history: list[dict[str, float]],
        window: dict[str, float],
        resolved: dict[str, Any],
        policy_config: dict[str, Any],
        last: Path | None,
    ) -> Path | None:
        state = rng_state()
        if ctx.distributed:
            states: list[Any] = [None] * ctx.world_size
            torch.distributed.all_gather_object(states, state)
        else:
            states = [state]
        weights = self._model_state(wrapped, model)
        optim_state = self._optimizer_state(wrapped, optimizer)
        path = None
        if ctx.is_main:
            bad = [
                k
                for k, v in weights.items()
                if v.is_floating_point() and not torch.isfinite(v).all()
            ]
            if bad:
                raise self._diverged(step, f"weights {bad[:5]}", last)
            blob = {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "step": step,
                "config": resolved,
                "policy_type": self.config.policy.type,
                "policy_config": policy_config,
                "model": weights,
                "ema": (
                    {k: v.detach().cpu().clone() for k, v in ema.module.state_dict().items()}
                    if ema is not None
                    else None
                ),
                "optimizer": optim_state,
                "optimizer_format": self.optimizer_format,
                "scheduler": scheduler.state_dict(),
                "rng": states,
                "sampler": {
                    "seed": sampler.seed,
                    "step": step,
                    "batch_size": sampler.batch_size,
                    "world_size": ctx.world_size,
                    "samples_per_episode": sampler.samples_per_episode,
                    "episodes_per_group": sampler.episodes_per_group,
                },
                "history": history,
                "window": window,
                "data_names": self._data_names,
            }
            path = self.checkpoint_dir / f"step_{step:06d}.pt"
            atomic_torch_save(blob, path)
            atomic_copy(path, self.checkpoint_dir / "last.pt")
            self._saved_step = step
            self._write_metrics(history)
        ctx.barrier()
        return self.checkpoint_dir / "last.pt" if ctx.is_main else last

    def _write_metrics(self, history: list[dict[str, float]]) -> None:
        if self._written == (len(history), history[-1] if history else None):
            return  # already on disk (the end of a run right after its last checkpoint)
        self._written = (len(history), history[-1] if history else None)
        atomic_write_text(
            self.output_dir / "metrics.json", json.dumps({"history": history}, indent=1)
        )
        plot_history(history, self.output_dir / "losses.png")


# --------------------------------------------------------------------------------------------
# Evaluation in the sim


class SampleChunkSource:
    """A torch model with ``sample(batch) -> (B, T, A)`` actions (the DiT) behind the policy
    interface ``predict_chunk(image, state, stamp)``, for the sim evaluation during training:
    the image is resized with the runtime's ``prepare_rgb`` to ``config.image_size`` under
    ``config.image_key``, the state becomes a history of 1, the task is the reach instruction;
    chunk ``i`` is sampled with noise seed ``i``. Only the WidowX joint space is supported."""

    needs_image = True

    def __init__(self, model: nn.Module, dt: float) -> None:
        from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS

        cfg = model.config
        if getattr(cfg, "action_space", None) != "widowx_joint_position":
            raise ConfigError(
                f"the sim reach evaluation drives the WidowX: policy.config.action_space="
                f"{getattr(cfg, 'action_space', None)!r} is not 'widowx_joint_position'"
            )
        self.model = model
        self.dt = dt
        self.names = WIDOWX_COMMAND_JOINTS
        self.calls = 0

    def predict_chunk(self, image: np.ndarray, state: np.ndarray, observation_stamp: float = 0.0):
        from human_video_policy.runtime.action_chunk import ActionChunk
        from human_video_policy.runtime.image_ops import prepare_rgb, to_chw_float
        from human_video_policy.training.demo_dataset import DEMO_EMBODIMENT, REACH_TASK

        cfg = self.model.config
        device = next(self.model.parameters()).device
        batch: dict[str, Any] = {
            "observation.state": torch.as_tensor(np.asarray(state, np.float32))[None, None],
            "task": [REACH_TASK],
            "embodiment": [DEMO_EMBODIMENT],
        }
        key = getattr(cfg, "image_key", None)
        if key and getattr(cfg, "image_encoder", "none") != "none":
            h, w = cfg.image_size
            batch[key] = torch.from_numpy(to_chw_float(prepare_rgb(image, h, w)))[None]
        batch = to_device(batch, device)
        actions = self.model.sample(batch, seed=self.calls)  # type: ignore[operator]
        self.calls += 1
        rows = np.asarray(actions, np.float32)[0]
        return ActionChunk(rows, self.dt, self.names, cfg.action_space, observation_stamp)


def widowx_reach_eval(model: nn.Module, episodes: int, seed: int) -> EvalFn:
    """``eval_fn`` running the closed-loop WidowX reach task (sim/evaluate.py) on ``episodes``
    seeds from ``seed``, for a model exposing the policy interface: a ``chunk_source()``
    method returning a ``ChunkSource``, ``predict_chunk(image, state, stamp) -> ActionChunk``
    itself, or ``sample(batch)`` (wrapped by :class:`SampleChunkSource`, chunks ``dt`` of the
    reach expert). Returns success_rate, mean_final_distance_m and mean_time_to_success_s
    (when any episode succeeded)."""
    if not any(
        callable(getattr(model, name, None)) for name in ("chunk_source", "predict_chunk", "sample")
    ):
        raise ConfigError(
            f"train.eval_every > 0 needs an eval_fn or a policy exposing predict_chunk(image, "
            f"state, stamp), chunk_source() or sample(batch); {type(model).__name__} has none "
            "(set train.eval_every: 0)"
        )
    if not callable(getattr(model, "predict_chunk", None)) and not callable(
        getattr(model, "chunk_source", None)
    ):
        SampleChunkSource(model, 0.1)  # refuses a non-WidowX action space now, not at step N

    def run(m: nn.Module, step: int) -> dict[str, float]:
        from human_video_policy.sim.evaluate import EvaluationConfig, evaluate
        from human_video_policy.sim.reach_expert import ReachExpertConfig
        from human_video_policy.training.record_demos import default_world_config

        if callable(getattr(m, "chunk_source", None)):
            source = m.chunk_source()
        elif callable(getattr(m, "predict_chunk", None)):
            source = m
        else:
            source = SampleChunkSource(m, ReachExpertConfig().dt)
        summary = evaluate(
            lambda world: source,  # type: ignore[arg-type,return-value]
            EvaluationConfig(
                episodes=episodes, seed=seed, world=default_world_config(), progress=False
            ),
            description=f"eval@{step}",
        )
        out = {
            "success_rate": summary.success_rate,
            "mean_final_distance_m": float(np.mean([r.final_distance for r in summary.results])),
        }
        if summary.mean_time_to_success is not None:
            out["mean_time_to_success_s"] = summary.mean_time_to_success
        return out

    return run


def train(
    config: TrainConfig,
    *,
    resume: bool | str | Path | None = None,
    model: nn.Module | None = None,
    datasets: Dataset | Sequence[Dataset] | None = None,
    eval_fn: EvalFn | None = None,
) -> TrainResult:
    """Run ``config`` (see :class:`Trainer`); the entry point of ``hvp train``."""
    return Trainer(config, model, datasets, eval_fn=eval_fn).fit(resume)


__all__ = [
    "EMA",
    "StepBatchSampler",
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "build_model",
    "build_sources",
    "check_checkpoint_fields",
    "check_compatible",
    "load_checkpoint",
    "load_trained_model",
    "lr_factor",
    "plot_history",
    "train",
    "widowx_reach_eval",
]
