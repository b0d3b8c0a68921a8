"""Safety at the seam between policy and robot: policy_node running a plugin that throws,
returns NaN, wrong shapes or no chunk at all, hangs, or is slow; inputs that go stale or out of
sync. Each time: no chunk goes out, the reason is on /policy/status and /diagnostics, and the
node recovers by itself when the policy and inputs behave again. Real process, real DDS."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from fixture_packages import install_plugin_fixture
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import PolicyStatus
from ros_helpers import RosProbe, diagnostic_values, node_command, ros_env, start_process, wait_for
from sensor_msgs.msg import JointState

from human_video_policy.nodes.conversions import numpy_to_joint_state, seconds_to_stamp
from human_video_policy.robots.widowx import HOME_POSITION, WIDOWX_STATE_JOINTS

pytestmark = pytest.mark.ros

NODE = "policy_faults"


class _States:
    """Joint states at 50 Hz stamped with wall time; ``lag_s`` stamps them in the past."""

    def __init__(self, probe: RosProbe) -> None:
        self.publisher = probe.publisher("/arm/joint_states", JointState)
        self.lag_s = 0.0
        self.paused = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        q = np.concatenate([HOME_POSITION, [-HOME_POSITION[-1]]])
        while not self._stop.is_set():
            if not self.paused:
                stamp = seconds_to_stamp(time.time() - self.lag_s)
                self.publisher.publish(numpy_to_joint_state(WIDOWX_STATE_JOINTS, q, stamp))
            time.sleep(0.02)

    def __enter__(self) -> _States:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_misbehaving_policy_holds_the_robot_reports_why_and_recovers(tmp_path: Path) -> None:
    site = install_plugin_fixture(tmp_path / "plugin")
    control = tmp_path / "mode"
    control.write_text("ok")
    base = ros_env()
    env = {**base, "PYTHONPATH": f"{site}{os.pathsep}{base['PYTHONPATH']}"}
    args = f'{{"control": "{control}"}}'
    command = node_command(
        "policy_node", "-r", f"__node:={NODE}", "-p", "policy:=faulty",
        "-p", f"policy_args:='{args}'", "-p", "inference_timeout_s:=0.5",
        "-p", "max_input_age_s:=0.3",
    )  # fmt: skip
    with RosProbe("probe_faults") as probe, start_process(command, env=env) as node:
        chunks = probe.record("/policy/action_chunk", ActionChunkMsg)
        statuses = probe.record("/policy/status", PolicyStatus)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)

        def counter(key: str) -> int:
            return int(diagnostic_values(diagnostics, NODE).get(key, 0))

        def status_says(state: int, words: str) -> bool:
            return any(m.state == state and words in m.message for m in statuses.messages())

        def running_again(after: int) -> bool:
            return len(chunks) >= after + 3 and statuses.messages()[-1].state == 2

        def no_chunk_for(seconds: float) -> None:
            before = len(chunks)
            time.sleep(seconds)
            assert len(chunks) == before, f"chunks went out during a fault: {node.output()}"

        with _States(probe) as states:
            assert wait_for(lambda: len(chunks) >= 5, 60.0), node.output()
            assert wait_for(lambda: "warmup_ms" in diagnostic_values(diagnostics, NODE), 5.0)
            assert float(diagnostic_values(diagnostics, NODE)["warmup_ms"]) >= 0.0
            first = statuses.messages()[-1]
            assert first.execution_provider and first.chunk_index >= 1

            for mode, words in [
                ("throw", "RuntimeError: CUDA failure"),
                ("nan", "NaN"),
                ("shape", "differ from the policy's"),
                ("not_a_chunk", "not an ActionChunk"),
            ]:
                statuses.clear()
                control.write_text(mode)
                assert wait_for(lambda w=words: status_says(3, w), 10.0), (mode, node.output())
                no_chunk_for(0.5)
                control.write_text("ok")
                count = len(chunks)
                assert wait_for(lambda c=count: running_again(c), 10.0), (mode, node.output())

            # A hung call: reported while it hangs, its late chunk dropped, then recovery.
            statuses.clear()
            control.write_text("hang")
            assert wait_for(lambda: status_says(3, "has not returned"), 10.0), node.output()
            no_chunk_for(1.0)
            control.write_text("ok")
            count = len(chunks)
            assert wait_for(lambda: running_again(count), 10.0), node.output()
            for key, least in [
                ("inference_timeouts", 1),
                ("late_chunks_dropped", 1),
                ("inference_errors", 4),
                ("invalid_outputs", 3),
            ]:  # /diagnostics comes once a second
                assert wait_for(lambda k=key, n=least: counter(k) >= n, 5.0), (key, counter(key))

            # Stale inputs: no chunk, WAITING_FOR_INPUT with the age; fresh again: recovery.
            statuses.clear()
            states.lag_s = 1.0
            assert wait_for(lambda: status_says(1, "old (max_input_age_s=0.3)"), 10.0)
            no_chunk_for(0.5)
            states.lag_s = 0.0
            count = len(chunks)
            assert wait_for(lambda: running_again(count), 10.0), node.output()

            # A slow policy (0.3 s > the 0.1 s period): chunks keep coming, fewer of them.
            control.write_text("slow")
            time.sleep(0.5)
            count = len(chunks)
            time.sleep(2.0)
            assert 2 <= len(chunks) - count <= 9
            control.write_text("ok")
        assert node.stop() == 0, node.output()


def test_a_policy_that_does_not_fit_the_robot_ends_the_node_with_the_reason(
    tmp_path: Path,
) -> None:
    from human_video_policy.resources import default_policy_path

    command = node_command(
        "policy_node", "-p", f"model_path:={default_policy_path()}", "-p", "robot:=rm75_xhand"
    )
    with start_process(command) as node:
        assert node.wait(timeout=120) == 2, node.output()
        assert "does not fit robot 'rm75_xhand'" in node.output()
        assert "(parameter robot)" in node.output()
