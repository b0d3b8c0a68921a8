"""Dataset video decoding: PyAV (what DatasetReader uses now) against OpenCV (what it used).

    .venv/bin/python benchmarks/video_decode_benchmark.py   # ~1 min -> results/video_decode.json

Two 200-frame clips at 640x480 and 320x240, encoded as the project writes (libx264 crf 18, GOP
10) and as LeRobot writes by default (libsvtav1 crf 30, GOP 2), decoded in one run, same
machine: a whole episode stretch from its first frame (``StreamDecoder.frames`` vs
``cv2.VideoCapture`` + ``read``), and 50 random single frames (seek + decode). OpenCV's FFmpeg
has no AV1 decoder here, so AV1 has PyAV numbers only.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from human_video_policy.video.stream_decoder import StreamDecoder

FPS = 10.0
FRAMES = 200


def make_clip(path: Path, width: int, height: int, codec: str) -> None:
    yy, xx = np.mgrid[0:height, 0:width]
    enc = (
        ["-c:v", "libx264", "-crf", "18", "-preset", "superfast", "-g", "10"]
        if codec == "h264"
        else ["-c:v", "libsvtav1", "-crf", "30", "-g", "2", "-preset", "8"]
    )
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-", *enc, "-pix_fmt", "yuv420p",
           str(path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for t in range(FRAMES):
        img = np.dstack([(xx + 3 * t) % 256, (yy + 2 * t) % 256, (xx + yy + t) % 256])
        proc.stdin.write(img.astype(np.uint8).tobytes())
    proc.stdin.close()
    if proc.wait():
        raise RuntimeError(f"ffmpeg failed encoding {path}")


def pyav_stretch(path: Path) -> float:
    t0 = time.perf_counter()
    with StreamDecoder(path) as dec:
        frames = dec.frames(0.0, FRAMES, FPS)
    assert len(frames) == FRAMES
    return FRAMES / (time.perf_counter() - t0)


def cv2_stretch(path: Path) -> float:
    t0 = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    n = 0
    while n < FRAMES:
        ok, bgr = cap.read()
        if not ok:
            break
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    if n != FRAMES:
        raise RuntimeError(f"OpenCV decoded {n} of {FRAMES} frames of {path}")
    return FRAMES / (time.perf_counter() - t0)


def pyav_random(path: Path, picks: np.ndarray) -> float:
    with StreamDecoder(path) as dec:
        t0 = time.perf_counter()
        for i in picks:
            dec.frames(float(i) / FPS, 1, FPS)
        return len(picks) / (time.perf_counter() - t0)


def cv2_random(path: Path, picks: np.ndarray) -> float:
    cap = cv2.VideoCapture(str(path))
    t0 = time.perf_counter()
    for i in picks:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, _ = cap.read()
        if not ok:
            raise RuntimeError(f"OpenCV could not seek to frame {i} of {path}")
    rate = len(picks) / (time.perf_counter() - t0)
    cap.release()
    return rate


def main() -> None:
    picks = np.random.default_rng(0).integers(0, FRAMES, 50)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in ((640, 480), (320, 240)):
            for codec in ("h264", "av1"):
                path = Path(tmp) / f"{codec}_{width}.mp4"
                make_clip(path, width, height, codec)
                row = {"size": f"{width}x{height}", "codec": codec}
                for name, fn in (
                    ("pyav_stretch_fps", pyav_stretch),
                    ("cv2_stretch_fps", cv2_stretch),
                ):
                    if name.startswith("cv2") and codec == "av1":
                        continue
                    row[name] = round(float(np.median([fn(path) for _ in range(3)])), 1)
                row["pyav_random_fps"] = round(pyav_random(path, picks), 1)
                if codec == "h264":
                    row["cv2_random_fps"] = round(cv2_random(path, picks), 1)
                    row["stretch_ratio_pyav_over_cv2"] = round(
                        row["pyav_stretch_fps"] / row["cv2_stretch_fps"], 2
                    )
                    row["random_ratio_pyav_over_cv2"] = round(
                        row["pyav_random_fps"] / row["cv2_random_fps"], 2
                    )
                rows.append(row)
                print(row, flush=True)
    out = Path(__file__).parent / "results" / "video_decode.json"
    out.write_text(json.dumps({"frames": FRAMES, "fps": FPS, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
