"""Accuracy of the hand-video pipeline on simulated human demonstrations with ground truth.

Renders N human demonstrations of a task (sim/human_demo.py: the WidowX scene camera,
640 x 480 at 30 fps by default) and runs the pipeline of ``hvp video process``
(``VideoEpisodePipeline``: MediaPipe tracking, lifting with the true focal length ``fx``,
gap filling, kinematics) on every video, then compares with the ground truth:

- **detection**: frames where MediaPipe found a hand / frames; handedness label of the most
  confident detection (the hand is a right hand) and frames where it reported the one hand
  twice, as a right and a left hand;
- **2D**: per-keypoint pixel error of the most confident detection (frames with a detection);
- **3D, tracker**: MediaPipe's metric world landmarks against the true keypoints, both taken
  relative to the wrist in the camera's axes, and after the best similarity transform
  (Procrustes: the hand's shape whatever its orientation error) (mm);
- **3D, pipeline**: the episodes' lifted camera-frame keypoints on the frames the tracker saw
  (not gap-filled): absolute per-keypoint error, wrist position error, wrist depth error, and
  the error after moving the wrists together (mm); right- and left-labelled episodes alike;
- **why missed**: detection rate by view (angle between the palm normal and the direction from
  the hand to the camera: 0 = palm toward the camera, 180 = back of the hand), by finger
  direction (0 = the fingers point at the camera: foreshortened) and by hand size (diagonal of
  the true keypoints' bounding box, px).

    .venv/bin/python benchmarks/sim_hand_tracking.py [--task pick_place] [--seeds 0-9]
        [--out DIR (keep the videos)] [--width 640 --height 480] [--model-complexity 1]

Prints the numbers and writes benchmarks/results/sim_hand_tracking_<task>.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from human_video_policy.hands.tracker import HandDetection
from human_video_policy.pipeline.episode_format import read_episode, read_video_record
from human_video_policy.pipeline.video_episodes import VideoEpisodePipeline, VideoPipelineConfig
from human_video_policy.sim.human_demo import (
    VIDEOS_DIR,
    HumanTaskWorld,
    export_demo,
    parse_seeds,
    run_human_episode,
)
from human_video_policy.sim.task_world import TaskWorldConfig
from human_video_policy.video.reader import VideoReader

RESULTS = Path(__file__).resolve().parent / "results"
VIEW_BINS = (0, 30, 60, 90, 120, 150, 180)
SIZE_BINS = (0, 150, 200, 250, 300, 1000)


class RecordingPipeline(VideoEpisodePipeline):
    """The pipeline, keeping the per-frame detections of its last ``track`` pass."""

    detections: list[dict[str, HandDetection | None]]

    def track(self, reader, timings, on_frame=None):  # type: ignore[override]
        out = super().track(reader, timings, on_frame)
        self.detections = out[0]
        return out


def render(task: str, seeds: list[int], out: Path, size: tuple[int, int]) -> list[Path]:
    folders = []
    config = TaskWorldConfig(task=task, image_width=size[0], image_height=size[1])
    with HumanTaskWorld(config) as world:
        for seed in seeds:
            demo = run_human_episode(world, seed, render=True)
            folders.append(export_demo(demo, out))
            print(f"rendered {demo.video_id}: {demo.num_frames} frames, success={demo.success}")
    return folders


def view_angles(rotation_cam: np.ndarray, wrist_cam: np.ndarray, axis: int) -> np.ndarray:
    """(T,) angle (deg) between the wrist frame's ``axis`` (2: the palm normal, 0: the
    fingers' direction) and the direction from the wrist to the camera."""
    to_camera = -wrist_cam / np.linalg.norm(wrist_cam, axis=1, keepdims=True)
    cos = np.einsum("ti,ti->t", rotation_cam[:, :, axis], to_camera)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def procrustes_error(mine: np.ndarray, true: np.ndarray) -> float:
    """Mean keypoint distance after the best rotation, scale and translation of ``mine`` onto
    ``true`` (PA-MPJPE, m): the hand's shape, whatever its pose error."""
    a, b = mine - mine.mean(axis=0), true - true.mean(axis=0)
    u, sig, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum() / (a**2).sum())
    return float(np.linalg.norm(scale * a @ rot - b, axis=1).mean())


