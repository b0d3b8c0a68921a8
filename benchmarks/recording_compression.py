"""Bytes a recording of the teleop graph's operator camera takes: raw vs compressed.

``camera_node`` plays a 1280x720 video as the camera (the teleop graph's ``camera_source:=video``
with the dexret hand video) on /camera/camera/color/image_raw at ``--rate`` Hz, and
``hvp record --duration S`` records it once per mode: ``--raw-images`` (sensor_msgs/Image rgb8),
the default (JPEG quality 90 CompressedImage) and ``--image-format png``. For each: frames in
the bag, bytes per frame (message payloads), bag size on disk, MB per second extrapolated to
30 Hz, and the CPU the recorder used (``hvp record`` and its node) per recorded second.

    .venv/bin/python benchmarks/recording_compression.py            # 15 Hz, 4 s per mode
    .venv/bin/python benchmarks/recording_compression.py --rate 30 --video my_1280x720.mp4

Results: docs/recording.md ("Images").
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ros_session import isolated_environment

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT.parent / "shared" / "data" / "human_video" / "dexret_hand" / "human_hand_video.mp4"
TOPIC = "/camera/camera/color/image_raw"
MODES = {"raw": ["--raw-images"], "jpeg": [], "png": ["--image-format", "png"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=VIDEO, help="a 1280x720 video")
    parser.add_argument("--rate", type=float, default=15.0, help="camera frames per second")
    parser.add_argument("--seconds", type=float, default=4.0, help="recording per mode")
    args = parser.parse_args()
    env = isolated_environment()
    from human_video_policy.data.bags import BagReader

    camera = [
        sys.executable, "-m", "human_video_policy.nodes.camera_node", "--ros-args",
        "--params-file", str(ROOT / "config" / "camera.params.yaml"),
        "-p", "source:=video", "-p", f"video_path:={args.video}",
        "-p", f"rate_hz:={args.rate}", "-p", "loop:=true",
    ]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="hvp_rec_bytes_") as tmp:
        node = subprocess.Popen(camera, env=env, stdout=subprocess.DEVNULL)
        try:
            time.sleep(3.0)  # the camera is up and publishing
            for mode, flags in MODES.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                record = [
                    sys.executable, "-m", "human_video_policy.cli.main", "record",
                    "-o", tmp, "--session", mode, "--topics", TOPIC,
                    "--duration", str(args.seconds), *flags,
                ]  # fmt: skip
                subprocess.run(record, env=env, check=True, stdout=subprocess.DEVNULL)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                bag = Path(tmp) / mode / "episode_000001"
                with BagReader(bag) as reader:
                    name = next(t for t in reader.topics if t.startswith(TOPIC))
                    sizes = [len(raw) for _, _, raw in reader.messages([name], raw=True)]
                    span = reader.duration_ns * 1e-9
                disk = sum(f.stat().st_size for f in bag.iterdir())
                rows.append((mode, name, len(sizes), sum(sizes) / len(sizes), disk, span, cpu))
        finally:
            node.terminate()
            node.wait(10)
    raw_frame = rows[0][3]
    print(f"{args.video.name}, {args.rate:g} Hz, {args.seconds:g} s per mode")
    print("mode  frames  bytes/frame  ratio  bag on disk  MB/s at 30 Hz  recorder CPU s/s")
    for mode, _name, frames, per_frame, disk, _span, cpu in rows:
        print(
            f"{mode:5s} {frames:6d} {per_frame:12.0f} {raw_frame / per_frame:6.1f} "
            f"{disk / 1e6:9.1f} MB {per_frame * 30 / 1e6:13.2f} {cpu / args.seconds:17.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
