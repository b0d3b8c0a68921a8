"""Lazy reading (rows, frames, video by seek and by episode) and validation that reports broken
episodes (NaN, time jumps, missing frames, truncated video) instead of crashing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_dataset_format import CAM, episode, write_small

from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.errors import InputError

DATA = "data/chunk-000/file-000.parquet"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small(tmp_path_factory.mktemp("clean") / "ds")


def copy(clean: Path, tmp_path: Path) -> Path:
    shutil.copytree(clean, tmp_path / "ds")
    return tmp_path / "ds"


def rewrite_column(root: Path, name: str, fn) -> None:
    table = pq.read_table(root / DATA)
    i = table.schema.get_field_index(name)
    values = fn(table.column(name).to_pylist())
    table = table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))
    pq.write_table(table, root / DATA)


def test_reads_rows_frames_and_video(clean: Path) -> None:
    reader = DatasetReader(clean)
    assert (reader.num_episodes, reader.num_frames) == (3, 15)
    assert reader.tasks == ["pick", "place"]
    frames, video = episode(7, 1)
    rows = reader.episode_rows(1)
    np.testing.assert_array_equal(rows["action"], frames["action"].astype(np.float32))
    np.testing.assert_array_equal(
        rows["human.hand_keypoints"], frames["human.hand_keypoints"].astype(np.float32)
    )
    np.testing.assert_array_equal(rows["segment_index"], frames["segment_index"])
    f = reader.frame(5 + 3)  # episode 1, frame 3
    assert f["task"] == "place" and f["frame_index"] == 3 and f["episode_index"] == 1
    np.testing.assert_array_equal(f["action"], frames["action"][3].astype(np.float32))
    # video frames: the whole episode, and single frames by seeking, agree
    whole = reader.video_frames(1, CAM)
    assert whole.shape == (7, 16, 24, 3)
    fresh = DatasetReader(clean)
    for i in (0, 3, 6):
        np.testing.assert_array_equal(fresh.video_frame(1, CAM, i), whole[i])
    err = np.abs(whole.astype(float) - video[CAM].astype(float)).mean(axis=(1, 2, 3))
    assert err.max() < 5.0, err  # each decoded frame is its own picture, not a neighbour
    assert np.abs(whole[1:].astype(float) - video[CAM][:-1].astype(float)).mean() > 7.0
    with pytest.raises(InputError, match="out of range"):
        reader.frame(15)
    with pytest.raises(InputError, match="episode 3 does not exist"):
        reader.episode_rows(3)


def test_clean_dataset_validates(clean: Path) -> None:
    report = DatasetReader(clean).validate()
    assert report.ok and report.episodes == 3 and report.frames == 15


def test_validation_lists_broken_episodes(clean: Path, tmp_path: Path) -> None:
    root = copy(clean, tmp_path)

    def nan_in_episode_2(rows):
        rows[13] = [float("nan"), rows[13][1]]
        return rows

    rewrite_column(root, "action", nan_in_episode_2)

    def jump_in_episode_1(ts):
        ts[5 + 4] += 0.7
        return ts

    rewrite_column(root, "timestamp", jump_in_episode_1)
    report = DatasetReader(root).validate()
    assert not report.ok
    assert report.broken_episodes == [1, 2]
    text = "\n".join(str(p) for p in report.problems)
    assert "episode 2: NaN/inf in action at frame(s) [1]" in text
    assert "episode 1: time jump: frame 4 at 1.100 s, expected 0.400 s" in text


def test_missing_frames_and_truncated_video(clean: Path, tmp_path: Path) -> None:
    root = copy(clean, tmp_path)
    table = pq.read_table(root / DATA)
    keep = [i for i in range(table.num_rows) if i != 2]  # drop frame 2 of episode 0
    pq.write_table(table.take(keep), root / DATA)
    video = root / "videos" / CAM / "chunk-000" / "file-000.mp4"
    raw = video.read_bytes()
    video.write_bytes(raw[: int(len(raw) * 0.6)])
    report = DatasetReader(root).validate()
    text = "\n".join(str(p) for p in report.problems)
    assert "episode 0: 4 rows in the data file, length says 5" in text
    assert 2 in report.broken_episodes  # the tail of the video is gone
    assert "the h264 stream ends after 0 of 3 frames from t=1.200 s" in text
    # missing video file
    video.unlink()
    report = DatasetReader(root).validate()
    assert report.broken_episodes == [0, 1, 2]
    assert "is missing" in str(report.problems[-1])


def test_bad_folders_are_refused(tmp_path: Path, clean: Path) -> None:
    with pytest.raises(InputError, match="is not a dataset"):
        DatasetReader(tmp_path)
    root = copy(clean, tmp_path)
    info = json.loads((root / "meta/info.json").read_text())
    info["codebase_version"] = "v2.1"
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match=r"only LeRobot v3\.0"):
        DatasetReader(root)
    info["codebase_version"] = "v3.0"
    info["total_episodes"] = 4
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="total_episodes=4"):
        DatasetReader(root)
    (root / "meta/info.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        DatasetReader(root)
