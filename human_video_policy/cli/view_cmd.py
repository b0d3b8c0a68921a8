"""``hvp view``: look at a live graph in Foxglove, or at recorded data in Rerun.

    hvp view live [--port 8765]                   # Foxglove WebSocket bridge for the running graph
    hvp view dataset DATASET --episode N          # an episode in the Rerun viewer
    hvp view dataset DATASET --episode N --save ep.rrd   # ... written to a file (rerun ep.rrd)
    hvp view dataset DATASET --episode N --serve  # ... in a browser: http://127.0.0.1:9090
    hvp view bag BAG [--topics T ...] [--save out.rrd | --serve]

``live`` runs foxglove_bridge_node in this process (the same node ``hvp launch view`` starts);
in Foxglove choose Open connection -> Foxglove WebSocket -> ws://127.0.0.1:8765. ``dataset`` and
``bag`` log every dimension under its name (feature names from the dataset's meta/info.json,
joint and column names from the messages). See docs/viewing.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from human_video_policy.errors import ConfigError, InputError

DEFAULT_WEB_PORT = 9090
DEFAULT_GRPC_PORT = 9876


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "view",
        help="view a live graph in Foxglove, or a dataset episode or bag in Rerun",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="view_what", metavar="<what>")
    parser.set_defaults(func=lambda _args: _print_help(parser))

    live = sub.add_parser(
        "live",
        help="serve the running graph's topics to Foxglove over WebSocket",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    live.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this "
                      "machine only; tunnel the port to look from elsewhere)")  # fmt: skip
    live.add_argument("--port", type=int, default=8765, help="WebSocket port (0 = any free)")
    live.add_argument("--include", default=".*", help="bridge topics matching this regex")
    live.add_argument("--exclude", default="^/parameter_events$", help="never bridge these")
    live.add_argument(
        "--no-generic", action="store_true",
        help="leave out topics without a Foxglove conversion (default: sent as JSON)",
    )  # fmt: skip
    live.set_defaults(func=run_live)

    for name, helptext in (
        ("dataset", "show one episode of a dataset (LeRobot v3) in Rerun"),
        ("bag", "show a rosbag2 bag (MCAP or sqlite3) in Rerun"),
    ):
        p = sub.add_parser(
            name, help=helptext, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        p.add_argument("path", help="dataset folder" if name == "dataset" else "bag folder")
        if name == "dataset":
            p.add_argument("--episode", type=int, default=0, help="episode index")
            p.add_argument("--no-cameras", action="store_true", help="leave the videos out")
        else:
            p.add_argument("--topics", nargs="+", default=None, help="only these topics "
                           "(default: all)")  # fmt: skip
        out = p.add_mutually_exclusive_group()
        out.add_argument("--save", metavar="FILE.rrd", default=None,
                         help="write a Rerun recording instead of opening a viewer "
                         "(default: open the viewer)")  # fmt: skip
        out.add_argument("--serve", action="store_true",
                         help="serve Rerun's web viewer on 127.0.0.1 (a browser)")  # fmt: skip
        p.add_argument("--web-port", type=int, default=DEFAULT_WEB_PORT, help="--serve: HTTP port")
        p.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT,
                       help="--serve: Rerun's data port")  # fmt: skip
        p.add_argument("--jpeg-quality", type=int, default=90, help="camera frames, 1..100")
        p.set_defaults(func=run_dataset if name == "dataset" else run_bag)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# -- live (Foxglove) ---------------------------------------------------------------------------
def live_ros_args(args: argparse.Namespace) -> list[str]:
    """The node's ``--ros-args`` for these options."""
    from human_video_policy.bringup.graph import ros_yaml

    params = {
        "host": args.host,
        "port": args.port,
        "include": args.include,
        "exclude": args.exclude,
        "generic": not args.no_generic,
    }
    out = ["--ros-args", "-r", "__node:=foxglove_bridge"]
    for key, value in params.items():
        out += ["-p", f"{key}:={ros_yaml(value)}"]
    return out


def run_live(args: argparse.Namespace) -> int:
    from human_video_policy.nodes.foxglove_bridge_node import main

    return main([sys.argv[0], *live_ros_args(args)])


# -- recorded (Rerun) --------------------------------------------------------------------------
def _check_common(args: argparse.Namespace) -> None:
    from human_video_policy.validation import check_int_range

    check_int_range("--jpeg-quality", args.jpeg_quality, 1, 100)
    check_int_range("--web-port", args.web_port, 1, 65535)
    check_int_range("--grpc-port", args.grpc_port, 1, 65535)
    if not Path(args.path).exists():
        raise InputError(f"{args.path} does not exist")


