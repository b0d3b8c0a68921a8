"""A hostile or inconsistent ``policy.json`` is refused at load with the file and the field named.

Why: the sidecar is read before any graph runs, and the runtime allocates from its numbers (the
self-test's image, the noise); a wrong type gave tracebacks, a huge size tried to allocate
terabytes, and a spec that disagreed with its graphs or its action space loaded silently. Each
case here copies the committed exported policy into tmp_path, edits only ``policy.json`` (a graph
edit would break its SHA-256) and loads it with real ONNX Runtime sessions.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx_models import make_policy_model

from human_video_policy.cli.main import main as hvp_main
from human_video_policy.errors import ConfigError, ModelLoadError
from human_video_policy.runtime.load_policy import load_policy
from human_video_policy.runtime.onnx_policy import OnnxPolicy
from human_video_policy.runtime.policy_plugins import make_runtime_policy

ASSET = Path(__file__).resolve().parents[1] / "assets" / "policies" / "widowx_reach_dit"
DEEP = 100_000


def _set(*keys: str, value: Any) -> Callable[[dict], None]:
    """An edit setting ``spec[k0][k1]... = value``."""

    def edit(spec: dict) -> None:
        for key in keys[:-1]:
            spec = spec[key]
        spec[keys[-1]] = value

    return edit


def _six_actions(spec: dict) -> None:
    """Six action names (normalisation to match, state unchanged): only the graphs disagree."""
    spec["action_names"] = spec["action_names"][:6]
    for key in ("action_mean", "action_std"):
        spec["normalization"][key] = spec["normalization"][key][:6]


def _deep_training(spec: dict) -> None:
    nested: Any = {}
    for _ in range(200):  # parses, but deeper than a report may serialise
        nested = {"x": nested}
    spec["training"] = nested


#: name -> (edit of the parsed spec, or the whole file's text; text the error must contain).
HOSTILE: dict[str, tuple[Callable[[dict], None] | str, str]] = {
    "json_nested_100k_deep": ('{"format": ' + "[" * DEEP + "]" * DEEP + "}", "nested too deeply"),
    "training_nested_200_deep": (_deep_training, "training"),
    "inference_steps_str": (
        _set("sampler", "inference_steps", value="10"),
        "sampler.inference_steps",
    ),
    "guidance_scale_str": (_set("sampler", "guidance_scale", value="5"), "sampler.guidance_scale"),
    "seed_str": (_set("sampler", "seed", value="a"), "sampler.seed"),
    "seed_negative": (_set("sampler", "seed", value=-1), "sampler.seed"),
    "seed_bool": (_set("sampler", "seed", value=True), "sampler.seed"),
    "eta_inf": (_set("sampler", "eta", value=float("inf")), "sampler.eta"),
    "horizon_bool": (_set("horizon", value=True), "horizon"),
    "horizon_huge": (_set("horizon", value=10**12), "horizon"),
    "horizon_disagrees_with_graph": (_set("horizon", value=12), "horizon"),
    "dt_nan": (_set("dt", value=float("nan")), "dt"),
    "image_list": (_set("image", value=[64, 64]), "image"),
    "image_negative": (_set("image", "height", value=-1), "image.height"),
    "image_huge": (_set("image", "height", value=10**6), "image.height"),
    "image_disagrees_with_graph": (_set("image", "width", value=32), "image.width"),
    "image_null_but_graph_takes_one": (_set("image", value=None), "image"),
    "action_count_disagrees_with_graph": (_six_actions, "action_names"),
    "state_count_disagrees_with_graph": (
        lambda s: s["state_names"].append("extra"),
        "state_names",
    ),
    "action_names_ints": (_set("action_names", value=list(range(7))), "action_names"),
    "action_names_repeat": (_set("action_names", 1, value="waist"), "action_names"),
    "action_name_empty": (_set("action_names", 6, value=""), "action_names"),
    "action_std_zero": (_set("normalization", "action_std", 0, value=0.0), "normalization"),
    "action_space_unknown": (_set("action_space", value="bogus_space"), "action_space"),
    "action_space_other_width": (_set("action_space", value="human_hand_102"), "action_space"),
    "action_target_disagrees_with_model_config": (
        _set("action_target", value="absolute"),
        "action_target",
    ),
    "graph_shape_bare_string": (
        _set("graphs", "denoiser", "inputs", "noisy_actions", value="abc"),
        "graphs.denoiser.inputs.noisy_actions",
    ),
    "graph_extra_input": (
        _set("graphs", "denoiser", "inputs", "extra", value=["batch"]),
        "graphs.denoiser.inputs",
    ),
    "graph_file_parent": (
        _set("graphs", "encoder", "file", value="../good/encoder.onnx"),
        "graphs.encoder.file",
    ),
    "graph_file_absolute": (
        _set("graphs", "encoder", "file", value=str(ASSET / "encoder.onnx")),
        "graphs.encoder.file",
    ),
    "graph_file_subdir": (_set("graphs", "denoiser", "file", value="x/denoiser.onnx"), "file"),
    "graphs_list": (_set("graphs", value=[1, 2]), "graphs"),
    "model_config_str": (_set("model_config", value="x"), "model_config"),
    "unknown_field": (_set("horizn", value=10), "horizn"),
    "format_version_bool": (_set("format_version", value=True), "format_version"),
}


def _copy(tmp_path: Path, name: str, edit: Callable[[dict], None] | str | None = None) -> Path:
    """The committed exported policy copied to ``tmp_path/name``, its policy.json edited."""
    directory = tmp_path / name
    shutil.copytree(ASSET, directory)
    spec_file = directory / "policy.json"
    if isinstance(edit, str):
        spec_file.write_text(edit)
    elif edit is not None:
        spec = copy.deepcopy(json.loads(spec_file.read_text()))
        edit(spec)
        spec_file.write_text(json.dumps(spec))
    return directory


def test_the_unmodified_copy_loads_and_predicts(tmp_path: Path) -> None:
    policy = load_policy(_copy(tmp_path, "good"))
    chunk = policy.predict_chunk(
        np.zeros((48, 64, 3), np.uint8), np.zeros(len(policy.spec.state_names), np.float32)
    )
    assert chunk.actions.shape == (10, 7) and np.all(np.isfinite(chunk.actions))
    assert chunk.action_space == "widowx_joint_position"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_spec_is_a_model_load_error_naming_file_and_field(
    tmp_path: Path, name: str
) -> None:
    edit, expected = HOSTILE[name]
    directory = _copy(tmp_path, name, edit)
    _copy(tmp_path, "good")  # what a "../good/..." graph path would reach
    with pytest.raises(ModelLoadError) as caught:  # not RecursionError, MemoryError, TypeError
        load_policy(directory)
    message = str(caught.value)
    assert str(directory / "policy.json") in message, message
    assert expected in message, message


@pytest.mark.parametrize("name", ["seed_str", "json_nested_100k_deep"])
def test_sim_eval_reports_a_hostile_spec_in_one_line(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, expected = HOSTILE[name]
    directory = _copy(tmp_path, name, edit)
    argv = ["sim-eval", "--model", str(directory), "--episodes", "1", "--no-progress"]
    assert hvp_main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("hvp sim-eval: error: ") and expected in lines[0], lines
    assert str(directory / "policy.json") in lines[0]


def test_policy_node_blames_the_model_not_policy_args(tmp_path: Path) -> None:
    bad = _copy(tmp_path, "bad", HOSTILE["guidance_scale_str"][0])
    with pytest.raises(ModelLoadError, match=r"sampler\.guidance_scale") as caught:
        make_runtime_policy("exported", path=str(bad), providers=None, intra_op_threads=1)
    assert "policy_args" not in str(caught.value) and str(bad) in str(caught.value)
    good = _copy(tmp_path, "good")
    with pytest.raises(ConfigError, match="bad policy_args"):  # the caller's own argument
        make_runtime_policy("exported", path=str(good), speed=3)
    with pytest.raises(ConfigError, match="seed='a'"):
        make_runtime_policy("exported", path=str(good), seed="a")
    with pytest.raises(ConfigError, match="guidance_scale"):
        make_runtime_policy("exported", path=str(good), guidance_scale=float("nan"))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hvp.training", "[" * DEEP + "]" * DEEP),
        ("hvp.action_names", json.dumps("ab")),
        ("hvp.horizon", "10000000000"),
        ("hvp.image_size", json.dumps([10**6, 10**6])),
        ("hvp.dt", "NaN"),
    ],
)
def test_hostile_single_graph_metadata_is_a_model_load_error(
    tmp_path: Path, key: str, value: str
) -> None:
    path = make_policy_model(
        tmp_path / "p.onnx",
        state_names=["a", "b", "c"],
        action_names=["a", "b"],
        metadata={key: value},
    )
    with pytest.raises(ModelLoadError) as caught:
        OnnxPolicy(path)
    assert str(path) in str(caught.value) and key in str(caught.value), str(caught.value)
