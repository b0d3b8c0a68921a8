"""Run an exported diffusion policy with ONNX Runtime: DDIM + classifier-free guidance in numpy.

No torch on this path. The policy directory's ``policy.json`` (policies/model_spec.py) says
which graphs to load and how to sample; it is type- and range-checked when read, both graphs
are checked against it at load (SHA-256, input/output names and fixed dims, the spec's sizes
against those dims, the action space against the registry), then one chunk is sampled from a
neutral input as a self-test, so a model that disagrees with its spec or yields NaN is refused
before it runs. The caller's own options (seed, guidance_scale, inference_steps...) are a
ConfigError naming the option; everything wrong with the files is a ModelLoadError naming them.

Per chunk: the encoder graph runs once (image, state, instruction -> condition tokens and the
normalised state); then for each of the ``inference_steps`` DDIM timesteps the denoiser runs
once on a batch of 2 (conditional, unconditional), the two noise predictions are combined with
the guidance scale, and the shared numpy DDIM update (policies/diffusion_schedule.py, the same
code PyTorch sampling uses) advances the sample. Noise comes from a generator seeded by the
spec (or the caller), so a chunk is reproducible.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from human_video_policy.errors import ConfigError, InputError, ModelLoadError
from human_video_policy.policies.diffusion_schedule import DiffusionSchedule, guided_eps
from human_video_policy.policies.instruction_vocab import tokenize
from human_video_policy.policies.model_spec import (
    MAX_GUIDANCE,
    MAX_SEED,
    GraphSpec,
    ModelSpec,
    PolicyMetadata,
    check_spec_against_graphs,
    read_spec,
    sha256_of,
    spec_path,
)
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.image_ops import check_rgb, prepare_rgb, to_chw_float
from human_video_policy.runtime.onnx_policy import DEFAULT_MAX_ABS_ACTION, PolicyOutputError
from human_video_policy.runtime.providers import (
    CPU,
    available_providers,
    check_available,
    open_session,
)
from human_video_policy.runtime.rtc import ChunkPrefix, guided_x0_eps
from human_video_policy.validation import check_int_range, check_positive, check_range


def _check_options(
    spec: ModelSpec,
    intra_op_threads: int,
    seed: int | None,
    guidance_scale: float | None,
    max_abs_action: float,
    inference_steps: int | None,
) -> None:
    """ConfigError naming the caller's option that is out of range (the spec's own values are
    checked by read_spec and blamed on the file)."""
    check_int_range("intra_op_threads", intra_op_threads, 1, 1024)
    check_positive("max_abs_action", max_abs_action)
    if seed is not None:
        check_int_range("seed", seed, 0, MAX_SEED)
    if guidance_scale is not None:
        check_range("guidance_scale", guidance_scale, 0.0, MAX_GUIDANCE)
    if inference_steps is not None:
        check_int_range("inference_steps", inference_steps, 1, spec.sampler.train_steps)


def _shapes_of(session) -> GraphSpec:
    """The input and output shapes a loaded graph reports (ints fixed, the rest symbolic)."""
    return GraphSpec(
        file="",
        sha256="",
        inputs={i.name: list(i.shape) for i in session.get_inputs()},
        outputs={o.name: list(o.shape) for o in session.get_outputs()},
    )


class DiffusionPolicy:
    """An exported diffusion policy: ``predict_chunk(image, state)`` like every Policy.

    Args:
        path: the exported policy directory (or its policy.json).
        providers: ONNX Runtime execution providers in priority order (default CPU).
        intra_op_threads: threads per graph run.
        seed: noise seed (default: the spec's ``sampler.seed``).
        guidance_scale: override the spec's CFG scale.
        inference_steps: override the spec's number of DDIM steps (1..train_steps): fewer for
            speed, more for fidelity; the trained denoiser serves any of them.
        fixed_noise: start every chunk from the same noise (drawn once from ``seed``): DDIM
            (eta 0) is then deterministic, the same observation always gives the same chunk
            (repeatable runs, and a check that an input reaches the model).
        max_abs_action: largest |action| accepted (see runtime/onnx_policy.py).
        self_test: sample one chunk from a neutral input at load.
    """

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 1,
        seed: int | None = None,
        guidance_scale: float | None = None,
        max_abs_action: float = DEFAULT_MAX_ABS_ACTION,
        self_test: bool = True,
        inference_steps: int | None = None,
        fixed_noise: bool = False,
    ) -> None:
        self.path = spec_path(path)
        self.spec: ModelSpec = read_spec(self.path)
        spec = self.spec
        _check_options(
            spec, intra_op_threads, seed, guidance_scale, max_abs_action, inference_steps
        )
        for flag, value in (("fixed_noise", fixed_noise), ("self_test", self_test)):
            if not isinstance(value, bool):
                raise ConfigError(f"{flag}={value!r} must be true or false")
        providers = check_available(providers or [CPU], available_providers())
        self.sessions = {}
        for name, graph in spec.graphs.items():
            file = self.path.parent / graph.file
            if not file.is_file():
                raise ModelLoadError(f"{self.path}: graph {name!r} file {file} is missing")
            digest = sha256_of(file)
            if digest != graph.sha256:
                raise ModelLoadError(
                    f"{file}: SHA-256 {digest[:12]}... disagrees with the sidecar "
                    f"{self.path} ({graph.sha256[:12]}...): the graph is not the one exported "
                    "with this spec"
                )
            self.sessions[name] = open_session(file, providers, intra_op_threads)
            self._check_io(name, self.sessions[name])
        check_spec_against_graphs(
            spec, self.path, {name: _shapes_of(session) for name, session in self.sessions.items()}
        )
        self.providers = self.sessions["denoiser"].get_providers()
        s = spec.sampler
        self.schedule = DiffusionSchedule(
            train_steps=s.train_steps,
            kind=s.schedule,
            inference_steps=s.inference_steps if inference_steps is None else inference_steps,
            eta=s.eta,
            clip_sample=s.clip_sample,
        )
        self.guidance_scale = s.guidance_scale if guidance_scale is None else float(guidance_scale)
        self.rng = np.random.default_rng(s.seed if seed is None else seed)
        self._fixed_noise = (
            self.rng.standard_normal((1, spec.horizon, spec.dims)).astype(np.float32)
            if fixed_noise
            else None
        )
        self.action_mean = np.asarray(spec.normalization["action_mean"], dtype=np.float32)
        self.action_std = np.asarray(spec.normalization["action_std"], dtype=np.float32)
        self.max_abs_action = float(max_abs_action)
        self.invalid_outputs = 0
        self.encoder_inputs = [i.name for i in self.sessions["encoder"].get_inputs()]
        if self_test:
            self._self_test()

    @property
    def metadata(self) -> PolicyMetadata:
        """What the node and tools read of any runtime policy (same type as OnnxPolicy's)."""
        spec = self.spec
        image = spec.image or {"height": 0, "width": 0}
        return PolicyMetadata(
            action_space=spec.action_space,
            action_names=spec.action_names,
            state_names=spec.state_names,
            horizon=spec.horizon,
            dt=spec.dt,
            image_height=int(image["height"]),
            image_width=int(image["width"]),
            training=spec.training,
        )

    @property
    def needs_instruction(self) -> bool:
        """True for a policy trained with language instructions (an instruction vocabulary):
        the policy node then passes the task instruction (``instruction=``)."""
        vocab = self.spec.instruction or {}
        return "instruction_ids" in self.encoder_inputs and bool(vocab.get("vocabulary"))

    # --- load-time checks ---------------------------------------------------------------------
    def _check_io(self, name: str, session) -> None:
        graph = self.spec.graphs[name]
        for kind, declared, actual in (
            ("input", graph.inputs, {i.name: i.shape for i in session.get_inputs()}),
            ("output", graph.outputs, {o.name: o.shape for o in session.get_outputs()}),
        ):
            if set(declared) != set(actual):
                raise ModelLoadError(
                    f"{self.path}: graph {name!r} has {kind}s {sorted(actual)}, the sidecar says "
                    f"{sorted(declared)}"
                )
            for key, dims in declared.items():
                shape = list(actual[key])
                fixed = [
                    (i, d, g)
                    for i, (d, g) in enumerate(zip(dims, shape, strict=False))
                    if isinstance(d, int) and isinstance(g, int) and d != g
                ]
                if len(dims) != len(shape) or fixed:
                    raise ModelLoadError(
                        f"{self.path}: graph {name!r} {kind} {key!r} has shape {shape}, the "
                        f"sidecar says {dims}"
                    )

    def _self_test(self) -> None:
        spec = self.spec
        image = None
        if spec.image is not None:
            image = np.zeros((spec.image["height"], spec.image["width"], 3), dtype=np.uint8)
        state = np.zeros(len(spec.state_names), dtype=np.float32)
        try:
            self.predict(image, state, instruction="")
        except PolicyOutputError as exc:
            self.invalid_outputs = 0
            raise ModelLoadError(
                f"{self.path}: self-test on a neutral input failed: {exc} (corrupted weights?)"
            ) from exc
        except InputError:
            raise
        except Exception as exc:  # ORT's own types for graphs that cannot run
            raise ModelLoadError(f"{self.path}: self-test inference failed: {exc}") from exc

    # --- inference ------------------------------------------------------------------------------
    def _encoder_feed(
        self,
        image: np.ndarray | None,
        state: np.ndarray,
        instruction: str,
        fov: np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        spec = self.spec
        feed: dict[str, np.ndarray] = {}
        if "image" in self.encoder_inputs:
            if image is None:
                raise InputError(f"{self.path.parent.name} needs a camera image")
            check_rgb(image)
            feed["image"] = to_chw_float(
                prepare_rgb(image, spec.image["height"], spec.image["width"])
            )
        if "state" in self.encoder_inputs:
            feed["state"] = state[None]
        if "instruction_ids" in self.encoder_inputs:
            vocab = spec.instruction or {}
            feed["instruction_ids"] = tokenize(
                [instruction], tuple(vocab.get("vocabulary", ())), int(vocab.get("max_words", 16))
            )
        if "fov" in self.encoder_inputs:
            if fov is None:
                raise InputError(f"{self.path.parent.name} needs the camera FoV (rad, h and v)")
            fov = np.asarray(fov, dtype=np.float32).reshape(1, 2)
            if not np.all(np.isfinite(fov)) or np.any(fov <= 0) or np.any(fov >= np.pi):
                raise InputError(f"camera FoV {fov.tolist()} must be in (0, pi) rad")
            feed["fov"] = fov
        return feed

    def predict(
        self,
        image: np.ndarray | None,
        state: np.ndarray,
        instruction: str = "",
        fov: np.ndarray | None = None,
        noise: np.ndarray | None = None,
        prefix: ChunkPrefix | None = None,
    ) -> np.ndarray:
        """One chunk: (horizon, dims) float32 actions in the action space's units.

        ``prefix``: real-time chunking (runtime/rtc.py): at every DDIM step the predicted clean
        chunk is pulled toward ``prefix.actions`` by ``prefix.weights`` (after CFG)."""
        spec = self.spec
        state = np.asarray(state, dtype=np.float32)
        if state.shape != (len(spec.state_names),):
            raise InputError(
                f"state must have shape ({len(spec.state_names)},) for "
                f"{list(spec.state_names)}, got {state.shape}"
            )
        if not np.all(np.isfinite(state)):
            raise InputError(f"state contains NaN/inf: {state.tolist()}")
        feed = self._encoder_feed(image, state, instruction, fov)
        condition, state_norm = self.sessions["encoder"].run(["condition", "state_norm"], feed)
        shape = (1, spec.horizon, spec.dims)
        if noise is None:
            noise = self._fixed_noise
        x = self.rng.standard_normal(shape).astype(np.float32) if noise is None else noise
        x = np.asarray(x, dtype=np.float32).reshape(shape)
        denoiser = self.sessions["denoiser"]
        batch2 = {
            "condition": np.concatenate([condition, condition]),
            "cond_keep": np.array([1.0, 0.0], dtype=np.float32),
            "state_norm": np.concatenate([state_norm, state_norm]),
            "state_keep": np.ones(2, dtype=np.float32),
            "action_mask": np.ones((2, spec.horizon, spec.dims), dtype=np.float32),
        }
        target = None
        if prefix is not None:
            target = self._normalised_prefix(prefix, state)
        for t in self.schedule.timesteps():
            batch2["noisy_actions"] = np.concatenate([x, x])
            batch2["timestep"] = np.full(2, float(t), dtype=np.float32)
            (eps,) = denoiser.run(["eps"], batch2)
            eps = guided_eps(eps[:1], eps[1:], self.guidance_scale)
            if target is not None:
                eps = guided_x0_eps(x, eps, target, prefix.weights, self.schedule.abar(int(t)))
            x = self.schedule.ddim_step(x, eps, t, self.rng)
        actions = x[0] * self.action_std + self.action_mean
        if spec.action_target == "delta":
            actions = actions + state[None, : spec.dims]
        self._check_output(actions)
        return actions.astype(np.float32)

    def _normalised_prefix(self, prefix: ChunkPrefix, state: np.ndarray) -> np.ndarray:
        """``prefix.actions`` in the denoiser's units (1, horizon, dims)."""
        spec = self.spec
        actions = np.asarray(prefix.actions, dtype=np.float32)
        weights = np.asarray(prefix.weights, dtype=np.float64)
        if actions.shape != (spec.horizon, spec.dims) or weights.shape != (spec.horizon,):
            raise InputError(
                f"RTC prefix must be ({spec.horizon}, {spec.dims}) actions and ({spec.horizon},) "
                f"weights, got {actions.shape} and {weights.shape}"
            )
        if not (np.all(np.isfinite(actions)) and np.all((weights >= 0) & (weights <= 1))):
            raise InputError("RTC prefix actions must be finite and weights in [0, 1]")
        if spec.action_target == "delta":
            actions = actions - state[None, : spec.dims]
        return ((actions - self.action_mean) / self.action_std)[None]

    def _check_output(self, actions: np.ndarray) -> None:
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(actions) | (np.abs(actions) > self.max_abs_action)
        if bad.any():
            self.invalid_outputs += 1
            row, col = (int(v) for v in np.argwhere(bad)[0])
            raise PolicyOutputError(
                f"model returned invalid actions ({int(bad.sum())} of {actions.size}; first "
                f"{self.spec.action_names[col]}={float(actions[row, col])!r} at row {row}); "
                "refusing to pass them on"
            )

    def predict_chunk(
        self,
        image: np.ndarray | None,
        state: np.ndarray,
        observation_stamp: float = 0.0,
        instruction: str = "",
    ) -> ActionChunk:
        """Like :meth:`predict`, wrapped as a validated ActionChunk."""
        spec = self.spec
        return ActionChunk(
            self.predict(image, state, instruction),
            spec.dt,
            spec.action_names,
            spec.action_space,
            observation_stamp,
        )

    def time_inference(
        self, image: np.ndarray | None, state: np.ndarray
    ) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        actions = self.predict(image, state)
        return actions, (time.perf_counter() - start) * 1e3
