"""The one closed loop every in-process evaluation runs: policy -> chunk executor -> sim.

Every ``policy_period_s`` of sim time the policy gets the rendered image and the joint state
and returns an :class:`~human_video_policy.runtime.action_chunk.ActionChunk`; the runtime's
:class:`~human_video_policy.runtime.chunk_executor.ChunkExecutor` (the one the ROS executor
node runs, in the mode its config names) turns chunks into joint commands, clamped to the
robot's limits, at the control rate. Optional, for what the graph does and for benchmarks:

- ``safety``: commands reach the arm through the sim node's controller and safety layer
  (sim/world_driver.py) ticking at :data:`SAFETY_RATE_HZ`;
- ``inference_delay_steps``: a chunk becomes available that many control ticks after its
  observation, while the executor keeps playing (an asynchronous policy whose inference takes
  that long; no new inference starts while one is in flight); a policy with
  ``record_latency`` (runtime/rtc.py) is told each delay;
- ``command_log``: (time, command, started a new chunk) per command, for runtime/smoothness.py.

The caller's ``check()`` runs after every control tick and says whether the episode has
succeeded; the loop ends ``success_hold_s`` after the first success, or at ``max_time``.
Used by the task suite (sim/task_episode.py) and the reach evaluation (sim/evaluate.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from human_video_policy.robots.joint_limits import JointLimits
from human_video_policy.runtime.chunk_executor import ChunkExecutor, ChunkExecutorConfig
from human_video_policy.sim.world_base import PositionControlledWorld
from human_video_policy.validation import check_int_range, check_non_negative, check_positive

#: Rate (Hz) of the safety layer's ticks with ``safety=True``: the sim node's default
#: ``joint_state_rate_hz`` (config/sim_widowx.params.yaml), one tick per physics step there.
SAFETY_RATE_HZ = 100.0

#: observer(world, image or None, state, time, command in force or None), at every policy tick.
Observer = Callable[
    [PositionControlledWorld, "np.ndarray | None", np.ndarray, float, "np.ndarray | None"], None
]


@dataclass(frozen=True)
class LoopConfig:
    """How the loop runs (defaults: the graph's rates, no safety layer, no delay).

    Attributes:
        policy_period_s: sim seconds between chunk requests (the policy node's 10 Hz).
        execution: the chunk executor's settings (mode, execute_steps, control rate...).
        safety: command through the sim node's safety layer (module docstring).
        success_hold_s: keep running this long after success (the sim node's hold).
        inference_delay_steps: control ticks between an observation and its chunk (>= 0).
    """

    policy_period_s: float = 0.1
    execution: ChunkExecutorConfig = field(default_factory=ChunkExecutorConfig)
    safety: bool = False
    success_hold_s: float = 0.0
    inference_delay_steps: int = 0

    def __post_init__(self) -> None:
        check_positive("policy_period_s", self.policy_period_s)
        check_non_negative("success_hold_s", self.success_hold_s)
        check_int_range("inference_delay_steps", self.inference_delay_steps, 0, 10_000)


@dataclass(frozen=True)
class LoopResult:
    """What the loop saw: the first success time (None: none) and the chunks requested."""

    time_to_success: float | None
    chunks: int


def run_closed_loop(
    world: PositionControlledWorld,
    policy,
    limits: JointLimits,
    robot: str,
    max_time: float,
    check: Callable[[], bool],
    config: LoopConfig | None = None,
    observer: Observer | None = None,
    command_log: list[tuple[float, np.ndarray, bool]] | None = None,
) -> LoopResult:
    """Run ``policy`` on the (already reset) ``world`` until ``check()`` has held for
    ``config.success_hold_s`` or ``max_time``; see the module docstring."""
    config = config or LoopConfig()
    if hasattr(policy, "reset"):
        policy.reset()
    execution = config.execution
    executor = ChunkExecutor(execution, limits)
    control_dt = 1.0 / execution.control_rate_hz
    ticks = max(1, round(config.policy_period_s / control_dt))
    controller = None
    substeps = 1
    if config.safety:
        from human_video_policy.sim.world_driver import sim_controller

        substeps = max(1, round(SAFETY_RATE_HZ * control_dt))
        controller = sim_controller(
            world, lambda: world.time, robot, execution.control_rate_hz * substeps
        )
    needs_image = getattr(policy, "needs_image", True)
    time_to_success = world.time if check() else None
    chunks = 0
    command: np.ndarray | None = None
    in_flight: tuple[object, int, float] | None = None  # (chunk, tick it is ready, its stamp)
    tick = 0
    n = len(world.joint_names)
    try:
        while world.time < max_time - 1e-9:
            if time_to_success is not None and world.time >= time_to_success + (
                config.success_hold_s - 1e-9
            ):
                break
            now = world.time
            if tick % ticks == 0 and in_flight is None:
                image = world.render_rgb() if needs_image else None
                state = world.joint_positions()
                if observer is not None:
                    observer(world, image, state, now, command)
                chunk = policy.predict_chunk(image, state, now)
                chunks += 1
                in_flight = (chunk, tick + config.inference_delay_steps, now)
            if in_flight is not None and tick >= in_flight[1]:
                executor.submit(in_flight[0], now)  # type: ignore[arg-type]
                if hasattr(policy, "record_latency"):
                    policy.record_latency(now - in_flight[2])
                in_flight = None
            issued = executor.command(world.time, world.joint_positions()[:n])
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
            if check() and time_to_success is None:
                time_to_success = world.time
    finally:
        if controller is not None:
            controller.stop()
    return LoopResult(time_to_success, chunks)
