"""The press_button and drawer tasks (their experts, frozen and random policies are checked with
every task in test_task_suite.py): the held-out object really differs; stages latch (an expert
stopped early scores partial credit); the button's spring brings the cap back up and the drawer
only moves when pushed or pulled. The drawer on the RM75 + XHand: hand-sized cabinets whose
handle stands where the arm reaches, and a grasp only when the bar is held (fingers behind it
and the thumb in front), not when fingers alone touch it."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from task_helpers import StopAtPhase

from human_video_policy.sim.task_episode import run_task_episode
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
from human_video_policy.sim.tasks import task_names
from human_video_policy.sim.tasks.drawer import CABINETS, OBJECTS  # registers "drawer"
from human_video_policy.sim.tasks.press_button import BUTTONS  # registers "press_button"

TASKS = ("press_button", "drawer")


@pytest.fixture(scope="module")
def worlds():
    made: dict[tuple[str, str], TaskWorld] = {}

    def get(task: str, robot: str = "widowx") -> TaskWorld:
        if (task, robot) not in made:
            config = TaskWorldConfig(task=task, robot=robot, image_width=64, image_height=64)
            made[task, robot] = TaskWorld(config)
        return made[task, robot]

    yield get
    for world in made.values():
        world.close()


def test_both_tasks_are_registered_with_their_tags() -> None:
    assert set(TASKS) <= set(task_names(robot="widowx"))
    assert set(TASKS) <= set(task_names(robot="rm75_xhand"))
    assert "press_button" in task_names(tag="contact")
    assert "drawer" in task_names(tag="articulated")


@pytest.mark.parametrize(
    ("task", "robot", "phase", "reached"),
    [
        ("press_button", "widowx", 0, ("above",)),  # hovers over the cap
        ("drawer", "widowx", 2, ("grasp",)),  # holds the handle
        ("drawer", "widowx", 3, ("grasp", "open")),  # pulls it open and never pushes it back
        ("drawer", "rm75_xhand", 2, ()),  # fingers behind the bar, the thumb open: no grasp
        ("drawer", "rm75_xhand", 3, ("grasp",)),  # the thumb against the bar: held
        ("drawer", "rm75_xhand", 4, ("grasp", "open")),  # pulled open, never pushed back
    ],
)
def test_stages_latch_and_an_expert_stopped_early_scores_partial_credit(
    worlds, task: str, robot: str, phase: int, reached: tuple[str, ...]
) -> None:
    world = worlds(task, robot)
    stopped = world.task.expert(world)
    stopped.script = StopAtPhase(stopped.script, phase)
    episode = run_task_episode(world, stopped, 0, "position", max_episode_s=10.0)
    assert not episode.success
    assert episode.stages == reached
    assert episode.score < 1.0
    assert episode.score == pytest.approx(len(reached) / len(world.task.stages))


def _geoms(model: mujoco.MjModel, body: str) -> list[tuple[int, tuple, tuple]]:
    """(type, size, rgba) of every geom of ``body`` and of its children."""
    b = model.body(body).id
    return [
        (int(model.geom_type[g]), tuple(model.geom_size[g].round(4)), tuple(model.geom_rgba[g]))
        for g in range(model.ngeom)
        if b in (model.geom_bodyid[g], model.body_parentid[model.geom_bodyid[g]])
    ]


@pytest.mark.parametrize(
    ("task", "robot", "variants"),
    [
        ("press_button", "widowx", BUTTONS),
        ("drawer", "widowx", CABINETS),
        ("drawer", "rm75_xhand", OBJECTS["rm75_xhand"]),
    ],
)
def test_the_held_out_object_differs_and_the_unused_one_is_parked(
    worlds, task, robot, variants
) -> None:
    world = worlds(task, robot)
    training, held_out = variants
    cases = (("position", training, held_out), ("new_object", held_out, training))
    for level, used, parked in cases:
        world.reset(5, level)
        assert world.task.obj is used
        assert world.body_position(parked.name)[1] > 1.0  # out of sight
        x, y, _ = world.body_position(used.name)
        assert -0.3 < y < 0.3 and 0.1 < x < 0.75
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


def test_the_hands_cabinets_are_hand_sized_and_their_handle_stands_where_the_arm_reaches(
    worlds,
) -> None:
    world = worlds("drawer", "rm75_xhand")
    robot = world.robot
    for hand, gripper in zip(OBJECTS["rm75_xhand"], CABINETS, strict=True):
        assert hand.name == gripper.name  # the same task objects, sized for the hand
        assert hand.handle_half_length > gripper.handle_half_length + 0.025  # a palm's width
        assert hand.handle_standoff - hand.handle_radius > 0.05  # fingers fit behind the bar
        assert hand.handle_height > 0.08  # the hooked fingers hang below it
        assert hand.travel > 0.1
    for level in ("position", "new_object"):
        for seed in range(40):
            world.reset(seed, level)
            x, y, _ = world.task.handle_closed
            assert robot.workspace_x[0] <= x <= robot.workspace_x[1], (seed, level)
            assert robot.workspace_y[0] <= y <= robot.workspace_y[1], (seed, level)
            # The cabinet's front faces the base (the hand pulls toward it).
            assert world.task.axis @ -world.task.handle_closed / np.linalg.norm(
                world.task.handle_closed[:2]
            ) > np.cos(0.21)


@pytest.mark.parametrize(
    ("robot", "parts", "held"),
    [
        ("widowx", {0}, False),  # one finger
        ("widowx", {0, 1}, True),  # both fingers
        ("rm75_xhand", {2}, False),  # the index alone
        ("rm75_xhand", {2, 3, 4, 5}, False),  # four fingers behind the bar, nothing in front
        ("rm75_xhand", {1}, False),  # the thumb alone
        ("rm75_xhand", {1, 2}, True),  # thumb and index
        ("rm75_xhand", {0, 5}, True),  # palm and little finger
    ],
)
def test_the_drawer_grasp_needs_the_bar_between_opposing_parts(
    worlds, monkeypatch, robot: str, parts: set[int], held: bool
) -> None:
    world = worlds("drawer", robot)
    task = world.task
    monkeypatch.setattr(task, "parts_on_handle", lambda _world: set(parts))
    assert task.holds_handle(world) is held
    assert task.check_stages(world)[0]["grasp"] is held
