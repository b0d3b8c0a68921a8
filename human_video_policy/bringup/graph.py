"""Graph descriptions: which nodes a system runs, with which parameters and remappings.

A graph is a YAML file in ``config/graphs/<name>.yaml``; the same file feeds the local launcher
(``hvp launch``, :mod:`human_video_policy.bringup.launcher`) and ``ros2 launch`` (the files in
launch/ call :func:`load_graph`), so both start the same executables with the same
``--ros-args``. Schema::

    graph: sim_widowx                  # must match the file name
    description: one paragraph
    arguments:                         # launch arguments, overridable as name:=value
      model_path:
        default: ""                    # omit default to make the argument required
        description: what it sets
      driver:
        default: sim
        choices: [sim, real]           # optional: any other value is refused, naming these
        description: which drivers run
    nodes:
      - name: policy                   # ROS node name (-r __node:=policy)
        executable: policy_node        # module human_video_policy.nodes.policy_node
        parameter_files: [sim_widowx.params.yaml]   # relative to config/
        parameters:                    # inline overrides, after the files
          model_path: $(arg model_path)
        remappings:                    # from: to
          /camera/color/image_raw: /camera/camera/color/image_raw
        required: true                 # its exit stops the whole graph
        when: {driver: sim}            # optional: the node runs only when every named argument
                                       # has this value (or one of a list of values)

``$(arg name)`` is replaced by the argument's value; a value that is exactly ``$(arg name)``
takes the type the text has in YAML (``15`` -> 15, ``true`` -> True), as in ros2 launch.
Every error names the file, the key and what is allowed.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from human_video_policy.errors import ConfigError
from human_video_policy.resources import share_dir

NODES_PACKAGE = "human_video_policy.nodes"
ROS_PACKAGE = "human_video_policy"
_ARG = re.compile(r"\$\(arg\s+([A-Za-z_][A-Za-z0-9_]*)\s*\)")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOPIC = re.compile(r"^~?/?[A-Za-z_][A-Za-z0-9_/~{}]*$")
_TOP_KEYS = ("graph", "description", "arguments", "nodes")
_NODE_KEYS = (
    "name", "executable", "parameter_files", "parameters", "remappings", "required", "when",
)  # fmt: skip
_ARGUMENT_KEYS = ("default", "description", "choices")

ParameterValue = bool | int | float | str | list


@dataclass(frozen=True)
class GraphArgument:
    """A launch argument: ``default`` None means it must be given on the command line."""

    name: str
    default: str | None
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSpec:
    """One node process of a graph, with its arguments resolved."""

    name: str
    executable: str
    parameter_files: tuple[Path, ...]
    parameters: dict[str, ParameterValue]
    remappings: tuple[tuple[str, str], ...]
    required: bool

    @property
    def module(self) -> str:
        return f"{NODES_PACKAGE}.{self.executable}"

    def ros_arguments(self) -> list[str]:
        """The ``--ros-args`` ros2 launch passes: node name, parameter files, -p, -r."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        for path in self.parameter_files:
            args += ["--params-file", str(path)]
        for key, value in self.parameters.items():
            args += ["-p", f"{key}:={ros_yaml(value)}"]
        for source, target in self.remappings:
            args += ["-r", f"{source}:={target}"]
        return args

    def command(self, python: str | None = None) -> list[str]:
        """``python -m human_video_policy.nodes.<executable> --ros-args ...``."""
        return [python or sys.executable, "-m", self.module, *self.ros_arguments()]


@dataclass(frozen=True)
class GraphSpec:
    """A validated graph with launch arguments substituted."""

    name: str
    description: str
    arguments: dict[str, GraphArgument]
    nodes: tuple[NodeSpec, ...]
    source: Path
    values: dict[str, str]

    def node(self, name: str) -> NodeSpec:
        for spec in self.nodes:
            if spec.name == name:
                return spec
        raise ConfigError(f"graph {self.name} has no node {name!r}: {[n.name for n in self.nodes]}")


# -- helpers -------------------------------------------------------------------------------
def ros_yaml(value: ParameterValue) -> str:
    """A parameter value as the YAML text of a ``-p name:=value`` argument.

    Strings are quoted only when YAML would read them as something else ('15', 'true', '').
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(ros_yaml(v) for v in value) + "]"
    text = str(value)
    try:
        plain = text != "" and yaml.safe_load(text) == text and "\n" not in text
    except yaml.YAMLError:
        plain = False
    return text if plain else "'" + text.replace("'", "''") + "'"


def parse_launch_arguments(tokens: Sequence[str]) -> dict[str, str]:
    """``["model_path:=/x.onnx", ...]`` -> ``{"model_path": "/x.onnx"}``."""
    values: dict[str, str] = {}
    for token in tokens:
        name, sep, value = token.partition(":=")
        if not sep or not _NAME.match(name):
            raise ConfigError(f"launch argument {token!r} is invalid: write name:=value")
        values[name] = value
    return values


def config_dir() -> Path:
    return share_dir() / "config"


def graphs_dir() -> Path:
    return config_dir() / "graphs"


def graph_file(name_or_path: str | Path) -> Path:
    """``sim_widowx`` -> config/graphs/sim_widowx.yaml; a path to a .yaml file is kept."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text).expanduser()
    else:
        path = graphs_dir() / f"{text}.yaml"
    if not path.is_file():
        known = ", ".join(name for name, _ in list_graphs()) or "none"
        raise ConfigError(f"graph {text!r} not found ({path}); known graphs: {known}")
    return path