def evaluate_video(pipeline: RecordingPipeline, folder: Path) -> dict:
    """Per-frame ground truth and pipeline output of one exported demo."""
    record = read_video_record(folder)
    assert record is not None
    truth = read_episode(folder / record["episodes"][0]["file"]).arrays
    gt_px, gt_cam = truth["keypoints_px"], truth["keypoints_cam"]
    T = gt_px.shape[0]
    result = pipeline.process(Path(record["source"]), video_id=folder.name)
    dets = pipeline.detections
    assert len(dets) == T, (len(dets), T)
    frames: dict[str, list] = {
        k: []
        for k in (
            "detected",
            "label",
            "both_labels",
            "err_px",
            "err_world_mm",
            "err_pa_mm",
            "view",
            "fingers",
            "size",
            "inside",
        )
    }
    view = view_angles(truth["wrist_rotation"], truth["wrist_position"], 2)
    fingers = view_angles(truth["wrist_rotation"], truth["wrist_position"], 0)
    h, w = record["height"], record["width"]
    for t in range(T):
        found = [d for d in dets[t].values() if d is not None]
        best = max(found, key=lambda d: d.confidence) if found else None
        frames["detected"].append(best is not None)
        frames["label"].append(best.handedness if best else "")
        frames["both_labels"].append(len(found) == 2)
        frames["view"].append(float(view[t]))
        frames["fingers"].append(float(fingers[t]))
        span = gt_px[t].max(axis=0) - gt_px[t].min(axis=0)
        frames["size"].append(float(np.linalg.norm(span)))
        inside = (gt_px[t] >= 0).all() and (gt_px[t][:, 0] <= w - 1).all()
        frames["inside"].append(bool(inside and (gt_px[t][:, 1] <= h - 1).all()))
        if best is None:
            frames["err_px"].append(np.nan)
            frames["err_world_mm"].append(np.nan)
            frames["err_pa_mm"].append(np.nan)
            continue
        frames["err_px"].append(float(np.linalg.norm(best.keypoints_px - gt_px[t], axis=1).mean()))
        rel_true = gt_cam[t] - gt_cam[t, 0]
        rel_mp = best.keypoints_world - best.keypoints_world[0]
        frames["err_world_mm"].append(
            1000 * float(np.linalg.norm(rel_mp - rel_true, axis=1).mean())
        )
        frames["err_pa_mm"].append(1000 * procrustes_error(best.keypoints_world, gt_cam[t]))
    lifted: dict[str, list[float]] = {"abs": [], "wrist": [], "depth": [], "rel": []}
    for ep in result.episodes:
        a = ep.arrays
        seen = ~a["filled"]
        idx = a["frame_index"][seen]
        mine, true = a["keypoints_cam"][seen], gt_cam[idx]
        lifted["abs"] += list(1000 * np.linalg.norm(mine - true, axis=2).mean(axis=1))
        lifted["wrist"] += list(1000 * np.linalg.norm(mine[:, 0] - true[:, 0], axis=1))
        lifted["depth"] += list(1000 * np.abs(mine[:, 0, 2] - true[:, 0, 2]))
        rel = (mine - mine[:, :1]) - (true - true[:, :1])
        lifted["rel"] += list(1000 * np.linalg.norm(rel, axis=2).mean(axis=1))
    return {
        "video_id": folder.name,
        "frames": T,
        "status": result.record["status"],
        "hands_found": result.record["hands_found"],
        "episodes": [(e.handedness, e.num_frames) for e in result.episodes],
        "per_frame": frames,
        "lifted_mm": lifted,
    }


def _stats(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "mean": float("nan"), "median": float("nan"), "p90": float("nan")}
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "p90": float(np.percentile(v, 90)),
    }


def _by_bins(values: np.ndarray, detected: np.ndarray, bins: tuple[int, ...]) -> list[dict]:
    rows = []
    for lo, hi in itertools.pairwise(bins):
        sel = (values >= lo) & (values < hi)
        n = int(sel.sum())
        rows.append(
            {
                "bin": f"{lo}-{hi}",
                "frames": n,
                "detected": float(detected[sel].mean()) if n else None,
            }
        )
    return rows


def summarise(videos: list[dict]) -> dict:
    cat = {k: [] for k in videos[0]["per_frame"]}
    for v in videos:
        for k, vals in v["per_frame"].items():
            cat[k] += vals
    detected = np.asarray(cat["detected"])
    labels = np.asarray(cat["label"])
    lifted = {k: [x for v in videos for x in v["lifted_mm"][k]] for k in videos[0]["lifted_mm"]}
    frames = len(detected)
    return {
        "videos": len(videos),
        "frames": frames,
        "frames_hand_fully_in_image": float(np.mean(cat["inside"])),
        "detection_rate": float(detected.mean()),
        "videos_with_episode": sum(bool(v["episodes"]) for v in videos),
        "labels": {"right": int((labels == "right").sum()), "left": int((labels == "left").sum())},
        "frames_with_a_right_and_a_left_detection": int(np.sum(cat["both_labels"])),
        "error_2d_px": _stats(cat["err_px"]),
        "error_3d_tracker_wrist_relative_mm": _stats(cat["err_world_mm"]),
        "error_3d_tracker_procrustes_mm": _stats(cat["err_pa_mm"]),
        "error_3d_pipeline_mm": {k: _stats(v) for k, v in lifted.items()},
        "detection_by_view_deg": _by_bins(np.asarray(cat["view"]), detected, VIEW_BINS),
        "detection_by_size_px": _by_bins(np.asarray(cat["size"]), detected, SIZE_BINS),
        "detection_by_fingers_deg": _by_bins(np.asarray(cat["fingers"]), detected, VIEW_BINS),
        "hand_size_px": _stats(cat["size"]),
        "view_deg": _stats(cat["view"]),
    }


