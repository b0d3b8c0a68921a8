"""The reach task: touch the top of a red cylinder placed at random on the table.

Pure numpy: the world (``widowx_world``) asks the task where to put the objects on reset and
whether the end effector has succeeded. Everything is in the robot base frame
``wx250s/base_link`` (x forward, y left, z up, metres); the table top is z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from human_video_policy.errors import ConfigError
from human_video_policy.validation import check_int_range, check_positive, check_range

TARGET_HEIGHT_M = 0.03
"""Height of the red target cylinder (mjcf/wx250s_reach_scene.xml); its top is the goal."""


@dataclass(frozen=True)
class ReachLayout:
    """Where the objects of one episode stand on the table.

    Attributes:
        target_base: (3,) centre of the target's base on the table (z = 0), metres.
        distractor_bases: (n, 3) centres of the distractors' bases, metres.
    """

    target_base: np.ndarray
    distractor_bases: np.ndarray

    @property
    def target_top(self) -> np.ndarray:
        """(3,) the reach goal: the centre of the target's top face."""
        return self.target_base + np.array([0.0, 0.0, TARGET_HEIGHT_M])


@dataclass(frozen=True)
class ReachTaskConfig:
    """Settings of the reach task.

    Attributes:
        x_range: (min, max) of the target's x on the table (m, forward of the base).
        y_range: (min, max) of the target's y on the table (m, left of the base).
        success_radius: success when the end effector (ee_site) is this close (m) to the
            target's top point.
        max_episode_s: an episode fails when this much sim time (s) passes without success.
        num_distractors: distractor objects placed on the table (0..2, the scene has two).
        min_spacing: minimum distance (m) between any two objects' centres.
        distractor_margin: distractors may stand this far (m) outside the target region.
    """

    x_range: tuple[float, float] = (0.20, 0.38)
    y_range: tuple[float, float] = (-0.16, 0.16)
    success_radius: float = 0.03
    max_episode_s: float = 8.0
    num_distractors: int = 2
    min_spacing: float = 0.07
    distractor_margin: float = 0.04

    def __post_init__(self) -> None:
        for name, (low, high), bounds in (
            ("x_range", self.x_range, (0.12, 0.45)),
            ("y_range", self.y_range, (-0.35, 0.35)),
        ):
            check_range(f"{name}[0]", low, *bounds)
            check_range(f"{name}[1]", high, *bounds)
            if low > high:
                raise ConfigError(f"{name}={(low, high)!r} is invalid: min must be <= max")
        check_positive("success_radius", self.success_radius)
        check_positive("max_episode_s", self.max_episode_s)
        check_int_range("num_distractors", self.num_distractors, 0, 2)
        check_range("min_spacing", self.min_spacing, 0.0, 0.2)
        check_range("distractor_margin", self.distractor_margin, 0.0, 0.2)


class ReachTask:
    """Samples episode layouts and judges success.

    Args:
        config: the task settings.
    """

    def __init__(self, config: ReachTaskConfig | None = None) -> None:
        self.config = config or ReachTaskConfig()

    def sample_layout(self, rng: np.random.Generator) -> ReachLayout:
        """Target uniform in the region; distractors uniform around it, spaced apart."""
        cfg = self.config
        target = np.array([rng.uniform(*cfg.x_range), rng.uniform(*cfg.y_range), 0.0])
        placed = [target]
        m = cfg.distractor_margin
        for _ in range(cfg.num_distractors):
            for _attempt in range(1000):
                candidate = np.array(
                    [
                        rng.uniform(cfg.x_range[0] - m, cfg.x_range[1] + m),
                        rng.uniform(cfg.y_range[0] - m, cfg.y_range[1] + m),
                        0.0,
                    ]
                )
                if all(np.linalg.norm(candidate - p) >= cfg.min_spacing for p in placed):
                    break
            placed.append(candidate)
        return ReachLayout(target, np.array(placed[1:]).reshape(-1, 3))

    def distance(self, ee_position: np.ndarray, layout: ReachLayout) -> float:
        """Distance (m) from the end effector to the target's top point."""
        return float(np.linalg.norm(np.asarray(ee_position, dtype=np.float64) - layout.target_top))

    def is_success(self, ee_position: np.ndarray, layout: ReachLayout) -> bool:
        """True when the end effector is within ``success_radius`` of the target's top."""
        return self.distance(ee_position, layout) <= self.config.success_radius
