"""prompt_encoder_node as a real process over DDS: real MP4 files (written here with the project's
writer, and the shipped example hand video) through ~/encode and the video_path parameter,
frames on a topic, the transient-local embedding a late subscriber still gets, the cache by
content, unreadable / missing / too long videos refused with an empty embedding and an ERROR on
/diagnostics and then a good one recovering, and start failures (exit code 2)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from fixture_packages import install_plugin_fixture
from human_video_policy_msgs.msg import PromptEmbedding
from human_video_policy_msgs.srv import EncodePromptVideo
from ros_helpers import (
    Recording,
    RosProbe,
    diagnostic_values,
    node_command,
    ros_env,
    start_process,
    wait_for,
)
from sensor_msgs.msg import Image
from test_prompt_encoders import EXAMPLE_VIDEO, synthetic_clip, write_mp4

from human_video_policy.nodes.conversions import rgb_to_image, seconds_to_stamp
from human_video_policy.nodes.qos import LATCHED
from human_video_policy.runtime.prompt_encoders import KeyframesEncoder, read_video_frames

pytestmark = pytest.mark.ros

NODE = "prompt_encoder_test"
ENCODER_ID = "keyframes-8x16x16"


def _call(probe: RosProbe, path: str, timeout: float = 30.0) -> EncodePromptVideo.Response:
    client = probe.node.create_client(EncodePromptVideo, f"/{NODE}/encode")
    try:
        assert client.wait_for_service(timeout_sec=15.0), "~/encode never appeared"
        future = client.call_async(EncodePromptVideo.Request(video_path=path))
        assert wait_for(future.done, timeout), f"no answer for {path} in {timeout} s"
        return future.result()
    finally:
        probe.node.destroy_client(client)


def _latest(recording: Recording) -> PromptEmbedding:
    return recording.messages()[-1]


def _array(msg: PromptEmbedding) -> np.ndarray:
    return np.asarray(msg.data, np.float32).reshape(msg.num_tokens, msg.dims)


def _status(recording: Recording) -> DiagnosticStatus | None:
    for msg in reversed(recording.messages()):
        for status in msg.status:
            if status.name == NODE:
                return status
    return None


def _late_subscriber(probe: RosProbe) -> Recording:
    """A subscriber created now; transient-local gives it the last embedding at once."""
    late = probe.record("/prompt/embedding", PromptEmbedding, LATCHED)
    assert wait_for(lambda: len(late) >= 1, 10.0), "a late subscriber got no embedding"
    return late


def _assert_empty(msg: PromptEmbedding, source: str) -> None:
    assert (msg.num_tokens, msg.dims, len(msg.data)) == (0, 0, 0)
    assert msg.source == source and msg.encoder_id == ENCODER_ID


@pytest.mark.timeout(180)
def test_videos_are_encoded_cached_refused_and_recovered_from(tmp_path: Path) -> None:
    start_clip = write_mp4(tmp_path / "start.mp4", synthetic_clip(10, seed=1))
    clip = write_mp4(tmp_path / "clip.mp4", synthetic_clip(24, seed=2))
    copy = Path(shutil.copy(clip, tmp_path / "same_content_other_name.mp4"))
    other = write_mp4(tmp_path / "other.mp4", synthetic_clip(16, seed=3))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
    missing = tmp_path / "missing.mp4"
    command = node_command(
        "prompt_encoder_node", "-r", f"__node:={NODE}",
        "-p", f"video_path:={start_clip}", "-p", "max_frames:=100",
    )  # fmt: skip
    with RosProbe("probe_prompt") as probe, start_process(command) as node:
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        # video_path is encoded at start, before this subscriber exists: it still arrives
        assert wait_for(
            lambda: diagnostic_values(diagnostics, NODE).get("published") == "1", 30.0
        ), node.output()
        first = _late_subscriber(probe)
        msg = _latest(first)
        assert msg.source == str(start_clip) and msg.encoder_id == ENCODER_ID
        assert (msg.num_tokens, msg.dims, len(msg.data)) == (8, 768, 8 * 768)

        embeddings = probe.record("/prompt/embedding", PromptEmbedding, LATCHED)
        reply = _call(probe, str(clip))
        assert reply.success, reply.message
        assert (reply.num_tokens, reply.dims, reply.encoder_id) == (8, 768, ENCODER_ID)
        assert reply.encode_ms > 0 and not reply.cached
        assert wait_for(lambda: _latest(embeddings).source == str(clip), 10.0)
        encoder = KeyframesEncoder()
        frames = read_video_frames(clip, 100, 1 << 30, encoder.input_size)
        expected = encoder.encode(frames)
        assert np.allclose(_array(_latest(embeddings)), expected, atol=1e-6)
        late = _late_subscriber(probe)  # created after the publication: gets it, and only it
        assert [m.source for m in late.messages()] == [str(clip)]

        cached = _call(probe, str(copy))
        assert cached.success and cached.cached and cached.encode_ms == 0.0, cached.message
        assert wait_for(lambda: _latest(embeddings).source == str(copy), 10.0)
        assert np.array_equal(_array(_latest(embeddings)), expected.astype(np.float32))

        refusals = [
            (str(garbage), "cannot open video"),
            (str(missing), "video file not found"),
            (str(EXAMPLE_VIDEO), "has 621 frames, more than max_frames=100"),
            ("", "video_path is empty"),
        ]
        for path, reason in refusals:
            reply = _call(probe, path)
            assert not reply.success and reason in reply.message, reply.message
            assert (reply.num_tokens, reply.dims, reply.encoder_id) == (0, 0, ENCODER_ID)
            assert wait_for(lambda p=path: _latest(embeddings).source == p, 10.0)
            _assert_empty(_latest(embeddings), path)
            assert wait_for(
                lambda r=reason: (
                    (s := _status(diagnostics)) is not None
                    and s.level == DiagnosticStatus.ERROR
                    and r in s.message
                ),
                10.0,
            ), _status(diagnostics)
        _assert_empty(_latest(_late_subscriber(probe)), "")  # a policy started now holds

        reply = _call(probe, str(other))  # a good video recovers
        assert reply.success and not reply.cached and reply.num_tokens == 8, reply.message
        assert wait_for(lambda: _latest(embeddings).source == str(other), 10.0)
        assert _latest(embeddings).num_tokens == 8
        assert wait_for(
            lambda: (
                (s := _status(diagnostics)) is not None
                and s.level == DiagnosticStatus.OK
                and diagnostic_values(diagnostics, NODE)["encodings"] == "3"
            ),
            10.0,
        ), _status(diagnostics)
        values = diagnostic_values(diagnostics, NODE)
        assert values["encoder_id"] == ENCODER_ID and values["last_source"] == str(other)
        assert (values["cache_hits"], values["cache_misses"], values["failures"]) == ("1", "3", "4")
        assert float(values["encode_ms_last"]) > 0 and values["last_error"] == ""
        assert (values["last_shape"], values["last_frames"]) == ("8x768", "16")
        assert node.popen.poll() is None, node.output()
        assert node.stop() == 0, node.output()


class _Frames:
    def __init__(self, probe: RosProbe, topic: str) -> None:
        self.publisher = probe.publisher(topic, Image, 10)  # reliable: matches sensor-data QoS
        assert probe.wait_for_subscribers(self.publisher), f"nobody subscribes {topic}"
        time.sleep(1.0)  # the node's side of discovery: else its first frame can be lost

    def send(self, frames: np.ndarray, encoding: str = "rgb8") -> None:
        for frame in frames:
            image = rgb_to_image(frame, seconds_to_stamp(time.time()), "camera_color_optical_frame")
            if encoding != "rgb8":
                image.encoding = encoding
            self.publisher.publish(image)
            time.sleep(0.02)


@pytest.mark.timeout(180)
def test_frames_on_a_topic_form_a_clip_bounded_by_max_frames() -> None:
    topic = "/test_prompt/color/image_raw"
    command = node_command(
        "prompt_encoder_node", "-r", f"__node:={NODE}", "-p", f"frames_topic:={topic}",
        "-p", "clip_gap_s:=0.4", "-p", "max_frames:=12", "-p", "encoder_args:='{\"size\": 8}'",
    )  # fmt: skip
    source = f"topic:{topic}"
    with RosProbe("probe_prompt_frames") as probe, start_process(command) as node:
        embeddings = probe.record("/prompt/embedding", PromptEmbedding, LATCHED)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        frames = _Frames(probe, topic)

        frames.send(synthetic_clip(6, 24, 32))
        assert wait_for(lambda: len(embeddings) == 1, 20.0), node.output()
        msg = _latest(embeddings)
        assert msg.source == source and msg.encoder_id == "keyframes-8x8x8"
        assert (msg.num_tokens, msg.dims) == (8, 8 * 8 * 3)
        assert np.all(np.isfinite(_array(msg))) and np.abs(_array(msg)).max() > 0.1
        clip_frames = lambda: diagnostic_values(diagnostics, NODE).get("last_frames")  # noqa: E731
        assert wait_for(lambda: clip_frames() == "6", 5.0), clip_frames()

        frames.send(synthetic_clip(30, 24, 32, seed=4))  # > max_frames: refused, not cut
        assert wait_for(lambda: len(embeddings) == 2, 20.0), node.output()
        refused = _latest(embeddings)
        assert (refused.num_tokens, refused.dims, len(refused.data)) == (0, 0, 0)
        assert refused.source == source and refused.encoder_id == "keyframes-8x8x8"
        assert wait_for(
            lambda: (
                (s := _status(diagnostics)) is not None
                and s.level == DiagnosticStatus.ERROR
                and "more than max_frames=12 frames: refused, not truncated" in s.message
            ),
            10.0,
        ), _status(diagnostics)

        frames.send(synthetic_clip(3, 24, 32, seed=5), encoding="bgr8")  # the next clip
        assert wait_for(lambda: len(embeddings) == 3, 20.0), node.output()
        assert _latest(embeddings).num_tokens == 8  # recovered
        assert wait_for(lambda: (s := _status(diagnostics)) and s.level == DiagnosticStatus.OK, 10)
        assert node.stop() == 0, node.output()


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = install_plugin_fixture(tmp_path_factory.mktemp("plugin"))
    base = ros_env()
    return {**base, "PYTHONPATH": f"{site}{os.pathsep}{base['PYTHONPATH']}"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["encoder:=no_such_encoder"], "encoder='no_such_encoder' is unknown: choose one of"),
        (["encoder:=broken_encoder"], "'broken_encoder' (hvp_hold_policy.missing_module:make_"),
        (["encoder_args:='[8]'"], "encoder_args='[8]' must be a JSON object"),
        (["encoder_args:='{\"num_tokens\": 0}'"], "num_tokens=0 is invalid"),
        (["max_frames:=0"], "parameter max_frames=0 is invalid"),
        (["frames_topic:=not a topic"], "parameter frames_topic='not a topic' is invalid"),
    ],
)
def test_a_bad_encoder_or_parameter_ends_the_node_at_start_with_exit_2(
    plugin_env: dict[str, str], params: list[str], message: str
) -> None:
    args = [a for p in params for a in ("-p", p)]
    command = node_command("prompt_encoder_node", "-r", f"__node:={NODE}", *args)
    with start_process(command, env=plugin_env) as process:
        assert process.wait(timeout=60) == 2, process.output()
        lines = [line for line in process.output().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{NODE}: error: "), lines
    assert message in lines[0], lines[0]


@pytest.mark.timeout(120)
def test_a_plugin_encoder_that_returns_nan_is_reported_and_the_node_keeps_serving(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    clip = write_mp4(tmp_path / "clip.mp4", synthetic_clip(8))
    args = json.dumps({"nan": True})
    command = node_command(
        "prompt_encoder_node", "-r", f"__node:={NODE}",
        "-p", "encoder:=mean_colour", "-p", f"encoder_args:='{args}'",
    )  # fmt: skip
    with RosProbe("probe_prompt_plugin") as probe, start_process(command, env=plugin_env) as node:
        embeddings = probe.record("/prompt/embedding", PromptEmbedding, LATCHED)
        for _ in range(2):  # the second call is answered too: the node survived the first
            reply = _call(probe, str(clip))
            assert not reply.success and reply.encoder_id == "mean_colour-nan"
            assert "returned 24 non-finite values" in reply.message, reply.message
        assert wait_for(lambda: len(embeddings) >= 1, 10.0)
        msg = _latest(embeddings)
        assert (msg.num_tokens, msg.dims, msg.source) == (0, 0, str(clip))
        assert node.popen.poll() is None and node.stop() == 0, node.output()
