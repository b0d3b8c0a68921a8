"""The DiT diffusion policy: what its loss, attention and sampler promise, and the exported
graphs run by ONNX Runtime without torch giving PyTorch's chunk (issue 13's parity bar)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from human_video_policy.errors import ConfigError, InputError, ModelLoadError
from human_video_policy.export.diffusion_onnx import FusedSampler, export_dit
from human_video_policy.policies.diffusion_schedule import DiffusionSchedule
from human_video_policy.policies.dit.configuration_dit import DiTConfig
from human_video_policy.policies.dit.modeling_dit import DiTPolicy
from human_video_policy.policies.model_spec import DENOISER_INPUTS, read_spec
from human_video_policy.runtime.diffusion_policy import DiffusionPolicy

KEY = "observation.images.scene"
ACTIONS = [f"joint_{i}" for i in range(7)]
STATES = [*ACTIONS, "gripper_finger"]


def _model(seed: int = 0, **overrides) -> DiTPolicy:
    torch.manual_seed(seed)
    fields = {"size": "tiny", "horizon": 8, "action_target": "delta", "image_key": KEY}
    model = DiTPolicy(DiTConfig(**{**fields, **overrides}))
    with torch.no_grad():  # leave the zero-init so every path carries signal
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def _batch(b: int = 3, seed: int = 0, horizon: int = 8, dims: int = 7) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        KEY: torch.rand(b, 1, 3, 64, 64, generator=g),
        "observation.state": torch.randn(b, 1, 8, generator=g),
        "action": torch.randn(b, horizon, dims, generator=g),
        "mask.action": torch.ones(b, horizon, dims),
        "task": ["reach the red target"] * b,
    }


def _loss(model: DiTPolicy, batch: dict, seed: int = 5) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # same t, noise and dropout draws
    return model.compute_loss(batch)


def test_masked_action_dims_are_ignored_by_the_loss() -> None:
    model = _model()
    batch = _batch()
    batch["mask.action"][:, :, 2] = 0.0  # joint_2 unlabelled (e.g. a human hand dim)
    batch["mask.action"][0, 5:] = 0.0  # a padded chunk end
    before = _loss(model, batch)["loss"]
    changed = dict(batch, action=batch["action"].clone())
    changed["action"][:, :, 2] = 1e3
    changed["action"][0, 5:] = -7.0
    assert torch.equal(_loss(model, changed)["loss"], before)
    changed["action"][1, 0, 3] += 1.0  # a supervised value does change it
    assert not torch.equal(_loss(model, changed)["loss"], before)


def test_per_sample_seeds_make_the_loss_independent_of_how_the_batch_is_split() -> None:
    """What a torchrun job relies on: with the trainer's per-sample seeds, the loss of a batch
    is the mean of its halves' losses (each rank computes one half) and is reproducible."""
    model = _model()
    batch = _batch(b=4, seed=6)
    batch["sample_seed"] = torch.tensor([11, 12, 13, 14])
    halves = [{k: v[i : i + 2] for k, v in batch.items()} for i in (0, 2)]
    with torch.no_grad():
        whole = model.compute_loss(batch)["loss"]
        parts = [model.compute_loss(h)["loss"] for h in halves]
        again = model.compute_loss(batch)["loss"]
        other = model.compute_loss({**batch, "sample_seed": torch.tensor([1, 2, 3, 4])})["loss"]
    assert torch.allclose(whole, (parts[0] + parts[1]) / 2, rtol=1e-6)
    assert torch.equal(whole, again) and not torch.allclose(whole, other)
    with pytest.raises(InputError, match="3 sample seeds for 4 samples"):
        model.compute_loss({**batch, "sample_seed": torch.tensor([1, 2, 3])})


def test_causal_attention_keeps_later_actions_out_of_earlier_predictions() -> None:
    for causal in (True, False):
        model = _model(causal=causal)
        cond, state, _ = model.batch_condition(_batch(1))
        x = torch.randn(1, 8, 7)
        args = [x, torch.tensor([40.0]), cond, torch.ones(1), state, torch.ones(1)]
        mask = torch.ones(1, 8, 7)
        with torch.no_grad():
            out = model.denoise(*args, mask)
            x2 = x.clone()
            x2[0, 6:] += 3.0  # change the last two action tokens
            out2 = model.denoise(x2, *args[1:], mask)
        earlier_same = torch.allclose(out[0, :6], out2[0, :6], atol=1e-6)
        assert earlier_same is causal
        assert not torch.allclose(out[0, 6:], out2[0, 6:])


