"""Peer side of peer_check.py: open a dataset with LeRobot's own reader and dump what it gives.

Runs in the LeRobot peer environment (scripts/lerobot_peer_env.sh), not the project's:
``peer_read.py ROOT OUT.npz OUT.json``. Every item of ``LeRobotDataset`` (torchcodec decoding)
goes to OUT.npz (numeric columns as stored, camera frames back to uint8 HWC); OUT.json gets the
features ``dataset_to_policy_features`` gives a stock policy and the statistics LeRobot's own
``compute_episode_stats`` + ``aggregate_stats`` compute from the numeric rows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from lerobot.datasets.compute_stats import aggregate_stats, compute_episode_stats
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import dataset_to_policy_features


def main() -> None:
    root, out_npz, out_json = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    ds = LeRobotDataset("local/peer_check", root=root)
    cameras = set(ds.meta.video_keys)
    columns: dict[str, list[np.ndarray]] = {}
    for i in range(len(ds)):
        for key, value in ds[i].items():
            if not hasattr(value, "numpy"):
                continue
            a = value.numpy()
            if key in cameras:  # float CHW in [0, 1] -> uint8 HWC
                a = np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)
            columns.setdefault(key, []).append(a)
    arrays = {k: np.stack(v) for k, v in columns.items()}
    np.savez(out_npz, **arrays)

    numeric = {
        k: f for k, f in ds.meta.features.items() if f["dtype"] not in ("video", "image", "string")
    }
    episode = np.asarray(arrays["episode_index"]).reshape(-1)
    per_episode = []
    for ep in np.unique(episode):
        rows = {k: arrays[k][episode == ep] for k in numeric if k in arrays}
        per_episode.append(compute_episode_stats(rows, numeric))
    stats = aggregate_stats(per_episode)
    policy = dataset_to_policy_features(ds.meta.features)
    report = {
        "frames": len(ds),
        "episodes": ds.meta.total_episodes,
        "policy_features": {
            k: {"type": str(v.type.name), "shape": list(v.shape)} for k, v in policy.items()
        },
        "lerobot_stats": {
            k: {s: np.asarray(v).tolist() for s, v in d.items()} for k, d in stats.items()
        },
    }
    Path(out_json).write_text(json.dumps(report))
    print(f"peer read {root}: {len(ds)} frames, {len(arrays)} columns")


if __name__ == "__main__":
    main()
