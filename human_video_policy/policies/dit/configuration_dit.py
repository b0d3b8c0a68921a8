"""Configuration of the DiT diffusion policy (VITRA's action expert; method A's denoiser).

No torch here: the config is read by the registry, the trainer's YAML loader and the exported
model's sidecar on machines without torch.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, fields

from human_video_policy.errors import ConfigError
from human_video_policy.policies.diffusion_schedule import DiffusionSchedule
from human_video_policy.policies.instruction_vocab import words as instruction_words
from human_video_policy.validation import (
    check_choice,
    check_int_range,
    check_non_negative,
    check_range,
)

IMAGE_ENCODERS = ("cnn", "resnet18", "resnet34", "none")
LANGUAGE_ENCODERS = ("none", "vocab", "hf")
ACTION_TARGETS = ("absolute", "delta")
PREDICTIONS = ("epsilon", "sample")

# Named sizes: (width, depth, heads). "b" is DiT-B, VITRA's action head.
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (64, 2, 4),
    "small": (192, 4, 4),
    "base": (384, 6, 6),
    "b": (768, 12, 12),
}


@dataclass(frozen=True)
class HeadGroup:
    """One output head over a slice of action dims, with its loss weight (method A splits the
    XHand + wrist action into fingers / wrist rotation (6D) / wrist position).

    Attributes:
        name: head name, used in logged losses (``loss_<name>``).
        start, stop: the action dims [start, stop) this head predicts.
        weight: weight of this head's loss in the total (lambda_f, lambda_r, lambda_p).
    """

    name: str
    start: int
    stop: int
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ConfigError(f"head name {self.name!r} is invalid: letters, digits and _ only")
        check_int_range(f"heads.{self.name}.start", self.start, 0)
        check_int_range(f"heads.{self.name}.stop", self.stop, self.start + 1)
        check_range(f"heads.{self.name}.weight", self.weight, 0.0, 1e6)


def _words(value: object) -> tuple[str, ...]:
    """The vocabulary as a tuple of distinct non-empty words (a bare string is refused: it
    would become its letters)."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"vocabulary={value!r} must be a list of words")
    words = tuple(value)
    bad = [w for w in words if not isinstance(w, str) or instruction_words(w) != [w]]
    if bad:
        raise ConfigError(
            f"vocabulary entries {bad[:5]!r} are not words as instructions are split into "
            "(lower-case letters and digits)"
        )
    if len(set(words)) != len(words):
        raise ConfigError("vocabulary has repeated words")
    return words


def _head_groups(value: object, action_space: str) -> tuple[HeadGroup, ...]:
    """``heads_split`` as HeadGroups, from HeadGroups or mappings (YAML), or ``"groups"``: one
    head per group of the action space (method A: fingers / wrist rotation 6D / position)."""
    if value == "groups":
        from human_video_policy.policies.action_spaces import get_action_space

        groups = get_action_space(action_space).groups
        if not groups:
            raise ConfigError(
                f"heads_split='groups': action space {action_space!r} defines no groups"
            )
        return tuple(HeadGroup(name, start, stop) for name, start, stop in groups)
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(
            f"heads_split={value!r} must be 'groups' or a list of {{name, start, stop, weight}}"
        )
    heads = []
    for i, head in enumerate(value):
        if isinstance(head, HeadGroup):
            heads.append(head)
            continue
        known = {f.name for f in fields(HeadGroup)}
        if not isinstance(head, dict) or not {"name", "start", "stop"} <= set(head) <= known:
            raise ConfigError(
                f"heads_split[{i}]={head!r} must be a mapping with name, start, stop and an "
                "optional weight"
            )
        heads.append(HeadGroup(**head))
    return tuple(heads)


