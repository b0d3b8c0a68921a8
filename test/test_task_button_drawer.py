"""The press_button and drawer tasks (their experts, frozen and random policies are checked with
every task in test_task_suite.py): the held-out object really differs; stages latch (an expert
stopped early scores partial credit); the button's spring brings the cap back up and the drawer
only moves when pushed or pulled."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from human_video_policy.sim.arm_expert import ArmTarget
from human_video_policy.sim.task_episode import run_task_episode
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
from human_video_policy.sim.tasks import task_names
from human_video_policy.sim.tasks.common import widowx_expert
from human_video_policy.sim.tasks.drawer import CABINETS  # registers "drawer"
from human_video_policy.sim.tasks.press_button import BUTTONS  # registers "press_button"

TASKS = ("press_button", "drawer")


@pytest.fixture(scope="module")
def worlds():
    made: dict[str, TaskWorld] = {}

    def get(task: str) -> TaskWorld:
        if task not in made:
            made[task] = TaskWorld(TaskWorldConfig(task=task, image_width=64, image_height=64))
        return made[task]

    yield get
    for world in made.values():
        world.close()


def test_both_tasks_are_registered_with_their_tags() -> None:
    assert set(TASKS) <= set(task_names(robot="widowx"))
    assert "press_button" in task_names(tag="contact")
    assert "drawer" in task_names(tag="articulated")


class StopAtPhase:
    """The task's expert script held at one phase: an expert that stops part way."""

    def __init__(self, script, phase: int) -> None:
        self.script = script
        self.phase = phase

    def __call__(self, world: TaskWorld) -> ArmTarget:
        phases = self.script.phases
        phases.sync(world)
        phases.phase = min(phases.phase, self.phase)
        return self.script(world)


@pytest.mark.parametrize(
    ("task", "phase", "reached"),
    [
        ("press_button", 0, ("above",)),  # hovers over the cap
        ("drawer", 2, ("grasp",)),  # holds the handle
        ("drawer", 3, ("grasp", "open")),  # pulls it open and never pushes it back
    ],
)
def test_stages_latch_and_an_expert_stopped_early_scores_partial_credit(
    worlds, task: str, phase: int, reached: tuple[str, ...]
) -> None:
    world = worlds(task)
    expert = world.task.expert(world)
    stopped = widowx_expert(world, StopAtPhase(expert.script, phase))
    episode = run_task_episode(world, stopped, 0, "position", max_episode_s=8.0)
    assert not episode.success
    assert episode.stages == reached
    assert 0.0 < episode.score < 1.0
    assert episode.score == pytest.approx(len(reached) / len(world.task.stages))


def _geoms(model: mujoco.MjModel, body: str) -> list[tuple[int, tuple, tuple]]:
    """(type, size, rgba) of every geom of ``body`` and of its children."""
    b = model.body(body).id
    return [
        (int(model.geom_type[g]), tuple(model.geom_size[g].round(4)), tuple(model.geom_rgba[g]))
        for g in range(model.ngeom)
        if b in (model.geom_bodyid[g], model.body_parentid[model.geom_bodyid[g]])
    ]


@pytest.mark.parametrize(("task", "variants"), [("press_button", BUTTONS), ("drawer", CABINETS)])
def test_the_held_out_object_differs_and_the_unused_one_is_parked(worlds, task, variants) -> None:
    world = worlds(task)
    training, held_out = variants
    cases = (("position", training, held_out), ("new_object", held_out, training))
    for level, used, parked in cases:
        world.reset(5, level)
        assert world.task.obj is used
        assert world.body_position(parked.name)[1] > 1.0  # out of sight
        x, y, _ = world.body_position(used.name)
        assert -0.3 < y < 0.3 and 0.1 < x < 0.6
    a, b = _geoms(world.model, training.name), _geoms(world.model, held_out.name)
    assert {(t, s) for t, s, _ in a} != {(t, s) for t, s, _ in b}  # other shapes or sizes
    assert not {c for _, _, c in a} & {c for _, _, c in b}  # no colour in common


def test_the_button_cap_springs_back_up_and_returns_to_rest(worlds) -> None:
    world = worlds("press_button")
    world.reset(0)
    task = world.task
    joint = world.model.joint(task.button.joint).id
    world.step(0.5)
    assert abs(task.depth(world)) < 2e-4  # the preload holds it at the upper stop
    world.data.qpos[world.model.jnt_qposadr[joint]] = -0.009  # pressed, then let go
    world.step(0.3)
    assert abs(task.depth(world)) < 5e-4
    assert world.evaluate().stages[1] == ("contact", False)


def test_the_drawer_stays_put_unless_pulled_and_stops_at_its_travel(worlds) -> None:
    world = worlds("drawer")
    world.reset(0)
    task = world.task
    world.step(1.0)
    assert abs(task.opening(world)) < 1e-4  # gravity and the robot's home pose leave it shut
    dof = world.model.jnt_dofadr[world.model.joint(task.cabinet.joint).id]
    world.data.qvel[dof] = 0.3  # a nudge: damping and friction stop it part way
    world.step(1.0)
    nudged = task.opening(world)
    assert 0.01 < nudged < 0.05
    world.step(1.0)
    assert task.opening(world) == pytest.approx(nudged, abs=1e-4)  # and it stays there
    world.data.qvel[dof] = 1.0  # flung open: the stop holds it
    world.step(1.0)
    assert task.cabinet.travel - 0.003 < task.opening(world) < task.cabinet.travel + 0.003
    assert np.isfinite(world.data.qpos).all()
