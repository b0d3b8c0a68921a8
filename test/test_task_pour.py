"""The pour task (its expert, frozen and random policies are checked with every (task, robot)
pair in test_task_suite.py): the held-out cup really differs;
holding the cup over the bowl without tipping it, or dropping the cup of beads into the bowl,
is not a pour. On the RM75 + XHand: saucepans placed handle first, standing upright until
grasped, held rigidly by the flat handle while the hand rolls, and a longer time limit that
``hvp bench --ros`` passes on."""

from __future__ import annotations

import subprocess

import mujoco
import numpy as np
import pytest
from task_helpers import StopAtPhase

import human_video_policy.sim.tasks.pour as pour  # registers "pour"
from human_video_policy.errors import ConfigError
from human_video_policy.sim.bench import BenchConfig, run_cell_through_ros
from human_video_policy.sim.scene import scene_robot, set_free_pose
from human_video_policy.sim.task_episode import FrozenPolicy, run_task_episode
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
from human_video_policy.sim.tasks import make_task, task_names
from human_video_policy.sim.tasks.common import rm75_xhand_expert, widowx_expert


@pytest.fixture(scope="module")
def world():
    made = TaskWorld(TaskWorldConfig(task="pour", image_width=64, image_height=64))
    yield made
    made.close()


def test_pour_is_registered_for_the_widowx() -> None:
    assert "pour" in task_names(robot="widowx")
    assert "pour" in task_names(tag="grasp")


def _geoms(model: mujoco.MjModel, body: str) -> list[tuple[int, tuple, tuple]]:
    b = model.body(body).id
    return [
        (int(model.geom_type[g]), tuple(model.geom_size[g]), tuple(model.geom_rgba[g]))
        for g in range(model.ngeom)
        if model.geom_bodyid[g] == b
    ]


def test_the_held_out_cup_differs_in_shape_size_and_colour(world) -> None:
    world.reset(5, "position")
    training = world.task.obj
    world.reset(5, "new_object")
    held_out = world.task.obj
    assert held_out.name != training.name
    assert held_out.sides != training.sides
    assert held_out.half_height != training.half_height
    a, b = _geoms(world.model, training.name), _geoms(world.model, held_out.name)
    assert len(a) != len(b) and {g[2] for g in a}.isdisjoint({g[2] for g in b})
    # The beads start inside the cup in use, and the parked cup is out of the workspace.
    cup = world.body_position(held_out.name)
    for i in range(pour.BEAD_COUNT):
        bead = world.body_position(f"bead_{i}")
        assert np.linalg.norm(bead[:2] - cup[:2]) < held_out.radius - pour.BEAD_RADIUS
    assert world.body_position(training.name)[1] > 1.0


def test_holding_the_cup_over_the_bowl_without_tipping_it_is_partial_credit(world) -> None:
    expert = world.task.expert(world)
    carry_only = widowx_expert(world, StopAtPhase(expert.script, 4))
    episode = run_task_episode(world, carry_only, 0, "position", max_episode_s=6.0)
    assert not episode.success
    assert episode.stages == ("grasp", "lift", "over_bowl")
    assert episode.score == pytest.approx(3 / 4)


def test_dropping_the_cup_of_beads_into_the_bowl_is_no_pour(world) -> None:
    world.reset(0, "position")
    task, cup = world.task, world.task.obj
    bowl = task.bowl_position(world)
    start = world.body_position(cup.name)
    in_bowl = bowl + np.array([0.0, 0.0, cup.half_height + 0.004])
    set_free_pose(world.model, world.data, cup.name, in_bowl)
    for i in range(pour.BEAD_COUNT):
        bead = world.body_position(f"bead_{i}") - start + bowl
        set_free_pose(world.model, world.data, f"bead_{i}", bead + np.array([0.0, 0.0, 0.004]))
    world.step(1.0)
    assert task.beads_in_bowl(world) == pour.BEAD_COUNT  # inside the bowl, in the cup
    assert not task.check_stages(world)[1]
    # Beads tipped out into the bowl (the cup elsewhere) are a pour.
    set_free_pose(world.model, world.data, cup.name, start)
    for i in range(pour.BEAD_COUNT):
        spot = bowl + np.array([0.02 * np.cos(i), 0.02 * np.sin(i), pour.BEAD_RADIUS + 0.004])
        set_free_pose(world.model, world.data, f"bead_{i}", spot)
    world.step(0.5)
    assert task.check_stages(world)[1]


