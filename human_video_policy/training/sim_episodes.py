"""Robot episodes straight from the MuJoCo sim into the dataset format (``hvp dataset from-sim``).

Two sources, one dataset layout (the columns a converted bag gives, ``bag_to_dataset``):

- ``reach``: the scripted reach expert with DART noise (as ``training.record_demos``) on the
  simulated WidowX (:func:`record_sim_dataset`);
- a benchmark task (sim/tasks/): the task's scripted expert in the bench loop
  (sim/task_episode.py: the runtime's chunk executor, 10 Hz chunks, 50 Hz commands), the
  in-process twin of recording the sim_task graph with ``hvp record --preset sim_task`` and
  converting with ``hvp dataset from-bags --preset sim_task`` (:func:`record_task_dataset`).
  Both paths give the same dataset: the same features, camera and rows (the image, the
  measured joints and the joint command in force at each 10 Hz tick, from the first command
  on), within the timing jitter of DDS (test/test_replay.py compares them on one seed).

Every rollout becomes one dataset episode, so sim demonstrations mix with recorded and human
ones without ROS in the loop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from human_video_policy.errors import InputError

#: The sim node's ``success_hold_s`` default: a graph episode runs on this long after success
#: (and a recording of it holds those rows), so the in-process episodes do too.
GRAPH_SUCCESS_HOLD_S = 0.5


class _EpisodeRows:
    """Rows of the episode being recorded, and the dataset writer made on the first row (the
    spec needs the camera's intrinsics, which the world knows once it exists)."""

    CAMERA_KEY = "observation.images.camera_color"

    def __init__(
        self,
        out: str | Path,
        rate_hz: float,
        instruction: str,
        command_joints: Sequence[str],
        state_joints: Sequence[str],
        image_size: tuple[int, int],
        embodiment: str = "widowx",
    ) -> None:
        from human_video_policy.data.bag_to_dataset import check_output_folder

        self.out, self.rate_hz, self.instruction = Path(out), rate_hz, instruction
        check_output_folder(self.out)
        # Written beside ``out`` and moved into place when finished: a run that fails or is
        # interrupted leaves nothing half-written behind.
        self.staging = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"
        self.command_joints, self.state_joints = list(command_joints), list(state_joints)
        self.image_size, self.embodiment = image_size, embodiment
        self.writer: Any = None
        self.state: list[np.ndarray] = []
        self.action: list[np.ndarray] = []
        self.image: list[np.ndarray] = []
        self.times: list[float] = []

    def open(self, world: Any) -> None:
        from human_video_policy.data.bag_to_dataset import BagConversionConfig, episode_spec
        from human_video_policy.data.dataset_writer import DatasetWriter

        if self.writer is not None:
            return
        k = world.camera_intrinsics()
        camera = {
            "topic": "sim:scene_camera",
            "width": k.width,
            "height": k.height,
            "k": [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0],
            "frame_id": k.frame_id,
        }
        spec = episode_spec(
            BagConversionConfig(
                rate_hz=self.rate_hz, instruction=self.instruction, embodiment=self.embodiment
            ),
            self.command_joints,
            self.state_joints,
            {self.CAMERA_KEY: self.image_size},
            {self.CAMERA_KEY: camera},
        )
        self.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.writer = DatasetWriter(self.staging, spec)

    def add(self, image: np.ndarray, state: np.ndarray, action: np.ndarray, time: float) -> None:
        self.image.append(image)
        self.state.append(np.asarray(state, np.float32))
        self.action.append(np.asarray(action, np.float32))
        self.times.append(float(time))

    def flush(self, source: str) -> int:
        """Write the rows as one episode (nothing when there are none); returns the rows."""
        n = len(self.state)
        if n:
            times = np.asarray(self.times, np.float64)
            self.writer.add_episode(
                {
                    "observation.state": np.stack(self.state),
                    "action": np.stack(self.action),
                    "mask.action": np.ones((n, len(self.command_joints)), np.float32),
                    "mask.observation.state": np.ones((n, len(self.state_joints)), np.float32),
                    "segment_index": np.zeros(n, np.int64),
                    "timestamp": (times - times[0]).astype(np.float32),
                },
                self.instruction,
                {self.CAMERA_KEY: np.stack(self.image)},
                source=source,
            )
        for rows in (self.state, self.action, self.image, self.times):
            rows.clear()
        return n

    def flush_discard(self) -> None:
        """Drop the rows of the episode being recorded."""
        for rows in (self.state, self.action, self.image, self.times):
            rows.clear()

    def finalize(self) -> int:
        """Finish the dataset and move it into place; returns its frame count."""
        from human_video_policy.data.bag_to_dataset import move_into_place

        if self.writer is None or not self.writer.total_episodes:
            self.abort()
            raise InputError(f"no episode was kept: {self.out} was not written")
        self.writer.finalize()
        move_into_place(self.staging, self.out)
        return int(self.writer.total_frames)

    def abort(self) -> None:
        """Remove what was written (after an error)."""
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.abort()
        shutil.rmtree(self.staging, ignore_errors=True)


def record_sim_dataset(
    out: str | Path,
    episodes: int,
    *,
    seed: int = 0,
    image_size: tuple[int, int] = (128, 128),
    noise_std: float = 0.05,
    instruction: str = "reach the red target",
    progress: bool = False,
) -> tuple[int, float]:
    """Roll out the scripted reach expert (with DART noise, as ``record_demos``) in the sim and
    write one dataset episode per rollout; returns (frames, driver success rate).

    Rows at the policy rate (10 Hz): the rendered image (``image_size`` (height, width), the
    world renders at that size), the measured joints (8) and, as ``action``, the joint command
    in force at the row's time (7; the bag converter's convention)."""
    from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS
    from human_video_policy.sim.evaluate import evaluate
    from human_video_policy.sim.reach_expert import ReachExpert
    from human_video_policy.sim.widowx_world import WidowXWorldConfig
    from human_video_policy.training.record_demos import NoisyExpertSource, RecordConfig

    h, w = image_size
    rec = RecordConfig(
        episodes=episodes,
        seed=seed,
        image_height=h,
        image_width=w,
        noise_std=noise_std,
        world=WidowXWorldConfig(image_width=w, image_height=h),
        progress=progress,
    )
    eval_cfg = rec.evaluation_config()
    rows = _EpisodeRows(
        out,
        1.0 / eval_cfg.policy_period_s,
        instruction,
        WIDOWX_COMMAND_JOINTS,
        WIDOWX_STATE_JOINTS,
        (h, w),
    )
    current: dict[str, int | None] = {"seed": None}

    def observer(world, image, joint_state, stamp) -> None:  # type: ignore[no-untyped-def]
        rows.open(world)
        if world.seed != current["seed"]:
            rows.flush(f"sim:widowx_reach seed={current['seed']}")
            current["seed"] = world.seed
        image = image if image is not None else world.render_rgb()
        rows.add(image, joint_state, world.joint_command(), stamp)

    def factory(world):  # type: ignore[no-untyped-def]
        rng = np.random.default_rng([seed, 7919])
        return NoisyExpertSource(
            world, ReachExpert(world.scene_path), noise_std, rec.noise_period_s, rng
        )

    try:
        summary = evaluate(factory, eval_cfg, description="from-sim", observer=observer)
        rows.flush(f"sim:widowx_reach seed={current['seed']}")
        return rows.finalize(), summary.success_rate
    except BaseException:
        rows.abort()
        raise


def record_task_dataset(
    out: str | Path,
    task: str,
    episodes: int,
    *,
    robot: str = "widowx",
    level: str = "position",
    seed: int = 0,
    image_size: tuple[int, int] = (128, 128),
    instruction: str = "",
    keep_failures: bool = False,
    progress: bool = False,
) -> tuple[int, float]:
    """Roll out ``task``'s scripted expert on ``robot`` for seeds ``seed .. seed+episodes-1``
    (training seeds) at ``level`` and write one dataset episode per rollout; returns (frames,
    expert success rate). Failed rollouts are left out unless ``keep_failures``.

    Rows at 10 Hz, as ``hvp dataset from-bags --preset sim_task`` makes from a recording of the
    sim_task graph: the rendered image (``image_size`` (height, width)), the measured state
    joints and, as ``action``, the joint command in force at the row's time (the command
    joints), from the first command on, until 0.5 s after success (the sim node's hold). The
    arm is commanded through the sim node's safety layer (``run_task_episode(safety=True)``).
    ``instruction`` defaults to the task's description."""
    import sys

    from tqdm import tqdm

    from human_video_policy.sim.task_episode import run_task_episode
    from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
    from human_video_policy.sim.tasks import (
        check_robot_demos_allowed,
        check_training_seed,
        task_class,
    )
    from human_video_policy.validation import check_int_range

    check_int_range("episodes", episodes, 1)
    check_robot_demos_allowed(task)
    check_training_seed(seed)
    check_training_seed(seed + episodes - 1)
    h, w = image_size
    text = instruction or task_class(task).description
    world = TaskWorld(TaskWorldConfig(task=task, robot=robot, image_width=w, image_height=h))
    rows = _EpisodeRows(
        out,
        10.0,
        text,
        world.robot.command_joints,
        world.robot.state_joints,
        (h, w),
        embodiment=robot,
    )
    successes = 0
    try:
        expert = world.task.expert(world)

        def observer(world, image, state, now, command) -> None:  # type: ignore[no-untyped-def]
            if command is None:  # a recording's rows start at the first command
                return
            rows.open(world)
            rows.add(image if image is not None else world.render_rgb(), state, command, now)

        bar = tqdm(
            range(seed, seed + episodes),
            desc=f"from-sim {task}",
            unit="ep",
            disable=not progress,
            file=sys.stderr,
        )
        for s in bar:
            episode = run_task_episode(
                world,
                expert,
                s,
                level,
                observer=observer,
                safety=True,  # the graph's arm is behind the sim node's safety layer
                success_hold_s=GRAPH_SUCCESS_HOLD_S,
            )
            successes += episode.success
            if episode.success or keep_failures:
                rows.flush(f"sim:{task} robot={robot} level={level} seed={s}")
            else:
                rows.flush_discard()
        return rows.finalize(), successes / episodes
    except BaseException:
        rows.abort()
        raise
    finally:
        world.close()
