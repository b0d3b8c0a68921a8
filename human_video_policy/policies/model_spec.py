"""The exported-model spec: the sidecar ``policy.json`` next to a policy's ONNX graphs.

Why a sidecar: a diffusion policy is more than one graph (an encoder run once per chunk, a
denoiser run once per DDIM step) plus numbers the graphs do not hold (sampler settings,
normalisation, action names, instruction vocabulary, provenance). The runtime reads only this
file to know how to run the graphs. At read every field is type- and range-checked
(:func:`read_spec`); at load it is checked against the graphs (each file's SHA-256, each input
and output name and fixed dimension, and the spec's horizon, action and state counts, image
size and instruction length against those dims) and against the action-space registry
(:func:`check_spec_against_graphs`), all before the self-test samples a chunk. A missing,
malformed or disagreeing sidecar is a :class:`ModelLoadError` naming the file and the field.

Layout of an exported policy directory::

    my_policy/
      policy.json      this spec
      encoder.onnx     (image, state[, instruction_ids][, fov]) -> (condition, state_norm)
      denoiser.onnx    (noisy_actions, timestep, condition, cond_keep, state_norm,
                        state_keep, action_mask) -> eps
"""

from __future__ import annotations

import hashlib
import json
import re
import reprlib
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

from human_video_policy.errors import ConfigError, ModelLoadError
from human_video_policy.policies.action_spaces import get_action_space
from human_video_policy.policies.diffusion_schedule import SCHEDULES

