"""The node base pattern: parameters, exit codes, clean shutdown on signals, sim time."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from ros_helpers import RosProbe, node_command, start_process, wait_for
from rosgraph_msgs.msg import Clock

from human_video_policy.errors import ConfigError
from human_video_policy.nodes.base import (
    HvpNode,
    RateMeter,
    format_value,
    node_name_from_args,
    run_node,
)
from human_video_policy.nodes.conversions import seconds_to_stamp, stamp_to_seconds
from human_video_policy.validation import check_range

pytestmark = pytest.mark.ros


# -- parameters, in process ----------------------------------------------------------------
class _Demo(HvpNode):
    def __init__(self, **kwargs):
        super().__init__("demo", **kwargs)
        self.rate = self.param(
            "rate_hz", 15.0, "a rate", lambda n, v: check_range(n, v, 10.0, 30.0)
        )
        self.label = self.param("label", "x", "a label")
        self.count = self.param("count", 3, "a count")


def _make_demo(overrides: dict) -> tuple[rclpy.Context, _Demo | None, Exception | None]:
    from rclpy.parameter import Parameter

    context = rclpy.Context()
    rclpy.init(args=[], context=context)
    try:
        node = _Demo(
            context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
        return context, node, None
    except ConfigError as exc:
        return context, None, exc


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, (15.0, "x", 3)),
        ({"rate_hz": 20}, (20.0, "x", 3)),  # an integer is fine for a float parameter
        ({"label": "y", "count": 5}, (15.0, "y", 5)),
    ],
)
def test_parameters_are_declared_and_coerced(overrides: dict, expected: tuple) -> None:
    context, node, error = _make_demo(overrides)
    try:
        assert error is None
        assert (node.rate, node.label, node.count) == expected
        assert isinstance(node.rate, float)
        descriptor = node.describe_parameter("rate_hz")
        assert descriptor.description == "a rate" and descriptor.read_only
        result = node.set_parameters([rclpy.parameter.Parameter("rate_hz", value=25.0)])[0]
        assert not result.successful  # read at start only: changing it later is refused
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rate_hz": 5.0}, "parameter rate_hz=5.0 is invalid: must be in [10.0, 30.0]"),
        ({"rate_hz": "fast"}, "parameter rate_hz='fast' is invalid: must be a number"),
        ({"count": 2.5}, "parameter count=2.5 is invalid: must be an integer"),
        ({"label": 7}, "parameter label=7 is invalid: must be a string"),
    ],
)
def test_invalid_parameters_raise_a_clear_config_error(overrides: dict, message: str) -> None:
    context, node, error = _make_demo(overrides)
    try:
        assert node is None
        assert str(error) == message
    finally:
        rclpy.try_shutdown(context=context)


def test_run_node_returns_2_for_config_errors(capsys: pytest.CaptureFixture) -> None:
    code = run_node(_Demo, ["demo", "--ros-args", "-r", "__node:=named", "-p", "rate_hz:=99.0"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == "named: error: parameter rate_hz=99.0 is invalid: must be in [10.0, 30.0]"


def test_node_name_from_args() -> None:
    assert node_name_from_args(["x", "--ros-args", "-r", "__node:=policy"], "d") == "policy"
    assert node_name_from_args(["x"], "d") == "d"


def test_rate_meter_and_value_format() -> None:
    now = [0.0]
    meter = RateMeter(window_s=2.0, clock=lambda: now[0])
    assert meter.rate_hz == 0.0
    for _ in range(21):
        meter.tick()
        now[0] += 0.1
    assert meter.rate_hz == pytest.approx(10.0)
    now[0] += 5.0
    assert meter.rate_hz == 0.0  # old events leave the window
    assert format_value(0.12345) == "0.123" and format_value(float("nan")) == "nan"
    assert format_value(True) == "true" and format_value(3) == "3"


# -- node processes ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "args", "expected"),
    [
        (
            "executor_node",
            ["-r", "__node:=executor", "-p", "execute_steps:=0"],
            "executor: error: parameter execute_steps=0 is invalid: must be in [1, 1000]",
        ),
        (
            "executor_node",
            ["-p", "robot:=ur5"],
            "executor: error: parameter robot='ur5' is invalid: must be one of "
            "['widowx', 'xhand', 'rm75', 'rm75_xhand']",
        ),
        (
            "sim_node",
            ["-r", "__node:=sim", "-p", "camera_rate_hz:=5.0"],
            "sim: error: parameter camera_rate_hz=5.0 is invalid: must be in [10.0, 30.0]",
        ),
    ],
)
def test_invalid_parameter_exits_2_with_one_line(module: str, args: list, expected: str) -> None:
    with start_process(node_command(module, *args)) as process:
        assert process.wait(timeout=60) == 2
        lines = [line for line in process.output().splitlines() if line.strip()]
    assert lines == [expected]


def _wait_for_diagnostics(probe: RosProbe, name: str, timeout: float = 30.0) -> list:
    recording = probe.record("/diagnostics", DiagnosticArray)
    ok = wait_for(
        lambda: any(s.name == name for m in recording.messages() for s in m.status), timeout
    )
    assert ok, f"no /diagnostics from {name} within {timeout} s"
    return recording


@pytest.mark.parametrize(
    ("module", "sig"),
    [
        ("executor_node", signal.SIGINT),
        ("executor_node", signal.SIGTERM),
        ("sim_node", signal.SIGTERM),
    ],
)
def test_signals_end_a_node_cleanly_with_exit_0(module: str, sig: signal.Signals) -> None:
    name = f"clean_{module}"
    with (
        RosProbe("probe_signals") as probe,
        start_process(node_command(module, "-r", f"__node:={name}")) as process,
    ):
        _wait_for_diagnostics(probe, name)
        start = time.monotonic()
        code = process.stop(sig, timeout=15.0)
        output = process.output()
    assert code == 0, output
    assert time.monotonic() - start < 10.0
    assert "Traceback" not in output


def test_a_burst_of_sigint_and_sigterm_still_ends_the_node() -> None:
    """The launcher's SIGINT then the parent-death SIGTERM, many times over: the node ends with
    exit 0. (A Python handler calling Event.set() deadlocked on a second signal: a retarget
    node outlived its graph by an hour; stop_signals.py.)"""
    name = "burst_executor"
    with (
        RosProbe("probe_burst") as probe,
        start_process(node_command("executor_node", "-r", f"__node:={name}")) as process,
    ):
        _wait_for_diagnostics(probe, name)
        start = time.monotonic()
        for k in range(200):
            if process.popen.poll() is not None:
                break
            process.send_signal(signal.SIGINT if k % 2 == 0 else signal.SIGTERM)
        code = process.wait(15.0)
        output = process.output()
    assert code == 0, output
    assert time.monotonic() - start < 10.0
    assert "Traceback" not in output


def test_signal_bridge_calls_back_from_its_thread_and_restores_the_handlers() -> None:
    """In a fresh interpreter (signal handlers belong to the main thread): 500 signals while the
    main thread hammers the same Event the callback sets; every one arrives, nothing hangs."""
    script = """
