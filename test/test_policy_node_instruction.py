"""A language-conditioned policy in policy_node: it waits, saying so, until it has a task
instruction (the ``instruction`` parameter or latched /task/instruction), and the instruction
reaches the model: another instruction, another chunk. A real exported DiT with a vocabulary
encoder, over DDS."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from human_video_policy_msgs.msg import PolicyStatus
from ros_helpers import RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from human_video_policy.export.diffusion_onnx import export_dit
from human_video_policy.nodes.conversions import (
    action_chunk_from_msg,
    numpy_to_joint_state,
    rgb_to_image,
    seconds_to_stamp,
)
from human_video_policy.nodes.qos import LATCHED, SENSOR_DATA
from human_video_policy.policies.dit.configuration_dit import DiTConfig
from human_video_policy.policies.dit.modeling_dit import DiTPolicy
from human_video_policy.robots.widowx import (
    HOME_POSITION,
    WIDOWX_COMMAND_JOINTS,
    WIDOWX_STATE_JOINTS,
)

pytestmark = pytest.mark.ros


def _vocab_policy(out: Path) -> Path:
    torch.manual_seed(0)
    config = DiTConfig(
        size="tiny", horizon=8, action_target="delta", image_key="observation.images.scene",
        language_encoder="vocab", vocabulary=("push", "press", "the", "button", "cube"),
    )  # fmt: skip
    model = DiTPolicy(config)
    with torch.no_grad():  # leave the zero-init so every path carries signal
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    export_dit(
        model.eval(), out, action_names=list(WIDOWX_COMMAND_JOINTS),
        state_names=list(WIDOWX_STATE_JOINTS), dt=0.1, seed=3,
    )  # fmt: skip
    return out


def test_the_policy_waits_for_an_instruction_and_hears_it(tmp_path: Path) -> None:
    model = _vocab_policy(tmp_path / "policy")
    command = node_command(
        "policy_node", "-r", "__node:=policy_words", "-p", f"model_path:={model}",
        "-p", """policy_args:='{"fixed_noise": true}'""",
    )  # fmt: skip
    with RosProbe("probe_words") as probe, start_process(command) as node:
        chunks = probe.record("/policy/action_chunk", ActionChunkMsg)
        statuses = probe.record("/policy/status", PolicyStatus)
        images = probe.publisher("/camera/camera/color/image_raw", Image, SENSOR_DATA)
        states = probe.publisher("/arm/joint_states", JointState)
        instruction = probe.publisher("/task/instruction", String, LATCHED)
        stop = threading.Event()

        def feed() -> None:
            rgb = np.full((64, 64, 3), 100, np.uint8)
            q = np.concatenate([HOME_POSITION, [-HOME_POSITION[-1]]])
            while not stop.is_set():
                stamp = seconds_to_stamp(time.time())
                images.publish(rgb_to_image(rgb, stamp, "camera"))
                states.publish(numpy_to_joint_state(WIDOWX_STATE_JOINTS, q, stamp))
                time.sleep(0.05)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            assert wait_for(
                lambda: any("no task instruction" in m.message for m in statuses.messages()), 30.0
            ), node.output()
            time.sleep(0.5)
            assert len(chunks) == 0  # no chunk without the task's words
            instruction.publish(String(data="push the cube"))
            assert wait_for(lambda: len(chunks) >= 5, 30.0), node.output()
            first = action_chunk_from_msg(chunks.messages()[-1]).actions
            again = action_chunk_from_msg(chunks.messages()[-2]).actions
            # fixed noise: the same image, state and words give the same chunk
            np.testing.assert_allclose(first, again, atol=1e-5)
            count = len(chunks)
            instruction.publish(String(data="press the button"))
            assert wait_for(lambda: len(chunks) >= count + 5, 30.0)
            second = action_chunk_from_msg(chunks.messages()[-1]).actions
            # a hostile instruction (far too long) is refused; the last good one stays
            instruction.publish(String(data="press " * 500))
            time.sleep(1.0)
            count = len(chunks)
            assert wait_for(lambda: len(chunks) >= count + 3, 30.0)
            kept = action_chunk_from_msg(chunks.messages()[-1]).actions
            np.testing.assert_allclose(kept, second, atol=1e-5)
            assert "refused" in node.output()
        finally:
            stop.set()
            feeder.join()
        assert node.stop() == 0, node.output()
    # the same image, state and noise, another instruction: the DiT's chunk changes
    assert np.abs(first - second).max() > 1e-4
