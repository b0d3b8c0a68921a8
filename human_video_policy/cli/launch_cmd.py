"""``hvp launch``: start a graph (config/graphs/<graph>.yaml) as node processes.

    hvp launch --list                              # graphs there are
    hvp launch sim_widowx --list                   # its arguments and the node commands
    hvp launch sim_widowx model_path:=/x.onnx      # run until Ctrl-C
    hvp launch sim_widowx --duration 30            # run 30 s, then stop (CI)

Exit code: 0 when every node stopped cleanly, else the failing node's code (2 = a parameter or
model file was rejected). On a lab machine ``ros2 launch human_video_policy
sim_widowx.launch.py`` starts the same graph.
"""

from __future__ import annotations

import argparse

from human_video_policy.bringup.graph import (
    GraphSpec,
    list_graphs,
    load_graph,
    parse_launch_arguments,
)
from human_video_policy.bringup.launcher import run_graph


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "launch",
        help="start a graph of nodes (config/graphs/<graph>.yaml) as processes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("graph", nargs="?", help="graph name (e.g. sim_widowx) or a .yaml path")
    parser.add_argument(
        "arguments", nargs="*", metavar="name:=value", help="launch argument overrides"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop every node after S seconds (default: run until Ctrl-C or a required node ends)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list graphs, or with a graph: its arguments and node commands (nothing starts)",
    )
    parser.set_defaults(func=run)


def describe(graph: GraphSpec) -> str:
    lines = [f"graph {graph.name} ({graph.source})", f"  {graph.description}", "arguments:"]
    for argument in graph.arguments.values():
        value = graph.values.get(argument.name)
        if argument.default is None:
            shown = f"{value!r} (required)" if value is not None else "(required)"
        elif value == argument.default:
            shown = repr(value)  # the default, printed once
        else:
            shown = f"{value!r} (default {argument.default!r})"
        if argument.choices:
            shown += f" [one of {', '.join(argument.choices)}]"
        lines.append(f"  {argument.name} = {shown}: {argument.description}")
    lines.append("nodes:")
    for node in graph.nodes:
        flag = " (required)" if node.required else ""
        lines.append(f"  {node.name}{flag}: {' '.join(node.command())}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.graph is None:
        if not args.list:
            print("hvp launch: give a graph name, or --list to see them")
            return 2
        for name, description in list_graphs():
            print(f"{name}: {description}")
        return 0
    graph = load_graph(args.graph, parse_launch_arguments(args.arguments))
    if args.list:
        print(describe(graph))
        return 0
    if args.duration is not None and args.duration <= 0:
        print(f"hvp launch: --duration {args.duration} is invalid: must be > 0")
        return 2
    return run_graph(graph, duration_s=args.duration)


def main(argv: list[str] | None = None) -> int:
    """``python -m human_video_policy.cli.launch_cmd`` = ``hvp launch``."""
    import sys

    from human_video_policy.cli.common import apply_help_format
    from human_video_policy.errors import HvpError

    parser = argparse.ArgumentParser(prog="hvp")
    register(parser.add_subparsers(dest="command"))
    apply_help_format(parser)
    args = parser.parse_args(["launch", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except HvpError as exc:
        print(f"hvp launch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
