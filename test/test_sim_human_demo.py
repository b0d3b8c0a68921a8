"""Simulated human demonstrations (sim/human_demo.py): the human episode of a task instance
starts from the robot episode's object poses, the scripted human experts succeed through real
contacts at human speeds, and the export is what ``hvp video process`` writes (read back by
the project's readers), with ground-truth keypoints on the rendered hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.pipeline.episode_format import read_episode, read_video_record
from human_video_policy.sim.human_demo import (
    HUMAN_EXPERTS,
    VIDEOS_DIR,
    HumanTaskWorld,
    PourHuman,
    SaucepanHuman,
    export_demo,
    human_expert,
    main,
    parse_seeds,
    read_sim_state,
    run_human_episode,
)
from human_video_policy.sim.human_hand import hand_frame
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
from human_video_policy.video.reader import VideoReader

TASKS = ("pick_place", "push", "press_button", "drawer", "pour", "stack")


@pytest.fixture(scope="module")
def worlds():
    made = {t: HumanTaskWorld(TaskWorldConfig(t, image_width=160, image_height=120)) for t in TASKS}
    yield made
    for w in made.values():
        w.close()


@pytest.fixture(scope="module")
def rendered(worlds, tmp_path_factory):
    """One rendered pick_place demo (320 x 240) exported into a fresh folder."""
    with HumanTaskWorld(TaskWorldConfig("pick_place", image_width=320, image_height=240)) as w:
        demo = run_human_episode(w, 3, render=True)
    out = tmp_path_factory.mktemp("human_demos")
    return demo, out, export_demo(demo, out)


def _state(world: TaskWorld) -> dict[str, np.ndarray]:
    """Poses (position, quaternion) of every free body and every mocap body of the task
    (plate, goal, cabinet, bowl, beads, distractors), by body name: what a task instance
    fixes."""
    m, d = world.model, world.data
    out = {}
    for b in range(m.nbody):
        name = m.body(b).name
        if name.startswith("hand") or name == "human":
            continue
        joint = m.body_jntadr[b]
        if m.body_mocapid[b] >= 0 or (joint >= 0 and m.jnt_type[joint] == 0):
            out[name] = np.concatenate([d.xpos[b], d.xquat[b]])
    return out


@pytest.mark.parametrize(
    ("task", "seed", "level"),
    [
        ("pick_place", 7, "scene"),
        ("push", 4, "position"),
        ("drawer", 5, "position"),
        ("pour", 3, "position"),
        ("stack", 8, "new_skill"),
    ],
)
def test_a_human_episode_starts_from_the_robot_episodes_object_poses(
    worlds, task: str, seed: int, level: str
) -> None:
    human = worlds[task]
    with TaskWorld(TaskWorldConfig(task, image_width=16, image_height=16)) as robot:
        robot.reset(seed, level)
        human.reset(seed, level)
        want, got = _state(robot), _state(human)
    assert set(got) == set(want) and len(want) >= 3, (sorted(got), sorted(want))
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    if level == "scene":  # distractors out on the table in both
        assert sum(p[2] > -0.5 for n, p in got.items() if n.startswith("distractor")) >= 2
    human.reset(seed + 1, level)
    assert any(not np.array_equal(_state(human)[n], want[n]) for n in want)


@pytest.mark.parametrize("task", TASKS)
def test_the_human_expert_succeeds_and_the_hand_moves_at_human_speeds(worlds, task: str) -> None:
    world = worlds[task]
    for seed in (0, 1, 2):
        demo = run_human_episode(world, seed, fps=30.0)
        assert demo.success, (task, seed, demo.stages)
        assert demo.stages == world.task.stages
        # through contacts, no attachment: the only equality constraint is the weld of the
        # hand's root to its target; the task's object really moved (the button is fixed)
        assert world.model.neq == 1
        if task in ("pick_place", "push", "stack"):
            start, end = (demo.object_positions[world.task.obj.name][i] for i in (0, -1))
            assert np.linalg.norm(end[:2] - start[:2]) > 0.05
        if task == "pour":  # carried over the bowl and put back; the beads are in the bowl
            assert type(human_expert(world)) is PourHuman  # the handle-less cup: side pinch
            cup = demo.object_positions[world.task.obj.name]
            assert np.linalg.norm(cup[:, :2] - cup[0, :2], axis=1).max() > 0.1
            assert world.task.beads_in_bowl(world) >= 3
        if task == "drawer":  # pulled out at least 6 cm, then closed
            assert world.task.max_opening >= 0.06 and world.task.opening(world) < 0.01
        # the stages before success were reached on the way (not only latched by success)
        times = demo.stage_times_s
        assert all(times[s] < demo.time_to_success for s in world.task.stages[:-1]), times
        speed = np.linalg.norm(np.diff(demo.wrist_position_world, axis=0), axis=1) * demo.fps
        assert 0.3 < speed.max() < 0.75, (task, seed, speed.max())
        assert demo.stamps_s[-1] < world.max_episode_s - 1.0  # done, not timed out
        assert demo.keypoints_world.shape == (demo.num_frames, 21, 3)


def test_the_hand_rests_clear_of_the_objects(worlds) -> None:
    """Pour seed 17 stands the cup under the resting fingers: the rest pose is raised."""
    world = worlds["pour"]
    world.reset(17)
    assert world.rest_pose()[0][2] > HumanTaskWorld.REST_POSITION[2]
    assert not world._hand_touches_objects()
    world.reset(0)
    assert world.rest_pose()[0][2] == HumanTaskWorld.REST_POSITION[2]


def test_press_button_measures_above_from_the_pressing_fingertip(worlds) -> None:
    world = worlds["press_button"]
    world.reset(0)
    top = world.task.cap_position(world)
    tip = world.task.presser(world, top)
    tips = world.hand.keypoints()[[4, 8, 12, 16, 20]]
    assert any(np.array_equal(tip, t) for t in tips)  # a fingertip, not the wrist - 1.6 cm


def test_the_hand_has_real_contacts_the_table_stops_it(worlds) -> None:
    world = worlds["push"]
    world.reset(0)
    down = hand_frame([1.0, 0.0, 0.0], [0.0, 0.0, -1.0])  # palm flat on the table
    world.hand.set_wrist_pose([0.3, 0.15, 0.05], down)
    world.hand.set_wrist_target([0.3, 0.15, -0.02], down)  # 2 cm under the table top
    world.step(0.5)
    kp = world.hand.keypoints()
    assert kp[:, 2].min() > -0.003  # held up by the table (soft contact), not through it
    # the palm rests on the table (the wrist ~1.7 cm above it): the weld yields
    assert world.hand.wrist_pose()[0][2] > 0.014
    world.reset(0)


def test_export_is_what_hvp_video_process_writes_and_readers_read_it(rendered) -> None:
    demo, out, folder = rendered
    record = read_video_record(folder)
    assert record is not None and record["status"] == "ok" and record["ground_truth"]
    assert record["task_instance"] == {
        "task": "pick_place",
        "robot": "widowx",
        "level": "position",
        "seed": 3,
    }
    episode = read_episode(folder / record["episodes"][0]["file"])
    T = demo.num_frames
    assert episode.handedness == "right" and episode.num_frames == T
    assert episode.extra["task_instance"] == record["task_instance"]
    assert episode.intrinsics["fx"] == pytest.approx(demo.intrinsics.fx)
    a = episode.arrays
    assert a["actions_51"].shape == (T, 51) and a["joint_angles"].shape == (T, 15, 3)
    assert not a["filled"].any()
    # the wrist 6D pose recovered from the keypoints is the simulated hand frame
    R_cam = demo.camera_pose[:3, :3].T @ demo.wrist_rotation_world
    assert np.abs(a["wrist_rotation"] - R_cam).max() < 1e-6
    assert np.abs(a["keypoints_cam"] - demo.keypoints_cam).max() < 1e-12
    # the source video: H.264 (when ffmpeg is there), every frame
    video = out / VIDEOS_DIR / f"{demo.video_id}.mp4"
    assert record["source"] == str(video.resolve())
    assert len(list(VideoReader(video))) == T
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [line["video_id"] for line in index] == [demo.video_id]
    state = read_sim_state(folder)
    assert state["meta"]["seed"] == 3
    assert state["object_positions"].shape == (T, len(state["object_names"]), 3)
    assert np.allclose(state["keypoints_world"], demo.keypoints_world)


@pytest.mark.parametrize(("task", "seed"), [("drawer", 4), ("pour", 6)])
def test_exports_of_drawer_and_pour_are_readable(tmp_path, task: str, seed: int) -> None:
    with HumanTaskWorld(TaskWorldConfig(task, image_width=96, image_height=72)) as w:
        demo = run_human_episode(w, seed, render=True, fps=15.0)
    assert demo.success, demo.stages
    folder = export_demo(demo, tmp_path)
    record = read_video_record(folder)
    assert record is not None and record["status"] == "ok" and record["success"]
    instance = {"task": task, "robot": "widowx", "level": "position", "seed": seed}
    assert record["task_instance"] == instance
    assert record["stages"] == list(w.task.stages)
    episode = read_episode(folder / record["episodes"][0]["file"])
    T = demo.num_frames
    assert episode.num_frames == T and episode.extra["task_instance"] == instance
    assert episode.arrays["actions_51"].shape == (T, 51)
    assert len(list(VideoReader(tmp_path / VIDEOS_DIR / f"{demo.video_id}.mp4"))) == T
    state = read_sim_state(folder)
    names = list(state["object_names"])
    assert state["object_positions"].shape == (T, len(names), 3)
    if task == "pour":  # the beads end in the bowl
        beads = state["object_positions"][-1, [names.index(f"bead_{i}") for i in range(4)]]
        assert (np.linalg.norm(beads[:, :2] - w.task.bowl_position(w)[:2], axis=1) < 0.05).all()


def _skin(rgb: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels (as test_sim_human_hand.py): red/green and green/blue high."""
    f = rgb.astype(np.float64) + 1.0
    return (f[..., 0] / f[..., 1] > 1.25) & (f[..., 1] / f[..., 2] > 1.08) & (rgb[..., 0] > 40)


