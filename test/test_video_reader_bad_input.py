"""VideoReader on real bad and unusual videos made here with OpenCV and the ffmpeg CLI.

Rotation ground truth is ffmpeg's own decode, which applies the display-matrix rotation
(autorotate is on by default): the reader's frames must equal it, i.e. come out upright.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from human_video_policy.errors import InputError
from human_video_policy.video.reader import VideoReader

W, H, N = 64, 48, 12


def _ffmpeg(*args: str) -> None:
    assert shutil.which("ffmpeg"), "the ffmpeg CLI is required (scripts/setup.sh installs it)"
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *args], check=True)


def _asymmetric_frames() -> list[np.ndarray]:
    """BGR frames with a white top-left block and a red top-right bar (no symmetry), each
    frame a different grey level so frames can be told apart."""
    frames = []
    for i in range(N):
        img = np.full((H, W, 3), 10 * i, np.uint8)
        img[:16, :16] = 255
        img[:6, 40:] = (0, 0, 255)
        frames.append(img)
    return frames


@pytest.fixture(scope="module")
def plain_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    avi = folder / "source.avi"
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for frame in _asymmetric_frames():
        writer.write(frame)
    writer.release()
    mp4 = folder / "plain.mp4"
    _ffmpeg(
        "-i",
        str(avi),
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(mp4),
    )
    return mp4


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotation_metadata_gives_upright_frames(plain_mp4: Path, rotate: int) -> None:
    rotated = plain_mp4.with_name(f"rotate{rotate}.mp4")
    _ffmpeg("-i", str(plain_mp4), "-c", "copy", "-metadata:s:v", f"rotate={rotate}", str(rotated))
    upright_png = rotated.with_suffix(".png")
    _ffmpeg("-i", str(rotated), "-frames:v", "1", str(upright_png))  # ffmpeg autorotates
    upright = cv2.cvtColor(cv2.imread(str(upright_png)), cv2.COLOR_BGR2RGB)

    reader = VideoReader(rotated)
    frames = list(reader)
    assert len(frames) == N and reader.frames_read == N and not reader.truncated
    assert reader.rotation_deg in (90, 180, 270)
    expected_size = (H, W) if rotate in (90, 270) else (W, H)
    assert reader.size == expected_size
    first = frames[0].rgb
    assert first.shape == upright.shape, (first.shape, upright.shape)
    assert np.abs(first.astype(int) - upright).mean() < 2.0
    # The unrotated stream is not what comes out (the check can fail).
    plain = next(iter(VideoReader(plain_mp4))).rgb
    if plain.shape == first.shape:
        assert np.abs(first.astype(int) - plain).mean() > 20


def test_truncated_mp4_yields_only_real_frames(plain_mp4: Path, tmp_path: Path) -> None:
    longer = tmp_path / "long.mp4"
    _ffmpeg(
        *("-f", "lavfi", "-i", f"testsrc=size={W}x{H}:rate=10", "-frames:v", "60"),
        *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(longer)),
    )
    whole = [f.rgb for f in VideoReader(longer)]
    assert len(whole) == 60
    data = longer.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    reader = VideoReader(cut)
    with pytest.warns(UserWarning, match="truncated"):
        frames = list(reader)
    assert 0 < len(frames) < 60 and reader.truncated and reader.frames_read == len(frames)
    for f in frames:  # never a concealed / invented frame
        assert np.array_equal(f.rgb, whole[f.index]), f"frame {f.index} differs from the original"
    # Cut inside the header: nothing decodable, and the error names the file.
    stub = tmp_path / "stub.mp4"
    stub.write_bytes(data[:1500])
    with pytest.raises(InputError, match=r"stub\.mp4"):
        VideoReader(stub)


def test_zero_frame_video_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "zero_frames.mp4"
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size={W}x{H}:rate=10",
        "-frames:v",
        "0",
        "-c:v",
        "libx264",
        str(empty),
    )
    assert empty.stat().st_size > 0
    with pytest.raises(InputError, match=r"zero_frames\.mp4"):
        VideoReader(empty)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("garbage.mp4", np.random.default_rng(1).integers(0, 256, 50_000, np.uint8).tobytes()),
        ("text.mp4", b"this is not a video\n" * 100),
        ("empty.avi", b""),
    ],
)
def test_unreadable_files_are_clear_errors(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=name.replace(".", r"\.")), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        VideoReader(path)


def test_missing_path_and_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        VideoReader(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="not found"):
        VideoReader(tmp_path)
