"""Video reader + MediaPipe hand tracker on the real dexret_hand video (shared/data/SOURCES.md).

3D check: the reference ``human_joint_right.npy`` is dex-retargeting's output for this video:
MediaPipe world landmarks minus the wrist, rotated into the MANO wrist frame that
dex-retargeting estimates from wrist, index MCP and middle MCP (SingleHandDetector
``estimate_frame_from_hand_points`` then ``OPERATOR2MANO_RIGHT``). That frame estimate is
reproduced below (no per-frame alignment, no scaling), so the error measures the tracker alone.
The whole video is tracked once (about 25 s at 720p on 2 CPU cores) and shared by the tests.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.keypoints import MIDDLE_MCP
from human_video_policy.hands.tracker import (
    FrameHands,
    HandTracker,
    MediaPipeHandsConfig,
    MediaPipeHandTracker,
)
from human_video_policy.hands.wrist_pose import to_mano_wrist_frame
from human_video_policy.video import VideoReader

DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "human_video" / "dexret_hand"
)
VIDEO = DATA / "human_hand_video.mp4"
REFERENCE = DATA / "human_joint_right.npy"
NUM_FRAMES = 621


def _require(path: Path) -> Path:
    assert path.is_file(), f"shared test data missing: {path} (see shared/data/SOURCES.md)"
    return path


@pytest.fixture(scope="module")
def tracked() -> tuple[VideoReader, list[FrameHands], float]:
    reader = VideoReader(_require(VIDEO))
    # dex-retargeting's settings when it produced the reference.
    config = MediaPipeHandsConfig(
        max_num_hands=2, min_detection_confidence=0.75, min_tracking_confidence=0.75
    )
    with MediaPipeHandTracker(config) as tracker:
        start = time.perf_counter()
        frames = list(tracker.track_video(reader))
        seconds = time.perf_counter() - start
    return reader, frames, seconds


def test_reader_reports_the_video(tracked) -> None:
    reader, frames, seconds = tracked
    assert (reader.width, reader.height, reader.fps, len(reader)) == (1280, 720, 30.0, NUM_FRAMES)
    assert reader.rotation_deg == 0
    assert reader.frames_read == NUM_FRAMES and not reader.truncated
    assert [f.index for f in frames] == list(range(NUM_FRAMES))
    stamps = np.array([f.stamp_s for f in frames])
    assert np.allclose(stamps, np.arange(NUM_FRAMES) / 30.0, atol=1e-3)
    print(f"tracking: {NUM_FRAMES / seconds:.1f} frames/s at 1280x720")


def test_hand_found_in_99_percent_of_frames(tracked) -> None:
    _, frames, _ = tracked
    found = [f.index for f in frames if f.hand("right") is not None]
    rate = len(found) / NUM_FRAMES
    assert rate >= 0.99, f"right hand found in {len(found)}/{NUM_FRAMES} frames ({rate:.1%})"
    # One right hand: the legacy API's mirrored label must have been corrected.
    assert all(h.handedness == "right" for f in frames for h in f.hands)
    det = frames[found[0]].hand("right")
    assert det.keypoints_px.shape == (21, 2) and det.keypoints_world.shape == (21, 3)
    assert 0 < det.confidence <= 1
    assert (det.keypoints_px[:, 0] > -50).all() and (det.keypoints_px[:, 0] < 1330).all()
    # World landmarks are metric: wrist to middle MCP of an adult hand is 6-12 cm.
    assert 0.06 < np.linalg.norm(det.keypoints_world[MIDDLE_MCP] - det.keypoints_world[0]) < 0.12


def test_3d_keypoints_match_dex_retargeting_reference(tracked) -> None:
    _, frames, _ = tracked
    reference = np.load(_require(REFERENCE))
    assert reference.shape == (NUM_FRAMES, 21, 3)
    errors = []
    for f in frames:
        det = f.hand("right")
        if det is None:
            continue
        ours = to_mano_wrist_frame(det.keypoints_wrist_relative)
        errors.append(np.linalg.norm(ours - reference[f.index], axis=1)[1:])  # wrist is 0
    err_mm = np.concatenate(errors) * 1000.0
    median, p95 = float(np.median(err_mm)), float(np.percentile(err_mm, 95))
    print(f"3D keypoint error vs reference: median {median:.2f} mm, p95 {p95:.2f} mm")
    assert median <= 5.0, f"median 3D error {median:.2f} mm > 5 mm (p95 {p95:.2f} mm)"


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        VideoReader(tmp_path / "nope.mp4")


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"corrupt|no decodable"):
        VideoReader(bad)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError):
        VideoReader(empty)


def test_truncated_video_gives_its_frames_or_a_clear_error(tmp_path: Path) -> None:
    data = _require(VIDEO).read_bytes()
    cut = tmp_path / "truncated.mp4"
    cut.write_bytes(data[: int(0.4 * len(data))])
    try:
        reader = VideoReader(cut)
    except InputError as exc:  # this file keeps its index (moov) at the end: nothing decodable
        assert str(cut) in str(exc)
        return
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        frames = list(reader)
    assert 0 < len(frames) < NUM_FRAMES and reader.truncated
    assert all(f.rgb.shape == (720, 1280, 3) and f.rgb.dtype == np.uint8 for f in frames)


def test_truncated_indexless_video_yields_only_real_frames(tmp_path: Path) -> None:
    """A container readable without its index (AVI): the frames before the cut, bit-identical
    to the same frames of the whole file, then ``truncated`` and a warning."""
    import cv2

    full, cut = tmp_path / "full.avi", tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(30):
        writer.write(np.full((48, 64, 3), 8 * i, np.uint8))
    writer.release()
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    whole = [f.rgb for f in VideoReader(full)]
    assert len(whole) == 30
    reader = VideoReader(cut)
    with pytest.warns(UserWarning, match="truncated"):
        frames = list(reader)
    assert 0 < len(frames) < 30 and reader.truncated and reader.frames_read == len(frames)
    for f in frames:
        assert np.array_equal(f.rgb, whole[f.index]), f"frame {f.index} differs from the original"


def test_no_hand_gives_an_empty_list() -> None:
    with MediaPipeHandTracker(MediaPipeHandsConfig(static_image_mode=True)) as tracker:
        assert isinstance(tracker, HandTracker)
        assert tracker.track(np.zeros((720, 1280, 3), np.uint8)) == []
        with pytest.raises(InputError, match="uint8"):
            tracker.track(np.zeros((720, 1280, 3), np.float32))
        with pytest.raises(InputError, match="uint8"):
            tracker.track(np.zeros((720, 1280), np.uint8))
    with pytest.raises(InputError, match="closed"):
        tracker.track(np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize(
    "change",
    [
        {"max_num_hands": 0},
        {"min_detection_confidence": 1.5},
        {"min_tracking_confidence": -0.1},
        {"model_complexity": 2},
        {"static_image_mode": "yes"},
    ],
)
def test_config_is_validated(change: dict) -> None:
    with pytest.raises(ConfigError):
        dataclasses.replace(MediaPipeHandsConfig(), **change)


def test_mirrored_label_is_configurable() -> None:
    with MediaPipeHandTracker(MediaPipeHandsConfig(static_image_mode=True)) as normal:
        assert normal._label("Left") == "right"
    with MediaPipeHandTracker(
        MediaPipeHandsConfig(static_image_mode=True, image_is_mirrored=True)
    ) as mirrored:
        assert mirrored._label("Left") == "left"
