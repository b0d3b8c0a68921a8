"""A method-A (hand + wrist pose) runtime policy that holds one pose: the fingers and the
wrist pose given in its arguments, in every row (policies/action_spaces.py
xhand_wrist_method_a: 12 XHand joints, wrist rotation as 6D, wrist position, base frame)."""

from __future__ import annotations

import numpy as np

from human_video_policy.policies.action_spaces import XHAND_WRIST_METHOD_A, get_action_space
from human_video_policy.policies.model_spec import PolicyMetadata
from human_video_policy.runtime.action_chunk import ActionChunk


class WristHold:
    needs_image = False

    def __init__(self, pose: list[float]) -> None:
        names = get_action_space(XHAND_WRIST_METHOD_A).names
        self.pose = np.asarray(pose, dtype=np.float32)
        if self.pose.shape != (len(names),):
            raise ValueError(f"pose must have {len(names)} values")
        # method A observes what it acts in: the same 21 columns
        self.metadata = PolicyMetadata(
            XHAND_WRIST_METHOD_A, names, names, 5, 0.1, 0, 0, {"plugin": "wrist_hold"}
        )
        self.states: list[np.ndarray] = []

    def predict_chunk(self, image, state, observation_stamp: float = 0.0) -> ActionChunk:
        self.states.append(np.asarray(state))
        rows = np.tile(self.pose, (self.metadata.horizon, 1))
        return ActionChunk(
            rows, 0.1, self.metadata.action_names, XHAND_WRIST_METHOD_A, observation_stamp
        )


def make_policy(pose: list[float]) -> WristHold:
    return WristHold(pose)
