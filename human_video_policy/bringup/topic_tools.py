"""``hvp topic``: look at the running graph without ros2cli.

    hvp topic list                                  # topics and their types
    hvp topic hz /arm/joint_states [--window N] [--duration S]
    hvp topic echo /policy/status [--count N]
    hvp topic echo /camera/camera/color/image_raw --save-image frame.png [--raw-depth]
    hvp topic pub /safety/estop std_msgs/msg/Bool '{data: true}' --once [--qos latched]
    hvp topic pub /arm/target_pose geometry_msgs/PoseStamped \
        '{header: {stamp: now, frame_id: base_link}, pose: {position: {x: 0.3}}}' --rate 10

echo: the message type is discovered from the graph and imported dynamically; the
subscription's QoS follows the publishers' (best effort if any publisher is, transient local if
all are), so camera topics and latched topics both work. Long arrays are abbreviated.
``--save-image`` writes Image / CompressedImage messages as PNG instead (bringup/image_files.py).

pub: the message is built from YAML for any message type importable here (nested fields,
arrays; ``now`` stamps a Time, ``auto`` a Header; bringup/message_fields.py), published at
``--rate`` Hz until Ctrl-C, or ``--once`` / ``--times N`` after a subscriber matched. QoS:
reliable + volatile, keep last 10 unless ``--qos`` says otherwise (``best_effort``,
``transient_local``, ``depth=N``, or the presets ``sensor_data`` and ``latched``).
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

from human_video_policy.errors import HvpError, InputError

MAX_ITEMS = 16


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "topic", help="list, measure, print and publish ROS topics (images to PNG)"
    )
    commands = parser.add_subparsers(dest="topic_command", metavar="<list|hz|echo|pub>")

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
    echo.add_argument(
        "--count",
        type=int,
        default=None,
        metavar="N",
        help="stop after N messages (default: until Ctrl-C or --duration)",
    )
    echo.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C or --count)",
    )
    echo.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="S",
        help="how long to wait for the topic to appear (s)",
    )
    echo.add_argument("--full", action="store_true", help="do not abbreviate long arrays")
    echo.add_argument(
        "--save-image",
        default=None,
        metavar="OUT.png",
        help="write Image/CompressedImage messages as PNG instead of printing them (the next "
        "message, or --count N numbered OUT_0001.png ...; depth scaled to 1..255) (default: "
        "print them)",
    )
    echo.add_argument(
        "--raw-depth",
        action="store_true",
        help="with --save-image: depth as 16-bit PNG in mm, unscaled",
    )
    echo.set_defaults(func=run_echo)

    pub = commands.add_parser(
        "pub",
        help="publish a message built from YAML",
        description="Publish a message built from YAML (like ros2 topic pub).",
        epilog="examples:\n"
        "  hvp topic pub /safety/estop std_msgs/msg/Bool '{data: true}' --once --qos latched\n"
        "  hvp topic pub /task/instruction std_msgs/String 'data: pick the cube' --once\n"
        "  hvp topic pub /teleop/enable std_msgs/Bool '{data: true}' --rate 20\n"
        "  hvp topic pub /arm/target_pose geometry_msgs/PoseStamped \\\n"
        "      '{header: {stamp: now, frame_id: wx250s/base_link}, pose: {position: {x: 0.3}}}'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pub.add_argument("topic")
    pub.add_argument("type", help="message type, e.g. std_msgs/msg/Bool (or std_msgs/Bool)")
    pub.add_argument(
        "values",
        nargs="?",
        default="{}",
        help="the fields as YAML, e.g. '{data: true}' (default: {} = all defaults)",
    )
    pub.add_argument(
        "-r", "--rate", type=float, default=1.0, metavar="HZ", help="publishing rate (default: 1)"
    )
    pub.add_argument("-1", "--once", action="store_true", help="publish one message and exit")
    pub.add_argument(
        "-t",
        "--times",
        type=int,
        default=None,
        metavar="N",
        help="publish N messages and exit (default: at --rate until Ctrl-C)",
    )
    pub.add_argument(
        "--qos",
        action="append",
        default=[],
        metavar="WORDS",
        help="comma-separated: reliable | best_effort, volatile | transient_local, depth=N, or "
        "the presets default, sensor_data, latched (default: reliable,volatile,depth=10)",
    )
    pub.add_argument(
        "-w",
        "--wait-matching-subscriptions",
        type=int,
        default=None,
        metavar="N",
        help="publish only once N subscriptions matched (default: 1 with --once/--times, else 0)",
    )
    pub.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="S",
        help="how long to wait for those subscriptions (s); then publish anyway and exit 1 "
        "(default: 10)",
    )
    pub.add_argument(
        "--keep-alive",
        type=float,
        default=0.1,
        metavar="S",
        help="with --once/--times: stay S s after the last message (a latched value lives as "
        "long as its publisher; default: 0.1)",
    )
    pub.add_argument(
        "-p",
        "--print",
        type=int,
        default=1,
        metavar="N",
        help="print every N-th published message (0: none; default: 1)",
    )
    pub.set_defaults(func=run_pub)
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


def _subscribe(
    node: Any,
    executor: Any,
    topic: str,
    wait_s: float,
    callback: Any,
    accept: tuple[str, ...] | None = None,
) -> bool:
    type_name = wait_for_topic(node, executor, topic, wait_s)
    if type_name is None:
        print(
            f"topic {topic} not found after {wait_s:g} s (is the graph running, with the "
            f"same ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}?)",
            file=sys.stderr,
        )
        return False
    if accept is not None and type_name not in accept:
        print(f"topic {topic} is a {type_name}: only {list(accept)} can be saved", file=sys.stderr)
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


def image_file_name(path: str, index: int, total: int | None) -> str:
    """``out.png`` for one image; ``out_0001.png``, ``out_0002.png`` ... for several."""
    if total == 1:
        return path
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}_{index:04d}.{suffix}" if dot else f"{path}_{index:04d}"


def run_echo(args: argparse.Namespace) -> int:
    received = 0
    failures: list[str] = []
    save = getattr(args, "save_image", None)
    count = args.count
    if save:
        from human_video_policy.bringup.image_files import IMAGE_TYPES, save_png

        if not save.lower().endswith(".png"):
            print(f"--save-image {save}: the file name must end in .png", file=sys.stderr)
            return 2
        count = 1 if count is None else count

    def show(msg: Any) -> None:
        nonlocal received
        if count is not None and received >= count:
            return
        received += 1
        if save:
            path = image_file_name(save, received, count)
            try:
                what = save_png(msg, path, raw_depth=args.raw_depth)
            except HvpError as exc:
                failures.append(f"{path}: {exc}")
                print(f"not saved: {path}: {exc}", file=sys.stderr, flush=True)
                return
            print(f"saved {path}: {what}", flush=True)
            return
        print("\n".join(format_message(msg, max_items=None if args.full else MAX_ITEMS)))
        print("---", flush=True)

    with ros_session("hvp_topic_echo") as (node, executor):
        accept = IMAGE_TYPES if save else None
        if not _subscribe(node, executor, args.topic, args.wait, show, accept):
            return 1
        start = time.monotonic()
        try:
            while (count is None or received < count) and (
                args.duration is None or time.monotonic() - start < args.duration
            ):
                executor.spin_once(timeout_sec=0.05)
        except KeyboardInterrupt:
            pass
    if failures:
        return 1
    if save and received < count:
        print(f"{received} of {count} image(s) received on {args.topic}", file=sys.stderr)
        return 1
    return 0 if received or count is None else 1


# -- pub -----------------------------------------------------------------------------------
_QOS_WORDS = {
    "reliable": ("reliability", "RELIABLE"),
    "best_effort": ("reliability", "BEST_EFFORT"),
    "volatile": ("durability", "VOLATILE"),
    "transient_local": ("durability", "TRANSIENT_LOCAL"),
}
_QOS_PRESETS = {
    "default": ("reliable", "volatile", "depth=10"),
    "sensor_data": ("best_effort", "volatile", "depth=5"),
    "latched": ("reliable", "transient_local", "depth=1"),
}


def parse_qos(words: list[str]) -> Any:
    """``["best_effort,transient_local", "depth=5"]`` -> a QoSProfile (later words win)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    settings: dict[str, Any] = {"reliability": "RELIABLE", "durability": "VOLATILE", "depth": 10}
    items = [w.strip().lower().replace("-", "_") for text in words for w in text.split(",")]
    expanded: list[str] = []
    for item in items:
        expanded += list(_QOS_PRESETS.get(item, (item,)))
    for item in expanded:
        if not item:
            continue
        if item in _QOS_WORDS:
            key, value = _QOS_WORDS[item]
            settings[key] = value
        elif item.startswith("depth="):
            try:
                depth = int(item.split("=", 1)[1])
            except ValueError:
                depth = 0
            if depth < 1:
                raise InputError(f"--qos {item}: depth must be an integer >= 1")
            settings["depth"] = depth
        else:
            allowed = [*_QOS_WORDS, "depth=N", *_QOS_PRESETS]
            raise InputError(f"--qos {item!r} is unknown: use {allowed}")
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=settings["depth"],
        reliability=getattr(ReliabilityPolicy, settings["reliability"]),
        durability=getattr(DurabilityPolicy, settings["durability"]),
    )


