"""Start a graph's nodes as processes, like ``ros2 launch`` would, where launch_ros is missing.

Each node runs as ``python -m human_video_policy.nodes.<executable> --ros-args -r
__node:=<name> --params-file <file> -p k:=v -r from:=to`` (:meth:`NodeSpec.command`), in its
own process group, with each output line prefixed by ``[name]``.

Stopping (Ctrl-C, SIGTERM, ``duration`` elapsed, or a required node exiting): SIGINT to every
node, SIGTERM to those still running after ``sigint_timeout_s``, SIGKILL after
``sigterm_timeout_s`` more (ros2 launch's escalation), with a SIGABRT just before it so that a
frozen node writes its threads' stacks to its log. Nodes also get SIGTERM if the launcher
itself dies, even by SIGKILL (Linux parent-death signal, :mod:`human_video_policy.parent_death`;
children are started from the thread that calls :meth:`GraphLauncher.start`, which must outlive
them), so a killed launcher leaves no orphans.

The exit code is 0 when every node ended with 0 after being asked to stop, else the exit code
of the first node that failed (1 if it died from a signal or exited 0 on its own while
required).

Environment: FASTRTPS_DEFAULT_PROFILES_FILE defaults to config/fastdds_localhost.xml (fast
discovery); ROS_DOMAIN_ID / ROS_AUTOMATIC_DISCOVERY_RANGE pass through unchanged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from human_video_policy.bringup.graph import GraphSpec, NodeSpec
from human_video_policy.parent_death import die_with_parent
from human_video_policy.resources import share_dir

PROFILE_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE",)
#: Seconds a node gets to write its stacks after SIGABRT before SIGKILL.
ABORT_WAIT_S = 2.0


def fastdds_profile() -> Path:
    """The Fast DDS profile with fast discovery (config/fastdds_localhost.xml)."""
    return share_dir() / "config" / "fastdds_localhost.xml"


def node_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: ``base`` + the fast-discovery profile + unbuffered output."""
    env = dict(os.environ if base is None else base)
    for variable in PROFILE_VARIABLES:
        env.setdefault(variable, str(fastdds_profile()))
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    # Make the package importable in the children even when it is not installed.
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if package_root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([package_root, *paths])
    return env


@dataclass
class NodeProcess:
    """A running node and what became of it."""

    spec: NodeSpec
    popen: subprocess.Popen
    reader: threading.Thread | None = None
    returncode: int | None = None
    asked_to_stop: bool = False
    killed: bool = False
    ended_at: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def failed(self) -> bool:
        # A node that exits 0 finished its job (e.g. the sim after its episodes); if it is
        # required, the graph stops cleanly with it, as ros2 launch's Shutdown action does.
        return self.returncode is not None and self.returncode != 0


@dataclass
class LaunchResult:
    exit_code: int
    processes: list[NodeProcess] = field(default_factory=list)
    reason: str = ""


