"""``hvp record``: record demonstrations from the running graph, one rosbag2 bag per episode.

    hvp record -o recordings --preset teleop_rm75_xhand --instruction "wave"   # what
        # 'hvp dataset from-bags --preset teleop_rm75_xhand' needs, nothing else
    hvp record -o recordings --preset sim_widowx --use-sim-time --episodes 5
    hvp record -o recordings                          # the default topics, until Ctrl-C
    hvp record -o recordings --duration 30 --storage sqlite3 --topics /arm/joint_states
    hvp record repair recordings/20260101_120000      # after a crash: rebuild metadata.yaml

Presets are config/datasets/<graph>.yaml, one per graph that drives a robot ('hvp launch --list'
names the graphs), the same files 'hvp dataset from-bags --preset' reads. Images are
stored compressed (sensor_msgs/CompressedImage on <topic>/compressed, image_transport's format:
JPEG for colour, lossless PNG for depth) unless --raw-images. At each episode end, a topic that
was asked for and never arrived is named in a warning.

Runs the recorder node (human_video_policy.nodes.recorder_node) as a process with
config/recorder.params.yaml and the options given here, prints its progress, and stops it
cleanly on Ctrl-C or SIGTERM (passed on to the node, which closes the bag). If this command is
killed (SIGKILL), the node gets SIGTERM from the kernel (parent-death signal) and closes the bag
too: no recorder outlives it. Exit code: the node's (0 after Ctrl-C, SIGTERM, --episodes or
--duration; 1 when the disk filled, or with --use-sim-time when no /clock came within
--clock-timeout; 2 for a rejected option). See docs/recording.md.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from human_video_policy.data.bag_repair import repair_tree
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.parent_death import die_with_parent
from human_video_policy.resources import resource_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "record",
        help="record episodes to rosbag2 (MCAP/sqlite3); 'record repair BAG' after a crash",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action", nargs="?", choices=["repair"], help="repair: rebuild metadata.yaml of BAG"
    )
    parser.add_argument("bag", nargs="?", help="with repair: an episode bag or a session folder")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="folder that gets the session folder (required to record; not with repair)",
    )
    parser.add_argument("--session", default="", help="session folder name (default: start time)")
    parser.add_argument(
        "--storage",
        choices=["mcap", "sqlite3"],
        default=None,
        help="rosbag2 storage (default: --params-file's, mcap)",
    )
    parser.add_argument(
        "--preset",
        metavar="NAME|YAML",
        help="record the topics 'hvp dataset from-bags --preset' of this preset needs: "
        "config/datasets/NAME.yaml (one per graph) or a YAML file (default: none, the topics "
        "of config/recorder.params.yaml)",
    )
    parser.add_argument(
        "--topics",
        nargs="+",
        metavar="TOPIC",
        help="topics to record (default: config/recorder.params.yaml's); with --preset, "
        "recorded besides the preset's",
    )
    parser.add_argument(
        "--instruction",
        default=None,
        help="task instruction stored in the bags (default: none; /task/instruction messages)",
    )
    images = parser.add_mutually_exclusive_group()
    images.add_argument(
        "--image-format",
        choices=["jpeg", "png"],
        default=None,
        help="codec of compressed 8-bit images; depth is always lossless PNG (default: jpeg)",
    )
    images.add_argument(
        "--raw-images",
        action="store_true",
        help="store sensor_msgs/Image as received (default: compressed)",
    )
    images.add_argument(  # the default since images are compressed unless --raw-images
        "--compress-images", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--use-sim-time", action="store_true", help="stamp with /clock time (default: off)"
    )
    parser.add_argument(
        "--clock-timeout",
        type=float,
        default=None,
        metavar="S",
        help="with --use-sim-time: exit 1 if no /clock message came within S seconds "
        "(default: --params-file's, 30)",
    )
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument(
        "--episodes",
        type=int,
        default=None,
        metavar="N",
        help="stop after N episodes (default: until Ctrl-C)",
    )
    limit.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--params-file",
        default=None,
        help="recorder parameters (default: config/recorder.params.yaml)",
    )
    parser.set_defaults(func=run)


def _yaml_list(items: list[str]) -> str:
    return json.dumps(items)  # a JSON list is a YAML flow list, as rcl's -p parser wants


def node_command(args: argparse.Namespace) -> list[str]:
    """The recorder node command line for the parsed options."""
    params_file = Path(args.params_file) if args.params_file else None
    if params_file is None:
        params_file = resource_path("config", "recorder.params.yaml")
    if not params_file.is_file():
        raise InputError(f"--params-file {params_file} does not exist")
    ros_args = ["--params-file", str(params_file), "-p", f"output_dir:={args.output}"]
    if args.session:
        ros_args += ["-p", f"session:={args.session}"]
    if args.storage:
        ros_args += ["-p", f"storage:={args.storage}"]
    if args.preset:
        preset = Path(args.preset)
        name = str(preset.resolve()) if preset.suffix in (".yaml", ".yml") else args.preset
        ros_args += ["-p", f"preset:={json.dumps(name)}"]
        if args.topics:
            ros_args += ["-p", f"extra_topics:={_yaml_list(args.topics)}"]
    elif args.topics:
        ros_args += ["-p", f"topics:={_yaml_list(args.topics)}"]
    if args.instruction is not None:
        ros_args += ["-p", f"instruction:={json.dumps(args.instruction)}"]
    if args.raw_images:
        ros_args += ["-p", "compress_images:=false"]
    elif args.compress_images or args.image_format:
        ros_args += ["-p", "compress_images:=true"]
        if args.image_format:
            ros_args += ["-p", f"image_format:={args.image_format}"]
    if args.use_sim_time:
        ros_args += ["-p", "use_sim_time:=true"]
    if args.clock_timeout is not None:
        ros_args += ["-p", f"clock_timeout_s:={float(args.clock_timeout)}"]
    if args.episodes is not None:
        ros_args += ["-p", f"episodes:={args.episodes}"]
    if args.duration is not None:
        ros_args += ["-p", f"duration_s:={float(args.duration)}"]
    module = "human_video_policy.nodes.recorder_node"
    return [sys.executable, "-m", module, "--ros-args", *ros_args]


def run(args: argparse.Namespace) -> int:
    if args.action == "repair":
        return repair(args)
    if args.bag is not None:
        print(f"hvp record: unexpected argument {args.bag!r} (did you mean 'record repair BAG'?)")
        return 2
    if not args.output:
        print("hvp record: give the output folder with -o OUT")
        return 2
    if args.episodes is not None and args.episodes < 1:
        print(f"hvp record: --episodes {args.episodes} is invalid: must be >= 1")
        return 2
    if args.duration is not None and args.duration <= 0:
        print(f"hvp record: --duration {args.duration} is invalid: must be > 0")
        return 2
    if args.clock_timeout is not None and not args.use_sim_time:
        print("hvp record: --clock-timeout is for --use-sim-time (it bounds the wait for /clock)")
        return 2
    if args.preset:
        from human_video_policy.data.bag_to_dataset import conversion_preset, recording_topics

        try:
            topics = recording_topics(conversion_preset(args.preset))
        except ConfigError as exc:
            print(f"hvp record: --preset {args.preset}: {exc}")
            return 2
        extra = [t for t in args.topics or [] if t not in topics]
        print(
            f"hvp record: preset {args.preset}: {' '.join(topics)}"
            + (f" + {' '.join(extra)}" if extra else "")
        )
    command = node_command(args)
    # The node gets SIGTERM (and closes its bag) when this command dies, even by SIGKILL.
    process = subprocess.Popen(command, preexec_fn=die_with_parent(signal.SIGTERM))
    restore = _forward_sigterm(process)
    try:
        return process.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to the node too; make sure and wait
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            print("hvp record: the recorder did not stop within 15 s and was killed")
            return 1
    finally:
        restore()


def _forward_sigterm(process: subprocess.Popen) -> Callable[[], None]:
    """SIGTERM to ``hvp record`` goes on to the node, and the command waits for the bag to close.

    Why: a plain SIGTERM would end this process at once; the node would then only stop on its
    parent-death signal, after the caller had seen the command exit with an open bag. Returns
    the function that restores the previous handler (a no-op off the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def forward(signum: int, _frame: FrameType | None) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    return lambda: signal.signal(signal.SIGTERM, previous)


def repair(args: argparse.Namespace) -> int:
    if not args.bag:
        print("hvp record repair: give a bag (episode folder) or a session folder")
        return 2
    reports = repair_tree(args.bag)
    for report in reports:
        print(report.summary())
    return 0