def _fmt(r: dict[str, float]) -> str:
    return f"mean {r['mean']:.1f}, median {r['median']:.1f}, p90 {r['p90']:.1f} (n={r['n']})"


def report_lines(s: dict, args: argparse.Namespace, fx: float) -> list[str]:
    """The summary as printed lines."""
    rates = {
        key: ", ".join(
            f"{r['bin']}: {r['detected']:.0%} of {r['frames']}" for r in rows if r["frames"]
        )
        for key, rows in (
            ("view", s["detection_by_view_deg"]),
            ("size", s["detection_by_size_px"]),
            ("fingers", s["detection_by_fingers_deg"]),
        )
    }
    lifted = s["error_3d_pipeline_mm"]
    return [
        "",
        f"{args.task}, seeds {args.seeds}, {args.width}x{args.height}, "
        f"MediaPipe c{args.model_complexity}, fx={fx:.1f}",
        f"frames {s['frames']} in {s['videos']} videos "
        f"(hand fully in the image: {s['frames_hand_fully_in_image']:.0%})",
        f"detection rate {s['detection_rate']:.1%}; label of the most confident detection: "
        f"right {s['labels']['right']}, left {s['labels']['left']}; frames with both a right "
        f"and a left detection: {s['frames_with_a_right_and_a_left_detection']}; videos with "
        f"an episode {s['videos_with_episode']}/{s['videos']}",
        f"2D error px: {_fmt(s['error_2d_px'])}",
        f"3D tracker, wrist-relative mm: {_fmt(s['error_3d_tracker_wrist_relative_mm'])}",
        f"3D tracker, Procrustes-aligned mm: {_fmt(s['error_3d_tracker_procrustes_mm'])}",
        f"3D pipeline absolute mm: {_fmt(lifted['abs'])}",
        f"3D pipeline wrist position mm: {_fmt(lifted['wrist'])}",
        f"3D pipeline wrist depth mm: {_fmt(lifted['depth'])}",
        f"3D pipeline wrist-aligned mm: {_fmt(lifted['rel'])}",
        f"detection by view (deg, 0 = palm toward the camera): {rates['view']}",
        f"detection by finger direction (deg, 0 = toward the camera): {rates['fingers']}",
        f"detection by hand size (px): {rates['size']}",
        f"hand size px: {_fmt(s['hand_size_px'])}; view deg: {_fmt(s['view_deg'])}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pick_place")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--out", default="", help="keep the rendered demos here (default: temp)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--model-complexity", type=int, default=1, choices=(0, 1))
    args = parser.parse_args()
    load_start = os.getloadavg()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        folders = render(args.task, parse_seeds(args.seeds), out, (args.width, args.height))
        fx = read_episode(folders[0] / "episode_000_right.npz").intrinsics["fx"]
        config = VideoPipelineConfig(fx=fx, model_complexity=args.model_complexity)
        videos = []
        with RecordingPipeline(config) as pipeline:
            for folder in folders:
                videos.append(evaluate_video(pipeline, folder))
                v = videos[-1]
                rate = np.mean(v["per_frame"]["detected"])
                print(f"tracked {v['video_id']}: detected {rate:.0%}, episodes {v['episodes']}")
        assert all(len(list(VideoReader(out / VIDEOS_DIR / f"{f.name}.mp4"))) for f in folders)
    summary = summarise(videos)
    report = {
        "task": args.task,
        "seeds": args.seeds,
        "size": [args.width, args.height],
        "pipeline": {"fx": fx, "model_complexity": args.model_complexity},
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
        },
        "wall_s": time.perf_counter() - start,
        "summary": summary,
        "videos": [
            {k: v[k] for k in ("video_id", "frames", "status", "hands_found", "episodes")}
            for v in videos
        ],
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"sim_hand_tracking_{args.task}.json"
    path.write_text(json.dumps(report, indent=2, default=float) + "\n")
    for line in report_lines(summary, args, fx):
        print(line)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
