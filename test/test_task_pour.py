"""The pour task (its expert, frozen and random policies are checked with every task in
test_task_suite.py): the held-out cup really differs;
holding the cup over the bowl without tipping it, or dropping the cup of beads into the bowl,
is not a pour."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import human_video_policy.sim.tasks.pour as pour  # registers "pour"
from human_video_policy.sim.arm_expert import ArmTarget
from human_video_policy.sim.scene import set_free_pose
from human_video_policy.sim.task_episode import run_task_episode
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
from human_video_policy.sim.tasks import task_names
from human_video_policy.sim.tasks.common import widowx_expert


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


class StopAtPhase:
    """The expert's script held at one phase: an expert that stops part way."""

    def __init__(self, script, phase: int) -> None:
        self.script = script
        self.phase = phase

    def __call__(self, world: TaskWorld) -> ArmTarget:
        phases = self.script.phases
        phases.sync(world)
        phases.phase = min(phases.phase, self.phase)
        return self.script(world)


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
