"""The built interfaces cross process boundaries, the CLI answers --help everywhere, `hvp doctor`
reports on this machine, and an installed package has the layout `ros2 run` / `ros2 launch` need.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from human_video_policy_msgs.msg import ActionChunk, HandKeypoints, PolicyStatus, PromptEmbedding
from ros_helpers import PROJECT_ROOT, RosProbe, start_process, wait_for

PUBLISHER = textwrap.dedent(
    """
    import time, rclpy
    from human_video_policy_msgs.msg import (ActionChunk, Hand, HandKeypoints, PolicyStatus,
                                             PromptEmbedding)
    rclpy.init()
    node = rclpy.create_node("interface_publisher")
    pubs = {t: node.create_publisher(t, "/it/" + t.__name__, 10)
            for t in (ActionChunk, HandKeypoints, PromptEmbedding, PolicyStatus)}
    hand = Hand(handedness="right", confidence=0.9)
    hand.keypoints_2d = [float(i) for i in range(42)]
    hand.keypoints_3d = [i * 0.01 for i in range(63)]
    hand.keypoint_confidence = [1.0] * 21
    msgs = {
        ActionChunk: ActionChunk(action_space="widowx_joint_position", names=["a", "b"],
                                 horizon=3, dims=2, dt=0.1, data=[0.5] * 6),
        HandKeypoints: HandKeypoints(image_width=640, image_height=480, hands=[hand]),
        PromptEmbedding: PromptEmbedding(source="demo.mp4", encoder_id="enc@1", num_tokens=2,
                                         dims=3, data=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        PolicyStatus: PolicyStatus(state=PolicyStatus.STATE_RUNNING, message="ok",
                                   latency_ms_median=12.5, chunks_published=7),
    }
    end = time.time() + 30
    while time.time() < end:
        for t, m in msgs.items():
            pubs[t].publish(m)
        rclpy.spin_once(node, timeout_sec=0.1)
    """
)


@pytest.mark.ros
def test_every_interface_crosses_processes() -> None:
    with RosProbe("interface_probe") as probe:
        got = {
            t: probe.record(f"/it/{t.__name__}", t)
            for t in (ActionChunk, HandKeypoints, PromptEmbedding, PolicyStatus)
        }
        with start_process([sys.executable, "-c", PUBLISHER]) as publisher:
            assert wait_for(lambda: all(len(r) for r in got.values()), 20.0), publisher.output()
    chunk = got[ActionChunk].messages()[0]
    assert (chunk.horizon, chunk.dims, list(chunk.names)) == (3, 2, ["a", "b"])
    np.testing.assert_allclose(chunk.data, [0.5] * 6)
    hands = got[HandKeypoints].messages()[0]
    assert hands.image_width == 640 and hands.hands[0].handedness == "right"
    np.testing.assert_allclose(hands.hands[0].keypoints_3d[-1], 0.62, atol=1e-6)
    prompt = got[PromptEmbedding].messages()[0]
    assert prompt.encoder_id == "enc@1" and list(prompt.data)[-1] == 6.0
    status = got[PolicyStatus].messages()[0]
    assert status.state == PolicyStatus.STATE_RUNNING and status.chunks_published == 7


def _run_hvp(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "human_video_policy.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_every_cli_command_has_help() -> None:
    top = _run_hvp("--help")
    assert top.returncode == 0
    commands = ["launch", "sim-eval", "doctor", "topic", "service", "bag", "train-default"]
    for command in commands:
        assert command in top.stdout
        result = _run_hvp(command, "--help")
        assert result.returncode == 0 and "usage: hvp" in result.stdout, result.stderr
    for sub in ("list", "hz", "echo", "pub"):
        assert _run_hvp("topic", sub, "--help").returncode == 0
    for command, sub in (("service", "list"), ("service", "call"), ("bag", "info")):
        assert _run_hvp(command, sub, "--help").returncode == 0
    unknown = _run_hvp("no-such-command")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


def test_doctor_reports_each_check() -> None:
    result = _run_hvp("doctor", timeout=120)
    out = result.stdout
    checks = (
        "rclpy",
        "interfaces",
        "dds",
        "onnxruntime",
        "mujoco egl",
        "default model",
        "xhand sdk",
        "realsense",
        "mediapipe",
        "torch",
    )
    for check in checks:
        assert any(line.split()[1:2] and check in line for line in out.splitlines()), out
    assert result.returncode == 0, out  # this machine has everything that is required
    assert "all required checks passed" in out


def test_wheel_has_the_ros_install_layout(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(PROJECT_ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("human_video_policy-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    data = "human_video_policy-0.1.0.data/data/"
    expected = [
        "share/ament_index/resource_index/packages/human_video_policy",
        "share/human_video_policy/package.xml",
        "share/human_video_policy/config/graphs/sim_widowx.yaml",
        "share/human_video_policy/config/sim_widowx.params.yaml",
        "share/human_video_policy/launch/sim_widowx.launch.py",
        "share/human_video_policy/urdf/wx250s.urdf",
        "share/human_video_policy/mjcf/wx250s_reach_scene.xml",
        "share/human_video_policy/urdf/rm75_xhand_right.urdf",
        "share/human_video_policy/urdf/rm75.urdf",
        "share/human_video_policy/mjcf/rm75_xhand_scene.xml",
        "share/human_video_policy/config/ik.params.yaml",
        "share/human_video_policy/config/retarget_xhand.yaml",
        "share/human_video_policy/config/camera.params.yaml",
        "share/human_video_policy/assets/policies/widowx_reach.onnx",
        "share/human_video_policy/assets/policies/widowx_reach_dit/policy.json",
        "share/human_video_policy/assets/policies/widowx_reach_dit/encoder.onnx",
        "share/human_video_policy/assets/policies/widowx_reach_dit/denoiser.onnx",
    ]
    # every node module has its `ros2 run` executable
    nodes = sorted(p.stem for p in (PROJECT_ROOT / "human_video_policy/nodes").glob("*_node.py"))
    assert len(nodes) >= 15, nodes
    expected += [f"lib/human_video_policy/{node}" for node in nodes]
    missing = [p for p in expected if data + p not in names]
    assert not missing, f"wheel lacks {missing}"
    for node in nodes:  # ros2 run needs them executable
        mode = archive.getinfo(f"{data}lib/human_video_policy/{node}").external_attr >> 16
        assert mode & 0o111, f"{node} is not executable in the wheel (mode {oct(mode)})"
    assert "human_video_policy/runtime/onnx_policy.py" in names
    assert any(n.endswith("entry_points.txt") for n in names)
