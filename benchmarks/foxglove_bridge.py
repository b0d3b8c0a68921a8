"""Cost of the Foxglove bridge per message: conversion + logging to a channel a client watches,
and the cost when nobody watches (docs/viewing.md).

    .venv/bin/python benchmarks/foxglove_bridge.py [--messages 200]

In-process: a FoxgloveBridge on a free port, a websockets client (Foxglove protocol) subscribed
to every channel and draining them in a thread, rclpy message objects built once. Prints the
mean time per message of FoxgloveBridge.publish per kind. The DDS hop itself is not included.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

from foxglove_client import FoxgloveClient
from human_video_policy_msgs.msg import ActionChunk, Hand, HandKeypoints
from sensor_msgs.msg import Image, JointState

from human_video_policy.viz.foxglove_bridge import FoxgloveBridge


def messages() -> dict[str, tuple[str, object]]:
    image = Image(width=640, height=480, encoding="rgb8", step=1920)
    image.data = np.random.default_rng(0).integers(0, 255, 640 * 480 * 3, np.uint8).tobytes()
    hand = Hand(handedness="right", confidence=0.9)
    hand.keypoints_2d = np.linspace(0, 400, 42, dtype=np.float32).tolist()
    hand.keypoints_3d = np.linspace(-0.1, 0.5, 63, dtype=np.float32).tolist()
    hand.keypoint_confidence = [1.0] * 21
    keypoints = HandKeypoints(image_width=640, image_height=480, hands=[hand, hand])
    joints = JointState(name=[f"j{i}" for i in range(8)], position=[0.1] * 8, velocity=[0.0] * 8)
    chunk = ActionChunk(names=[f"c{i}" for i in range(7)], horizon=16, dims=7, dt=0.1)
    chunk.data = np.zeros(112, np.float32).tolist()
    return {
        "/image_640x480_rgb8": ("sensor_msgs/msg/Image", image),
        "/hand/keypoints (2 hands)": ("human_video_policy_msgs/msg/HandKeypoints", keypoints),
        "/joint_states (8 joints)": ("sensor_msgs/msg/JointState", joints),
        "/action_chunk (16x7)": ("human_video_policy_msgs/msg/ActionChunk", chunk),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    msgs = messages()
    with FoxgloveBridge(port=0) as bridge:
        channels = [c for topic, (kind, _) in msgs.items() for c in bridge.add_topic(topic, kind)]
        unwatched = {}
        for topic, (_, msg) in msgs.items():
            started = time.perf_counter()
            for _ in range(args.messages):
                bridge.publish(topic, msg)
            unwatched[topic] = (time.perf_counter() - started) / args.messages * 1e6
        subscribed = threading.Event()
        stop = threading.Event()

        async def drain() -> None:
            async with FoxgloveClient(bridge.url) as client:
                await client.wait_for_channels(channels, timeout=10.0)
                await client.subscribe(channels)
                subscribed.set()
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(client.ws.recv(), 0.2)
                    except TimeoutError:
                        pass

        thread = threading.Thread(target=lambda: asyncio.run(drain()), daemon=True)
        thread.start()
        subscribed.wait(10.0)
        time.sleep(0.5)
        for topic, (_, msg) in msgs.items():
            for _ in range(args.messages):
                bridge.publish(topic, msg)
                time.sleep(0.001)  # a paced stream, not one burst into the server's queue
        stop.set()
        thread.join(5.0)
        stats = bridge.topics()
    print(f"{'message':30s} {'watched us/msg':>15s} {'unwatched us/msg':>17s}")
    for topic in msgs:
        s = stats[topic]
        print(f"{topic:30s} {s.mean_convert_us:15.1f} {unwatched[topic]:17.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
