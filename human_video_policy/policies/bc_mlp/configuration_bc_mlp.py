"""Configuration of the behaviour-cloning MLP baseline (``bc_mlp``); no torch here.

The registry (:mod:`human_video_policy.policies.registry`) builds this dataclass from a YAML
mapping without importing torch; :mod:`.modeling_bc_mlp` builds the network from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from human_video_policy.validation import check_int_range


@dataclass(frozen=True)
class BCMLPConfig:
    """Architecture of :class:`~.modeling_bc_mlp.BCMLPPolicy`.

    Attributes:
        image_height, image_width: input image size (pixels).
        state_dim: joint positions in the state input (8 for the WidowX state joints).
        action_dim: joints per action row (7 command joints); the first ``action_dim`` state
            entries must be the same joints (offsets are added to them).
        horizon: action rows per chunk.
        channels: convolution width.
        keypoints: spatial-softmax keypoints (2 coordinates each).
        hidden: MLP width.
        action_space: id of the action space the model predicts (a dataset in another one is
            refused by the trainer).
        image_key: dataset feature of the camera the policy sees (``hvp train``).
    """

    image_height: int = 64
    image_width: int = 64
    state_dim: int = 8
    action_dim: int = 7
    horizon: int = 10
    channels: int = 32
    keypoints: int = 32
    hidden: int = 256
    action_space: str = "widowx_joint_position"
    image_key: str = "observation.images.scene"

    def __post_init__(self) -> None:
        check_int_range("image_height", self.image_height, 16, 512)
        check_int_range("image_width", self.image_width, 16, 512)
        check_int_range("state_dim", self.state_dim, 1)
        check_int_range("action_dim", self.action_dim, 1, self.state_dim)
        check_int_range("horizon", self.horizon, 1)
        check_int_range("channels", self.channels, 1)
        check_int_range("keypoints", self.keypoints, 1)
        check_int_range("hidden", self.hidden, 1)

    def to_dict(self) -> dict:
        return asdict(self)
