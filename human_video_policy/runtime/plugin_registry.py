"""Factories by name, built in or installed by other packages through Python entry points.

Why: integrators swap what a node runs (a runtime policy, a prompt encoder) by installing a
package and naming it in a parameter, without editing this project. Each kind of plugin is one
:class:`PluginGroup`: its built-in factories, its entry-point group, and the parameter names its
errors speak of. Failures end up as one :class:`ConfigError` naming the plugin and the cause: an
unknown name (with the names there are), a plugin whose import fails (whatever it raises; the
other names keep working), arguments its factory refuses. Checking that the object made
implements the kind's interface is the caller's part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from human_video_policy.errors import ConfigError, ModelLoadError


@dataclass(frozen=True)
class PluginGroup:
    """One kind of plugin.

    Attributes:
        group: the entry-point group outside packages register under.
        built_in: this project's own factories by name.
        kind: what a plugin is, for messages ("policy", "prompt encoder").
        name_param: the parameter that names the plugin ("policy", "encoder").
        args_param: the parameter holding its JSON keyword arguments ("policy_args").
    """

    group: str
    built_in: Mapping[str, Callable[..., Any]]
    kind: str
    name_param: str
    args_param: str

    def names(self) -> list[str]:
        """The built-in names and those of the installed plugins."""
        return sorted({*self.built_in, *(ep.name for ep in entry_points(group=self.group))})

    def parse_args(self, text: str) -> dict[str, Any]:
        """The JSON object of keyword arguments in ``text`` ("" = none)."""
        if not text.strip():
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{self.args_param}={text!r} is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ConfigError(
                f"{self.args_param}={text!r} must be a JSON object of keyword arguments"
            )
        return value

    def factory(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``."""
        factory = self.built_in.get(name)
        if factory is not None:
            return factory
        found = [ep for ep in entry_points(group=self.group) if ep.name == name]
        if not found:
            raise ConfigError(
                f"{self.name_param}={name!r} is unknown: choose one of {self.names()} (plugins "
                f"register under the entry-point group {self.group!r})"
            )
        try:
            return found[0].load()
        except Exception as exc:  # a plugin's own import failure, whatever it raises
            raise ConfigError(
                f"{self.kind} plugin {name!r} ({found[0].value}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def make(self, name: str, **arguments: Any) -> Any:
        """``factory(**arguments)`` of ``name``; what it refuses is a ConfigError."""
        factory = self.factory(name)
        try:
            return factory(**arguments)
        except (ConfigError, ModelLoadError):
            raise
        except TypeError as exc:
            raise ConfigError(
                f"{self.kind} {name!r}: bad {self.args_param} {arguments}: {exc}"
            ) from exc
        except Exception as exc:  # a plugin's constructor refusing its arguments or weights
            raise ConfigError(
                f"{self.kind} {name!r} cannot be made with {self.args_param} {arguments}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
