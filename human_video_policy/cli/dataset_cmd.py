"""``hvp dataset``: bags -> dataset, and looking at datasets (LeRobot v3 layout).

* ``from-bags BAG|SESSION... -o OUT [--preset NAME] [--overwrite]``: one episode per bag (a
  ``hvp record`` session folder = its episode bags), resampled to ``--rate`` Hz; a bag that
  cannot be converted is reported with the reason and the rest convert. Exit 1 if any failed;
  a non-empty OUT is refused once (exit 2) unless --overwrite; when no bag converts, nothing
  is written.
* ``from-video VIDEO_EPISODES_DIR... -o OUT [--image-size WxH]``: the output of ``hvp video
  process`` -> human hand episodes (one per atomic segment, 102-d VITRA action with masks);
  ``--action-space xhand_wrist_method_a [--extrinsic YAML]``: method A's robot space instead
  (retargeted XHand joints + wrist 6D rotation + position in the robot base frame).
* ``from-sim --episodes N -o OUT [--task NAME --robot R --level L]``: scripted-expert episodes
  recorded straight from the MuJoCo sim (no ROS) in the same format: the WidowX reach task
  (default, with DART noise), or a benchmark task (``hvp bench --list``), the in-process twin of
  ``hvp record --preset sim_task`` + ``from-bags --preset sim_task`` (the same dataset).
* ``info DATASET``: totals, features, cameras, tasks.
* ``validate DATASET``: LeRobot v3 conformance + every episode checked; exit 1 when broken.
* ``show DATASET -e N [-o out.mp4]``: one episode's rows (a few) and where its video lives;
  ``-o``: an H.264 MP4 of the camera above the action curves, in the panels of ``plot``.
* ``plot DATASET -e N -o out.png``: the episode's state and action curves in panels (wrist,
  fingers in anatomical order, arm / hand of a known robot) with units and legends, masked
  dimensions and rows left out (data/episode_render.py).

The format IS LeRobot v3 with extra columns, so no export/import step exists: a dataset
folder can be given to LeRobot as it is.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def _from_bags(args: argparse.Namespace) -> int:
    from human_video_policy.data.bag_to_dataset import (
        BagConversionConfig,
        conversion_preset,
        convert_bags,
    )

    given = {
        "rate_hz": args.rate,
        "camera_topics": args.camera,
        "state_topic": args.state_topic,
        "action_topic": args.action_topic,
        "extra_state_topics": args.extra_state_topic,
        "extra_action_topics": args.extra_action_topic,
        "instruction": args.instruction,
        "embodiment": args.embodiment,
        "sync_tolerance_s": args.sync_tolerance,
        "image_size": _height_width(args.image_size),
    }
    overrides = {k: v for k, v in given.items() if v is not None}  # flags beat the preset
    if args.preset:
        cfg = conversion_preset(args.preset, **overrides)
    else:
        cfg = BagConversionConfig(**overrides)

    def progress(outcome) -> None:  # type: ignore[no-untyped-def]
        if outcome.ok:
            line = f"[dataset] {outcome.source}: episode {outcome.episode_index}, "
            line += f"{outcome.frames} frames"
            print(line + "".join(f" (warning: {w})" for w in outcome.warnings))
        else:
            print(f"[dataset] {outcome.source}: FAILED: {outcome.error}")

    report = convert_bags(args.bags, args.output, cfg, progress=progress, overwrite=args.overwrite)
    where = f" -> {report.dataset}" if report.written else ""
    print(f"[dataset] {report.summary()}{where}")
    return 1 if report.failed else 0


def _height_width(size: tuple[int, int] | None) -> tuple[int, int] | None:
    """``--image-size`` (width, height, from cli.common.image_size) -> the configs' (H, W)."""
    return None if size is None else (size[1], size[0])


def _from_video(args: argparse.Namespace) -> int:
    from human_video_policy.data.human_episodes import (
        HumanDatasetConfig,
        convert_hand_videos,
        load_extrinsics,
    )
    from human_video_policy.errors import ConfigError
    from human_video_policy.policies.action_spaces import XHAND_WRIST_METHOD_A

    extrinsics, source = None, ""
    if args.action_space == XHAND_WRIST_METHOD_A:
        extrinsics, source = load_extrinsics(args.extrinsic)
        print(
            f"[dataset] extrinsic {extrinsics.base_frame} <- {extrinsics.camera_frame} from "
            f"{source}"
        )
    elif args.extrinsic is not None:
        raise ConfigError(
            f"--extrinsic is used only with --action-space {XHAND_WRIST_METHOD_A} (the "
            f"{args.action_space} space is in the camera frame)"
        )
    cfg = HumanDatasetConfig(
        image_size=_height_width(args.image_size),
        max_side=args.max_side,
        action_space=args.action_space,
        extrinsics=extrinsics,
        extrinsics_source=source,
    )

    def progress(outcome) -> None:  # type: ignore[no-untyped-def]
        line = f"[dataset] {outcome.folder}: {outcome.status}"
        if outcome.episodes:
            line += f", {outcome.episodes} episodes, {outcome.frames} frames"
        print(line + (f" ({outcome.error})" if outcome.error else ""))

    report = convert_hand_videos(args.inputs, args.output, cfg, progress=progress)
    print(f"[dataset] {report.summary()} -> {report.dataset}")
    return 1 if report.failed else 0


