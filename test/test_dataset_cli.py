"""``hvp dataset`` subcommands, driven through their argparse registration like hvp's main."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
from test_dataset_bags import TALKER, make_bag

from human_video_policy.cli import dataset_cmd
from human_video_policy.errors import HvpError


def hvp_dataset(*argv: str) -> int:
    """What ``hvp dataset ...`` does once dataset_cmd is listed in COMMAND_MODULES."""
    parser = argparse.ArgumentParser(prog="hvp")
    dataset_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dataset", *argv])
    try:
        return int(args.func(args))
    except HvpError as exc:
        print(f"hvp dataset: error: {exc}")
        return 2


def test_from_bags_info_validate_show_plot(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_bag(tmp_path / "a", seconds=1.5)
    make_bag(tmp_path / "b", storage="sqlite3", seconds=1.2)
    out = tmp_path / "ds"
    code = hvp_dataset(
        "from-bags", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(out),
        "--instruction", "wave", "--rate", "5",
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0, text
    assert "2/2 bag(s) converted" in text and "episode 1, 6 frames" in text

    assert hvp_dataset("info", str(out)) == 0
    text = capsys.readouterr().out
    assert "episodes  2, frames 13 at 5 fps" in text and "['wave']" in text
    assert hvp_dataset("info", str(out), "--json") == 0
    assert json.loads(capsys.readouterr().out)["codebase_version"] == "v3.0"

    assert hvp_dataset("validate", str(out)) == 0
    assert "OK: 2 episodes, 13 frames" in capsys.readouterr().out

    assert hvp_dataset("show", str(out), "-e", "1", "--rows", "2") == 0
    text = capsys.readouterr().out
    assert "frame 1 t=0.200s" in text and "file-000.mp4" in text
    mp4 = tmp_path / "ep1.mp4"
    assert hvp_dataset("show", str(out), "-e", "1", "--rows", "0", "-o", str(mp4)) == 0
    assert "camera image above the action curves" in capsys.readouterr().out
    assert mp4.stat().st_size > 1000 and mp4.read_bytes()[4:8] == b"ftyp"
    assert hvp_dataset("show", str(out), "-e", "5") == 2
    assert "--episode 5 does not exist" in capsys.readouterr().out

    png = tmp_path / "ep.png"
    assert hvp_dataset("plot", str(out), "-e", "0", "-o", str(png)) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"

    # break the data: validate says which episode, exit 1
    shutil.rmtree(out / "videos")
    capsys.readouterr()
    assert hvp_dataset("validate", str(out)) == 1
    assert "BROKEN" in capsys.readouterr().out


def test_from_real_bags_reports_no_frames(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = hvp_dataset(
        "from-bags", str(TALKER / "mcap_talker"), str(TALKER / "sqlite3_talker"),
        "-o", str(tmp_path / "ds"), "--camera", "none",
    )  # fmt: skip
    text = capsys.readouterr().out
    assert code == 1
    assert text.count("FAILED: bag has no topic(s)") == 2
    assert "0/2 bag(s) converted, 0 frames, 2 failed; nothing written" in text
    assert not (tmp_path / "ds").exists()


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert hvp_dataset("info", str(tmp_path)) == 2
    assert "is not a dataset" in capsys.readouterr().out
    assert (
        hvp_dataset("from-bags", str(tmp_path / "x"), "-o", str(tmp_path / "o"), "--rate", "0") == 2
    )
    assert "rate_hz=0.0 is invalid" in capsys.readouterr().out


def test_from_bags_refuses_once_overwrites_and_leaves_no_failure_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A non-empty OUT is refused in one line before any bag is read (before: once per bag,
    each bag counted as failed); --overwrite replaces a dataset, only when something converted;
    a conversion that converts nothing leaves no folder behind (before: an empty dataset)."""
    from human_video_policy.data.dataset_reader import DatasetReader

    (tmp_path / "session").mkdir()
    for name in ("a", "b", "c"):
        make_bag(tmp_path / "session" / name, seconds=1.0, with_camera=False)
    session, out = str(tmp_path / "session"), tmp_path / "ds"
    no_camera = ("--camera", "none", "--instruction", "reach")
    assert hvp_dataset("from-bags", session, "-o", str(out), *no_camera) == 0
    assert DatasetReader(out).num_episodes == 3
    capsys.readouterr()

    assert hvp_dataset("from-bags", session, "-o", str(out), *no_camera) == 2
    text = capsys.readouterr().out
    assert text.count("exists and is not empty") == 1 and "--overwrite" in text, text
    assert "FAILED" not in text and "[dataset]" not in text  # no bag was read

    talker = str(TALKER / "mcap_talker")  # converts nothing: the old dataset stays
    assert hvp_dataset("from-bags", talker, "-o", str(out), "--overwrite", *no_camera) == 1
    assert "nothing written" in capsys.readouterr().out
    assert DatasetReader(out).num_episodes == 3

    first = str(tmp_path / "session" / "a")
    assert hvp_dataset("from-bags", first, "-o", str(out), "--overwrite", *no_camera) == 0
    assert DatasetReader(out).num_episodes == 1  # replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "session"]  # no staging left

    fresh = tmp_path / "new" / "deeper" / "ds"  # before: new/deeper/ stayed behind
    assert hvp_dataset("from-bags", talker, "-o", str(fresh), *no_camera) == 1
    assert not (tmp_path / "new").exists()

    capsys.readouterr()
    assert hvp_dataset("from-bags", first, "-o", session, "--overwrite", *no_camera) == 2
    assert "not a dataset" in capsys.readouterr().out  # --overwrite never replaces bags
    assert len(list((tmp_path / "session").iterdir())) == 3
