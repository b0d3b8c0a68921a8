"""The camera node over real DDS: injected RealSense frames, a recording and a video on the
realsense-ros topics, unchanged; bad parameters end it with exit code 2 and one line.

- in process: a CameraNode publishes a RealSenseSource over pyrealsense2's software device
  (the SDK cannot be shared with a child process); a probe in another rclpy context receives;
- as a process (``python -m human_video_policy.nodes.camera_node``): ``source:=playback`` of a
  recording of that software device, ``source:=video`` of the shared hand video, bad inputs.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from conftest import SHARED_DATA
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from ros_helpers import RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import CameraInfo, Image
from test_realsense_source import (
    COLOR_K,
    DEPTH_K,
    SERIAL,
    H,
    SoftwareCamera,
    W,
    color_pattern,
    config,
    record,
)

from human_video_policy.camera.realsense_source import RealSenseSource
from human_video_policy.nodes.camera_node import CameraNode
from human_video_policy.nodes.conversions import image_to_numpy, stamp_to_seconds
from human_video_policy.nodes.qos import SENSOR_DATA
from human_video_policy.video.reader import VideoReader

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]

PREFIX = "/camera/camera"
VIDEO = SHARED_DATA / "human_video" / "dexret_hand" / "human_hand_video.mp4"


def _record_topics(probe: RosProbe, depth: bool = True) -> dict[str, object]:
    topics = {"color": (f"{PREFIX}/color/image_raw", Image)}
    topics["color_info"] = (f"{PREFIX}/color/camera_info", CameraInfo)
    if depth:
        topics["depth"] = (f"{PREFIX}/depth/image_rect_raw", Image)
        topics["depth_info"] = (f"{PREFIX}/depth/camera_info", CameraInfo)
        topics["aligned"] = (f"{PREFIX}/aligned_depth_to_color/image_raw", Image)
        topics["aligned_info"] = (f"{PREFIX}/aligned_depth_to_color/camera_info", CameraInfo)
    return {k: probe.record(t, m, SENSOR_DATA) for k, (t, m) in topics.items()}


def _frame_index(image: Image) -> int:
    """Which injected colour pattern an image carries (-1 if none)."""
    pixels = image_to_numpy(image)
    for k in range(200):
        if np.array_equal(pixels, color_pattern(k)):
            return k
    return -1


class InProcessNode:
    """A CameraNode in its own rclpy context, its main loop and executor in threads."""

    def __init__(self, source: RealSenseSource) -> None:
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = CameraNode(source=source, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.stop = threading.Event()
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._run = threading.Thread(target=self.node.run, args=(self.stop,), daemon=True)
        self._spin.start()
        self._run.start()

    def close(self) -> None:
        self.stop.set()
        self._run.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=5.0)
        self._spin.join(timeout=5.0)
        self.node.close()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def test_injected_realsense_frames_reach_the_topics_unchanged() -> None:
    camera = SoftwareCamera()
    source = RealSenseSource(config(), context=camera.context)
    source.start()
    with RosProbe("probe_camera") as probe:
        rec = _record_topics(probe)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        node = InProcessNode(source)
        try:
            assert wait_for(lambda: node.node._color_pub.get_subscription_count() > 0, 10.0)
            pusher = camera.stream(range(40))
            assert wait_for(lambda: len(rec["color"]) >= 10 and len(rec["depth"]) >= 10, 15.0)
            pusher.join()
            assert wait_for(
                lambda: any(s.name == "camera" for m in diagnostics.messages() for s in m.status),
                5.0,
            )
        finally:
            node.close()

    colors = rec["color"].messages()
    depth_by_stamp = {stamp_to_seconds(m.header.stamp): m for m in rec["depth"].messages()}
    info = rec["color_info"].messages()[-1]
    assert list(info.k) == [COLOR_K[0], 0.0, COLOR_K[2], 0.0, COLOR_K[1], COLOR_K[3], 0, 0, 1]
    assert (info.width, info.height) == (W, H)
    assert info.header.frame_id == "camera_color_optical_frame"
    depth_info = rec["depth_info"].messages()[-1]
    assert list(depth_info.k) == [DEPTH_K[0], 0.0, DEPTH_K[2], 0.0, DEPTH_K[1], DEPTH_K[3], 0, 0, 1]
    assert depth_info.header.frame_id == "camera_depth_optical_frame"
    aligned = rec["aligned"].messages()[-1]
    assert aligned.header.frame_id == "camera_color_optical_frame" and aligned.encoding == "16UC1"
    assert (aligned.width, aligned.height) == (W, H)
    assert list(rec["aligned_info"].messages()[-1].k) == list(info.k)

    matched = 0
    indices = []
    for image in colors:
        assert image.encoding == "rgb8" and image.header.frame_id == "camera_color_optical_frame"
        k = _frame_index(image)
        assert k >= 0, "a published colour image is none of the injected ones"
        indices.append(k)
        stamp = stamp_to_seconds(image.header.stamp)
        depth = depth_by_stamp.get(stamp)
        if depth is not None:  # same capture: same stamp on every topic
            assert depth.encoding == "16UC1"
            assert depth.header.frame_id == "camera_depth_optical_frame"
            values = image_to_numpy(depth)
            # the depth frame paired with colour k is k or its neighbour (the SDK's syncer)
            assert any(
                np.array_equal(values, camera.depth_fn(j)) for j in (k - 1, k, k + 1) if j >= 0
            ), f"depth published with colour frame {k} is none of the injected ones"
            matched += 1
    assert matched >= 5
    assert indices == sorted(indices)
    # Stamps: device clock (hardware_clock, from 5 s) mapped to host time, device spacing kept.
    stamps = np.array([stamp_to_seconds(m.header.stamp) for m in colors])
    device = np.array([camera.timestamp_ms(k) / 1000.0 for k in indices])
    assert abs(stamps[-1] - time.time()) < 5.0
    offsets = stamps - device
    assert offsets.max() - offsets.min() < 0.05
    values = {
        kv.key: kv.value
        for m in diagnostics.messages()
        for s in m.status
        if s.name == "camera"
        for kv in s.values
    }
    for key in ("latency_ms_median", "dropped_frames", "reconnects", "rate_hz", "serial_no"):
        assert key in values, values
    assert values["serial_no"] == SERIAL


def _run_node(*params: str, timeout: float = 30.0) -> tuple[int, str]:
    with start_process(node_command("camera_node", *params)) as process:
        try:
            code = process.wait(timeout)
        except Exception:
            code = process.stop(signal.SIGINT)
        return code, process.output()


def test_a_recording_plays_back_on_the_topics(tmp_path: Path) -> None:
    camera = SoftwareCamera()
    path = tmp_path / "software_camera.db3"
    record(camera, path, range(12))
    with RosProbe("probe_camera_playback") as probe:
        rec = _record_topics(probe)
        # Looping, so that frames keep coming until discovery has matched the probe.
        command = node_command(
            "camera_node", "-p", "source:=playback", "-p", f"bag_path:={path}", "-p", "loop:=true"
        )
        with start_process(command) as process:
            assert wait_for(lambda: len(rec["color"]) >= 5, 30.0), process.output()
            code = process.stop(signal.SIGINT)
            output = process.output()
        assert code == 0, output
    colors = rec["color"].messages()
    assert len(colors) >= 5, output
    for image in colors:
        k = _frame_index(image)
        assert 0 <= k < 12
    for depth in rec["depth"].messages():
        values = image_to_numpy(depth)
        assert any(np.array_equal(values, camera.depth_fn(j)) for j in range(12))
    info = rec["color_info"].messages()[-1]
    assert list(info.k) == [COLOR_K[0], 0.0, COLOR_K[2], 0.0, COLOR_K[1], COLOR_K[3], 0, 0, 1]


def test_the_hand_video_is_published_as_a_camera_at_its_rate() -> None:
    assert VIDEO.is_file(), f"shared test data missing: {VIDEO}"
    expected = {}
    for frame in VideoReader(VIDEO):
        expected[frame.rgb[::40, ::40].tobytes()] = (frame.index, frame.rgb)
        if frame.index >= 120:
            break
    with RosProbe("probe_camera_video") as probe:
        rec = _record_topics(probe, depth=False)
        with start_process(
            node_command("camera_node", "-p", "source:=video", "-p", f"video_path:={VIDEO}")
        ) as process:
            assert wait_for(lambda: len(rec["color"]) >= 15, 30.0), process.output()
            code = process.stop(signal.SIGINT)
            output = process.output()
    assert code == 0, output
    images = rec["color"].messages()
    indices = []
    for image in images[:15]:
        pixels = image_to_numpy(image)
        assert pixels.shape == (720, 1280, 3)
        key = pixels[::40, ::40].tobytes()
        assert key in expected, "a published frame is none of the decoder's first frames"
        index, rgb = expected[key]
        assert np.array_equal(pixels, rgb)
        indices.append(index)
    stamps = np.array([stamp_to_seconds(m.header.stamp) for m in images[:15]])
    assert indices == sorted(indices)
    # Stamps follow the file's rate: a frame's stamp is start + index / 30, so consecutive
    # frames are index-gaps / 30 apart; a source that fell behind by more than a frame moves its
    # schedule later (a camera's host clock), which only ever lengthens a gap.
    gaps, expected_gaps = np.diff(stamps), np.diff(indices) / 30.0
    assert np.all(gaps >= expected_gaps - 1e-6), (gaps, expected_gaps)
    exact = np.isclose(gaps, expected_gaps, atol=1e-6)
    assert exact.sum() >= len(gaps) - 2, (gaps, expected_gaps)
    info = rec["color_info"].messages()[-1]
    assert (info.width, info.height) == (1280, 720)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["source:=webcam"], "source='webcam' is invalid"),
        (["source:=video", "video_path:=/nonexistent/hand.mp4"], "video_path='/nonexistent"),
        (["source:=playback"], "bag_path='' is invalid"),
        (["source:=realsense", "serial_no:=123456789"], "serial_no='123456789' is invalid"),
        (["source:=realsense", "fps:=0"], "fps=0 is invalid"),
    ],
)
def test_bad_parameters_exit_2_with_one_line(params: list[str], message: str) -> None:
    args = [a for p in params for a in ("-p", p)]
    code, output = _run_node(*args)
    assert code == 2, output
    assert message in output, output
    assert "Traceback" not in output


def test_an_unreadable_video_exits_2(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 1000)
    code, output = _run_node("-p", "source:=video", "-p", f"video_path:={garbage}")
    assert code == 2, output
    assert "garbage.mp4" in output and "Traceback" not in output
