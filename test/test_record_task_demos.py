"""In-process recording of a task's scripted expert: what is stored, and what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.sim.tasks import EVALUATION_SEED_BASE
from human_video_policy.training.record_demos import Demos
from human_video_policy.training.record_task_demos import (
    TaskRecordConfig,
    main,
    record_task_demos,
)


def test_recorded_samples_are_images_states_and_clean_expert_chunks(tmp_path: Path) -> None:
    config = TaskRecordConfig(task="pick_place", episodes=3, seed=5, progress=False)
    demos, summary = record_task_demos(config)
    n = len(demos)
    assert summary["episodes_kept"] == summary["expert_successes"] >= 2
    assert demos.images.shape == (n, 64, 64, 3) and demos.images.dtype == np.uint8
    assert demos.states.shape == (n, 8) and demos.actions.shape == (n, 10, 7)
    assert set(demos.episodes.tolist()) <= {5, 6, 7}
    assert n > 40 * summary["episodes_kept"]  # ~6 s per episode at 10 Hz
    # Labels are the expert's smooth chunks (rows move at most 1.5 rad/s * 0.1 s per joint),
    # not the noisy driving commands.
    steps = np.abs(np.diff(demos.actions[:, :, :6], axis=1))
    assert steps.max() <= 0.15 + 1e-5
    # The gripper closes on the object in every kept episode.
    for seed in set(demos.episodes.tolist()):
        gripper = demos.actions[demos.episodes == seed, 0, 6]
        assert gripper.min() < 0.02 < gripper.max()
    path = demos.save(tmp_path / "d.npz")
    assert len(Demos.load(path)) == n


def test_recording_refuses_evaluation_seeds_and_writes_through_its_cli(tmp_path, capsys) -> None:
    with pytest.raises(ConfigError, match="reserved for evaluation"):
        TaskRecordConfig(seed=EVALUATION_SEED_BASE - 1, episodes=2)
    with pytest.raises(ConfigError, match="human_only"):  # the new_skill level's task
        TaskRecordConfig(task="stack", episodes=2)
    out = tmp_path / "push.npz"
    assert main(["--task", "push", "--episodes", "2", "--out", str(out)]) == 0
    assert "'task': 'push'" in capsys.readouterr().out
    assert len(Demos.load(out)) > 0


def test_demos_carry_their_robot_and_train_as_its_action_space(tmp_path: Path) -> None:
    """RM75 + XHand demos (19 joints) become samples in its action space; a file written
    before demos named their robot reads as the WidowX's; mixing robots is refused."""
    from human_video_policy.training.demo_dataset import DemoDataset

    config = TaskRecordConfig(
        task="press_button", robot="rm75_xhand", episodes=1, image_height=32, image_width=32
    )
    demos, _ = record_task_demos(config)
    assert demos.robot == "rm75_xhand" and demos.instruction.startswith("press")
    path = demos.save(tmp_path / "rm75.npz")
    data = DemoDataset(path)
    assert data.action_space == "rm75_xhand_joint_position" and len(data.action_names) == 19
    sample = data[0]
    assert sample["action"].shape[-1] == 19 and sample["task"] == demos.instruction
    old = tmp_path / "old.npz"  # the reach demos' layout: no robot, no instruction
    np.savez_compressed(old, images=demos.images, states=demos.states, actions=demos.actions,
                        episodes=demos.episodes)  # fmt: skip
    assert Demos.load(old).robot == "widowx"
    with pytest.raises(InputError, match="columns"):
        DemoDataset(old)  # 19 columns are not the WidowX's 7
    with pytest.raises(InputError, match="cannot join"):
        demos.concat(Demos.load(old))