# -- RM75 + XHand ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hand_world():
    made = TaskWorld(
        TaskWorldConfig(task="pour", robot="rm75_xhand", image_width=64, image_height=64)
    )
    yield made
    made.close()


def test_the_hand_pours_with_a_longer_time_limit_that_bench_passes_on(
    monkeypatch, tmp_path
) -> None:
    assert "pour" in task_names(robot="rm75_xhand")
    assert make_task("pour", scene_robot("widowx")).max_episode_s == 12.0
    assert make_task("pour", scene_robot("rm75_xhand")).max_episode_s == 20.0
    commands = []

    def refuse(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 1, "", "")

    monkeypatch.setattr(subprocess, "run", refuse)
    config = BenchConfig(robot="rm75_xhand", tasks=["pour"], policies=["expert"])
    with pytest.raises(ConfigError):
        run_cell_through_ros(config, "expert", "pour", "position", tmp_path)
    assert "episode_timeout_s:=20.0" in commands[0]


@pytest.mark.parametrize("level", ["position", "new_object"])
def test_the_saucepan_lies_handle_first_across_the_reach_and_stands_upright(
    hand_world, level
) -> None:
    world = hand_world
    for seed in range(6):
        world.reset(seed, level)
        task, cup = world.task, world.task.obj
        assert cup.handle == pour.SAUCEPAN_HANDLE
        grip, end = task.handle_position(world), task.handle_position(world, 1.0)
        centre, bowl = world.body_position(cup.name), task.bowl_position(world)
        assert pour.GRIP_DISTANCE[0] - 1e-6 <= np.linalg.norm(grip[:2]) <= pour.GRIP_DISTANCE[1]
        along = (end - centre)[:2] / np.linalg.norm((end - centre)[:2])
        radial = grip[:2] / np.linalg.norm(grip[:2])
        assert abs(along @ radial) <= np.sin(pour.HAND_YAW) + 1e-6  # across the reach
        side = centre[:2] - grip[:2]
        assert radial[0] * side[1] - radial[1] * side[0] < 0  # the cup on the right
        assert np.linalg.norm(centre[:2] - bowl[:2]) >= pour.CUP_SPACING
        # Left alone, it stays upright with its beads inside (the handle does not tip it).
        run_task_episode(world, FrozenPolicy(world), seed, level, max_episode_s=1.0)
        assert world.body_rotation(cup.name)[2, 2] > 0.999
        centre = world.body_position(cup.name)
        for i in range(pour.BEAD_COUNT):
            bead = world.body_position(f"bead_{i}")
            assert np.linalg.norm(bead[:2] - centre[:2]) < cup.radius - pour.BEAD_RADIUS
    world.reset(0, "position")
    training = world.task.obj
    world.reset(0, "new_object")
    assert world.task.obj.name != training.name and world.task.obj.sides != training.sides


def test_the_hand_holds_the_saucepan_rigidly_by_its_flat_handle_while_it_rolls(
    hand_world,
) -> None:
    world = hand_world
    expert = world.task.expert(world)
    in_hand, tipped = [], []

    def watch(world, image, state, now, command) -> None:
        if expert.script.phases.phase >= 3:  # closed on the handle
            cup = world.body_rotation(world.task.obj.name)
            in_hand.append(world.ee_rotation().T @ cup)
            tipped.append(cup[2, 2])

    episode = run_task_episode(world, expert, 0, "position", observer=watch)
    assert episode.success and episode.time_to_success < world.max_episode_s
    assert min(tipped) < -0.1, min(tipped)  # turned past 95 deg from upright ...
    turned = [np.arccos(min(1.0, (np.trace(in_hand[0].T @ r) - 1.0) / 2.0)) for r in in_hand]
    assert max(turned) < 0.1, max(turned)  # ... with the hand: it did not turn in the hand (rad)


def test_holding_the_saucepan_over_the_bowl_without_rolling_is_partial_credit(
    hand_world,
) -> None:
    world = hand_world
    script = world.task.expert(world).script
    carry_only = rm75_xhand_expert(world, StopAtPhase(script, 4), pour.HAND_GRIP, pour.HAND_AXES)
    episode = run_task_episode(world, carry_only, 1, "position", max_episode_s=14.0)
    assert not episode.success
    assert episode.stages == ("grasp", "lift", "over_bowl")
