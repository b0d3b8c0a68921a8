"""A runtime policy that outputs one fixed WidowX pose in every row: the smallest plugin that
implements the interface of human_video_policy/runtime/policy_plugins.py."""

from __future__ import annotations

import numpy as np

from human_video_policy.policies.model_spec import PolicyMetadata
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS
from human_video_policy.runtime.action_chunk import ActionChunk


class HoldPose:
    needs_image = False

    def __init__(self, pose: list[float]) -> None:
        self.pose = np.asarray(pose, dtype=np.float32)
        if self.pose.shape != (len(WIDOWX_COMMAND_JOINTS),):
            raise ValueError(f"pose must have {len(WIDOWX_COMMAND_JOINTS)} values")
        self.metadata = PolicyMetadata(
            "widowx_joint_position",
            tuple(WIDOWX_COMMAND_JOINTS),
            tuple(WIDOWX_STATE_JOINTS),
            10,
            0.1,
            0,
            0,
            {"plugin": "hvp_hold_policy"},
        )
        self.warmed_up = False

    def warmup(self) -> None:
        self.warmed_up = True

    def predict_chunk(self, image, state, observation_stamp: float = 0.0) -> ActionChunk:
        rows = np.tile(self.pose, (self.metadata.horizon, 1))
        return ActionChunk(
            rows, 0.1, self.metadata.action_names, "widowx_joint_position", observation_stamp
        )


def make_policy(pose: list[float]) -> HoldPose:
    return HoldPose(pose)


class MeanColourEncoder:
    """A prompt encoder (human_video_policy/runtime/prompt_encoders.py): one token per frame,
    its mean RGB in [0, 1]. ``nan=True`` makes it return NaN, as a broken model would."""

    def __init__(self, nan: bool = False) -> None:
        self.nan = bool(nan)
        self.encoder_id = "mean_colour-nan" if self.nan else "mean_colour"

    def encode(self, frames: np.ndarray) -> np.ndarray:
        tokens = frames.mean(axis=(1, 2)) / 255.0
        return np.full_like(tokens, np.nan) if self.nan else tokens


def make_prompt_encoder(nan: bool = False) -> MeanColourEncoder:
    return MeanColourEncoder(nan)
