"""``hvp service``: list and call ROS services without ros2cli.

    hvp service list                                                # services and their types
    hvp service call /recorder/start_episode std_srvs/srv/Trigger
    hvp service call /recorder/stop_episode std_srvs/srv/SetBool '{data: true}'
    hvp service call /arm_controller/reset_estop std_srvs/Trigger

The request is built from YAML for any service type importable here (std_srvs Trigger,
SetBool, Empty, ...; nested fields and arrays as in ``hvp topic pub``,
bringup/message_fields.py). The command waits up to ``--wait`` s for the service to appear,
then up to ``--timeout`` s for the answer, and prints request and response as YAML. Exit code
0 when a response came (whatever it says; ``--check`` makes ``success: false`` exit 1), 1 when
the service is missing, of another type or does not answer, 2 for a bad type or request.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from human_video_policy.bringup.topic_tools import format_message, ros_session


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "service",
        help="list and call ROS services (e.g. /recorder/start_episode, ~/reset_estop)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="service_command", metavar="<list|call>")

    listing = commands.add_parser("list", help="services and their types")
    listing.add_argument(
        "--wait", type=float, default=1.0, metavar="S", help="discovery time (s; default: 1)"
    )
    listing.add_argument(
        "--all",
        action="store_true",
        help="also the parameter services every node offers (~/get_parameters, ...)",
    )
    listing.set_defaults(func=run_list)

    call = commands.add_parser(
        "call",
        help="call a service with a request built from YAML",
        description="Call a service (like ros2 service call).",
        epilog="examples:\n"
        "  hvp service call /recorder/start_episode std_srvs/srv/Trigger\n"
        "  hvp service call /recorder/stop_episode std_srvs/srv/SetBool '{data: true}'\n"
        "  hvp service call /arm_controller/reset_estop std_srvs/srv/Trigger",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    call.add_argument("service", help="service name, e.g. /recorder/start_episode")
    call.add_argument("type", help="service type, e.g. std_srvs/srv/Trigger (or std_srvs/Trigger)")
    call.add_argument(
        "values",
        nargs="?",
        default="{}",
        help="the request fields as YAML, e.g. '{data: true}' (default: {})",
    )
    call.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="S",
        help="how long to wait for the service to appear (s; default: 5)",
    )
    call.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="how long to wait for the response (s; default: 10)",
    )
    call.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the response has success: false (Trigger, SetBool)",
    )
    call.set_defaults(func=run_call)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


_PARAMETER_SERVICES = (
    "describe_parameters",
    "get_parameter_types",
    "get_parameters",
    "get_type_description",
    "list_parameters",
    "set_parameters",
    "set_parameters_atomically",
)


def _discover(node: object, executor: object, wait_s: float) -> list[tuple[str, list[str]]]:
    end = time.monotonic() + max(0.0, wait_s)
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)  # type: ignore[attr-defined]
    own = node.get_name()  # type: ignore[attr-defined]
    return [
        (name, types)
        for name, types in node.get_service_names_and_types()  # type: ignore[attr-defined]
        if not name.startswith(f"/{own}/")
    ]


def run_list(args: argparse.Namespace) -> int:
    with ros_session("hvp_service") as (node, executor):
        services = _discover(node, executor, args.wait)
    for name, types in sorted(services):
        if not args.all and name.rsplit("/", 1)[-1] in _PARAMETER_SERVICES:
            continue
        print(f"{name} [{', '.join(types)}]")
    return 0


def _service_types(node: object, service: str) -> list[str]:
    for name, types in node.get_service_names_and_types():  # type: ignore[attr-defined]
        if name == service:
            return list(types)
    return []


def run_call(args: argparse.Namespace) -> int:
    from human_video_policy.bringup.message_fields import (
        fill_message,
        import_interface,
        parse_values,
        type_name_of,
    )

    service_class = import_interface(args.type, "srv")
    type_name = type_name_of(service_class)
    values = parse_values(args.values)
    fill_message(service_class.Request(), values)  # a wrong field fails before ROS starts
    service = args.service if args.service.startswith("/") else f"/{args.service}"
    domain = os.environ.get("ROS_DOMAIN_ID", "0")
    with ros_session("hvp_service_call") as (node, executor):
        client = node.create_client(service_class, service)
        end = time.monotonic() + max(0.0, args.wait)
        while not client.service_is_ready() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        if not client.service_is_ready():
            # the graph lists our own client's type too: any other type is the server's
            types = [t for t in _service_types(node, service) if t != type_name]
            if types:
                print(
                    f"{service} is a {', '.join(types)}, not a {type_name}: call it with that type",
                    file=sys.stderr,
                )
            else:
                print(
                    f"service {service} not found after {args.wait:g} s (is the node running, "
                    f"with the same ROS_DOMAIN_ID={domain}? `hvp service list` shows the "
                    "services)",
                    file=sys.stderr,
                )
            return 1
        request = fill_message(
            service_class.Request(), values, now_ns=lambda: node.get_clock().now().nanoseconds
        )
        print(f"requester: making request: {type_name}", flush=True)
        for line in format_message(request):
            print(f"  {line}")
        future = client.call_async(request)
        end = time.monotonic() + max(0.0, args.timeout)
        while not future.done() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        if not future.done():
            print(f"{service}: no response within {args.timeout:g} s", file=sys.stderr)
            return 1
        response = future.result()
        node.destroy_client(client)
    print("\nresponse:")
    for line in format_message(response):
        print(f"  {line}")
    if args.check and getattr(response, "success", True) is False:
        return 1
    return 0
