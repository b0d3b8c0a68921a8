"""A benchmark task's scripted expert as a runtime policy: the sim's privileged expert run by
policy_node like any learned policy (``policy:=scripted_expert``).

Why: the expert is the one policy that succeeds on every task (sim/tasks), so running it
through the real inference path (policy_node -> executor -> sim over DDS) checks that path with
known-good motion, and measures what the execution modes do to a policy that succeeds.

The expert reads the true world state, which lives in the sim process. ``sim_node`` publishes
it every physics tick on /sim/state (:class:`SimSnapshot`: the episode's task, robot, level and
seed, its time, and MuJoCo's qpos, qvel and mocap poses); this policy keeps a *shadow* world of
the same task and robot, resets it with the episode's seed and level when a new episode starts
(same objects, colours and sizes: a reset is deterministic), copies the snapshot into it and
asks the task's expert for a chunk. A snapshot of another task or robot, or of the wrong size,
is refused with the reason. Sim only: a real robot publishes no /sim/state.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.policies.model_spec import PolicyMetadata
from human_video_policy.runtime.action_chunk import ActionChunk


@dataclass(frozen=True)
class SimSnapshot:
    """The privileged state of one physics tick of a task episode (see the module docstring)."""

    task: str
    robot: str
    level: str
    episode_seed: int
    episode_time: float
    qpos: np.ndarray
    qvel: np.ndarray
    mocap_pos: np.ndarray
    mocap_quat: np.ndarray


def snapshot(world, task: str, robot: str, level: str) -> SimSnapshot:
    """The state of ``world`` (a TaskWorld) now."""
    d = world.data
    return SimSnapshot(
        task, robot, level, int(world.seed), float(d.time),
        d.qpos.copy(), d.qvel.copy(), d.mocap_pos.ravel().copy(), d.mocap_quat.ravel().copy(),
    )  # fmt: skip


def restore(world, state: SimSnapshot) -> None:
    """Put ``state`` into ``world`` (same task and robot), then recompute what depends on it."""
    m, d = world.model, world.data
    for name, values, size in (
        ("qpos", state.qpos, m.nq),
        ("qvel", state.qvel, m.nv),
        ("mocap_pos", state.mocap_pos, 3 * m.nmocap),
        ("mocap_quat", state.mocap_quat, 4 * m.nmocap),
    ):
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (size,):
            raise InputError(f"sim state {name} has {values.size} values, the world {size}")
        if not np.all(np.isfinite(values)):
            raise InputError(f"sim state {name} holds NaN or inf")
    if not np.isfinite(state.episode_time) or state.episode_time < 0:
        raise InputError(f"sim state episode_time={state.episode_time!r} is invalid")
    d.qpos[:] = state.qpos
    d.qvel[:] = state.qvel
    d.mocap_pos[:] = np.asarray(state.mocap_pos).reshape(-1, 3)
    d.mocap_quat[:] = np.asarray(state.mocap_quat).reshape(-1, 4)
    d.time = state.episode_time
    mujoco.mj_forward(m, d)


class ScriptedExpertPolicy:
    """The expert of ``task`` on ``robot`` fed by /sim/state (see the module docstring)."""

    needs_image = False
    needs_sim_state = True

    def __init__(self, task: str, robot: str = "widowx") -> None:
        from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig

        if not isinstance(task, str) or not isinstance(robot, str):
            raise ConfigError(f"task={task!r} and robot={robot!r} must be names")
        self.task, self.robot = task, robot
        self.world = TaskWorld(TaskWorldConfig(task=task, robot=robot, image_width=8,
                                               image_height=8))  # fmt: skip
        self.providers = ["none (scripted expert)"]
        self._episode: tuple[int, str] | None = None
        self._expert = None
        expert = self.world.task.expert(self.world)
        names = tuple(self.world.joint_names)
        self.metadata = PolicyMetadata(
            action_space=expert.action_space,
            action_names=names,
            state_names=tuple(self.world.state_joint_names),
            horizon=expert.config.horizon,
            dt=expert.config.dt,
            image_height=0,
            image_width=0,
            training={"scripted_expert": task, "robot": robot},
        )

    def reset(self) -> None:
        self._episode, self._expert = None, None

    def warmup(self) -> None:
        """One chunk on the shadow world's own first training episode (IK, the script)."""
        self.world.reset(0)
        self.world.task.expert(self.world).predict_chunk(None, self.world.joint_positions())
        self.reset()

    def close(self) -> None:
        self.world.close()

    def predict_chunk(
        self, image, state, observation_stamp: float = 0.0, sim_state: SimSnapshot | None = None
    ) -> ActionChunk:
        if sim_state is None:
            raise InputError("the scripted expert needs the sim's /sim/state (sim only)")
        if (sim_state.task, sim_state.robot) != (self.task, self.robot):
            raise InputError(
                f"/sim/state is of task {sim_state.task!r} on {sim_state.robot!r}; this expert "
                f"runs {self.task!r} on {self.robot!r} (policy_args)"
            )
        episode = (int(sim_state.episode_seed), sim_state.level)
        if episode != self._episode or self._expert is None:
            self.world.reset(*episode)
            self._expert = self.world.task.expert(self.world)
            self._episode = episode
        restore(self.world, sim_state)
        return self._expert.predict_chunk(None, self.world.joint_positions(), observation_stamp)


def make_scripted_expert(task: str, robot: str = "widowx") -> ScriptedExpertPolicy:
    return ScriptedExpertPolicy(task, robot)