def _recording(args: argparse.Namespace, recording_id: str) -> tuple[Any, Path | None]:
    """A RecordingStream writing to --save (or a temporary file for --serve); None path
    means: spawn the native viewer."""
    import rerun as rr

    rec = rr.RecordingStream("human_video_policy", recording_id=recording_id)
    if args.save:
        path = Path(args.save)
        if path.suffix != ".rrd":
            raise ConfigError(f"--save {args.save}: the file name must end in .rrd")
        path.parent.mkdir(parents=True, exist_ok=True)
        rec.save(path)
        return rec, path
    if args.serve:
        handle, name = tempfile.mkstemp(prefix="hvp_view_", suffix=".rrd")
        os.close(handle)
        rec.save(name)
        return rec, Path(name)
    try:
        rec.spawn()
    except Exception as exc:  # no display, or the viewer binary cannot run here
        raise InputError(
            f"the Rerun viewer did not start ({exc}); use --save FILE.rrd (then `rerun FILE.rrd` "
            "where there is a display) or --serve (a browser)"
        ) from exc
    return rec, None


def _finish(args: argparse.Namespace, rec: Any, path: Path | None, summary: Any, what: str) -> int:
    rec.flush()
    rec.disconnect()
    for line in summary.lines():
        print(f"  {line}")
    if path is None:
        print(f"[view] {what} sent to the Rerun viewer")
        return 0
    if args.save:
        size = path.stat().st_size / 1e6
        print(f"[view] wrote {path} ({size:.1f} MB); open it with: rerun {path}")
        return 0
    return _serve(path, args.web_port, args.grpc_port)


def _rerun_binary() -> str:
    """Rerun's viewer binary itself (not the ``rerun`` Python wrapper, whose child outlived a
    stopped wrapper and kept serving)."""
    try:
        import rerun_cli

        binary = Path(rerun_cli.__file__).with_name("rerun")
        if binary.is_file():
            return str(binary)
    except ImportError:
        pass
    wrapper = Path(sys.executable).with_name("rerun")
    return str(wrapper) if wrapper.exists() else "rerun"


def _serve(path: Path, web_port: int, grpc_port: int) -> int:
    """The Rerun web viewer on 127.0.0.1 showing ``path``, until Ctrl-C or SIGTERM. The viewer
    runs in a process group of its own that is stopped as a whole, and dies with this process
    even when it is SIGKILLed (parent-death signal)."""
    import signal

    from human_video_policy.parent_death import die_with_parent

    command = [
        _rerun_binary(),
        "--serve-web",
        "--bind", "127.0.0.1",
        "--web-viewer-port", str(web_port),
        "--port", str(grpc_port),
        str(path),
    ]  # fmt: skip
    print(f"[view] serving on http://127.0.0.1:{web_port} (Ctrl-C to stop)", flush=True)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    process = subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent())
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_group(process)
        path.unlink(missing_ok=True)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the viewer's process group, SIGKILL what is left after 5 s."""
    import signal

    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            os.killpg(process.pid, 0)  # anything else left in the group?
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def run_dataset(args: argparse.Namespace) -> int:
    from human_video_policy.viz.rerun_export import export_dataset_episode

    _check_common(args)
    name = Path(args.path).resolve().name
    rec, path = _recording(args, f"{name}/episode_{args.episode:06d}")
    started = time.monotonic()
    summary = export_dataset_episode(
        args.path,
        args.episode,
        rec,
        jpeg_quality=args.jpeg_quality,
        cameras=not args.no_cameras,
    )
    print(
        f"[view] {args.path} episode {args.episode}: {summary.frames} frames, "
        f"{len(summary.entities)} entities in {time.monotonic() - started:.1f} s"
    )
    return _finish(args, rec, path, summary, f"episode {args.episode}")


def run_bag(args: argparse.Namespace) -> int:
    from human_video_policy.viz.rerun_export import export_bag

    _check_common(args)
    rec, path = _recording(args, Path(args.path).resolve().name)
    started = time.monotonic()
    summary = export_bag(args.path, rec, topics=args.topics, jpeg_quality=args.jpeg_quality)
    print(
        f"[view] {args.path}: {summary.frames} messages, {len(summary.entities)} entities in "
        f"{time.monotonic() - started:.1f} s"
    )
    return _finish(args, rec, path, summary, "the bag")