def qos_words(qos: Any) -> str:
    return f"{qos.reliability.name.lower()}, {qos.durability.name.lower()}, depth {qos.depth}"


def run_pub(args: argparse.Namespace) -> int:
    from rclpy.duration import Duration
    from rclpy.qos import ReliabilityPolicy

    from human_video_policy.bringup.message_fields import (
        fill_message,
        import_interface,
        parse_values,
        type_name_of,
    )

    if args.rate <= 0 or not math.isfinite(args.rate):
        raise InputError(f"--rate {args.rate} is invalid: must be > 0 Hz")
    if args.times is not None and args.times < 1:
        raise InputError(f"--times {args.times} is invalid: must be >= 1")
    if args.keep_alive < 0:
        raise InputError(f"--keep-alive {args.keep_alive} is invalid: must be >= 0")
    message_class = import_interface(args.type, "msg")
    values = parse_values(args.values)
    fill_message(message_class(), values)  # a wrong field fails before ROS starts
    qos = parse_qos(args.qos)
    times = 1 if args.once else args.times
    wanted = args.wait_matching_subscriptions
    if wanted is None:
        wanted = 1 if times else 0
    type_name = type_name_of(message_class)

    with ros_session("hvp_topic_pub") as (node, executor):
        publisher = node.create_publisher(message_class, args.topic, qos)
        clock = node.get_clock()
        print(f"publisher: {args.topic} [{type_name}] ({qos_words(qos)})", flush=True)
        end = time.monotonic() + max(0.0, args.wait)
        try:
            while publisher.get_subscription_count() < wanted and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
        except KeyboardInterrupt:
            return 130
        matched = publisher.get_subscription_count()
        if matched < wanted:
            print(
                f"{args.topic}: {matched} of {wanted} subscription(s) matched within "
                f"{args.wait:g} s (same ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}? "
                "compatible QoS?); publishing anyway",
                file=sys.stderr,
                flush=True,
            )
        if matched and times is not None and qos.reliability != ReliabilityPolicy.RELIABLE:
            # best effort has no retransmission: the subscription may see this publisher a
            # moment after the publisher saw it, and a sample sent before that is lost
            settle = time.monotonic() + 0.3
            while time.monotonic() < settle:
                executor.spin_once(timeout_sec=0.05)
        published = 0
        period = 1.0 / args.rate
        next_time = time.monotonic()
        try:
            while True:
                msg = fill_message(message_class(), values, now_ns=lambda: clock.now().nanoseconds)
                publisher.publish(msg)
                published += 1
                if args.print and (published - 1) % args.print == 0:
                    print(f"publishing #{published}", flush=True)
                    if published == 1:
                        print("\n".join(format_message(msg)), flush=True)
                if times is not None and published >= times:
                    break
                next_time += period
                while time.monotonic() < next_time:
                    executor.spin_once(
                        timeout_sec=max(0.0, min(0.05, next_time - time.monotonic()))
                    )
            if qos.reliability == ReliabilityPolicy.RELIABLE and matched:
                publisher.wait_for_all_acked(Duration(seconds=max(1.0, args.wait)))
            end = time.monotonic() + args.keep_alive
            while time.monotonic() < end:
                executor.spin_once(timeout_sec=min(0.05, max(0.0, end - time.monotonic())))
        except KeyboardInterrupt:
            pass
    print(f"published {published} message(s) on {args.topic}", flush=True)
    return 0 if matched >= wanted else 1
