"""Assemble one policy observation from inputs that arrive on their own topics and clocks.

A policy must see the image and the joint state of one moment: pairing the newest image with
the newest joint state mixes moments whenever one stream lags (a 15 Hz camera and a 100 Hz
joint-state stream differ by up to a frame). :class:`ObservationSync` keeps a short, bounded
history of each input and pairs the newest image with the joint state (and depth image) whose
stamp is closest to it, within ``tolerance_s``; the prompt embedding is not a time series and
is taken as it is. An observation is refused with a reason, never assembled from old data:
when its image is older than ``max_age_s``, when no partner lies within the tolerance, or
when an input is missing or its last message was invalid.

Why not message_filters: its ApproximateTimeSynchronizer is not importable in this project's
environment (ROS 2 from PyPI wheels, no message_filters wheel), and this module is pure Python,
so it is unit-tested without DDS and used the same way by every node.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from human_video_policy.errors import ConfigError


@dataclass(frozen=True)
class Refusal:
    """Why there is no observation: ``kind`` is missing (an input never came or its last
    message was invalid), stale (older than max_age_s) or unsynchronised (no partner within
    the tolerance); ``reason`` says which input and by how much."""

    kind: str
    reason: str


@dataclass(frozen=True)
class Observation:
    """What one inference sees; ``stamp`` is the image's (or the state's, without image)."""

    stamp: float
    state: np.ndarray
    image: np.ndarray | None = None
    depth: np.ndarray | None = None
    prompt: Any = None
    sim_state: Any = None
    instruction: str = ""
    skew_s: dict[str, float] = field(default_factory=dict)


class _Stream:
    """A bounded history of (stamp, value) and why the last message was refused, if it was."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.items: deque[tuple[float, Any]] = deque(maxlen=capacity)
        self.error = ""

    def add(self, stamp: float, value: Any) -> None:
        if self.items and stamp < self.items[-1][0]:
            self.items.clear()  # time went back (a sim reset, a bag loop): the old history lies
        self.items.append((stamp, value))
        self.error = ""

    def refuse(self, reason: str) -> None:
        self.items.clear()  # never pair with a value older than the refused one
        self.error = reason

    def missing_reason(self) -> str:
        return self.error or f"no {self.name} received yet"

    def closest(self, stamp: float) -> tuple[float, Any]:
        return min(self.items, key=lambda item: abs(item[0] - stamp))


class ObservationSync:
    """Pairs the newest image with the closest joint state (and depth) within a tolerance.

    Args:
        tolerance_s: largest |stamp difference| between the image and its joint state / depth.
        max_age_s: an observation whose stamp is older than this (against ``now``) is stale.
        needs_image / needs_depth / needs_prompt / needs_sim_state: which inputs an
            observation must have (the sim state: a simulator's privileged state, paired like
            the joint state); the instruction (a task's words, not a time series) is taken as
            it is, like the prompt.
        history: messages kept per stream (bounded memory; images are kept at most 4).
        state_parts: the joint-state topics one state is assembled from, in order (e.g. an
            arm's and a hand's controller: ``("/arm", "/hand")``); each part is paired with
            the image on its own, and ``Observation.state`` is their concatenation.
    """

    def __init__(
        self,
        tolerance_s: float,
        max_age_s: float,
        needs_image: bool = True,
        needs_depth: bool = False,
        needs_prompt: bool = False,
        needs_sim_state: bool = False,
        needs_instruction: bool = False,
        history: int = 200,
        state_parts: tuple[str, ...] = ("",),
    ) -> None:
        for name, value in (("tolerance_s", tolerance_s), ("max_age_s", max_age_s)):
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(f"ObservationSync.{name}={value!r} is invalid: must be > 0")
        if history < 1:
            raise ConfigError(f"ObservationSync.history={history!r} is invalid: must be >= 1")
        self.tolerance_s = float(tolerance_s)
        self.max_age_s = float(max_age_s)
        self.needs_image, self.needs_depth, self.needs_prompt = (
            needs_image,
            needs_depth,
            needs_prompt,
        )
        if not state_parts:
            raise ConfigError("ObservationSync.state_parts must name at least one part")
        self.states = [_Stream(f"joint state {part}".strip(), history) for part in state_parts]
        self.state = self.states[0]
        self.image = _Stream("image", min(history, 4))
        self.depth = _Stream("depth image", min(history, 4))
        self.needs_sim_state = needs_sim_state
        self.sim_state = _Stream("sim state", history)
        self._prompt: Any = None
        self._prompt_error = "no prompt embedding received yet"
        self.needs_instruction = needs_instruction
        self.instruction = ""

    def set_prompt(self, prompt: Any) -> None:
        self._prompt, self._prompt_error = prompt, ""

    def clear_prompt(self, reason: str) -> None:
        self._prompt, self._prompt_error = None, reason

    def reset(self) -> None:
        """Forget every time series (a new episode); the prompt stays."""
        for stream in (*self.states, self.image, self.depth, self.sim_state):
            stream.items.clear()

    def assemble(self, now: float) -> Observation | Refusal:
        """The observation for inference at ``now``, or why there is none."""
        wanted = (
            (self.image, self.needs_image),
            (self.depth, self.needs_depth),
            (self.sim_state, self.needs_sim_state),
        )
        streams = [*self.states] + [stream for stream, need in wanted if need]
        missing = [s.missing_reason() for s in streams if not s.items]
        if self.needs_prompt and self._prompt is None:
            missing.append(self._prompt_error)
        if self.needs_instruction and not self.instruction:
            missing.append(
                "no task instruction (publish /task/instruction or set the instruction parameter)"
            )
        if missing:
            return Refusal("missing", "; ".join(missing))
        lead = self.image if self.needs_image else self.state
        stamp, lead_value = lead.items[-1]
        if now - stamp > self.max_age_s:
            return Refusal(
                "stale",
                f"{lead.name} is {now - stamp:.3f} s old (max_input_age_s={self.max_age_s:g})",
            )
        values: dict[str, Any] = {lead.name: lead_value}
        skew: dict[str, float] = {}
        for stream in streams:
            if stream is lead:
                continue
            partner_stamp, value = stream.closest(stamp)
            skew[stream.name] = partner_stamp - stamp
            if abs(partner_stamp - stamp) > self.tolerance_s:
                return Refusal(
                    "unsynchronised",
                    f"no {stream.name} within sync_tolerance_s={self.tolerance_s:g} of the "
                    f"{lead.name} (closest {partner_stamp - stamp:+.3f} s)",
                )
            values[stream.name] = value
        return Observation(
            stamp=stamp,
            state=np.concatenate([np.asarray(values[s.name]) for s in self.states]),
            image=values.get("image"),
            depth=values.get("depth image"),
            prompt=self._prompt if self.needs_prompt else None,
            sim_state=values.get("sim state"),
            instruction=self.instruction if self.needs_instruction else "",
            skew_s=skew,
        )
