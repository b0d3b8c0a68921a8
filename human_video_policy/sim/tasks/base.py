"""What a benchmark task is: scene additions, a random initial state, stages and success.

A task (dm_control's suites are the model) adds its objects to the composed scene, draws an
initial state from a seed at a generalisation level, and judges the episode: success plus a
task score with partial credit per sub-step (method A's "task score": the fraction of the
task's ordered stages completed). Stages latch: once reached in an episode they stay reached,
and a stage counts only after the ones before it.

Generalisation levels (human_video_prompt_policy.txt, section IV):

- ``position``: object poses drawn at random, nothing else changes;
- ``scene``: plus distractor objects on the table;
- ``background``: plus random table and backdrop colours and light;
- ``new_object``: plus the task's held-out object (shape, size, colour never used in training);
- ``new_skill``: a task seen only in human videos (its tasks carry the ``human_only`` tag).

Seeds: training and data collection use seeds below :data:`EVALUATION_SEED_BASE`; each level
has its own fixed evaluation seed list above it (:func:`evaluation_seeds`), so no evaluation
episode repeats a training layout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

import mujoco
import numpy as np

from human_video_policy.errors import ConfigError

if TYPE_CHECKING:
    from human_video_policy.policies.base import Policy
    from human_video_policy.sim.scene import SceneRobot
    from human_video_policy.sim.task_world import TaskWorld


class Level(str, Enum):
    """Generalisation level of an evaluation episode (see the module docstring)."""

    POSITION = "position"
    SCENE = "scene"
    BACKGROUND = "background"
    NEW_OBJECT = "new_object"
    NEW_SKILL = "new_skill"

    @classmethod
    def parse(cls, value: str | Level) -> Level:
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(
                f"level={value!r} is invalid: choose one of {[lv.value for lv in cls]}"
            ) from None

    @property
    def rank(self) -> int:
        """Levels are cumulative: each includes the variations of those before it."""
        return list(Level).index(self)


EVALUATION_SEED_BASE = 1_000_000
"""Seeds at or above this are reserved for evaluation; training uses seeds below it."""


def evaluation_seeds(level: Level | str, count: int) -> list[int]:
    """The fixed evaluation seeds of ``level``: ``count`` consecutive seeds in the level's own
    block of 100,000 above :data:`EVALUATION_SEED_BASE`."""
    level = Level.parse(level)
    if not 1 <= count <= 100_000:
        raise ConfigError(f"count={count!r} is invalid: must be in 1..100000")
    start = EVALUATION_SEED_BASE + 100_000 * level.rank
    return list(range(start, start + count))


def check_training_seed(seed: int) -> int:
    """``seed`` if it may be used for training or data collection, else a clear error."""
    if not 0 <= seed < EVALUATION_SEED_BASE:
        raise ConfigError(
            f"seed={seed} is reserved for evaluation: training and data collection use seeds "
            f"0..{EVALUATION_SEED_BASE - 1}"
        )
    return seed


@dataclass(frozen=True)
class TaskScore:
    """How an episode went so far.

    Attributes:
        success: the task's success detector holds (or held: success latches).
        score: fraction of the task's stages completed, in order (1.0 on success).
        stages: (stage name, reached) for every stage, in order.
    """

    success: bool
    score: float
    stages: tuple[tuple[str, bool], ...]


@dataclass
class StageTracker:
    """Latching, ordered stage bookkeeping for one episode."""

    names: tuple[str, ...]
    reached: list[bool] = field(default_factory=list)
    success: bool = False

    def reset(self) -> None:
        self.reached = [False] * len(self.names)
        self.success = False

    def update(self, now: dict[str, bool], success: bool) -> TaskScore:
        """Latch the stages that hold now (each only once the previous ones are reached)."""
        if len(self.reached) != len(self.names):
            self.reset()
        for i, name in enumerate(self.names):
            if not self.reached[i] and (i == 0 or self.reached[i - 1]) and now.get(name, False):
                self.reached[i] = True
        if success:
            self.success = True
            self.reached = [True] * len(self.names)
        done = sum(self.reached)
        return TaskScore(
            self.success,
            1.0 if self.success else done / max(1, len(self.names)),
            tuple(zip(self.names, self.reached, strict=True)),
        )


class Task(ABC):
    """A benchmark task; subclasses register with :func:`human_video_policy.sim.tasks.register`.

    Class attributes:
        name: registry name (snake_case).
        description: one line for listings.
        tags: free-form labels (``gripper``, ``dexterous``, ``contact``, ``human_only``...).
        robots: robot names the task exists for (and has a scripted expert for).
        stages: ordered sub-steps scored for partial credit; the last one is success.
        max_episode_s: sim seconds before an episode fails.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    tags: ClassVar[tuple[str, ...]] = ()
    robots: ClassVar[tuple[str, ...]] = ("widowx",)
    stages: ClassVar[tuple[str, ...]]
    max_episode_s: ClassVar[float] = 15.0

    def __init__(self, robot: SceneRobot) -> None:
        if robot.name not in self.robots:
            raise ConfigError(
                f"task {self.name!r} does not exist for robot {robot.name!r} (only for "
                f"{list(self.robots)})"
            )
        self.robot = robot
        self.tracker = StageTracker(tuple(self.stages))

    # -- scene ---------------------------------------------------------------------------------
    @abstractmethod
    def add_objects(self, spec: mujoco.MjSpec) -> None:
        """Add the task's bodies (and its held-out object variant) to the scene."""

    def bind(self, model: mujoco.MjModel) -> None:  # noqa: B027 - optional hook
        """Look up ids in the compiled model (called once after compiling)."""

    # -- episode -------------------------------------------------------------------------------
    @abstractmethod
    def initialize(self, world: TaskWorld, rng: np.random.Generator, level: Level) -> None:
        """Place the task's objects for a new episode (robot already at home)."""

    @abstractmethod
    def check_stages(self, world: TaskWorld) -> tuple[dict[str, bool], bool]:
        """(stage name -> holds now, success holds now) from the world's current state."""

    def evaluate(self, world: TaskWorld) -> TaskScore:
        """Update the latched stages and return the episode's score so far."""
        now, success = self.check_stages(world)
        return self.tracker.update(now, success)

    # -- expert --------------------------------------------------------------------------------
    @abstractmethod
    def expert(self, world: TaskWorld) -> Policy:
        """A privileged scripted expert for this task on ``world`` (reads the true state)."""
