"""Record scripted-expert demonstrations of a benchmark task, in process, for training.

The in-process path of issue 16's item 2 (the other records through the real graph with
``hvp record``): each episode runs the task's privileged expert in the bench loop
(sim/task_episode.py: the runtime's ChunkExecutor, 10 Hz chunks, 50 Hz commands); at every
policy tick the rendered image (resized as the policies resize it at run time), the measured
joint state and the expert's chunk are stored. The arm is driven by the expert's chunk plus a
slowly varying random joint offset (DART-style noise), so the data covers states near, not
only on, the expert's path; the label is always the clean expert chunk. Episodes that fail are
dropped (``keep_failures`` keeps them). Seeds are training seeds (below the evaluation block).

Output: the ``Demos`` npz of training/record_demos.py, which ``hvp train`` reads
(``data.sources[0].path=demos.npz``).

Usage: ``python -m human_video_policy.training.record_task_demos --task push --episodes 200
--out push_demos.npz``
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from human_video_policy.errors import ConfigError
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.image_ops import prepare_rgb
from human_video_policy.sim.task_episode import run_task_episode
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
from human_video_policy.sim.tasks import check_robot_demos_allowed, check_training_seed
from human_video_policy.training.record_demos import Demos
from human_video_policy.validation import check_int_range, check_non_negative


@dataclass
class TaskRecordConfig:
    """Settings of :func:`record_task_demos`.

    Attributes:
        task: registered task name.
        robot: robot name.
        episodes: episodes to roll out; episode i uses seed ``seed + i`` (training seeds).
        seed: first seed; the noise generator is seeded from it too.
        image_height, image_width: stored image size (the policy input size).
        render_height, render_width: camera render size before resizing.
        noise_std: std (rad) of the joint offset added to the driving chunks (0 = clean).
        noise_period_s: the offset is redrawn this often (sim seconds).
        keep_failures: also keep the samples of episodes the expert failed.
        progress: tqdm bar on stderr.
    """

    task: str = "push"
    robot: str = "widowx"
    episodes: int = 100
    seed: int = 0
    image_height: int = 64
    image_width: int = 64
    render_height: int = 128
    render_width: int = 128
    noise_std: float = 0.01
    noise_period_s: float = 0.5
    keep_failures: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        check_int_range("episodes", self.episodes, 1)
        check_robot_demos_allowed(self.task)
        check_training_seed(self.seed)
        check_training_seed(self.seed + self.episodes - 1)
        check_int_range("image_height", self.image_height, 8, 1024)
        check_int_range("image_width", self.image_width, 8, 1024)
        check_non_negative("noise_std", self.noise_std)
        check_non_negative("noise_period_s", self.noise_period_s)


class _NoisyRecordingExpert:
    """Drives with expert + noise, records (image, state, clean expert chunk) per tick."""

    def __init__(self, world: TaskWorld, config: TaskRecordConfig, rng: np.random.Generator):
        self.world, self.config, self.rng = world, config, rng
        self.expert = world.task.expert(world)
        self.images: list[np.ndarray] = []
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self._offset = np.zeros(len(world.joint_names))
        self._next_draw = 0.0

    needs_image = True

    def start_episode(self) -> None:
        self.images, self.states, self.actions = [], [], []
        self._next_draw = 0.0

    def predict_chunk(
        self, image: np.ndarray | None, state: np.ndarray, observation_stamp: float = 0.0
    ) -> ActionChunk:
        cfg = self.config
        label = self.expert.predict_chunk(None, state, observation_stamp)
        assert image is not None
        self.images.append(prepare_rgb(image, cfg.image_height, cfg.image_width))
        self.states.append(np.asarray(state, dtype=np.float32))
        self.actions.append(label.actions.astype(np.float32))
        if observation_stamp >= self._next_draw:
            self._offset = np.zeros(len(self.world.joint_names))
            self._offset[:-1] = self.rng.normal(0.0, cfg.noise_std, len(self._offset) - 1)
            self._next_draw = observation_stamp + max(cfg.noise_period_s, 1e-6)
        drive = (label.actions + self._offset).astype(np.float32)
        return ActionChunk(drive, label.dt, label.names, label.action_space, observation_stamp)


def record_task_demos(config: TaskRecordConfig) -> tuple[Demos, dict]:
    """Roll out the noisy expert; returns the demos and a summary (episodes kept, success)."""
    world = TaskWorld(
        TaskWorldConfig(
            task=config.task,
            robot=config.robot,
            image_width=config.render_width,
            image_height=config.render_height,
        )
    )
    rng = np.random.default_rng(config.seed)
    source = _NoisyRecordingExpert(world, config, rng)
    parts: list[Demos] = []
    successes = 0
    try:
        for i in tqdm(
            range(config.episodes),
            desc=f"record {config.task}",
            unit="ep",
            disable=not config.progress,
            file=sys.stderr,
        ):
            seed = config.seed + i
            source.start_episode()
            episode = run_task_episode(world, source, seed)
            successes += episode.success
            if (episode.success or config.keep_failures) and source.images:
                n = len(source.images)
                parts.append(
                    Demos(
                        np.stack(source.images),
                        np.stack(source.states),
                        np.stack(source.actions),
                        np.full(n, seed, np.int64),
                        config.robot,
                        world.task.description,
                    )
                )
    finally:
        world.close()
    if not parts:
        raise ConfigError(f"no episode of {config.task!r} was kept: the expert failed them all")
    demos = parts[0]
    for part in parts[1:]:
        demos = demos.concat(part)
    summary = {
        "task": config.task,
        "episodes": config.episodes,
        "expert_successes": successes,
        "episodes_kept": len(parts),
        "samples": len(demos),
    }
    return demos, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, help="task name (hvp bench --list)")
    parser.add_argument("--robot", default="widowx")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-std", type=float, default=0.01)
    parser.add_argument("--image-size", type=int, default=64, help="stored square image size")
    parser.add_argument("--keep-failures", action="store_true")
    parser.add_argument("--out", required=True, help="output .npz")
    args = parser.parse_args(argv)
    config = TaskRecordConfig(
        task=args.task,
        robot=args.robot,
        episodes=args.episodes,
        seed=args.seed,
        noise_std=args.noise_std,
        image_height=args.image_size,
        image_width=args.image_size,
        keep_failures=args.keep_failures,
    )
    demos, summary = record_task_demos(config)
    path = demos.save(args.out)
    print(f"{summary}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
