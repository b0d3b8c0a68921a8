"""The configuration of one training run (``hvp train CONFIG.yaml``), validated on construction.

A run is four sections, each a dataclass whose docstring documents every field (docs/training.md
is generated from them by :func:`config_reference_markdown`):

* ``policy``: which registered policy type to train and its own config fields (checked by the
  policy registry: an unknown field of the policy is refused there),
* ``data``: the sources (reach demos ``.npz`` or LeRobot-v3 dataset folders) with their sampling
  weights, chunk horizon, observation history, image size, batch size, loader workers,
* ``optim``: AdamW, warm-up + cosine learning rate, gradient clipping,
* ``train``: steps, seed, EMA, logging / checkpoint / evaluation periods, output folder,
  device, threads, progress bar, distributed strategy.

:func:`load_train_config` reads YAML (``yaml.safe_load``) and applies command-line overrides
``key.path=value`` (the value parsed as YAML: ``optim.lr=3e-4``, ``data.image_size=[64,64]``,
``data.sources[0].weight=2``). Every error is a :class:`ConfigError` naming the field path
(``optim.lrr: unknown field; valid fields: ...``, ``train.steps=-1 is invalid: ...``).

:meth:`TrainConfig.to_dict` is the *resolved* config: every field with its value, the policy's
config with its defaults filled in by the registry. It is saved as ``config.yaml`` in the output
folder and inside every checkpoint, and :meth:`TrainConfig.from_dict` reads it back.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from human_video_policy.errors import ConfigError
from human_video_policy.validation import (
    check_choice,
    check_int_range,
    check_non_negative,
    check_positive,
    check_range,
)

SOURCE_KINDS = ("demos", "dataset")
ACTION_SPACES = ("native", "human")
SCHEDULES = ("cosine", "constant")
STRATEGIES = ("ddp", "fsdp")


@dataclass
class PolicySection:
    """Which policy to train.

    Fields:
        type: name of a registered policy type (``human_video_policy.policies.registry``),
            e.g. ``dit``.
        config: the policy type's own config fields (its config dataclass); fields left out
            take the policy's defaults. Unknown fields are refused by the registry.
    """

    type: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.type:
            raise ConfigError("type='' is invalid: name a registered policy type (e.g. dit)")


@dataclass
class DataSource:
    """One source of training samples.

    Fields:
        kind: ``demos`` (a reach-demonstration ``.npz`` of ``training/record_demos.py``) or
            ``dataset`` (a LeRobot-v3 dataset folder written by the project).
        path: the file or folder (relative paths are relative to the working directory).
        weight: sampling weight; each batch sample comes from this source with probability
            ``weight / sum(weights)``, then uniformly among its samples.
        augment: apply VITRA's trajectory-aware augmentation (training/augmentation.py: crop +
            perspective warp keeping the future hand trajectory in view, horizontal flip with
            hands and left/right words swapped, colour jitter unless the task names a colour)
            to this source; for human-hand datasets (flipping a robot's data would mirror its
            hand). Only for ``kind: dataset``.
    """

    kind: str = "dataset"
    path: str = ""
    weight: float = 1.0
    augment: bool = False

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, SOURCE_KINDS)
        if not self.path:
            raise ConfigError("path='' is invalid: name the demos file or dataset folder")
        check_positive("weight", self.weight)
        if self.augment and self.kind != "dataset":
            raise ConfigError(
                "augment=True is invalid for kind='demos': only datasets carry their cameras"
            )


@dataclass
class DataSection:
    """What a training sample holds and how batches are drawn.

    Fields:
        sources: list of ``{kind, path, weight}`` (see DataSource); at least one.
        horizon: action rows per chunk (the policy's chunk length).
        history: observation frames per sample (demos have one: history must be 1 with them).
        action_offset: frames between the observation and the first chunk row of a dataset
            (1: row i is the target for t + (i + 1) dt, the policy contract).
        image_size: ``[height, width]`` images are resized to, or null for the source's size
            (several sources with cameras need it so their images stack).
        image_keys: cameras to load (``observation.images.<name>``), null for all, ``[]`` for
            none. Demos provide ``observation.images.scene``.
        action_space: ``native`` (the sources' own action columns; every source must have the
            same) or ``human`` (datasets mapped into the 102-d human hand space with masks,
            for mixing human and robot data; demos cannot be mapped).
        batch_size: samples per optimizer step over all processes (the global batch; with
            several processes each takes ``batch_size / world_size``).
        num_workers: DataLoader worker processes per training process (0: load in-process).
        samples_per_episode: frames drawn from each drawn episode (1: independent frames;
            more, e.g. 32, keeps a video dataset's decoded-episode cache warm).
        episodes_per_group: episodes drawn together (their samples are shuffled together);
            with samples_per_episode it sets how many episodes a stretch of steps touches.
        normalization_samples: samples (drawn like training samples) handed in batches to the
            model's ``fit_normalization(batches)`` at the start of a fresh run (0: not fitted;
            a resumed run keeps the checkpoint's statistics).
    """

    sources: list[DataSource] = field(default_factory=list)
    horizon: int = 16
    history: int = 1
    action_offset: int = 1
    image_size: list[int] | None = None
    image_keys: list[str] | None = None
    action_space: str = "native"
    batch_size: int = 32
    num_workers: int = 0
    samples_per_episode: int = 1
    episodes_per_group: int = 32
    normalization_samples: int = 4096

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError("sources=[] is invalid: give at least one {kind, path, weight}")
        check_int_range("horizon", self.horizon, 1)
        check_int_range("history", self.history, 1)
        check_int_range("action_offset", self.action_offset, 0)
        if self.image_size is not None:
            if len(self.image_size) != 2:
                raise ConfigError(f"image_size={self.image_size!r} is invalid: [height, width]")
            for i, v in enumerate(self.image_size):
                check_int_range(f"image_size[{i}]", v, 1, 4096)
        check_choice("action_space", self.action_space, ACTION_SPACES)
        check_int_range("batch_size", self.batch_size, 1)
        check_int_range("num_workers", self.num_workers, 0)
        check_int_range("samples_per_episode", self.samples_per_episode, 1)
        check_int_range("episodes_per_group", self.episodes_per_group, 1)
        check_int_range("normalization_samples", self.normalization_samples, 0)
        kinds = {s.kind for s in self.sources}
        if "demos" in kinds and self.history != 1:
            raise ConfigError(f"history={self.history} is invalid with demos: demos hold 1 frame")
        if "demos" in kinds and self.action_space == "human":
            raise ConfigError(
                "action_space='human' is invalid with demos: reach demos have no mapping to "
                "the human space; use 'native'"
            )


@dataclass
class OptimSection:
    """AdamW with a warm-up and a cosine (or constant) learning rate.

    Fields:
        lr: peak learning rate (reached at the end of the warm-up).
        weight_decay: AdamW decoupled weight decay.
        betas: AdamW ``[beta1, beta2]``.
        eps: AdamW epsilon.
        warmup_steps: steps of linear warm-up from lr / warmup_steps to lr (0: none).
        schedule: ``cosine`` (decay from lr to lr * min_lr_ratio over the remaining steps) or
            ``constant``.
        min_lr_ratio: the cosine schedule's final learning rate as a fraction of lr.
        grad_clip: clip the global gradient L2 norm to this (0: no clipping).
    """

    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        check_positive("lr", self.lr)
        check_non_negative("weight_decay", self.weight_decay)
        if len(self.betas) != 2:
            raise ConfigError(f"betas={self.betas!r} is invalid: [beta1, beta2]")
        for i, b in enumerate(self.betas):
            check_range(f"betas[{i}]", b, 0.0, 0.999999)
        check_positive("eps", self.eps)
        check_int_range("warmup_steps", self.warmup_steps, 0)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        check_non_negative("grad_clip", self.grad_clip)


@dataclass
class TrainSection:
    """The run: length, seeds, EMA, outputs, hardware.

    Fields:
        steps: optimizer steps of the whole run (a resumed run continues to this step).
        seed: seeds torch, numpy and python ``random`` (model init, the model's own noise:
            seed + rank), the batch draw (a function of seed and step) and the per-sample
            seeds of data transforms (a function of seed, step and slot).
        ema_decay: exponential moving average of the weights, ``ema = d * ema + (1 - d) * w``
            after every step (0: off). Checkpoints hold both; evaluation and export use EMA.
        log_every: steps between logged losses (the mean over those steps) in TensorBoard,
            metrics.json and the PNG plot.
        checkpoint_every: steps between checkpoints (0: only at the end; one is always
            written at the end).
        eval_every: steps between evaluations (0: none). Without an ``eval_fn`` given to the
            trainer, the closed-loop WidowX reach evaluation in the sim runs (policies that
            expose ``predict_chunk``).
        eval_episodes: sim episodes per evaluation.
        eval_seed: first sim seed of the evaluation episodes (held out from the demos' seeds).
        output_dir: folder of config.yaml, checkpoints/, TensorBoard events (tb/),
            metrics.json and losses.png.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``
            (under torchrun each process takes ``cuda:LOCAL_RANK``).
        threads: torch CPU threads per process.
        progress: tqdm progress bar on stderr (rank 0 only).
        strategy: ``ddp`` (DistributedDataParallel) or ``fsdp`` (PyTorch's ``fully_shard``,
            FSDP2, for large backbones: each block of an ``nn.ModuleList`` is sharded on its
            own); used only when started by torchrun with WORLD_SIZE > 1. A checkpoint holds
            full weights either way; its optimizer state resumes only with the same strategy.
        find_unused_parameters: DDP's flag, for models whose loss leaves some parameters
            without gradient on some steps.
        init_from: fine-tune: start from the weights of this pretrained run (a run folder or
            checkpoint; its EMA weights when it kept them) instead of a fresh initialisation.
            The policy config must be the pretrained one; the state/action statistics are
            recomputed on this run's data (VITRA A.3: refit on the robot data), and the
            optimizer, schedule and step start afresh. Empty: train from scratch.
    """

    steps: int = 1000
    seed: int = 0
    ema_decay: float = 0.0
    log_every: int = 10
    checkpoint_every: int = 1000
    eval_every: int = 0
    eval_episodes: int = 10
    eval_seed: int = 1000
    output_dir: str = "runs/train"
    device: str = "auto"
    threads: int = 2
    progress: bool = True
    strategy: str = "ddp"
    find_unused_parameters: bool = False
    init_from: str = ""

    def __post_init__(self) -> None:
        check_int_range("steps", self.steps, 1)
        check_int_range("seed", self.seed, 0, 2**31 - 1)
        check_range("ema_decay", self.ema_decay, 0.0, 0.999999)
        check_int_range("log_every", self.log_every, 1)
        check_int_range("checkpoint_every", self.checkpoint_every, 0)
        check_int_range("eval_every", self.eval_every, 0)
        check_int_range("eval_episodes", self.eval_episodes, 1)
        check_int_range("eval_seed", self.eval_seed, 0)
        if not self.output_dir:
            raise ConfigError("output_dir='' is invalid: name a folder")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError(
                f"device={self.device!r} is invalid: must be auto, cpu, cuda or cuda:N"
            )
        check_int_range("threads", self.threads, 1)
        check_choice("strategy", self.strategy, STRATEGIES)
        if self.strategy == "fsdp" and self.ema_decay > 0:
            raise ConfigError(
                "ema_decay > 0 with strategy='fsdp' is not supported: the EMA copy would need "
                "the full parameters on every rank; use ddp or ema_decay 0"
            )


SECTIONS: dict[str, type] = {
    "policy": PolicySection,
    "data": DataSection,
    "optim": OptimSection,
    "train": TrainSection,
}


@dataclass
class TrainConfig:
    """A whole training run: ``policy``, ``data``, ``optim``, ``train`` (see each section).

    Construction validates every section and the policy's config through the registry; use
    :meth:`from_dict` / :func:`load_train_config` for YAML-shaped input with field paths in
    the errors.
    """

    policy: PolicySection
    data: DataSection
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)

    def __post_init__(self) -> None:
        self.policy_config()  # the registry checks the policy's fields

    def policy_config(self) -> Any:
        """The policy's config dataclass, built by the registry (ConfigError naming
        ``policy.type`` or ``policy.config`` when it refuses)."""
        from human_video_policy.policies.registry import get_policy_type

        try:
            policy_type = get_policy_type(self.policy.type)
        except ConfigError as exc:
            raise ConfigError(f"policy.type={self.policy.type!r}: {exc}") from exc
        try:
            return policy_type.make_config(dict(self.policy.config))
        except ConfigError as exc:
            raise ConfigError(f"policy.config (policy type {self.policy.type!r}): {exc}") from exc

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        """Build from YAML-shaped data; unknown or ill-typed fields -> ConfigError with the
        field path."""
        return _build(cls, data, "")

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (plain YAML types): every field, the policy config complete."""
        out = _plain(dataclasses.asdict(self))
        out["policy"]["config"] = _plain(dataclasses.asdict(self.policy_config()))
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# --------------------------------------------------------------------------------------------
# YAML-shaped data -> dataclasses, with field paths in every error


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _build(cls: type, data: Any, path: str) -> Any:
    where = path or "the config"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{_join(path, str(key))}: unknown field; valid fields of {where}: "
                f"{', '.join(fields)}"
            )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], _join(path, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if name in SECTIONS:
                kwargs[name] = _build(SECTIONS[name], {}, _join(path, name))
            else:
                raise ConfigError(f"{_join(path, name)}: missing (required)")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        message = str(exc)
        if path and not message.startswith(("policy.", "data.", "optim.", "train.")):
            message = f"{path}.{message}"
        raise ConfigError(message) from exc


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}={value!r} is invalid: must be a list")
        return [_convert(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}={value!r} is invalid: must be a mapping")
        return {str(k): v for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}={value!r} is invalid: must be true or false")
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{path}={value!r} is invalid: must be an integer")
        return value
    if tp is float:
        # YAML 1.1 (PyYAML) reads 3e-4 as a string: accept a number written that way.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{path}={value!r} is invalid: must be a number") from None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{path}={value!r} is invalid: must be a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}={value!r} is invalid: must be a string")
        return value
    raise TypeError(f"{path}: unsupported field type {_type_name(tp)}")  # a bug here, not input


def _plain(value: Any) -> Any:
    """dataclasses.asdict output -> YAML-safe types (tuples -> lists, paths -> str)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalars / arrays
        return value.tolist()
    return value


# --------------------------------------------------------------------------------------------
# Resume: which fields may differ from the checkpoint's config

RESUME_MUTABLE_FIELDS = (
    "train.steps",
    "train.log_every",
    "train.checkpoint_every",
    "train.eval_every",
    "train.eval_episodes",
    "train.eval_seed",
    "train.output_dir",
    "train.device",
    "train.threads",
    "train.progress",
    "train.strategy",
    "train.find_unused_parameters",
    "train.init_from",
    "data.num_workers",
    "data.normalization_samples",
)
"""The fields a ``--resume`` may change: the run's length (``train.steps``: training further
is what a resume is for), logging / checkpoint / evaluation cadence and the evaluation's own
episodes, where the run lives (``output_dir``: a moved run folder), the hardware and process
layout (``device``, ``threads``, ``strategy``, ``find_unused_parameters``: the optimizer
state's own check refuses a strategy it cannot load), the progress bar, and fields that only
act on a fresh run (``init_from``, ``normalization_samples``) or do not change the samples
(``num_workers``: each sample's transforms run under its own seed). Everything else (the
policy, the data, the optimizer, seed, EMA) is what the checkpoint's state was built with: a
changed value would be written to config.yaml but not take effect, so it is refused."""


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, _join(path, str(k)), out)
        if not value:
            out[path] = {}
    elif isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
        out[f"{path}.len"] = len(value)
        for i, v in enumerate(value):
            _flatten(v, f"{path}[{i}]", out)
    else:
        out[path] = value


def flat_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """``{dotted.path: value}`` of a resolved config (lists of mappings by index,
    ``data.sources[0].path``; lists of numbers as one value, ``optim.betas``)."""
    out: dict[str, Any] = {}
    _flatten(config, "", out)
    return out


def resume_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The dotted fields where ``current`` (this invocation's resolved config) differs from
    ``stored`` (the checkpoint's), leaving out :data:`RESUME_MUTABLE_FIELDS`."""
    a, b = flat_fields(stored), flat_fields(current)
    diff = []
    for key in sorted(set(a) | set(b)):
        field_name = key.removesuffix(".len")
        if field_name in RESUME_MUTABLE_FIELDS or a.get(key, _MISSING) == b.get(key, _MISSING):
            continue
        diff.append(field_name)
    return list(dict.fromkeys(diff))


_MISSING = object()


# --------------------------------------------------------------------------------------------
# Overrides and files

_INDEX = re.compile(r"\[(\d+)\]")


def _split_path(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for token in _INDEX.sub(r".\1", key).split("."):
        if not token:
            raise ConfigError(f"override key {key!r} is invalid: empty path element")
        parts.append(int(token) if token.isdigit() else token)
    return parts


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A deep copy of ``data`` with each ``key.path=value`` set (value parsed as YAML).

    List elements are addressed as ``sources[0]`` or ``sources.0``. Unknown keys are caught
    when the config is built (with their path)."""
    out = yaml.safe_load(yaml.safe_dump(dict(data)))  # deep copy through YAML types
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is invalid: write key.path=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
        parts = _split_path(key)
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            here = ".".join(str(p) for p in parts[: i + 1])
            if isinstance(node, list):
                if not isinstance(part, int) or not 0 <= part < len(node):
                    raise ConfigError(
                        f"override {key}: {here} is not an element of a list of {len(node)}"
                    )
            elif isinstance(node, dict):
                if isinstance(part, int):
                    raise ConfigError(f"override {key}: {here} indexes a mapping")
            else:
                raise ConfigError(f"override {key}: {here} is inside a non-mapping value")
            if last:
                node[part] = value
            else:
                if isinstance(node, dict) and node.get(part) is None:
                    node[part] = {}
                node = node[part]
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last
    silently: a config whose second ``train:`` section hides the first would train wrong)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config file, apply ``key.path=value`` overrides, build and validate."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the training config {path}: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    data = apply_overrides(data, overrides)
    try:
        return TrainConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Documentation from the docstrings


def field_docs(cls: type) -> dict[str, str]:
    """``name -> description`` from the ``Fields:`` block of a section's docstring."""
    doc = cls.__doc__ or ""
    out: dict[str, str] = {}
    current = None
    in_fields = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "Fields:":
            in_fields = True
            continue
        if not in_fields or not stripped:
            continue
        m = re.match(r"^(\w+): (.*)$", stripped)
        if m and line.startswith(" " * 8) and not line.startswith(" " * 12):
            current = m.group(1)
            out[current] = m.group(2)
        elif current is not None:
            out[current] += " " + stripped
    return out


def config_reference_markdown() -> str:
    """The config reference of docs/training.md: one table per section, with defaults."""
    lines = []
    for name, cls in (*SECTIONS.items(), ("data.sources[]", DataSource)):
        lines += [f"### `{name}`", "", (cls.__doc__ or "").strip().splitlines()[0], ""]
        lines += ["| field | default | meaning |", "| --- | --- | --- |"]
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = "(required)"
            shown = yaml.safe_dump(default, default_flow_style=True).strip()
            shown = shown.removesuffix("\n...").removesuffix("...").strip()
            lines.append(f"| `{f.name}` | `{shown}` | {docs.get(f.name, '')} |")
        lines.append("")
    return "\n".join(lines)


__all__ = [
    "RESUME_MUTABLE_FIELDS",
    "DataSection",
    "DataSource",
    "OptimSection",
    "PolicySection",
    "TrainConfig",
    "TrainSection",
    "apply_overrides",
    "config_reference_markdown",
    "field_docs",
    "flat_fields",
    "load_train_config",
    "resume_differences",
]
