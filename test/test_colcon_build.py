"""The lab build path: colcon builds both packages into a workspace and the sim graph runs from
its install space, as docs/lab_machine.md tells a lab to do.

A copy of the tracked sources goes to <tmp>/ws/src/human_video_policy (a lab's clone);
scripts/colcon_build.sh builds human_video_policy_msgs (ament_cmake, with the include fix ROS
from PyPI wheels needs) and human_video_policy (ament_python); the environment comes from
sourcing install/setup.bash; the sim, policy and executor nodes start as the executables in
install/human_video_policy/lib/human_video_policy/ with the parameter files under share/, and a
probe in this process checks that the policy drives the arm toward its target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from ros_helpers import PROJECT_ROOT, RosProbe, start_process, wait_for
from sensor_msgs.msg import JointState

from human_video_policy.nodes.conversions import pose_position

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(400)]

PACKAGE = "human_video_policy"
NODE_EXECUTABLES = {p.name for p in (PROJECT_ROOT / "scripts" / "ros").iterdir()}


IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "install", "log", "__pycache__", "*.egg-info", ".*_cache", "runs"
)


def _copy_tracked_sources(destination: Path) -> None:
    """The files a clone has (git's list), not the venv or build outputs of this checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked archive)
        shutil.copytree(PROJECT_ROOT, destination, ignore=IGNORED)
        return
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():  # deleted but not yet committed files are listed too
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _sourced_environment(setup_bash: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment after ``source install/setup.bash``."""
    out = subprocess.run(
        ["bash", "-c", f"source {setup_bash} && env -0"],
        env=base,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return dict(entry.split("=", 1) for entry in out.split("\0") if "=" in entry)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    """Build once per module: (workspace, sourced environment, build log)."""
    ws = tmp_path_factory.mktemp("colcon") / "ws"
    clone = ws / "src" / PACKAGE
    _copy_tracked_sources(clone)
    venv_bin = str(Path(sys.executable).parent)
    base = dict(os.environ)
    # As a user with the project's venv activated: its python3 and colcon first on PATH.
    base["PATH"] = os.pathsep.join([venv_bin, base.get("PATH", "")])
    base["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    base.pop("PYTHONPATH", None)
    started = time.monotonic()
    build = subprocess.run(
        ["bash", str(clone / "scripts" / "colcon_build.sh")],
        cwd=clone,
        env=base,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-6000:]
    print(f"\ncolcon build of both packages: {time.monotonic() - started:.1f} s")
    env = _sourced_environment(ws / "install" / "setup.bash", base)
    env.update(
        ROS_DOMAIN_ID=os.environ["ROS_DOMAIN_ID"],  # this test module's domain (ros_helpers)
        PYTHONUNBUFFERED="1",
        RCUTILS_COLORIZED_OUTPUT="0",
    )
    return ws, env, log


def test_colcon_installs_both_packages_and_their_files(workspace) -> None:
    ws, env, log = workspace
    assert "Summary: 2 packages finished" in log, log[-3000:]
    lib = ws / "install" / PACKAGE / "lib" / PACKAGE
    assert {p.name for p in lib.iterdir()} >= NODE_EXECUTABLES, sorted(lib.iterdir())
    assert all(os.access(lib / name, os.X_OK) for name in NODE_EXECUTABLES)
    share = ws / "install" / PACKAGE / "share" / PACKAGE
    for part in ("package.xml", "config/graphs/sim_widowx.yaml", "mjcf", "urdf"):
        assert (share / part).exists(), part
    assert (share / "assets/policies/widowx_reach_dit/policy.json").is_file()
    # The include fix is kept for later plain `colcon build` runs.
    defaults = (ws / "colcon_defaults.yaml").read_text()
    assert "fix_wheel_python_includes.cmake" in defaults and "-DHVP_NUMPY_INCLUDE=" in defaults

    # With the workspace sourced, python finds both packages in the install space, not in
    # this checkout (installed editable in the venv) nor in the venv's own msg build.
    found = subprocess.run(
        [
            "python3",
            "-c",
            "import json, human_video_policy, human_video_policy_msgs.msg as m; "
            "from human_video_policy.resources import share_dir; "
            "print(json.dumps([human_video_policy.__file__, m.__file__, str(share_dir())]))",
        ],
        env=env,
        cwd=ws,  # not this checkout: `python -c` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    package_file, msg_file, share_dir = json.loads(found.stdout)
    install = str(ws / "install")
    assert package_file.startswith(install), package_file
    assert msg_file.startswith(install), msg_file
    assert share_dir == str(share), share_dir


def _graph_commands(env: dict[str, str], cwd: Path) -> list[list[str]]:
    """The sim_widowx graph's nodes as [executable, ros arguments...], computed by the
    installed package (so parameter files resolve under share/)."""
    out = subprocess.run(
        [
            "python3",
            "-c",
            "import json; from human_video_policy.bringup.graph import load_graph; "
            "print(json.dumps([[n.executable, *n.ros_arguments()] "
            "for n in load_graph('sim_widowx').nodes]))",
        ],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def test_the_sim_graph_runs_from_the_install_space(workspace) -> None:
    ws, env, _ = workspace
    lib = ws / "install" / PACKAGE / "lib" / PACKAGE
    share = ws / "install" / PACKAGE / "share" / PACKAGE
    commands = _graph_commands(env, ws)
    assert [c[0] for c in commands] == ["sim_node", "policy_node", "executor_node"]
    for command in commands:
        params = [a for a in command if a.endswith(".yaml")]
        assert params and all(a.startswith(str(share)) for a in params), command

    with RosProbe("probe_colcon") as probe:
        chunks = probe.record("/policy/action_chunk", ActionChunkMsg)
        joint_states = probe.record("/arm/joint_states", JointState)
        ee_poses = probe.record("/sim/ee_pose", PoseStamped)
        targets = probe.record("/sim/target_pose", PoseStamped)
        nodes = [start_process([str(lib / c[0]), *c[1:]], env=env) for c in commands]
        try:
            outputs = lambda: "\n".join(n.output()[-3000:] for n in nodes)  # noqa: E731
            assert wait_for(lambda: len(chunks) >= 3, 60.0), outputs()
            assert wait_for(lambda: len(ee_poses) > 20 and len(targets) > 0, 10.0), outputs()
            target = pose_position(targets.messages()[-1])
            first = np.linalg.norm(pose_position(ee_poses.messages()[0]) - target)

            def closest() -> float:
                return min(np.linalg.norm(pose_position(m) - target) for m in ee_poses.messages())

            assert wait_for(lambda: closest() < 0.5 * first, 20.0), (first, closest(), outputs())
            assert len(joint_states) > 100
            codes = [node.stop() for node in nodes]
            log = outputs()
        finally:
            for node in nodes:
                node.close()
    assert codes == [0, 0, 0], log
    assert "Traceback" not in log, log
    # The policy node loaded the default model from the install space's share/.
    assert str(share / "assets" / "policies" / "widowx_reach_dit") in log, log
    print(f"end-effector distance to target: {first:.3f} m -> {closest():.3f} m")


@pytest.mark.parametrize(
    ("arguments", "python", "message"),
    [
        ([], sys.executable, "not inside <workspace>/src/: pass --workspace DIR"),
        (["--workspace"], sys.executable, "--workspace needs a directory"),
        (["--workspace", "WS"], "/bin/false", "cannot import rclpy"),
    ],
    ids=["no-workspace", "workspace-without-dir", "python-without-rclpy"],
)
def test_the_build_helper_refuses_what_it_cannot_build(
    tmp_path: Path, arguments: list[str], python: str, message: str
) -> None:
    """A clone outside <ws>/src without --workspace, or an interpreter without ROS: a clear
    error and exit code 2, nothing built."""
    clone = tmp_path / "clone"  # not inside a src/ folder
    (clone / "scripts").mkdir(parents=True)
    shutil.copy2(PROJECT_ROOT / "scripts" / "colcon_build.sh", clone / "scripts")
    arguments = [str(tmp_path / "ws") if a == "WS" else a for a in arguments]
    result = subprocess.run(
        ["bash", str(clone / "scripts" / "colcon_build.sh"), *arguments],
        env={**os.environ, "PYTHON": python},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert not (tmp_path / "ws" / "build").exists()
