"""Dataset conversion speed (x real time) and torch loader throughput (samples/s).

Conversion: synthetic bags (joint states and commands at 100 Hz, an rgb8 camera at its rate,
written with the project's BagWriter) through ``convert_bags`` at 10 Hz; the real hand video
(../shared/data) through ``hvp video process`` and then ``convert_hand_videos`` (only the
second step is timed: x real time of the video seconds that became episodes); scripted-expert
sim rollouts through ``hvp dataset from-sim`` (sim seconds per wall second, rendering included).

Loader: ``ChunkDataset`` (horizon 16, one observation frame, images resized to 128x128 and
224x224), DataLoader batch 32, with 0 and 2 worker processes, two loaders side by side in one
run:

* ``previous``: shuffled random sampler, one MP4 seek per sample, numpy resize (``prepare_rgb``)
  -- the loader before this change (``image_access="seek"``);
* ``episode_cache``: ``EpisodeGroupedSampler`` (4 episodes x 32 random frames per group) and the
  per-worker LRU cache (256 MiB) of episodes decoded once and resized with ``cv2.INTER_AREA``;
  these datasets fit in it, so after the first pass it only hits;
* ``episode_cache_cold``: groups of one episode (32 frames = one batch) and the cache emptied
  before every batch, so every batch decodes its episode: a corpus much larger than the
  cache, where episode draws never repeat (the worst case of this loader).

Sources: the bag datasets (320x240 and 640x480, 3 episodes of 20 s), the human dataset of the
real video (source aspect, longest side 320; 30 fps, one episode per atomic segment) and the
human + sim mix (``MixedChunkDataset``, weights 0.5/0.5, 102-d human space, normalised). For
scale, one training step of the project's reach policy (batch 32, 1 CPU thread) at both sizes.

    .venv/bin/python benchmarks/dataset_benchmark.py [--seconds 20] [--bags 3] [--video-frames 0]

Writes benchmarks/results/dataset.json (with the load average: the machine is shared and has
2 cores, timings are noisy). Goals: conversion >= 10x real time; a loader that keeps a training
step fed.
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
from human_video_policy.data.human_episodes import HumanDatasetConfig, convert_hand_videos
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS

RESULTS = Path(__file__).resolve().parent / "results"
VIDEO = (
    Path(__file__).resolve().parents[2] / "shared/data/human_video/dexret_hand/human_hand_video.mp4"
)
CAMERA = "/camera/camera/color/image_raw"


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

    from human_video_policy.policies.bc_mlp.configuration_bc_mlp import BCMLPConfig
    from human_video_policy.policies.bc_mlp.modeling_bc_mlp import BCMLPPolicy

    torch.set_num_threads(1)
    model = BCMLPPolicy(BCMLPConfig(image_height=size, image_width=size, horizon=16))
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


def bench_human_conversion(tmp: Path, max_frames: int) -> dict:
    """The real video through the pipeline (not timed), then to a dataset (timed)."""
    from human_video_policy.pipeline.batch import BatchConfig, run_batch
    from human_video_policy.pipeline.video_episodes import VideoPipelineConfig

    videos = tmp / "videos"
    run_batch(
        [VIDEO], VideoPipelineConfig(max_frames=max_frames), BatchConfig(videos, progress=False)
    )
    rows = []
    for name, cfg in (
        ("human_320", HumanDatasetConfig()),
        ("human_128", HumanDatasetConfig(image_size=(128, 128))),
    ):
        out = tmp / name
        report = convert_hand_videos([videos], out, cfg)
        assert not report.failed, report.failed
        seconds = sum(v.source_seconds for v in report.videos)
        h, w = json.loads((out / "meta/info.json").read_text())["features"][
            "observation.images.camera_color"
        ]["shape"][:2]
        rows.append(
            {
                "source": f"{VIDEO.name} 1280x720 @ 30 fps",
                "stored": f"{w}x{h}",
                "episodes": report.episodes,
                "frames": report.frames,
                "video_seconds": round(seconds, 2),
                "wall_s": round(report.wall_s, 2),
                "x_real_time": round(seconds / report.wall_s, 1),
                "dataset": str(out),
            }
        )
    return {"human": rows}


def bench_sim_recording(tmp: Path, episodes: int) -> dict:
    from human_video_policy.training.sim_episodes import record_sim_dataset

    out = tmp / "sim"
    t0 = time.perf_counter()
    frames, _ = record_sim_dataset(out, episodes, image_size=(128, 128))
    wall = time.perf_counter() - t0
    return {
        "episodes": episodes,
        "frames": frames,
        "sim_seconds": frames / 10.0,
        "wall_s": round(wall, 2),
        "x_real_time": round(frames / 10.0 / wall, 1),
        "dataset": str(out),
    }


class ColdCache:
    """Benchmark-only dataset wrapper: empties the episode caches before every batch (the
    DataLoader fetches a batch's samples in one process, in order), so each batch decodes its
    episode anew: a corpus far larger than the cache, where episode draws never repeat."""

    def __init__(self, ds, batch_size: int = 32) -> None:  # type: ignore[no-untyped-def]
        self.ds, self.batch_size, self.calls = ds, batch_size, 0

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        if self.calls % self.batch_size == 0:
            for d in getattr(self.ds, "datasets", [self.ds]):
                d._frames.clear()
                d._frame_bytes = 0
        self.calls += 1
        return self.ds[i]


def make_dataset(roots: list[Path], size: int, loader: str):  # type: ignore[no-untyped-def]
    from human_video_policy.training.torch_dataset import (
        ChunkDataset,
        ChunkDatasetConfig,
        MixedChunkDataset,
    )

    access = "seek" if loader == "previous" else "episode_cache"
    common = {"image_size": (size, size), "image_access": access}
    if len(roots) == 1:
        return ChunkDataset(roots[0], ChunkDatasetConfig(horizon=16, **common))
    cfg = ChunkDatasetConfig(horizon=16, action_space="human", **common)
    return MixedChunkDataset([ChunkDataset(r, cfg) for r in roots], [0.5] * len(roots))


def bench_loader(
    roots: list[Path], workers: int, size: int, loader: str, batches: int = 15
) -> dict:
    import torch

    from human_video_policy.training.torch_dataset import EpisodeGroupedSampler, chunk_collate

    torch.set_num_threads(1)
    ds = make_dataset(roots, size, loader)
    if loader == "previous":
        kwargs: dict = {"shuffle": True, "generator": torch.Generator().manual_seed(0)}
    else:
        # "episode_cache_cold": one episode per batch, decoded anew for every batch
        cold = loader == "episode_cache_cold"
        groups = 1 if cold else 4
        sampler = EpisodeGroupedSampler(ds, 32 * (batches + 1), episodes_per_group=groups, seed=0)
        kwargs = {"sampler": sampler}
        if cold:
            ds = ColdCache(ds)
    data = torch.utils.data.DataLoader(
        ds, batch_size=32, num_workers=workers, collate_fn=chunk_collate, **kwargs
    )
    it = iter(data)
    next(it)  # warm-up (worker start, first decode)
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(data)
            batch = next(it)
        n += len(batch["index"])
    wall = time.perf_counter() - t0
    del it
    return {
        "loader": loader,
        "workers": workers,
        "image": f"{size}x{size}",
        "batches": batches,
        "samples_per_s": round(n / wall, 1),
        "ms_per_batch": round(1e3 * wall / batches, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each bag")
    parser.add_argument("--bags", type=int, default=3)
    parser.add_argument("--video-frames", type=int, default=0, help="0 = the whole video")
    parser.add_argument("--sim-episodes", type=int, default=10)
    args = parser.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        conv = [
            bench_conversion(tmp, "sim", (240, 320), 15.0, args.seconds, args.bags),
            bench_conversion(tmp, "realsense", (480, 640), 30.0, args.seconds, args.bags),
        ]
        human = bench_human_conversion(tmp, args.video_frames)["human"]
        sim = bench_sim_recording(tmp, args.sim_episodes)
        sources = {
            conv[0]["camera"]: [Path(conv[0]["dataset"])],
            conv[1]["camera"]: [Path(conv[1]["dataset"])],
            f"human video ({human[0]['stored']}, 30 fps)": [Path(human[0]["dataset"])],
            f"human {human[0]['stored']} + sim 128x128 mixed": [
                Path(human[0]["dataset"]),
                Path(sim["dataset"]),
            ],
        }
        loader = [
            {"source": name, **bench_loader(roots, workers, size, kind)}
            for name, roots in sources.items()
            for size in (128, 224)
            for workers in (0, 2)
            for kind in ("previous", "episode_cache", "episode_cache_cold")
        ]
        train = [bench_train_step(128), bench_train_step(224)]
    for c in [*conv, *human, sim]:
        c.pop("dataset")
    by_key = {(r["source"], r["image"], r["workers"], r["loader"]): r for r in loader}
    train_rate = {t["image"]: t["samples_per_s"] for t in train}
    for r in loader:
        prev = by_key[(r["source"], r["image"], r["workers"], "previous")]
        r["vs_previous"] = round(r["samples_per_s"] / prev["samples_per_s"], 2)
        r["vs_train_step"] = round(r["samples_per_s"] / train_rate[r["image"]], 2)
    result = {
        "command": (
            f"benchmarks/dataset_benchmark.py --seconds {args.seconds:g} --bags {args.bags} "
            f"--video-frames {args.video_frames} --sim-episodes {args.sim_episodes}"
        ),
        "conversion": conv,
        "human_video_conversion": human,
        "sim_recording": sim,
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
    for h in human:
        print(
            f"human video -> {h['stored']}: {h['episodes']} episodes, {h['frames']} frames, "
            f"{h['x_real_time']}x real time"
        )
    print(f"sim recording: {sim['frames']} frames, {sim['x_real_time']}x real time")
    for lo in loader:
        print(
            f"loader {lo['loader']:13s} {lo['source']} -> {lo['image']}, workers={lo['workers']}: "
            f"{lo['samples_per_s']} samples/s (x{lo['vs_previous']} vs previous, "
            f"x{lo['vs_train_step']} vs a train step)"
        )
    for tr in train:
        print(f"reach policy train step {tr['image']}: {tr['samples_per_s']} samples/s")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
