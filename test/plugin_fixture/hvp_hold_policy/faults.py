"""A runtime policy that misbehaves on demand, for the policy node's safety tests: each call
reads a mode from the file ``control`` (ok, throw, nan, shape, names, not_a_chunk, hang, slow)
and acts it out; ``hang`` blocks until the file says something else."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from human_video_policy.policies.model_spec import PolicyMetadata
from human_video_policy.robots.widowx import (
    HOME_POSITION,
    WIDOWX_COMMAND_JOINTS,
    WIDOWX_STATE_JOINTS,
)
from human_video_policy.runtime.action_chunk import ActionChunk


class FaultyPolicy:
    needs_image = False

    def __init__(self, control: str) -> None:
        self.control = Path(control)
        self.metadata = PolicyMetadata(
            "widowx_joint_position",
            tuple(WIDOWX_COMMAND_JOINTS),
            tuple(WIDOWX_STATE_JOINTS),
            5,
            0.1,
            0,
            0,
            {"plugin": "hvp_hold_policy.faults"},
        )

    def _mode(self) -> str:
        try:
            return self.control.read_text().strip()
        except OSError:
            return "ok"

    def predict_chunk(self, image, state, observation_stamp: float = 0.0) -> ActionChunk:
        mode = self._mode()
        rows = np.tile(np.asarray(HOME_POSITION, np.float32), (self.metadata.horizon, 1))
        names = self.metadata.action_names
        if mode == "throw":
            raise RuntimeError("CUDA failure: an illegal memory access was encountered")
        if mode == "hang":
            while self._mode() == "hang":
                time.sleep(0.02)
        if mode == "slow":
            time.sleep(0.3)
        if mode == "nan":
            chunk = ActionChunk(rows, 0.1, names, "widowx_joint_position", observation_stamp)
            object.__setattr__(chunk, "actions", np.full_like(rows, np.nan))
            return chunk
        if mode == "shape":
            return ActionChunk(rows[:, :3], 0.1, names[:3], "widowx_joint_position",
                               observation_stamp)  # fmt: skip
        if mode == "not_a_chunk":
            return rows  # a bare array instead of an ActionChunk
        return ActionChunk(rows, 0.1, names, "widowx_joint_position", observation_stamp)


def make_policy(control: str) -> FaultyPolicy:
    return FaultyPolicy(control)
