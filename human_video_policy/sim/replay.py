"""Replay a recorded episode bag in the simulator and check it (``hvp replay``).

What a lab's CI runs on its bags: the bag says which episode it is (/sim/episode: task, level,
seed, robot; written by sim_node), so the same initial state is rebuilt in a task world, then:

- **open loop**: what reached the simulated arm is re-issued at its recorded (sim) times: the
  safety layer's output sim_node records on /sim/applied_commands, or, in a bag without it, the
  recorded /arm/joint_commands through the same controller and safety layer
  (sim/world_driver.py) when the recorder received them; the physics stepped at the sim
  node's 100 Hz; the replayed joint trajectory must stay within
  ``position_tolerance`` of the recorded /arm/joint_states at every recorded stamp, the task's
  outcome must equal the recorded one (/episode/success or the bag's ``hvp.success``), and
  every command must be inside the robot's joint limits and speed limits (nothing a safety
  layer would refuse);
- **closed loop** (``policy`` given): at every recorded /policy/action_chunk stamp the policy is
  asked again: ``expert`` (the task's scripted expert, on the replayed world's true state) or an
  exported model (on the recorded camera image and joint state); its chunk must match the
  recorded one within ``chunk_tolerance`` (mean absolute difference, rad).

Any failure is reported with what and where (first sample, worst value); a bag that cannot be
replayed (truncated, another robot, no episode information) is an error naming the reason.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from human_video_policy.data.bag_repair import CUSTOM_PREFIX, read_custom_data
from human_video_policy.data.bags import BagReader
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.robots.spec import get_robot
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.sim.scene import scene_robot
from human_video_policy.sim.world_driver import sim_controller
from human_video_policy.validation import check_positive

EPISODE_TOPIC = "/sim/episode"
STATE_TOPIC = "/arm/joint_states"
COMMAND_TOPIC = "/arm/joint_commands"
APPLIED_TOPIC = "/sim/applied_commands"
CHUNK_TOPIC = "/policy/action_chunk"
OUTCOME_TOPIC = "/episode/success"
#: realsense-ros names first; bags recorded before sim_node used them kept /camera/color/...
IMAGE_TOPICS = (
    "/camera/camera/color/image_raw/compressed",
    "/camera/camera/color/image_raw",
    "/camera/color/image_raw/compressed",
    "/camera/color/image_raw",
)
PHYSICS_TICK_S = 0.01  # sim_node's joint_state_rate_hz default: one physics tick


@dataclass(frozen=True)
class ReplayConfig:
    """Settings of :func:`replay_bag`.

    Attributes:
        position_tolerance: largest allowed |replayed - recorded| command-joint position
            (rad, m for the gripper) at any recorded joint-state stamp.
        command_tolerance: with /sim/applied_commands in the bag: what reached the arm may
            differ from the newest recorded command by more than this (rad) on at most 5 % of
            the ticks of each joint (the safety layer smooths; more means the recorded
            commands do not explain the motion, e.g. altered).
        velocity_margin: commands may move this factor over the robot's speed limits between
            two commands (the executor's own limit is below 1).
        check_outcome: the replayed episode's success must equal the recorded one.
        policy: closed loop: ``expert``, an exported model path, or empty (open loop only).
        chunk_tolerance: closed loop: largest allowed mean |replayed - recorded| chunk entry
            (rad) over all chunks.
    """

    position_tolerance: float = 0.05
    command_tolerance: float = 0.15
    velocity_margin: float = 1.05
    check_outcome: bool = True
    policy: str = ""
    chunk_tolerance: float = 0.05

    def __post_init__(self) -> None:
        check_positive("position_tolerance", self.position_tolerance)
        check_positive("command_tolerance", self.command_tolerance)
        check_positive("velocity_margin", self.velocity_margin)
        check_positive("chunk_tolerance", self.chunk_tolerance)


@dataclass
class Recording:
    """What a bag holds for a replay."""

    path: Path
    info: dict[str, Any]
    states: list[tuple[float, dict[str, float]]]
    commands: list[tuple[float, float, dict[str, float]]]  # header stamp, received, joints
    applied: list[tuple[float, dict[str, float]]]  # what the sim's safety layer let through
    chunks: list[tuple[float, Any]]
    images: list[tuple[float, Any, str]]
    success: bool | None


@dataclass
class ReplayReport:
    """The outcome of a replay; ``passed`` is the verdict, ``failures`` say why not."""

    bag: str
    task: str
    level: str
    seed: int
    robot: str
    commands: int
    states_compared: int
    max_position_error: float
    worst_joint: str
    recorded_success: bool | None
    replayed_success: bool
    limit_violations: list[str] = field(default_factory=list)
    chunks_compared: int = 0
    mean_chunk_error: float | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def text(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"{verdict} {self.bag}: {self.task} ({self.level}) seed {self.seed} on {self.robot}",
            f"  open loop: {self.commands} commands re-issued, {self.states_compared} states "
            f"compared, max error {self.max_position_error:.4f} ({self.worst_joint}); outcome "
            f"recorded {self.recorded_success}, replayed {self.replayed_success}",
        ]
        if self.chunks_compared:
            lines.append(
                f"  closed loop: {self.chunks_compared} chunks, mean error "
                f"{self.mean_chunk_error:.4f} rad"
            )
        lines += [f"  - {f}" for f in self.failures]
        return "\n".join(lines)


def _stamp(msg: Any) -> float:
    return float(msg.header.stamp.sec) + 1e-9 * float(msg.header.stamp.nanosec)


def _finite_joint_map(msg: Any, where: str) -> dict[str, float]:
    names = list(msg.name)
    positions = np.asarray(msg.position, dtype=np.float64)
    if len(names) != len(positions):
        raise InputError(f"{where}: {len(names)} joint names but {len(positions)} positions")
    if not np.all(np.isfinite(positions)):
        raise InputError(f"{where}: non-finite joint positions {positions.tolist()}")
    return dict(zip(names, positions.tolist(), strict=True))


def read_recording(path: str | Path) -> Recording:
    """The replay streams of one episode bag (InputError naming what is missing or broken)."""
    path = Path(path)
    with BagReader(path, on_unknown="skip") as reader:
        topics = reader.topics
        if EPISODE_TOPIC not in topics:
            raise InputError(
                f"bag {path} has no {EPISODE_TOPIC}: it does not say which episode (task, seed, "
                "level) it recorded; record a sim graph (hvp launch sim_task / sim_widowx) with "
                f"{EPISODE_TOPIC} among the topics"
            )
        for needed in (STATE_TOPIC, COMMAND_TOPIC):
            if needed not in topics:
                raise InputError(f"bag {path} has no {needed}: nothing to replay or compare")
        wanted = [EPISODE_TOPIC, STATE_TOPIC, COMMAND_TOPIC]
        optional = (APPLIED_TOPIC, CHUNK_TOPIC, OUTCOME_TOPIC, *IMAGE_TOPICS)
        wanted += [t for t in optional if t in topics]
        info: dict[str, Any] | None = None
        states, commands, applied, chunks, images = [], [], [], [], []
        success: bool | None = None
        for topic, stamp_ns, msg in reader.messages(wanted):
            if topic == EPISODE_TOPIC and info is None:
                try:
                    info = json.loads(msg.data)
                except json.JSONDecodeError as exc:
                    raise InputError(f"bag {path}: {EPISODE_TOPIC} is not JSON: {exc}") from exc
            elif topic == STATE_TOPIC:
                states.append((_stamp(msg), _finite_joint_map(msg, f"{path} {topic}")))
            elif topic == COMMAND_TOPIC:
                # (header stamp, when it was received: the recorder's sim-time stamp, joints)
                joints = _finite_joint_map(msg, f"{path} {topic}")
                commands.append((_stamp(msg), max(stamp_ns * 1e-9, _stamp(msg)), joints))
            elif topic == APPLIED_TOPIC:
                applied.append((_stamp(msg), _finite_joint_map(msg, f"{path} {topic}")))
            elif topic == CHUNK_TOPIC:
                chunks.append((_stamp(msg), msg))
            elif topic == OUTCOME_TOPIC:
                success = bool(msg.data)
            elif topic in IMAGE_TOPICS:
                images.append((_stamp(msg), msg, topic))
    if not isinstance(info, dict) or not {"task", "seed", "level", "robot"} <= set(info):
        raise InputError(f"bag {path}: {EPISODE_TOPIC} lacks task/seed/level/robot: {info!r}")
    if success is None:
        recorded = read_custom_data(path).get(f"{CUSTOM_PREFIX}success", "")
        success = {"true": True, "false": False}.get(recorded.strip().lower())
    if len(states) < 2 or not commands:
        raise InputError(
            f"bag {path}: {len(states)} joint states and {len(commands)} commands: too short "
            "to replay (a truncated bag?)"
        )
    return Recording(path, info, states, commands, applied, chunks, images, success)


def _command_vector(joint_map: dict[str, float], names: tuple[str, ...], where: str) -> np.ndarray:
    missing = [n for n in names if n not in joint_map]
    if missing:
        raise InputError(
            f"{where}: commands lack joints {missing} of the robot (they name "
            f"{sorted(joint_map)}): a bag of another robot?"
        )
    return np.array([joint_map[n] for n in names])


def replay_bag(path: str | Path, config: ReplayConfig | None = None) -> ReplayReport:
    """Replay one episode bag; see the module docstring."""
    from human_video_policy.sim.task_world import TaskWorld, TaskWorldConfig

    config = config or ReplayConfig()
    rec = read_recording(path)
    info = rec.info
    task, level, seed, robot = info["task"], info["level"], int(info["seed"]), info["robot"]
    if task == "reach":
        raise ConfigError(
            f"bag {path} is a reach episode: hvp replay replays benchmark tasks (hvp launch "
            "sim_task); evaluate reach policies with hvp sim-eval"
        )
    scene_robot(robot)  # a clear error for a robot without task scenes
    world = TaskWorld(TaskWorldConfig(task=task, robot=robot, image_width=64, image_height=64))
    try:
        return _replay(world, rec, config, task, level, seed, robot)
    finally:
        world.close()


def _replay(world, rec: Recording, config: ReplayConfig, task, level, seed, robot) -> ReplayReport:
    names = tuple(world.joint_names)
    where = str(rec.path)
    for _t, _r, m in rec.commands:
        _command_vector(m, names, f"{where} {COMMAND_TOPIC}")  # the same robot's joints
    for _t, m in rec.states:
        _command_vector(m, names, f"{where} {STATE_TOPIC}")  # the same robot's joints
    # The episode's reset, as the sim reported it (else: one tick before the first state).
    t0 = float(rec.info.get("start_time", rec.states[0][0] - PHYSICS_TICK_S))
    # Messages of the previous episode that reached the recorder after it split the bags.
    rec.states = [(t, m) for t, m in rec.states if t > t0 + 1e-6]
    rec.commands = [c for c in rec.commands if c[0] > t0 + 1e-6]
    rec.applied = [(t, m) for t, m in rec.applied if t >= t0 - 1e-6]
    rec.chunks = [(t, m) for t, m in rec.chunks if t >= t0 - 1e-6]
    if len(rec.states) < 2 or not rec.commands:
        raise InputError(f"bag {where}: no joint states or commands after its episode's reset")
    commands = [(t, received, _command_vector(m, names, where)) for t, received, m in rec.commands]
    late = rec.states[0][0] - t0
    if late > 0.05:
        raise InputError(
            f"bag {where} starts {late:.2f} s after its episode did (its recorder joined late): "
            "the commands before are missing, so it cannot be replayed"
        )
    limits = get_robot(robot).limits()
    report = ReplayReport(
        bag=where,
        task=task,
        level=level,
        seed=seed,
        robot=robot,
        commands=len(commands),
        states_compared=0,
        max_position_error=0.0,
        worst_joint="",
        recorded_success=rec.success,
        replayed_success=False,
    )
    report.limit_violations = _limit_violations(
        [(t, q) for t, _, q in commands], limits, config.velocity_margin, t0
    )
    closed = _ClosedLoop(world, rec, config, t0) if config.policy else None

    world.reset(seed, level)
    # What reached the actuators: the sim's own record of its safety layer's output when the
    # bag has it (exact), else the commands through the same controller and safety layer as
    # sim_node runs, taking effect when the recorder received them (arrival times differ a
    # little between the recorder and the sim, so expect larger errors).
    applied = [(t, _command_vector(m, names, where)) for t, m in rec.applied]
    controller = (
        None
        if applied
        else sim_controller(world, lambda: t0 + world.time, robot, 1.0 / PHYSICS_TICK_S)
    )
    next_applied = 0
    first_state = _command_vector(rec.states[0][1], names, where)
    start_error = float(np.max(np.abs(world.joint_positions()[: len(names)] - first_state)))
    if start_error > config.position_tolerance:
        report.failures.append(
            f"the recorded episode does not start where seed {seed} puts the robot (error "
            f"{start_error:.3f}): not this task/seed, or the bag starts late"
        )
    next_command, worst = 0, (0.0, "", 0.0)
    state_index = 0
    end = rec.states[-1][0] - t0 + 1e-9
    success = False
    while world.time < end:
        now = world.time
        if controller is None:
            while next_applied < len(applied) and applied[next_applied][0] - t0 <= now + 1e-9:
                world.set_joint_command(applied[next_applied][1])
                next_applied += 1
        else:  # a command takes effect when it arrived (the receive stamp), not when sent
            while next_command < len(commands) and commands[next_command][1] - t0 <= now + 1e-9:
                stamp, _received, q = commands[next_command]
                controller.submit(q, stamp)
                next_command += 1
            controller.tick(t0 + now)
        if closed is not None:
            closed.at(now)
        world.step(PHYSICS_TICK_S)
        success = success or world.evaluate().success
        while (
            state_index < len(rec.states) and rec.states[state_index][0] - t0 <= world.time + 1e-6
        ):
            recorded = _command_vector(rec.states[state_index][1], names, where)
            error = np.abs(world.joint_positions()[: len(names)] - recorded)
            j = int(np.argmax(error))
            if error[j] > worst[0]:
                worst = (float(error[j]), names[j], rec.states[state_index][0] - t0)
            state_index += 1
            report.states_compared += 1
    report.max_position_error, report.worst_joint = worst[0], worst[1]
    report.replayed_success = success
    if worst[0] > config.position_tolerance:
        report.failures.append(
            f"joint {worst[1]} left the recorded trajectory by {worst[0]:.3f} at t = "
            f"{worst[2]:.2f} s (tolerance {config.position_tolerance})"
        )
    if config.check_outcome and rec.success is not None and rec.success != success:
        report.failures.append(
            f"the recording says success={rec.success} but the replay gives success={success}"
        )
    if applied:
        mismatch = _command_mismatch(commands, applied, names, config.command_tolerance)
        if mismatch:
            report.failures.append(mismatch)
    if report.limit_violations:
        report.failures.append(
            f"{len(report.limit_violations)} commands outside the robot's limits, first: "
            f"{report.limit_violations[0]}"
        )
    if closed is not None:
        report.chunks_compared = len(closed.errors)
        if closed.errors:
            report.mean_chunk_error = float(np.mean(closed.errors))
            if report.mean_chunk_error > config.chunk_tolerance:
                report.failures.append(
                    f"closed loop: the policy's chunks differ from the recorded ones by "
                    f"{report.mean_chunk_error:.3f} rad on average (tolerance "
                    f"{config.chunk_tolerance})"
                )
        else:
            report.failures.append("closed loop: the bag has no /policy/action_chunk to compare")
    return report


MISMATCH_FRACTION = 0.05


def _command_mismatch(commands, applied, names, tolerance: float) -> str:
    """'' when the recorded commands explain what reached the arm, else the worst joint."""
    received = np.array([r for _t, r, _q in commands])
    counts = np.zeros(len(names))
    total = 0
    for t, q in applied:
        i = int(np.searchsorted(received, t + 1e-9)) - 1
        if i < 0:
            continue
        total += 1
        counts += np.abs(q - commands[i][2]) > tolerance
    if not total:
        return ""
    fractions = counts / total
    j = int(np.argmax(fractions))
    if fractions[j] <= MISMATCH_FRACTION:
        return ""
    return (
        f"the recorded commands do not explain what reached the arm: {names[j]} differs from "
        f"the newest command by more than {tolerance} on {fractions[j]:.0%} of the ticks "
        f"(were the commands altered?)"
    )


def _limit_violations(commands, limits, margin: float, t0: float) -> list[str]:
    """Commands outside the position limits, or faster than the speed limits (x margin)."""
    out = []
    lower, upper = np.asarray(limits.lower), np.asarray(limits.upper)
    speed = np.asarray(limits.max_velocity) * margin
    names = limits.names
    previous = None
    for t, q in commands:
        if len(q) != len(lower):
            break
        outside = np.flatnonzero((q < lower - 1e-6) | (q > upper + 1e-6))
        if outside.size:
            j = int(outside[0])
            out.append(
                f"t = {t - t0:.2f} s: {names[j]} = {q[j]:.3f} outside "
                f"[{lower[j]:.3f}, {upper[j]:.3f}]"
            )
        if previous is not None and t > previous[0]:
            rate = np.abs(q - previous[1]) / (t - previous[0])
            fast = np.flatnonzero(rate > speed)
            if fast.size:
                j = int(fast[0])
                out.append(
                    f"t = {t - t0:.2f} s: {names[j]} moves at {rate[j]:.2f} > {speed[j]:.2f} /s"
                )
        previous = (t, q)
    return out


def chunk_from_bag_message(msg: Any) -> ActionChunk:
    """A recorded human_video_policy_msgs/ActionChunk (rosbags object) -> validated chunk."""
    if len(msg.names) != msg.dims:
        raise InputError(f"recorded ActionChunk has dims={msg.dims} but {len(msg.names)} names")
    return ActionChunk.from_flat(
        np.asarray(msg.data, dtype=np.float32),
        horizon=int(msg.horizon),
        dims=int(msg.dims),
        dt=float(msg.dt),
        names=tuple(msg.names),
        action_space=str(msg.action_space),
        observation_stamp=_seconds(msg.observation_stamp),
    )


def _seconds(stamp: Any) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def _decode_rgb(msg: Any, topic: str) -> np.ndarray:
    import cv2

    if topic.endswith("/compressed"):
        bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"recorded image on {topic} cannot be decoded ({msg.format})")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if msg.encoding != "rgb8":
        raise InputError(f"recorded image on {topic} is {msg.encoding}, expected rgb8")
    return np.asarray(msg.data, dtype=np.uint8).reshape(msg.height, msg.width, 3)


class _ClosedLoop:
    """Asks the policy again at every recorded chunk stamp and compares the chunks.

    ``expert``: the scripted expert on the replayed world (its true state at that moment);
    a model: the recorded camera image nearest before the chunk's observation stamp and the
    recorded joint state nearest to it.
    """

    def __init__(self, world, rec: Recording, config: ReplayConfig, t0: float) -> None:
        from human_video_policy.sim.bench import make_policy

        self.world, self.t0 = world, t0
        self.expert = config.policy == "expert"
        if not self.expert and not Path(config.policy).expanduser().exists():
            raise ConfigError(f"policy {config.policy!r}: neither 'expert' nor an existing model")
        self.policy = make_policy(config.policy, world)
        self.chunks = [(t - t0, chunk_from_bag_message(msg)) for t, msg in rec.chunks]
        self.images = sorted(
            ((t - t0, msg, topic) for t, msg, topic in rec.images), key=lambda x: x[0]
        )
        self.states = [(t - t0, m) for t, m in rec.states]
        self.state_names = tuple(world.state_joint_names)
        self.next = 0
        self.errors: list[float] = []

    def at(self, now: float) -> None:
        while self.next < len(self.chunks) and self.chunks[self.next][0] <= now + 1e-9:
            _, recorded = self.chunks[self.next]
            self.next += 1
            if self.expert:
                state = self.world.joint_positions()
                image = None
            else:
                stamp = recorded.observation_stamp - self.t0
                state = self._recorded_state(stamp)
                image = self._recorded_image(stamp)
                if image is None:
                    continue
            replayed = self.policy.predict_chunk(image, state, now)
            rows = min(replayed.horizon, recorded.horizon)
            if replayed.names != recorded.names:
                raise InputError(
                    f"the policy's chunk names {replayed.names} differ from the recorded "
                    f"{recorded.names}"
                )
            diff = np.abs(replayed.actions[:rows] - recorded.actions[:rows])
            self.errors.append(float(np.mean(diff)))

    def _recorded_state(self, stamp: float) -> np.ndarray:
        times = [t for t, _ in self.states]
        i = int(np.argmin(np.abs(np.asarray(times) - stamp)))
        joint_map = self.states[i][1]
        return np.array([joint_map[n] for n in self.state_names])

    def _recorded_image(self, stamp: float) -> np.ndarray | None:
        before = [item for item in self.images if item[0] <= stamp + 1e-6]
        if not before:
            return None
        _, msg, topic = before[-1]
        return _decode_rgb(msg, topic)