def _from_sim(args: argparse.Namespace) -> int:
    from human_video_policy.errors import InputError
    from human_video_policy.training.sim_episodes import record_sim_dataset, record_task_dataset

    size = _height_width(args.image_size)
    if args.task == "reach":
        if args.robot != "widowx" or args.level != "position":
            raise InputError("--task reach runs on the WidowX at level position only")
        frames, success = record_sim_dataset(
            args.output,
            args.episodes,
            seed=args.seed,
            image_size=size,
            noise_std=0.05 if args.noise_std is None else args.noise_std,
            instruction=args.instruction or "reach the red target",
            progress=not args.quiet,
        )
        what = "noisy-expert"
    else:
        if args.noise_std:
            raise InputError(
                "--noise-std is for --task reach; a benchmark task's expert runs clean (DART "
                "noise for training: python -m human_video_policy.training.record_task_demos)"
            )
        frames, success = record_task_dataset(
            args.output,
            args.task,
            args.episodes,
            robot=args.robot,
            level=args.level,
            seed=args.seed,
            image_size=size,
            instruction=args.instruction,
            keep_failures=args.keep_failures,
            progress=not args.quiet,
        )
        what = f"{args.task} expert"
    print(
        f"[dataset] {args.episodes} sim episode(s), {frames} frames, {what} success "
        f"{100 * success:.0f} % -> {args.output}"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    from human_video_policy.data.dataset_reader import DatasetReader

    reader = DatasetReader(args.dataset)
    info = reader.info
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    hvp = info.get("hvp") if isinstance(info.get("hvp"), dict) else {}
    extras = (
        f"hvp format {hvp.get('format_version')}"
        if hvp
        else "no hvp block (written by another tool, e.g. LeRobot)"
    )
    print(f"dataset   {reader.root}")
    print(f"format    LeRobot {info['codebase_version']}, {extras}")
    space = f" (action space {hvp['action_space']})" if hvp.get("action_space") else ""
    print(f"robot     {_robot_line(info.get('robot_type'))}{space}")
    print(f"episodes  {reader.num_episodes}, frames {reader.num_frames} at {reader.fps:g} fps")
    print(f"tasks     {reader.tasks}")
    for key, f in info["features"].items():
        names = f.get("names")
        shown = "" if not names else f"  {names[:8]}{' ...' if len(names) > 8 else ''}"
        if f["dtype"] == "video":
            shown += f"  codec {(f.get('info') or {}).get('video.codec', '?')}"
        print(f"  {key:28s} {f['dtype']:8s} {f['shape']}{shown}")
    return 0


def _robot_line(robot_type: str | None) -> str:
    """``robot_type`` with the description of that robot in robots/spec.py when it is one."""
    from human_video_policy.robots.spec import get_robot, robot_names

    if robot_type in robot_names():
        return f"{robot_type}: {get_robot(robot_type).description}"
    if robot_type == "human_hand":
        return "human_hand: human hand videos (hvp video process)"
    return str(robot_type or "unknown")


def _validate(args: argparse.Namespace) -> int:
    from human_video_policy.data.dataset_format import check_conformance
    from human_video_policy.data.dataset_reader import DatasetReader
    from human_video_policy.errors import InputError

    problems = check_conformance(args.dataset)
    for p in problems:
        print(f"[dataset] schema: {p}")
    try:
        reader = DatasetReader(args.dataset)
    except InputError as exc:  # e.g. a truncated meta/episodes parquet file: name it, no trace
        if str(exc) not in problems:
            print(f"[dataset] {exc}")
        print("[dataset] BROKEN: the dataset cannot be opened")
        return 1
    report = reader.validate(check_videos=not args.no_videos)
    for line in _grouped(report.problems):
        print(f"[dataset] {line}")
    ok = report.ok and not problems
    broken = report.broken_episodes
    print(
        f"[dataset] {'OK' if ok else 'BROKEN'}: {report.episodes} episodes, {report.frames} "
        f"frames, {len(broken)} broken episode(s) {broken if broken else ''}".rstrip()
    )
    return 0 if ok else 1


def _grouped(problems: list) -> list[str]:  # type: ignore[type-arg]
    """One line per distinct problem, naming its episodes (a broken data file that holds 100
    episodes is one line, not 100)."""
    episodes: dict[str, list[int]] = {}
    for p in problems:
        episodes.setdefault(p.problem, []).append(p.episode)
    lines = []
    for problem, eps in episodes.items():
        named = [e for e in eps if e >= 0]
        if not named:
            where = "dataset"
        elif len(named) == 1:
            where = f"episode {named[0]}"
        else:
            where = f"episodes {named}"
        lines.append(f"{where}: {problem}")
    return lines


def _show(args: argparse.Namespace) -> int:
    from human_video_policy.data.dataset_reader import DatasetReader

    reader = DatasetReader(args.dataset)
    ep = reader.episodes[_episode_arg(reader, args.episode)]
    rows = reader.episode_rows(ep["episode_index"])
    print(json.dumps({k: v for k, v in ep.items()}, indent=2, default=str))
    np.set_printoptions(precision=4, suppress=True, linewidth=120)
    for i in range(min(args.rows, len(rows["index"]))):
        print(f"frame {i} t={rows['timestamp'][i]:.3f}s")
        for key in ("observation.state", "action"):
            if key in rows:
                print(f"  {key}: {rows[key][i]}")
    for key in reader.video_keys:
        print(f"video {key}: {reader.video_path(ep['episode_index'], key)}")
    if args.output:
        from human_video_policy.data.episode_render import render_episode_video

        out = render_episode_video(args.dataset, ep["episode_index"], args.output, args.camera)
        print(f"wrote {out} (camera image above the action curves, H.264)")
    return 0


def _episode_arg(reader, episode: int) -> int:  # type: ignore[no-untyped-def]
    from human_video_policy.errors import InputError

    if not 0 <= episode < reader.num_episodes:
        raise InputError(f"--episode {episode} does not exist: {reader.num_episodes} episode(s)")
    return episode


def _plot(args: argparse.Namespace) -> int:
    from human_video_policy.data.dataset_reader import DatasetReader
    from human_video_policy.data.episode_render import plot_episode_curves

    ep = _episode_arg(DatasetReader(args.dataset), args.episode)
    drawn = plot_episode_curves(args.dataset, ep, args.output)
    counts = ", ".join(f"{key} {sum(map(len, p))} dims" for key, p in drawn.items())
    print(f"[dataset] wrote {args.output} ({counts}, masked dimensions and rows left out)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from human_video_policy.cli.common import image_size, print_help
    from human_video_policy.policies.action_spaces import HUMAN_HAND_102, XHAND_WRIST_METHOD_A

    ds = subparsers.add_parser(
        "dataset", help="convert bags into a LeRobot v3 dataset, inspect and validate datasets"
    )
    sub = ds.add_subparsers(
        dest="dataset_command",
        metavar="<from-bags|from-video|from-sim|info|validate|show|plot>",
    )
    ds.set_defaults(func=lambda args: print_help(ds))

    p = sub.add_parser("from-bags", help="rosbag2 folders -> dataset (one episode per bag)")
    p.add_argument("bags", nargs="+", metavar="BAG", help="rosbag2 folders (MCAP or sqlite3)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="new dataset folder")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT if it is a dataset, once at least one bag converted (default: refuse "
        "a non-empty OUT)",
    )
    p.add_argument(
        "--preset",
        metavar="NAME|YAML",
        help="preset: config/datasets/NAME.yaml (one per graph that drives a robot, e.g. "
        "sim_widowx, sim_rm75, teleop_rm75_xhand, policy_widowx; what 'hvp record --preset "
        "NAME' records) or a YAML file; the flags below override it (default: none, each flag's "
        "default)",
    )
    p.add_argument(
        "--rate", type=float, default=None, help="rows per second (default: the preset's, else 10)"
    )
    p.add_argument(
        "--camera",
        action="append",
        default=None,
        metavar="TOPIC",
        help="image topic (repeatable; 'none' for no camera; default: the preset's, else "
        "/camera/camera/color/image_raw)",
    )
    p.add_argument(
        "--state-topic",
        default=None,
        help="measured joints (default: the preset's, else /arm/joint_states)",
    )
    p.add_argument(
        "--action-topic",
        default=None,
        help="commanded joints (default: the preset's, else /arm/joint_commands)",
    )
    p.add_argument(
        "--extra-state-topic",
        action="append",
        default=None,
        metavar="TOPIC",
        help="more measured joints appended to the state, e.g. /hand/joint_states "
        "(repeatable; default: the preset's, else none)",
    )
    p.add_argument(
        "--extra-action-topic",
        action="append",
        default=None,
        metavar="TOPIC",
        help="more commanded joints appended to the action, e.g. /hand/joint_commands "
        "(repeatable; default: the preset's, else none)",
    )
    p.add_argument(
        "--instruction",
        default=None,
        help="task text of every episode (default: the one hvp record stored in each bag)",
    )
    p.add_argument(
        "--embodiment",
        default=None,
        help="widowx, xhand, rm75_xhand, human_hand, or '' to keep the bag's joint names "
        "(default: the preset's, else widowx)",
    )
    p.add_argument(
        "--sync-tolerance",
        type=float,
        default=None,
        help="largest image/state stamp offset from a row's time, s (default: the preset's, "
        "else 0.05)",
    )
    p.add_argument(
        "--image-size",
        type=image_size,
        default=None,
        metavar="WxH",
        help="store images centre-cropped and resized to WxH, even sides, e.g. 320x240 "
        "(default: the preset's, else as recorded)",
    )
    p.set_defaults(func=_from_bags_entry)

    p = sub.add_parser(
        "from-video", help="hvp video process output -> human hand dataset (one episode/segment)"
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="VIDEO_EPISODES_DIR",
        help="output folder of 'hvp video process' (or one video folder in it)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="new dataset folder")
    p.add_argument(
        "--image-size",
        type=image_size,
        default=None,
        metavar="WxH",
        help="store frames centre-cropped and resized to WxH, even sides, e.g. 320x240 "
        "(default: the source aspect, longest side --max-side)",
    )
    p.add_argument(
        "--max-side", type=int, default=320, help="longest side (px) without --image-size"
    )
    p.add_argument(
        "--action-space",
        default=HUMAN_HAND_102,
        choices=(HUMAN_HAND_102, XHAND_WRIST_METHOD_A),
        help="human_hand_102 (VITRA's two-hand camera-frame space) or xhand_wrist_method_a "
        "(method A: 12 XHand joints + wrist 6D rotation + position in the robot base frame, "
        "right hand only)",
    )
    p.add_argument(
        "--extrinsic",
        default=None,
        metavar="YAML",
        help="camera -> robot base transform for xhand_wrist_method_a: a ROS parameters file "
        "with camera_extrinsic [x, y, z, qx, qy, qz, qw], or camera_extrinsic / T_base_camera "
        "(4x4) at the top level (default: config/ik.params.yaml, the robot camera)",
    )
    p.set_defaults(func=_from_video)

    p = sub.add_parser("from-sim", help="scripted-expert episodes from the sim (no ROS)")
    p.add_argument("--episodes", type=int, required=True, help="rollouts (one episode each)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="new dataset folder")
    p.add_argument(
        "--task", default="reach", help="reach (default) or a benchmark task (hvp bench --list)"
    )
    p.add_argument("--robot", default="widowx", help="robot of a benchmark task")
    p.add_argument("--level", default="position", help="generalisation level of a task")
    p.add_argument("--seed", type=int, default=0, help="first world seed (training seeds)")
    p.add_argument(
        "--image-size", type=image_size, default="128x128", metavar="WxH", help="render size"
    )
    p.add_argument(
        "--noise-std", type=float, default=None, help="DART noise (rad), reach only (default: 0.05)"
    )
    p.add_argument(
        "--keep-failures", action="store_true", help="also keep the expert's failed episodes"
    )
    p.add_argument("--instruction", default="", help="task text (default: the task's description)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_from_sim)

    p = sub.add_parser("info", help="what a dataset holds")
    p.add_argument("dataset", metavar="DATASET")
    p.add_argument("--json", action="store_true", help="print meta/info.json")
    p.set_defaults(func=_info)

    p = sub.add_parser("validate", help="schema + every episode; exit 1 when broken")
    p.add_argument("dataset", metavar="DATASET")
    p.add_argument("--no-videos", action="store_true", help="skip decoding the videos")
    p.set_defaults(func=_validate)

    p = sub.add_parser(
        "show", help="one episode's metadata and first rows; -o out.mp4: video with actions"
    )
    p.add_argument("dataset", metavar="DATASET")
    p.add_argument("-e", "--episode", type=int, default=0, help="episode index")
    p.add_argument("--rows", type=int, default=3, help="rows printed")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="MP4",
        help="also write an MP4 of the camera above the action curves (default: print only)",
    )
    p.add_argument("--camera", default=None, help="video feature to show (default: the first)")
    p.set_defaults(func=_show)

    p = sub.add_parser("plot", help="one episode's state and action curves as a PNG")
    p.add_argument("dataset", metavar="DATASET")
    p.add_argument("-e", "--episode", type=int, default=0, help="episode index")
    p.add_argument("-o", "--output", required=True, metavar="PNG", help="picture to write")
    p.set_defaults(func=_plot)


def _from_bags_entry(args: argparse.Namespace) -> int:
    if args.camera == ["none"]:
        args.camera = []  # None: the preset's cameras, else /camera/camera/color/image_raw
    return _from_bags(args)
