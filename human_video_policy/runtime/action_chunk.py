"""ActionChunk: the pure-Python twin of ``human_video_policy_msgs/ActionChunk``.

A policy predicts ``horizon`` future actions of ``dims`` values each, ``dt`` seconds apart,
from one observation taken at ``observation_stamp`` (seconds). Nodes convert it to and from the
ROS message; the core only ever sees this validated object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from human_video_policy.errors import InputError


@dataclass(frozen=True)
class ActionChunk:
    """A validated (horizon, dims) block of future actions.

    Attributes:
        actions: float32 array, shape (horizon, dims); row i targets
            ``observation_stamp + (i + 1) * dt``. Units: rad / m (REP-103) per ``names``.
        dt: seconds between rows, > 0.
        names: one name per column (joint names for joint-space action spaces).
        action_space: id of the action space, e.g. ``"widowx_joint_position"``.
        observation_stamp: time (s, ROS or sim clock) of the observation it was computed from.
        frame_id: frame of Cartesian columns; empty for joint spaces.
    """

    actions: np.ndarray
    dt: float
    names: tuple[str, ...]
    action_space: str
    observation_stamp: float = 0.0
    frame_id: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        actions = np.asarray(self.actions, dtype=np.float32)
        if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] < 1:
            raise InputError(
                "ActionChunk.actions must have shape (horizon >= 1, dims >= 1), "
                f"got {actions.shape}"
            )
        if not np.all(np.isfinite(actions)):
            bad = np.argwhere(~np.isfinite(actions))[0]
            raise InputError(
                f"ActionChunk.actions contains NaN/inf (first at row {bad[0]}, column {bad[1]}"
                f" '{self.names[bad[1]] if bad[1] < len(self.names) else '?'}')"
            )
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise InputError(f"ActionChunk.dt={self.dt!r} is invalid: must be a finite number > 0")
        if len(self.names) != actions.shape[1]:
            raise InputError(
                f"ActionChunk has {actions.shape[1]} columns but {len(self.names)} names"
            )
        if not self.action_space:
            raise InputError("ActionChunk.action_space must not be empty")
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "names", tuple(self.names))

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[0])

    @property
    def dims(self) -> int:
        return int(self.actions.shape[1])

    @classmethod
    def from_flat(
        cls,
        data: np.ndarray | list[float],
        horizon: int,
        dims: int,
        dt: float,
        names: list[str] | tuple[str, ...],
        action_space: str,
        observation_stamp: float = 0.0,
        frame_id: str = "",
    ) -> ActionChunk:
        """Build from the message layout (row-major flat data + horizon + dims)."""
        flat = np.asarray(data, dtype=np.float32).ravel()
        if horizon < 1 or dims < 1 or flat.size != horizon * dims:
            raise InputError(
                f"ActionChunk data has {flat.size} values but horizon x dims = {horizon} x {dims}"
            )
        return cls(
            flat.reshape(horizon, dims), dt, tuple(names), action_space, observation_stamp, frame_id
        )