def test_heads_split_logs_each_part_and_weights_the_total() -> None:
    heads = [
        {"name": "fingers", "start": 0, "stop": 4, "weight": 1.0},
        {"name": "rotation", "start": 4, "stop": 6, "weight": 0.5},
        {"name": "position", "start": 6, "stop": 7, "weight": 2.0},
    ]
    model = _model(heads_split=heads)
    losses = _loss(model, _batch())
    total = losses["loss_fingers"] + 0.5 * losses["loss_rotation"] + 2.0 * losses["loss_position"]
    assert torch.allclose(losses["loss"], total)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"heads_split": [{"name": "a", "start": 0, "stop": 3}]}, "cover the action dims"),
        ({"size": "tiny", "width": 100}, "size='custom'"),
        ({"action_target": "delta", "state_dim": 3}, "state_dim >= action_dim"),
        ({"language_encoder": "hf"}, "hf_model_path"),
        ({"image_encoder": "none"}, "no condition"),
        ({"guidance_scale": float("nan")}, "guidance_scale"),
        ({"inference_steps": 200}, "inference_steps"),
        ({"causal": "false"}, "causal='false' must be true or false"),  # a truthy string
        ({"fov_token": 1}, "fov_token=1 must be true or false"),
        ({"vocabulary": "red"}, "must be a list of words"),  # not ('r', 'e', 'd')
        ({"vocabulary": ["Red", "cube"]}, "lower-case"),  # would never match an instruction
        ({"vocabulary": ["red", "red"]}, "repeated"),
        ({"heads_split": [["a", 0, 7]]}, r"heads_split\[0\].*must be a mapping"),
        ({"heads_split": "groups"}, "defines no groups"),  # the WidowX joint space
        ({"image_key": 3}, "image_key=3 must be a string"),
    ],
)
def test_bad_configs_are_refused_by_name(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DiTConfig(**fields)


def test_heads_split_groups_gives_method_a_its_three_heads() -> None:
    config = DiTConfig(
        action_space="xhand_wrist_method_a", action_dim=21, state_dim=21, heads_split="groups"
    )
    assert [(h.name, h.start, h.stop) for h in config.head_groups] == [
        ("fingers", 0, 12),
        ("wrist_rotation", 12, 18),
        ("wrist_position", 18, 21),
    ]
    assert DiTConfig.from_dict(config.to_dict()) == config  # stored resolved, reads back


def test_unknown_config_fields_are_named() -> None:
    with pytest.raises(ConfigError, match="widht"):
        DiTConfig.from_dict({"widht": 3})


def test_batch_that_does_not_fit_the_model_is_refused() -> None:
    model = _model()
    with pytest.raises(InputError, match=r"\(B, 8, 7\)"):
        model.compute_loss(_batch(horizon=5))
    wrong = _batch()
    wrong[KEY] = torch.rand(3, 1, 3, 32, 32)
    with pytest.raises(InputError, match="image_size"):
        model.compute_loss(wrong)


def test_ddim_with_the_true_noise_recovers_the_clean_sample() -> None:
    """Deterministic DDIM (eta 0) from x_T made with eps, given eps at every step, lands on
    x_0: the schedule and the update are consistent."""
    schedule = DiffusionSchedule(train_steps=100, inference_steps=10)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((2, 8, 7)).astype(np.float32)
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    t0 = int(schedule.timesteps()[0])
    x = schedule.add_noise(x0, eps, np.full(2, t0))
    for t in schedule.timesteps():
        x = schedule.ddim_step(x, eps, int(t))
    np.testing.assert_allclose(x, x0, atol=1e-4)
    abar = schedule.alphas_cumprod
    assert np.all(np.diff(abar) < 0) and 0 < abar[-1] < 1e-3 < abar[0] < 1


def test_vocab_encoder_hears_the_instruction() -> None:
    model = _model(language_encoder="vocab", vocabulary=("red", "blue", "reach", "the", "target"))
    batch = _batch(1)
    red, _, _ = model.batch_condition({**batch, "task": ["reach the red target"]})
    blue, _, _ = model.batch_condition({**batch, "task": ["reach the blue target"]})
    assert not torch.allclose(red, blue)


def _export(model: DiTPolicy, directory: Path) -> None:
    export_dit(model, directory, action_names=ACTIONS, state_names=STATES, dt=0.1, seed=3)


def test_onnx_export_matches_pytorch_per_step_and_per_chunk(tmp_path: Path) -> None:
    model = _model(language_encoder="vocab", vocabulary=("reach", "red", "target"))
    out = tmp_path / "policy"
    _export(model, out)
    spec = read_spec(out)
    assert spec.parity["denoiser_step_max_abs_error"] <= 1e-4
    assert spec.parity["encoder_max_abs_error"] <= 1e-4
    assert spec.parity["chunk_max_abs_error"] <= 1e-3
    # Independently of the export's own report: the runtime (numpy loop on ORT) against
    # DiTPolicy.sample for a recorded-like observation and fixed noise, CFG 5.
    policy = DiffusionPolicy(out)
    assert policy.needs_instruction  # the node must hand it the task's words
    assert spec.sampler.guidance_scale == 5.0 and spec.sampler.inference_steps == 10
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    state = rng.normal(0, 0.3, 8).astype(np.float32)
    noise = rng.standard_normal((1, 8, 7)).astype(np.float32)
    ours = policy.predict(image, state, instruction="reach the red target", noise=noise)
    batch = {
        KEY: torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0,
        "observation.state": torch.from_numpy(state)[None],
        "task": ["reach the red target"],
    }
    reference = model.sample(batch, noise=noise)[0]
    assert np.abs(ours - reference).max() <= 1e-3
    other = policy.predict(image, state, instruction="reach the target", noise=noise)
    assert np.abs(other - ours).max() > 1e-4  # the instruction reaches the graphs
    chunk = policy.predict_chunk(image, state, observation_stamp=2.0)
    assert chunk.actions.shape == (8, 7) and chunk.names == tuple(ACTIONS)
    assert chunk.action_space == "widowx_joint_position"


def test_guidance_scale_one_is_the_conditional_model(tmp_path: Path) -> None:
    model = _model()
    out = tmp_path / "p"
    _export(model, out)
    noise = np.random.default_rng(0).standard_normal((1, 8, 7)).astype(np.float32)
    image = np.full((64, 64, 3), 90, np.uint8)
    state = np.zeros(8, np.float32)
    assert not DiffusionPolicy(out).needs_instruction  # no vocabulary: no instruction needed
    one = DiffusionPolicy(out, guidance_scale=1.0).predict(image, state, noise=noise)
    five = DiffusionPolicy(out, guidance_scale=5.0).predict(image, state, noise=noise)
    assert np.abs(one - five).max() > 1e-4
    batch = {KEY: torch.full((1, 3, 64, 64), 90 / 255.0), "observation.state": torch.zeros(1, 8)}
    np.testing.assert_allclose(
        one, model.sample(batch, noise=noise, guidance_scale=1.0)[0], atol=1e-4
    )


def test_the_fused_sampler_gives_the_reference_chunk() -> None:
    """benchmarks/gpu_checks.py and dit_latency.py --fused time this graph: it must be the
    same DDIM + CFG chunk as DiTPolicy.sample (the runtime's reference) for the same noise."""
    model = _model()
    batch = _batch(b=2, seed=4)
    noise = np.random.default_rng(3).standard_normal((2, 8, 7)).astype(np.float32)
    reference = model.sample(batch, noise=noise)
    with torch.no_grad():
        condition, state_norm, state = model.batch_condition(batch)
        x = FusedSampler(model)(condition, state_norm, torch.from_numpy(noise)).numpy()
    chunk = x * model.action_std.numpy() + model.action_mean.numpy() + state.numpy()[:, None, :7]
    np.testing.assert_allclose(chunk, reference, atol=1e-4)
    assert np.abs(reference - (noise * model.action_std.numpy())).max() > 1e-2  # not trivial


def test_exported_policy_is_refused_when_files_disagree(tmp_path: Path) -> None:
    model = _model()
    good = tmp_path / "good"
    _export(model, good)

    missing = tmp_path / "missing"
    shutil.copytree(good, missing)
    (missing / "policy.json").unlink()
    with pytest.raises(ModelLoadError, match="no sidecar spec"):
        DiffusionPolicy(missing)

    swapped = tmp_path / "swapped"
    shutil.copytree(good, swapped)
    other = tmp_path / "other"
    _export(_model(seed=1), other)
    shutil.copy(other / "denoiser.onnx", swapped / "denoiser.onnx")
    with pytest.raises(ModelLoadError, match="SHA-256"):
        DiffusionPolicy(swapped)

    lying = tmp_path / "lying"
    shutil.copytree(good, lying)
    spec = json.loads((lying / "policy.json").read_text())
    spec["graphs"]["denoiser"]["inputs"]["noisy_actions"] = ["batch", 8, 9]
    spec["action_names"] = [*ACTIONS, "x", "y"]
    spec["normalization"]["action_mean"] += [0.0, 0.0]
    spec["normalization"]["action_std"] += [1.0, 1.0]
    spec["action_target"] = "absolute"
    (lying / "policy.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="noisy_actions"):
        DiffusionPolicy(lying)

    truncated = tmp_path / "truncated"
    shutil.copytree(good, truncated)
    (truncated / "policy.json").write_text((good / "policy.json").read_text()[:200])
    with pytest.raises(ModelLoadError, match="unreadable sidecar"):
        DiffusionPolicy(truncated)

    with pytest.raises(ModelLoadError, match="not empty"):
        _export(model, good)  # nothing overwritten without asking
    assert read_spec(good).graphs["denoiser"].sha256 != read_spec(other).graphs["denoiser"].sha256


def test_a_model_with_nan_weights_is_refused_at_export_and_at_load(tmp_path: Path) -> None:
    model = _model()
    with torch.no_grad():
        model.heads["all"].bias.fill_(float("nan"))
    with pytest.raises(ModelLoadError, match="invalid actions"):
        _export(model, tmp_path / "nan")
    assert not (tmp_path / "nan").exists() and not (tmp_path / "nan.partial").exists()

    # A graph damaged after export, its sidecar updated to match: the runtime's self-test
    # samples one chunk at load and refuses it.
    import onnx
    from onnx import numpy_helper

    good = tmp_path / "good"
    _export(_model(), good)
    proto = onnx.load(str(good / "denoiser.onnx"))
    for init in proto.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype == np.float32 and values.size > 16:
            init.CopyFrom(numpy_helper.from_array(np.full_like(values, np.nan), init.name))
            break
    onnx.save(proto, str(good / "denoiser.onnx"))
    spec = json.loads((good / "policy.json").read_text())
    from human_video_policy.policies.model_spec import sha256_of

    spec["graphs"]["denoiser"]["sha256"] = sha256_of(good / "denoiser.onnx")
    (good / "policy.json").write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="self-test"):
        DiffusionPolicy(good)


def test_denoiser_graph_inputs_are_the_documented_ones(tmp_path: Path) -> None:
    _export(_model(), tmp_path / "p")
    spec = read_spec(tmp_path / "p")
    assert set(spec.graphs["denoiser"].inputs) == set(DENOISER_INPUTS)
    assert spec.graphs["denoiser"].inputs["noisy_actions"] == ["batch", 8, 7]
    assert set(spec.graphs["encoder"].inputs) == {"image", "state"}


def test_sample_prediction_trains_on_the_clean_chunk_and_exports_as_noise(tmp_path: Path) -> None:
    """prediction='sample': the loss compares the network's output with the clean chunk; the
    exported denoiser still returns the implied noise, so the runtime's DDIM loop is unchanged
    and matches PyTorch."""
    model = _model(prediction="sample")
    batch = _batch()
    batch["mask.action"][:, :, 1] = 0.0
    before = _loss(model, batch)["loss"]
    changed = dict(batch, action=batch["action"].clone())
    changed["action"][:, :, 1] = 99.0
    assert torch.equal(_loss(model, changed)["loss"], before)
    _export(model, tmp_path / "p")
    spec = read_spec(tmp_path / "p")
    assert spec.parity["denoiser_step_max_abs_error"] <= 1e-4
    assert spec.parity["chunk_max_abs_error"] <= 1e-3
    # the implied noise is consistent: DDIM's x0 from it is the network's clean chunk
    cond, state, _ = model.batch_condition(_batch(1))
    x = torch.randn(1, 8, 7)
    args = [torch.tensor([30.0]), cond, torch.ones(1), state, torch.ones(1), torch.ones(1, 8, 7)]
    with torch.no_grad():
        clean = model.network(x, *args)
        eps = model.denoise(x, *args)
    abar = float(model.alphas_cumprod[30])
    recovered = (x - (1 - abar) ** 0.5 * eps) / abar**0.5
    assert torch.allclose(recovered, clean, atol=1e-4)
