"""The exported-model spec: the sidecar ``policy.json`` next to a policy's ONNX graphs.

Why a sidecar: a diffusion policy is more than one graph (an encoder run once per chunk, a
denoiser run once per DDIM step) plus numbers the graphs do not hold (sampler settings,
normalisation, action names, instruction vocabulary, provenance). The runtime reads only this
file to know how to run the graphs, and checks it against them at load: each graph file's
SHA-256, and each input and output name and fixed dimension. A missing or disagreeing sidecar
is a :class:`ModelLoadError` naming the file and the disagreement.

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
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from human_video_policy.errors import ModelLoadError

SPEC_FORMAT = "human_video_policy.exported_policy"
SPEC_VERSION = 1
SPEC_FILE = "policy.json"


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
    return path / SPEC_FILE if path.is_dir() else path


def _need(data: dict, key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in data:
        raise ModelLoadError(f"{where}: sidecar spec lacks {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ModelLoadError(f"{where}: sidecar field {key!r} is {value!r}, not {kind}")
    return value


def read_spec(path: str | Path) -> ModelSpec:
    """Read and validate a sidecar (directory or ``policy.json``); ModelLoadError naming the
    file and field on any problem."""
    where = spec_path(path)
    if not where.is_file():
        raise ModelLoadError(
            f"{where}: no sidecar spec (policy.json) found; an exported policy is a directory "
            "written by `hvp export` (policy.json + its .onnx graphs)"
        )
    try:
        data = json.loads(where.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"{where}: unreadable sidecar spec: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT:
        raise ModelLoadError(f"{where}: not a {SPEC_FORMAT} file")
    if data.get("format_version") != SPEC_VERSION:
        raise ModelLoadError(
            f"{where}: spec version {data.get('format_version')!r}, this runtime reads "
            f"{SPEC_VERSION}"
        )
    try:
        graphs = {
            name: GraphSpec(
                file=str(_need(g, "file", str, where)),
                sha256=str(_need(g, "sha256", str, where)),
                inputs={k: list(v) for k, v in _need(g, "inputs", dict, where).items()},
                outputs={k: list(v) for k, v in _need(g, "outputs", dict, where).items()},
            )
            for name, g in _need(data, "graphs", dict, where).items()
        }
        sampler = SamplerSpec(**_need(data, "sampler", dict, where))
        spec = ModelSpec(
            policy_type=_need(data, "policy_type", str, where),
            action_space=_need(data, "action_space", str, where),
            action_names=tuple(_need(data, "action_names", list, where)),
            state_names=tuple(_need(data, "state_names", list, where)),
            horizon=_need(data, "horizon", int, where),
            dt=float(_need(data, "dt", (int, float), where)),
            action_target=_need(data, "action_target", str, where),
            image=data.get("image"),
            instruction=data.get("instruction"),
            normalization=_need(data, "normalization", dict, where),
            sampler=sampler,
            graphs=graphs,
            training=data.get("training") or {},
            parity=data.get("parity") or {},
            model_config=data.get("model_config") or {},
        )
    except TypeError as exc:
        raise ModelLoadError(f"{where}: malformed sidecar spec: {exc}") from exc
    _check_values(spec, where)
    return spec


def _check_values(spec: ModelSpec, where: Path) -> None:
    problems = []
    if spec.horizon < 1 or not spec.action_names:
        problems.append(f"horizon={spec.horizon}, {spec.dims} action names")
    if not (math.isfinite(spec.dt) and spec.dt > 0):
        problems.append(f"dt={spec.dt}")
    if spec.action_target not in ("absolute", "delta"):
        problems.append(f"action_target={spec.action_target!r}")
    if spec.action_target == "delta" and list(spec.state_names[: spec.dims]) != list(
        spec.action_names
    ):
        problems.append("action_target=delta but the state does not start with the action names")
    for key in ("action_mean", "action_std"):
        values = spec.normalization.get(key)
        if not isinstance(values, list) or len(values) != spec.dims:
            problems.append(f"normalization.{key} must have {spec.dims} values")
        elif not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            problems.append(f"normalization.{key} has non-finite values")
        elif key == "action_std" and min(values) <= 0:
            problems.append("normalization.action_std must be > 0")
    s = spec.sampler
    if not (1 <= s.inference_steps <= s.train_steps) or s.schedule not in ("cosine", "linear"):
        problems.append(f"sampler {s}")
    if not (math.isfinite(s.guidance_scale) and 0 <= s.guidance_scale <= 100):
        problems.append(f"sampler.guidance_scale={s.guidance_scale}")
    for name in ("encoder", "denoiser"):
        if name not in spec.graphs:
            problems.append(f"graphs.{name} missing")
    if spec.image is not None and not (
        isinstance(spec.image.get("height"), int) and isinstance(spec.image.get("width"), int)
    ):
        problems.append(f"image={spec.image!r} needs integer height and width")
    if problems:
        raise ModelLoadError(f"{where}: invalid sidecar spec: {'; '.join(problems)}")


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
    try:
        image_size = json.loads(props["hvp.image_size"])
        meta = PolicyMetadata(
            action_space=props["hvp.action_space"],
            action_names=tuple(json.loads(props["hvp.action_names"])),
            state_names=tuple(json.loads(props["hvp.state_names"])),
            horizon=int(props["hvp.horizon"]),
            dt=float(props["hvp.dt"]),
            image_height=int(image_size[0]),
            image_width=int(image_size[1]),
            training=json.loads(props.get("hvp.training", "{}")),
        )
    except (ValueError, TypeError, IndexError) as exc:
        raise ModelLoadError(f"{path}: malformed hvp.* metadata: {exc}") from exc
    if meta.horizon < 1 or not meta.action_names or not (meta.dt > 0):
        raise ModelLoadError(
            f"{path}: metadata has horizon={meta.horizon}, "
            f"dims={meta.dims}, dt={meta.dt}; all must be positive"
        )
    return meta


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
