"""Fault injection: corrupted policy weights and inputs that make a model return NaN/inf.

A model whose weights are NaN or huge may still load; a healthy-looking model may return NaN or
inf for some inputs. No chunk with such values may leave the policy (counted, reported on
/diagnostics and /policy/status), the executor refuses non-finite chunk data, and over real DDS
with real nodes the joint commands stay finite and hold. Models are real ONNX files built with
test/onnx_models.py, with initializers overwritten as a corrupted download or a diverged
training run would leave them.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import PolicyStatus
from onnx import numpy_helper
from onnx_models import make_policy_model
from ros_helpers import (
    PeriodicThread,
    RosProbe,
    diagnostic_values,
    node_command,
    start_process,
    wait_for,
)
from sensor_msgs.msg import Image, JointState

from human_video_policy.errors import InputError, ModelLoadError
from human_video_policy.nodes.conversions import (
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
from human_video_policy.runtime.chunk_executor import ChunkExecutor, ChunkExecutorConfig
from human_video_policy.runtime.onnx_policy import OnnxPolicy, PolicyOutputError

STATE = list(WIDOWX_STATE_JOINTS)  # 8 values: the 7 command joints + right_finger
ACTIONS = list(WIDOWX_COMMAND_JOINTS)
BLACK = np.zeros((32, 32, 3), dtype=np.uint8)
HUGE = 2.0**127  # float32 max is 3.4e38: 2 x HUGE overflows to inf; x HUGE is exact below


def corrupt(path: Path, name: str, edit) -> Path:
    """Rewrite initializer ``name`` of the model at ``path`` as ``edit(values)`` returns it."""
    model = onnx.load(str(path))
    for k, init in enumerate(model.graph.initializer):
        if init.name == name:
            values = edit(numpy_helper.to_array(init).copy()).astype(np.float32)
            model.graph.initializer[k].CopyFrom(numpy_helper.from_array(values, name))
            onnx.save(model, str(path))
            return path
    raise KeyError(name)


def base_model(tmp_path: Path, horizon: int = 4) -> Path:
    return make_policy_model(
        tmp_path / "policy.onnx", state_names=STATE, action_names=ACTIONS, horizon=horizon
    )


def nan_for_open_fingers_model(tmp_path: Path, horizon: int = 4) -> Path:
    """Loads and passes the self-test; left_finger action = HUGE * left + HUGE * right (+ the
    offsets), exactly 0 while right = -left as the WidowX reports it and |left| < 2 m (products
    by a power of two are exact), but inf - inf = NaN for fingers at +-2 m (a state the arm
    should never report)."""

    def edit(select: np.ndarray) -> np.ndarray:
        select[6, 6] = HUGE
        select[7, 6] = HUGE
        return select

    return corrupt(base_model(tmp_path, horizon), "select", edit)


# --- runtime core ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("initializer", "value"), [("select", np.nan), ("offsets", np.inf), ("offsets", 1e30)]
)
def test_corrupted_weights_are_refused_at_load(tmp_path: Path, initializer: str, value) -> None:
    def edit(values: np.ndarray) -> np.ndarray:
        values[...] = value
        return values

    path = corrupt(base_model(tmp_path), initializer, edit)
    import onnxruntime as ort

    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # it does load
    with pytest.raises(ModelLoadError, match=r"self-test .*corrupted weights"):
        OnnxPolicy(path)


def test_huge_weights_that_pass_the_self_test_are_refused_at_run_time(tmp_path: Path) -> None:
    path = corrupt(base_model(tmp_path), "select", lambda s: s * 1e30)
    policy = OnnxPolicy(path)  # zero state: zero actions, the self-test passes
    state = np.concatenate([HOME_POSITION, [-HOME_POSITION[-1]]])
    with pytest.raises(PolicyOutputError, match=r"\|action\| > 100"):
        policy.predict_chunk(BLACK, state)
    assert policy.invalid_outputs == 1


def test_an_input_that_makes_the_model_return_nan_gives_no_chunk(tmp_path: Path) -> None:
    policy = OnnxPolicy(nan_for_open_fingers_model(tmp_path))
    state = np.concatenate([HOME_POSITION, [-HOME_POSITION[-1]]])
    chunk = policy.predict_chunk(BLACK, state)
    assert np.isfinite(chunk.actions).all()
    state[6], state[7] = 2.0, -2.0
    with pytest.raises(PolicyOutputError, match="NaN/inf") as info:
        policy.predict_chunk(BLACK, state)
    assert isinstance(info.value, InputError)  # callers that catch InputError still hold
    assert policy.invalid_outputs == 1


def test_max_abs_action_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="max_abs_action"):
        OnnxPolicy(base_model(tmp_path), max_abs_action=float("nan"))


def _executor() -> ChunkExecutor:
    return ChunkExecutor(ChunkExecutorConfig(control_rate_hz=50.0), widowx_joint_limits())


def test_executor_refuses_a_chunk_whose_data_became_non_finite() -> None:
    """ActionChunk validates when built, but its array stays writable: the executor checks
    again, so one NaN can never reach the interpolation (where it failed every later tick)."""
    executor = _executor()
    q = np.asarray(HOME_POSITION, dtype=np.float64)
    good = ActionChunk(np.tile(q, (5, 1)), 0.1, ACTIONS, "widowx_joint_position", 10.0)
    assert executor.submit(good, 10.0)
    first = executor.command(10.02, q)
    bad = ActionChunk(np.tile(q, (5, 1)), 0.1, ACTIONS, "widowx_joint_position", 10.05)
    bad.actions[2, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        executor.submit(bad, 10.05)
    assert executor.counters.chunks_refused_invalid == 1
    commands = [executor.command(10.04 + 0.02 * k, q) for k in range(60)]
    assert first is not None and all(c is not None and np.isfinite(c).all() for c in commands)
    np.testing.assert_allclose(commands[-1], q)  # played out the good chunk and holds


# --- over DDS, real nodes --------------------------------------------------------------------
class _Feeder(PeriodicThread):
    """Images and joint states at 20 Hz, stamped with wall time; ``open_fingers`` reports the
    fingers at +-2 m (the input that makes the model return NaN)."""

    def __init__(self, probe: RosProbe) -> None:
        super().__init__(0.05)
        self.images = probe.publisher("/camera/camera/color/image_raw", Image, SENSOR_DATA)
        self.states = probe.publisher("/arm/joint_states", JointState)
        self.open_fingers = False
        self._rgb = np.full((48, 48, 3), 90, dtype=np.uint8)

    def step(self) -> None:
        stamp = seconds_to_stamp(time.time())
        self.images.publish(rgb_to_image(self._rgb, stamp, "camera"))
        q = np.concatenate([HOME_POSITION, [-HOME_POSITION[-1]]])
        if self.open_fingers:
            q[6], q[7] = 2.0, -2.0
        self.states.publish(numpy_to_joint_state(WIDOWX_STATE_JOINTS, q, stamp))


def _diagnostic(recording, name: str, key: str) -> str:
    return diagnostic_values(recording, name).get(key, "")


@pytest.mark.ros
def test_model_returning_nan_at_run_time_publishes_nothing_and_the_arm_holds(
    tmp_path: Path,
) -> None:
    model = nan_for_open_fingers_model(tmp_path, horizon=5)
    policy_cmd = node_command(
        "policy_node", "-r", "__node:=policy_nan", "-p", f"model_path:={model}"
    )
    executor_cmd = node_command("executor_node", "-r", "__node:=executor_nan")
    with (
        RosProbe("probe_policy_nan") as probe,
        start_process(executor_cmd) as executor,
        start_process(policy_cmd) as policy,
    ):
        chunks = probe.record("/policy/action_chunk", ActionChunkMsg)
        statuses = probe.record("/policy/status", PolicyStatus)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        commands = probe.record("/arm/joint_commands", JointState)
        with _Feeder(probe) as feeder:
            assert wait_for(lambda: len(chunks) >= 5 and len(commands) >= 20, 45.0), (
                policy.output() + executor.output()
            )
            feeder.open_fingers = True
            switched = time.time()
            assert wait_for(
                lambda: int(_diagnostic(diagnostics, "policy_nan", "invalid_outputs") or 0) > 3,
                15.0,
            ), policy.output()
            assert wait_for(
                lambda: any(
                    s.state == PolicyStatus.STATE_ERROR and "NaN/inf" in s.message
                    for s in statuses.messages()
                ),
                5.0,
            ), [s.message for s in statuses.messages()]
            time.sleep(2.0)  # the last good chunk (0.5 s long) has played out
            hold_from = time.monotonic()
            time.sleep(1.0)
            held = [m for t, m in commands.items() if t >= hold_from]
        assert policy.stop(signal.SIGINT) == 0
        assert executor.stop(signal.SIGINT) == 0
    late = [m for m in chunks.messages() if stamp_to_seconds(m.observation_stamp) > switched + 0.2]
    assert late == []  # no chunk computed from the NaN-making input
    for msg in chunks.messages():
        assert np.isfinite(np.frombuffer(msg.data, dtype=np.float32)).all()
    positions = np.array([np.asarray(m.position, dtype=np.float64) for m in commands.messages()])
    assert np.isfinite(positions).all()
    assert len(held) >= 20  # the executor keeps commanding ...
    held_q = np.array([np.asarray(m.position, dtype=np.float64) for m in held])
    assert np.ptp(held_q, axis=0).max() < 1e-9  # ... one constant position: it holds


def test_policy_node_refuses_a_model_with_corrupted_weights(tmp_path: Path) -> None:
    """The node process: exit code 2 and one line naming the model, before publishing anything."""
    import subprocess

    from ros_helpers import ros_env

    def edit(values: np.ndarray) -> np.ndarray:
        values[...] = np.nan
        return values

    path = corrupt(base_model(tmp_path), "select", edit)
    done = subprocess.run(
        node_command("policy_node", "-p", f"model_path:={path}"),
        capture_output=True,
        text=True,
        timeout=60,
        env=ros_env(),
    )
    assert done.returncode == 2, done
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "corrupted weights" in errors[0] and str(path) in errors[0], (
        done.stderr
    )
