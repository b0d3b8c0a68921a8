"""Runtime policies by name: what ``policy_node`` runs, swappable without editing this project.

The interface a runtime policy implements (duck-typed, as the built-in ones do):

- ``metadata``: :class:`~human_video_policy.policies.model_spec.PolicyMetadata` (action space
  and names, state names, horizon, dt, image size; 0 x 0 = no image needed);
- ``predict_chunk(image, state, observation_stamp) -> ActionChunk`` (image: HxWx3 uint8 RGB or
  None, state: the metadata's state joints, float32);
- optional: ``providers`` (ONNX Runtime providers in use, for reports), ``needs_image``
  (default True), ``reset()`` (a new episode), ``warmup()`` (called once before the node
  reports ready; without it the node runs one inference on a zero observation);
- optional inputs, each passed to ``predict_chunk`` as a keyword when the policy sets the
  flag: ``needs_depth`` (``depth=``: HxW float32 metres, aligned to the colour image),
  ``needs_prompt`` (``prompt=``: the (tokens, dims) float32 prompt embedding; with
  ``prompt_encoder_id`` set, an embedding of another encoder is refused),
  ``needs_sim_state`` (``sim_state=``: the simulator's privileged state, sim only),
  ``needs_instruction`` (``instruction=``: the task instruction, a str).

A runtime policy is made by a factory ``factory(**arguments)``, registered under a name. The
built-in ones: ``exported`` (``path=``: a ``hvp export`` directory or a .onnx file, through
:func:`~human_video_policy.runtime.load_policy.load_policy`, plus the model's options such as
a diffusion policy's ``inference_steps``), ``replay`` (``dataset=``, ``episode=``: plays a
dataset episode's recorded actions back at their rate, for checking a graph with known motion)
and ``scripted_expert`` (``task=``, ``robot=``: the benchmark task's privileged expert fed by
the sim's /sim/state, sim/scripted_expert_policy.py; registered through this package's own
entry point, as it lives in a layer above this one). Outside packages add their own through
the entry-point group :data:`ENTRY_POINT_GROUP`, e.g. in their ``pyproject.toml``::

    [project.entry-points."human_video_policy.runtime_policies"]
    my_policy = "my_package.runtime:make_policy"

and are selected by ``policy_node``'s ``policy:=my_policy`` with ``policy_args`` (a JSON object
of keyword arguments). A plugin that fails to import is reported with its name and error when it
is asked for (``ConfigError``), and never breaks the built-in names.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from human_video_policy.errors import ConfigError, HvpError, InputError, ModelLoadError
from human_video_policy.policies.model_spec import PolicyMetadata
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.plugin_registry import PluginGroup
from human_video_policy.validation import check_int_range, check_positive

ENTRY_POINT_GROUP = "human_video_policy.runtime_policies"


class ReplayPolicy:
    """Plays episode ``episode`` of the LeRobot-v3 dataset ``dataset``: the chunk for an
    observation at time t holds the recorded actions from the row at ``t - t0`` (t0: the first
    observation after a reset) on; past the end it holds the last row."""

    needs_image = False

    def __init__(self, dataset: str, episode: int = 0, horizon: int = 10) -> None:
        self.providers = ["none (replay)"]
        from human_video_policy.data.dataset_reader import DatasetReader

        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ConfigError(f"horizon={horizon!r} is invalid: must be an integer >= 1")
        reader = DatasetReader(dataset)
        if isinstance(episode, bool) or not isinstance(episode, int):
            raise ConfigError(f"episode={episode!r} is invalid: must be an integer")
        if not 0 <= episode < reader.num_episodes:
            raise ConfigError(
                f"episode={episode!r} is invalid: {dataset} has {reader.num_episodes} episodes"
            )
        self.actions = reader.episode_rows(episode, ["action"])["action"].astype(np.float32)
        if not np.all(np.isfinite(self.actions)):
            raise InputError(f"{dataset} episode {episode}: recorded actions hold NaN/inf")
        self.metadata = PolicyMetadata(
            action_space=reader.spec.action_space,
            action_names=tuple(reader.names("action")),
            state_names=tuple(reader.names("observation.state")),
            horizon=horizon,
            dt=1.0 / reader.fps,
            image_height=0,
            image_width=0,
            training={"replay": str(dataset), "episode": episode},
        )
        self._start: float | None = None

    def reset(self) -> None:
        self._start = None

    def predict_chunk(self, image, state, observation_stamp: float = 0.0) -> ActionChunk:
        if not np.isfinite(observation_stamp):
            raise InputError(f"observation_stamp={observation_stamp!r} is not finite")
        if self._start is None:
            self._start = observation_stamp
        meta = self.metadata
        first = round((observation_stamp - self._start) / meta.dt) + 1
        rows = np.clip(np.arange(first, first + meta.horizon), 0, len(self.actions) - 1)
        return ActionChunk(
            self.actions[rows], meta.dt, meta.action_names, meta.action_space, observation_stamp
        )


def _exported(path: str, providers=None, intra_op_threads: int = 1, **kwargs: Any):
    """``load_policy(path, ...)``. Only the caller's own arguments are blamed on policy_args:
    they are bound to the loader's signature and type-checked first (a TypeError there is the
    registry's "bad policy_args", a ConfigError names the argument); whatever goes wrong after
    that is the model's: its HvpError passes through, anything else (a stray TypeError from a
    damaged file) becomes a ModelLoadError naming the model."""
    from human_video_policy.runtime.diffusion_policy import DiffusionPolicy
    from human_video_policy.runtime.load_policy import load_policy

    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ConfigError(f"path={path!r} must name an exported policy (directory or .onnx)")
    if providers is not None and (
        isinstance(providers, str)
        or not isinstance(providers, (list, tuple))
        or not all(isinstance(p, str) for p in providers)
    ):
        raise ConfigError(f"providers={providers!r} must be a list of execution provider names")
    check_int_range("intra_op_threads", intra_op_threads, 1, 1024)
    if "max_abs_action" in kwargs:
        check_positive("max_abs_action", kwargs["max_abs_action"])
    # TypeError for an unknown or doubled keyword: the caller's.
    inspect.signature(DiffusionPolicy).bind(path, providers, intra_op_threads, **kwargs)
    try:
        return load_policy(path, providers, intra_op_threads, **kwargs)
    except HvpError:
        raise
    except Exception as exc:  # the model's fault once the arguments were checked
        raise ModelLoadError(
            f"{path}: cannot load the policy: {type(exc).__name__}: {exc}"
        ) from exc


BUILT_IN: dict[str, Callable[..., Any]] = {"exported": _exported, "replay": ReplayPolicy}


RUNTIME_POLICIES = PluginGroup(ENTRY_POINT_GROUP, BUILT_IN, "policy", "policy", "policy_args")


def runtime_policy_names() -> list[str]:
    """The built-in names and those of the installed plugins."""
    return RUNTIME_POLICIES.names()


def parse_policy_args(text: str) -> dict[str, Any]:
    """``policy_args``: a JSON object of keyword arguments ("" = none)."""
    return RUNTIME_POLICIES.parse_args(text)


def make_runtime_policy(name: str, **arguments: Any):
    """The runtime policy ``name`` made with ``arguments``; checked to implement the
    interface (module docstring), with a ConfigError naming what is wrong otherwise."""
    policy = RUNTIME_POLICIES.make(name, **arguments)
    meta = getattr(policy, "metadata", None)
    if not isinstance(meta, PolicyMetadata) or not callable(getattr(policy, "predict_chunk", None)):
        raise ConfigError(
            f"policy {name!r} does not implement the runtime policy interface: it needs a "
            "PolicyMetadata `metadata` and `predict_chunk(image, state, observation_stamp)`"
        )
    return policy
