"""One closed-loop episode of a benchmark task, in process.

The loop the reach evaluation uses (sim/evaluate.py), for any task: every ``policy_period_s``
of sim time the policy gets the rendered image and the joint state and returns a chunk; the
runtime's :class:`ChunkExecutor` (the one the ROS executor node runs) turns chunks into joint
commands, clamped to the robot's limits, at ``control_rate_hz``. The task scores the episode
after every control tick; it ends at success or at the task's time limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from human_video_policy.policies.base import Policy
from human_video_policy.robots.spec import get_robot
from human_video_policy.runtime.chunk_executor import ChunkExecutor, ChunkExecutorConfig
from human_video_policy.sim.task_world import TaskWorld
from human_video_policy.sim.tasks.base import Level
from human_video_policy.validation import check_positive


@dataclass(frozen=True)
class TaskEpisode:
    """Outcome of one task episode.

    Attributes:
        task, robot, level, seed: what ran.
        success: the task's success detector held before the time limit.
        score: the task score (fraction of stages reached, 1.0 on success).
        stages: names of the stages reached, in order.
        time_to_success: sim seconds until success (None on failure).
        duration_s: sim seconds the episode ran.
        chunks: chunk requests made.
    """

    task: str
    robot: str
    level: str
    seed: int
    success: bool
    score: float
    stages: tuple[str, ...]
    time_to_success: float | None
    duration_s: float
    chunks: int


def run_task_episode(
    world: TaskWorld,
    policy: Policy,
    seed: int,
    level: Level | str = Level.POSITION,
    policy_period_s: float = 0.1,
    control_rate_hz: float = 50.0,
    max_episode_s: float | None = None,
) -> TaskEpisode:
    """Reset ``world`` to ``seed`` at ``level`` and run ``policy`` until success or timeout."""
    check_positive("policy_period_s", policy_period_s)
    check_positive("control_rate_hz", control_rate_hz)
    world.reset(seed, level)
    limits = get_robot(world.robot.name).limits()
    executor = ChunkExecutor(ChunkExecutorConfig(control_rate_hz=control_rate_hz), limits)
    control_dt = 1.0 / control_rate_hz
    ticks = max(1, round(policy_period_s / control_dt))
    limit = world.max_episode_s if max_episode_s is None else max_episode_s
    needs_image = getattr(policy, "needs_image", True)
    score = world.evaluate()
    time_to_success = None
    chunks = 0
    while world.time < limit - 1e-9 and not score.success:
        now = world.time
        image = world.render_rgb() if needs_image else None
        chunk = policy.predict_chunk(image, world.joint_positions(), now)  # type: ignore[arg-type]
        executor.submit(chunk, now)
        chunks += 1
        for _ in range(ticks):
            measured = world.joint_positions()[: len(world.joint_names)]
            command = executor.command(world.time, measured)
            if command is not None:
                world.set_joint_command(command)
            world.step(control_dt)
            score = world.evaluate()
            if score.success:
                time_to_success = world.time
                break
    return TaskEpisode(
        task=world.config.task,
        robot=world.robot.name,
        level=world.level.value,
        seed=int(seed),
        success=score.success,
        score=float(score.score),
        stages=tuple(name for name, reached in score.stages if reached),
        time_to_success=time_to_success,
        duration_s=float(world.time),
        chunks=chunks,
    )


class FrozenPolicy:
    """Holds the robot where it is (the detectors must not call this a success)."""

    needs_image = False

    def __init__(self, world: TaskWorld) -> None:
        self.world = world

    def predict_chunk(self, image, state, observation_stamp: float = 0.0):
        from human_video_policy.runtime.action_chunk import ActionChunk

        q = np.asarray(state, dtype=np.float32)[: len(self.world.joint_names)]
        return ActionChunk(
            np.tile(q, (10, 1)),
            0.1,
            tuple(self.world.joint_names),
            get_robot(self.world.robot.name).joint_action_space,
            float(observation_stamp),
        )


class RandomPolicy:
    """Random joint targets within the robot's limits, smoothed (a random baseline)."""

    needs_image = False

    def __init__(self, world: TaskWorld, seed: int = 0) -> None:
        self.world = world
        self.rng = np.random.default_rng(seed)
        self.limits = get_robot(world.robot.name).limits()

    def predict_chunk(self, image, state, observation_stamp: float = 0.0):
        from human_video_policy.runtime.action_chunk import ActionChunk

        n = len(self.world.joint_names)
        q = np.asarray(state, dtype=np.float64)[:n]
        lower = np.asarray(self.limits.lower, dtype=np.float64)
        upper = np.asarray(self.limits.upper, dtype=np.float64)
        goal = self.rng.uniform(lower, upper)
        rows = q + np.linspace(0.1, 1.0, 10)[:, None] * 0.3 * (goal - q)
        return ActionChunk(
            rows.astype(np.float32),
            0.1,
            tuple(self.world.joint_names),
            get_robot(self.world.robot.name).joint_action_space,
            float(observation_stamp),
        )