def list_graphs() -> list[tuple[str, str]]:
    """(name, first line of description) of each graph in config/graphs/."""
    out = []
    for path in sorted(graphs_dir().glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
            description = str(data.get("description", "")).strip().splitlines()
        except (yaml.YAMLError, AttributeError):
            description = ["(unreadable)"]
        out.append((path.stem, description[0] if description else ""))
    return out


# -- loading -------------------------------------------------------------------------------
def load_graph(name_or_path: str | Path, arguments: Mapping[str, str] | None = None) -> GraphSpec:
    """Load, validate and resolve a graph; ``arguments`` override the declared defaults."""
    path = graph_file(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return graph_from_dict(data, path, arguments or {})


def graph_from_dict(
    data: Any, source: Path, arguments: Mapping[str, str] | None = None
) -> GraphSpec:
    """Validate a parsed graph description (see the module docstring for the schema)."""
    where = str(source)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping with keys {list(_TOP_KEYS)}")
    _check_keys(where, "top level", data, _TOP_KEYS, required=("graph", "nodes"))
    name = data["graph"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: graph={name!r} is invalid: must be a name like sim_widowx")
    description = data.get("description", "") or ""
    if not isinstance(description, str):
        raise ConfigError(f"{where}: description must be text")
    declared = _parse_arguments(where, data.get("arguments") or {})
    values = _resolve_argument_values(where, declared, arguments or {})
    nodes_data = data["nodes"]
    if not isinstance(nodes_data, list) or not nodes_data:
        raise ConfigError(f"{where}: nodes must be a non-empty list of node entries")
    parsed = [_parse_node(where, i, entry, values) for i, entry in enumerate(nodes_data)]
    nodes = tuple(node for node in parsed if node is not None)
    if not nodes:
        raise ConfigError(f"{where}: no node runs with the arguments {values}")
    names = [n.name for n in nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}: node names must be unique; repeated: {duplicates}")
    return GraphSpec(name, description.strip(), declared, nodes, source, values)


def _check_keys(
    where: str, context: str, data: dict, allowed: Sequence[str], required: Sequence[str] = ()
) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {key!r} in {context}; allowed keys: {list(allowed)}"
            )
    for key in required:
        if key not in data:
            raise ConfigError(f"{where}: missing key {key!r} in {context}")


def _parse_arguments(where: str, data: Any) -> dict[str, GraphArgument]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: arguments must be a mapping name -> {{default, description}}")
    declared = {}
    for name, entry in data.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: argument name {name!r} is invalid: letters, digits, _")
        entry = entry if entry is not None else {}
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: arguments.{name} must be a mapping {list(_ARGUMENT_KEYS)}")
        _check_keys(where, f"arguments.{name}", entry, _ARGUMENT_KEYS)
        default = entry.get("default")
        if default is not None and not isinstance(default, (str, int, float, bool)):
            raise ConfigError(f"{where}: arguments.{name}.default must be a scalar")
        if isinstance(default, bool):
            default = "true" if default else "false"
        choices = entry.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise ConfigError(f"{where}: arguments.{name}.choices must be a list of strings")
        if choices and default is not None and str(default) not in choices:
            raise ConfigError(f"{where}: arguments.{name}.default {default!r} is not a choice")
        declared[name] = GraphArgument(
            name,
            None if default is None else str(default),
            str(entry.get("description", "")),
            tuple(choices),
        )
    return declared


def _resolve_argument_values(
    where: str, declared: Mapping[str, GraphArgument], given: Mapping[str, str]
) -> dict[str, str]:
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ConfigError(
            f"{where}: unknown launch argument(s) {unknown}; this graph declares "
            f"{sorted(declared) or 'none'}"
        )
    values = {}
    for name, argument in declared.items():
        if name in given:
            values[name] = str(given[name])
            if argument.choices and values[name] not in argument.choices:
                raise ConfigError(
                    f"{where}: launch argument {name}:={values[name]!r} is invalid: choose one "
                    f"of {list(argument.choices)} ({argument.description})"
                )
        elif argument.default is not None:
            values[name] = argument.default
        else:
            raise ConfigError(
                f"{where}: launch argument {name!r} has no default and must be given as "
                f"{name}:=value ({argument.description})"
            )
    return values


def _substitute(where: str, context: str, value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, list):
        return [_substitute(where, context, v, values) for v in value]
    if not isinstance(value, str) or "$(" not in value:
        return value

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigError(
                f"{where}: {context} uses $(arg {name}) but the graph declares no argument "
                f"{name!r} (declared: {sorted(values)})"
            )
        return values[name]

    whole = _ARG.fullmatch(value.strip())
    if whole:
        text = lookup(whole)
        try:
            typed = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError:
            typed = text
        return typed if isinstance(typed, (bool, int, float, str)) else text
    result = _ARG.sub(lookup, value)
    if "$(" in result:
        raise ConfigError(
            f"{where}: {context}={value!r} has an unknown substitution; only $(arg name) exists"
        )
    return result


def _check_parameter_value(where: str, context: str, value: Any) -> ParameterValue:
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list) and value:
        kinds = {bool if isinstance(v, bool) else type(v) for v in value}
        if kinds <= {int, float} and kinds != {int}:
            return [float(v) for v in value]
        if len(kinds) == 1 and kinds <= {bool, int, float, str}:
            return value
    raise ConfigError(
        f"{where}: {context}={value!r} is invalid: a parameter is a bool, int, float, string or "
        "a non-empty list of one of those"
    )


def _runs(where: str, context: str, when: Any, values: Mapping[str, str]) -> bool:
    """A node's ``when``: every named argument has the value (or one of the values) given."""
    if when is None:
        return True
    if not isinstance(when, dict) or not when:
        raise ConfigError(f"{where}: {context} when must be a mapping argument -> value(s)")
    for argument, wanted in when.items():
        if argument not in values:
            raise ConfigError(
                f"{where}: {context} when names {argument!r}, which is no argument of the graph"
            )
        wanted = wanted if isinstance(wanted, list) else [wanted]
        if values[argument] not in [str(w).lower() if isinstance(w, bool) else str(w)
                                    for w in wanted]:  # fmt: skip
            return False
    return True


def _parse_node(
    where: str,
    index: int,
    entry: Any,
    values: Mapping[str, str],
) -> NodeSpec | None:
    """The node of ``entry``; None when its ``when`` does not hold for ``values``."""
    context = f"nodes[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: {context} must be a mapping with keys {list(_NODE_KEYS)}")
    _check_keys(where, context, entry, _NODE_KEYS, required=("name", "executable"))
    name = entry["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: {context}.name={name!r} is invalid: a ROS node name")
    context = f"node {name!r}"
    if not _runs(where, context, entry.get("when"), values):
        return None
    executable = entry["executable"]
    if not isinstance(executable, str) or not _NAME.match(executable):
        raise ConfigError(f"{where}: {context} executable={executable!r} is invalid")
    if importlib.util.find_spec(f"{NODES_PACKAGE}.{executable}") is None:
        available = sorted(
            p.stem
            for p in Path(__file__).resolve().parent.parent.joinpath("nodes").glob("*_node.py")
        )
        raise ConfigError(
            f"{where}: {context} executable={executable!r} is not a module in {NODES_PACKAGE}; "
            f"available: {available}"
        )
    files_data = entry.get("parameter_files") or []
    if isinstance(files_data, str):
        files_data = [files_data]
    if not isinstance(files_data, list):
        raise ConfigError(f"{where}: {context} parameter_files must be a list of file names")
    files = []
    for item in files_data:
        item = _substitute(where, f"{context} parameter_files", item, values)
        path = Path(str(item)).expanduser()
        path = path if path.is_absolute() else config_dir() / path
        if not path.is_file():
            raise ConfigError(
                f"{where}: {context} parameter file {item!r} not found (looked at {path})"
            )
        files.append(path)
    params_data = entry.get("parameters") or {}
    if not isinstance(params_data, dict):
        raise ConfigError(f"{where}: {context} parameters must be a mapping name -> value")
    parameters = {}
    for key, raw in params_data.items():
        if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", key):
            raise ConfigError(f"{where}: {context} parameter name {key!r} is invalid")
        value = _substitute(where, f"{context} parameter {key}", raw, values)
        parameters[key] = _check_parameter_value(where, f"{context} parameter {key}", value)
    remap_data = entry.get("remappings") or {}
    if not isinstance(remap_data, dict):
        raise ConfigError(f"{where}: {context} remappings must be a mapping from -> to")
    remappings = []
    for source, target in remap_data.items():
        target = _substitute(where, f"{context} remapping {source}", target, values)
        for topic in (source, target):
            if not isinstance(topic, str) or not _TOPIC.match(topic):
                raise ConfigError(
                    f"{where}: {context} remapping {source!r} -> {target!r} is invalid: "
                    "both sides must be topic names"
                )
        remappings.append((source, target))
    required = entry.get("required", False)
    if not isinstance(required, bool):
        raise ConfigError(f"{where}: {context} required={required!r} is invalid: true or false")
    return NodeSpec(name, executable, tuple(files), parameters, tuple(remappings), required)
