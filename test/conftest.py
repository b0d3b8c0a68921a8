"""Test-wide settings: headless MuJoCo rendering and paths to the shared third-party data."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

TEST_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TEST_DIR.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

if str(TEST_DIR) not in sys.path:
    sys.path.insert(0, str(TEST_DIR))


def _processes_in_our_ros_domain() -> dict[int, str]:
    """pid -> command line of the processes (not this one) started with this test process's
    ROS_DOMAIN_ID (ros_helpers reserves one per test process; nodes inherit it)."""
    domain = os.environ.get("ROS_DOMAIN_ID")
    if domain is None:
        return {}
    marker = f"ROS_DOMAIN_ID={domain}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if "human_video_policy" in command:
            found[int(entry.name)] = command
    return found


@pytest.fixture(autouse=True, scope="module")
def no_node_outlives_its_test_module():
    """Fail the module that leaves a node process running in this test process's ROS domain
    (and kill it): such a node answers the next module's graph (seen: a leftover retarget node
    duplicated every hand command of a later round-trip test)."""
    yield
    deadline = time.monotonic() + 10.0
    leftovers = _processes_in_our_ros_domain()
    while leftovers and time.monotonic() < deadline:  # stopping nodes take a moment
        time.sleep(0.2)
        leftovers = _processes_in_our_ros_domain()
    for pid in leftovers:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not leftovers, f"node processes outlived the test module (killed): {leftovers}"
