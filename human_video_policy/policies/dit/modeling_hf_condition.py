"""Condition tokens for the DiT from a text or vision-language model in a LOCAL Hugging Face
directory, conditioned the VITRA way (sections 4.1.1 and A.2.1).

VITRA feeds a VLM (PaliGemma-2: SigLIP + Gemma-2) the image and the instruction, plus two extra
input embeddings: a camera-FoV token (an MLP of the FoV, projected into the LLM's input
embedding space) and a learnable "cognition" token appended at the end, whose output feature
f^c conditions the action expert. :class:`HFConditionEncoder` does exactly that on any model
that ``transformers`` loads from a directory:

    input embeddings = [FoV token] [image tokens] [instruction tokens, right-padded] [cognition]

The sequence runs through the backbone with ``inputs_embeds`` + an attention mask (padding is
masked; position ids count only real tokens, so the padding length changes nothing), and the last
hidden state at the cognition position (always the last one) is projected by a Linear to the
DiT's width: (B, n_tokens, width) condition tokens (n_tokens = 1, or 2 with ``pool_text``: the
masked mean of the instruction tokens' hidden states through its own Linear).

What loads:
- text models: any ``AutoModel`` that takes ``inputs_embeds`` (Llama, Gemma, Qwen2, GPT-2, ...);
- vision-language models: PaliGemma / PaliGemma-2 (``model_type == "paligemma"``, loaded as
  ``PaliGemmaModel``): image tokens from ``get_image_features`` (SigLIP + projector), and the
  image + FoV + instruction prefix attends bidirectionally (PaliGemma's prefix-LM mask) while the
  cognition token attends to all of it. Other vision-language types are refused by name.

Freezing (VITRA trains the VLM and the cognition token, keeps the vision encoder frozen, and
warms up the cognition/FoV mappings first): ``freeze_backbone=True`` (default) trains only the
cognition token, the FoV MLP and the projection(s); ``freeze_backbone=False`` also trains the
language model (and PaliGemma's projector), the vision tower stays frozen unless
``freeze_vision=False``. Frozen modules are kept in eval mode.

Nothing is downloaded: every load passes ``local_files_only=True`` and a missing directory or
one that is not a transformers model raises :class:`ModelLoadError` naming the directory.
``transformers`` is imported only when an encoder is built.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from human_video_policy.errors import ConfigError, InputError, ModelLoadError

VLM_TYPES = ("paligemma",)  # vision-language model types whose image path is implemented
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _load_backbone(path: Path, dtype: torch.dtype | None, attn_implementation: str | None):
    """(config, model, tokenizer) from a local transformers directory, or ModelLoadError."""
    if not path.exists():
        raise ModelLoadError(f"Hugging Face model directory {path} does not exist")
    if not path.is_dir():
        raise ModelLoadError(f"Hugging Face model path {path} is not a directory")
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{path} is not a transformers model directory: it has no config.json (write one with "
            f"model.save_pretrained('{path}'))"
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelLoadError(
            f"{path} is not a transformers model directory: it has no weights "
            f"({' / '.join(WEIGHT_FILES)})"
        )
    try:
        from transformers import AutoConfig, AutoModel, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - transformers is in requirements/core.txt
        raise ModelLoadError(
            f"loading {path} needs the transformers package (requirements/core.txt): {exc}"
        ) from exc
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"{path}/config.json is not a transformers model config: {exc}"
        ) from exc
    if getattr(config, "vision_config", None) is not None and config.model_type not in VLM_TYPES:
        raise ModelLoadError(
            f"{path} holds a vision-language model of type {config.model_type!r}; the image path "
            f"is implemented for {list(VLM_TYPES)} (text models of any type load)"
        )
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModel.from_pretrained(str(path), config=config, **kwargs)
    except Exception as exc:  # corrupt weights raise library-specific types (SafetensorError)
        raise ModelLoadError(f"cannot load the transformers model in {path}: {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"{path} has no usable tokenizer (tokenizer.json / tokenizer_config.json): {exc}"
        ) from exc
    if isinstance(tokenizer, bool) or not callable(tokenizer):
        raise ModelLoadError(f"{path} has no usable tokenizer")
    return config, model, tokenizer


def _image_norm(path: Path) -> tuple[list[float], list[float]]:
    """The image processor's mean/std (preprocessor_config.json), SigLIP's 0.5/0.5 without one."""
    file = path / "preprocessor_config.json"
    mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    if file.is_file():
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{file} is not valid JSON: {exc}") from exc
        mean = list(data.get("image_mean", mean))
        std = list(data.get("image_std", std))
    return mean, std


class HFConditionEncoder(nn.Module):
    """Cognition-token condition encoder over a local Hugging Face text or vision-language model.

    Args:
        model_path: local directory written by ``save_pretrained`` (config.json, weights,
            tokenizer files; preprocessor_config.json for a VLM's image normalisation).
        width: the DiT width the condition tokens are projected to.
        fov_token: insert VITRA's camera-FoV token: an MLP of (horizontal, vertical) FoV in
            radians to the LM's hidden size, first in the input sequence.
        freeze_backbone: train only the cognition token, the FoV MLP and the projection(s);
            False also trains the language model (the vision tower stays frozen unless
            ``freeze_vision=False``).
        max_length: instruction tokens after tokenisation (padded / cut to it: fixed shapes).
        freeze_vision: keep a VLM's vision tower frozen (VITRA) when the backbone is trained.
        pool_text: add a second condition token, the masked mean of the instruction tokens'
            last hidden states through its own Linear.
        dtype: dtype the backbone is loaded in (float32 by default: CPU training and export);
            the added modules stay float32.
        attn_implementation: passed to ``from_pretrained`` (``"eager"``, ``"sdpa"``, ...).
    """

    def __init__(
        self,
        model_path: str,
        width: int,
        fov_token: bool,
        freeze_backbone: bool = True,
        max_length: int = 32,
        *,
        freeze_vision: bool = True,
        pool_text: bool = False,
        dtype: torch.dtype | None = torch.float32,
        attn_implementation: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ConfigError(f"width must be a positive int, got {width!r}")
        if not isinstance(max_length, int) or not 1 <= max_length <= 8192:
            raise ConfigError(f"max_length must be an int in [1, 8192], got {max_length!r}")
        self.model_path = Path(model_path).expanduser().resolve()
        config, backbone, tokenizer = _load_backbone(self.model_path, dtype, attn_implementation)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.model_type = str(config.model_type)
        self.is_vlm = self.model_type in VLM_TYPES
        self.hidden_size = int(config.get_text_config().hidden_size)
        self.width = width
        self.max_length = max_length
        self.fov_token = bool(fov_token)
        self.pool_text = bool(pool_text)
        self.freeze_backbone = bool(freeze_backbone)
        self.freeze_vision = bool(freeze_vision)
        self.n_tokens = 2 if self.pool_text else 1
        # PaliGemma counts positions from 1; the other models from 0.
        self._position_offset = 1 if self.model_type == "paligemma" else 0
        params = inspect.signature(backbone.forward).parameters
        self._takes_position_ids = "position_ids" in params
        self._takes_token_types = self.is_vlm and "token_type_ids" in params

        # Tokenizer: right padding to max_length; a pad token if the model has none (padding is
        # masked, so which id pads does not matter as long as it is inside the vocabulary).
        tokenizer.padding_side = "right"
        if tokenizer.pad_token is None:
            fallback = tokenizer.eos_token or tokenizer.unk_token or tokenizer.bos_token
            tokenizer.pad_token = fallback or tokenizer.convert_ids_to_tokens(0)

        embed = backbone.get_input_embeddings()
        scale = float(getattr(embed, "scalar_embed_scale", 1.0))
        std = float(embed.weight.detach().float().std()) * scale
        h = self.hidden_size
        self.cognition = nn.Parameter(torch.randn(h) * std)
        self.fov_mlp = (
            nn.Sequential(nn.Linear(2, h), nn.SiLU(), nn.Linear(h, h)) if self.fov_token else None
        )
        self.proj = nn.Linear(h, width)
        self.text_proj = nn.Linear(h, width) if self.pool_text else None

        if self.is_vlm:
            vision = getattr(config, "vision_config", None)
            self.image_size = int(getattr(vision, "image_size", 224))
            mean, std_ = _image_norm(self.model_path)
            self.register_buffer("pixel_mean", torch.tensor(mean).reshape(1, 3, 1, 1))
            self.register_buffer("pixel_std", torch.tensor(std_).reshape(1, 3, 1, 1))
        else:
            self.image_size = 0

        backbone.requires_grad_(not self.freeze_backbone)
        if self._vision_tower() is not None and self.freeze_vision:
            self._vision_tower().requires_grad_(False)
        self.train(self.training)

    # --- helpers -------------------------------------------------------------------------------
    def _vision_tower(self) -> nn.Module | None:
        return getattr(self.backbone, "vision_tower", None) if self.is_vlm else None

    def train(self, mode: bool = True) -> HFConditionEncoder:
        """Train mode for the trainable parts; frozen modules stay in eval (no dropout)."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        elif self._vision_tower() is not None and self.freeze_vision:
            self._vision_tower().eval()
        return self

    def trainable_parameter_names(self) -> list[str]:
        return [name for name, p in self.named_parameters() if p.requires_grad]

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Instructions -> {"input_ids", "attention_mask"}: (B, max_length) int64, right-padded."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InputError(f"tokenize takes a list of strings, got {type(texts).__name__}")
        enc = self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {
            "input_ids": enc["input_ids"].long(),
            "attention_mask": enc["attention_mask"].long(),
        }

    def prepare_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] -> the VLM's pixel_values: resized to image_size (no
        crop, as VITRA) and normalised with the image processor's mean/std."""
        if not self.is_vlm:
            raise InputError(f"{self.model_path} is a text model ({self.model_type}): no images")
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        size = (self.image_size, self.image_size)
        x = images.float()
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return (x - self.pixel_mean) / self.pixel_std

    def _image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.backbone.get_image_features(pixel_values.to(self._dtype()))
        feats = getattr(out, "pooler_output", out)
        if not isinstance(feats, torch.Tensor) or feats.ndim != 3:
            raise ModelLoadError(
                f"{self.model_path}: get_image_features gave {type(feats).__name__}, expected "
                f"(B, tokens, {self.hidden_size}) image tokens"
            )
        return feats

    def _dtype(self) -> torch.dtype:
        return self.backbone.get_input_embeddings().weight.dtype

    # --- forward -------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        fov: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """-> (B, n_tokens, width) condition tokens.

        input_ids, attention_mask: (B, L) from :meth:`tokenize` (right padding; L may differ
        from max_length). pixel_values: (B, 3, S, S) for a VLM (see :meth:`prepare_pixels`);
        None runs a VLM on text (+ FoV) only. fov: (B, 2) horizontal and vertical FoV in
        radians, required when ``fov_token`` is on.
        """
        if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
            raise InputError(
                f"input_ids {tuple(input_ids.shape)} and attention_mask "
                f"{tuple(attention_mask.shape)} must both be (B, L)"
            )
        b = input_ids.shape[0]
        dtype = self._dtype()
        text = self.backbone.get_input_embeddings()(input_ids.long())
        text_mask = attention_mask.long()
        embeds: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        ones = torch.ones(b, 1, dtype=torch.long, device=input_ids.device)

        if self.fov_mlp is not None:
            if fov is None:
                raise InputError("the condition encoder needs the camera FoV (fov_token=True)")
            if fov.shape != (b, 2):
                raise InputError(f"fov must be (B, 2) radians, got {tuple(fov.shape)}")
            embeds.append(self.fov_mlp(fov.float())[:, None].to(dtype))
            masks.append(ones)
        elif fov is not None:
            raise InputError("fov given, but the condition encoder was built with fov_token=False")

        if pixel_values is not None:
            if not self.is_vlm:
                raise InputError(
                    f"pixel_values given, but {self.model_path} is a text model ({self.model_type})"
                )
            if pixel_values.shape[0] != b:
                raise InputError(f"pixel_values batch {pixel_values.shape[0]} != input_ids {b}")
            image = self._image_tokens(pixel_values).to(dtype)
            embeds.append(image)
            masks.append(torch.ones(b, image.shape[1], dtype=torch.long, device=image.device))

        n_before_text = sum(int(e.shape[1]) for e in embeds)
        embeds.append(text)
        masks.append(text_mask)
        embeds.append(self.cognition.to(dtype)[None, None].expand(b, 1, -1))
        masks.append(ones)
        inputs_embeds = torch.cat(embeds, dim=1)
        mask = torch.cat(masks, dim=1)

        kwargs: dict[str, Any] = {
            "inputs_embeds": inputs_embeds,
            "attention_mask": mask,
            "use_cache": False,
        }
        if self._takes_position_ids:  # padding does not shift the cognition token's position
            kwargs["position_ids"] = (mask.cumsum(dim=1) - 1).clamp_min(0) + self._position_offset
        if self._takes_token_types:  # prefix-LM: everything but the cognition token is prefix
            token_types = torch.zeros_like(mask)
            token_types[:, -1] = 1
            kwargs["token_type_ids"] = token_types
        hidden = self.backbone(**kwargs).last_hidden_state.float()

        tokens = [self.proj(hidden[:, -1])[:, None]]
        if self.text_proj is not None:
            t_hidden = hidden[:, n_before_text : n_before_text + text.shape[1]]
            weights = text_mask.float()[..., None]
            pooled = (t_hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
            tokens.append(self.text_proj(pooled)[:, None])
        return torch.cat(tokens, dim=1)
