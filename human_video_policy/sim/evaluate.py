"""Closed-loop evaluation of a chunk source (scripted expert or learned policy) on the WidowX
reach task.

The loop is sim/closed_loop.py's (the task suite's too): every ``policy_period_s`` of sim time
the source gets the rendered image and the joint state and returns an :class:`ActionChunk`; the
runtime's :class:`ChunkExecutor` (the same one the ROS executor node runs) turns chunks into
clamped joint commands at ``control_rate_hz``. An episode ends ``linger_s`` after success or
after the task's ``max_episode_s``. Deterministic for a given seed (MuJoCo and ONNX Runtime on
CPU are).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from human_video_policy.policies.base import Policy
from human_video_policy.robots.widowx import widowx_joint_limits
from human_video_policy.runtime.chunk_executor import ChunkExecutorConfig
from human_video_policy.sim.closed_loop import LoopConfig, run_closed_loop
from human_video_policy.sim.widowx_world import WidowXWorld, WidowXWorldConfig
from human_video_policy.validation import check_int_range, check_non_negative, check_positive

# observer(world, image or None, state, stamp) is called at every policy tick, before the source.
Observer = Callable[[WidowXWorld, "np.ndarray | None", np.ndarray, float], None]


@dataclass
class EvaluationConfig:
    """Settings of :func:`evaluate`.

    Attributes:
        episodes: number of episodes; episode i uses seed ``seed + i``.
        seed: first episode seed (>= 0).
        policy_period_s: sim seconds between chunk requests (the policy node runs at 10 Hz).
        control_rate_hz: executor command rate (Hz); physics runs between commands.
        stop_on_success: end an episode once it has succeeded (after ``linger_s``).
        linger_s: sim seconds to keep running after success before stopping (data
            collection uses it to record the settling phase; evaluation leaves it at 0).
        executor: chunk executor settings (its control_rate_hz is overridden by the above).
        world: sim world settings (image size, task...).
        progress: show a tqdm bar on stderr.
    """

    episodes: int = 20
    seed: int = 1000
    policy_period_s: float = 0.1
    control_rate_hz: float = 50.0
    stop_on_success: bool = True
    linger_s: float = 0.0
    executor: ChunkExecutorConfig = field(default_factory=ChunkExecutorConfig)
    world: WidowXWorldConfig = field(default_factory=WidowXWorldConfig)
    progress: bool = True

    def __post_init__(self) -> None:
        check_int_range("episodes", self.episodes, 1)
        check_int_range("seed", self.seed, 0)
        check_positive("policy_period_s", self.policy_period_s)
        check_positive("control_rate_hz", self.control_rate_hz)
        check_non_negative("linger_s", self.linger_s)
        self.executor.control_rate_hz = self.control_rate_hz


@dataclass
class EpisodeResult:
    """Outcome of one episode.

    Attributes:
        seed: the world seed.
        success: reached the target within the time limit.
        time_to_success: sim seconds until success (None on failure).
        final_distance: end-effector-to-goal distance at the end (m).
        min_distance: smallest distance during the episode (m).
        chunks: chunk requests made.
    """

    seed: int
    success: bool
    time_to_success: float | None
    final_distance: float
    min_distance: float
    chunks: int


@dataclass
class EvaluationSummary:
    """Aggregate of :class:`EpisodeResult` s."""

    results: list[EpisodeResult]

    @property
    def episodes(self) -> int:
        return len(self.results)

    @property
    def success_rate(self) -> float:
        return float(np.mean([r.success for r in self.results])) if self.results else 0.0

    @property
    def mean_time_to_success(self) -> float | None:
        """Mean sim seconds to success over the successful episodes (None if none)."""
        times = [r.time_to_success for r in self.results if r.time_to_success is not None]
        return float(np.mean(times)) if times else None

    def to_dict(self) -> dict:
        return {
            "episodes": self.episodes,
            "success_rate": self.success_rate,
            "mean_time_to_success_s": self.mean_time_to_success,
            "results": [asdict(r) for r in self.results],
        }


def run_episode(
    world: WidowXWorld,
    source: Policy,
    seed: int,
    config: EvaluationConfig,
    observer: Observer | None = None,
    inference_delay_steps: int = 0,
    command_log: list[tuple[float, np.ndarray, bool]] | None = None,
) -> EpisodeResult:
    """Reset ``world`` with ``seed`` and run ``source`` in closed loop until success/timeout
    (``inference_delay_steps``, ``command_log``: sim/closed_loop.py)."""
    world.reset(seed)
    distances = [world.target_distance()]

    def check() -> bool:
        distances.append(world.target_distance())
        return world.success()

    loop = LoopConfig(
        policy_period_s=config.policy_period_s,
        execution=config.executor,
        success_hold_s=config.linger_s if config.stop_on_success else 1e9,
        inference_delay_steps=inference_delay_steps,
    )
    seen = None if observer is None else (lambda w, i, s, t, c: observer(w, i, s, t))
    result = run_closed_loop(
        world,
        source,
        widowx_joint_limits(),
        "widowx",
        world.task.config.max_episode_s,
        check,
        loop,
        seen,
        command_log,
    )
    return EpisodeResult(
        seed=int(seed),
        success=result.time_to_success is not None,
        time_to_success=result.time_to_success,
        final_distance=world.target_distance(),
        min_distance=float(min(distances)),
        chunks=result.chunks,
    )


def evaluate(
    source_factory: Callable[[WidowXWorld], Policy],
    config: EvaluationConfig | None = None,
    description: str = "eval",
    observer: Observer | None = None,
) -> EvaluationSummary:
    """Run ``config.episodes`` episodes of the source built by ``source_factory(world)``."""
    config = config or EvaluationConfig()
    results: list[EpisodeResult] = []
    with WidowXWorld(config.world) as world:
        source = source_factory(world)
        bar = tqdm(
            range(config.episodes),
            desc=description,
            file=sys.stderr,
            disable=not config.progress,
            unit="ep",
        )
        for i in bar:
            results.append(run_episode(world, source, config.seed + i, config, observer))
            bar.set_postfix(success=f"{np.mean([r.success for r in results]):.2f}")
    return EvaluationSummary(results)


def expert_factory(world: WidowXWorld) -> Policy:
    """Source factory for the privileged scripted expert."""
    from human_video_policy.sim.reach_expert import PrivilegedExpertSource

    return PrivilegedExpertSource(world)


def exported_policy_factory(
    model_path: str, intra_op_threads: int = 1
) -> Callable[[WidowXWorld], Policy]:
    """Source factory for any exported policy (runtime.load_policy: a `hvp export` directory
    or a .onnx file)."""

    def factory(world: WidowXWorld) -> Policy:
        from human_video_policy.runtime.load_policy import load_policy

        return load_policy(model_path, intra_op_threads=intra_op_threads)

    return factory
