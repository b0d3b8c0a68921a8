"""The dataset layout against LeRobot v3.0's documented schema, field by field, and the writer's
refusals of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from human_video_policy.data.dataset_format import (
    DatasetSpec,
    FeatureSpec,
    check_conformance,
    hand_keypoints_feature,
    read_tasks,
    vector_feature,
    video_feature,
)
from human_video_policy.data.dataset_writer import DatasetWriter, VideoEncoding
from human_video_policy.errors import ConfigError, InputError

CAM = "observation.images.front"


def small_spec(**kw) -> DatasetSpec:
    feats = (
        vector_feature("observation.state", ["a", "b", "c"]),
        vector_feature("action", ["a", "b"]),
        vector_feature("mask.action", ["a", "b"]),
        FeatureSpec("segment_index", "int64", (1,)),
        hand_keypoints_feature(),
        video_feature(CAM, 16, 24, 10),
    )
    return DatasetSpec(
        fps=10, robot_type="widowx", features=feats, embodiment="widowx", action_space="x", **kw
    )


def episode(n: int, seed: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    frames = {
        "observation.state": rng.standard_normal((n, 3)),
        "action": rng.standard_normal((n, 2)),
        "mask.action": np.ones((n, 2)),
        "segment_index": np.arange(n) // 4,
        "human.hand_keypoints": rng.standard_normal((n, 126)),
    }
    yy, xx = np.mgrid[0:16, 0:24]
    pictures = [  # smooth, different per frame and episode (h264 keeps such pictures well)
        np.dstack([xx * 8 + 10 * i, yy * 12 + 20 * seed, np.full_like(xx, 60 + 15 * i)])
        for i in range(n)
    ]
    video = {CAM: np.clip(np.stack(pictures), 0, 255).astype(np.uint8)}
    return frames, video


def write_small(root: Path, lengths=(5, 7, 3), tasks=("pick", "place", "pick")) -> Path:
    with DatasetWriter(root, small_spec()) as w:
        for i, (n, task) in enumerate(zip(lengths, tasks, strict=True)):
            frames, video = episode(n, i)
            w.add_episode(frames, task, video, prompt_video=f"prompts/{i}.mp4")
    return root


def test_layout_matches_lerobot_v3_field_by_field(tmp_path: Path) -> None:
    root = write_small(tmp_path / "ds")
    assert check_conformance(root) == []
    info = json.loads((root / "meta/info.json").read_text())
    # meta/info.json: LeRobot's create_empty_dataset_info keys with v3 defaults
    assert info["codebase_version"] == "v3.0"
    assert info["chunks_size"] == 1000
    assert info["data_files_size_in_mb"] == 100 and info["video_files_size_in_mb"] == 500
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert (
        info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    )
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 15, 2)
    assert info["fps"] == 10 and info["splits"] == {"train": "0:3"}
    for key, dtype in {
        "timestamp": "float32",
        "frame_index": "int64",
        "episode_index": "int64",
        "index": "int64",
        "task_index": "int64",
    }.items():
        assert info["features"][key] == {"dtype": dtype, "shape": [1], "names": None}
    cam = info["features"][CAM]
    assert cam["dtype"] == "video" and cam["shape"] == [16, 24, 3]
    assert cam["names"] == ["height", "width", "channels"]
    assert cam["info"]["video.codec"] == "h264" and cam["info"]["video.pix_fmt"] == "yuv420p"
    assert info["features"]["action"]["names"] == ["a", "b"]
    assert info["hvp"]["embodiment"] == "widowx" and info["hvp"]["format_version"] == 2

    # data/chunk-000/file-000.parquet: many episodes in one file, arrow types as HF features
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert data.num_rows == 15
    assert data.schema.field("action").type == pa.list_(pa.float32(), 2)
    assert data.schema.field("timestamp").type == pa.float32()
    assert data.schema.field("human.hand_keypoints").type == pa.list_(pa.float32(), 126)
    hf = json.loads(data.schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["action"] == {
        "feature": {"dtype": "float32", "_type": "Value"},
        "length": 2,
        "_type": "List",
    }
    assert hf["index"] == {"dtype": "int64", "_type": "Value"}
    assert data.column("index").to_pylist() == list(range(15))
    assert data.column("episode_index").to_pylist() == [0] * 5 + [1] * 7 + [2] * 3

    # meta/episodes/chunk-000/file-000.parquet
    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["dataset_from_index"] for e in eps] == [0, 5, 12]
    assert [e["dataset_to_index"] for e in eps] == [5, 12, 15]
    assert [e["tasks"] for e in eps] == [["pick"], ["place"], ["pick"]]
    assert [e[f"videos/{CAM}/from_timestamp"] for e in eps] == [0.0, 0.5, 1.2]
    assert [e[f"videos/{CAM}/to_timestamp"] for e in eps] == [0.5, 1.2, 1.5]
    assert eps[1]["hvp/prompt_video"] == "prompts/1.mp4"
    assert len(eps[0]["stats/action/mean"]) == 2 and eps[0]["stats/action/count"] == [5]
    assert np.asarray(eps[0][f"stats/{CAM}/q50"]).shape == (3, 1, 1)
    assert eps[2]["stats/index/min"] == [12.0] and eps[2]["stats/index/max"] == [14.0]

    # meta/tasks.parquet: pandas DataFrame, index = task, column task_index
    tasks = pq.read_table(root / "meta/tasks.parquet")
    meta = json.loads(tasks.schema.metadata[b"pandas"])
    assert meta["index_columns"] == ["task"]
    assert tasks.column("task_index").to_pylist() == [0, 1]
    assert read_tasks(root / "meta/tasks.parquet") == ["pick", "place"]

    # meta/stats.json: min/max/mean/std/count and quantiles per feature, integer columns too;
    # images per channel (3, 1, 1)
    stats = json.loads((root / "meta/stats.json").read_text())
    quantiles = {"q01", "q10", "q50", "q90", "q99"}
    assert set(stats["action"]) == {"min", "max", "mean", "std", "count", *quantiles}
    assert stats["action"]["count"] == [15]
    assert stats["index"]["min"] == [0.0] and stats["index"]["max"] == [14.0]
    assert stats["index"]["mean"] == [7.0] and set(stats["segment_index"]) >= quantiles
    assert np.asarray(stats["human.hand_keypoints"]["mean"]).shape == (126,)
    assert np.asarray(stats[CAM]["mean"]).shape == (3, 1, 1)
    assert np.min(stats[CAM]["min"]) >= 0.0 and np.max(stats[CAM]["max"]) <= 1.0

    # one MP4 per camera and file, holding all episodes back to back
    assert (root / "videos" / CAM / "chunk-000" / "file-000.mp4").is_file()


def test_conformance_reports_each_departure(tmp_path: Path) -> None:
    root = write_small(tmp_path / "ds")
    info_path = root / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["codebase_version"] = "v2.1"
    info["features"]["frame_index"]["dtype"] = "int32"
    del info["features"][CAM]["info"]["video.codec"]
    info["total_frames"] = 16
    info_path.write_text(json.dumps(info))
    problems = check_conformance(root)
    assert any("codebase_version='v2.1'" in p for p in problems)
    assert any("frame_index must be int64" in p for p in problems)
    assert any("lacks 'video.codec'" in p for p in problems)
    del info["chunks_size"]
    info_path.write_text(json.dumps(info))
    assert check_conformance(root) == ["info.json: key 'chunks_size' is missing"]
    (root / "meta/info.json").unlink()
    assert check_conformance(root) == ["meta/info.json is missing"]


def test_files_roll_over_at_the_size_limit(tmp_path: Path) -> None:
    spec = small_spec(data_files_size_in_mb=0.001, chunks_size=2)
    with DatasetWriter(tmp_path / "ds", spec) as w:
        for i in range(3):
            frames, video = episode(6, i)
            w.add_episode(frames, "t", video)
    files = sorted(
        str(p.relative_to(tmp_path / "ds")) for p in (tmp_path / "ds").rglob("*.parquet")
    )
    assert "data/chunk-000/file-001.parquet" in files and "data/chunk-001/file-000.parquet" in files
    assert check_conformance(tmp_path / "ds") == []
    from human_video_policy.data.dataset_reader import DatasetReader

    reader = DatasetReader(tmp_path / "ds")
    assert reader.validate().ok
    np.testing.assert_array_equal(
        reader.episode_rows(2)["action"], episode(6, 2)[0]["action"].astype(np.float32)
    )


def test_writer_refuses_bad_episodes(tmp_path: Path) -> None:
    w = DatasetWriter(tmp_path / "ds", small_spec())
    frames, video = episode(4, 0)
    with pytest.raises(InputError, match=r"lacks feature\(s\) \['action'\]"):
        w.add_episode({k: v for k, v in frames.items() if k != "action"}, "t", video)
    bad = dict(frames, action=np.full((4, 2), np.nan))
    with pytest.raises(InputError, match=r"action: NaN or inf in frame\(s\) \[0, 1, 2, 3\]"):
        w.add_episode(bad, "t", video)
    with pytest.raises(InputError, match="different frame counts"):
        w.add_episode(dict(frames, action=np.zeros((3, 2))), "t", video)
    with pytest.raises(InputError, match=r"rows of shape \(3,\), expected \(2,\)"):
        w.add_episode(dict(frames, action=np.zeros((4, 3))), "t", video)
    with pytest.raises(InputError, match="no frames"):
        w.add_episode({k: v[:0] for k, v in frames.items()}, "t", {CAM: video[CAM][:0]})
    with pytest.raises(InputError, match="lacks camera"):
        w.add_episode(frames, "t", {})
    with pytest.raises(InputError, match=r"frames \(4, 16, 20, 3\)"):
        w.add_episode(frames, "t", {CAM: np.zeros((4, 16, 20, 3), np.uint8)})
    with pytest.raises(InputError, match="instruction"):
        w.add_episode(frames, "", video)
    assert w.add_episode(frames, "t", video) == 0  # the refusals left nothing behind
    w.finalize()
    assert check_conformance(tmp_path / "ds") == []
    stats = json.loads((tmp_path / "ds" / "meta" / "stats.json").read_text())
    assert stats["action"]["count"] == [4] and stats[CAM]["count"][0] > 0
    with pytest.raises(InputError, match="finalized"):
        w.add_episode(frames, "t", video)
    with pytest.raises(InputError, match="not empty"):
        DatasetWriter(tmp_path / "ds", small_spec())


def test_spec_validation() -> None:
    with pytest.raises(ConfigError, match="no '/'"):
        FeatureSpec("a/b", "float32", (2,))
    with pytest.raises(ConfigError, match="dtype='complex64'"):
        FeatureSpec("a", "complex64", (2,))
    with pytest.raises(ConfigError, match="2 names for shape"):
        FeatureSpec("a", "float32", (3,), ("x", "y"))
    with pytest.raises(ConfigError, match="'action' feature is required"):
        DatasetSpec(10, "r", (vector_feature("x", ["a"]),), "widowx", "x")
    with pytest.raises(ConfigError, match="default columns"):
        index = FeatureSpec("index", "int64", (1,))
        DatasetSpec(10, "r", (vector_feature("action", ["a"]), index), "w", "x")
    with pytest.raises(ConfigError, match="fps=0"):
        DatasetSpec(0, "r", (vector_feature("action", ["a"]),), "w", "x")
    with pytest.raises(ConfigError, match="crf=60"):
        VideoEncoding(crf=60)


def test_odd_video_size_is_refused(tmp_path: Path) -> None:
    feats = (vector_feature("action", ["a"]), video_feature(CAM, 15, 24, 10))
    with pytest.raises(InputError, match="even width and height"):
        DatasetWriter(tmp_path / "ds", DatasetSpec(10, "r", feats, "w", "x"))
