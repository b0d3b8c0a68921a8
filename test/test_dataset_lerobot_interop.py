"""Datasets written by LeRobot 0.4.4 itself (test/fixtures/lerobot_written/, made by
benchmarks/lerobot_peer/make_fixtures.py in the peer environment) validate and read here; the
writer lays out columns and statistics as LeRobot does; undecodable video names its codec."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_dataset_cli import hvp_dataset

from human_video_policy.data.bag_to_dataset import BagConversionConfig, episode_spec
from human_video_policy.data.dataset_format import (
    DatasetSpec,
    FeatureSpec,
    check_conformance,
    hand_keypoints_feature,
    vector_feature,
    video_feature,
)
from human_video_policy.data.dataset_reader import DatasetReader, resize_area
from human_video_policy.data.dataset_stats import (
    aggregate_stats,
    decimate_for_stats,
    episode_stats,
    image_episode_stats,
    sample_indices,
)
from human_video_policy.data.dataset_writer import DatasetWriter
from human_video_policy.data.human_episodes import HumanDatasetConfig, human_dataset_spec
from human_video_policy.data.normalization import load_stats
from human_video_policy.errors import InputError
from human_video_policy.video.stream_decoder import StreamDecoder, VideoDecodeError

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot_written"
CAM = "observation.images.front"
VIDEO = "videos/observation.images.front/chunk-000/file-000.mp4"
DATA = "data/chunk-000/file-000.parquet"
H, W = 48, 64


def _load_make_fixtures():
    """benchmarks/lerobot_peer/make_fixtures.py as a module (its top level needs no LeRobot)."""
    path = Path(__file__).parents[1] / "benchmarks" / "lerobot_peer" / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_FIXTURES = _load_make_fixtures()
#: the picture make_fixtures.py gave LeRobot for frame t of episode e: fixture_frame(e, t)
fixture_frame = MAKE_FIXTURES.frame_image
assert (MAKE_FIXTURES.HEIGHT, MAKE_FIXTURES.WIDTH) == (H, W)


ALL = ["av1", "hevc", "h264", "av1_merged", "av1_deleted", "av1_split_train"]
#: episode of make_fixtures.py's numbering behind each stored episode
SOURCE_EPISODES = {
    "av1": [0, 1, 2],
    "hevc": [0, 1],
    "h264": [0, 1],
    "av1_merged": [0, 1, 2, 3, 4],
    "av1_deleted": [0, 2],
    "av1_split_train": [0, 2],
}


@pytest.mark.parametrize("name", ALL)
def test_lerobot_written_dataset_validates_and_every_frame_decodes(
    name: str, capsys: pytest.CaptureFixture
) -> None:
    root = FIXTURES / name
    assert check_conformance(root) == []
    assert hvp_dataset("validate", str(root)) == 0, capsys.readouterr().out
    reader = DatasetReader(root)
    assert reader.validate().ok
    codec = StreamDecoder(root / VIDEO).codec
    assert codec.split()[0] == {"av1": "av1", "hevc": "hevc", "h264": "h264"}.get(name, "av1")
    for ep, source in enumerate(SOURCE_EPISODES[name]):
        frames = reader.video_frames(ep, CAM)
        assert len(frames) == reader.episodes[ep]["length"] == 8 + 3 * source
        for t in (0, len(frames) // 2, len(frames) - 1):
            # lossy codecs at LeRobot's defaults: a few levels of error, and the decoded
            # picture is nearer its own frame than its neighbours (the stretch is not shifted)
            err = [
                np.abs(frames[t].astype(int) - fixture_frame(source, u).astype(int)).mean()
                for u in (t - 1, t, t + 1)
            ]
            assert err[1] < 9.0 and err[1] < 0.75 * min(err[0], err[2]), (name, ep, t, err)
        np.testing.assert_array_equal(reader.video_frame(ep, CAM, 3), frames[3])
        rows = reader.episode_rows(ep)
        assert rows["action"].shape == (len(frames), 6) and rows["action"].dtype == np.float32


def test_merge_output_is_list_columns_and_is_accepted(tmp_path: Path) -> None:
    root = FIXTURES / "av1_merged"
    schema = pq.read_schema(root / DATA)
    assert schema.field("action").type == pa.list_(pa.float32())  # pandas' rewrite
    reader = DatasetReader(root)
    assert reader.episode_rows(4)["action"].shape == (20, 6)
    # a ragged row in such a column is refused, naming the column
    copy = tmp_path / "ragged"
    shutil.copytree(root, copy)
    table = pq.read_table(copy / DATA)
    actions = table.column("action").to_pylist()
    actions[3] = actions[3][:5]
    i = table.schema.get_field_index("action")
    pq.write_table(table.set_column(i, "action", pa.array(actions, schema.field("action").type)),
                   copy / DATA)  # fmt: skip
    report = DatasetReader(copy).validate(check_videos=False)
    assert not report.ok and report.broken_episodes == [0]
    assert "column action: list level 0 does not hold 6 values" in str(report.problems[0])


def test_array2d_array3d_columns_read_and_are_written_the_same_way(tmp_path: Path) -> None:
    lerobot = pq.read_schema(FIXTURES / "av1" / DATA)
    rows = DatasetReader(FIXTURES / "av1").episode_rows(1)
    assert rows["observation.keypoints"].shape == (11, 2, 5, 3)
    assert rows["observation.contact_grid"].shape == (11, 2, 4)
    table = pq.read_table(FIXTURES / "av1" / DATA)
    first = table.column("observation.keypoints")[8].as_py()  # episode 1, frame 0
    np.testing.assert_array_equal(rows["observation.keypoints"][0], np.asarray(first, np.float32))

    spec = DatasetSpec(
        fps=10, robot_type="fixture_arm", embodiment="fixture_arm", action_space="joints",
        features=(
            vector_feature("action", [f"j{i}" for i in range(6)]),
            FeatureSpec("observation.contact_grid", "float32", (2, 4), ("side", "taxel")),
            FeatureSpec("observation.keypoints", "float32", (2, 5, 3), ("hand", "point", "xyz")),
        ),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    frames = {
        "action": rng.normal(size=(5, 6)),
        "observation.contact_grid": rng.uniform(size=(5, 2, 4)),
        "observation.keypoints": rng.normal(size=(5, 2, 5, 3)),
    }
    with DatasetWriter(tmp_path / "ours", spec) as w:
        w.add_episode(frames, "t")
    ours = pq.read_schema(tmp_path / "ours" / DATA)
    theirs_hf = json.loads(lerobot.metadata[b"huggingface"])["info"]["features"]
    ours_hf = json.loads(ours.metadata[b"huggingface"])["info"]["features"]
    for key in ("action", "observation.contact_grid", "observation.keypoints", "index"):
        assert ours_hf[key] == theirs_hf[key], key
    for key in ("observation.contact_grid", "observation.keypoints"):
        assert ours.field(key).type == lerobot.field(key).type  # nested lists (names aside)
        assert ours.field(key).metadata == lerobot.field(key).metadata, key
    back = DatasetReader(tmp_path / "ours").episode_rows(0)
    np.testing.assert_array_equal(
        back["observation.keypoints"], frames["observation.keypoints"].astype(np.float32)
    )
    # LeRobot's statistics shapes: the last axis
    stats = load_stats(tmp_path / "ours")
    assert stats["observation.keypoints"].mean.shape == (3,)
    assert stats["observation.contact_grid"].mean.shape == (4,)


def test_statistics_equal_what_lerobot_computed() -> None:
    """Our statistics code on the rows LeRobot wrote gives LeRobot's meta/stats.json."""
    root = FIXTURES / "av1"
    reader = DatasetReader(root)
    theirs = load_stats(root)
    numeric = [k for k in reader.info["features"] if reader.feature_dtype(k) != "video"]
    per_episode = {k: [] for k in numeric}
    images = []
    for ep in range(reader.num_episodes):
        rows = reader.episode_rows(ep)
        for key in numeric:
            per_episode[key].append(episode_stats(rows[key], name=key))
        n = int(reader.episodes[ep]["length"])
        sampled = [decimate_for_stats(fixture_frame(ep, int(t))) for t in sample_indices(n)]
        images.append(image_episode_stats(sampled))
    mine = {k: aggregate_stats(v, name=k) for k, v in per_episode.items()}
    mine[CAM] = aggregate_stats(images)
    assert set(mine) == set(theirs)
    for key, t in theirs.items():
        m = mine[key]
        assert m.mean.shape == t.mean.shape, key
        assert m.count == t.count, key
        for name in ("min", "max", "mean", "std"):
            if key == CAM and name == "std":
                continue  # LeRobot squares uint8 pixels, which wraps: its camera std is wrong
            np.testing.assert_allclose(getattr(m, name), getattr(t, name), rtol=1e-5,
                                       atol=1e-6, err_msg=f"{key} {name}")  # fmt: skip
        assert set(m.quantiles) == set(t.quantiles) == {"q01", "q10", "q50", "q90", "q99"}
        for q, value in t.quantiles.items():
            span = float(np.max(t.max - t.min)) or 1.0
            np.testing.assert_allclose(m.quantiles[q], value, rtol=0, atol=1e-3 * span,
                                       err_msg=f"{key} {q}")  # fmt: skip
    assert theirs["observation.keypoints"].mean.shape == (3,)  # what the issue reported
    # the camera std here is the pixels' true std (LeRobot 0.4.4 gives ~0.0002 to 0.005 for
    # these frames, from squares of uint8 values that wrap around modulo 256)
    pixels = np.concatenate([
        np.stack([decimate_for_stats(fixture_frame(ep, int(t))) for t in sample_indices(n)])
        .reshape(-1, 3)
        for ep, n in enumerate(int(e["length"]) for e in reader.episodes)
    ]) / 255.0  # fmt: skip
    np.testing.assert_allclose(mine[CAM].std.reshape(3), pixels.std(axis=0), rtol=1e-6)
    assert np.all(theirs[CAM].std.reshape(3) < 0.01)


