"""``hvp safety``: the e-stop and the controllers' safety services from a terminal, no ros2.

    hvp safety estop                          # /safety/estop true (latched), every controller holds
    hvp safety release                        # /safety/estop false (the e-stop stays latched)
    hvp safety reset [--node arm_controller]  # ~/reset_estop: release a latched e-stop
    hvp safety enable [--node arm_controller] # ~/enable: move again after a driver reconnect

``estop`` and ``release`` publish reliable + transient local (latched), so a controller started
later still gets the value, and keep publishing until every subscriber has it (``--wait`` s at
most). ``reset`` and ``enable`` call the std_srvs/Trigger service of each ``--node`` (default:
both controllers) and print its answer; the exit code is 1 when any call failed.
"""

from __future__ import annotations

import argparse
import sys
import time

CONTROLLERS = ("arm_controller", "hand_controller")


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
        "--wait", type=float, default=3.0, metavar="S", help="discovery/answer time (s)"
    )
    parser.set_defaults(func=run)


def _publish(value: bool, wait_s: float) -> int:
    from std_msgs.msg import Bool

    from human_video_policy.bringup.topic_tools import ros_session
    from human_video_policy.nodes.qos import LATCHED

    with ros_session("hvp_safety") as (node, executor):
        publisher = node.create_publisher(Bool, "/safety/estop", LATCHED)
        publisher.publish(Bool(data=value))
        end = time.monotonic() + wait_s
        while not publisher.get_subscription_count() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 0.5  # delivery (and the latched copy) to what just matched
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        count = publisher.get_subscription_count()
    word = "ASSERTED" if value else "released"
    print(f"/safety/estop {word} ({count} subscriber(s) matched)")
    return 0


def _call(service: str, nodes: list[str], wait_s: float) -> int:
    from std_srvs.srv import Trigger

    from human_video_policy.bringup.topic_tools import ros_session

    failures = 0
    with ros_session("hvp_safety") as (node, executor):
        for name in nodes:
            path = f"/{name.strip('/')}/{service}"
            client = node.create_client(Trigger, path)
            end = time.monotonic() + wait_s
            while not client.service_is_ready() and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            if not client.service_is_ready():
                print(f"{path}: no such service (is the node running?)", file=sys.stderr)
                failures += 1
                continue
            future = client.call_async(Trigger.Request())
            end = time.monotonic() + max(wait_s, 6.0)  # ~/enable waits up to 5 s for a tick
            while not future.done() and time.monotonic() < end:
                executor.spin_once(timeout_sec=0.05)
            if not future.done():
                print(f"{path}: no answer within {max(wait_s, 6.0):g} s", file=sys.stderr)
                failures += 1
                continue
            result = future.result()
            print(f"{path}: {'OK' if result.success else 'REFUSED'}: {result.message}")
            failures += 0 if result.success else 1
    return 1 if failures else 0


def run(args: argparse.Namespace) -> int:
    if args.action in ("estop", "release"):
        return _publish(args.action == "estop", args.wait)
    service = "reset_estop" if args.action == "reset" else "enable"
    return _call(service, args.node or list(CONTROLLERS), args.wait)
