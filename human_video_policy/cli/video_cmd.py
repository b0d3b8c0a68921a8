"""``hvp video process|show``: human hand videos -> episodes, and pictures of episodes.

``hvp video process VIDEO... -o OUT`` writes the layout of docs/video_pipeline.md; it is
resumable (finished videos are skipped unless ``--force``), records a video that fails and goes
on, and with ``--ray [ADDRESS]`` spreads the videos over a Ray cluster (or a local one with
``--workers`` CPUs). Exit code 0 when no video failed, 1 otherwise.

``hvp video show EPISODE.npz|FOLDER|VIDEO -o out.mp4|out.png`` draws one episode (of a processed
video's folder, the longest; a video is processed in memory first and its longest episode shown).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from human_video_policy.cli.common import print_help
from human_video_policy.errors import InputError


def _process(args: argparse.Namespace) -> int:
    from human_video_policy.hands.native_logs import filtered_native_stderr
    from human_video_policy.pipeline.batch import BatchConfig, run_batch
    from human_video_policy.pipeline.video_episodes import VideoPipelineConfig

    config = VideoPipelineConfig(
        model_complexity=args.model_complexity,
        track_max_side=args.track_max_side,
        fx=args.fx,
        hfov_deg=args.hfov,
        max_frames=args.max_frames,
        allow_truncated=args.allow_truncated,
        stabilise_depth=not args.per_frame_depth,
        depth_sigma_s=args.depth_sigma,
    )
    batch = BatchConfig(
        out_dir=Path(args.output),
        force=args.force,
        max_retries=args.max_retries,
        use_ray=args.ray is not None,
        ray_address=args.ray or None,
        workers=args.workers,
        progress=not args.quiet,
    )
    with filtered_native_stderr():  # MediaPipe's start-up noise (hands/native_logs.py)
        report = run_batch(args.videos, config, batch)
    for o in report.outcomes:
        parts = [f"[video] {o.video_id}: {o.status}"]
        if o.status != "failed":
            parts.append(f"{o.episodes} episode(s), {o.frames} frames")
        if o.error and o.status != "ok":
            parts.append(f"({o.error})")
        print(" ".join(parts))
    print(f"[video] {report.summary()} -> {batch.out_dir}")
    return 1 if report.failed else 0


def _episode_to_show(path: Path, max_frames: int) -> tuple[object, Path]:
    from human_video_policy.pipeline.episode_format import read_episode, read_video_record
    from human_video_policy.pipeline.video_episodes import VideoPipelineConfig, process_video

    if path.is_dir():  # a processed video's folder (hvp video process OUT/<video_id>)
        episodes = sorted(path.glob("episode_*.npz"))
        if not episodes:
            raise InputError(f"{path} holds no episode_*.npz (not an `hvp video process` folder)")
        path = max(episodes, key=lambda p: read_episode(p).num_frames)
    if path.suffix == ".npz":
        episode = read_episode(path)
        record = read_video_record(path.parent)
        if record is None:
            raise InputError(f"{path.parent} has no video.json: cannot find the source video")
        return episode, Path(record["source"])
    result = process_video(path, VideoPipelineConfig(max_frames=max_frames))
    if not result.episodes:
        raise InputError(f"{path}: no episode to show ({result.record.get('error')})")
    return max(result.episodes, key=lambda e: e.num_frames), path


def _show(args: argparse.Namespace) -> int:
    from human_video_policy.hands.native_logs import filtered_native_stderr
    from human_video_policy.pipeline.render import RenderConfig, render_episode

    with filtered_native_stderr():  # a video is tracked first: MediaPipe's start-up noise
        episode, source = _episode_to_show(Path(args.input), args.max_frames)
    config = RenderConfig(
        max_frames=args.max_frames, horizon_frames=args.horizon, wrist_circle=args.circle
    )
    out = render_episode(episode, source, args.output, config)  # type: ignore[arg-type]
    print(f"[video] wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    video = subparsers.add_parser(
        "video", help="process human hand videos into episodes, or draw an episode"
    )
    sub = video.add_subparsers(dest="video_command", metavar="<process|show>")
    video.set_defaults(func=lambda args: print_help(video))

    p = sub.add_parser(
        "process",
        help="videos -> OUT/<video_id>/episode_*.npz + video.json, OUT/index.jsonl",
        description="Decode, track, lift, retarget and segment every video (resumable).",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: a cluster address, or none for a local instance with --workers CPUs "
        "(default: no Ray, one process)",
    )
    p.add_argument("--workers", type=int, default=1, help="CPUs of a local Ray instance")
    p.add_argument(
        "--fx",
        type=float,
        default=None,
        help="focal length in pixels (full size) (default: from --hfov)",
    )
    p.add_argument(
        "--hfov", type=float, default=60.0, help="assumed horizontal FOV (deg) without --fx"
    )
    p.add_argument("--max-frames", type=int, default=0, help="only the first N frames (0 = all)")
    p.add_argument("--force", action="store_true", help="redo videos that are already done")
    p.add_argument("--max-retries", type=int, default=1, help="retries of a failing video")
    p.add_argument(
        "--model-complexity",
        type=int,
        default=1,
        choices=(0, 1),
        help="MediaPipe hand model: 0 = lite (faster), 1 = full",
    )
    p.add_argument(
        "--track-max-side", type=int, default=0, help="downscale for tracking (px, 0 = no)"
    )
    p.add_argument(
        "--allow-truncated", action="store_true", help="keep the frames of a truncated file"
    )
    p.add_argument(
        "--depth-sigma",
        type=float,
        default=2.0,
        help="time constant (s) of the monocular depth filter (docs/hand_lifting.md)",
    )
    p.add_argument(
        "--per-frame-depth",
        action="store_true",
        help="lift every frame on its own (no track-level depth stabilisation)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_process)

    s = sub.add_parser(
        "show",
        help="draw an episode (or a video's longest episode) as MP4 or PNG",
        description="Keypoint skeleton, future wrist trajectory, captions and the speed plot.",
    )
    s.add_argument(
        "input",
        metavar="EPISODE_OR_VIDEO",
        help="episode_*.npz, a processed video's folder (its longest episode) or a video file",
    )
    s.add_argument("-o", "--output", required=True, help="out.mp4 or out.png")
    s.add_argument("--max-frames", type=int, default=0, help="only the first N frames (0 = all)")
    s.add_argument("--horizon", type=int, default=30, help="future frames drawn (MP4)")
    s.add_argument("--circle", action="store_true", help="also draw the method A wrist circle")
    s.set_defaults(func=_show)
