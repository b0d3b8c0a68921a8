"""Make the fixture datasets in test/fixtures/lerobot_written/ with LeRobot's own writer and tools.

Run in the LeRobot peer environment (``bash scripts/lerobot_peer_env.sh``), never in the
project's: ``.peer/lerobot/bin/python benchmarks/lerobot_peer/make_fixtures.py``. The output is
committed; rerunning it rewrites the folder (video bytes may differ between encoder builds).

What is made (all offline, HF_LEROBOT_HOME pointed at a temporary folder):

* ``av1``: 3 episodes written by ``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` with
  LeRobot's default codec (libsvtav1): one camera, ``observation.state`` (6), ``action`` (6), a
  2-D feature (Array2D) and a 3-D feature (Array3D) so every column layout LeRobot writes occurs;
* ``hevc`` and ``h264``: 2 episodes each, the same features, the other codecs LeRobot offers;
* ``av1_merged``: ``lerobot-edit-dataset --operation.type merge`` of two AV1 datasets with 1-D
  features (3 + 2 episodes; pandas rewrites the columns as variable-length lists);
* ``av1_deleted``: ``delete_episodes`` of episode 1 of the 3-episode one;
* ``av1_split_train``: the ``train`` part of its ``split {"train": [0, 2], "val": [1]}``.

The edits start from 1-D features because LeRobot 0.4.4's edit tools fail on its own Array2D /
Array3D columns (pandas extension dtypes); the script tries them anyway and records the outcome
in MADE_BY.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "lerobot_written"
FPS = 10
HEIGHT, WIDTH = 48, 64


def features(multidim: bool = True) -> dict:
    out = {
        "observation.images.front": {
            "dtype": "video",
            "shape": (HEIGHT, WIDTH, 3),
            "names": ["height", "width", "channels"],
        },
        "observation.state": {
            "dtype": "float32",
            "shape": (6,),
            "names": [f"j{i}" for i in range(6)],
        },
        "action": {"dtype": "float32", "shape": (6,), "names": [f"j{i}" for i in range(6)]},
        "observation.contact_grid": {
            "dtype": "float32",
            "shape": (2, 4),
            "names": ["side", "taxel"],
        },
        "observation.keypoints": {
            "dtype": "float32",
            "shape": (2, 5, 3),
            "names": ["hand", "point", "xyz"],
        },
    }
    if not multidim:
        del out["observation.contact_grid"], out["observation.keypoints"]
    return out


def frame_image(episode: int, t: int) -> np.ndarray:
    """A moving colour gradient: smooth enough to survive lossy codecs, different per frame."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    img[..., 0] = (xx * 4 + t * 9 + episode * 40) % 256
    img[..., 1] = (yy * 5 + t * 3) % 256
    img[..., 2] = (128 + 60 * np.sin((xx + yy + t * 4) / 9.0)).astype(np.uint8)
    return img


def write(
    root: Path, repo_id: str, vcodec: str, episodes: list[int], seed: int, multidim: bool = True
) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    rng = np.random.default_rng(seed)
    ds = LeRobotDataset.create(
        repo_id=repo_id,
        fps=FPS,
        features=features(multidim),
        root=root / repo_id,
        robot_type="fixture_arm",
        use_videos=True,
        vcodec=vcodec,
    )
    for ep in episodes:
        length = 8 + 3 * ep
        for t in range(length):
            frame = {
                "observation.images.front": frame_image(ep, t),
                "observation.state": rng.normal(size=6).astype(np.float32),
                "action": rng.normal(size=6).astype(np.float32),
                "task": f"fixture task {ep % 2}",
            }
            if multidim:
                frame["observation.contact_grid"] = rng.uniform(size=(2, 4)).astype(np.float32)
                frame["observation.keypoints"] = rng.normal(size=(2, 5, 3)).astype(np.float32)
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()


def edit(home: Path, *args: str) -> bool:
    exe = Path(sys.executable).with_name("lerobot-edit-dataset")
    env = {**os.environ, "HF_LEROBOT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True)
    if proc.returncode:
        print(f"FAILED: lerobot-edit-dataset {' '.join(args)}\n{proc.stderr[-4000:]}")
    return proc.returncode == 0


def main() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["HF_LEROBOT_HOME"] = str(home)
        write(home, "local/av1", "libsvtav1", [0, 1, 2], seed=0)
        write(home, "local/av1_b", "libsvtav1", [3, 4], seed=1)
        write(home, "local/hevc", "hevc", [0, 1], seed=2)
        write(home, "local/h264", "h264", [0, 1], seed=3)
        # LeRobot 0.4.4's edit tools stop on its own Array2D/Array3D columns (measured below and
        # recorded in MADE_BY.json), so the edited fixtures start from 1-D features only.
        multidim_edits = {
            "merge": edit(
                home,
                "--repo_id",
                "local/md_merged",
                "--operation.type",
                "merge",
                "--operation.repo_ids",
                "['local/av1', 'local/av1_b']",
            ),
            "delete_episodes": edit(
                home,
                "--repo_id",
                "local/av1",
                "--new_repo_id",
                "local/md_deleted",
                "--operation.type",
                "delete_episodes",
                "--operation.episode_indices",
                "[1]",
            ),
            "split": edit(
                home,
                "--repo_id",
                "local/hevc",
                "--operation.type",
                "split",
                "--operation.splits",
                '{"a": [0], "b": [1]}',
            ),
        }
        write(home, "local/flat_a", "libsvtav1", [0, 1, 2], seed=4, multidim=False)
        write(home, "local/flat_b", "libsvtav1", [3, 4], seed=5, multidim=False)
        assert edit(
            home,
            "--repo_id",
            "local/av1_merged",
            "--operation.type",
            "merge",
            "--operation.repo_ids",
            "['local/flat_a', 'local/flat_b']",
        )
        assert edit(
            home,
            "--repo_id",
            "local/flat_a",
            "--new_repo_id",
            "local/av1_deleted",
            "--operation.type",
            "delete_episodes",
            "--operation.episode_indices",
            "[1]",
        )
        assert edit(
            home,
            "--repo_id",
            "local/flat_a",
            "--operation.type",
            "split",
            "--operation.splits",
            '{"train": [0, 2], "val": [1]}',
        )
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        names = {
            "av1": "av1",
            "hevc": "hevc",
            "h264": "h264",
            "av1_merged": "av1_merged",
            "av1_deleted": "av1_deleted",
            "flat_a_train": "av1_split_train",
        }
        for src, dst in names.items():
            shutil.copytree(
                home / "local" / src, OUT / dst, ignore=shutil.ignore_patterns("images")
            )
        from importlib.metadata import version

        (OUT / "MADE_BY.json").write_text(
            json.dumps(
                {
                    "script": "benchmarks/lerobot_peer/make_fixtures.py",
                    "lerobot": version("lerobot"),
                    "datasets": version("datasets"),
                    "pyarrow": version("pyarrow"),
                    "av": version("av"),
                    "torch": version("torch"),
                    "datasets_made": sorted(names.values()),
                    "lerobot_edit_on_array2d_array3d_succeeded": multidim_edits,
                },
                indent=2,
            )
            + "\n"
        )
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
