"""How smooth a stream of joint commands is: jumps at chunk boundaries, jerk, period jitter.

Why measured: the two complaints users of chunked policies raise most are jerky motion where
one chunk hands over to the next, and a control loop starved by inference (lerobot #2356,
#2559, PR #4223; openpi #393). Both show in the commands the executor sends, so this module
takes those (times, positions, and which commands started a new chunk) and reports numbers
that can be compared between execution modes, on the same seeds:

- ``boundary_step``: the mean, over chunk boundaries, of the largest joint change from the
  command before the boundary to the first command of the new chunk (rad or m);
- ``within_step``: the same change between two commands of one chunk (the motion itself);
- ``boundary_jump``: the mean, over boundaries, of the largest change of that step against
  the step before it (a second difference: what a handover adds on top of the motion); 0 for a
  handover that continues the motion exactly;
- ``jerk_rms``: the root mean square over commands of the third difference / period^3
  (rad/s^3), largest over joints;
- ``period_*``: command periods (ms): median, p99, max, standard deviation (jitter), and
  ``deadline_misses``: periods longer than 1.5 nominal periods;
- inference latency (ms), median and p99, when given.

Pure numpy: used by the executor node live (through :class:`SmoothnessMonitor`, the same
numbers over a rolling window), by ``hvp policy stats`` on bags and live, and by the benchmarks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from human_video_policy.errors import InputError

#: A period longer than this many nominal periods is a deadline miss.
DEADLINE_FACTOR = 1.5


@dataclass(frozen=True)
class SmoothnessReport:
    """Smoothness of one command stream (see the module docstring for each number)."""

    commands: int
    boundaries: int
    boundary_step: float
    within_step: float
    boundary_jump: float
    jerk_rms: float
    period_median_ms: float
    period_p99_ms: float
    period_max_ms: float
    period_jitter_ms: float
    deadline_misses: int
    latency_median_ms: float = float("nan")
    latency_p99_ms: float = float("nan")

    def to_json(self) -> dict[str, float | int]:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in asdict(self).items()}  # fmt: skip

    def text(self) -> str:
        """A few lines for a terminal."""
        lines = [
            f"commands {self.commands}, chunk boundaries {self.boundaries}",
            f"step at a boundary {self.boundary_step:.4f}, within a chunk {self.within_step:.4f}"
            f" (rad or m, largest joint); jump at a boundary {self.boundary_jump:.4f}",
            f"jerk rms {self.jerk_rms:.1f} rad/s^3",
            f"period median {self.period_median_ms:.2f} ms, p99 {self.period_p99_ms:.2f} ms, "
            f"max {self.period_max_ms:.2f} ms, jitter {self.period_jitter_ms:.2f} ms, "
            f"deadline misses {self.deadline_misses}",
        ]
        if np.isfinite(self.latency_median_ms):
            lines.append(
                f"inference latency median {self.latency_median_ms:.1f} ms, "
                f"p99 {self.latency_p99_ms:.1f} ms"
            )
        return "\n".join(lines)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def command_smoothness(
    times_s: Sequence[float] | np.ndarray,
    commands: Sequence[Sequence[float]] | np.ndarray,
    boundary_indices: Sequence[int] | np.ndarray,
    nominal_period_s: float,
    latencies_ms: Sequence[float] | np.ndarray | None = None,
) -> SmoothnessReport:
    """Report the smoothness of ``commands`` (N, joints) sent at ``times_s`` (N,), where the
    commands at ``boundary_indices`` are the first ones of a new chunk (the first chunk's start
    is not a handover and is ignored if listed); ``latencies_ms`` are inference latencies."""
    t = np.asarray(times_s, dtype=np.float64).reshape(-1)
    q = np.asarray(commands, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] != t.size:
        raise InputError(f"commands must be (N, joints) with N = {t.size} times, got {q.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
        raise InputError("command times and positions must be finite")
    if t.size < 4:
        raise InputError(f"need at least 4 commands to measure smoothness, got {t.size}")
    if np.any(np.diff(t) <= 0):
        raise InputError("command times must increase strictly")
    if not (np.isfinite(nominal_period_s) and nominal_period_s > 0):
        raise InputError(f"nominal_period_s={nominal_period_s!r} must be a number > 0")
    boundaries = np.unique(np.asarray(boundary_indices, dtype=np.int64).reshape(-1))
    if boundaries.size and (boundaries[0] < 0 or boundaries[-1] >= t.size):
        raise InputError(f"boundary indices must be in 0..{t.size - 1}")
    boundaries = boundaries[boundaries >= 2]  # a handover needs a step before it
    step = np.abs(np.diff(q, axis=0)).max(axis=1)  # step[i]: command i -> i + 1
    accel = np.abs(np.diff(q, n=2, axis=0)).max(axis=1)  # accel[i]: around command i + 1
    at_boundary = np.zeros(step.size, dtype=bool)
    at_boundary[boundaries - 1] = True
    periods = np.diff(t)
    jerk = np.diff(q, n=3, axis=0) / nominal_period_s**3
    latency = np.asarray(latencies_ms if latencies_ms is not None else [], dtype=np.float64)
    latency = latency[np.isfinite(latency)]
    return SmoothnessReport(
        commands=int(t.size),
        boundaries=int(boundaries.size),
        boundary_step=_mean(step[at_boundary]),
        within_step=_mean(step[~at_boundary]),
        boundary_jump=_mean(accel[boundaries - 2]),
        jerk_rms=float(np.sqrt((jerk**2).mean(axis=0)).max()),
        period_median_ms=float(np.median(periods) * 1e3),
        period_p99_ms=float(np.percentile(periods, 99) * 1e3),
        period_max_ms=float(periods.max() * 1e3),
        period_jitter_ms=float(periods.std() * 1e3),
        deadline_misses=int(np.sum(periods > DEADLINE_FACTOR * nominal_period_s)),
        latency_median_ms=float(np.median(latency)) if latency.size else float("nan"),
        latency_p99_ms=float(np.percentile(latency, 99)) if latency.size else float("nan"),
    )


def bag_smoothness(
    path,
    commands_topic: str = "/arm/joint_commands",
    chunk_start_topic: str = "/executor/chunk_start",
    chunks_topic: str = "/policy/action_chunk",
    rate_hz: float | None = None,
) -> SmoothnessReport:
    """:func:`command_smoothness` of a recorded bag: the commands (sensor_msgs/JointState,
    header stamps), the handovers the executor marked on ``chunk_start_topic``
    (builtin_interfaces/Time: the stamp of each first command of a chunk) and the inference
    latency of each chunk on ``chunks_topic`` (its header stamp minus its observation stamp).
    ``rate_hz``: the nominal command rate (default: from the median command period)."""
    from human_video_policy.data.bags import BagReader

    with BagReader(path) as bag:
        if commands_topic not in bag.topics:
            raise InputError(f"{path}: no {commands_topic} in the bag ({sorted(bag.topics)})")
        times, keys, commands, starts, latencies = [], [], [], set(), []
        for topic, _, msg in bag.messages([commands_topic, chunk_start_topic, chunks_topic]):
            if topic == commands_topic:
                stamp = msg.header.stamp
                times.append(stamp.sec + 1e-9 * stamp.nanosec)
                keys.append((int(stamp.sec), int(stamp.nanosec)))
                commands.append(np.asarray(msg.position, dtype=np.float64))
            elif topic == chunk_start_topic:
                starts.add((int(msg.sec), int(msg.nanosec)))
            else:
                sent = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
                seen = msg.observation_stamp.sec + 1e-9 * msg.observation_stamp.nanosec
                latencies.append((sent - seen) * 1e3)
    if not times:
        raise InputError(f"{path}: {commands_topic} holds no commands")
    if len({c.shape for c in commands}) != 1:
        raise InputError(f"{path}: {commands_topic} commands change their number of joints")
    order = np.argsort(times, kind="stable")
    # Two commands with one stamp (a paused sim clock) count once: the first one sent.
    keep = np.concatenate([[True], np.diff(np.asarray(times)[order]) > 0])
    order = order[keep]
    t = np.asarray(times)[order]
    boundaries = [i for i, j in enumerate(order) if keys[j] in starts]
    period = float(np.median(np.diff(t))) if rate_hz is None else 1.0 / rate_hz
    return command_smoothness(t, np.stack(commands)[order], boundaries, period, latencies or None)


class SmoothnessMonitor:
    """Rolling smoothness of a live command stream: the last ``window`` commands.

    Why a class: a live stream (the executor's own commands, or ``hvp policy stats --live``)
    arrives one message at a time and its handover marks may come before or after the command
    they mark; this keeps the window, the marks and the latencies bounded and reports the same
    numbers as :func:`command_smoothness` on the commands in the window.
    ``nominal_period_s``: the command period deadlines and jerk are measured against (None: the
    median period of the window, as :func:`bag_smoothness` does)."""

    #: Fewer commands than this in the window: :meth:`report` returns None.
    MIN_COMMANDS = 10

    def __init__(self, window: int = 500, nominal_period_s: float | None = None) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < self.MIN_COMMANDS:
            raise InputError(f"window={window!r} must be an integer >= {self.MIN_COMMANDS}")
        if nominal_period_s is not None and not (
            np.isfinite(nominal_period_s) and nominal_period_s > 0
        ):
            raise InputError(f"nominal_period_s={nominal_period_s!r} must be None or a number > 0")
        self.window = window
        self.nominal_period_s = nominal_period_s
        self._stamps: deque[int] = deque(maxlen=window)
        self._positions: deque[np.ndarray] = deque(maxlen=window)
        self._marks: set[int] = set()  # stamps (ns) of first commands of a chunk
        self._latencies: deque[float] = deque(maxlen=window)
        self._joints: int | None = None
        self._last_stamp: int | None = None
        #: Commands dropped because their stamp was not after the previous one (since reset).
        self.dropped_commands = 0

    def add_command(self, stamp_ns: int, positions: np.ndarray, starts_chunk: bool = False) -> None:
        """Add one command sent at ``stamp_ns`` (its header stamp, ns). ``starts_chunk``: it is
        the first command of a new chunk (same as :meth:`mark_chunk_start` with its stamp).
        Raises InputError for non-finite positions or a joint count that differs from the
        window's; a stamp not after the previous one (a paused sim clock) is dropped, the first
        command of that stamp kept, as :func:`bag_smoothness` does."""
        q = np.array(positions, dtype=np.float64)
        if q.ndim != 1 or q.size == 0:
            raise InputError(f"a command must be a non-empty 1-D array of positions, got {q.shape}")
        if not np.all(np.isfinite(q)):
            raise InputError("command positions must be finite")
        if self._joints is not None and q.size != self._joints:
            raise InputError(
                f"a command of {q.size} joints in a stream of {self._joints}-joint commands"
            )
        stamp = int(stamp_ns)
        if starts_chunk:
            self.mark_chunk_start(stamp)
        if self._last_stamp is not None and stamp <= self._last_stamp:
            self.dropped_commands += 1
            return
        self._joints = q.size
        self._last_stamp = stamp
        self._stamps.append(stamp)
        self._positions.append(q)
        self._prune_marks()

    def mark_chunk_start(self, stamp_ns: int) -> None:
        """The stamp (ns) of the first command of a chunk (the executor's
        /executor/chunk_start); before or after that command arrives."""
        stamp = int(stamp_ns)
        if self._stamps and stamp < self._stamps[0]:
            return  # its command already left the window (or never was in it)
        self._marks.add(stamp)
        self._prune_marks()

    def add_latency(self, latency_ms: float) -> None:
        """The inference latency of one chunk (ms); non-finite values are ignored."""
        value = float(latency_ms)
        if np.isfinite(value):
            self._latencies.append(value)

    def reset(self) -> None:
        """Forget everything: commands, marks, latencies, the joint count and the last stamp."""
        self._stamps.clear()
        self._positions.clear()
        self._marks.clear()
        self._latencies.clear()
        self._joints = None
        self._last_stamp = None
        self.dropped_commands = 0

    def __len__(self) -> int:
        return len(self._stamps)

    def _prune_marks(self) -> None:
        """Drop marks older than the window; keep at most ``window`` marks, the oldest: the
        window holds at most that many, so the ones dropped are those furthest ahead of the
        newest command (marks of commands that never arrive, or stamped on another clock)."""
        if not self._marks:
            return
        if self._stamps and min(self._marks) < self._stamps[0]:
            oldest = self._stamps[0]
            self._marks = {m for m in self._marks if m >= oldest}
        if len(self._marks) > self.window:
            self._marks = set(sorted(self._marks)[: self.window])

    def report(self) -> SmoothnessReport | None:
        """:func:`command_smoothness` of the window, or None before ``MIN_COMMANDS`` commands."""
        if len(self._stamps) < self.MIN_COMMANDS:
            return None
        stamps = np.fromiter(self._stamps, dtype=np.int64, count=len(self._stamps))
        times = (stamps - stamps[0]) * 1e-9  # relative: no float rounding of epoch seconds
        boundaries = [i for i, s in enumerate(self._stamps) if s in self._marks]
        period = self.nominal_period_s
        if period is None:
            period = float(np.median(np.diff(times)))
        return command_smoothness(
            times,
            np.stack(self._positions),
            boundaries,
            period,
            list(self._latencies) or None,
        )