import os, signal, threading, time
from human_video_policy.stop_signals import SignalBridge
stop = threading.Event()
seen = []
before = signal.getsignal(signal.SIGTERM)
bridge = SignalBridge(lambda s: (seen.append(s), stop.set()))
for k in range(500):
    os.kill(os.getpid(), signal.SIGINT if k % 2 else signal.SIGTERM)
    stop.wait(0.0001)
    stop.clear()
deadline = time.monotonic() + 5
while len(seen) < 500 and time.monotonic() < deadline:
    time.sleep(0.01)
threads = {t.name for t in threading.enumerate()}
bridge.close()
assert signal.getsignal(signal.SIGTERM) is before
print(len(seen), sorted(set(seen)), "signal-bridge" in threads, threading.current_thread().name)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "500", result.stdout
    assert f"[{int(signal.SIGINT)}, {int(signal.SIGTERM)}]" in result.stdout, result.stdout
    assert "True MainThread" in result.stdout, result.stdout


def test_use_sim_time_makes_the_node_follow_clock() -> None:
    name = "simtime_executor"
    with (
        RosProbe("probe_clock") as probe,
        start_process(
            node_command("executor_node", "-r", f"__node:={name}", "-p", "use_sim_time:=true")
        ) as process,
    ):
        clock = probe.publisher("/clock", Clock)
        stop = threading.Event()

        def tick() -> None:
            t = 1000.0
            while not stop.is_set():
                clock.publish(Clock(clock=seconds_to_stamp(t)))
                t += 0.02
                time.sleep(0.02)

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            recording = _wait_for_diagnostics(probe, name)
            assert wait_for(lambda: len(recording) >= 2, 10.0)
            stamps = [
                stamp_to_seconds(m.header.stamp)
                for m in recording.messages()
                if any(s.name == name for s in m.status)
            ]
        finally:
            stop.set()
            thread.join()
        assert process.stop(signal.SIGINT) == 0
    # Stamps come from the node's clock: sim time (~1000 s), not wall time (~1.7e9 s).
    assert 1000.0 <= stamps[-1] < 1100.0, stamps


