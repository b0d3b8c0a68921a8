"""The benchmark: policies x tasks x generalisation levels, in process, with confidence intervals.

``hvp bench`` runs N closed-loop episodes per (task, level, policy) on each level's fixed
evaluation seeds (sim/tasks/base.py: never used for training), in process or (``--ros``)
through the real node graph, and writes:

- ``results.json``: every episode (success, task score, stages, time) and the summary rows;
- ``results.md``: success rate with its 95 % Wilson interval and the mean task score, by task,
  level and policy;
- ``results.png``: the success rates with their intervals as bars.

Policies are named by a short spec: ``expert`` (the task's privileged scripted expert, the
upper bound), ``frozen`` (holds still), ``random`` (random smoothed joint targets), or the path
of an exported model (an ``hvp export`` directory or a .onnx file, run without torch).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from human_video_policy.errors import ConfigError
from human_video_policy.policies.base import Policy
from human_video_policy.sim.scene import scene_robot
from human_video_policy.sim.statistics import wilson_interval
from human_video_policy.sim.task_episode import (
    FrozenPolicy,
    RandomPolicy,
    TaskEpisode,
    run_task_episode,
)
from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig
from human_video_policy.sim.tasks import Level, evaluation_seeds, make_task, task_class, task_names
from human_video_policy.validation import check_int_range

BUILTIN_POLICIES = ("expert", "frozen", "random")


@dataclass
class BenchConfig:
    """What ``hvp bench`` runs (config/bench/*.yaml hold these fields).

    Attributes:
        robot: robot the tasks run on (``widowx``).
        tasks: task names; empty = every task registered for the robot.
        levels: generalisation levels (position, scene, background, new_object, new_skill);
            ``new_skill`` runs only tasks tagged ``human_only``.
        policies: policy specs: expert, frozen, random, or an exported model path.
        episodes: episodes per (task, level, policy), on the level's first ``episodes``
            evaluation seeds (the same seeds for every policy).
        image_width, image_height: camera image size the policies see (pixels).
        floors: minimum success rate per "policy/task/level" key (``*`` matches any part);
            the run fails (exit code 1) when a measured rate is below its floor.
        through_ros: run each cell through the real node graph (``hvp launch sim_task`` for
            the expert, ``sim_task_policy`` for a model: sim_node, policy_node, executor_node
            over DDS, on sim time) instead of in process; frozen/random exist in process only.
        realtime_factor: through_ros: sim seconds per wall second (faster than real time when
            the policy keeps up).
    """

    robot: str = "widowx"
    tasks: list[str] = field(default_factory=list)
    levels: list[str] = field(default_factory=lambda: ["position"])
    policies: list[str] = field(default_factory=lambda: ["expert", "frozen"])
    episodes: int = 20
    image_width: int = 128
    image_height: int = 128
    floors: dict[str, float] = field(default_factory=dict)
    through_ros: bool = False
    realtime_factor: float = 1.0

    def __post_init__(self) -> None:
        known = task_names(robot=self.robot)
        if not known:
            raise ConfigError(f"robot={self.robot!r} has no benchmark tasks")
        self.tasks = list(self.tasks) or known
        for name in self.tasks:
            cls = task_class(name)
            if self.robot not in cls.robots:
                raise ConfigError(f"task {name!r} does not exist for robot {self.robot!r}")
        self.levels = [Level.parse(level).value for level in self.levels]
        if not self.levels:
            raise ConfigError("levels is empty: name at least one level")
        if not self.policies:
            raise ConfigError("policies is empty: name at least one policy")
        for spec in self.policies:
            if spec not in BUILTIN_POLICIES and not Path(spec).expanduser().exists():
                raise ConfigError(
                    f"policy {spec!r} is neither one of {list(BUILTIN_POLICIES)} nor an "
                    "exported model path that exists"
                )
        check_int_range("episodes", self.episodes, 1, 100_000)
        if self.through_ros:
            in_process_only = [p for p in self.policies if p in ("frozen", "random")]
            if in_process_only:
                raise ConfigError(
                    f"policies {in_process_only} exist in process only: drop them or through_ros"
                )
        if not 0.05 <= float(self.realtime_factor) <= 10.0:
            raise ConfigError(
                f"realtime_factor={self.realtime_factor!r} is invalid: must be in 0.05..10"
            )
        check_int_range("image_width", self.image_width, 16, 1280)
        check_int_range("image_height", self.image_height, 16, 960)
        for key, floor in self.floors.items():
            if len(str(key).split("/")) != 3 or not 0.0 <= float(floor) <= 1.0:
                raise ConfigError(
                    f"floors[{key!r}]={floor!r} is invalid: keys are policy/task/level "
                    "(* matches any), values success rates in 0..1"
                )

    @classmethod
    def from_yaml(cls, path: str | Path) -> BenchConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must be a mapping of BenchConfig fields")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            known = sorted(cls.__dataclass_fields__)
            raise ConfigError(f"{path}: unknown fields {sorted(unknown)}; known: {known}")
        return cls(**data)

    def runs(self) -> list[tuple[str, str]]:
        """(task, level) pairs to run: new_skill only for tasks tagged human_only."""
        pairs = []
        for task in self.tasks:
            human_only = "human_only" in task_class(task).tags
            for level in self.levels:
                if (level == Level.NEW_SKILL.value) == human_only:
                    pairs.append((task, level))
        return pairs


@dataclass(frozen=True)
class BenchRow:
    """Summary of one (policy, task, level) cell."""

    policy: str
    task: str
    level: str
    episodes: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    mean_score: float
    mean_time_to_success_s: float | None


def policy_label(spec: str) -> str:
    """Short name of a policy spec for tables (a model path -> its file or folder name)."""
    return spec if spec in BUILTIN_POLICIES else Path(spec).expanduser().name


def make_policy(spec: str, world: TaskWorld) -> Policy:
    """The policy a spec names, for ``world``."""
    if spec == "expert":
        return world.task.expert(world)
    if spec == "frozen":
        return FrozenPolicy(world)
    if spec == "random":
        return RandomPolicy(world, seed=0)
    from human_video_policy.runtime.load_policy import load_policy

    return load_policy(str(Path(spec).expanduser()))


def summarize(policy: str, task: str, level: str, episodes: Sequence[TaskEpisode]) -> BenchRow:
    n = len(episodes)
    wins = sum(e.success for e in episodes)
    low, high = wilson_interval(wins, n)
    times = [e.time_to_success for e in episodes if e.time_to_success is not None]
    return BenchRow(
        policy=policy,
        task=task,
        level=level,
        episodes=n,
        successes=wins,
        success_rate=wins / n if n else 0.0,
        ci_low=low,
        ci_high=high,
        mean_score=float(np.mean([e.score for e in episodes])) if n else 0.0,
        mean_time_to_success_s=float(np.mean(times)) if times else None,
    )


def run_cell_through_ros(
    config: BenchConfig, spec: str, task: str, level: str, workdir: Path
) -> list[TaskEpisode]:
    """One (policy, task, level) cell as ``hvp launch`` runs it: the real node graph over DDS,
    ``config.episodes`` episodes from the level's first evaluation seed (sim_node takes
    consecutive seeds, as :func:`evaluation_seeds` gives them)."""
    import subprocess

    seeds = evaluation_seeds(level, config.episodes)
    results = workdir / f"{policy_label(spec)}_{task}_{level}.json"
    results.unlink(missing_ok=True)
    graph = "sim_task" if spec == "expert" else "sim_task_policy"
    limit = make_task(task, scene_robot(config.robot)).max_episode_s  # may differ per robot
    command = [
        sys.executable, "-m", "human_video_policy.cli.main", "launch", graph,
        f"task:={task}", f"level:={level}", f"episode_seed:={seeds[0]}",
        f"episodes:={config.episodes}", f"episode_timeout_s:={limit}",
        f"realtime_factor:={config.realtime_factor}", f"results_path:={results}",
    ]  # fmt: skip
    if spec != "expert":
        command.append(f"model_path:={Path(spec).expanduser().resolve()}")
    timeout = 120.0 + config.episodes * (limit + 2.0) / config.realtime_factor * 2.0
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"{' '.join(command)} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0 or not results.is_file():
        tail = (done.stdout + done.stderr)[-3000:]
        raise ConfigError(f"{graph} ended with code {done.returncode}:\n{tail}")
    records = json.loads(results.read_text())
    return [TaskEpisode(**{**r, "level": level, "stages": tuple(r["stages"])}) for r in records]


def run_bench(
    config: BenchConfig,
    progress: bool = True,
    on_episode: Callable[[str, TaskEpisode], None] | None = None,
) -> tuple[list[BenchRow], list[dict]]:
    """Run every (task, level, policy) cell; returns the summary rows and every episode."""
    rows: list[BenchRow] = []
    episodes_out: list[dict] = []
    runs = config.runs()
    total = len(runs) * len(config.policies) * config.episodes
    bar = tqdm(total=total, desc="bench", unit="ep", disable=not progress, file=sys.stderr)
    if config.through_ros:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="hvp_bench_") as tmp:
            for task, level in runs:
                for spec in config.policies:
                    label = policy_label(spec)
                    done = run_cell_through_ros(config, spec, task, level, Path(tmp))
                    for episode in done:
                        episodes_out.append({"policy": label, **asdict(episode)})
                        if on_episode is not None:
                            on_episode(label, episode)
                    bar.update(len(done))
                    rows.append(summarize(label, task, level, done))
        bar.close()
        return rows, episodes_out
    for task in sorted({t for t, _ in runs}):
        world_config = TaskWorldConfig(
            task=task,
            robot=config.robot,
            image_width=config.image_width,
            image_height=config.image_height,
        )
        with TaskWorld(world_config) as world:
            for spec in config.policies:
                policy = make_policy(spec, world)
                label = policy_label(spec)
                for level in [lv for t, lv in runs if t == task]:
                    done = []
                    for seed in evaluation_seeds(level, config.episodes):
                        episode = run_task_episode(world, policy, seed, level)
                        done.append(episode)
                        episodes_out.append({"policy": label, **asdict(episode)})
                        if on_episode is not None:
                            on_episode(label, episode)
                        bar.update(1)
                    rows.append(summarize(label, task, level, done))
                    bar.set_postfix_str(f"{label} {task} {level}: {rows[-1].success_rate:.0%}")
    bar.close()
    return rows, episodes_out


def floor_failures(rows: Sequence[BenchRow], floors: dict[str, float]) -> list[str]:
    """Rows whose success rate is below a matching floor, as readable lines."""
    failures = []
    for row in rows:
        for key, floor in floors.items():
            parts = str(key).split("/")
            cell = (row.policy, row.task, row.level)
            matches = all(p in ("*", v) for p, v in zip(parts, cell, strict=True))
            if matches and row.success_rate < float(floor):
                failures.append(
                    f"{row.policy}/{row.task}/{row.level}: {row.success_rate:.0%} < floor "
                    f"{float(floor):.0%} ({row.successes}/{row.episodes})"
                )
    return failures


def markdown_table(rows: Sequence[BenchRow]) -> str:
    """Success rate [95 % CI] and mean task score per task x level, one column per policy."""
    policies = list(dict.fromkeys(r.policy for r in rows))
    cells = {(r.task, r.level, r.policy): r for r in rows}
    keys = list(dict.fromkeys((r.task, r.level) for r in rows))
    lines = [
        "| task | level | " + " | ".join(policies) + " |",
        "|---|---|" + "---|" * len(policies),
    ]
    for task, level in keys:
        out = []
        for policy in policies:
            r = cells.get((task, level, policy))
            out.append(
                "n/a"
                if r is None
                else f"{r.success_rate:.0%} [{r.ci_low:.0%}, {r.ci_high:.0%}], score "
                f"{r.mean_score:.2f} (n={r.episodes})"
            )
        lines.append(f"| {task} | {level} | " + " | ".join(out) + " |")
    return "\n".join(lines) + "\n"


def plot_rows(rows: Sequence[BenchRow], path: Path) -> None:
    """Bars of success rate with 95 % intervals, grouped by task/level, one colour per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(dict.fromkeys(r.policy for r in rows))
    keys = list(dict.fromkeys((r.task, r.level) for r in rows))
    cells = {(r.task, r.level, r.policy): r for r in rows}
    width = 0.8 / max(1, len(policies))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(keys) * max(1, len(policies)) / 2), 4))
    for i, policy in enumerate(policies):
        xs, ys, lo, hi = [], [], [], []
        for k, (task, level) in enumerate(keys):
            r = cells.get((task, level, policy))
            if r is None:
                continue
            xs.append(k + (i - (len(policies) - 1) / 2) * width)
            ys.append(r.success_rate)
            # max(0, .): at 0 % or 100 % the bound may differ from the rate by a rounding error.
            lo.append(max(0.0, r.success_rate - r.ci_low))
            hi.append(max(0.0, r.ci_high - r.success_rate))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=policy)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{t}\n{lv}" for t, lv in keys], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95 % Wilson CI)")
    ax.legend(fontsize=8)
    ax.set_title("hvp bench")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(
    rows: Sequence[BenchRow], episodes: Sequence[dict], config: BenchConfig, out_dir: Path
) -> dict[str, Path]:
    """results.json, results.md and results.png in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "results.json",
        "markdown": out_dir / "results.md",
        "plot": out_dir / "results.png",
    }
    clean = [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in e.items()}
        for e in episodes
    ]
    paths["json"].write_text(
        json.dumps(
            {"config": asdict(config), "rows": [asdict(r) for r in rows], "episodes": clean},
            indent=1,
        )
    )
    paths["markdown"].write_text(markdown_table(rows))
    plot_rows(rows, paths["plot"])
    return paths
