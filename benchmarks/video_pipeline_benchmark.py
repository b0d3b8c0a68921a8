"""Throughput of the hand-video pipeline on the real 720p dexret_hand video (621 frames).

For each tracker variant (MediaPipe model_complexity 1 or 0, full resolution or downscaled to a
640 px longest side before tracking):

- a **tracking pass** (decode inline, then track): decode and tracking frames/s, and the
  tracker's 3D accuracy against ``human_joint_right.npy`` (dex-retargeting's MediaPipe output
  for this video, in its wrist frame, see test/test_hand_tracker.py): median / p95 per-keypoint
  error in mm over the frames where a right hand was found, and the detection rate;
- an **end-to-end pass** (``VideoEpisodePipeline.process``: decode in a background thread,
  track, lift, clean, kinematics, retarget, segment): frames/s per stage and overall.

    .venv/bin/python benchmarks/video_pipeline_benchmark.py [--variants c1,c0,c1-640,c0-640]
        [--no-inline]   # skip the extra end-to-end pass of c1 with decoding inline (no thread)

Prints a Markdown table and writes benchmarks/results/video_pipeline.json (with the load average
at the start and end: the machine is shared, timings are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from human_video_policy.hands.wrist_pose import to_mano_wrist_frame
from human_video_policy.pipeline.video_episodes import (
    STAGES,
    VideoEpisodePipeline,
    VideoPipelineConfig,
)
from human_video_policy.video import VideoReader

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "human_video" / "dexret_hand"
VIDEO = DATA / "human_hand_video.mp4"
REFERENCE = DATA / "human_joint_right.npy"
RESULTS = Path(__file__).resolve().parent / "results"

VARIANTS: dict[str, dict[str, int]] = {
    "c1": {"model_complexity": 1, "track_max_side": 0},
    "c0": {"model_complexity": 0, "track_max_side": 0},
    "c1-640": {"model_complexity": 1, "track_max_side": 640},
    "c0-640": {"model_complexity": 0, "track_max_side": 640},
}


def tracking_pass(config: VideoPipelineConfig, reference: np.ndarray) -> dict:
    timings = dict.fromkeys(STAGES, 0.0)
    with VideoEpisodePipeline(config) as pipeline:
        detections, decoded = pipeline.track(VideoReader(VIDEO), timings)
    n = len(decoded.indices)
    errors = []
    for i, per_hand in enumerate(detections):
        det = per_hand["right"]
        if det is not None and i < len(reference):
            mine = to_mano_wrist_frame(det.keypoints_wrist_relative)
            errors.append(np.linalg.norm(mine - reference[i], axis=1))
    err_mm = np.concatenate(errors) * 1000.0 if errors else np.array([np.nan])
    return {
        "frames": n,
        "right_hand_found": len(errors) / n,
        "decode_fps": n / timings["decode"],
        "track_fps": n / timings["track"],
        "median_error_mm": float(np.median(err_mm)),
        "p95_error_mm": float(np.percentile(err_mm, 95)),
    }


def end_to_end_pass(config: VideoPipelineConfig) -> dict:
    with VideoEpisodePipeline(config) as pipeline:
        pipeline.process(VIDEO)  # warm-up: builds the retargeter, loads the models
        start = time.perf_counter()
        result = pipeline.process(VIDEO)
        wall = time.perf_counter() - start
    rec = result.record
    n = rec["frames"]
    stages = rec["stage_seconds"]
    covered = sum(e["frames"] for e in rec["episodes"])
    return {
        "frames": n,
        "wall_s": wall,
        "end_to_end_fps": n / wall,
        "stage_seconds": stages,
        "stage_fps": {k: (n / v if v > 0 else None) for k, v in stages.items() if k != "total"},
        "post_tracking_fps": n / sum(stages[k] for k in STAGES[2:]),
        "episodes": len(rec["episodes"]),
        "frames_in_episodes": covered,
        "segments": sum(e["segments"] for e in rec["episodes"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="c1,c0,c1-640,c0-640")
    parser.add_argument("--no-inline", action="store_true")
    args = parser.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; known: {sorted(VARIANTS)}")
    assert VIDEO.is_file() and REFERENCE.is_file(), "shared data missing (shared/data/SOURCES.md)"
    reference = np.load(REFERENCE).astype(np.float64)
    load_start = os.getloadavg()
    results: dict[str, dict] = {}
    for name in names:
        tracking_cfg = VideoPipelineConfig(decode_thread=False, **VARIANTS[name])
        results[name] = {"tracking": tracking_pass(tracking_cfg, reference)}
        results[name]["end_to_end"] = end_to_end_pass(VideoPipelineConfig(**VARIANTS[name]))
        print(f"{name}: {json.dumps(results[name], default=float)[:300]}...", flush=True)
    if not args.no_inline:
        results["c1-inline-decode"] = {
            "end_to_end": end_to_end_pass(VideoPipelineConfig(decode_thread=False))
        }
    out = {
        "video": str(VIDEO.relative_to(ROOT.parent)),
        "variants": {k: VARIANTS.get(k, {"decode_thread": False}) for k in results},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
        },
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "video_pipeline.json"
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(
        "\n| variant | decode fps | track fps | hand found | median / p95 err mm | "
        "post-tracking fps | end-to-end fps |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        t, e = r.get("tracking"), r["end_to_end"]
        tcols = (
            f"{t['decode_fps']:.0f} | {t['track_fps']:.1f} | {100 * t['right_hand_found']:.1f} % | "
            f"{t['median_error_mm']:.2f} / {t['p95_error_mm']:.2f}"
            if t
            else "- | - | - | -"
        )
        print(f"| {name} | {tcols} | {e['post_tracking_fps']:.0f} | {e['end_to_end_fps']:.1f} |")
    print(f"\nwrote {path.relative_to(ROOT)}; load average {load_start} -> {os.getloadavg()}")


if __name__ == "__main__":
    main()
