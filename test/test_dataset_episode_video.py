"""The episode MP4 with actions overlaid: decodable, one frame per row, camera image on top."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_dataset_format import write_small

from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.data.episode_render import render_episode_video
from human_video_policy.errors import InputError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small(tmp_path_factory.mktemp("render") / "ds")


def test_episode_video_has_every_row_and_the_camera_image(dataset: Path, tmp_path: Path) -> None:
    reader = DatasetReader(dataset)
    out = render_episode_video(dataset, 1, tmp_path / "ep1.mp4")
    capture = cv2.VideoCapture(str(out))
    decoded = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        decoded.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    rows = reader.episode_rows(1)
    assert len(decoded) == len(rows["action"])
    camera = reader.video_frames(1, reader.video_keys[0])
    h, w = camera.shape[1:3]
    scale = max(1, 480 // h)
    # The top of each frame is the camera image (scaled, nearest neighbour), text drawn over its
    # top-left corner only: compare the bottom-right quarter of the image.
    for k in (0, len(decoded) - 1):
        top = decoded[k][: h * scale : scale, : w * scale : scale].astype(float)
        ref = camera[k].astype(float)
        err = np.abs(top[h // 2 :, w // 2 :] - ref[h // 2 :, w // 2 :]).mean()
        assert err < 20.0, err  # MPEG-4 part 2 is lossy
    # The cursor moves: the plot strips of the first and last frames differ.
    strip_first, strip_last = decoded[0][h * scale :], decoded[-1][h * scale :]
    assert np.abs(strip_first.astype(float) - strip_last.astype(float)).max() > 100


def test_bad_requests_are_clear(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.mp4"):
        render_episode_video(dataset, 0, tmp_path / "ep.gif")
    with pytest.raises(InputError, match="episode 9 does not exist"):
        render_episode_video(dataset, 9, tmp_path / "ep.mp4")
    with pytest.raises(InputError, match=r"no camera 'observation\.images\.side'"):
        render_episode_video(dataset, 0, tmp_path / "ep.mp4", camera="observation.images.side")
