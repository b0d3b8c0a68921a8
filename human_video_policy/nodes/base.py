"""What every node of the stack shares: parameters, diagnostics, and how a node process runs.

A node subclasses :class:`HvpNode`, declares its parameters with :meth:`HvpNode.param` (one
description each, validated with ``human_video_policy.validation``), overrides
:meth:`HvpNode.diagnostics_report` to say how it is doing, and ends its module with::

    def main(args: list[str] | None = None) -> int:
        return run_node(MyNode, args)

:func:`run_node` gives every node the same life cycle:

- an invalid parameter (or model file) ends the process with exit code 2 and one line on
  stderr naming the parameter, its value and what is allowed; so does a ``--ros-args`` command
  line that rcl cannot parse (e.g. an unquoted ``-p driver_config:={host: ...}`` the shell
  split at the space), instead of rcl's traceback;
- SIGINT and SIGTERM end it cleanly with exit code 0, shutting down in the order rclpy needs
  (executor.shutdown, join the spin thread, destroy the node, rclpy.shutdown);
- an unexpected exception in a callback or in the node's main loop ends it with exit code 1.

Time: nodes read time from ``self.get_clock()`` (see :meth:`HvpNode.now_s`), so the
``use_sim_time`` parameter that rclpy declares on every node makes them follow /clock.
"""

from __future__ import annotations

import faulthandler
import math
import os
import re
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from human_video_policy.errors import ConfigError, HvpError, ModelLoadError
from human_video_policy.nodes.qos import RELIABLE
from human_video_policy.stop_signals import SignalBridge

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG_ERROR = 2
# How long a node's main loop may take to return once it was asked to stop (HvpNode).
STOP_TIMEOUT_S = 4.0

Check = Callable[[str, Any], Any]
"""A parameter check: ``check(name, value) -> value``, raising ConfigError (see validation)."""

_KIND_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


# -- diagnostics -----------------------------------------------------------------------------
class Level:
    """DiagnosticStatus levels (the message field is a byte)."""

    OK = DiagnosticStatus.OK
    WARN = DiagnosticStatus.WARN
    ERROR = DiagnosticStatus.ERROR
    STALE = DiagnosticStatus.STALE


@dataclass
class DiagnosticsReport:
    """One node's health for /diagnostics: a level, a one-line message and key/values."""

    level: bytes = Level.OK
    message: str = "ok"
    values: dict[str, Any] = field(default_factory=dict)


