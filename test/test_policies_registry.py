"""policies/: the Policy protocol, the registry of policy types and its entry-point plugins.

The plugin tests install a real (throwaway) distribution: a ``*.dist-info`` folder with an
``entry_points.txt`` on ``sys.path``, which importlib.metadata finds like any installed package.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from human_video_policy.errors import ConfigError
from human_video_policy.policies import registry
from human_video_policy.policies.base import ActionChunk, Policy
from human_video_policy.policies.registry import (
    ENTRY_POINT_GROUP,
    PolicyPluginWarning,
    PolicyType,
    get_policy_type,
    policy_type_names,
    register_policy_type,
)


class _Constant:
    def predict_chunk(
        self, image: np.ndarray, state: np.ndarray, observation_stamp: float = 0.0
    ) -> ActionChunk:
        return ActionChunk(np.zeros((2, 1)), 0.1, ("j",), "joint_position", observation_stamp)


def test_the_policy_protocol_is_the_one_interface() -> None:
    import human_video_policy.sim.evaluate as evaluate
    from human_video_policy.runtime import action_chunk

    assert isinstance(_Constant(), Policy) and not isinstance(object(), Policy)
    assert ActionChunk is action_chunk.ActionChunk
    assert not hasattr(evaluate, "ChunkSource")  # one name for one thing


def test_built_in_types_are_registered_without_importing_their_modules() -> None:
    assert {"bc_mlp", "dit"} <= set(policy_type_names())
    dit = get_policy_type("dit")
    assert dit.config_class == "human_video_policy.policies.dit.configuration_dit:DiTConfig"
    assert dit.model_class == "human_video_policy.policies.dit.modeling_dit:DiTPolicy"
    with pytest.raises(ConfigError, match=r"'diffusion' is unknown; known: \[.*'bc_mlp'.*'dit'"):
        get_policy_type("diffusion")


def test_bc_mlp_config_and_model_come_from_the_registry() -> None:
    from human_video_policy.policies.bc_mlp.configuration_bc_mlp import BCMLPConfig
    from human_video_policy.policies.bc_mlp.modeling_bc_mlp import BCMLPPolicy

    bc = get_policy_type("bc_mlp")
    config = bc.make_config({"image_height": 32, "image_width": 32, "hidden": 16})
    assert config == BCMLPConfig(image_height=32, image_width=32, hidden=16)
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['hiden'\].*valid: \[.*'hidden'"):
        bc.make_config({"hiden": 16})
    with pytest.raises(ConfigError, match="horizon"):
        bc.make_config({"horizon": 0})  # the config's own check, passed through
    model = bc.make_model(config)
    assert isinstance(model, BCMLPPolicy)
    import torch

    out = model(torch.zeros(1, 3, 32, 32), torch.zeros(1, 8))
    assert out.shape == (1, config.horizon, config.action_dim)
    with pytest.raises(ConfigError, match="needs a BCMLPConfig config, got dict"):
        bc.make_model({"hidden": 16})


def test_registration_refuses_duplicates_and_bad_import_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))
    bc = get_policy_type("bc_mlp")
    with pytest.raises(ConfigError, match="'bc_mlp' is already registered"):
        register_policy_type(bc)
    register_policy_type(bc, replace=True)
    with pytest.raises(ConfigError, match="config_class='no_colon' is invalid"):
        PolicyType("x", "no_colon", "a.b:C", "")
    with pytest.raises(ConfigError, match="name='Bad Name' is invalid"):
        PolicyType("Bad Name", "a:B", "a.b:C", "")
    missing = PolicyType("missing", "no_such_module_hvp:Config", "no_such_module_hvp:M", "")
    register_policy_type(missing)
    with pytest.raises(ConfigError, match="'no_such_module_hvp:Config' cannot be imported"):
        get_policy_type("missing").make_config({})


PLUGIN = """
from dataclasses import dataclass, field

from human_video_policy.errors import ConfigError
from human_video_policy.policies.registry import PolicyType


@dataclass(frozen=True)
class Encoder:
    layers: int = 1
    width: int = 8


@dataclass(frozen=True)
class TinyConfig:
    width: int = 4
    sizes: tuple[int, ...] = (1,)
    encoder: Encoder = field(default_factory=Encoder)

    def __post_init__(self):
        if self.width < 1:
            raise ConfigError(f"width={self.width} is invalid: >= 1")


class TinyModel:
    def __init__(self, config):
        self.config = config


TINY = PolicyType("tiny", "hvp_plugin_ok:TinyConfig", "hvp_plugin_ok:TinyModel", "test plugin")
DUPLICATE = PolicyType("bc_mlp", "hvp_plugin_ok:TinyConfig", "hvp_plugin_ok:TinyModel", "")
MISNAMED = PolicyType("other", "hvp_plugin_ok:TinyConfig", "hvp_plugin_ok:TinyModel", "")
NOT_A_TYPE = 42
"""


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway installed distribution with good and broken entry points, and a registry
    that has not read entry points yet (restored afterwards)."""
    (tmp_path / "hvp_plugin_ok.py").write_text(PLUGIN)
    (tmp_path / "hvp_plugin_broken.py").write_text(
        "raise ImportError('needs hvp_missing_dependency, which is not installed')\n"
    )
    info = tmp_path / "hvp_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hvp-test-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""\
            [{ENTRY_POINT_GROUP}]
            tiny = hvp_plugin_ok:TINY
            broken = hvp_plugin_broken:TYPE
            not_a_type = hvp_plugin_ok:NOT_A_TYPE
            bc_mlp = hvp_plugin_ok:DUPLICATE
            misnamed = hvp_plugin_ok:MISNAMED
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_TYPES", dict(registry._TYPES))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    return tmp_path


def test_entry_points_add_types_and_broken_ones_are_reported_and_skipped(
    plugin_dist: Path,
) -> None:
    built_in = registry._TYPES["bc_mlp"]
    with pytest.warns(PolicyPluginWarning) as record:
        names = policy_type_names()
    messages = [str(w.message) for w in record]
    assert "tiny" in names and {"bc_mlp", "dit"} <= set(names)
    assert not {"broken", "not_a_type", "misnamed"} & set(names)
    expected = {
        "broken": "ImportError: needs hvp_missing_dependency",
        "not_a_type": "loads to int, not a PolicyType",
        "bc_mlp": "'bc_mlp' is already registered",
        "misnamed": "named 'other', not 'misnamed'",
    }
    for entry, error in expected.items():
        hits = [m for m in messages if f"entry point {entry!r}" in m]
        assert len(hits) == 1 and error in hits[0], (entry, messages)
    assert len(messages) == len(expected)
    assert get_policy_type("bc_mlp") is built_in  # a plugin cannot shadow a built-in
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read once: no second round of warnings
        assert get_policy_type("tiny").description == "test plugin"


def test_a_plugin_config_is_built_from_nested_mappings(plugin_dist: Path) -> None:
    with pytest.warns(PolicyPluginWarning):
        tiny = get_policy_type("tiny")
    config = tiny.make_config({"width": 2, "sizes": [3, 4], "encoder": {"layers": 3}})
    assert config.sizes == (3, 4) and config.encoder.layers == 3 and config.encoder.width == 8
    assert type(config.encoder).__name__ == "Encoder"
    with pytest.raises(ConfigError, match=r"\['encoder.depth'\] in encoder of Encoder; valid"):
        tiny.make_config({"encoder": {"depth": 2}})
    with pytest.raises(ConfigError, match="width=0 is invalid"):
        tiny.make_config({"width": 0})
    model = tiny.make_model(config)
    assert model.config is config
