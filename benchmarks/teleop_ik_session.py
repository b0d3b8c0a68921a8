"""The teleop_rm75_xhand graph driven by the dexret hand video: how much of the operator's wrist
motion reaches the arm, with strict IK and with position-first IK.

For each IK mode, `hvp launch teleop_rm75_xhand` runs as its own processes (camera_node playing
a 320x180 copy of the video at 15 fps, MediaPipe, retargeting, the clutched wrist mapping,
ik_node, the MuJoCo controllers) on an isolated ROS domain; a probe holds the deadman
(/teleop/enable at 20 Hz) for ``--seconds`` and records /arm/target_pose, /arm/joint_commands and
/arm/joint_states. Reported per mode: targets, commands, the share of targets refused, the
longest stretch without a command while the deadman was held, and how far the EE (forward
kinematics of the measured joints) is from each target 0.2 s after it.

    .venv/bin/python benchmarks/teleop_ik_session.py [--seconds 30] [--modes strict relaxed]

Writes benchmarks/results/teleop_ik_session.json. Needs ffmpeg and ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "human_video" / "dexret_hand" / "human_hand_video.mp4"
RESULTS = ROOT / "benchmarks" / "results"
MODES = {"strict": "0.0", "relaxed": "0.8"}
LAG_S = 0.2


def small_clip(folder: Path) -> Path:
    """The dexret video at 320x180 (720p rgb8 over DDS loses most frames on 2 cores)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None or not VIDEO.is_file():
        raise SystemExit(f"need the ffmpeg CLI and {VIDEO} (../shared/data/SOURCES.md)")
    clip = folder / "hand_320x180.mp4"
    scale = ["-vf", "scale=320:180", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-i", str(VIDEO), *scale, str(clip)],
        check=True,
        timeout=120,
    )
    return clip


def session(clip: Path, relaxed_max_rad: str, seconds: float) -> dict:
    """One graph run with the deadman held for ``seconds``; the recorded arm streams."""
    from geometry_msgs.msg import PoseStamped
    from ros_session import isolated_environment, spinning_probe
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool

    from human_video_policy.nodes.conversions import joint_state_to_numpy
    from human_video_policy.nodes.qos import RELIABLE
    from human_video_policy.robots.rm75 import RM75_ARM_JOINTS

    env = isolated_environment()
    command = [sys.executable, "-m", "human_video_policy.cli.main", "launch", "teleop_rm75_xhand"]
    command += ["camera_source:=video", f"video_path:={clip}", "video_rate_hz:=15.0"]
    command += ["robot_view_rate_hz:=1.0", f"ik_relaxed_orientation_max_rad:={relaxed_max_rad}"]
    lock = threading.Lock()
    targets: list[tuple[float, np.ndarray]] = []
    commands: list[float] = []
    states: list[tuple[float, np.ndarray]] = []

    def on_target(msg: PoseStamped) -> None:
        p = msg.pose.position
        with lock:
            targets.append((time.monotonic(), np.array([p.x, p.y, p.z])))

    def on_command(_: JointState) -> None:
        with lock:
            commands.append(time.monotonic())

    def on_state(msg: JointState) -> None:
        with lock:
            states.append((time.monotonic(), joint_state_to_numpy(msg, RM75_ARM_JOINTS)))

    launcher = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        with spinning_probe("teleop_ik_probe") as node:
            node.create_subscription(PoseStamped, "/arm/target_pose", on_target, RELIABLE)
            node.create_subscription(JointState, "/arm/joint_commands", on_command, RELIABLE)
            node.create_subscription(JointState, "/arm/joint_states", on_state, RELIABLE)
            enable = node.create_publisher(Bool, "/teleop/enable", RELIABLE)
            deadline = time.monotonic() + 90.0
            while not states and time.monotonic() < deadline and launcher.poll() is None:
                time.sleep(0.1)
            if not states:
                raise RuntimeError("the teleop graph published no /arm/joint_states within 90 s")
            time.sleep(3.0)  # the tracker and the retargeter warm up
            held_from = time.monotonic()
            while time.monotonic() - held_from < seconds:
                enable.publish(Bool(data=True))
                time.sleep(0.05)
            held_to = time.monotonic()
            time.sleep(1.0)
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            launcher.kill()
    return analyse(targets, commands, states, held_from, held_to)


def analyse(targets, commands, states, held_from: float, held_to: float) -> dict:
    from human_video_policy.kinematics.inverse import IkSolver

    fk = IkSolver.for_rm75()
    state_t = np.array([t for t, _ in states])
    held = [c for c in commands if held_from <= c <= held_to + 0.5]
    marks = np.array([held_from, *held, held_to])
    errors = []
    for t, position in targets:
        i = min(int(np.searchsorted(state_t, t + LAG_S)), len(states) - 1)
        errors.append(np.linalg.norm(fk.forward(states[i][1])[:3, 3] - position))
    e = 1e3 * np.asarray(errors) if errors else np.full(1, np.nan)
    return {
        "targets": len(targets),
        "commands": len(commands),
        "refused_share": 1.0 - len(commands) / max(len(targets), 1),
        "longest_gap_without_command_s": float(np.diff(marks).max()),
        f"ee_to_target_{LAG_S:g}s_later_median_mm": float(np.median(e)),
        f"ee_to_target_{LAG_S:g}s_later_p90_mm": float(np.percentile(e, 90)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="deadman held (s)")
    parser.add_argument("--modes", nargs="+", choices=tuple(MODES), default=list(MODES))
    args = parser.parse_args()
    load_start = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = small_clip(Path(tmp))
        for mode in args.modes:
            print(f"{mode}: deadman held {args.seconds:g} s ...", flush=True)
            results[mode] = session(clip, MODES[mode], args.seconds)
    print(
        "\n| IK mode | targets | commands | refused | longest gap (s) | "
        f"EE to target {LAG_S:g} s later, median / p90 (mm) |"
    )
    print("|---|---|---|---|---|---|")
    for mode, r in results.items():
        print(
            f"| {mode} (relaxed_orientation_max_rad {MODES[mode]}) | {r['targets']} | "
            f"{r['commands']} | {100 * r['refused_share']:.0f} % | "
            f"{r['longest_gap_without_command_s']:.2f} | "
            f"{r[f'ee_to_target_{LAG_S:g}s_later_median_mm']:.1f} / "
            f"{r[f'ee_to_target_{LAG_S:g}s_later_p90_mm']:.1f} |"
        )
    load_end = os.getloadavg()
    print(f"load average (1, 5, 15 min): start {load_start}, end {load_end}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "teleop_ik_session.json"
    machine = {"platform": platform.platform(), "cpus": os.cpu_count()}
    machine |= {"load_average_start": load_start, "load_average_end": load_end}
    out.write_text(
        json.dumps({"seconds_held": args.seconds, "machine": machine, "results": results}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
