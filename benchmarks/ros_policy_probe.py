"""Measure the real policy_node over DDS: image stamp -> ActionChunk received, chunk period.

A probe node publishes camera-sized images (sensor-data QoS) at 30 Hz and joint states at
100 Hz, stamped with its wall clock; the policy node runs as its own process (the same command
line `hvp launch` uses) with use_sim_time false, so stamps and receive times share one clock.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def measure_policy_node(model: Path, frames, state, seconds: float) -> dict:
    from human_video_policy_msgs.msg import ActionChunk
    from ros_session import isolated_environment, spinning_probe
    from sensor_msgs.msg import Image, JointState

    from human_video_policy.nodes.conversions import rgb_to_image, stamp_to_seconds
    from human_video_policy.nodes.qos import RELIABLE, SENSOR_DATA
    from human_video_policy.robots.widowx import WIDOWX_STATE_JOINTS

    env = isolated_environment()
    command = [
        sys.executable,
        "-m",
        "human_video_policy.nodes.policy_node",
        "--ros-args",
        "-r",
        "__node:=policy",
        "-p",
        f"model_path:={model}",
        "-p",
        "use_sim_time:=false",
    ]
    latencies: list[float] = []
    stamps: list[float] = []

    def on_chunk(msg: ActionChunk) -> None:
        now = time.time()
        latencies.append((now - stamp_to_seconds(msg.observation_stamp)) * 1e3)
        stamps.append(stamp_to_seconds(msg.header.stamp))

    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        with spinning_probe("latency_probe") as node:
            image_pub = node.create_publisher(Image, "/camera/camera/color/image_raw", SENSOR_DATA)
            joint_pub = node.create_publisher(JointState, "/arm/joint_states", RELIABLE)
            node.create_subscription(ActionChunk, "/policy/action_chunk", on_chunk, RELIABLE)
            counter = {"i": 0}

            def publish_image() -> None:
                stamp = node.get_clock().now().to_msg()
                frame = frames[counter["i"] % len(frames)]
                counter["i"] += 1
                image_pub.publish(rgb_to_image(frame, stamp, "camera_color_optical_frame"))

            def publish_joints() -> None:
                msg = JointState()
                msg.header.stamp = node.get_clock().now().to_msg()
                msg.name = list(WIDOWX_STATE_JOINTS)
                msg.position = [float(v) for v in state]
                joint_pub.publish(msg)

            node.create_timer(1 / 30, publish_image)
            node.create_timer(1 / 100, publish_joints)
            deadline = time.time() + 60
            while not latencies and time.time() < deadline and process.poll() is None:
                time.sleep(0.05)
            if not latencies:
                raise RuntimeError("policy_node produced no ActionChunk within 60 s")
            latencies.clear()
            stamps.clear()
            time.sleep(seconds)
    finally:
        process.terminate()
        process.wait(timeout=10)
    lat = np.asarray(latencies)
    periods = np.diff(np.asarray(stamps)) * 1e3
    jitter = np.abs(periods - 100.0)
    return {
        "chunks": int(lat.size),
        "rate_hz": float(lat.size / seconds),
        "median_ms": float(np.median(lat)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "chunk_period_median_ms": float(np.median(periods)),
        "chunk_jitter_median_ms": float(np.median(jitter)),
        "chunk_jitter_p99_ms": float(np.percentile(jitter, 99)),
        "note": "latency = probe receive time - image stamp (includes image age up to 33 ms "
        "at 30 Hz, DDS transport both ways, resize + ONNX inference)",
    }


if __name__ == "__main__":
    print(Path(__file__).name, "is used by policy_latency.py")
