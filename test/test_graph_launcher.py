"""Graph descriptions (validation, launch arguments) and the process launcher."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import signal
import sys
import time
import types
from pathlib import Path

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import GetParameters
from ros_helpers import PROJECT_ROOT, RosProbe, start_process, wait_for

from human_video_policy.bringup.graph import (
    graph_from_dict,
    load_graph,
    parse_launch_arguments,
    ros_yaml,
)
from human_video_policy.bringup.launcher import node_environment, run_graph
from human_video_policy.errors import ConfigError


def _graph(**overrides: object) -> dict:
    data = {
        "graph": "tiny",
        "description": "two executors",
        "arguments": {"rate": {"default": "25.0", "description": "control rate of exec_a"}},
        "nodes": [
            {
                "name": "exec_a",
                "executable": "executor_node",
                "parameters": {"control_rate_hz": "$(arg rate)"},
                "required": True,
            },
            {"name": "exec_b", "executable": "executor_node"},
        ],
    }
    data.update(overrides)
    return data


def _node(**fields: object) -> dict:
    return {"name": "n", "executable": "executor_node", **fields}


# -- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_graph(nodez=[]), "unknown key 'nodez' in top level"),
        ({"graph": "tiny"}, "missing key 'nodes' in top level"),
        (_graph(graph="bad name"), "graph='bad name' is invalid"),
        (_graph(nodes=[]), "nodes must be a non-empty list"),
        (_graph(nodes=[_node(paramters={})]), "unknown key 'paramters' in nodes\\[0\\]"),
        (_graph(nodes=[_node(executable="no_such_node")]), "executable='no_such_node' is not"),
        (_graph(nodes=[_node(), _node()]), "repeated: \\['n'\\]"),
        (_graph(nodes=[_node(required="yes")]), "required='yes' is invalid"),
        (_graph(nodes=[_node(parameter_files=["nope.yaml"])]), "parameter file 'nope.yaml' not"),
        (_graph(nodes=[_node(parameters={"x": "$(arg nope)"})]), "declares no argument 'nope'"),
        (_graph(nodes=[_node(parameters={"x": {"a": 1}})]), "parameter x=\\{'a': 1\\} is invalid"),
        (_graph(nodes=[_node(parameters={"x": "$(env HOME)"})]), "only \\$\\(arg name\\) exists"),
        (_graph(nodes=[_node(remappings={"/a": "not a topic"})]), "remapping '/a' -> 'not a"),
        (_graph(arguments={"rate": {"defualt": 1}}), "unknown key 'defualt' in arguments.rate"),
        (_graph(nodes=[_node(when={"nope": "x"})]), "when names 'nope', which is no argument"),
        (_graph(nodes=[_node(when="rate")]), "when must be a mapping"),
        (_graph(arguments={"d": {"default": "x", "choices": ["a", "b"]}}), "default 'x' is not"),
        (_graph(arguments={"d": {"default": "a", "choices": "a b"}}), "choices must be a list"),
        (_graph(nodes=[_node(when={"rate": "1"})]), "no node runs with the arguments"),
    ],
)
def test_invalid_graphs_name_the_bad_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        graph_from_dict(data, Path("tiny.yaml"))


def test_launch_arguments_substitute_with_yaml_types() -> None:
    graph = graph_from_dict(_graph(), Path("tiny.yaml"), {"rate": "40"})
    assert graph.node("exec_a").parameters == {"control_rate_hz": 40}
    graph = graph_from_dict(_graph(), Path("tiny.yaml"))
    assert graph.node("exec_a").parameters == {"control_rate_hz": 25.0}
    embedded = _graph(
        arguments={"ns": {"default": "left"}},
        nodes=[_node(parameters={"label": "arm_$(arg ns)"}, remappings={"/x": "/$(arg ns)/x"})],
    )
    node = graph_from_dict(embedded, Path("e.yaml")).nodes[0]
    assert node.parameters == {"label": "arm_left"} and node.remappings == (("/x", "/left/x"),)


def test_when_picks_nodes_by_argument_and_choices_are_enforced() -> None:
    data = _graph(
        arguments={"driver": {"default": "sim", "choices": ["sim", "real"]}},
        nodes=[
            _node(name="camera", when={"driver": "sim"}, parameters={"src": "render"}),
            _node(name="camera", when={"driver": ["real", "other"]}, parameters={"src": "rs"}),
            _node(name="always"),
        ],
    )
    sim = graph_from_dict(data, Path("w.yaml"))
    assert [n.name for n in sim.nodes] == ["camera", "always"]
    assert sim.node("camera").parameters == {"src": "render"}
    real = graph_from_dict(data, Path("w.yaml"), {"driver": "real"})
    assert real.node("camera").parameters == {"src": "rs"}
    with pytest.raises(ConfigError, match=r"driver:='rael' is invalid: choose one of"):
        graph_from_dict(data, Path("w.yaml"), {"driver": "rael"})


def test_launch_argument_errors() -> None:
    with pytest.raises(ConfigError, match="unknown launch argument\\(s\\) \\['nope'\\]"):
        graph_from_dict(_graph(), Path("tiny.yaml"), {"nope": "1"})
    required = _graph(arguments={"rate": {"description": "needed"}})
    with pytest.raises(ConfigError, match="'rate' has no default and must be given"):
        graph_from_dict(required, Path("tiny.yaml"))
    assert parse_launch_arguments(["a:=1", "model_path:=/x:y.onnx", "e:="]) == {
        "a": "1",
        "model_path": "/x:y.onnx",
        "e": "",
    }
    with pytest.raises(ConfigError, match="write name:=value"):
        parse_launch_arguments(["model_path=/x.onnx"])


def test_parameter_values_render_as_ros_yaml() -> None:
    assert ros_yaml(True) == "true" and ros_yaml(15) == "15" and ros_yaml(0.5) == "0.5"
    assert ros_yaml("/x.onnx") == "/x.onnx" and ros_yaml("cpu") == "cpu"
    assert ros_yaml("") == "''" and ros_yaml("15") == "'15'" and ros_yaml("true") == "'true'"
    assert ros_yaml("it's") == "it's" and ros_yaml("a: b") == "'a: b'"
    assert ros_yaml(["a", "b"]) == "[a, b]" and ros_yaml([1.0, 2.0]) == "[1.0, 2.0]"


def test_sim_widowx_graph_gives_the_ros2_launch_arguments() -> None:
    graph = load_graph("sim_widowx", {"model_path": "/tmp/m.onnx", "camera_rate_hz": "20"})
    assert [n.name for n in graph.nodes] == ["sim", "policy", "executor"]
    assert all(n.required for n in graph.nodes)
    params = str(PROJECT_ROOT / "config" / "sim_widowx.params.yaml")
    policy = graph.node("policy").command("python")
    assert policy[:3] == ["python", "-m", "human_video_policy.nodes.policy_node"]
    assert policy[3:8] == ["--ros-args", "-r", "__node:=policy", "--params-file", params]
    assert "model_path:=/tmp/m.onnx" in policy
    assert "camera_rate_hz:=20" in graph.node("sim").command()
    default = load_graph("sim_widowx").node("policy").command()
    assert "model_path:=''" in default  # empty = the committed default model


LAUNCH_FILES = sorted((PROJECT_ROOT / "launch").glob("*.launch.py"))


def test_every_graph_has_a_launch_file_and_back() -> None:
    graphs = {p.stem for p in (PROJECT_ROOT / "config" / "graphs").glob("*.yaml")}
    launches = {p.name.removesuffix(".launch.py") for p in LAUNCH_FILES}
    assert graphs == launches


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_builds_the_same_nodes(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Each launch file, with stand-ins for launch/launch_ros (not installable here), turns its
    graph yaml into Node actions with the graph's files, parameters and remappings."""
    graph_name = path.name.removesuffix(".launch.py")
    created: dict[str, list] = {"nodes": [], "arguments": [], "description": []}

    class Recorder:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.args, self.kwargs = args, kwargs

    class LaunchConfiguration(Recorder):
        def perform(self, context: dict) -> str:
            return context[self.args[0]]

    class Node(Recorder):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)
            created["nodes"].append(kwargs)

    class DeclareLaunchArgument(Recorder):
        def __init__(self, name: str, **kwargs: object) -> None:
            super().__init__(name, **kwargs)
            created["arguments"].append((name, kwargs))

    fakes = {
        "launch": types.ModuleType("launch"),
        "launch.actions": types.ModuleType("launch.actions"),
        "launch.substitutions": types.ModuleType("launch.substitutions"),
        "launch_ros": types.ModuleType("launch_ros"),
        "launch_ros.actions": types.ModuleType("launch_ros.actions"),
    }
    fakes["launch"].LaunchDescription = lambda actions: created["description"].extend(actions)
    fakes["launch.actions"].DeclareLaunchArgument = DeclareLaunchArgument
    fakes["launch.actions"].OpaqueFunction = Recorder
    fakes["launch.actions"].Shutdown = Recorder
    fakes["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    fakes["launch_ros.actions"].Node = Node
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(f"{graph_name}_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate_launch_description()

    declared = {name: kwargs["default_value"] for name, kwargs in created["arguments"]}
    graph = load_graph(graph_name)
    assert declared == {name: a.default for name, a in graph.arguments.items()}
    opaque = created["description"][-1]
    values = dict(declared)
    if graph_name == "sim_widowx":
        values["model_path"] = "/tmp/m.onnx"
    opaque.kwargs["function"](values)
    expected = load_graph(graph_name, values)
    assert [n["name"] for n in created["nodes"]] == [n.name for n in expected.nodes]
    for kwargs, spec_ in zip(created["nodes"], expected.nodes, strict=True):
        assert kwargs["package"] == "human_video_policy"
        assert kwargs["executable"] == spec_.executable
        files = [str(p) for p in spec_.parameter_files]
        assert kwargs["parameters"][: len(files)] == files
        if spec_.parameters:
            assert kwargs["parameters"][-1] == spec_.parameters
        assert kwargs["remappings"] == list(spec_.remappings)
        assert (kwargs["on_exit"] is not None) == spec_.required  # required: Shutdown
    if graph_name == "sim_widowx":
        assert created["nodes"][1]["parameters"][-1]["model_path"] == "/tmp/m.onnx"


def test_node_environment_sets_the_discovery_profile() -> None:
    env = node_environment({"PATH": "/bin"})
    assert env["FASTRTPS_DEFAULT_PROFILES_FILE"].endswith("config/fastdds_localhost.xml")
    assert Path(env["FASTRTPS_DEFAULT_PROFILES_FILE"]).is_file()
    kept = node_environment({"FASTRTPS_DEFAULT_PROFILES_FILE": "/mine.xml"})
    assert kept["FASTRTPS_DEFAULT_PROFILES_FILE"] == "/mine.xml"


# -- launching real processes --------------------------------------------------------------
def _write_tiny_graph(tmp_path: Path, exec_a_parameters: dict | None = None) -> Path:
    params = tmp_path / "b.params.yaml"
    params.write_text(yaml.safe_dump({"exec_b": {"ros__parameters": {"execute_steps": 3}}}))
    data = _graph()
    data["nodes"][0]["parameters"].update(exec_a_parameters or {})
    data["nodes"][1].update(
        parameter_files=[str(params)],
        remappings={"/arm/joint_commands": "/b/joint_commands"},
        required=False,
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _launch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "human_video_policy.cli.launch_cmd", *args]


def _parameter(probe: RosProbe, node: str, name: str) -> object:
    client = probe.node.create_client(GetParameters, f"/{node}/get_parameters")
    assert client.wait_for_service(timeout_sec=10.0), f"/{node}/get_parameters not available"
    future = client.call_async(GetParameters.Request(names=[name]))
    assert wait_for(future.done, 10.0)
    value = future.result().values[0]
    return {2: value.integer_value, 3: value.double_value, 4: value.string_value}[value.type]


def _diagnostics_from(recording, names: set[str]) -> bool:
    seen = {s.name for m in recording.messages() for s in m.status}
    return names <= seen


@pytest.mark.ros
def test_tiny_graph_runs_two_processes_and_stops_on_sigint(tmp_path: Path) -> None:
    graph = _write_tiny_graph(tmp_path)
    with (
        RosProbe("probe_tiny") as probe,
        start_process(_launch_command(str(graph), "rate:=40")) as launcher,
    ):
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        assert wait_for(lambda: _diagnostics_from(diagnostics, {"exec_a", "exec_b"}), 30.0), (
            launcher.output()
        )
        assert _parameter(probe, "exec_a", "control_rate_hz") == 40.0  # launch argument
        assert _parameter(probe, "exec_b", "execute_steps") == 3  # parameter file
        publishers = probe.node.get_publishers_info_by_topic("/b/joint_commands")
        assert [p.node_name for p in publishers] == ["exec_b"]  # remapping
        assert launcher.stop(signal.SIGINT, timeout=30.0) == 0
        output = launcher.output()
    assert "[exec_a] " in output and "[exec_b] " in output
    assert "[launch] done: exit code 0" in output


@pytest.mark.ros
def test_killing_a_required_node_stops_the_graph_with_an_error(tmp_path: Path) -> None:
    graph = _write_tiny_graph(tmp_path)
    with RosProbe("probe_kill") as probe, start_process(_launch_command(str(graph))) as launcher:
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        assert wait_for(lambda: _diagnostics_from(diagnostics, {"exec_a", "exec_b"}), 30.0)
        pids = dict(re.findall(r"started (\w+) \(pid (\d+)\)", launcher.output()))
        os.kill(int(pids["exec_a"]), signal.SIGKILL)
        code = launcher.wait(timeout=30.0)
        output = launcher.output()
    assert code != 0, output
    assert "exec_a exited with code -9 (required, stopping the graph)" in output
    with pytest.raises(ProcessLookupError):
        os.kill(int(pids["exec_b"]), 0)  # the other node is gone too


@pytest.mark.ros
def test_a_node_rejecting_its_parameters_fails_the_launch_with_code_2(tmp_path: Path) -> None:
    graph = _write_tiny_graph(tmp_path, {"execute_steps": 0})
    with start_process(_launch_command(str(graph))) as launcher:
        code = launcher.wait(timeout=60.0)
        output = launcher.output()
    assert code == 2, output
    assert "[exec_a] exec_a: error: parameter execute_steps=0 is invalid" in output


@pytest.mark.ros
def test_duration_stops_the_graph_cleanly(tmp_path: Path) -> None:
    graph = load_graph(_write_tiny_graph(tmp_path))
    output = io.StringIO()
    start = time.monotonic()
    assert run_graph(graph, duration_s=3.0, output=output) == 0, output.getvalue()
    assert time.monotonic() - start < 20.0
    assert "stopping (duration of 3 s elapsed)" in output.getvalue()
