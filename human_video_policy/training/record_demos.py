"""Record reach demonstrations: (image, joint state, expert action chunk) samples.

Rollouts run in the closed-loop evaluation loop (sim/evaluate.py); at every policy tick the
observer stores the rendered image (resized with ``runtime.image_ops.prepare_rgb``, exactly as
``OnnxPolicy`` does at run time), the measured joint state and the privileged expert's chunk
for that state. Who *drives* the arm is a separate choice:

- ``NoisyExpertSource``: the expert plus a slowly varying random joint offset (DART-style
  noise injection), so the data covers states near, not only on, the expert's path;
- any policy (DAgger): the learned policy drives, the expert labels what it visits.

Usage: ``python -m human_video_policy.training.record_demos --episodes 100 --out demos.npz``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.policies.action_spaces import WIDOWX_JOINT_POSITION
from human_video_policy.policies.base import Policy
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.image_ops import prepare_rgb
from human_video_policy.sim.evaluate import (
    EvaluationConfig,
    EvaluationSummary,
    evaluate,
)
from human_video_policy.sim.reach_expert import ReachExpert
from human_video_policy.sim.widowx_world import WidowXWorld, WidowXWorldConfig
from human_video_policy.validation import check_int_range, check_non_negative, image_size_arg


def default_world_config() -> WidowXWorldConfig:
    """The world the default policy is trained and evaluated in (128x128 renders)."""
    return WidowXWorldConfig(image_width=128, image_height=128)


@dataclass
class Demos:
    """A dataset of policy-tick samples.

    Attributes:
        images: (N, H, W, 3) uint8, already resized to the policy input size.
        states: (N, S) float32 measured joint positions (the robot's state joints; the
            WidowX's 8 WIDOWX_STATE_JOINTS).
        actions: (N, horizon, A) float32 expert joint targets (the robot's command joints;
            the WidowX's 7 WIDOWX_COMMAND_JOINTS).
        episodes: (N,) int64 episode seed of each sample.
        robot: the robot (robots/spec.py) whose joints these are (files written before it
            existed are the WidowX's).
        instruction: the task text ("" = the reach task's).
    """

    images: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    episodes: np.ndarray
    robot: str = "widowx"
    instruction: str = ""

    def __post_init__(self) -> None:
        n = len(self.images)
        if not (len(self.states) == len(self.actions) == len(self.episodes) == n):
            raise InputError(
                f"demo arrays disagree in length: images {n}, states {len(self.states)}, "
                f"actions {len(self.actions)}, episodes {len(self.episodes)}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @staticmethod
    def empty(height: int, width: int, horizon: int, dims: int = 7) -> Demos:
        return Demos(
            np.zeros((0, height, width, 3), np.uint8),
            np.zeros((0, 8), np.float32),
            np.zeros((0, horizon, dims), np.float32),
            np.zeros((0,), np.int64),
        )

    def concat(self, other: Demos) -> Demos:
        if (other.robot, other.instruction) != (self.robot, self.instruction):
            raise InputError(
                f"cannot join demos of {other.robot!r} ({other.instruction!r}) to demos of "
                f"{self.robot!r} ({self.instruction!r})"
            )
        return Demos(
            np.concatenate([self.images, other.images]),
            np.concatenate([self.states, other.states]),
            np.concatenate([self.actions, other.actions]),
            np.concatenate([self.episodes, other.episodes]),
            self.robot,
            self.instruction,
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            images=self.images,
            states=self.states,
            actions=self.actions,
            episodes=self.episodes,
            robot=np.array(self.robot),
            instruction=np.array(self.instruction),
        )
        return path

    @staticmethod
    def load(path: str | Path) -> Demos:
        try:
            with np.load(path) as data:
                robot = str(data["robot"]) if "robot" in data.files else "widowx"
                text = str(data["instruction"]) if "instruction" in data.files else ""
                return Demos(
                    data["images"], data["states"], data["actions"], data["episodes"], robot, text
                )
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read demonstrations from {path}: {exc}") from exc


@dataclass
class RecordConfig:
    """Settings of :func:`record`.

    Attributes:
        episodes: episodes to roll out; episode i uses world seed ``seed + i``.
        seed: first world seed; the noise generator is seeded from it too.
        image_height, image_width: stored image size (the policy input size).
        noise_std: std (rad) of the joint offset added to the expert's chunks (0 = clean).
        noise_period_s: the offset is redrawn this often (s).
        max_episode_s: episode time limit while recording (s).
        linger_s: keep recording this long after success (s).
        world: the sim world (render size, task).
        progress: tqdm bar on stderr.
    """

    episodes: int = 100
    seed: int = 0
    image_height: int = 64
    image_width: int = 64
    noise_std: float = 0.05
    noise_period_s: float = 0.5
    max_episode_s: float = 4.0
    linger_s: float = 0.6
    world: WidowXWorldConfig = field(default_factory=default_world_config)
    progress: bool = True

    def __post_init__(self) -> None:
        check_int_range("episodes", self.episodes, 1)
        check_int_range("seed", self.seed, 0)
        check_int_range("image_height", self.image_height, 1, 1024)
        check_int_range("image_width", self.image_width, 1, 1024)
        check_non_negative("noise_std", self.noise_std)
        check_non_negative("noise_period_s", self.noise_period_s)
        check_non_negative("max_episode_s", self.max_episode_s)
        check_non_negative("linger_s", self.linger_s)

    def evaluation_config(self) -> EvaluationConfig:
        task = replace(self.world.task, max_episode_s=self.max_episode_s)
        return EvaluationConfig(
            episodes=self.episodes,
            seed=self.seed,
            linger_s=self.linger_s,
            world=replace(self.world, task=task),
            progress=self.progress,
        )


class NoisyExpertSource:
    """The privileged expert with a piecewise-constant random joint offset (DART noise)."""

    needs_image = False

    def __init__(
        self,
        world: WidowXWorld,
        expert: ReachExpert,
        std: float,
        period_s: float,
        rng: np.random.Generator,
    ) -> None:
        self.world, self.expert, self.rng = world, expert, rng
        self.std, self.period_s = std, period_s
        self._offset = np.zeros(7)
        self._next_draw = 0.0
        self._last_stamp = np.inf

    def predict_chunk(
        self, image: np.ndarray | None, state: np.ndarray, observation_stamp: float = 0.0
    ) -> ActionChunk:
        if observation_stamp < self._last_stamp:  # a new episode started
            self._next_draw = observation_stamp
        self._last_stamp = observation_stamp
        if observation_stamp >= self._next_draw:
            self._offset = np.zeros(7)
            self._offset[:6] = self.rng.normal(0.0, self.std, 6)
            self._offset[3] = self._offset[5] = 0.0  # the rolls barely move the tip
            self._next_draw = observation_stamp + max(self.period_s, 1e-6)
        plan = self.expert.plan(state, self.world.target_position()) + self._offset
        return ActionChunk(
            plan.astype(np.float32),
            self.expert.config.dt,
            self.expert.names,
            WIDOWX_JOINT_POSITION,
            observation_stamp,
        )


class _Recorder:
    """Observer storing (resized image, state, expert label) at every policy tick."""

    def __init__(self, expert: ReachExpert, height: int, width: int) -> None:
        self.expert, self.height, self.width = expert, height, width
        self.images: list[np.ndarray] = []
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.episodes: list[int] = []

    def __call__(
        self, world: WidowXWorld, image: np.ndarray | None, state: np.ndarray, stamp: float
    ) -> None:
        if image is None:
            image = world.render_rgb()
        self.images.append(prepare_rgb(image, self.height, self.width))
        self.states.append(state.astype(np.float32))
        self.actions.append(self.expert.plan(state, world.target_position()))
        self.episodes.append(int(world.seed or 0))

    def demos(self) -> Demos:
        if not self.images:
            return Demos.empty(self.height, self.width, self.expert.config.horizon)
        return Demos(
            np.stack(self.images),
            np.stack(self.states),
            np.stack(self.actions),
            np.asarray(self.episodes, np.int64),
        )


def record(
    config: RecordConfig,
    driver_factory: Callable[[WidowXWorld, ReachExpert], Policy] | None = None,
    description: str = "demos",
) -> tuple[Demos, EvaluationSummary]:
    """Roll out ``config.episodes`` episodes and return the expert-labelled samples.

    ``driver_factory(world, expert)`` builds who drives the arm; default: the noisy expert.
    """
    eval_config = config.evaluation_config()
    holder: dict[str, _Recorder] = {}

    def factory(world: WidowXWorld) -> Policy:
        expert = ReachExpert(world.scene_path)
        holder["recorder"] = _Recorder(expert, config.image_height, config.image_width)
        if driver_factory is not None:
            return driver_factory(world, expert)
        rng = np.random.default_rng([config.seed, 7919])
        return NoisyExpertSource(world, expert, config.noise_std, config.noise_period_s, rng)

    def observer(
        world: WidowXWorld, image: np.ndarray | None, state: np.ndarray, stamp: float
    ) -> None:
        holder["recorder"](world, image, state, stamp)

    summary = evaluate(factory, eval_config, description=description, observer=observer)
    return holder["recorder"].demos(), summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--image-size",
        type=image_size_arg,
        default="64x64",
        metavar="WxH",
        help="stored image size (default: 64x64)",
    )
    parser.add_argument("--noise-std", type=float, default=0.05, help="DART noise (rad)")
    parser.add_argument("--out", required=True, help="output .npz")
    args = parser.parse_args(argv)
    try:
        config = RecordConfig(
            episodes=args.episodes,
            seed=args.seed,
            image_height=args.image_size[1],
            image_width=args.image_size[0],
            noise_std=args.noise_std,
        )
    except ConfigError as exc:
        parser.error(str(exc))
    demos, summary = record(config)
    path = demos.save(args.out)
    print(
        json.dumps(
            {"out": str(path), "samples": len(demos), "driver_success_rate": summary.success_rate}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