def _hits(mask: np.ndarray, pixels: np.ndarray, radius: int = 3) -> int:
    h, w = mask.shape
    hits = 0
    for u, v in np.round(pixels).astype(int):
        if 0 <= u < w and 0 <= v < h:
            hits += bool(
                mask[max(v - radius, 0) : v + radius + 1, max(u - radius, 0) : u + radius + 1].any()
            )
    return hits


def test_ground_truth_keypoints_land_on_the_rendered_hand(rendered) -> None:
    demo, out, folder = rendered
    episode = read_episode(folder / "episode_000_right.npz")
    px = episode.arrays["keypoints_px"]
    decoded = {f.index: f.rgb for f in VideoReader(out / VIDEOS_DIR / f"{demo.video_id}.mp4")}
    for i in np.linspace(0, demo.num_frames - 1, 6).astype(int):
        assert _hits(_skin(demo.frames[i]), px[i]) >= 19, i
        assert _hits(_skin(decoded[i]), px[i]) >= 18, i  # and in the encoded video
        # not trivially true: the same pixels 60 px away land on the table
        assert _hits(_skin(demo.frames[i]), px[i] + [0.0, 60.0]) <= 6, i


def test_cli_writes_demos_and_rejects_bad_arguments(tmp_path, capsys) -> None:
    assert (
        main(
            [
                "--task",
                "push",
                "--seeds",
                "5",
                "--out",
                str(tmp_path),
                "--width",
                "96",
                "--height",
                "72",
            ]
        )
        == 0
    )
    assert "1/1 successful" in capsys.readouterr().out
    assert (tmp_path / "human_push_widowx_position_000005" / "episode_000_right.npz").is_file()
    assert parse_seeds("0,4,7-9") == [0, 4, 7, 8, 9]
    with pytest.raises(InputError, match="seeds"):
        parse_seeds("3-1")
    with pytest.raises(ConfigError, match="evaluation"):
        parse_seeds("1000000")
    # every WidowX task has a human expert (stack, the new_skill task, is seen only in them)
    from human_video_policy.sim.tasks import task_names

    assert sorted(HUMAN_EXPERTS) == task_names(robot="widowx")
    with pytest.raises(SystemExit):
        main(["--task", "no_such_task", "--seeds", "0", "--out", str(tmp_path)])


