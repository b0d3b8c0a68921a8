"""``hvp topic``: look at the running graph without ros2cli.

    hvp topic list                                  # topics and their types
    hvp topic hz /arm/joint_states [--window N] [--duration S]
    hvp topic echo /policy/status [--count N]

The message type is discovered from the graph and imported dynamically; the subscription's
QoS follows the publishers' (best effort if any publisher is, transient local if all are), so
camera topics and latched topics both work. Long arrays are abbreviated.
"""

from __future__ import annotations

import argparse
import array
import importlib
import itertools
import math
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MAX_ITEMS = 16


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("topic", help="list, measure and print ROS topics")
    commands = parser.add_subparsers(dest="topic_command", metavar="<list|hz|echo>")

    listing = commands.add_parser("list", help="topics and their types")
    listing.add_argument(
        "--wait", type=float, default=1.0, metavar="S", help="discovery time before listing (s)"
    )
    listing.set_defaults(func=run_list)

    hz = commands.add_parser("hz", help="message rate of a topic (receive times)")
    hz.add_argument("topic")
    hz.add_argument(
        "--window", type=int, default=1000, metavar="N", help="rate over the last N messages"
    )
    hz.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C)",
    )
    hz.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="S",
        help="how long to wait for the topic to appear (s)",
    )
    hz.set_defaults(func=run_hz)

    echo = commands.add_parser("echo", help="print messages of a topic")
    echo.add_argument("topic")
    echo.add_argument("--count", type=int, default=None, metavar="N", help="stop after N messages")
    echo.add_argument(
        "--duration", type=float, default=None, metavar="S", help="stop after S seconds"
    )
    echo.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="S",
        help="how long to wait for the topic to appear (s)",
    )
    echo.add_argument("--full", action="store_true", help="do not abbreviate long arrays")
    echo.set_defaults(func=run_echo)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


