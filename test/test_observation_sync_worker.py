"""The policy node's pure parts: observation synchronisation and the inference thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from human_video_policy.errors import ConfigError
from human_video_policy.runtime.inference_worker import InferenceWorker
from human_video_policy.runtime.observation_sync import Observation, ObservationSync, Refusal


def _image(value: int) -> np.ndarray:
    return np.full((2, 2, 3), value, np.uint8)


def test_pairs_the_newest_image_with_the_closest_joint_state() -> None:
    sync = ObservationSync(tolerance_s=0.02, max_age_s=0.5)
    for i in range(10):  # joint states at 100 Hz: 1.00 .. 1.09
        sync.state.add(1.0 + 0.01 * i, np.array([float(i)]))
    sync.image.add(1.0, _image(1))
    sync.image.add(1.062, _image(2))
    obs = sync.assemble(now=1.1)
    assert isinstance(obs, Observation)
    assert obs.stamp == 1.062 and obs.image[0, 0, 0] == 2
    assert obs.state[0] == 6.0  # the state at 1.06, not the newest (1.09)
    assert obs.skew_s["joint state"] == pytest.approx(-0.002)


@pytest.mark.parametrize(
    ("setup", "kind", "words"),
    [
        (lambda s: s.image.add(1.0, _image(1)), "missing", "no joint state received yet"),
        (lambda s: s.state.add(1.0, np.zeros(1)), "missing", "no image received yet"),
        (
            lambda s: (s.state.add(1.0, np.zeros(1)), s.image.add(1.0, _image(1))),
            "stale",
            "image is 0.600 s old",
        ),
        (
            lambda s: (s.state.add(1.5, np.zeros(1)), s.image.add(1.58, _image(1))),
            "unsynchronised",
            "no joint state within sync_tolerance_s=0.02 of the image (closest -0.080 s)",
        ),
        (
            lambda s: (
                s.state.add(1.58, np.zeros(1)),
                s.image.add(1.58, _image(1)),
                s.state.refuse("last joint state invalid: NaN"),
            ),
            "missing",
            "last joint state invalid: NaN",
        ),
    ],
)
def test_refuses_with_the_reason(setup, kind: str, words: str) -> None:
    sync = ObservationSync(tolerance_s=0.02, max_age_s=0.5)
    setup(sync)
    refusal = sync.assemble(now=1.6)
    assert isinstance(refusal, Refusal)
    assert refusal.kind == kind and words in refusal.reason


def test_depth_and_prompt_when_needed_and_time_going_back_clears_history() -> None:
    sync = ObservationSync(0.02, 0.5, needs_depth=True, needs_prompt=True)
    sync.state.add(2.0, np.zeros(1))
    sync.image.add(2.0, _image(1))
    refusal = sync.assemble(2.1)
    assert "no depth image received yet" in refusal.reason
    assert "no prompt embedding received yet" in refusal.reason
    sync.depth.add(2.01, np.ones((2, 2), np.float32))
    sync.set_prompt(np.ones((3, 4), np.float32))
    obs = sync.assemble(2.1)
    assert isinstance(obs, Observation) and obs.depth is not None and obs.prompt.shape == (3, 4)
    sync.clear_prompt("prompt cleared by the encoder")
    assert sync.assemble(2.1).reason == "prompt cleared by the encoder"
    sync.set_prompt(np.ones((3, 4), np.float32))
    sync.state.add(0.5, np.ones(1))  # a clock that went back: the 2.0 state must not pair
    sync.image.add(0.5, _image(3))
    sync.depth.add(0.5, np.zeros((2, 2), np.float32))
    obs = sync.assemble(0.6)
    assert obs.state[0] == 1.0 and len(sync.state.items) == 1
    with pytest.raises(ConfigError, match="tolerance_s"):
        ObservationSync(0.0, 0.5)


def test_without_image_the_state_leads() -> None:
    sync = ObservationSync(0.02, 0.5, needs_image=False)
    sync.state.add(3.0, np.array([7.0]))
    obs = sync.assemble(3.1)
    assert obs.stamp == 3.0 and obs.image is None and obs.state[0] == 7.0


def test_worker_runs_one_job_at_a_time_and_reports_results_and_errors() -> None:
    done: list[tuple] = []
    finished = threading.Event()

    def on_done(result, error, seconds):
        done.append((result, error, seconds))
        finished.set()

    worker = InferenceWorker(on_done, name="test-worker")
    release = threading.Event()
    assert worker.submit(lambda: release.wait(5) and "first")
    time.sleep(0.05)
    assert worker.busy and worker.busy_for() > 0.02
    assert not worker.submit(lambda: "refused while busy")
    release.set()
    assert finished.wait(5)
    deadline = time.monotonic() + 5
    while worker.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done[0][0] == "first" and done[0][1] is None and not worker.busy
    assert worker.busy_for() == 0.0
    finished.clear()

    def throws():
        raise RuntimeError("CUDA error: an illegal memory access")

    assert worker.submit(throws)
    assert finished.wait(5)
    assert isinstance(done[1][1], RuntimeError) and done[1][0] is None
    worker.close()
    assert not worker.submit(lambda: "after close")


def test_a_hung_job_is_visible_and_close_does_not_wait_for_it() -> None:
    worker = InferenceWorker(lambda *a: None, name="test-hang")
    never = threading.Event()
    assert worker.submit(lambda: never.wait(30))
    time.sleep(0.2)
    assert worker.busy_for() >= 0.15
    start = time.monotonic()
    worker.close(timeout=0.2)
    assert time.monotonic() - start < 1.0
    never.set()