@pytest.mark.parametrize("task", ["pick_place", "press_button", "drawer", "pour"])
def test_human_episodes_mirror_rm75_instances_too(task: str) -> None:
    """The hand does the RM75 + XHand's task instances (its hand-sized objects, its workspace,
    seen by its head camera) from the robot episode's object poses, and succeeds."""
    with (
        HumanTaskWorld(
            TaskWorldConfig(task, robot="rm75_xhand", image_width=64, image_height=48)
        ) as human,
        TaskWorld(
            TaskWorldConfig(task, robot="rm75_xhand", image_width=16, image_height=16)
        ) as robot,
    ):
        robot.reset(4, "position")
        human.reset(4, "position")
        want, got = _state(robot), _state(human)
        assert set(want) <= set(got) and len(want) >= 2, (sorted(got), sorted(want))
        for name in want:
            if not name.startswith(("rm75", "right_hand", "base")):
                assert np.array_equal(got[name], want[name]), name
        if task == "pour":  # the saucepan (a cup with a handle) gets the handle grip
            assert type(human_expert(human)) is SaucepanHuman
        demo = run_human_episode(human, 4)
        assert demo.success, (task, demo.stages)
        assert demo.robot == "rm75_xhand"
        if task == "pour":  # all four beads poured, the saucepan put back upright
            cup = demo.object_positions[human.task.obj.name]
            assert human.task.beads_in_bowl(human) == 4
            assert np.linalg.norm(cup[-1] - cup[0]) < 0.03
            assert human.body_rotation(human.task.obj.name)[2, 2] > 0.99
