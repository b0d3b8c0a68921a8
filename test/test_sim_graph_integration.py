"""The real sim_widowx graph, started with `hvp launch` as separate processes over DDS.

The test process only listens (and never mocks anything): the MuJoCo sim, the ONNX policy
(the committed default model) and the chunk executor run as three node processes started by the
launcher, exactly as a user would start them. Checked from outside:

- /arm/joint_states and the camera topics come at their configured rates (+-20 %) and
  /policy/action_chunk at 10 Hz (+-10 %), measured on the messages' stamps (sim time, which the
  sim paces to the wall clock); the wall-clock rates and the achieved real-time factor are
  checked too, with slack for a loaded machine;
- every chunk is computed from a camera image (observation_stamp = an image's stamp);
- the end effector (/sim/ee_pose) approaches the target (/sim/target_pose) substantially, and
  again after ``/sim/reset`` starts a new episode (sim time keeps increasing);
- /diagnostics carries the policy's latency and inference time;
- SIGINT to the launcher ends everything with exit code 0.
"""

from __future__ import annotations

import itertools
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from ros_helpers import RosProbe, start_process, wait_for
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger

from human_video_policy.nodes.conversions import pose_position, stamp_to_seconds
from human_video_policy.nodes.policy_node import default_model_path
from human_video_policy.nodes.qos import SENSOR_DATA

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(150)]

MEASURE_S = 8.0  # wall seconds of steady state over which rates are measured
LAUNCH_ARGS: list[str] = []  # the default graph: default model, 15 Hz camera, seed 0


def _stamp_rate(messages: list) -> float:
    stamps = sorted(stamp_to_seconds(m.header.stamp) for m in messages)
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def _wall_rate(items: list[tuple[float, object]]) -> float:
    times = [t for t, _ in items]
    return (len(times) - 1) / (times[-1] - times[0])


def _policy_values(recording) -> dict[str, str]:
    for msg in reversed(recording.messages()):
        for status in msg.status:
            if status.name == "policy":
                return {kv.key: kv.value for kv in status.values}
    return {}


def test_sim_widowx_graph_reaches_the_target_at_its_rates() -> None:
    assert Path(default_model_path()).exists(), f"default model missing: {default_model_path()}"
    command = [sys.executable, "-m", "human_video_policy.cli.main", "launch", "sim_widowx"]
    with RosProbe("probe_sim_graph") as probe:
        joint_states = probe.record("/arm/joint_states", JointState)
        images = probe.record("/camera/camera/color/image_raw", Image, SENSOR_DATA)
        depth = probe.record("/camera/camera/aligned_depth_to_color/image_raw", Image, SENSOR_DATA)
        infos = probe.record("/camera/camera/color/camera_info", CameraInfo, SENSOR_DATA)
        chunks = probe.record("/policy/action_chunk", ActionChunkMsg)
        ee_poses = probe.record("/sim/ee_pose", PoseStamped)
        targets = probe.record("/sim/target_pose", PoseStamped)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        launched = time.monotonic()
        with start_process(command + LAUNCH_ARGS) as launcher:
            assert wait_for(lambda: len(chunks) >= 3, 45.0), launcher.output()
            startup_s = time.monotonic() - launched
            start = time.monotonic()
            time.sleep(MEASURE_S)
            end = time.monotonic()
            assert wait_for(lambda: "latency_ms_median" in _policy_values(diagnostics), 5.0)
            policy = _policy_values(diagnostics)

            # A new episode through ~/reset: a new target, and the arm reaches again.
            client = probe.node.create_client(Trigger, "/sim/reset")
            assert client.wait_for_service(timeout_sec=10.0)
            reset_at = time.monotonic()
            future = client.call_async(Trigger.Request())
            assert wait_for(future.done, 10.0) and future.result().success, future.result()

            def second_episode() -> tuple[np.ndarray, list[float]]:
                after = [m for t, m in ee_poses.items() if t > reset_at + 0.2]
                new_target = pose_position(targets.messages()[-1])
                return new_target, [np.linalg.norm(pose_position(m) - new_target) for m in after]

            assert wait_for(
                lambda: (
                    len(second_episode()[1]) > 2
                    and min(second_episode()[1]) < 0.5 * second_episode()[1][0]
                ),
                20.0,
            ), second_episode()
            second_target, second_distances = second_episode()
            code = launcher.stop(signal.SIGINT, timeout=30.0)
            output = launcher.output()

    def window(recording) -> list[tuple[float, object]]:
        return [(t, m) for t, m in recording.items() if start <= t <= end]

    measured = {
        "joint_states": (window(joint_states), 100.0, 0.2),
        "image": (window(images), 15.0, 0.2),
        "depth": (window(depth), 15.0, 0.2),
        "camera_info": (window(infos), 15.0, 0.2),
        "action_chunk": (window(chunks), 10.0, 0.1),
    }
    report = {}
    for name, (items, expected, tolerance) in measured.items():
        assert len(items) > 2, f"{name}: {len(items)} messages\n{output}"
        sim_rate = _stamp_rate([m for _, m in items])
        wall_rate = _wall_rate(items)
        report[name] = (round(sim_rate, 2), round(wall_rate, 2))
        assert abs(sim_rate - expected) <= tolerance * expected, (name, report, output)
    sim_span = [stamp_to_seconds(m.header.stamp) for _, m in measured["joint_states"][0]]
    realtime_factor = (sim_span[-1] - sim_span[0]) / (end - start)
    print(
        f"\nstartup {startup_s:.1f} s; (sim-time Hz, wall Hz): {report}; "
        f"real-time factor {realtime_factor:.2f}; policy diagnostics {policy}"
    )
    # The sim keeps pace with the wall clock, so the wall-clock rates match as well.
    assert realtime_factor > 0.8, report
    for name, (_items, expected, _tol) in measured.items():
        assert abs(report[name][1] - expected) <= 0.25 * expected, (name, report)

    # Each chunk comes from one camera image.
    image_stamps = {stamp_to_seconds(m.header.stamp) for _, m in images.items()}
    for msg in chunks.messages():
        assert stamp_to_seconds(msg.observation_stamp) in image_stamps
        assert msg.horizon >= 1 and len(msg.data) == msg.horizon * msg.dims

    # The arm moves toward the target: the policy does the reaching.
    first = [(t, m) for t, m in targets.items() if t < reset_at]
    target = pose_position(first[-1][1])
    distances = [
        np.linalg.norm(pose_position(m) - target) for t, m in ee_poses.items() if t < reset_at
    ]
    initial, closest, final = distances[0], min(distances), distances[-1]
    print(
        f"end-effector distance to target: {initial:.3f} m -> {final:.3f} m "
        f"(closest {closest:.3f} m)"
    )
    assert closest < 0.5 * initial and final < 0.5 * initial, (initial, closest, final)
    print(
        f"after ~/reset: new target {np.linalg.norm(second_target - target):.3f} m away; "
        f"distance {second_distances[0]:.3f} m -> {min(second_distances):.3f} m"
    )
    assert np.linalg.norm(second_target - target) > 0.01
    stamps = [stamp_to_seconds(m.header.stamp) for m in joint_states.messages()]
    assert all(b > a for a, b in itertools.pairwise(stamps))  # time never goes back

    # Latency reported on /diagnostics.
    assert float(policy["latency_ms_median"]) > 0 and float(policy["inference_ms_median"]) > 0
    assert int(policy["chunks_published"]) >= 3

    # Clean end.
    assert code == 0, output
    assert "Traceback" not in output
    assert "[launch] done: exit code 0" in output