def test_undecodable_video_names_the_codec(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    shutil.copytree(FIXTURES / "av1", root)
    video = root / VIDEO
    raw = video.read_bytes()
    assert raw.count(b"av01") >= 1
    video.write_bytes(raw.replace(b"av01", b"zz01"))  # a codec tag FFmpeg does not know
    report = DatasetReader(root).validate()
    assert report.broken_episodes == [0, 1, 2]
    assert "recognises no codec in its video stream" in str(report.problems[0])
    with pytest.raises(VideoDecodeError, match="recognises no codec"):
        StreamDecoder(video)
    # a stream cut short names its codec and the frames it did decode
    video.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(InputError, match=r"the av1 \(decoder libdav1d\) stream ends after"):
        DatasetReader(root).video_frames(2, CAM)


def test_format1_names_are_read_under_todays_names(tmp_path: Path) -> None:
    spec = DatasetSpec(
        fps=10, robot_type="human_hand", embodiment="human_hand", action_space="x",
        features=(
            vector_feature("action", ["a", "b"]),
            vector_feature("mask.action", ["a", "b"]),
            hand_keypoints_feature(),
            video_feature(CAM, 16, 16, 10),
        ),
    )  # fmt: skip
    kp = np.random.default_rng(1).normal(size=(4, 126))
    with DatasetWriter(tmp_path / "ds", spec) as w:
        w.add_episode({"action": np.ones((4, 2)), "mask.action": np.ones((4, 2)),
                       "human.hand_keypoints": kp},
                      "t", {CAM: np.zeros((4, 16, 16, 3), np.uint8)})  # fmt: skip
    root = tmp_path / "ds"
    # rewrite it as format 1 wrote it: old column names and a (2, 21, 3) keypoint column
    old = {"mask.action": "action.mask", "human.hand_keypoints": "observation.hand_keypoints"}
    table = pq.read_table(root / DATA)
    cols = {old.get(n, n): table.column(n) for n in table.column_names}
    flat = pa.array(kp.astype(np.float32).reshape(-1))
    nested = pa.FixedSizeListArray.from_arrays(
        pa.FixedSizeListArray.from_arrays(pa.FixedSizeListArray.from_arrays(flat, 3), 21), 2
    )
    cols["observation.hand_keypoints"] = nested
    pq.write_table(pa.table(cols), root / DATA)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"] = {old.get(k, k): v for k, v in info["features"].items()}
    info["features"]["observation.hand_keypoints"]["shape"] = [2, 21, 3]
    info["hvp"]["format_version"] = 1
    (root / "meta/info.json").write_text(json.dumps(info))
    stats = json.loads((root / "meta/stats.json").read_text())
    (root / "meta/stats.json").write_text(json.dumps({old.get(k, k): v for k, v in stats.items()}))

    reader = DatasetReader(root)
    rows = reader.episode_rows(0)
    assert "mask.action" in rows and "action.mask" not in rows
    np.testing.assert_array_equal(
        rows["human.hand_keypoints"].reshape(4, -1), kp.astype(np.float32)
    )
    assert "human.hand_keypoints" in reader.stats() and "mask.action" in reader.stats()
    assert reader.validate().ok


def lerobot_policy_roles(features: dict) -> dict[str, str]:
    """LeRobot 0.4.4's dataset_to_policy_features rule: cameras are visual inputs, keys starting
    'observation' state inputs, keys starting 'action' outputs, the rest left out."""
    roles = {}
    for key, ft in features.items():
        if ft.dtype in ("video", "image"):
            roles[key] = "VISUAL"
        elif key.startswith("observation"):
            roles[key] = "STATE"
        elif key.startswith("action"):
            roles[key] = "ACTION"
    return roles


def test_project_columns_stay_out_of_a_stock_policy() -> None:
    human = human_dataset_spec(
        10.0, 32, 48, HumanDatasetConfig(image_size=(32, 48), camera_key=CAM),
        {"width": 48, "height": 32, "k": [40.0, 0, 24, 0, 40.0, 16, 0, 0, 1]},
    )  # fmt: skip
    bags = episode_spec(BagConversionConfig(), ["j0", "j1"], ["j0", "j1"], {CAM: (32, 48)})
    for spec in (human, bags):
        roles = lerobot_policy_roles(spec.all_features)
        cameras = {key: "VISUAL" for key in spec.video_keys}
        assert roles == {"observation.state": "STATE", "action": "ACTION", **cameras}, roles
        assert "mask.action" in spec.all_features and "segment_index" in spec.all_features
    assert hand_keypoints_feature().key in human.all_features and human.video_keys == [CAM]


def test_string_feature_and_constant_large_column(tmp_path: Path) -> None:
    """A LeRobot text feature reads as strings; statistics of a constant column far from 0
    (where the histogram's padding vanishes) give that value as every quantile."""
    root = tmp_path / "ds"
    shutil.copytree(FIXTURES / "h264", root)
    table = pq.read_table(root / DATA)
    text = pa.array([f"step {i}" for i in range(table.num_rows)], pa.string())
    pq.write_table(table.append_column("language_instruction", text), root / DATA)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["language_instruction"] = {"dtype": "string", "shape": [1], "names": None}
    (root / "meta/info.json").write_text(json.dumps(info))
    assert check_conformance(root) == []
    reader = DatasetReader(root)
    assert reader.validate().ok
    assert reader.episode_rows(1)["language_instruction"][0] == "step 8"

    st = episode_stats(np.full((20, 2), 1.0e9))
    assert all(np.array_equal(v, [1.0e9, 1.0e9]) for v in st.quantiles.values())
    assert np.array_equal(st.std, [0.0, 0.0])


def test_hostile_video_metadata_is_refused(tmp_path: Path) -> None:
    """A camera whose frames are not the size info.json gives, or an episode whose
    from_timestamp is NaN or negative, is reported; nothing is silently decoded."""
    root = tmp_path / "ds"
    shutil.copytree(FIXTURES / "hevc", root)
    info_path = root / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["features"][CAM]["shape"] = [4800, 6400, 3]  # 100x the real size
    info_path.write_text(json.dumps(info))
    with pytest.raises(InputError, match="64x48 frames; the dataset says 6400x4800"):
        DatasetReader(root).video_frames(0, CAM)
    with pytest.raises(InputError, match="64x48 frames; the dataset says 6400x4800"):
        DatasetReader(root).video_frame(1, CAM, 2)

    shutil.rmtree(root)
    shutil.copytree(FIXTURES / "hevc", root)
    episodes = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(episodes)
    column = f"videos/{CAM}/from_timestamp"
    for bad in (float("nan"), -1.0):
        i = table.schema.get_field_index(column)
        pq.write_table(table.set_column(i, column, pa.array([bad, 0.8], pa.float64())), episodes)
        reader = DatasetReader(root)
        with pytest.raises(InputError, match="is not a finite time >= 0 s"):
            reader.video_frames(0, CAM)
        report = reader.validate()
        assert report.broken_episodes == [0], report.problems


def test_info_names_the_codec_and_the_writer(capsys: pytest.CaptureFixture) -> None:
    assert hvp_dataset("info", str(FIXTURES / "av1")) == 0
    text = capsys.readouterr().out
    assert "no hvp block (written by another tool, e.g. LeRobot)" in text
    assert "codec av1" in text and "observation.keypoints        float32  [2, 5, 3]" in text


@pytest.mark.parametrize("name", ["av1", "av1_merged"])
def test_training_loader_reads_lerobot_datasets(name: str) -> None:
    from human_video_policy.training.torch_dataset import ChunkDataset, ChunkDatasetConfig

    root = FIXTURES / name
    loader = ChunkDataset(root, ChunkDatasetConfig(horizon=4, image_size=(24, 32)))
    reader = DatasetReader(root)
    last = reader.num_episodes - 1
    start = int(reader.episodes[last]["dataset_from_index"])
    sample = loader[start + 2]  # frame 2 of the last episode
    rows = reader.episode_rows(last)
    np.testing.assert_array_equal(sample["action"].numpy(), rows["action"][3:7])
    np.testing.assert_array_equal(
        sample["observation.state"].numpy()[0], rows["observation.state"][2]
    )
    image = sample[CAM].numpy()[0]  # (3, 24, 32) float in [0, 1]
    expected = resize_area(reader.video_frames(last, CAM)[2], 24, 32)
    assert np.abs(image.transpose(1, 2, 0) * 255.0 - expected).max() <= 1.0