# -- ROS session ---------------------------------------------------------------------------
@contextmanager
def ros_session(name: str) -> Iterator[Any]:
    """An rclpy context with one node, torn down in the safe order."""
    if "FASTRTPS_DEFAULT_PROFILES_FILE" not in os.environ:
        from human_video_policy.bringup.launcher import fastdds_profile

        os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(fastdds_profile())
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    context = rclpy.Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(f"{name}_{os.getpid()}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield node, executor
    finally:
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def import_message_type(type_name: str) -> type:
    """``sensor_msgs/msg/Image`` -> the Python message class."""
    parts = type_name.split("/")
    if len(parts) != 3:
        raise ValueError(f"message type {type_name!r} is not of the form package/msg/Type")
    package, kind, name = parts
    module = importlib.import_module(f"{package}.{kind}")
    return getattr(module, name)


def wait_for_topic(node: Any, executor: Any, topic: str, wait_s: float) -> str | None:
    """The type of ``topic`` once it appears in the graph, or None after ``wait_s``."""
    end = time.monotonic() + wait_s
    while True:
        types = dict(node.get_topic_names_and_types())
        if types.get(topic):
            return types[topic][0]
        if time.monotonic() >= end:
            return None
        executor.spin_once(timeout_sec=0.05)


def matching_qos(node: Any, topic: str) -> Any:
    """A subscription QoS compatible with every publisher of ``topic``."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    infos = node.get_publishers_info_by_topic(topic)
    reliable = bool(infos) and all(
        i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos
    )
    latched = bool(infos) and all(
        i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos
    )
    return QoSProfile(
        depth=10,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def _subscribe(node: Any, executor: Any, topic: str, wait_s: float, callback: Any) -> bool:
    type_name = wait_for_topic(node, executor, topic, wait_s)
    if type_name is None:
        print(
            f"topic {topic} not found after {wait_s:g} s (is the graph running, with the "
            f"same ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}?)",
            file=sys.stderr,
        )
        return False
    try:
        message_type = import_message_type(type_name)
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"cannot import the type {type_name} of {topic}: {exc}", file=sys.stderr)
        return False
    node.create_subscription(message_type, topic, callback, matching_qos(node, topic))
    return True


# -- formatting ----------------------------------------------------------------------------
def _is_message(value: Any) -> bool:
    return hasattr(value, "get_fields_and_field_types")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if value == "" or value.strip() != value or ":" in value else value
    if isinstance(value, bytes):
        return str(value[0]) if len(value) == 1 else repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def _is_sequence(value: Any) -> bool:
    if isinstance(value, bytes):
        return len(value) != 1  # a `byte` field arrives as bytes of length 1
    return isinstance(value, (list, tuple, array.array)) or hasattr(value, "tolist")


def format_message(msg: Any, indent: int = 0, max_items: int | None = MAX_ITEMS) -> list[str]:
    """A message as YAML-like lines; sequences longer than ``max_items`` are abbreviated."""
    pad = "  " * indent
    lines: list[str] = []
    for field in msg.get_fields_and_field_types():
        value = getattr(msg, field)
        if _is_message(value):
            lines.append(f"{pad}{field}:")
            lines += format_message(value, indent + 1, max_items)
        elif _is_sequence(value):
            items = value.tolist() if hasattr(value, "tolist") else list(value)
            count = len(items)
            shown = items if max_items is None else items[:max_items]
            if items and _is_message(items[0]):
                lines.append(f"{pad}{field}:")
                for item in shown:
                    sub = format_message(item, indent + 1, max_items)
                    lines.append(f"{pad}- {sub[0].lstrip()}")
                    lines += sub[1:]
                if len(shown) < count:
                    lines.append(f"{pad}# ... {count - len(shown)} more ({count} items)")
            else:
                text = ", ".join(_scalar(v) for v in shown)
                more = f", ...]  # {count} values" if len(shown) < count else "]"
                lines.append(f"{pad}{field}: [{text}{more}")
        else:
            lines.append(f"{pad}{field}: {_scalar(value)}")
    return lines


# -- commands ------------------------------------------------------------------------------
def run_list(args: argparse.Namespace) -> int:
    with ros_session("hvp_topic") as (node, executor):
        end = time.monotonic() + max(0.0, args.wait)
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        topics = sorted(node.get_topic_names_and_types())
    for name, types in topics:
        print(f"{name} [{', '.join(types)}]")
    return 0


def rate_summary(times: deque[float]) -> str | None:
    """ros2-topic-hz-like summary of receive times (s), or None with fewer than 2."""
    if len(times) < 2:
        return None
    stamps = list(times)
    periods = [b - a for a, b in itertools.pairwise(stamps)]
    mean = sum(periods) / len(periods)
    std = math.sqrt(sum((p - mean) ** 2 for p in periods) / len(periods))
    rate = 1.0 / mean if mean > 0 else float("inf")
    return (
        f"average rate: {rate:.3f}\n\tmin: {min(periods):.4f}s max: {max(periods):.4f}s "
        f"std dev: {std:.5f}s window: {len(stamps)}"
    )


def run_hz(args: argparse.Namespace) -> int:
    if args.window < 2:
        print(f"--window {args.window} is invalid: must be >= 2", file=sys.stderr)
        return 2
    times: deque[float] = deque(maxlen=args.window)
    with ros_session("hvp_topic_hz") as (node, executor):
        if not _subscribe(
            node, executor, args.topic, args.wait, lambda _msg: times.append(time.monotonic())
        ):
            return 1
        start = last_report = time.monotonic()
        try:
            while args.duration is None or time.monotonic() - start < args.duration:
                executor.spin_once(timeout_sec=0.05)
                if time.monotonic() >= last_report + 1.0:
                    last_report = time.monotonic()
                    print(rate_summary(times) or f"no messages on {args.topic} yet", flush=True)
        except KeyboardInterrupt:
            pass
    summary = rate_summary(times)
    if summary is None:
        print(f"fewer than 2 messages received on {args.topic}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def run_echo(args: argparse.Namespace) -> int:
    received = 0

    def show(msg: Any) -> None:
        nonlocal received
        if args.count is not None and received >= args.count:
            return
        received += 1
        print("\n".join(format_message(msg, max_items=None if args.full else MAX_ITEMS)))
        print("---", flush=True)

    with ros_session("hvp_topic_echo") as (node, executor):
        if not _subscribe(node, executor, args.topic, args.wait, show):
            return 1
        start = time.monotonic()
        try:
            while (args.count is None or received < args.count) and (
                args.duration is None or time.monotonic() - start < args.duration
            ):
                executor.spin_once(timeout_sec=0.05)
        except KeyboardInterrupt:
            pass
    return 0 if received or args.count is None else 1