SPEC_FORMAT = "human_video_policy.exported_policy"
SPEC_VERSION = 1
SPEC_FILE = "policy.json"
ACTION_TARGETS = ("absolute", "delta")


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX graph of an exported policy.

    Attributes:
        file: file name, relative to the spec's directory.
        sha256: hex digest of the file (a swapped or damaged graph is refused).
        inputs / outputs: name -> shape, each dim an int or a symbolic name (``"batch"``).
    """

    file: str
    sha256: str
    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]


@dataclass(frozen=True)
class SamplerSpec:
    """How the runtime turns the denoiser into a chunk (diffusion_schedule.py).

    Attributes:
        train_steps, schedule, inference_steps, eta, clip_sample: the DDIM schedule.
        guidance_scale: classifier-free guidance scale (1.0: no unconditional pass needed,
            but the batch of 2 is still run so timing does not depend on it).
        seed: seed of the runtime's noise generator (each chunk draws fresh noise from it).
    """

    train_steps: int
    schedule: str
    inference_steps: int
    eta: float
    clip_sample: float
    guidance_scale: float
    seed: int = 0


@dataclass(frozen=True)
class ModelSpec:
    """What an exported policy is and how to run it.

    Attributes:
        policy_type: registry name of the policy type (``dit``).
        action_space: action-space id of the output columns.
        action_names: one name per output column.
        state_names: one name per state input element, in input order.
        horizon: rows per chunk; dt: seconds between rows.
        action_target: ``absolute`` or ``delta`` (the state's first dims are added back).
        image: ``{"key", "height", "width"}`` of the camera input, or None.
        instruction: ``{"vocabulary": [...], "max_words": n}`` for the vocab encoder, or None.
        normalization: ``action_mean``/``action_std`` (lists, per action dim) the sampler
            un-normalises with (the state is normalised inside the encoder graph).
        sampler: the DDIM + CFG settings.
        graphs: ``encoder`` and ``denoiser`` GraphSpecs.
        training: provenance (command, config, seed, data, steps, git commit...).
        parity: the export's parity report against PyTorch.
        model_config: the policy config as a dict.
    """

    policy_type: str
    action_space: str
    action_names: tuple[str, ...]
    state_names: tuple[str, ...]
    horizon: int
    dt: float
    action_target: str
    image: dict[str, Any] | None
    instruction: dict[str, Any] | None
    normalization: dict[str, list[float]]
    sampler: SamplerSpec
    graphs: dict[str, GraphSpec]
    training: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)

    @property
    def dims(self) -> int:
        return len(self.action_names)

    def to_json(self) -> str:
        body = {"format": SPEC_FORMAT, "format_version": SPEC_VERSION, **asdict(self)}
        return json.dumps(body, indent=2, sort_keys=True)

    def write(self, directory: str | Path) -> Path:
        """Write ``policy.json`` into ``directory`` (atomically) and return its path."""
        path = Path(directory) / SPEC_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)
        return path


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def spec_path(path: str | Path) -> Path:
    """``policy.json`` of an exported policy given its directory or the file itself."""
    path = Path(path).expanduser()
    return path / SPEC_FILE if path.is_dir() and path.name != SPEC_FILE else path


# --- reading policy.json ------------------------------------------------------------------------
# Every field is type- and range-checked at read: the runtime allocates arrays from these numbers
# (the self-test's image, the noise) before any graph could disagree, so a value past a bound is
# a damaged or hostile file, refused with the file and the field named.
MAX_SPEC_BYTES = 64 << 20
MAX_HORIZON = 1024
MAX_NAMES = 1024
MAX_NAME_CHARS = 256
MAX_IMAGE_SIDE = 4096
MAX_WORDS = 4096
MAX_VOCABULARY = 100_000
MAX_TRAIN_STEPS = 10_000  # DiffusionSchedule's own bound
MAX_SEED = 2**64 - 1
MAX_GUIDANCE = 100.0
MAX_CLIP_SAMPLE = 1e3
MAX_DT = 60.0
MAX_NORMALIZATION = 1e6
MAX_RANK = 8
MAX_GRAPH_DIM = 2**31 - 1
MAX_GRAPH_IO = 64
#: Nesting depth of the free-form sections (training, parity, model_config): deeper ones would
#: break whoever serialises them later (a RecursionError in a report).
MAX_DEPTH = 64
#: What the runtime feeds and reads; the export's graphs take them in this order (modeling_dit
#: imports DENOISER_INPUTS from here: this module has no torch).
ENCODER_INPUTS = ("image", "state", "instruction_ids", "fov")
ENCODER_OUTPUTS = ("condition", "state_norm")
DENOISER_INPUTS = (
    "noisy_actions",
    "timestep",
    "condition",
    "cond_keep",
    "state_norm",
    "state_keep",
    "action_mask",
)
DENOISER_OUTPUTS = ("eps",)
GRAPHS = ("encoder", "denoiser")
#: Words per instruction the runtime tokenises when the spec has no instruction section.
DEFAULT_MAX_WORDS = 16
_SHOW = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 60
_SHOW.maxlist = _SHOW.maxdict = 6
_SHOW.maxlevel = 3


def _fail(where: Path, name: str, value: Any, need: str) -> NoReturn:
    raise ModelLoadError(f"{where}: field {name!r} is {_SHOW.repr(value)}; {need}")


def _int(where: Path, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(where, name, value, f"must be an integer in [{low}, {high}]")
    return value


def _float(
    where: Path, name: str, value: Any, low: float, high: float, open_low: bool = False
) -> float:
    """A finite number in the range (an int is fine; a bool, NaN or inf is not). Compared
    before converting, so a huge integer is refused rather than overflowing."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and (low < value if open_low else low <= value)
        and value <= high
    )
    if not ok:
        bracket = "(" if open_low else "["
        _fail(where, name, value, f"must be a finite number in {bracket}{low}, {high}]")
    return float(value)


def _str(where: Path, name: str, value: Any, choices: tuple[str, ...] = ()) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
        _fail(where, name, value, f"must be a non-empty string of <= {MAX_NAME_CHARS} chars")
    if choices and value not in choices:
        _fail(where, name, value, f"must be one of {list(choices)}")
    return value


def _names(where: Path, name: str, value: Any, least: int, most: int) -> tuple[str, ...]:
    """A list of distinct non-empty strings (a bare string is refused, not split)."""
    if not isinstance(value, list) or not least <= len(value) <= most:
        _fail(where, name, value, f"must be a list of {least}..{most} names")
    for i, item in enumerate(value):
        _str(where, f"{name}[{i}]", item)
    if len(set(value)) != len(value):
        repeated = sorted(v for v, n in Counter(value).items() if n > 1)
        _fail(where, name, value, f"names must be distinct; repeated: {repeated[:5]}")
    return tuple(value)


