"""Helpers the task-suite tests share."""

from __future__ import annotations

from human_video_policy.sim.arm_expert import ArmTarget
from human_video_policy.sim.task_world import TaskWorld


class StopAtPhase:
    """A task's expert script held at one phase: an expert that stops part way."""

    def __init__(self, script, phase: int) -> None:
        self.script = script
        self.phase = phase

    def __call__(self, world: TaskWorld) -> ArmTarget:
        phases = self.script.phases
        phases.sync(world)
        phases.phase = min(phases.phase, self.phase)
        return self.script(world)