_STUCK_NODE = """
import sys, time
from human_video_policy.nodes.base import HvpNode, run_node

class Stuck(HvpNode):
    def __init__(self, **kwargs):
        super().__init__("stuck", **kwargs)

    def run(self, stop):
        print("running", flush=True)
        time.sleep(60)  # a main loop blocked in a call that never looks at `stop`

sys.exit(run_node(Stuck, sys.argv[1:]))
"""


def test_a_main_loop_that_ignores_the_stop_ends_within_the_guard(tmp_path) -> None:
    """A node whose main loop is blocked (here: a 60 s sleep) ends 4 s after SIGINT, with
    its stacks on stderr, instead of outliving SIGINT and SIGTERM until a SIGKILL."""
    import sys
    import time

    script = tmp_path / "stuck_node.py"
    script.write_text(_STUCK_NODE)
    with start_process([sys.executable, str(script), "--ros-args", "-r", "__node:=stuck"]) as p:
        assert wait_for(lambda: "running" in p.output(), 30.0), p.output()
        start = time.monotonic()
        p.send_signal(signal.SIGINT)
        assert p.wait(15.0) == 0, p.output()
        assert 3.0 < time.monotonic() - start < 8.0
        assert "main loop did not return within 4 s" in p.output()
        assert "in run" in p.output()  # the stack shows where it was stuck


_FROZEN_NODE = """
import ctypes, sys, threading
from human_video_policy.nodes.base import HvpNode, run_node

class Frozen(HvpNode):
    def __init__(self, **kwargs):
        super().__init__("frozen", **kwargs)

    def run(self, stop):
        print("running", flush=True)
        libc = ctypes.PyDLL(None)  # PyDLL: the call keeps the GIL
        mutex = ctypes.create_string_buffer(64)
        libc.pthread_mutex_lock(mutex)
        libc.pthread_mutex_lock(mutex)  # deadlocked in native code, holding the GIL

sys.exit(run_node(Frozen, sys.argv[1:]))
"""


def test_a_node_frozen_in_native_code_dumps_its_stacks_on_sigabrt(tmp_path) -> None:
    """With the GIL held forever no Python code runs (SIGINT, SIGTERM and the stop guard do
    nothing): the launcher's SIGABRT before SIGKILL makes faulthandler, from C, write every
    thread's stack, so a frozen node says where it froze."""
    script = tmp_path / "frozen_node.py"
    script.write_text(_FROZEN_NODE)
    with start_process([sys.executable, str(script), "--ros-args", "-r", "__node:=frozen"]) as p:
        assert wait_for(lambda: "running" in p.output(), 30.0), p.output()
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert p.popen.poll() is None  # frozen: the stop cannot run
        p.send_signal(signal.SIGABRT)
        assert p.wait(15.0) == -signal.SIGABRT, p.output()
        output = p.output()
    assert "Fatal Python error: Aborted" in output
    assert "frozen_node.py" in output and "in run" in output  # where it froze
