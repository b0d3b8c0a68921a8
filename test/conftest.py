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

# A shell that starts the suite in the background (``cmd &`` without job control) makes it
# ignore SIGINT, and child processes inherit an ignored signal: the nodes and CLIs the tests
# stop with SIGINT would then only die by SIGKILL. A handled signal is reset to the default at
# exec, so children start with Python's own Ctrl-C handling again.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
    """Run each module that uses ROS in a ROS domain of its own (ros_helpers.use_fresh_domain:
    a participant SIGKILLed by one module cannot leave a shared-memory port that blocks the next
    module's participants); fail the module that leaves a node process running in its domain
    (and kill it): such a node answers the next module's graph (seen: a leftover retarget node
    duplicated every hand command of a later round-trip test)."""
    ros_helpers = sys.modules.get("ros_helpers")
    if ros_helpers is not None:
        ros_helpers.use_fresh_domain()
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


# A test stuck inside C code that holds the GIL (seen once in CI: the whole suite froze in the
# sim-graph test until CI's 90-minute limit, with no pytest-timeout report) never lets
# pytest-timeout's SIGALRM handler run. faulthandler's watchdog is a C thread that needs no GIL:
# this long after the test's own timeout it prints every thread's stack and ends the run, so a
# hang costs minutes and says where it is.
HARD_TIMEOUT_MARGIN_S = 90.0  # seconds past the test's timeout


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    import faulthandler

    from _pytest.faulthandler import fault_handler_stderr_fd_key

    marker = item.get_closest_marker("timeout")
    timeout = marker.args[0] if marker and marker.args else item.config.getoption("timeout")
    stderr_fd = item.config.stash.get(fault_handler_stderr_fd_key, None)
    if timeout and stderr_fd is not None:
        os.write(stderr_fd, b"")  # the fd is valid (raises here, not in the watchdog)
        faulthandler.dump_traceback_later(
            float(timeout) + HARD_TIMEOUT_MARGIN_S, exit=True, file=stderr_fd
        )
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
