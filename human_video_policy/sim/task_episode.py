"""One closed-loop episode of a benchmark task, in process.

The loop is sim/closed_loop.py's (the one the reach evaluation runs too): every
``policy_period_s`` of sim time the policy gets the rendered image and the joint state and
returns a chunk; the runtime's chunk executor (the one the ROS executor node runs) turns chunks
into joint commands at the control rate; the task scores the episode after every control tick.
It ends at success (or ``success_hold_s`` later) or at the task's time limit. With
``safety=True`` every command reaches the arm through the sim node's safety layer, so an
in-process episode is the sim_task graph's episode step for step; without it (the bench's
default, faster) the executor's clamps are the only ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from human_video_policy.policies.base import Policy
from human_video_policy.robots.spec import get_robot
from human_video_policy.runtime.chunk_executor import ChunkExecutorConfig
from human_video_policy.sim.closed_loop import LoopConfig, Observer, run_closed_loop
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
    observer: Observer | None = None,
    safety: bool = False,
    success_hold_s: float = 0.0,
    execution: ChunkExecutorConfig | None = None,
    inference_delay_steps: int = 0,
    command_log: list[tuple[float, np.ndarray, bool]] | None = None,
) -> TaskEpisode:
    """Reset ``world`` to ``seed`` at ``level`` and run ``policy`` until success or timeout
    (sim/closed_loop.py; the task scores every control tick).

    ``observer(world, image, state, time, command)``, if given, sees every policy tick before
    the policy does: the image the policy gets (None for a policy without ``needs_image``), the
    joint state, the sim time and the joint command in force (the executor's last, None before
    its first): what a recording of the graph holds at that time (training/sim_episodes.py).
    ``safety``, ``success_hold_s``, ``inference_delay_steps``, ``command_log``: see
    :class:`~human_video_policy.sim.closed_loop.LoopConfig` and the loop's docstring.
    ``execution``: the chunk executor's settings (default the graph's at ``control_rate_hz``)."""
    check_positive("control_rate_hz", control_rate_hz)
    config = LoopConfig(
        policy_period_s=policy_period_s,
        execution=execution or ChunkExecutorConfig(control_rate_hz=control_rate_hz),
        safety=safety,
        success_hold_s=success_hold_s,
        inference_delay_steps=inference_delay_steps,
    )
    world.reset(seed, level)
    scores = [world.evaluate()]

    def check() -> bool:
        scores[0] = world.evaluate()
        return scores[0].success

    result = run_closed_loop(
        world,
        policy,
        get_robot(world.robot.name).limits(),
        world.robot.name,
        world.max_episode_s if max_episode_s is None else max_episode_s,
        check,
        config,
        observer,
        command_log,
    )
    score = scores[0]
    return TaskEpisode(
        task=world.config.task,
        robot=world.robot.name,
        level=world.level.value,
        seed=int(seed),
        success=result.time_to_success is not None,
        score=float(score.score),
        stages=tuple(name for name, reached in score.stages if reached),
        time_to_success=result.time_to_success,
        duration_s=float(world.time),
        chunks=result.chunks,
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
