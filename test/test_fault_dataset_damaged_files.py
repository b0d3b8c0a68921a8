"""Fault injection: damaged files in datasets and bags are named, and what is readable is kept.

Why: ``hvp dataset validate`` on a truncated parquet file printed pyarrow's traceback
("Parquet magic bytes not found in footer") without the file's name, and ``hvp dataset
from-bags`` rejected a whole episode when one split storage file of 16 was damaged, although
``hvp record repair`` keeps the other 15. Real bags (rosbags' MCAP/sqlite3 writers), real
parquet files, ``hvp`` run as a process where a traceback is what failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_dataset_bags import make_bag
from test_dataset_cli import hvp_dataset

from human_video_policy.data import BagReader
from human_video_policy.data.bag_repair import repair_bag
from human_video_policy.data.bag_to_dataset import convert_bags
from human_video_policy.errors import InputError

SPLITS = 16
DAMAGED = 10


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _hvp(*argv: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "human_video_policy.cli.main", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


# -- validate: truncated parquet files --------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("ds")
    make_bag(tmp / "a", seconds=1.2)
    make_bag(tmp / "b", seconds=1.2)
    report = convert_bags([tmp / "a", tmp / "b"], tmp / "ds")
    assert report.episodes == 2, report.summary()
    return tmp / "ds"


@pytest.mark.parametrize(
    "broken",
    [
        "data/chunk-000/file-000.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/tasks.parquet",
        "meta/stats.json",
    ],
)
def test_validate_names_a_truncated_file_without_a_traceback(
    dataset: Path, tmp_path: Path, broken: str
) -> None:
    copy = tmp_path / "ds"
    subprocess.run(["cp", "-r", str(dataset), str(copy)], check=True)
    _truncate(copy / broken)
    done = _hvp("dataset", "validate", str(copy), "--no-videos")
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert "Traceback" not in text and "magic bytes not found in footer. Either" not in text
    named = [line for line in text.splitlines() if str(copy / broken) in line]
    assert named and "truncated or corrupt?" in named[0], text
    assert "BROKEN" in text.splitlines()[-1]
    assert len(text.splitlines()) <= 4, text  # a few lines, not one per episode


# -- from-bags: one damaged split file of 16 --------------------------------------------------
def _split_bag(root: Path, storage: str) -> Path:
    """An episode bag of 16 split storage files, 0.5 s each, listed in one metadata.yaml, as
    ``hvp record`` writes it (metadata.yaml written by the project's repair code)."""
    bag = root / "episode_000001"
    bag.mkdir(parents=True)
    suffix = ".mcap" if storage == "mcap" else ".db3"
    for k in range(SPLITS):
        piece = root / f"piece_{k}"
        make_bag(piece, storage=storage, seconds=0.5, offset_s=0.5 * k)
        next(piece.glob(f"*{suffix}")).replace(bag / f"{bag.name}_{k}{suffix}")
    repair_bag(bag, fsync=False)
    return bag


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_from_bags_keeps_the_readable_splits_and_reports_the_lost_one(
    tmp_path: Path, storage: str, capsys: pytest.CaptureFixture
) -> None:
    bag = _split_bag(tmp_path / "rec", storage)
    meta_text = (bag / "metadata.yaml").read_text()
    info = yaml.safe_load(meta_text)["rosbag2_bagfile_information"]
    name = f"{bag.name}_{DAMAGED}{'.mcap' if storage == 'mcap' else '.db3'}"
    entry = next(f for f in info["files"] if f["path"] == name)
    lost_count = entry["message_count"]
    t0 = (entry["starting_time"]["nanoseconds_since_epoch"] - info["starting_time"][
        "nanoseconds_since_epoch"
    ]) * 1e-9  # fmt: skip
    _truncate(bag / name)
    with pytest.raises(InputError), BagReader(bag) as reader:  # the bag as a whole is broken
        list(reader.messages())

    code = hvp_dataset("from-bags", str(bag), "-o", str(tmp_path / "ds"), "--rate", "10")
    text = capsys.readouterr().out
    assert code == 0, text
    line = next(line for line in text.splitlines() if f"damaged storage file {name}" in line)
    total = info["message_count"]
    assert f"kept {total - lost_count} of {total} message(s)" in line, line
    assert f"{lost_count} message(s) lost, {t0:.3f}.." in line, line
    assert "1 converted without 1 damaged storage file(s)" in text
    frames = int(text.split("episode 0, ")[1].split(" frames")[0])
    # the longest stretch without a hole: files 0..9 (5 s at 10 Hz), not the 2.5 s after it
    assert 45 <= frames <= 51, text
    assert (bag / "metadata.yaml").read_text() == meta_text  # the bag itself is not touched
    assert hvp_dataset("validate", str(tmp_path / "ds")) == 0, capsys.readouterr().out
    print(f"{storage}: {line.strip()} -> {frames} frames")


def test_from_bags_still_fails_a_bag_with_no_readable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bag = _split_bag(tmp_path / "rec", "mcap")
    for path in bag.glob("*.mcap"):
        _truncate(path)
    assert hvp_dataset("from-bags", str(bag), "-o", str(tmp_path / "ds")) == 1
    assert "FAILED: bag" in capsys.readouterr().out