@dataclass(frozen=True)
class DiTConfig:
    """The DiT action expert and what conditions it.

    Attributes:
        action_space: id of the action space the model predicts (policies/action_spaces.py);
            a dataset whose action space differs is refused.
        action_dim: action dims per row.
        horizon: action rows per chunk (VITRA: 16).
        state_dim: proprioceptive state size (0: no state token).
        action_target: ``"absolute"`` (VITRA) or ``"delta"``: the model predicts
            ``action - state[:action_dim]`` (the action names must be the first state names),
            and the sampler adds the state back; helps joint-space reaching.
        size: a named size (tiny, small, base, b = DiT-B 768x12x12) or ``"custom"`` for
            ``width``/``depth``/``heads`` below.
        width, depth, heads: transformer width, blocks and attention heads (``size=custom``).
        mlp_ratio: feed-forward width / width.
        causal: causal self-attention over action tokens (VITRA); False: bidirectional (the
            ablation).
        condition_tokens: tokens the condition encoders hand to the denoiser (image tokens are
            pooled to this many).
        image_encoder: ``"cnn"`` (small CNN trained from scratch), ``"resnet18"``/``"resnet34"``
            (ResNet-sized, from scratch), or ``"none"``.
        image_size: (height, width) the encoder takes; inputs are resized to it at run time.
        image_key: dataset feature of the camera the policy sees.
        image_channels: CNN width (``cnn``) / base width (ResNets: 64 is the standard).
        language_encoder: ``"none"``, ``"vocab"`` (a small encoder trained on the project's
            own instruction vocabulary: nothing to download) or ``"hf"`` (a text or
            vision-language model from a local Hugging Face directory, ``hf_model_path``).
        vocabulary: the words the ``vocab`` encoder knows (index 0 is padding, 1 unknown);
            filled from the training data when empty.
        max_words: instruction length in words (longer ones are cut).
        hf_model_path: local directory of a transformers model for ``language_encoder=hf``.
        fov_token: add VITRA's camera-FoV token (an MLP of the horizontal and vertical FoV).
        train_steps, noise_schedule, inference_steps, eta, clip_sample: the diffusion
            schedule (see diffusion_schedule.py).
        prediction: what the network outputs: ``"epsilon"`` (the added noise, VITRA and DDPM) or
            ``"sample"`` (the clean chunk, diffusers' ``prediction_type="sample"``; learns a
            near-deterministic mapping much faster). Either way the exported denoiser graph
            returns the noise, so the runtime's DDIM loop is the same.
        guidance_scale: classifier-free guidance at inference (VITRA: 5.0; 1.0 = none).
        condition_dropout: probability of dropping the condition in training (CFG; VITRA 0.1).
        state_dropout: probability of dropping the state token in training (VITRA 0.1).
        heads_split: output heads over action dims with loss weights; empty: one head;
            ``"groups"``: one head (weight 1) per group of the action space, e.g. method A's
            fingers / wrist rotation (6D) / wrist position of ``xhand_wrist_method_a``.
    """

    action_space: str = "widowx_joint_position"
    action_dim: int = 7
    horizon: int = 16
    state_dim: int = 8
    action_target: str = "absolute"
    size: str = "small"
    width: int = 192
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    causal: bool = True
    condition_tokens: int = 4
    image_encoder: str = "cnn"
    image_size: tuple[int, int] = (64, 64)
    image_key: str = "observation.images.scene"
    image_channels: int = 32
    language_encoder: str = "none"
    vocabulary: tuple[str, ...] = ()
    max_words: int = 16
    hf_model_path: str = ""
    fov_token: bool = False
    train_steps: int = 100
    noise_schedule: str = "cosine"
    inference_steps: int = 10
    eta: float = 0.0
    clip_sample: float = 0.0
    prediction: str = "epsilon"
    guidance_scale: float = 5.0
    condition_dropout: float = 0.1
    state_dropout: float = 0.1
    heads_split: tuple[HeadGroup, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("causal", "fov_token"):  # "false" from YAML/CLI would read as True
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be true or false")
        for name in ("action_space", "image_key", "hf_model_path"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a string")
        if not self.action_space:
            raise ConfigError("action_space must name an action space")
        check_int_range("action_dim", self.action_dim, 1, 4096)
        check_int_range("horizon", self.horizon, 1, 1024)
        check_int_range("state_dim", self.state_dim, 0, 4096)
        check_choice("action_target", self.action_target, ACTION_TARGETS)
        if self.action_target == "delta" and self.state_dim < self.action_dim:
            raise ConfigError(
                f"action_target='delta' needs state_dim >= action_dim (the state starts with the "
                f"action joints), got state_dim={self.state_dim}, action_dim={self.action_dim}"
            )
        check_choice("size", self.size, (*SIZES, "custom"))
        if self.size != "custom":
            width, depth, heads = SIZES[self.size]
            given = (self.width, self.depth, self.heads)
            if given not in ((width, depth, heads), SIZES["small"]):
                raise ConfigError(
                    f"size={self.size!r} sets width/depth/heads to {(width, depth, heads)}, but "
                    f"{given} were given: use size='custom' to set them"
                )
            object.__setattr__(self, "width", width)
            object.__setattr__(self, "depth", depth)
            object.__setattr__(self, "heads", heads)
        check_int_range("width", self.width, 8, 8192)
        check_int_range("depth", self.depth, 1, 64)
        check_int_range("heads", self.heads, 1, 128)
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ConfigError(f"width={self.width} must split into heads={self.heads} of even size")
        check_range("mlp_ratio", self.mlp_ratio, 0.25, 16.0)
        check_int_range("condition_tokens", self.condition_tokens, 1, 256)
        check_choice("image_encoder", self.image_encoder, IMAGE_ENCODERS)
        size = tuple(self.image_size)
        if len(size) != 2:
            raise ConfigError(f"image_size={self.image_size!r} must be (height, width)")
        check_int_range("image_size[0]", size[0], 16, 1024)
        check_int_range("image_size[1]", size[1], 16, 1024)
        object.__setattr__(self, "image_size", size)
        check_int_range("image_channels", self.image_channels, 4, 512)
        check_choice("language_encoder", self.language_encoder, LANGUAGE_ENCODERS)
        object.__setattr__(self, "vocabulary", _words(self.vocabulary))
        check_int_range("max_words", self.max_words, 1, 512)
        if self.language_encoder == "hf" and not self.hf_model_path:
            raise ConfigError("language_encoder='hf' needs hf_model_path (a local directory)")
        if self.image_encoder == "none" and self.language_encoder == "none" and not self.fov_token:
            raise ConfigError(
                "the policy has no condition: set image_encoder, language_encoder or fov_token"
            )
        self.schedule  # validates the diffusion fields  # noqa: B018
        check_choice("prediction", self.prediction, PREDICTIONS)
        check_range("guidance_scale", self.guidance_scale, 0.0, 100.0)
        check_range("condition_dropout", self.condition_dropout, 0.0, 1.0)
        check_range("state_dropout", self.state_dropout, 0.0, 1.0)
        heads = _head_groups(self.heads_split, self.action_space)
        if heads:
            spans = sorted(heads, key=lambda h: h.start)
            contiguous = all(a.stop == b.start for a, b in itertools.pairwise(spans))
            if spans[0].start != 0 or spans[-1].stop != self.action_dim or not contiguous:
                raise ConfigError(
                    f"heads_split {[(h.name, h.start, h.stop) for h in heads]} must cover the "
                    f"action dims 0..{self.action_dim} exactly once, in contiguous slices"
                )
            if len({h.name for h in heads}) != len(heads):
                raise ConfigError("heads_split names must be unique")
        object.__setattr__(self, "heads_split", heads)
        check_non_negative("eta", self.eta)

    @property
    def schedule(self) -> DiffusionSchedule:
        return DiffusionSchedule(
            train_steps=self.train_steps,
            kind=self.noise_schedule,
            inference_steps=self.inference_steps,
            eta=self.eta,
            clip_sample=self.clip_sample,
        )

    @property
    def head_groups(self) -> tuple[HeadGroup, ...]:
        """The output heads (one ``all`` head when ``heads_split`` is empty)."""
        return self.heads_split or (HeadGroup("all", 0, self.action_dim, 1.0),)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["image_size"] = list(self.image_size)
        out["vocabulary"] = list(self.vocabulary)
        out["heads_split"] = [asdict(h) for h in self.heads_split]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> DiTConfig:
        """Build from a dict (YAML, checkpoint, sidecar); unknown keys are refused by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown DiT config fields {unknown}; valid: {sorted(known)}")
        return cls(**data)
