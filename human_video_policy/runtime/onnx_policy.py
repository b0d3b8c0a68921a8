"""Run an exported policy with ONNX Runtime: image + joint state in, ActionChunk out.

No torch on this path. The model file carries its own description (metadata_props, see
docs/CONTRACTS.md; keys in policies/model_spec.py), so a node needs only the path: action
space, joint names, horizon, dt and image size are read from the file and checked against the
graph's inputs.

A model's output is never trusted: actions that are NaN/inf, or whose magnitude exceeds
``max_abs_action`` (a blown-up model, e.g. corrupted weights, not a merely bad prediction,
which the executor clamps), raise :class:`PolicyOutputError`, so no chunk is built from them.
At load, one inference on a neutral input (black image, zero state) must give such valid
actions, so a model whose weights are NaN or huge is refused before it runs (ModelLoadError).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from human_video_policy.errors import InputError, ModelLoadError
from human_video_policy.policies.model_spec import parse_onnx_metadata
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.image_ops import check_rgb, prepare_rgb, to_chw_float
from human_video_policy.runtime.providers import open_session

# Largest |action| accepted (rad / m): every joint-space action of this project lies within
# +-2 pi rad or +-1 m, so 100 flags only outputs that no joint can mean (1e30, overflow).
DEFAULT_MAX_ABS_ACTION = 100.0


class PolicyOutputError(InputError):
    """The model returned actions that must not leave the runtime (NaN/inf or absurd)."""


def _check_dim(path: Path, what: str, got: object, expected: int) -> None:
    # Symbolic (dynamic) dims are strings or None: accept them, check numbers.
    if isinstance(got, int) and got != expected:
        raise ModelLoadError(f"{path}: {what} is {got} in the graph but {expected} in metadata")


class OnnxPolicy:
    """An image+state -> action-chunk policy running in an ONNX Runtime session.

    Args:
        model_path: the .onnx file.
        providers: ONNX Runtime execution providers in priority order; default CPU. Unknown
            or unavailable providers are rejected with the list of available ones.
        intra_op_threads: threads for one inference (1 keeps the 10 Hz loop jitter low on
            small machines).
        max_abs_action: largest |action| accepted (see DEFAULT_MAX_ABS_ACTION).
        self_test: run one inference on a neutral input at load and refuse (ModelLoadError)
            a model whose output is not valid (NaN, inf or absurd weights).
    """

    def __init__(
        self,
        model_path: str | Path,
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 1,
        max_abs_action: float = DEFAULT_MAX_ABS_ACTION,
        self_test: bool = True,
    ) -> None:
        if not (np.isfinite(max_abs_action) and max_abs_action > 0):
            raise ModelLoadError(f"max_abs_action={max_abs_action!r} must be finite and > 0")
        self.max_abs_action = float(max_abs_action)
        self.invalid_outputs = 0

        self.path = Path(model_path).expanduser()
        if not self.path.is_file():
            raise ModelLoadError(f"policy model not found: {self.path}")
        self.session = open_session(self.path, providers, intra_op_threads, what="policy model")
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.metadata = parse_onnx_metadata(self.path, props)
        self._check_graph()
        self.providers = self.session.get_providers()
        if self_test:
            self._self_test()

    def _self_test(self) -> None:
        """One inference on a black image and a zero state: weights that are NaN, inf or huge
        show here, and the model is refused before a node can run it."""
        meta = self.metadata
        image = np.zeros((meta.image_height, meta.image_width, 3), dtype=np.uint8)
        try:
            self.predict(image, np.zeros(len(meta.state_names), dtype=np.float32))
        except PolicyOutputError as exc:
            self.invalid_outputs = 0
            raise ModelLoadError(
                f"{self.path}: self-test on a black image and a zero state failed: {exc} "
                "(corrupted weights?)"
            ) from exc
        except Exception as exc:  # ORT raises its own types for graphs that cannot run
            raise ModelLoadError(f"{self.path}: self-test inference failed: {exc}") from exc

    def _check_graph(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if set(inputs) != {"image", "state"} or "actions" not in outputs:
            raise ModelLoadError(
                f"{self.path}: graph inputs {sorted(inputs)} / outputs {sorted(outputs)}; "
                "expected inputs ['image', 'state'] and output 'actions'"
            )
        meta = self.metadata
        image_shape = inputs["image"].shape
        state_shape = inputs["state"].shape
        action_shape = outputs["actions"].shape
        if len(image_shape) != 4 or len(state_shape) != 2 or len(action_shape) != 3:
            raise ModelLoadError(
                f"{self.path}: input/output ranks image{image_shape} state{state_shape} "
                f"actions{action_shape}; expected [B,3,H,W], [B,S], [B,horizon,dims]"
            )
        _check_dim(self.path, "image channels", image_shape[1], 3)
        _check_dim(self.path, "image height", image_shape[2], meta.image_height)
        _check_dim(self.path, "image width", image_shape[3], meta.image_width)
        _check_dim(self.path, "state size", state_shape[1], len(meta.state_names))
        _check_dim(self.path, "action horizon", action_shape[1], meta.horizon)
        _check_dim(self.path, "action dims", action_shape[2], meta.dims)

    def predict(self, image: np.ndarray, state: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 image + (S,) state -> (horizon, dims) float32 actions."""
        check_rgb(image)
        state = np.asarray(state, dtype=np.float32)
        expected = len(self.metadata.state_names)
        if state.shape != (expected,):
            raise InputError(
                f"state must have shape ({expected},) for {list(self.metadata.state_names)}, "
                f"got {state.shape}"
            )
        if not np.all(np.isfinite(state)):
            raise InputError(f"state contains NaN/inf: {state.tolist()}")
        meta = self.metadata
        pixels = to_chw_float(prepare_rgb(image, meta.image_height, meta.image_width))
        (actions,) = self.session.run(["actions"], {"image": pixels, "state": state[None]})
        actions = np.asarray(actions[0], dtype=np.float32)
        if actions.shape != (meta.horizon, meta.dims):
            raise InputError(
                f"model returned actions of shape {actions.shape}, metadata says "
                f"({meta.horizon}, {meta.dims})"
            )
        self._check_output(actions)
        return actions

    def _check_output(self, actions: np.ndarray) -> None:
        """PolicyOutputError (counted in ``invalid_outputs``) unless every action is finite
        and within +-max_abs_action; names the first bad row and column."""
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(actions) | (np.abs(actions) > self.max_abs_action)
        if not bad.any():
            return
        self.invalid_outputs += 1
        row, col = (int(v) for v in np.argwhere(bad)[0])
        value = float(actions[row, col])
        what = "NaN/inf" if not np.isfinite(value) else f"|action| > {self.max_abs_action:g}"
        raise PolicyOutputError(
            f"model returned {what} actions ({int(bad.sum())} of {actions.size} values; first "
            f"{self.metadata.action_names[col]}={value!r} at row {row}); refusing to pass them on"
        )

    def predict_chunk(
        self, image: np.ndarray, state: np.ndarray, observation_stamp: float = 0.0
    ) -> ActionChunk:
        """Like :meth:`predict`, wrapped as a validated ActionChunk."""
        actions = self.predict(image, state)
        meta = self.metadata
        return ActionChunk(
            actions, meta.dt, meta.action_names, meta.action_space, observation_stamp
        )

    def time_inference(self, image: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, float]:
        """Predict and return (actions, milliseconds spent)."""
        start = time.perf_counter()
        actions = self.predict(image, state)
        return actions, (time.perf_counter() - start) * 1e3
