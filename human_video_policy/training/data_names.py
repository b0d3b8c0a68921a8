"""The names and timing of a run's actions and states, read from its data sources.

An exported policy says what each action and state dim is (joint names, or the human space's
names) and its dt; they come from the data the model was trained on. The trainer stores them in
every checkpoint, so `hvp export` can name them where the training data is not at hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from human_video_policy.errors import ConfigError


@dataclass(frozen=True)
class DataNames:
    """What an exported policy says about its inputs and outputs, from the training data."""

    action_names: tuple[str, ...]
    state_names: tuple[str, ...]
    dt: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "action_names": list(self.action_names),
            "state_names": list(self.state_names),
            "dt": self.dt,
        }

    @classmethod
    def from_dict(cls, data: Any) -> DataNames:
        """From a checkpoint's ``data_names``; ConfigError naming what is wrong."""
        if not isinstance(data, Mapping) or set(data) != {"action_names", "state_names", "dt"}:
            raise ConfigError("must be {action_names, state_names, dt}")
        for key in ("action_names", "state_names"):
            names = data[key]
            if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                raise ConfigError(f"{key} must be a list of names")
        dt = data["dt"]
        if (
            isinstance(dt, bool)
            or not isinstance(dt, int | float)
            or not (math.isfinite(dt) and dt > 0)
        ):
            raise ConfigError(f"dt={dt!r} must be a positive number of seconds")
        return cls(tuple(data["action_names"]), tuple(data["state_names"]), float(dt))


def data_names(sources: list[Any]) -> DataNames:
    """Names and dt of the first training source (DemoDataset or ChunkDataset)."""
    if not sources:
        raise ConfigError("the run has no data sources to read the action and state names from")
    source = sources[0]
    if hasattr(source, "action_names") and hasattr(source, "state_names"):  # reach demos
        return DataNames(tuple(source.action_names), tuple(source.state_names), 0.1)
    reader = getattr(source, "reader", None)
    if reader is None:
        raise ConfigError(f"cannot read action/state names from {type(source).__name__}")
    config = getattr(source, "config", None)
    if getattr(config, "action_space", "native") == "human":
        from human_video_policy.policies.action_spaces import HUMAN_HAND_102, get_action_space

        names = get_action_space(HUMAN_HAND_102).names
        return DataNames(tuple(names), tuple(names), 1.0 / float(reader.info["fps"]))
    return DataNames(
        tuple(reader.names("action")),
        tuple(reader.names("observation.state")),
        1.0 / float(reader.info["fps"]),
    )
