"""``hvp safety``: the e-stop and the controllers' safety services from a terminal, no ros2.

    hvp safety estop [--hold]                 # /safety/estop true, confirmed by every listener
    hvp safety release                        # /safety/estop false (the e-stop stays latched)
    hvp safety reset [--node arm_controller]  # ~/reset_estop: release a latched e-stop
    hvp safety enable [--node arm_controller] # ~/enable: move again after a driver reconnect

``estop`` and ``release`` publish reliable + transient local (latched), re-publishing every
0.1 s, until every node subscribed to /safety/estop reports the new value on /diagnostics
(``estop_latched`` of a controller, ``estop`` of the executor), or ``--wait`` s pass; it prints
each node's answer and exits 1 when a node did not confirm or none listens. A latched value
lives as long as its publisher: ``--hold`` keeps publishing until Ctrl-C, so a controller
started meanwhile gets the e-stop too. ``reset`` and ``enable`` call the std_srvs/Trigger
service of each ``--node`` (default: both controllers); ``enable`` then waits for the node's
``link`` to be ``up``. Exit code 1 when any of them failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

CONTROLLERS = ("arm_controller", "hand_controller")
ESTOP_TOPIC = "/safety/estop"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "safety",
        help="e-stop, release, reset the e-stop, re-enable a controller",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["estop", "release", "reset", "enable"])
    parser.add_argument(
        "--node",
        action="append",
        default=None,
        help=f"controller node name for reset/enable (repeatable; default: {list(CONTROLLERS)})",
    )
    parser.add_argument(
        "--wait", type=float, default=5.0, metavar="S", help="discovery/confirmation time (s)"
    )
    parser.add_argument(
        "--hold", action="store_true", help="estop/release: keep publishing until Ctrl-C"
    )
    parser.set_defaults(func=run)


class _Diagnostics:
    """The newest /diagnostics key/values per node name."""

    def __init__(self, node: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.latest: dict[str, dict[str, str]] = {}
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_message, 50)

    def _on_message(self, msg: Any) -> None:
        for status in msg.status:
            self.latest[status.name] = {kv.key: kv.value for kv in status.values}


def _estop_value(values: dict[str, str]) -> str | None:
    """The e-stop state a node reports ("true"/"false"), or None if it reports none."""
    return values.get("estop_latched", values.get("estop"))


def _publish(value: bool, wait_s: float, hold: bool) -> int:
    from std_msgs.msg import Bool

    from human_video_policy.bringup.topic_tools import ros_session
    from human_video_policy.nodes.qos import LATCHED

    word = "true" if value else "false"
    with ros_session("hvp_safety") as (node, executor):
        diagnostics = _Diagnostics(node)
        publisher = node.create_publisher(Bool, ESTOP_TOPIC, LATCHED)
        own = node.get_name()

        def listeners() -> set[str]:
            infos = node.get_subscriptions_info_by_topic(ESTOP_TOPIC)
            return {i.node_name for i in infos if i.node_name != own}

        def confirmed(name: str) -> bool:
            # a released e-stop stays latched: "release" is confirmed by any report
            reported = _estop_value(diagnostics.latest.get(name, {}))
            return reported == word if value else reported is not None

        end = time.monotonic() + wait_s
        next_publish = 0.0
        try:
            while True:
                now = time.monotonic()
                if now >= next_publish:
                    publisher.publish(Bool(data=value))
                    next_publish = now + 0.1
                executor.spin_once(timeout_sec=0.02)
                names = listeners()
                done = bool(names) and all(confirmed(n) for n in names)
                if not hold and (done or now > end):
                    break
        except KeyboardInterrupt:  # --hold ends with Ctrl-C
            pass
        names = listeners()
        for name in sorted(names):
            reported = _estop_value(diagnostics.latest.get(name, {}))
            print(f"{name}: e-stop {'latched' if reported == 'true' else reported or 'no report'}")
    state = "ASSERTED" if value else "released"
    if not names:
        print(f"{ESTOP_TOPIC} {state}, but no node listens to it", file=sys.stderr)
        return 1
    missing = sorted(n for n in names if not confirmed(n))
    if missing:
        print(f"{ESTOP_TOPIC} {state}; not confirmed by {missing}", file=sys.stderr)
        return 1
    print(f"{ESTOP_TOPIC} {state}: confirmed by {len(names)} node(s)")
    return 0


def _call(service: str, nodes: list[str], wait_s: float) -> int:
    from std_srvs.srv import Trigger

    from human_video_policy.bringup.topic_tools import ros_session

    failures = 0
    with ros_session("hvp_safety") as (node, executor):
        diagnostics = _Diagnostics(node)
        for name in nodes:
            name = name.strip("/")
            path = f"/{name}/{service}"
            client = node.create_client(Trigger, path)
            end = time.monotonic() + wait_s
            while not client.service_is_ready() and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            if not client.service_is_ready():
                print(f"{path}: no such service (is the node running?)", file=sys.stderr)
                failures += 1
                continue
            future = client.call_async(Trigger.Request())
            end = time.monotonic() + wait_s
            while not future.done() and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            if not future.done():
                print(f"{path}: no answer within {wait_s:g} s", file=sys.stderr)
                failures += 1
                continue
            result = future.result()
            if result.success and service == "enable":
                result.success, result.message = _wait_enabled(
                    name, diagnostics, executor, wait_s, result.message
                )
            print(f"{path}: {'OK' if result.success else 'REFUSED'}: {result.message}")
            failures += 0 if result.success else 1
    return 1 if failures else 0


def _wait_enabled(
    name: str, diagnostics: _Diagnostics, executor: Any, wait_s: float, message: str
) -> tuple[bool, str]:
    """After an accepted ~/enable: (True, ...) once the node reports ``link: up``."""
    end = time.monotonic() + max(wait_s, 3.0)
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
        values = diagnostics.latest.get(name, {})
        if values.get("link") == "up":
            return True, f"{message}; link up"
    values = diagnostics.latest.get(name, {})
    return False, (
        f"{message}; link still {values.get('link', 'unknown')} "
        f"({values.get('last_driver_error', '') or 'no driver error'})"
    )


def run(args: argparse.Namespace) -> int:
    if args.action in ("estop", "release"):
        return _publish(args.action == "estop", args.wait, args.hold)
    service = "reset_estop" if args.action == "reset" else "enable"
    return _call(service, args.node or list(CONTROLLERS), args.wait)
