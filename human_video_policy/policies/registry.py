"""Policy types by name: a config dataclass and a torch model, found by import path.

Why: ``hvp train`` reads ``policy.type: dit`` from YAML; the registry turns that name into the
config class (built and checked without torch) and, only when a model is needed, the torch
class. A new policy is one folder (``<type>/configuration_<type>.py``,
``<type>/modeling_<type>.py``) plus one registration, not an edit of a switch. Outside
packages add types through the entry-point group :data:`ENTRY_POINT_GROUP`; each entry point
loads to a :class:`PolicyType`, e.g. in the plugin's ``pyproject.toml``::

    [project.entry-points."human_video_policy.policies"]
    my_policy = "my_package.policy:POLICY_TYPE"

Entry points are read once, on the first look-up. One that fails to load (import error, not a
PolicyType, a name already taken) is reported as a :class:`PolicyPluginWarning` naming the
entry point and the error, and skipped: a broken plugin never breaks the built-in types.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from human_video_policy.errors import ConfigError

ENTRY_POINT_GROUP = "human_video_policy.policies"


class PolicyPluginWarning(UserWarning):
    """An entry point of :data:`ENTRY_POINT_GROUP` could not be registered (it was skipped)."""


def _import_object(path: str, what: str) -> Any:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the plugin's module is reported as config
        raise ConfigError(
            f"{what} {path!r} cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{what} {path!r}: module {module_name} has no {attr!r}") from None


def _check_import_path(field_name: str, path: str) -> None:
    module_name, sep, attr = path.partition(":") if isinstance(path, str) else ("", "", "")
    if (
        not sep
        or not attr.isidentifier()
        or not all(p.isidentifier() for p in module_name.split("."))
    ):
        raise ConfigError(
            f"PolicyType.{field_name}={path!r} is invalid: must be 'package.module:ClassName'"
        )


@dataclass(frozen=True)
class PolicyType:
    """One kind of policy.

    Fields:
        name: the id configs use (``policy.type``), lower_case.
        config_class: ``"package.module:ClassName"`` of the dataclass config; its module must
            not import torch (configs are read and checked on machines without it).
        model_class: ``"package.module:ClassName"`` of the torch ``nn.Module``, built as
            ``model_class(config)``; imported only when a model is made.
        description: one line for people (what it is, which method or paper).
    """

    name: str
    config_class: str
    model_class: str
    description: str

    def __post_init__(self) -> None:
        if (
            not isinstance(self.name, str)
            or not self.name.isidentifier()
            or not self.name.islower()
        ):
            raise ConfigError(f"PolicyType.name={self.name!r} is invalid: a lower_case id")
        _check_import_path("config_class", self.config_class)
        _check_import_path("model_class", self.model_class)

    def load_config_class(self) -> type:
        """The config dataclass (imports its module)."""
        cls = _import_object(self.config_class, f"policy type {self.name!r} config class")
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ConfigError(
                f"policy type {self.name!r}: config class {self.config_class!r} is not a dataclass"
            )
        return cls

    def load_model_class(self) -> type:
        """The torch model class (imports its module, and with it torch)."""
        cls = _import_object(self.model_class, f"policy type {self.name!r} model class")
        if not isinstance(cls, type):
            raise ConfigError(f"policy type {self.name!r}: {self.model_class!r} is not a class")
        return cls

    def make_config(self, fields: Mapping[str, Any]) -> Any:
        """``config_class(**fields)``; nested dataclass fields may be given as mappings, lists
        become tuples where the field is a tuple. Unknown fields are a ConfigError naming them
        and the valid ones (with the path, e.g. ``encoder.widht``)."""
        return _build_dataclass(self.load_config_class(), fields, "")

    def make_model(self, config: Any) -> Any:
        """``model_class(config)``; ``config`` must be an instance of the config class."""
        config_cls = self.load_config_class()
        if not isinstance(config, config_cls):
            raise ConfigError(
                f"policy type {self.name!r} needs a {config_cls.__name__} config, got "
                f"{type(config).__name__} (build it with make_config)"
            )
        return self.load_model_class()(config)


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass in ``annotation`` (``X`` or ``X | None``), or None."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(annotation) if _dataclass_in(a) is not None]
        return found[0] if len(found) == 1 else None
    return None


def _is_tuple(annotation: Any) -> bool:
    if annotation is tuple or typing.get_origin(annotation) is tuple:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_tuple(a) for a in typing.get_args(annotation))
    return False


def _build_dataclass(cls: type, values: Mapping[str, Any], path: str) -> Any:
    where = f" in {path.rstrip('.')}" if path else ""
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"{path or cls.__name__} must be a mapping of {cls.__name__} fields, got {values!r}"
        )
    init_fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    if unknown := sorted(set(values) - set(init_fields)):
        raise ConfigError(
            f"unknown field(s) {[f'{path}{k}' for k in unknown]}{where} of {cls.__name__}; "
            f"valid: {sorted(init_fields)}"
        )
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: build without nesting or conversion
        hints = {}
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        annotation = hints.get(name)
        nested = _dataclass_in(annotation)
        if nested is not None and isinstance(value, Mapping):
            value = _build_dataclass(nested, value, f"{path}{name}.")
        elif isinstance(value, list) and _is_tuple(annotation):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}{where}: {exc}") from exc


_TYPES: dict[str, PolicyType] = {}
_entry_points_loaded = False


def register_policy_type(policy_type: PolicyType, replace: bool = False) -> None:
    """Add ``policy_type``; a name already registered is a ConfigError unless ``replace``."""
    if not isinstance(policy_type, PolicyType):
        raise ConfigError(f"register_policy_type needs a PolicyType, got {policy_type!r}")
    if policy_type.name in _TYPES and not replace:
        raise ConfigError(
            f"policy type {policy_type.name!r} is already registered "
            f"({_TYPES[policy_type.name].config_class}); pass replace=True to replace it"
        )
    _TYPES[policy_type.name] = policy_type


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        label = f"entry point {ep.name!r} = {ep.value!r} of group {ENTRY_POINT_GROUP!r}"
        try:
            loaded = ep.load()
            if not isinstance(loaded, PolicyType):
                raise ConfigError(f"it loads to {type(loaded).__name__}, not a PolicyType")
            if loaded.name != ep.name:
                raise ConfigError(f"its PolicyType is named {loaded.name!r}, not {ep.name!r}")
            register_policy_type(loaded)
        except Exception as exc:  # a broken plugin is reported and skipped, never fatal
            warnings.warn(
                f"policy plugin skipped: {label}: {type(exc).__name__}: {exc}",
                PolicyPluginWarning,
                stacklevel=3,
            )


def get_policy_type(name: str) -> PolicyType:
    """The policy type ``name`` (built-in or from an entry point); unknown -> ConfigError
    listing the known names."""
    _load_entry_points()
    policy_type = _TYPES.get(name)
    if policy_type is None:
        raise ConfigError(f"policy type {name!r} is unknown; known: {policy_type_names()}")
    return policy_type


def policy_type_names() -> list[str]:
    """Every registered policy type (built-ins and entry points), sorted."""
    _load_entry_points()
    return sorted(_TYPES)


register_policy_type(
    PolicyType(
        name="bc_mlp",
        config_class="human_video_policy.policies.bc_mlp.configuration_bc_mlp:BCMLPConfig",
        model_class="human_video_policy.policies.bc_mlp.modeling_bc_mlp:BCMLPPolicy",
        description="behaviour-cloning baseline: conv encoder + spatial softmax + MLP -> a chunk "
        "of joint targets (the default reach policy)",
    )
)
register_policy_type(
    PolicyType(
        name="dit",
        config_class="human_video_policy.policies.dit.configuration_dit:DiTConfig",
        model_class="human_video_policy.policies.dit.modeling_dit:DiTPolicy",
        description="VITRA's causal DiT action expert: a diffusion policy over action chunks "
        "(DDPM training, DDIM + classifier-free guidance at inference)",
    )
)


__all__ = [
    "ENTRY_POINT_GROUP",
    "PolicyPluginWarning",
    "PolicyType",
    "get_policy_type",
    "policy_type_names",
    "register_policy_type",
]
