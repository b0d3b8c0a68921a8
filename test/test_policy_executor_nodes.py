"""Policy and executor nodes as real processes, fed bad inputs over DDS from the test."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import PolicyStatus
from onnx_models import make_policy_model
from ros_helpers import RosProbe, diagnostic_values, node_command, start_process, wait_for
from sensor_msgs.msg import Image, JointState

from human_video_policy.nodes.conversions import (
    action_chunk_to_msg,
    numpy_to_joint_state,
    rgb_to_image,
    seconds_to_stamp,
    stamp_to_seconds,
)
from human_video_policy.nodes.qos import SENSOR_DATA
from human_video_policy.robots.widowx import (
    HOME_POSITION,
    WIDOWX_COMMAND_JOINTS,
    WIDOWX_STATE_JOINTS,
    widowx_joint_limits,
)
from human_video_policy.runtime.action_chunk import ActionChunk

pytestmark = pytest.mark.ros


def _count(recording, key: str, name: str = "policy_bad_inputs") -> int:
    return int(diagnostic_values(recording, name).get(key, 0))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "policy model not found"),
        (b"\x08\x01garbage that is not an onnx protobuf" * 10, "cannot load policy model"),
    ],
)
def test_missing_or_corrupt_model_exits_2(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with start_process(
        node_command("policy_node", "-r", "__node:=policy", "-p", f"model_path:={path}")
    ) as process:
        assert process.wait(timeout=60) == 2
        lines = [line for line in process.output().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"policy: error: parameter model_path='{path}'")
    assert message in lines[0]


def test_an_execution_provider_this_onnxruntime_lacks_exits_2_naming_it(tmp_path: Path) -> None:
    path = make_policy_model(
        tmp_path / "model.onnx",
        state_names=list(WIDOWX_STATE_JOINTS),
        action_names=list(WIDOWX_COMMAND_JOINTS),
    )
    with start_process(
        node_command(
            "policy_node",
            "-r",
            "__node:=policy",
            "-p",
            f"model_path:={path}",
            "-p",
            "execution_provider:=tensorrt",
        )
    ) as process:
        assert process.wait(timeout=60) == 2
        lines = [line for line in process.output().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("policy: error: parameter execution_provider='tensorrt'")
    assert "TensorrtExecutionProvider is not in this onnxruntime" in lines[0]


class _Feeder:
    """Publishes camera images and joint states at 20 Hz, stamped with wall time."""

    def __init__(self, probe: RosProbe) -> None:
        self.images = probe.publisher("/camera/camera/color/image_raw", Image, SENSOR_DATA)
        self.states = probe.publisher("/arm/joint_states", JointState)
        self.send_images = True
        self.nan_state = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.rgb = np.full((48, 48, 3), 120, dtype=np.uint8)

    def _run(self) -> None:
        q = np.concatenate([HOME_POSITION, [-HOME_POSITION[-1]]])
        while not self._stop.is_set():
            stamp = seconds_to_stamp(time.time())
            if self.send_images:
                self.images.publish(rgb_to_image(self.rgb, stamp, "camera"))
            state = q.copy()
            if self.nan_state:
                state[1] = np.nan
            msg = numpy_to_joint_state(WIDOWX_STATE_JOINTS, state, stamp)
            self.states.publish(msg)
            time.sleep(0.05)

    def __enter__(self) -> _Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_policy_refuses_nan_and_stale_inputs(tmp_path: Path) -> None:
    model = make_policy_model(
        tmp_path / "policy.onnx",
        state_names=list(WIDOWX_STATE_JOINTS),
        action_names=list(WIDOWX_COMMAND_JOINTS),
        horizon=5,
        image_size=(32, 32),
    )
    command = node_command(
        "policy_node", "-r", "__node:=policy_bad_inputs", "-p", f"model_path:={model}"
    )
    with RosProbe("probe_policy") as probe, start_process(command) as process:
        chunks = probe.record("/policy/action_chunk", ActionChunkMsg)
        statuses = probe.record("/policy/status", PolicyStatus)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        with _Feeder(probe) as feeder:
            # Valid inputs: chunks flow, stamped with the image stamp.
            assert wait_for(lambda: len(chunks) >= 5, 30.0), process.output()
            chunk = chunks.messages()[-1]
            assert chunk.horizon == 5 and list(chunk.names) == list(WIDOWX_COMMAND_JOINTS)
            assert abs(stamp_to_seconds(chunk.observation_stamp) - time.time()) < 2.0

            # NaN joint states: no chunk is computed from them; counted and reported.
            feeder.nan_state = True
            switched = time.time()
            assert wait_for(
                lambda: (
                    int(
                        diagnostic_values(diagnostics, "policy_bad_inputs").get(
                            "invalid_joint_states", 0
                        )
                    )
                    > 0
                ),
                10.0,
            )
            time.sleep(1.0)
            late = [
                m
                for m in chunks.messages()
                if stamp_to_seconds(m.observation_stamp) > switched + 0.2
            ]
            assert late == []
            assert wait_for(
                lambda: any(
                    s.state == PolicyStatus.STATE_WAITING_FOR_INPUT
                    and "joint state invalid" in s.message
                    and "elbow" not in s.message
                    and "shoulder" in s.message
                    for s in statuses.messages()
                ),
                5.0,
            ), [s.message for s in statuses.messages()]

            # Valid states again but no images: stale image, no chunk, status says which.
            feeder.nan_state = False
            feeder.send_images = False
            assert wait_for(
                lambda: any(
                    "image is" in s.message and "old" in s.message for s in statuses.messages()
                ),
                10.0,
            ), [s.message for s in statuses.messages()]
            assert wait_for(lambda: _count(diagnostics, "stale_inputs") > 0, 5.0)
            values = diagnostic_values(diagnostics, "policy_bad_inputs")
        assert process.stop(signal.SIGINT) == 0
    assert int(values["deadline_misses"]) >= 1 and int(values["stale_inputs"]) >= 1
    assert float(values["inference_ms_median"]) > 0


def test_executor_clamps_a_chunk_beyond_joint_limits() -> None:
    limits = widowx_joint_limits()
    command = node_command(
        "executor_node", "-r", "__node:=executor_clamp", "-p", "max_velocity_scale:=1.0"
    )
    with RosProbe("probe_executor") as probe, start_process(command) as process:
        commands = probe.record("/arm/joint_commands", JointState)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        chunk_starts = probe.record("/executor/chunk_start", Time)
        states = probe.publisher("/arm/joint_states", JointState)
        chunk_pub = probe.publisher("/policy/action_chunk", ActionChunkMsg)
        assert probe.wait_for_subscribers(chunk_pub, timeout=30.0), process.output()
        q = np.concatenate([HOME_POSITION, [-HOME_POSITION[-1]]])
        wild = np.tile(limits.upper + 10.0, (5, 1)).astype(np.float32)  # far beyond limits
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            now = time.time()
            states.publish(numpy_to_joint_state(WIDOWX_STATE_JOINTS, q, seconds_to_stamp(now)))
            chunk = ActionChunk(wild, 0.1, WIDOWX_COMMAND_JOINTS, "widowx_joint_position", now)
            chunk_pub.publish(action_chunk_to_msg(chunk, seconds_to_stamp(now)))
            if (
                len(commands) >= 50
                and int(diagnostic_values(diagnostics, "executor_clamp").get("position_clamps", 0))
                and "smoothness_jerk_rms" in diagnostic_values(diagnostics, "executor_clamp")
            ):
                break
            time.sleep(0.05)
        received = commands.messages()
        values = diagnostic_values(diagnostics, "executor_clamp")
        assert process.stop(signal.SIGINT) == 0
    assert len(received) >= 50, process.output()
    positions = np.array([np.frombuffer(m.position, dtype=np.float64) for m in received])
    assert list(received[-1].name) == list(WIDOWX_COMMAND_JOINTS)
    assert np.all(positions >= limits.lower - 1e-9) and np.all(positions <= limits.upper + 1e-9)
    assert np.any(np.isclose(positions[-1], limits.upper))  # pushed to the limit, not past it
    assert int(values["position_clamps"]) > 0 and int(values["velocity_clamps"]) > 0
    # every handover is marked with the stamp of the command that started the new chunk
    stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in received}
    starts = [(t.sec, t.nanosec) for t in chunk_starts.messages()]
    assert len(starts) >= 2 and all(s in stamps for s in starts if s <= max(stamps)), starts
    assert values["mode"] == "k_of_n" and float(values["smoothness_within_step"]) >= 0