def format_value(value: Any) -> str:
    """A diagnostics value as text: floats with 3 decimals, NaN as 'nan'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def diagnostic_status(
    name: str, report: DiagnosticsReport, hardware_id: str = ""
) -> DiagnosticStatus:
    """A DiagnosticStatus named ``name`` from a report."""
    status = DiagnosticStatus()
    status.level = report.level
    status.name = name
    status.message = report.message
    status.hardware_id = hardware_id
    status.values = [KeyValue(key=k, value=format_value(v)) for k, v in report.values.items()]
    return status


class RateMeter:
    """Events per second over the last ``window_s`` seconds of a monotonic clock."""

    def __init__(self, window_s: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.window_s = float(window_s)
        self._clock = clock
        self._times: deque[float] = deque()
        self.count = 0

    def tick(self) -> None:
        now = self._clock()
        self._times.append(now)
        self.count += 1
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    @property
    def rate_hz(self) -> float:
        """Average rate over the window (0 when fewer than two events)."""
        self._trim(self._clock())
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


# -- the node base -------------------------------------------------------------------------
class HvpNode(Node):
    """rclpy Node with the stack's parameter, time and diagnostics conventions.

    Subclasses call ``super().__init__(default_name)``, declare parameters with :meth:`param`,
    and override :meth:`diagnostics_report`; :meth:`run` is the node's main loop in the main
    thread (default: wait for shutdown) while callbacks run in the executor's spin thread.
    ``stop_timeout_s``: how long :meth:`run` may take to return after the stop request before
    the process ends anyway (None: no limit, for a node that must finish writing).
    """

    stop_timeout_s: float | None = STOP_TIMEOUT_S

    def __init__(self, default_name: str, **kwargs: Any) -> None:
        super().__init__(default_name, **kwargs)
        self._exit_request: tuple[int, str] | None = None
        self._diagnostics_pub = None

    # -- parameters ------------------------------------------------------------------------
    def param(
        self,
        name: str,
        default: bool | int | float | str | Sequence[Any],
        description: str,
        check: Check | None = None,
    ) -> Any:
        """Declare a read-only parameter and return its validated value.

        The value must have the type of ``default`` (an integer is accepted for a float
        parameter); ``check(name, value)`` then validates it (e.g.
        ``lambda n, v: check_range(n, v, 10.0, 30.0)``). Any problem raises ConfigError with
        a message naming the parameter, the value and what is allowed.
        """
        descriptor = ParameterDescriptor(
            description=description, read_only=True, dynamic_typing=True
        )
        value = self.declare_parameter(name, default, descriptor).value
        value = self._coerce(name, value, default)
        if check is not None:
            try:
                value = check(name, value)
            except ConfigError as exc:
                raise ConfigError(f"parameter {exc}") from None
        return value

    @staticmethod
    def _coerce(name: str, value: Any, default: Any) -> Any:
        kind = type(default)
        if isinstance(default, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"parameter {name}={value!r} is invalid: must be a list")
            return list(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if type(value) is not kind:
            raise ConfigError(
                f"parameter {name}={value!r} is invalid: must be {_KIND_NAMES.get(kind, kind)}"
            )
        return value

    # -- time ------------------------------------------------------------------------------
    def now_s(self) -> float:
        """Current time of the node's clock (sim time when use_sim_time is true), seconds."""
        return self.get_clock().now().nanoseconds * 1e-9

    def now_msg(self) -> Time:
        """Current time of the node's clock as a message stamp."""
        return self.get_clock().now().to_msg()

    def use_sim_time(self) -> bool:
        return bool(self.get_parameter("use_sim_time").value)

    def create_wall_timer(self, period_s: float, callback: Callable[[], None]):
        """A timer on the steady clock (keeps firing when /clock stops, e.g. for reports)."""
        return self.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))

    # -- topics ------------------------------------------------------------------------------
    def topic(self, name: str) -> str:
        """``name`` as this node resolves it (its namespace applied, ``-r from:=to`` remaps
        too): the name to log, so a remapped topic is named as the graph sees it."""
        return self.resolve_topic_name(name)

    def topics_summary(self) -> str:
        """``subscribes A, B; publishes C`` by the resolved (remapped) names of the node's own
        subscriptions and publishers; /rosout, /parameter_events and /diagnostics left out."""
        common = {"/rosout", "/parameter_events", "/diagnostics"}
        subs = sorted({s.topic_name for s in self.subscriptions} - common)
        pubs = sorted({p.topic_name for p in self.publishers} - common)
        return (
            f"subscribes {', '.join(subs) or 'nothing'}; publishes {', '.join(pubs) or 'nothing'}"
        )

    # -- diagnostics -----------------------------------------------------------------------
    def enable_diagnostics(self, period_s: float = 1.0, hardware_id: str = "") -> None:
        """Publish :meth:`diagnostics_report` on /diagnostics every ``period_s`` (steady clock)."""
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        self._hardware_id = hardware_id
        self.create_wall_timer(period_s, self.publish_diagnostics)

    def diagnostics_report(self) -> DiagnosticsReport:
        """The node's current health; nodes override this."""
        return DiagnosticsReport()

    def publish_diagnostics(self) -> None:
        if self._diagnostics_pub is None:
            return
        msg = DiagnosticArray()
        msg.header.stamp = self.now_msg()
        msg.status = [
            diagnostic_status(self.get_name(), self.diagnostics_report(), self._hardware_id)
        ]
        self._diagnostics_pub.publish(msg)

    # -- life cycle ------------------------------------------------------------------------
    def request_exit(self, code: int, message: str) -> None:
        """Ask :func:`run_node` to end the process with ``code`` (logs ``message``)."""
        if self._exit_request is None:
            self._exit_request = (code, message)

    @property
    def exit_request(self) -> tuple[int, str] | None:
        return self._exit_request

    def run(self, stop: threading.Event) -> None:
        """The node's main loop, run in the main thread until ``stop`` is set.

        Override for work that must stay in one thread (e.g. an OpenGL renderer); return when
        ``stop`` is set. Subscriptions, timers and services run in the spin thread meanwhile.
        """
        stop.wait()

    def close(self) -> None:
        """Release non-ROS resources (called after the executor stopped, before destroy_node)."""


# -- running a node process ----------------------------------------------------------------
def node_name_from_args(args: Sequence[str], default: str) -> str:
    """The name a ``-r __node:=name`` (or ``__name:=``) remap in ``args`` gives, else default."""
    for arg in args:
        for prefix in ("__node:=", "__name:="):
            if arg.startswith(prefix):
                return arg[len(prefix) :]
    return default


