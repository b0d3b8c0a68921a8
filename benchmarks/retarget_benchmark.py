"""XHand retargeting: the project's vector / DexPilot retargeter vs dex-retargeting's own.

On the 621 real frames of the dexret hand video, per-frame time (median, p99) of
``XHandRetargeter.retarget_frame`` and of dex-retargeting 0.5.0's ``SeqRetargeting.retarget``
(built from the vendor XHand URDF in ../shared/data/robots/xhand/, target links = the fingertip
frames, one global scaling factor), run side by side in one process, plus accuracy of both
judged the same way: per-finger angle between the human wrist->tip and robot palm->tip
vectors, correlation of human and robot finger flexion, robot pinky flexion on the frames where
the human pinky is straight.

    .venv/bin/python benchmarks/retarget_benchmark.py [--repeats 3]

Prints a Markdown table and writes benchmarks/results/retarget_xhand.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from human_video_policy.hands.joint_angles import MANO_JOINT_NAMES, joint_angles_sequence
from human_video_policy.retargeting import RetargetConfig, XHandRetargeter
from human_video_policy.robots.xhand import (
    FINGER_JOINTS,
    FINGERS,
    FINGERTIP_FRAMES,
    PALM_FRAME,
    XHAND_JOINTS,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KEYPOINTS = DATA / "human_video" / "dexret_hand" / "human_joint_right.npy"
VENDOR_URDF = DATA / "robots" / "xhand" / "xhand_right.urdf"
RESULTS = ROOT / "benchmarks" / "results"
TIPS = [4, 8, 12, 16, 20]
#: dex-retargeting compares robot base-frame vectors with MANO-frame human vectors directly;
#: rows: XHand X (thumb side) = MANO +Y, XHand Y (palm normal) = MANO +X, XHand Z = MANO -Z.
MANO_TO_XHAND = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
DEX_SCALING = 1.15  # one global factor: the mean XHand/human finger length ratio on this video


def dex_retargeter(kind: str):  # -> dex-retargeting's SeqRetargeting
    from dex_retargeting.retargeting_config import RetargetingConfig

    tips = [FINGERTIP_FRAMES[f] for f in FINGERS]
    cfg: dict = {
        "type": kind,
        "urdf_path": str(VENDOR_URDF),
        "target_joint_names": list(XHAND_JOINTS),
        "scaling_factor": DEX_SCALING,
        "low_pass_alpha": 1.0,
    }
    if kind == "vector":
        cfg |= {
            "target_origin_link_names": [PALM_FRAME] * 5,
            "target_task_link_names": tips,
            "target_link_human_indices": [[0] * 5, TIPS],
        }
    else:
        cfg |= {"wrist_link_name": PALM_FRAME, "finger_tip_link_names": tips}
    return RetargetingConfig.from_dict(cfg).build()


def run_dex(kind: str, kp_xhand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seq = dex_retargeter(kind)
    names = seq.joint_names  # pinocchio order
    order = [names.index(j) for j in XHAND_JOINTS]
    indices = seq.optimizer.target_link_human_indices
    joints, times = [], []
    for frame in kp_xhand:
        ref = frame[indices[1]] - frame[indices[0]]  # dex-retargeting's own example does this
        t0 = time.perf_counter()
        q = seq.retarget(ref)
        times.append(time.perf_counter() - t0)
        joints.append(np.asarray(q)[order])
    return np.array(joints), 1e3 * np.array(times)


def run_project(kind: str, kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rt = XHandRetargeter(RetargetConfig(optimizer=kind))
    joints, times = [], []
    for frame in kp:
        t0 = time.perf_counter()
        joints.append(rt.retarget_frame(frame, "right"))
        times.append(time.perf_counter() - t0)
    return np.array(joints), 1e3 * np.array(times)


def accuracy(joints: np.ndarray, kp_xhand: np.ndarray, flex: dict, rt: XHandRetargeter) -> dict:
    robot = np.stack([rt.kinematics.points(q)[1:] for q in joints])
    human = kp_xhand[:, TIPS] - kp_xhand[:, :1]
    cos = np.sum(robot * human, -1) / (
        np.linalg.norm(robot, axis=-1) * np.linalg.norm(human, axis=-1)
    )
    direction = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    out: dict = {
        "wrist_tip_direction_error_deg_median": dict(
            zip(FINGERS, np.median(direction, 0).round(2).tolist(), strict=True)
        ),
        "flexion_correlation": {},
        "max_step_rad": float(np.abs(np.diff(joints, axis=0)).max()),
    }
    for f, h in flex.items():
        idx = [XHAND_JOINTS.index(j) for j in FINGER_JOINTS[f] if "bend" not in j]
        r = joints[:, idx].sum(1)
        out["flexion_correlation"][f] = round(float(np.corrcoef(h, r)[0, 1]), 3)
        if f == "pinky":
            straight = h < np.radians(15.0)
            out["robot_pinky_flexion_rad_when_human_straight_max"] = round(
                float(r[straight].max()), 3
            )
            out["robot_pinky_flexion_rad_when_human_straight_median"] = round(
                float(np.median(r[straight])), 3
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="passes over the video (timing)")
    args = parser.parse_args()
    assert KEYPOINTS.is_file() and VENDOR_URDF.is_file(), f"shared data missing under {DATA}"
    kp = np.load(KEYPOINTS).astype(np.float64)
    kp_xhand = kp @ MANO_TO_XHAND.T
    angles = joint_angles_sequence(kp, "right")
    flex = {
        f: sum(angles[:, MANO_JOINT_NAMES.index(f"{f}{k}"), 0] for k in (1, 2, 3))
        for f in ("index", "middle", "ring", "pinky")
    }
    ref_rt = XHandRetargeter()
    rows, results = [], {}
    for kind in ("vector", "dexpilot"):
        entry = {}
        for name, fn, data in (
            ("project", run_project, kp),
            ("dex_retargeting", run_dex, kp_xhand),
        ):
            times = []
            for _ in range(args.repeats):
                joints, t = fn(kind, data)
                times.append(t)
            t = np.concatenate(times)
            entry[name] = {
                "median_ms": float(np.median(t)),
                "p99_ms": float(np.percentile(t, 99)),
                "mean_ms": float(t.mean()),
                "accuracy": accuracy(joints, kp_xhand, flex, ref_rt),
            }
        entry["speedup_median"] = (
            entry["dex_retargeting"]["median_ms"] / entry["project"]["median_ms"]
        )
        entry["speedup_p99"] = entry["dex_retargeting"]["p99_ms"] / entry["project"]["p99_ms"]
        results[kind] = entry
        for name in ("project", "dex_retargeting"):
            e = entry[name]
            acc = e["accuracy"]
            dirs = acc["wrist_tip_direction_error_deg_median"].values()
            rows.append(
                f"| {kind} | {name} | {e['median_ms']:.2f} | {e['p99_ms']:.2f} | "
                f"{' / '.join(f'{v:.1f}' for v in dirs)} | "
                f"{' / '.join(f'{v:.2f}' for v in acc['flexion_correlation'].values())} | "
                f"{acc['robot_pinky_flexion_rad_when_human_straight_median']:.2f} |"
            )
    print(
        "| optimizer | implementation | median ms | p99 ms | direction err deg (thumb..pinky) "
        "| flexion corr (index..pinky) | robot pinky flex, human straight (rad) |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    for kind, e in results.items():
        print(
            f"{kind}: project is {e['speedup_median']:.1f}x faster (median), "
            f"{e['speedup_p99']:.1f}x (p99)"
        )
    RESULTS.mkdir(exist_ok=True)
    out = {
        "frames": int(kp.shape[0]),
        "repeats": args.repeats,
        "dex_retargeting_scaling": DEX_SCALING,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "results": results,
    }
    path = RESULTS / "retarget_xhand.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
