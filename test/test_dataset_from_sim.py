"""``hvp dataset from-sim --task NAME``: a benchmark task's scripted expert recorded in process
into the dataset layout (the graph path's twin: test_replay.py compares the two on one seed).
Here: both robots, the rows it keeps, and the refusals that name the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from human_video_policy.cli.main import main
from human_video_policy.data.dataset_format import check_conformance
from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.errors import InputError
from human_video_policy.training.sim_episodes import record_task_dataset


@pytest.mark.parametrize(
    ("robot", "task", "joints"),
    [("widowx", "press_button", (7, 8)), ("rm75_xhand", "pick_place", (19, 19))],
)
def test_a_task_becomes_a_valid_dataset_of_the_experts_episodes(
    robot: str, task: str, joints: tuple[int, int], tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    frames, success = record_task_dataset(out, task, 2, robot=robot, seed=10, image_size=(64, 64))
    assert success == 1.0
    assert check_conformance(out) == []
    ds = DatasetReader(out)
    assert ds.num_episodes == 2 and ds.num_frames == frames
    assert ds.info["robot_type"] == robot and ds.info["fps"] == 10
    assert ds.info["features"]["action"]["shape"] == [joints[0]]
    assert ds.info["features"]["observation.state"]["shape"] == [joints[1]]
    from human_video_policy.sim.tasks import task_class

    assert ds.tasks == [task_class(task).description]
    for episode in range(2):
        rows = ds.episode_rows(episode, ["action", "observation.state", "timestamp"])
        stamps = rows["timestamp"].reshape(-1)
        assert stamps[0] == 0.0 and np.allclose(np.diff(stamps), 0.1, atol=1e-4)
        assert np.isfinite(rows["action"]).all() and np.isfinite(rows["observation.state"]).all()
        # The arm moves: the expert's commands, not a held pose.
        assert np.ptp(rows["action"], axis=0).max() > 0.1
        video = ds.video_frames(episode, "observation.images.camera_color")
        assert video.shape == (len(stamps), 64, 64, 3) and video.std() > 5.0
        assert f"seed={10 + episode}" in ds.episodes[episode]["hvp/source"]


def test_the_cli_refuses_bad_requests_and_leaves_nothing_behind(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    base = ["dataset", "from-sim", "--episodes", "1", "-q", "-o", str(out)]
    assert main([*base, "--task", "no_such_task"]) == 2
    assert "no_such_task" in capsys.readouterr().err
    assert main([*base, "--task", "push", "--noise-std", "0.1"]) == 2
    assert "--noise-std is for --task reach" in capsys.readouterr().err
    assert main([*base, "--robot", "rm75_xhand"]) == 2  # reach is a WidowX task
    assert "WidowX" in capsys.readouterr().err
    assert main([*base, "--task", "push", "--seed", "1000000"]) == 2  # an evaluation seed
    assert "1000000" in capsys.readouterr().err
    assert main([*base, "--task", "stack"]) == 2  # human_only: the new_skill level's task
    assert "human_only" in capsys.readouterr().err
    assert main([*base, "--task", "push", "--robot", "no_such_robot"]) == 2
    assert "no_such_robot" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())  # no staging folder left either
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main([*base, "--task", "push"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_an_expert_that_fails_every_episode_writes_nothing(tmp_path: Path) -> None:
    """A time limit too short for the expert: every episode fails, none is kept, and the run
    says so instead of writing an empty dataset."""
    from human_video_policy.sim.tasks.push import Push

    limit = Push.max_episode_s
    Push.max_episode_s = 0.3
    try:
        with pytest.raises(InputError, match="no episode was kept"):
            record_task_dataset(tmp_path / "ds", "push", 1, image_size=(32, 32))
    finally:
        Push.max_episode_s = limit
    assert not list(tmp_path.iterdir())
