"""Helpers for tests that run real rclpy nodes over DDS on loopback.

Importing this module isolates the test process: it reserves a ROS_DOMAIN_ID no other test
process on this machine holds (a file lock per id, released when the process ends), and sets
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and the fast-discovery Fast DDS profile. Child processes
started from the test inherit all three, so a test and the graph it launches meet, and two test
processes never see each other. conftest moves each test module to a domain this process has not
used before (:func:`use_fresh_domain`): Fast DDS names its shared-memory ports after the domain,
and a participant killed with SIGKILL (several tests do that on purpose) can leave a port whose
lock is never released, on which a later participant of the same domain blocks in C++ for good.

    from ros_helpers import RosProbe, node_command, start_process, stop_process

    with RosProbe("probe") as probe:
        states = probe.record("/arm/joint_states", JointState)
        probe.wait_for(lambda: len(states) > 10, timeout=10)

Everything is torn down in the order rclpy needs: executor.shutdown, join the spin thread,
destroy nodes, shut down the context.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LOCK_DIR = Path(tempfile.gettempdir()) / "hvp_ros_domain_locks"
_DOMAIN_RANGE = range(1, 102)  # 0 is everyone's default; > 101 collides with ephemeral ports


_used_domains: set[int] = set()


def _reserve_domain_id(start: int) -> tuple[int, Any]:
    """Lock the first id from ``start`` on (cyclically) that no test process holds, preferring
    ids this process has not used yet."""
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    order = [_DOMAIN_RANGE[(start + k) % len(_DOMAIN_RANGE)] for k in range(len(_DOMAIN_RANGE))]
    order.sort(key=lambda domain: domain in _used_domains)  # stable: unused ones first
    for domain in order:
        handle = open(_LOCK_DIR / f"{domain}.lock", "w")  # noqa: SIM115 - held while in use
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        handle.write(str(os.getpid()))
        handle.flush()
        _used_domains.add(domain)
        return domain, handle
    raise RuntimeError(f"every ROS_DOMAIN_ID in {_DOMAIN_RANGE} is held by a test process")


DOMAIN_ID, _DOMAIN_LOCK = _reserve_domain_id(os.getpid() % len(_DOMAIN_RANGE))
os.environ["ROS_DOMAIN_ID"] = str(DOMAIN_ID)


def use_fresh_domain() -> int:
    """Move this process (and the children it starts from now on) to another ROS_DOMAIN_ID,
    one it has not used before while any is free; release the old one. Call it between test
    modules, with no node of the old domain alive. Returns the new id."""
    global DOMAIN_ID, _DOMAIN_LOCK
    domain, handle = _reserve_domain_id(DOMAIN_ID)
    _DOMAIN_LOCK.close()
    DOMAIN_ID, _DOMAIN_LOCK = domain, handle
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    return domain


os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(
    PROJECT_ROOT / "config" / "fastdds_localhost.xml"
)
os.environ.pop("ROS_LOCALHOST_ONLY", None)

import rclpy  # noqa: E402 - after the environment above is set
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402


def ros_env(**extra: str) -> dict[str, str]:
    """Environment for child processes of this test (same domain, unbuffered output)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *paths])
    env.update(extra)
    return env


class Recording:
    """Messages received on one topic: (monotonic receive time, message) pairs, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[float, Any]] = []

    def add(self, msg: Any) -> None:
        with self._lock:
            self._items.append((time.monotonic(), msg))

    def items(self) -> list[tuple[float, Any]]:
        with self._lock:
            return list(self._items)

    def messages(self) -> list[Any]:
        return [m for _, m in self.items()]

    def since(self, t: float) -> list[tuple[float, Any]]:
        return [(ts, m) for ts, m in self.items() if ts >= t]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class RosProbe:
    """A node in its own rclpy context, spun in a background thread, for tests to observe
    and poke a graph. Use as a context manager."""

    def __init__(self, name: str = "probe") -> None:
        self.name = f"{name}_{os.getpid()}"
        self.context = rclpy.Context()
        self.node: Any = None
        self.executor: SingleThreadedExecutor | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RosProbe:
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(self.name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=5.0)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self.node is not None:
            self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def record(self, topic: str, msg_type: type, qos: QoSProfile | int = 10) -> Recording:
        recording = Recording()
        self.node.create_subscription(msg_type, topic, recording.add, qos)
        return recording

    def publisher(self, topic: str, msg_type: type, qos: QoSProfile | int = 10) -> Any:
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher: Any, count: int = 1, timeout: float = 10.0) -> bool:
        return wait_for(lambda: publisher.get_subscription_count() >= count, timeout)


def wait_for(predicate: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll)
    return bool(predicate())


# -- processes -----------------------------------------------------------------------------
def node_command(module: str, *ros_args: str) -> list[str]:
    """``python -m human_video_policy.nodes.<module> --ros-args <ros_args>``."""
    command = [sys.executable, "-m", f"human_video_policy.nodes.{module}"]
    return command + (["--ros-args", *ros_args] if ros_args else [])


class Process:
    """A child process whose combined output goes to a temporary file (never blocks on a pipe)."""

    def __init__(self, command: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.command = list(command)
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self.popen = subprocess.Popen(
            self.command,
            env=env or ros_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait; SIGKILL (and return -9) if it does not end in ``timeout``."""
        self.send_signal(sig)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            return -signal.SIGKILL

    def close(self) -> None:
        if self.popen.poll() is None:
            self.stop(signal.SIGKILL, timeout=5.0)
        self._log.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_process(command: Sequence[str], env: dict[str, str] | None = None) -> Process:
    return Process(command, env)


def stop_process(process: Process, sig: int = signal.SIGINT, timeout: float = 15.0) -> int:
    return process.stop(sig, timeout)


# -- what tests read and drive -------------------------------------------------------------
def diagnostic_values(recording: Recording, name: str) -> dict[str, str]:
    """Key/values of the newest /diagnostics status named ``name`` ({} before the first)."""
    for msg in reversed(recording.messages()):
        for status in msg.status:
            if status.name == name:
                return {kv.key: kv.value for kv in status.values}
    return {}


class PeriodicThread:
    """Calls :meth:`step` every ``period_s`` (steady schedule) in a daemon thread while the
    ``with`` block is open; tests subclass it for publishers that must keep going."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def step(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        next_time = time.monotonic()
        while not self._stop.is_set():
            self.step()
            next_time += self.period_s
            self._stop.wait(max(0.0, next_time - time.monotonic()))

    def __enter__(self) -> PeriodicThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
