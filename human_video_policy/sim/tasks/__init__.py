"""The benchmark task suite, registered by name like dm_control's suites.

    from human_video_policy.sim.tasks import task_names, task_class
    task_names(robot="widowx", tag="contact")

A task module defines a :class:`~human_video_policy.sim.tasks.base.Task` subclass and decorates
it with :func:`register`; the built-in modules are imported here. Run a task with
:class:`human_video_policy.sim.task_world.TaskWorld`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from human_video_policy.errors import ConfigError
from human_video_policy.sim.tasks.base import (
    EVALUATION_SEED_BASE,
    Level,
    Task,
    TaskScore,
    check_training_seed,
    evaluation_seeds,
)

if TYPE_CHECKING:
    from human_video_policy.sim.scene import SceneRobot

_TASKS: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: add a task to the suite under ``cls.name`` (names are unique)."""
    name = getattr(cls, "name", "")
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ConfigError(f"task class {cls.__name__} needs a snake_case `name`, got {name!r}")
    if name in _TASKS and _TASKS[name] is not cls:
        raise ConfigError(f"task {name!r} is already registered by {_TASKS[name].__name__}")
    _TASKS[name] = cls
    return cls


def task_class(name: str) -> type[Task]:
    """The task class registered as ``name``."""
    try:
        return _TASKS[name]
    except KeyError:
        raise ConfigError(f"task={name!r} is unknown: choose one of {sorted(_TASKS)}") from None


def task_names(robot: str | None = None, tag: str | None = None) -> list[str]:
    """Registered task names, optionally only those for ``robot`` and/or carrying ``tag``."""
    return sorted(
        name
        for name, cls in _TASKS.items()
        if (robot is None or robot in cls.robots) and (tag is None or tag in cls.tags)
    )


def check_robot_demos_allowed(name: str) -> str:
    """``name`` if robot demonstrations of task ``name`` may be recorded; a task tagged
    ``human_only`` (the ``new_skill`` level: seen only in human videos) is refused, since
    robot data of it would void that level."""
    if "human_only" in task_class(name).tags:
        raise ConfigError(
            f"task={name!r} is human_only (the new_skill level: a skill the robot sees only in "
            "human videos): robot demonstrations of it would void that level; record human "
            f"ones instead (python -m human_video_policy.sim.human_demo --task {name})"
        )
    return name


def make_task(name: str, robot: SceneRobot) -> Task:
    """A fresh instance of task ``name`` for ``robot``."""
    return task_class(name)(robot)


# The built-in tasks register themselves on import.
from human_video_policy.sim.tasks import (  # noqa: E402, F401
    drawer,
    pick_place,
    pour,
    press_button,
    push,
    stack,
)

__all__ = [
    "EVALUATION_SEED_BASE",
    "Level",
    "Task",
    "TaskScore",
    "check_robot_demos_allowed",
    "check_training_seed",
    "evaluation_seeds",
    "make_task",
    "register",
    "task_class",
    "task_names",
]
