"""Bag -> dataset conversion speed (x real time) and torch loader throughput (samples/s).

Bags are synthetic recordings of what the stack publishes: joint states and joint commands at
100 Hz and an rgb8 camera (with camera_info) at its rate, written with the project's
BagWriter (MCAP). Conversion runs ``convert_bags`` at 10 Hz (one ffmpeg/libx264 encoder per
camera, ``-threads 1``) and is timed end to end, including reading the bag and writing meta/.
The loader test reads each converted dataset through ``ChunkDataset`` (horizon 16, one
observation frame, images resized to 64x64 and 224x224 with the runtime's ``prepare_rgb``) with
a DataLoader of batch 32, shuffled (random access: one MP4 seek per sample), with 0 and 2
worker processes. For scale, one training step of the project's reach policy (batch 32, 1 CPU
thread) is timed at both image sizes.

    .venv/bin/python benchmarks/dataset_benchmark.py [--seconds 20] [--bags 3]

Writes benchmarks/results/dataset.json (with the load average: the machine is shared and has
2 cores, timings are noisy). Goals: conversion >= 10x real time; the loader faster than a
training step consumes samples.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from human_video_policy.data.bag_to_dataset import BagConversionConfig, convert_bags
from human_video_policy.data.bags import BagWriter, make_typestore
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS

RESULTS = Path(__file__).resolve().parent / "results"
CAMERA = "/camera/color/image_raw"


def write_bag(path: Path, seconds: float, size: tuple[int, int], camera_hz: float) -> None:
    store = make_typestore()
    t = store.types
    Time, Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
    JointState, Image = t["sensor_msgs/msg/JointState"], t["sensor_msgs/msg/Image"]
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t0 = 1_700_000_000_000_000_000
    events = []
    for i in range(int(seconds * 100)):
        ns = t0 + i * 10_000_000
        q = 0.3 * np.sin(0.01 * i + np.arange(7))
        for topic, names, pos in (
            ("/arm/joint_states", WIDOWX_STATE_JOINTS, np.append(q, -q[6])),
            ("/arm/joint_commands", WIDOWX_COMMAND_JOINTS, q),
        ):
            hdr = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="")
            msg = JointState(
                header=hdr,
                name=list(names),
                position=pos,
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            events.append((ns, topic, msg))
    for i in range(int(seconds * camera_hz)):
        ns = t0 + int(i * 1e9 / camera_hz) + 2_000_000
        s = i / camera_hz
        img = np.dstack(
            [128 + 100 * np.sin(xx / 40 + s), 128 + 100 * np.cos(yy / 30 - s), xx * 0 + 90]
        ).astype(np.uint8)
        hdr = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="camera")
        msg = Image(
            header=hdr,
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=3 * w,
            data=img.reshape(-1),
        )
        events.append((ns, CAMERA, msg))
    events.sort(key=lambda e: e[0])
    with BagWriter(path, typestore=store) as bag:
        bag.add_topic("/arm/joint_states", "sensor_msgs/msg/JointState")
        bag.add_topic("/arm/joint_commands", "sensor_msgs/msg/JointState")
        bag.add_topic(CAMERA, "sensor_msgs/msg/Image")
        for ns, topic, msg in events:
            bag.write(topic, ns, msg)


def bench_conversion(tmp: Path, name: str, size, camera_hz, seconds, n_bags) -> dict:
    bags = []
    for i in range(n_bags):
        bags.append(tmp / f"{name}_bag{i}")
        write_bag(bags[-1], seconds, size, camera_hz)
    mb = sum(f.stat().st_size for b in bags for f in b.iterdir()) / 2**20
    out = tmp / f"{name}_ds"
    t0 = time.perf_counter()
    report = convert_bags(bags, out, BagConversionConfig(instruction="benchmark"))
    wall = time.perf_counter() - t0
    assert not report.failed, report.failed
    return {
        "camera": f"{size[1]}x{size[0]} rgb8 @ {camera_hz:g} Hz",
        "bags": n_bags,
        "bag_seconds_total": round(report.source_seconds, 2),
        "bag_mb_total": round(mb, 1),
        "frames_written": report.frames,
        "wall_s": round(wall, 2),
        "x_real_time": round(report.source_seconds / wall, 1),
        "dataset_mb": round(
            sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20, 2
        ),
        "dataset": str(out),
    }


def bench_train_step(size: int, steps: int = 10) -> dict:
    """One optimiser step of the project's reach policy (batch 32) on 1 CPU thread: how fast
    a training loop on this machine consumes samples."""
    import torch

    from human_video_policy.models.reach_policy import ReachPolicy, ReachPolicyConfig

    torch.set_num_threads(1)
    model = ReachPolicy(ReachPolicyConfig(image_height=size, image_width=size, horizon=16))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    image, state = torch.rand(32, 3, size, size), torch.rand(32, 8)
    target = torch.rand(32, 16, 7)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(image, state), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step = float(np.median(times[1:]))
    return {"image": f"{size}x{size}", "ms_per_step": round(1e3 * step, 1),
            "samples_per_s": round(32 / step, 1)}  # fmt: skip


def bench_loader(root: Path, workers: int, size: int, batches: int = 20) -> dict:
    import torch

    from human_video_policy.training.torch_dataset import (
        ChunkDataset,
        ChunkDatasetConfig,
        chunk_collate,
    )

    torch.set_num_threads(1)
    ds = ChunkDataset(root, ChunkDatasetConfig(horizon=16, image_size=(size, size)))
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=32,
        shuffle=True,
        num_workers=workers,
        collate_fn=chunk_collate,
        generator=torch.Generator().manual_seed(0),
        persistent_workers=False,
    )
    it = iter(loader)
    next(it)  # warm-up (worker start, first decode)
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        n += len(batch["index"])
    wall = time.perf_counter() - t0
    return {
        "workers": workers,
        "batch": 32,
        "horizon": 16,
        "image": f"{size}x{size}",
        "batches": batches,
        "samples_per_s": round(n / wall, 1),
        "ms_per_batch": round(1e3 * wall / batches, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each bag")
    parser.add_argument("--bags", type=int, default=3)
    args = parser.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        conv = [
            bench_conversion(tmp, "sim", (240, 320), 15.0, args.seconds, args.bags),
            bench_conversion(tmp, "realsense", (480, 640), 30.0, args.seconds, args.bags),
        ]
        loader = [
            {"source": c["camera"], **bench_loader(Path(c["dataset"]), workers, size)}
            for c in conv
            for size in (64, 224)
            for workers in (0, 2)
        ]
        train = [bench_train_step(64), bench_train_step(224)]
    for c in conv:
        c.pop("dataset")
    result = {
        "command": f"benchmarks/dataset_benchmark.py --seconds {args.seconds:g} --bags {args.bags}",
        "conversion": conv,
        "loader": loader,
        "reach_policy_train_step_batch32_1thread": train,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_start": list(load_start),
            "load_average_end": list(os.getloadavg()),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "dataset.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| camera | bag s | wall s | x real time | frames |")
    print("|---|---|---|---|---|")
    for c in conv:
        print(
            f"| {c['camera']} | {c['bag_seconds_total']} | {c['wall_s']} | "
            f"{c['x_real_time']} | {c['frames_written']} |"
        )
    for lo in loader:
        print(
            f"loader {lo['source']} -> {lo['image']}, workers={lo['workers']}: "
            f"{lo['samples_per_s']} samples/s ({lo['ms_per_batch']} ms per batch)"
        )
    for tr in train:
        print(f"reach policy train step {tr['image']}: {tr['samples_per_s']} samples/s")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