class GraphLauncher:
    """Runs a :class:`GraphSpec` as processes; see the module docstring.

    Args:
        graph: the resolved graph.
        env: environment of the nodes (default: this process's, see :func:`node_environment`).
        output: where prefixed lines go (default stdout).
        sigint_timeout_s / sigterm_timeout_s: escalation delays when stopping.
        python: interpreter for the nodes (default this one).
    """

    def __init__(
        self,
        graph: GraphSpec,
        env: Mapping[str, str] | None = None,
        output: TextIO | None = None,
        sigint_timeout_s: float = 5.0,
        sigterm_timeout_s: float = 5.0,
        python: str | None = None,
    ) -> None:
        self.graph = graph
        self.env = node_environment(env)
        self.output = output or sys.stdout
        self.sigint_timeout_s = sigint_timeout_s
        self.sigterm_timeout_s = sigterm_timeout_s
        self.python = python or sys.executable
        self.processes: list[NodeProcess] = []
        self._print_lock = threading.Lock()
        self._stop_reason: str | None = None

    # -- output ----------------------------------------------------------------------------
    def log(self, line: str, name: str = "launch") -> None:
        with self._print_lock:
            self.output.write(f"[{name}] {line}\n")
            self.output.flush()

    def _pump(self, process: NodeProcess) -> None:
        stream = process.popen.stdout
        assert stream is not None
        for line in stream:
            self.log(line.rstrip("\n"), process.name)
        stream.close()

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start every node (all spawned before any output thread, so forks see no threads)."""
        for spec in self.graph.nodes:
            command = spec.command(self.python)
            self.log(f"starting {spec.name}: {' '.join(command)}")
            popen = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
            self.processes.append(NodeProcess(spec, popen))
            self.log(f"started {spec.name} (pid {popen.pid})")
        for process in self.processes:
            process.reader = threading.Thread(
                target=self._pump, args=(process,), name=f"out-{process.name}", daemon=True
            )
            process.reader.start()

    def request_stop(self, reason: str) -> None:
        """Ask :meth:`wait` to stop the graph (thread- and signal-safe)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def _poll(self) -> None:
        for process in self.processes:
            if process.returncode is None and process.popen.poll() is not None:
                process.returncode = process.popen.returncode
                process.ended_at = time.monotonic()
                if process.asked_to_stop:
                    continue
                what = "required, stopping the graph" if process.spec.required else "not required"
                self.log(f"{process.name} exited with code {process.returncode} ({what})")
                if process.spec.required:
                    self.request_stop(f"required node {process.name} exited")

    def wait(self, duration_s: float | None = None, poll_s: float = 0.05) -> LaunchResult:
        """Run until a stop request, a required node exiting, or ``duration_s``; then stop."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while self._stop_reason is None:
            self._poll()
            if all(p.returncode is not None for p in self.processes):
                self.request_stop("all nodes exited")
            elif deadline is not None and time.monotonic() >= deadline:
                self.request_stop(f"duration of {duration_s:g} s elapsed")
            else:
                time.sleep(poll_s)
        return self.stop(self._stop_reason or "")

    def _signal_alive(self, sig: signal.Signals) -> None:
        for process in self.processes:
            if process.returncode is None and process.popen.poll() is None:
                process.asked_to_stop = True
                try:
                    os.kill(process.popen.pid, sig)
                except ProcessLookupError:
                    pass

    def _wait_all(self, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self._poll()
            if all(p.returncode is not None for p in self.processes):
                return True
            time.sleep(0.02)
        self._poll()
        return all(p.returncode is not None for p in self.processes)

    def stop(self, reason: str = "stop requested") -> LaunchResult:
        """SIGINT, then SIGTERM, then SIGKILL; returns the result once every node ended."""
        self.log(f"stopping ({reason})")
        self._poll()
        for process in self.processes:
            if process.returncode is None:
                process.asked_to_stop = True
        self._signal_alive(signal.SIGINT)
        if not self._wait_all(self.sigint_timeout_s):
            alive = [p.name for p in self.processes if p.returncode is None]
            self.log(f"still running after SIGINT ({self.sigint_timeout_s:g} s): {alive}; SIGTERM")
            self._signal_alive(signal.SIGTERM)
            if not self._wait_all(self.sigterm_timeout_s):
                alive = [p.name for p in self.processes if p.returncode is None]
                # SIGABRT first: a node's faulthandler (nodes/base.py) writes every thread's
                # stack to its output without needing the GIL, so a node frozen in native code
                # says where; then SIGKILL for anything still there.
                self.log(f"still running after SIGTERM: {alive}; SIGABRT (stacks), then SIGKILL")
                for process in self.processes:
                    if process.returncode is None:
                        process.killed = True
                        process.popen.send_signal(signal.SIGABRT)
                self._wait_all(ABORT_WAIT_S)
                for process in self.processes:
                    if process.returncode is None:
                        process.killed = True
                        process.popen.kill()
                for process in self.processes:
                    process.popen.wait()
                self._wait_all(1.0)
        for process in self.processes:
            if process.reader is not None:
                process.reader.join(timeout=2.0)
        failed = [p for p in self.processes if p.failed]
        for process in failed:
            self.log(f"{process.name} failed (exit code {process.returncode})")
        code = 0
        if failed:
            first = min(failed, key=lambda p: p.ended_at or 0.0)
            code = first.returncode if first.returncode and first.returncode > 0 else 1
        self.log(f"done: exit code {code}")
        return LaunchResult(code, list(self.processes), reason)


def run_graph(
    graph: GraphSpec,
    duration_s: float | None = None,
    env: Mapping[str, str] | None = None,
    output: TextIO | None = None,
    on_start: Callable[[GraphLauncher], None] | None = None,
) -> int:
    """Launch ``graph`` until Ctrl-C / SIGTERM / a required node exits / ``duration_s``.

    Installs SIGINT and SIGTERM handlers while it runs (main thread only); returns the exit code.
    """
    launcher = GraphLauncher(graph, env=env, output=output)
    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM):

            def handler(signum: int, _frame: object) -> None:
                launcher.request_stop(f"received {signal.Signals(signum).name}")

            previous[sig] = signal.signal(sig, handler)
    try:
        launcher.start()
        if on_start is not None:
            on_start(launcher)
        return launcher.wait(duration_s).exit_code
    finally:
        if any(p.returncode is None for p in launcher.processes):
            launcher.stop("launcher exiting")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
