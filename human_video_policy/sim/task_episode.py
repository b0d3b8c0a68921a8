"""One closed-loop episode of a benchmark task, in process.

The loop the reach evaluation uses (sim/evaluate.py), for any task: every ``policy_period_s``
of sim time the policy gets the rendered image and the joint state and returns a chunk; the
runtime's :class:`ChunkExecutor` (the one the ROS executor node runs) turns chunks into joint
commands, clamped to the robot's limits, at ``control_rate_hz``. The task scores the episode
after every control tick; it ends at success (or ``success_hold_s`` later) or at the task's time
limit. With ``safety=True`` every command reaches the arm through the controller core and safety
layer of the sim node (sim/world_driver.py: speed and acceleration bounds, watchdog) ticking at
the node's 100 Hz, so an in-process episode is the graph's episode (sim_task graph) step for
step; without it (the bench's default, faster) the executor's clamps are the only ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from human_video_policy.policies.base import Policy
from human_video_policy.robots.spec import get_robot
from human_video_policy.runtime.chunk_executor import ChunkExecutor, ChunkExecutorConfig
from human_video_policy.sim.task_world import TaskWorld
from human_video_policy.sim.tasks.base import Level
from human_video_policy.validation import check_int_range, check_non_negative, check_positive

#: Rate (Hz) of the safety layer's ticks with ``safety=True``: the sim node's default
#: ``joint_state_rate_hz`` (config/sim_widowx.params.yaml), one tick per physics step there.
SAFETY_RATE_HZ = 100.0


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
    observer: Callable[[TaskWorld, np.ndarray | None, np.ndarray, float, np.ndarray | None], None]
    | None = None,
    safety: bool = False,
    success_hold_s: float = 0.0,
    execution: ChunkExecutorConfig | None = None,
    inference_delay_steps: int = 0,
    command_log: list[tuple[float, np.ndarray, bool]] | None = None,
) -> TaskEpisode:
    """Reset ``world`` to ``seed`` at ``level`` and run ``policy`` until success or timeout.

    ``observer(world, image, state, time, command)``, if given, sees every policy tick before
    the policy does: the image the policy gets (None for a policy without ``needs_image``), the
    joint state, the sim time and the joint command in force (the executor's last, None before
    its first): what a recording of the graph holds at that time (training/sim_episodes.py).
    ``safety``: command through the sim node's safety layer (module docstring).
    ``success_hold_s``: keep running this long after success (the sim node's hold between
    episodes; the outcome is the same).
    ``execution``: the chunk executor's settings (mode, execute_steps...; default the
    graph's); its ``control_rate_hz`` replaces ``control_rate_hz``.
    ``inference_delay_steps``: a chunk becomes available this many control ticks after its
    observation (an asynchronous policy whose inference takes that long; the executor keeps
    playing meanwhile, and no new inference starts while one is in flight); a policy with
    ``record_latency`` (runtime/rtc.py) is told each delay.
    ``command_log``: every command is appended as (time, command, started a new chunk)."""
    check_positive("policy_period_s", policy_period_s)
    check_positive("control_rate_hz", control_rate_hz)
    check_non_negative("success_hold_s", success_hold_s)
    check_int_range("inference_delay_steps", inference_delay_steps, 0, 10_000)
    execution = execution or ChunkExecutorConfig(control_rate_hz=control_rate_hz)
    control_rate_hz = execution.control_rate_hz
    world.reset(seed, level)
    if hasattr(policy, "reset"):
        policy.reset()
    limits = get_robot(world.robot.name).limits()
    executor = ChunkExecutor(execution, limits)
    control_dt = 1.0 / control_rate_hz
    ticks = max(1, round(policy_period_s / control_dt))
    controller = None
    substeps = 1
    if safety:
        from human_video_policy.sim.world_driver import sim_controller

        substeps = max(1, round(SAFETY_RATE_HZ * control_dt))
        controller = sim_controller(
            world, lambda: world.time, world.robot.name, control_rate_hz * substeps
        )
    limit = world.max_episode_s if max_episode_s is None else max_episode_s
    needs_image = getattr(policy, "needs_image", True)
    score = world.evaluate()
    time_to_success = world.time if score.success else None
    chunks = 0
    command: np.ndarray | None = None
    in_flight: tuple[object, int, float] | None = None  # (chunk, tick it is ready, its stamp)
    tick = 0
    try:
        while world.time < limit - 1e-9:
            if time_to_success is not None and world.time >= time_to_success + success_hold_s:
                break
            now = world.time
            if tick % ticks == 0 and in_flight is None:
                image = world.render_rgb() if needs_image else None
                state = world.joint_positions()
                if observer is not None:
                    observer(world, image, state, now, command)
                chunk = policy.predict_chunk(image, state, now)  # type: ignore[arg-type]
                chunks += 1
                in_flight = (chunk, tick + inference_delay_steps, now)
            if in_flight is not None and tick >= in_flight[1]:
                executor.submit(in_flight[0], now)  # type: ignore[arg-type]
                if hasattr(policy, "record_latency"):
                    policy.record_latency(now - in_flight[2])
                in_flight = None
            measured = world.joint_positions()[: len(world.joint_names)]
            issued = executor.command(world.time, measured)
            if issued is not None:
                command = issued
                if command_log is not None:
                    command_log.append(
                        (world.time, issued.copy(), executor.last_command_started_chunk)
                    )
                if controller is None:
                    world.set_joint_command(issued)
                else:
                    controller.submit(issued, world.time)
            for _ in range(substeps):
                if controller is not None:
                    controller.tick(world.time)
                world.step(control_dt / substeps)
            tick += 1
            score = world.evaluate()
            if score.success and time_to_success is None:
                time_to_success = world.time
    finally:
        if controller is not None:
            controller.stop()
    return TaskEpisode(
        task=world.config.task,
        robot=world.robot.name,
        level=world.level.value,
        seed=int(seed),
        success=time_to_success is not None,
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
