"""What the benchmarks that run real nodes over DDS share: an isolated ROS environment for the
node processes (and this one) and a probe node spinning in a thread.

rclpy is imported inside the functions: the benchmarks that do not talk to ROS never load it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def isolated_environment() -> dict[str, str]:
    """Environment for node processes on a domain of their own (loopback discovery, the
    project's Fast DDS profile); this process joins the same domain."""
    from human_video_policy.bringup.launcher import PROFILE_VARIABLES, node_environment

    env = node_environment(os.environ)
    env["ROS_DOMAIN_ID"] = str(150 + os.getpid() % 70)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", *PROFILE_VARIABLES):
        if key in env:
            os.environ[key] = env[key]
    return env


@contextmanager
def spinning_probe(name: str) -> Iterator[Any]:
    """An rclpy node spun by its own thread; shut down (rclpy too) on exit."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init()
    node = rclpy.create_node(name)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        yield node
    finally:
        executor.shutdown()
        spin.join(timeout=5)
        node.destroy_node()
        rclpy.shutdown()