def run_node(
    node_factory: Callable[..., HvpNode],
    args: Sequence[str] | None = None,
    default_name: str | None = None,
) -> int:
    """Run one node process: init, spin, and shut down cleanly; returns the exit code.

    Exit codes: 0 after SIGINT/SIGTERM; 2 when the node cannot start because of a parameter,
    configuration or model file (one line on stderr says which); 1 on an unexpected error.
    """
    argv = list(sys.argv if args is None else args)
    # A fatal signal (SIGSEGV, SIGABRT: the launcher's last resort before SIGKILL) writes every
    # thread's Python stack to stderr from C, without the GIL: a node frozen in native code
    # says where.
    if sys.stderr is not None and not faulthandler.is_enabled():
        faulthandler.enable(file=sys.stderr, all_threads=True)
    name = node_name_from_args(
        argv, default_name or getattr(node_factory, "default_name", None) or "node"
    )
    stop = threading.Event()
    # SIGINT/SIGTERM set ``stop`` from a helper thread: a Python handler calling stop.set()
    # deadlocked on the Event's lock when a second signal came in (stop_signals.py).
    signals = SignalBridge(lambda _signum: stop.set())
    context = rclpy.Context()
    node: HvpNode | None = None
    executor: SingleThreadedExecutor | None = None
    spin_thread: threading.Thread | None = None
    failure: list[BaseException] = []
    code = EXIT_OK
    try:
        rejected = _init_rclpy(argv, context)
        if rejected is not None:
            print(f"{name}: error: {rejected}", file=sys.stderr, flush=True)
            return EXIT_CONFIG_ERROR
        try:
            node = node_factory(context=context)
        except (ConfigError, ModelLoadError) as exc:
            print(f"{name}: error: {exc}", file=sys.stderr, flush=True)
            return EXIT_CONFIG_ERROR
        except HvpError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr, flush=True)
            return EXIT_FAILURE
        node.get_logger().info(f"topics: {node.topics_summary()}")  # remapped names
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)

        def spin() -> None:
            try:
                executor.spin()
            except BaseException as exc:  # reported below; ends the process
                failure.append(exc)
                stop.set()

        spin_thread = threading.Thread(target=spin, name=f"{name}-spin", daemon=True)
        spin_thread.start()
        watcher = threading.Thread(
            target=_watch, args=(node, stop, spin_thread), name=f"{name}-watch", daemon=True
        )
        watcher.start()
        run_returned = threading.Event()
        if node.stop_timeout_s is not None:
            _guard_stop(name, stop, run_returned, failure, node.stop_timeout_s)
        try:
            node.run(stop)
        except BaseException as exc:  # reported below
            failure.append(exc)
        finally:
            run_returned.set()
        stop.set()
        watcher.join()
        if failure:
            exc = failure[0]
            if isinstance(exc, (ConfigError, ModelLoadError)):
                print(f"{name}: error: {exc}", file=sys.stderr, flush=True)
                code = EXIT_CONFIG_ERROR
            else:
                print(f"{name}: unexpected error, exiting:", file=sys.stderr)
                traceback.print_exception(exc, file=sys.stderr)
                code = EXIT_FAILURE
        elif node.exit_request is not None:
            code, message = node.exit_request
            print(f"{name}: {message}", file=sys.stderr, flush=True)
        return code
    finally:
        # Shutdown order matters: a spin thread still running when rclpy shuts down can abort.
        stop.set()
        if node is not None:
            _exit_if_cleanup_hangs(name, EXIT_FAILURE if failure else code)
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        if spin_thread is not None:
            spin_thread.join(timeout=5.0)
        if node is not None:
            try:
                node.close()
            finally:
                node.destroy_node()
        rclpy.try_shutdown(context=context)
        signals.close()


