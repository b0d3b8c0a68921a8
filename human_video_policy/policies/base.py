"""The policy interface every chunk source implements: observation in -> ActionChunk out.

Why one protocol: the sim evaluation, demo recording, the policy node and the benchmarks drive
an exported ONNX policy, a scripted expert or a torch model the same way, so any of them can
replace another. Chunk timing and units follow docs/CONTRACTS.md (row ``i`` is the target for
``observation_stamp + (i + 1) * dt``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from human_video_policy.runtime.action_chunk import ActionChunk


@runtime_checkable
class Policy(Protocol):
    """Anything that turns one observation into a chunk of actions (OnnxPolicy, the scripted
    expert sources, a torch model behind a wrapper...).

    ``image``: HxWx3 uint8 RGB of the policy camera; ``state``: the robot's measured joints in
    its state order; ``observation_stamp``: time (s) of the observation, copied into the chunk.
    """

    def predict_chunk(
        self, image: np.ndarray, state: np.ndarray, observation_stamp: float = 0.0
    ) -> ActionChunk: ...


__all__ = ["ActionChunk", "Policy"]
