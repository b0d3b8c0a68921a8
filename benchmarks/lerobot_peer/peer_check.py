"""LeRobot peer check: datasets written here, opened, edited and trained on by LeRobot itself.

    .venv/bin/python benchmarks/lerobot_peer/peer_check.py    # ~5 min on 2 cores

1. Makes the three kinds of dataset the CLI writes (``hvp dataset from-video`` on the example
   hand video, ``from-sim``, ``from-bags`` on two generated bags).
2. Opens each with ``LeRobotDataset`` (torchcodec decoding) in the peer environment and compares
   every numeric column and every camera pixel with the project's DatasetReader; compares
   meta/stats.json with the statistics LeRobot's own compute/aggregate functions give for the
   same rows; lists the features ``dataset_to_policy_features`` hands a stock policy.
3. Runs ``lerobot-edit-dataset`` split, delete_episodes and merge on the human dataset, then
   ``hvp dataset validate`` and the comparison of 2. on every result.
4. Trains stock LeRobot policies for a few steps with ``lerobot-train`` (CPU), unchanged:
   diffusion on the sim dataset, ACT on the human dataset.

The peer environment is built first when it is missing (scripts/lerobot_peer_env.sh).

Writes benchmarks/results/lerobot_peer.json and prints a markdown summary (docs/dataset_format.md
quotes it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "test"))  # make_bag: the test suite's bag generator

from human_video_policy.data.dataset_reader import DatasetReader  # noqa: E402
from human_video_policy.data.normalization import load_stats  # noqa: E402

HVP = str(ROOT / ".venv" / "bin" / "hvp")


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> tuple[int, str]:
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    print(f"$ {' '.join(cmd)}  -> {proc.returncode} ({time.monotonic() - t0:.1f} s)", flush=True)
    return proc.returncode, proc.stdout + proc.stderr


def project_dump(root: Path) -> dict[str, np.ndarray]:
    reader = DatasetReader(root)
    out: dict[str, list[np.ndarray]] = {}
    for ep in range(reader.num_episodes):
        for key, value in reader.episode_rows(ep).items():
            out.setdefault(key, []).append(value)
        for key in reader.video_keys:
            out.setdefault(key, []).append(reader.video_frames(ep, key))
    return {k: np.concatenate(v) for k, v in out.items()}


def compare(root: Path, peer_python: str, work: Path) -> dict[str, Any]:
    """LeRobotDataset vs DatasetReader on one dataset (numbers, pixels, stats, features)."""
    npz, js = work / f"{root.name}.npz", work / f"{root.name}.json"
    code, text = run([peer_python, str(Path(__file__).with_name("peer_read.py")), str(root),
                      str(npz), str(js)], env={"HF_HUB_OFFLINE": "1"})  # fmt: skip
    if code:
        return {"lerobot_read": False, "error": text[-2000:]}
    peer = dict(np.load(npz))
    report = json.loads(js.read_text())
    ours = project_dump(root)
    result: dict[str, Any] = {"lerobot_read": True, "frames": report["frames"], "columns": {}}
    for key, theirs in peer.items():
        if key not in ours:
            result["columns"][key] = "only LeRobot has it"
            continue
        mine = ours[key]
        a, b = np.asarray(theirs), np.asarray(mine).reshape(np.asarray(theirs).shape)
        if a.dtype == np.uint8:
            diff = np.abs(a.astype(int) - b.astype(int))
            result["columns"][key] = f"pixels: max |diff| {int(diff.max())}, mean {diff.mean():.4f}"
        else:
            result["columns"][key] = (
                "equal"
                if np.array_equal(a, b.astype(a.dtype))
                else (f"max |diff| {float(np.max(np.abs(a.astype(float) - b.astype(float)))):.3g}")
            )
    ours_stats = load_stats(root)
    stat_diff: dict[str, str] = {}
    for key, theirs in report["lerobot_stats"].items():
        mine = ours_stats.get(key)
        if mine is None:
            stat_diff[key] = "missing in meta/stats.json"
            continue
        worst = 0.0
        for name, value in theirs.items():
            t = np.asarray(value, float)
            m = mine.quantiles.get(name) if name.startswith("q") else getattr(mine, name, None)
            if name == "count":
                m = np.asarray([mine.count])
            if m is None or np.shape(m) != t.shape:
                stat_diff[key] = f"{name}: shape {np.shape(m)} here, {t.shape} in LeRobot"
                break
            scale = max(1.0, float(np.max(np.abs(t))))
            worst = max(worst, float(np.max(np.abs(np.asarray(m, float) - t))) / scale)
        else:
            stat_diff[key] = f"max relative diff {worst:.2g}"
    result["stats_vs_lerobot"] = stat_diff
    result["policy_features"] = report["policy_features"]
    return result


def validate(root: Path) -> str:
    code, text = run([HVP, "dataset", "validate", str(root)])
    return ("ok: " if code == 0 else f"FAILED ({code}): ") + text.strip().splitlines()[-1][:300]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--peer", default=str(ROOT / ".peer" / "lerobot"), help="peer venv")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lerobot_peer.json"))
    ap.add_argument("--train-steps", type=int, default=10)
    args = ap.parse_args()
    peer_python = str(Path(args.peer) / "bin" / "python")
    if not Path(peer_python).exists():  # build it (idempotent; ~8 GB from PyPI)
        env_script = ROOT / "scripts" / "lerobot_peer_env.sh"
        build = subprocess.run(["bash", str(env_script)], env={**os.environ,
                               "HVP_LEROBOT_VENV": str(args.peer)})  # fmt: skip
        if build.returncode:
            sys.exit(f"could not build the peer environment at {args.peer} ({env_script})")
    results: dict[str, Any] = {"lerobot": "0.4.4", "datasets": {}, "edits": {}, "train": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = work / "hf_lerobot_home"  # LeRobot's tools find datasets as HF_LEROBOT_HOME/repo_id
        local = home / "local"
        local.mkdir(parents=True)
        # 1. the three kinds of dataset
        video = ROOT / "assets" / "examples" / "human_hand_video.mp4"
        run([HVP, "video", "process", str(video), "-o", str(work / "episodes"), "-q",
             "--max-frames", "150"], timeout=1200)  # fmt: skip
        run([HVP, "dataset", "from-video", str(work / "episodes"), "-o", str(local / "human")])
        run([HVP, "dataset", "from-sim", "--episodes", "4", "-o", str(local / "sim"),
             "--image-size", "96x96", "-q"])  # fmt: skip
        from test_dataset_bags import make_bag

        make_bag(work / "bag_a", seconds=1.5)
        make_bag(work / "bag_b", storage="sqlite3", seconds=1.2)
        run([HVP, "dataset", "from-bags", str(work / "bag_a"), str(work / "bag_b"), "-o",
             str(local / "bag"), "--instruction", "wave", "--rate", "5"])  # fmt: skip
        # 2. LeRobot reads them
        for name in ("human", "sim", "bag"):
            results["datasets"][name] = compare(local / name, peer_python, work)
        # 3. LeRobot's edit tools on the human dataset
        edit = str(Path(args.peer) / "bin" / "lerobot-edit-dataset")
        env = {"HF_LEROBOT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        n = DatasetReader(local / "human").num_episodes
        half = list(range(0, n, 2))
        ops = {
            "split": ["--repo_id", "local/human", "--operation.type", "split",
                      "--operation.splits", json.dumps({"train": half, "val": [
                          i for i in range(n) if i not in half]})],
            "delete_episodes": ["--repo_id", "local/human", "--new_repo_id", "local/human_del",
                                "--operation.type", "delete_episodes",
                                "--operation.episode_indices", "[0, 1]"],
            "merge": ["--repo_id", "local/human_merged", "--operation.type", "merge",
                      "--operation.repo_ids", "['local/human_train', 'local/human_val']"],
        }  # fmt: skip
        outputs = {"split": "human_train", "delete_episodes": "human_del", "merge": "human_merged"}
        for op, argv in ops.items():
            code, text = run([edit, *argv], env=env)
            entry: dict[str, Any] = {"exit": code}
            if code:
                entry["error"] = text.strip().splitlines()[-1][:400]
            else:
                out = local / outputs[op]
                entry["hvp_validate"] = validate(out)
                entry["compare"] = compare(out, peer_python, work)
            results["edits"][op] = entry
        # 4. stock LeRobot policies train on project datasets, unchanged
        train = str(Path(args.peer) / "bin" / "lerobot-train")
        results["train"] = []
        # ACT's default backbone is ImageNet ResNet-18 weights from the internet: none here
        runs = (
            ("diffusion", "sim", []),
            ("act", "human", ["--policy.pretrained_backbone_weights=null"]),
        )
        for policy, dataset, extra in runs:
            code, text = run([train, f"--dataset.repo_id=local/{dataset}",
                              f"--dataset.root={local / dataset}", f"--policy.type={policy}",
                              *extra,
                              "--policy.device=cpu", "--policy.push_to_hub=false",
                              f"--steps={args.train_steps}", "--batch_size=4", "--num_workers=0",
                              "--wandb.enable=false", "--save_checkpoint=false", "--eval_freq=0",
                              "--log_freq=1", f"--output_dir={work / f'train_{policy}'}"],
                             env=env, timeout=1800)  # fmt: skip
            losses = [
                float(x.split("loss:")[1].split()[0]) for x in text.splitlines() if "loss:" in x
            ]
            results["train"].append({
                "policy": policy, "dataset": dataset, "steps": args.train_steps, "exit": code,
                "losses": losses, "tail": "" if code == 0 else text.strip()[-1500:],
            })  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}\n")
    print(json.dumps(results, indent=1)[:6000])
    ok = all(d.get("lerobot_read") for d in results["datasets"].values())
    ok = ok and all(e["exit"] == 0 for e in results["edits"].values())
    ok = ok and all(t["exit"] == 0 for t in results["train"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
