"""The VITRA-style condition encoder over a local Hugging Face model
(policies/dit/modeling_hf_condition.py), on tiny randomly initialised models of real
architectures written with ``save_pretrained`` into a tmp dir: Llama (text) and PaliGemma-2
(SigLIP + Gemma-2). The real loading and forward code paths run; no weights are needed and the
network is cut off while models load (HF_HUB_OFFLINE=1 and sockets refuse to connect)."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers/huggingface_hub read it

import socket
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import (
    Gemma2Config,
    LlamaConfig,
    LlamaModel,
    PaliGemmaConfig,
    PaliGemmaModel,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
)

from human_video_policy.errors import InputError, ModelLoadError
from human_video_policy.policies.dit.modeling_hf_condition import HFConditionEncoder

SENTENCES = [
    "pick up the red cube",
    "put the blue cube in the bowl",
    "grasp the green cup with the left hand",
    "move the right hand to the bowl",
]
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
WIDTH = 24
FOV = torch.tensor([[1.2, 0.9], [1.0, 0.75]])


def _tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained here on a few instructions (nothing to download)."""
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    assert [tok.token_to_id(t) for t in SPECIALS] == [0, 1, 2, 3]
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
    )


VOCAB = len(SPECIALS) + len({w for s in SENTENCES for w in s.split()})
IDS = {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny_llama")
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=VOCAB,
        max_position_embeddings=128,
        **IDS,
    )
    torch.manual_seed(0)
    LlamaModel(config).save_pretrained(path)
    _tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def paligemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PaliGemma-2: SigLIP vision tower (32 px, 8 px patches: 16 image tokens) + Gemma-2."""
    path = tmp_path_factory.mktemp("tiny_paligemma2")
    text = Gemma2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        intermediate_size=64,
        vocab_size=VOCAB + 1,
        max_position_embeddings=256,
        sliding_window=128,
        **IDS,
    )
    vision = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
    config = PaliGemmaConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        image_token_id=VOCAB,
        projection_dim=32,
    )
    torch.manual_seed(0)
    PaliGemmaModel(config).save_pretrained(path)
    _tokenizer().save_pretrained(path)
    return path


def test_text_model_shapes_instruction_and_padding(llama_dir: Path) -> None:
    torch.manual_seed(1)
    enc = HFConditionEncoder(str(llama_dir), width=WIDTH, fov_token=False, max_length=12)
    assert enc.model_type == "llama" and not enc.is_vlm and enc.n_tokens == 1
    batch = enc.tokenize(["pick up the red cube", "put the blue cube in the bowl"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 12)
    with torch.no_grad():
        out = enc(**batch)
        assert out.shape == (2, enc.n_tokens, WIDTH) and torch.isfinite(out).all()
        other = enc(**enc.tokenize(["pick up the green cup", "put the blue cube in the bowl"]))
        assert (out[0] - other[0]).abs().max() > 1e-4  # the instruction changes the output
        torch.testing.assert_close(out[1], other[1])  # and only its own row
        enc.max_length = 20  # more padding: masked, and positions count real tokens only
        torch.testing.assert_close(enc(**enc.tokenize(["pick up the red cube"])), out[:1])
    pooled = HFConditionEncoder(str(llama_dir), width=WIDTH, fov_token=False, pool_text=True)
    assert pooled.n_tokens == 2
    assert pooled(**pooled.tokenize(["grasp the cup"])).shape == (1, 2, WIDTH)
    with pytest.raises(InputError, match="text model"):
        enc(**batch, pixel_values=torch.zeros(2, 3, 32, 32))


def test_fov_token_changes_the_output(llama_dir: Path) -> None:
    enc = HFConditionEncoder(str(llama_dir), width=WIDTH, fov_token=True)
    batch = enc.tokenize(["pick up the red cube", "pick up the red cube"])
    with torch.no_grad():
        out = enc(**batch, fov=FOV)
        assert out.shape == (2, 1, WIDTH)
        assert (out[0] - out[1]).abs().max() > 1e-4  # same words, different FoV
        torch.testing.assert_close(enc(**batch, fov=FOV), out)  # deterministic
    with pytest.raises(InputError, match="FoV"):
        enc(**batch)
    without = HFConditionEncoder(str(llama_dir), width=WIDTH, fov_token=False)
    with pytest.raises(InputError, match="fov_token=False"):
        without(**batch, fov=FOV)


@pytest.mark.parametrize("which", ["llama", "paligemma"])
def test_frozen_backbone_gets_no_gradient(which: str, llama_dir: Path, paligemma_dir: Path) -> None:
    path = llama_dir if which == "llama" else paligemma_dir
    enc = HFConditionEncoder(str(path), width=WIDTH, fov_token=True).train()
    assert not enc.backbone.training  # frozen modules stay in eval mode
    pixels = enc.prepare_pixels(torch.rand(2, 3, 40, 56)) if enc.is_vlm else None
    enc(
        **enc.tokenize(["grasp the cup", "put it left"]), pixel_values=pixels, fov=FOV
    ).sum().backward()
    trained = {"cognition", "fov_mlp", "proj"}
    for name, param in enc.named_parameters():
        if name.split(".")[0] in trained:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert not param.requires_grad and param.grad is None, name
    assert set(enc.trainable_parameter_names()) == {
        n for n, _ in enc.named_parameters() if n.split(".")[0] in trained
    }

    lm = HFConditionEncoder(str(path), width=WIDTH, fov_token=False, freeze_backbone=False)
    pixels = lm.prepare_pixels(torch.rand(1, 3, 32, 32)) if lm.is_vlm else None
    lm(**lm.tokenize(["grasp the cup"]), pixel_values=pixels).sum().backward()
    graded = {n for n, p in lm.named_parameters() if p.grad is not None}
    assert any(".layers." in n for n in graded)  # the language model trains
    assert not any("vision_tower" in n for n in graded)  # the vision encoder stays frozen (VITRA)


def test_paligemma_vlm_image_and_text(paligemma_dir: Path) -> None:
    enc = HFConditionEncoder(str(paligemma_dir), width=WIDTH, fov_token=True, pool_text=True)
    assert enc.is_vlm and enc.model_type == "paligemma" and enc.image_size == 32
    batch = enc.tokenize(["pick up the red cube", "pick up the red cube"])
    torch.manual_seed(2)
    images = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        pixels = enc.prepare_pixels(images)
        assert pixels.shape == (2, 3, 32, 32)
        out = enc(**batch, pixel_values=pixels, fov=FOV[:1].expand(2, 2))
        assert out.shape == (2, 2, WIDTH) and torch.isfinite(out).all()
        assert (out[0, 0] - out[1, 0]).abs().max() > 1e-4  # the image changes the cognition
        words = enc(**enc.tokenize(["grasp the cup"] * 2), pixel_values=pixels, fov=FOV)
        fovs = enc(**batch, pixel_values=pixels, fov=FOV)
        assert (words[0, 0] - fovs[0, 0]).abs().max() > 1e-4  # the instruction too
        assert (fovs[1, 0] - out[1, 0]).abs().max() > 1e-4  # and the FoV
        assert enc(**batch, fov=FOV).shape == (2, 2, WIDTH)  # text (+ FoV) only


def test_missing_or_non_model_directory_is_named(tmp_path: Path, llama_dir: Path) -> None:
    missing = tmp_path / "no_such_model"
    with pytest.raises(ModelLoadError, match=f"{missing}.*does not exist"):
        HFConditionEncoder(str(missing), width=WIDTH, fov_token=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=f"{empty} is not a transformers model.*config.json"):
        HFConditionEncoder(str(empty), width=WIDTH, fov_token=False)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text('{"hello": 1}')
    (junk / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match=str(junk)):
        HFConditionEncoder(str(junk), width=WIDTH, fov_token=False)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text((llama_dir / "config.json").read_text())
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match=f"cannot load the transformers model in {corrupt}"):
        HFConditionEncoder(str(corrupt), width=WIDTH, fov_token=False)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((llama_dir / "config.json").read_text())
    with pytest.raises(ModelLoadError, match=f"{no_weights} .*no weights"):
        HFConditionEncoder(str(no_weights), width=WIDTH, fov_token=False)


def test_dit_policy_conditioned_the_vitra_way_on_a_local_vlm(paligemma_dir: Path) -> None:
    """The DiT with VITRA's conditioning (VLM sees image + instruction + FoV, cognition token
    -> condition) trains one step through the real code path; export is refused by name."""
    from human_video_policy.errors import ModelLoadError
    from human_video_policy.export.diffusion_onnx import export_dit
    from human_video_policy.policies.dit.configuration_dit import DiTConfig
    from human_video_policy.policies.dit.modeling_dit import DiTPolicy

    torch.manual_seed(0)
    config = DiTConfig(
        size="tiny",
        horizon=4,
        image_encoder="none",
        language_encoder="hf",
        hf_model_path=str(paligemma_dir),
        fov_token=True,
    )
    model = DiTPolicy(config)
    g = torch.Generator().manual_seed(0)
    batch = {
        config.image_key: torch.rand(2, 1, 3, 48, 48, generator=g),
        "observation.state": torch.randn(2, 1, 8, generator=g),
        "observation.fov": torch.tensor([[1.2, 0.9], [1.0, 0.8]]),
        "action": torch.randn(2, 4, 7, generator=g),
        "task": [SENTENCES[0], SENTENCES[1]],
    }
    losses = model.compute_loss(batch)
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"])
    assert model.hf_encoder.cognition.grad is not None
    model.eval()
    with torch.no_grad():
        cond, _, _ = model.batch_condition(batch)
        darker = dict(batch, **{config.image_key: batch[config.image_key] * 0.2})
        cond_dark, _, _ = model.batch_condition(darker)
    assert cond.shape == (2, model.n_condition, config.width)
    assert not torch.allclose(cond, cond_dark)  # the VLM sees the image
    with pytest.raises(ModelLoadError, match="not exportable"):
        export_dit(
            model,
            paligemma_dir.parent / "x",
            action_names=list("abcdefg"),
            state_names=list("abcdefgh"),
            dt=0.1,
        )
