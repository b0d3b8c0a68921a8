"""VideoCameraSource on the real dexret hand video: the decoder's frames, at the file's rate."""

from __future__ import annotations

import math
import subprocess
import time
from itertools import islice, pairwise
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

from human_video_policy.camera import CameraIntrinsics
from human_video_policy.camera.video_source import VideoCameraSource, VideoSourceConfig
from human_video_policy.errors import ConfigError
from human_video_policy.video.reader import VideoReader

pytestmark = pytest.mark.timeout(60)

VIDEO = SHARED_DATA / "human_video" / "dexret_hand" / "human_hand_video.mp4"


def test_shared_video_is_present() -> None:
    assert VIDEO.is_file(), f"shared test data missing: {VIDEO} (see ../shared/data/SOURCES.md)"


def test_frames_equal_the_decoders_at_the_files_rate() -> None:
    # More decoded frames than read: a busy machine makes the source drop frames, like a camera.
    expected = [f.rgb for f in islice(VideoReader(VIDEO), 120)]
    with VideoCameraSource(VideoSourceConfig(path=str(VIDEO))) as source:
        assert source.rate_hz == pytest.approx(30.0)
        started = time.monotonic()
        frames = [source.read(1.0) for _ in range(12)]
        elapsed = time.monotonic() - started
    assert all(f is not None for f in frames)
    # Paced like a camera: 12 frames at 30 Hz take ~11 periods (the first is due at once).
    assert elapsed >= 11 / 30.0 - 0.01
    for frame in frames:
        assert np.array_equal(frame.color_rgb, expected[frame.frame_number])
    indices = [f.frame_number for f in frames]
    stamps = np.array([f.stamp_s for f in frames])
    assert indices == sorted(indices) and indices[0] == 0
    # Stamps are start + index / rate exactly (dropped frames leave gaps, never jitter).
    assert np.allclose(np.diff(stamps), np.diff(indices) / 30.0, atol=1e-6)
    assert source.stats.frames == 12
    assert source.stats.dropped == indices[-1] - 11


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """The first 30 frames of the shared video, 320x180, re-encoded by the ffmpeg CLI."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(VIDEO),
            "-frames:v",
            "30",
            "-vf",
            "scale=320:180",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def test_rate_override_loop_and_end_of_file(clip: Path) -> None:
    count = VideoReader(clip).frame_count
    assert count == 30
    expected = [f.rgb for f in VideoReader(clip)]
    cfg = VideoSourceConfig(path=str(clip), rate_hz=200.0, loop=True)
    with VideoCameraSource(cfg) as source:
        assert source.rate_hz == 200.0
        frames = [source.read(1.0) for _ in range(2 * count)]
    assert all(f is not None for f in frames)
    numbers = [f.frame_number for f in frames]
    assert any(b < a for a, b in pairwise(numbers)), f"never looped {numbers}"
    for frame in frames:
        assert np.array_equal(frame.color_rgb, expected[frame.frame_number])
    with VideoCameraSource(VideoSourceConfig(path=str(clip), rate_hz=1000.0)) as source:
        seen = 0
        while source.read(1.0) is not None:
            seen += 1
        assert source.finished and 0 < seen <= count
        assert seen + source.stats.dropped == count


def test_intrinsics_from_parameters_or_a_field_of_view() -> None:
    given = VideoCameraSource(
        VideoSourceConfig(path=str(VIDEO), fx=900.0, fy=905.0, cx=640.0, cy=360.0)
    ).color_intrinsics
    assert (given.width, given.height, given.fx, given.fy, given.cx, given.cy) == (
        1280,
        720,
        900.0,
        905.0,
        640.0,
        360.0,
    )
    estimated = VideoCameraSource(VideoSourceConfig(path=str(VIDEO))).color_intrinsics
    assert estimated.fx == pytest.approx(640.0 / math.tan(math.radians(69.0) / 2.0))
    assert estimated.cx == pytest.approx(639.5) and estimated.cy == pytest.approx(359.5)
    wide = CameraIntrinsics.from_fov(100, 50, 90.0, "f")
    assert wide.fx == pytest.approx(50.0) and wide.fy == wide.fx


def test_missing_and_unreadable_videos_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"video_path=.*file not found"):
        VideoSourceConfig(path=str(tmp_path / "missing.mp4"))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 1000)
    with pytest.raises(ConfigError, match=r"video_path=.*garbage\.mp4"):
        VideoCameraSource(VideoSourceConfig(path=str(garbage)))
    with pytest.raises(ConfigError, match="fx"):
        VideoSourceConfig(path=str(VIDEO), fx=500.0)