def _section(
    where: Path,
    name: str,
    value: Any,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An object with exactly ``required`` (and maybe ``optional``) keys."""
    if not isinstance(value, dict):
        _fail(where, name, value, f"must be an object with {list(required + optional)}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ModelLoadError(f"{where}: field {name!r} lacks {[f'{name}.{k}' for k in missing]}")
    unknown = sorted(str(k) for k in value if k not in required + optional)
    if unknown:
        _fail(where, name, value, f"has unknown fields {unknown[:5]}")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, walked without recursion (stops past MAX_DEPTH)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _free(where: Path, name: str, value: Any) -> dict[str, Any]:
    """A free-form section (training, parity, model_config): an object (null = empty) of
    bounded depth."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(where, name, value, "must be an object (or null)")
    if _depth(value) > MAX_DEPTH:
        _fail(where, name, "...", f"is nested deeper than {MAX_DEPTH} levels")
    return value


def _shapes(where: Path, name: str, value: Any) -> dict[str, list[int | str]]:
    """``{io name: [dim, ...]}``, each dim an int or a symbolic name (a bare string is not a
    shape: it would be read as one dim per character)."""
    if not isinstance(value, dict) or not 1 <= len(value) <= MAX_GRAPH_IO:
        _fail(where, name, value, f"must be an object of 1..{MAX_GRAPH_IO} name -> shape")
    out: dict[str, list[int | str]] = {}
    for key, dims in value.items():
        label = f"{name}.{key}"
        if not isinstance(dims, list) or len(dims) > MAX_RANK:
            _fail(where, label, dims, f"must be a list of <= {MAX_RANK} ints or dim names")
        for i, dim in enumerate(dims):
            if isinstance(dim, str):
                _str(where, f"{label}[{i}]", dim)
            else:
                _int(where, f"{label}[{i}]", dim, 0, MAX_GRAPH_DIM)
        out[key] = list(dims)
    return out


def _graph(where: Path, name: str, value: Any) -> GraphSpec:
    label = f"graphs.{name}"
    g = _section(where, label, value, ("file", "sha256", "inputs", "outputs"))
    file = _str(where, f"{label}.file", g["file"])
    if any(c in file for c in "/\\\0") or file in (".", "..") or Path(file).is_absolute():
        _fail(where, f"{label}.file", file, "must be a plain file name inside the policy directory")
    sha = g["sha256"]
    if not isinstance(sha, str) or not re.fullmatch("[0-9a-f]{64}", sha):
        _fail(where, f"{label}.sha256", sha, "must be 64 lowercase hex digits")
    return GraphSpec(
        file=file,
        sha256=sha,
        inputs=_shapes(where, f"{label}.inputs", g["inputs"]),
        outputs=_shapes(where, f"{label}.outputs", g["outputs"]),
    )


def _graphs(where: Path, value: Any) -> dict[str, GraphSpec]:
    """The encoder and denoiser graphs, with the inputs and outputs the runtime uses."""
    section = _section(where, "graphs", value, GRAPHS)
    graphs = {name: _graph(where, name, section[name]) for name in GRAPHS}
    if graphs["encoder"].file == graphs["denoiser"].file:
        _fail(where, "graphs.denoiser.file", graphs["denoiser"].file, "is the encoder's file")
    encoder, denoiser = graphs["encoder"], graphs["denoiser"]
    for label, have, need, exact in (
        ("graphs.encoder.inputs", encoder.inputs, ENCODER_INPUTS, False),
        ("graphs.encoder.outputs", encoder.outputs, ENCODER_OUTPUTS, True),
        ("graphs.denoiser.inputs", denoiser.inputs, DENOISER_INPUTS, True),
        ("graphs.denoiser.outputs", denoiser.outputs, DENOISER_OUTPUTS, True),
    ):
        unknown = sorted(set(have) - set(need))
        missing = sorted(set(need) - set(have)) if exact else []
        if unknown and "inputs" in label:
            _fail(where, label, sorted(have), f"has inputs the runtime does not feed: {unknown}")
        if missing:
            _fail(where, label, sorted(have), f"lacks {missing}")
    return graphs


def _sampler(where: Path, value: Any) -> SamplerSpec:
    s = _section(
        where,
        "sampler",
        value,
        ("train_steps", "schedule", "inference_steps", "eta", "clip_sample", "guidance_scale"),
        ("seed",),
    )
    train_steps = _int(where, "sampler.train_steps", s["train_steps"], 2, MAX_TRAIN_STEPS)
    return SamplerSpec(
        train_steps=train_steps,
        schedule=_str(where, "sampler.schedule", s["schedule"], SCHEDULES),
        inference_steps=_int(
            where, "sampler.inference_steps", s["inference_steps"], 1, train_steps
        ),
        eta=_float(where, "sampler.eta", s["eta"], 0.0, 1.0),
        clip_sample=_float(where, "sampler.clip_sample", s["clip_sample"], 0.0, MAX_CLIP_SAMPLE),
        guidance_scale=_float(
            where, "sampler.guidance_scale", s["guidance_scale"], 0.0, MAX_GUIDANCE
        ),
        seed=_int(where, "sampler.seed", s.get("seed", 0), 0, MAX_SEED),
    )


def _normalization(where: Path, value: Any, dims: int) -> dict[str, list[float]]:
    section = _section(where, "normalization", value, ("action_mean", "action_std"))
    out = {}
    for key in ("action_mean", "action_std"):
        label = f"normalization.{key}"
        values = section[key]
        if not isinstance(values, list) or len(values) != dims:
            _fail(where, label, values, f"must be a list of {dims} numbers (one per action)")
        low, open_low = (0.0, True) if key == "action_std" else (-MAX_NORMALIZATION, False)
        out[key] = [
            _float(where, f"{label}[{i}]", v, low, MAX_NORMALIZATION, open_low)
            for i, v in enumerate(values)
        ]
    return out


def _image(where: Path, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    image = _section(where, "image", value, ("key", "height", "width"))
    return {
        "key": _str(where, "image.key", image["key"]),
        "height": _int(where, "image.height", image["height"], 1, MAX_IMAGE_SIDE),
        "width": _int(where, "image.width", image["width"], 1, MAX_IMAGE_SIDE),
    }


def _instruction(where: Path, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    section = _section(where, "instruction", value, ("vocabulary", "max_words"))
    return {
        "vocabulary": list(
            _names(where, "instruction.vocabulary", section["vocabulary"], 0, MAX_VOCABULARY)
        ),
        "max_words": _int(where, "instruction.max_words", section["max_words"], 1, MAX_WORDS),
    }


def read_spec(path: str | Path) -> ModelSpec:
    """Read and validate a sidecar (directory or ``policy.json``); ModelLoadError naming the
    file and field on any problem. This checks the file alone; check_spec_against_graphs()
    checks it against the loaded graphs and the action-space registry."""
    where = spec_path(path)
    if not where.is_file():
        raise ModelLoadError(
            f"{where}: no sidecar spec (policy.json) found; an exported policy is a directory "
            "written by `hvp export` (policy.json + its .onnx graphs)"
        )
    try:
        size = where.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise ModelLoadError(
                f"{where}: unreadable sidecar spec: {size} bytes, a spec is at most "
                f"{MAX_SPEC_BYTES} (damaged file?)"
            )
        data = json.loads(where.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ModelLoadError(f"{where}: unreadable sidecar spec: {reason}") from None
    if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT:
        raise ModelLoadError(f"{where}: not a {SPEC_FORMAT} file")
    version = data.get("format_version")
    if isinstance(version, bool) or version != SPEC_VERSION:
        raise ModelLoadError(
            f"{where}: field 'format_version' is {_SHOW.repr(version)}; this runtime reads "
            f"spec version {SPEC_VERSION}"
        )
    known = {f.name for f in fields(ModelSpec)} | {"format", "format_version"}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        _fail(where, unknown[0], data[unknown[0]], f"is not a spec field (known: {sorted(known)})")
    required = ("policy_type", "action_space", "action_names", "state_names", "horizon", "dt")
    required += ("action_target", "normalization", "sampler", "graphs")
    missing = [k for k in required if k not in data]
    if missing:
        raise ModelLoadError(f"{where}: sidecar spec lacks field {missing[0]!r}")
    action_names = _names(where, "action_names", data["action_names"], 1, MAX_NAMES)
    spec = ModelSpec(
        policy_type=_str(where, "policy_type", data["policy_type"]),
        action_space=_str(where, "action_space", data["action_space"]),
        action_names=action_names,
        state_names=_names(where, "state_names", data["state_names"], 0, MAX_NAMES),
        horizon=_int(where, "horizon", data["horizon"], 1, MAX_HORIZON),
        dt=_float(where, "dt", data["dt"], 0.0, MAX_DT, open_low=True),
        action_target=_str(where, "action_target", data["action_target"], ACTION_TARGETS),
        image=_image(where, data.get("image")),
        instruction=_instruction(where, data.get("instruction")),
        normalization=_normalization(where, data["normalization"], len(action_names)),
        sampler=_sampler(where, data["sampler"]),
        graphs=_graphs(where, data["graphs"]),
        training=_free(where, "training", data.get("training")),
        parity=_free(where, "parity", data.get("parity")),
        model_config=_free(where, "model_config", data.get("model_config")),
    )
    _check_values(spec, where)
    return spec


def _check_values(spec: ModelSpec, where: Path) -> None:
    """Fields that must agree with each other."""
    if spec.action_target == "delta" and spec.state_names[: spec.dims] != spec.action_names:
        _fail(
            where,
            "state_names",
            list(spec.state_names),
            f"action_target=delta needs the state to start with the action names "
            f"{list(spec.action_names)}",
        )
    encoder = spec.graphs["encoder"].inputs
    if ("image" in encoder) != (spec.image is not None):
        _fail(
            where,
            "image",
            spec.image,
            "the encoder graph takes an image"
            if "image" in encoder
            else "the encoder graph takes no image (image must be null)",
        )


def check_spec_against_graphs(spec: ModelSpec, where: Path, graphs: dict[str, GraphSpec]) -> None:
    """ModelLoadError unless the spec's sizes equal the graphs' fixed dims, its action space is
    registered with as many dims as it names, and its action target is the model config's
    (``graphs``: the shapes the loaded graphs report, ints fixed, anything else symbolic).
    Run after the graphs' own I/O check and before the self-test, which would otherwise
    allocate from the spec's numbers."""
    image = spec.image or {"height": None, "width": None}
    words = (spec.instruction or {"max_words": DEFAULT_MAX_WORDS})["max_words"]
    actions = {1: ("horizon", spec.horizon), 2: ("len(action_names)", spec.dims)}
    pixels = {
        1: ("RGB channels", 3),
        2: ("image.height", image["height"]),
        3: ("image.width", image["width"]),
    }
    expected = (
        ("encoder", "input", "image", 4, pixels),
        ("encoder", "input", "state", 2, {1: ("len(state_names)", len(spec.state_names))}),
        ("encoder", "input", "instruction_ids", 2, {1: ("instruction.max_words", words)}),
        ("encoder", "input", "fov", 2, {1: ("fov (h, v)", 2)}),
        ("denoiser", "input", "noisy_actions", 3, actions),
        ("denoiser", "input", "action_mask", 3, actions),
        ("denoiser", "output", "eps", 3, actions),
    )
    for graph, kind, io, rank, dims in expected:
        shapes = graphs[graph].inputs if kind == "input" else graphs[graph].outputs
        if io not in shapes:
            continue
        shape = list(shapes[io])
        if len(shape) != rank:
            raise ModelLoadError(
                f"{where}: graph {graph!r} {kind} {io!r} has shape {shape}, the runtime uses "
                f"{rank} dims"
            )
        for axis, (label, value) in dims.items():
            dim = shape[axis]
            if isinstance(dim, int) and not isinstance(dim, bool) and dim != value:
                raise ModelLoadError(
                    f"{where}: {label} = {value} in the spec, but graph {graph!r} {kind} "
                    f"{io!r} has {dim} there (shape {shape})"
                )
    check_action_space(spec, where)
    configured = spec.model_config.get("action_target")
    if configured is not None and configured != spec.action_target:
        _fail(
            where,
            "action_target",
            spec.action_target,
            f"model_config.action_target is {_SHOW.repr(configured)}",
        )


def check_action_space(spec: ModelSpec, where: Path) -> None:
    """ModelLoadError unless ``action_space`` is registered (policies/action_spaces.py) with
    as many dims as ``action_names``. The names themselves may differ from the registry's (a
    dataset names its own joints; the chunk executor maps chunks by name and names both sides
    of a mismatch); an open space (``joint_position``) takes any width."""
    try:
        space = get_action_space(spec.action_space)
    except ConfigError as exc:
        _fail(where, "action_space", spec.action_space, str(exc))
    if not space.is_open and space.dims != spec.dims:
        _fail(
            where,
            "action_space",
            spec.action_space,
            f"that space has {space.dims} dims, action_names has {spec.dims}",
        )


# --- single-graph policies: the description inside the .onnx (metadata_props) ---------------
# The behaviour-cloning baseline is one graph (image, state -> actions) and carries its
# description as ``hvp.*`` metadata_props; the keys are written by onnx_metadata() at export and
# read back by parse_onnx_metadata() in the runtime.
ONNX_METADATA_VERSION = "1"
ONNX_METADATA_KEYS = (
    "hvp.format_version",
    "hvp.action_space",
    "hvp.action_names",
    "hvp.state_names",
    "hvp.dt",
    "hvp.horizon",
    "hvp.image_size",
)


@dataclass(frozen=True)
class PolicyMetadata:
    """What a policy file says about itself.

    Attributes:
        action_space: action-space id of the output columns.
        action_names: one name per output column (dims).
        state_names: one name per state input element, in input order.
        horizon: rows per chunk.
        dt: seconds between rows.
        image_height / image_width: pixels the model expects (inputs are resized to this).
        training: free-form training report (seed, command, dataset...).
    """

    action_space: str
    action_names: tuple[str, ...]
    state_names: tuple[str, ...]
    horizon: int
    dt: float
    image_height: int
    image_width: int
    training: dict

    @property
    def dims(self) -> int:
        return len(self.action_names)


def parse_onnx_metadata(path: Path, props: dict[str, str]) -> PolicyMetadata:
    """The ``hvp.*`` metadata_props of a single-graph policy file, checked."""
    missing = [k for k in ONNX_METADATA_KEYS if k not in props]
    if missing:
        raise ModelLoadError(
            f"{path}: not a human_video_policy model (metadata keys missing: {missing}); "
            "export it with human_video_policy.training.export_onnx"
        )
    if props["hvp.format_version"] != ONNX_METADATA_VERSION:
        raise ModelLoadError(
            f"{path}: model format version {props['hvp.format_version']!r}, this runtime reads "
            f"version {ONNX_METADATA_VERSION!r}"
        )
    where = Path(path)

    def value(key: str, default: str | None = None) -> Any:
        text = props.get(key, default)
        try:
            return json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
            raise ModelLoadError(f"{path}: malformed hvp.* metadata {key!r}: {reason}") from None

    image_size = value("hvp.image_size")
    if not isinstance(image_size, list) or len(image_size) != 2:
        _fail(where, "hvp.image_size", image_size, "must be [height, width]")
    training = value("hvp.training", "{}")
    return PolicyMetadata(
        action_space=_str(where, "hvp.action_space", props["hvp.action_space"]),
        action_names=_names(where, "hvp.action_names", value("hvp.action_names"), 1, MAX_NAMES),
        state_names=_names(where, "hvp.state_names", value("hvp.state_names"), 0, MAX_NAMES),
        horizon=_int(where, "hvp.horizon", value("hvp.horizon"), 1, MAX_HORIZON),
        dt=_float(where, "hvp.dt", value("hvp.dt"), 0.0, MAX_DT, open_low=True),
        image_height=_int(where, "hvp.image_size[0]", image_size[0], 1, MAX_IMAGE_SIDE),
        image_width=_int(where, "hvp.image_size[1]", image_size[1], 1, MAX_IMAGE_SIDE),
        training=_free(where, "hvp.training", training),
    )


def onnx_metadata(
    meta: PolicyMetadata, model_config: dict[str, Any] | None = None
) -> dict[str, str]:
    """The ``hvp.*`` metadata_props (all strings) describing a single-graph policy."""
    return {
        "hvp.format_version": ONNX_METADATA_VERSION,
        "hvp.action_space": meta.action_space,
        "hvp.action_names": json.dumps(list(meta.action_names)),
        "hvp.state_names": json.dumps(list(meta.state_names)),
        "hvp.dt": repr(float(meta.dt)),
        "hvp.horizon": str(meta.horizon),
        "hvp.image_size": json.dumps([meta.image_height, meta.image_width]),
        "hvp.training": json.dumps(meta.training, sort_keys=True),
        "hvp.model": json.dumps(model_config or {}, sort_keys=True),
    }