def _init_rclpy(argv: list[str], context: rclpy.Context) -> str | None:
    """``rclpy.init``; returns one line saying what is wrong when rcl rejects the ROS arguments.

    Why: rcl reports an unparsable ``-p``/``-r``/``--params-file`` as an RCLError (a traceback,
    exit 1) after logging its own ``Failed to parse global arguments`` line. Its stderr output
    during init is held back and dropped on such an error, so the user sees one line.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    error: RuntimeError | None = None
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            rclpy.init(args=argv, context=context, signal_handler_options=SignalHandlerOptions.NO)
        except (_rclpy.RCLError, _rclpy.UnknownROSArgsError) as exc:
            error = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        text = held.read().decode("utf-8", errors="replace")
    if error is None:
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()
        return None
    if isinstance(error, _rclpy.UnknownROSArgsError):
        return (
            f"unknown ROS argument(s) {error} after --ros-args: a value with spaces must be "
            "quoted, e.g. -p 'name:=[1, 2]'"
        )
    reason = ros_args_error(str(error), argv)
    if reason is None:  # not an argument problem (e.g. the middleware): keep rcl's words
        if text:
            sys.stderr.write(text)
        raise error
    return reason


_RCL_RULE = re.compile(
    r"Couldn't parse (parameter override rule|remap rule|params file): '(.*?)'\. Error: (.*)"
)


def ros_args_error(message: str, argv: Sequence[str]) -> str | None:
    """One line for rcl's "Couldn't parse ..." init error, naming the parameter (None: other).

    ``argv`` is the command line, used to show the value the shell split at a space whole.
    """
    match = _RCL_RULE.search(message)
    if match is None:
        return None
    kind, rule, why = match.groups()
    why = why.split(", at ")[0].strip()
    if kind == "params file":
        path = rule.split(" ", 1)[-1]
        return f"--params-file {path} cannot be used: {why}"
    if kind == "remap rule":
        return f"remap rule {rule!r} cannot be parsed ({why}): expected -r FROM:=TO"
    token = rule.split(" ", 1)[-1] if rule.startswith("-") else rule
    name, sep, value = token.partition(":=")
    if not sep:
        return f"parameter {name}: {rule!r} is not NAME:=VALUE"
    value = _whole_value(argv, token, value)
    if value.lstrip().startswith("{"):
        hint = f"a YAML mapping is passed as a string, quoted twice: -p '{name}:=\"{value}\"'"
    else:
        hint = f"quote a value with spaces, brackets or braces: -p '{name}:={value}'"
    return f"parameter {name}={value!r} cannot be parsed by rcl ({why}): {hint}"


def _whole_value(argv: Sequence[str], token: str, value: str) -> str:
    """``value`` joined with the words the shell split off it (until its brackets balance)."""
    if token not in argv:
        return value
    rest = list(argv[list(argv).index(token) + 1 :])
    while rest and value.count("{") + value.count("[") > value.count("}") + value.count("]"):
        if rest[0].startswith("-"):
            break
        value += " " + rest.pop(0)
    return value


CLEANUP_TIMEOUT_S = 3.0


def _guard_stop(
    name: str,
    stop: threading.Event,
    run_returned: threading.Event,
    failure: list,
    timeout_s: float = STOP_TIMEOUT_S,
) -> None:
    """Ends the process if ``node.run`` has not returned ``timeout_s`` after ``stop`` was set.

    Why: a main loop blocked inside a native call (seen once in a loaded CI-like run: the scene
    camera outlived SIGINT and SIGTERM and was SIGKILLed, failing its graph) cannot see the
    stop. The stop was asked for, so the process ends, with every thread's stack on stderr to
    show where it was stuck, before the launcher's SIGKILL (5 s after SIGINT).
    """

    def guard() -> None:
        stop.wait()
        if run_returned.wait(timeout_s):
            return
        print(
            f"{name}: main loop did not return within {timeout_s:g} s of the stop request; "
            "exiting (stacks below)",
            file=sys.stderr,
            flush=True,
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(EXIT_FAILURE if failure else EXIT_OK)

    threading.Thread(target=guard, name=f"{name}-stop-guard", daemon=True).start()


def _exit_if_cleanup_hangs(name: str, code: int) -> None:
    """Ends the process with ``code`` if rclpy teardown has not finished in CLEANUP_TIMEOUT_S.

    The node has stopped working by then; a teardown stuck inside rclpy (seen once in CI: an
    executor node that outlived SIGINT and SIGTERM after the /clock source exited) must not turn
    a clean stop into a SIGKILL and a failed launch.
    """

    def expire() -> None:
        print(
            f"{name}: rclpy teardown did not finish within {CLEANUP_TIMEOUT_S:g} s; "
            f"exiting with code {code}",
            file=sys.stderr,
            flush=True,
        )
        os._exit(code)

    timer = threading.Timer(CLEANUP_TIMEOUT_S, expire)
    timer.daemon = True
    timer.start()


def _watch(node: HvpNode, stop: threading.Event, spin_thread: threading.Thread) -> None:
    """Sets ``stop`` when the spin thread died or the node asked to exit."""
    while not stop.wait(0.05):
        if not spin_thread.is_alive() or node.exit_request is not None:
            stop.set()
