"""``hvp policy stats --live``: the smoothness of a running policy, from its topics.

Why a live view: the numbers of ``hvp policy stats BAG`` (runtime/smoothness.py) answer "is the
handover jerky, is the control loop starved" only after a recording; on a robot one wants them
while tuning ``execute_steps`` or the execution mode. This subscribes to

- the commands (sensor_msgs/JointState, header stamps; default /arm/joint_commands),
- the executor's handover marks (builtin_interfaces/Time; default /executor/chunk_start),
- the policy's chunks (human_video_policy_msgs/ActionChunk: inference latency = header stamp -
  observation stamp; default /policy/action_chunk),
- the policy's status (human_video_policy_msgs/PolicyStatus: state, execution provider, chunk
  index; default /policy/status),

feeds a :class:`SmoothnessMonitor` (bounded: its last ``window`` commands) and prints its report
every ``interval`` seconds until ``duration`` or Ctrl-C. Commands with NaN positions or another
joint count are counted and skipped (after ``RELOCK_AFTER`` of one new joint count in a row the
stream is taken to have changed and the window restarts with it). Exit 2 when no usable command
arrived. All reliable QoS, as the nodes publish them (nodes/qos.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from human_video_policy.errors import InputError
from human_video_policy.runtime.smoothness import SmoothnessMonitor, SmoothnessReport

#: Consecutive commands of one new joint count after which the window restarts with that count.
RELOCK_AFTER = 10

# Deep enough that a burst of commands waiting while the report prints is not dropped.
_HISTORY_DEPTH = 100


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class LiveStats:
    """What the subscriptions saw: a monitor of the commands plus the policy's status. Pure
    message handling (no rclpy), so it can be driven by any source of messages."""

    monitor: SmoothnessMonitor
    commands_received: int = 0
    skipped_commands: int = 0
    chunks_received: int = 0
    provider: str | None = None
    chunk_index: int | None = None
    policy_state: str | None = None
    policy_message: str = ""
    _mismatch: tuple[int, int] = field(default=(0, 0))  # (joint count, times in a row)

    def on_command(self, msg: Any) -> None:
        """A sensor_msgs/JointState command; refused ones are counted, never raised."""
        self.commands_received += 1
        positions = np.asarray(msg.position, dtype=np.float64)
        stamp = _stamp_ns(msg.header.stamp)
        try:
            self.monitor.add_command(stamp, positions)
        except InputError:
            if not self._relocked(stamp, positions):
                self.skipped_commands += 1
            return
        self._mismatch = (0, 0)

    def _relocked(self, stamp: int, positions: np.ndarray) -> bool:
        """Whether a refused command restarted the window with its joint count: a stream that
        really changed its joint count (or whose first command was the odd one) is followed
        instead of being refused for good."""
        if positions.ndim != 1 or positions.size == 0 or not np.all(np.isfinite(positions)):
            return False
        count, times = self._mismatch
        times = times + 1 if positions.size == count else 1
        self._mismatch = (positions.size, times)
        if times >= RELOCK_AFTER:
            print(
                f"the commands now have {positions.size} joints: restarting the window",
                file=sys.stderr,
                flush=True,
            )
            self.monitor.reset()
            self.monitor.add_command(stamp, positions)
            self._mismatch = (0, 0)
            return True
        return False

    def on_chunk_start(self, msg: Any) -> None:
        """A builtin_interfaces/Time handover mark."""
        self.monitor.mark_chunk_start(_stamp_ns(msg))

    def on_chunk(self, msg: Any) -> None:
        """A human_video_policy_msgs/ActionChunk: its inference latency."""
        self.chunks_received += 1
        latency_ns = _stamp_ns(msg.header.stamp) - _stamp_ns(msg.observation_stamp)
        self.monitor.add_latency(latency_ns * 1e-6)

    def on_status(self, msg: Any) -> None:
        """A human_video_policy_msgs/PolicyStatus."""
        self.provider = str(msg.execution_provider)
        self.chunk_index = int(msg.chunk_index)
        self.policy_state = _state_name(msg)
        self.policy_message = str(msg.message)

    def status_line(self) -> str:
        if self.policy_state is None:
            policy = "no policy status yet"
        else:
            detail = f" ({self.policy_message})" if self.policy_message else ""
            policy = f"policy {self.policy_state}{detail}"
        provider = self.provider or "-"
        chunk = "-" if self.chunk_index is None else str(self.chunk_index)
        skipped = f", {self.skipped_commands} skipped" if self.skipped_commands else ""
        return (
            f"{policy}, provider {provider}, chunk index {chunk}; "
            f"{self.commands_received} commands received{skipped}, {self.chunks_received} chunks"
        )

    def to_json(self, report: SmoothnessReport) -> dict[str, Any]:
        """The BAG mode's report fields plus what only a live run knows."""
        return {
            **report.to_json(),
            "provider": self.provider,
            "chunk_index": self.chunk_index,
            "policy_state": self.policy_state,
            "commands_received": self.commands_received,
            "skipped_commands": self.skipped_commands,
            "dropped_commands": self.monitor.dropped_commands,
            "chunks_received": self.chunks_received,
        }


def _state_name(msg: Any) -> str:
    for name in dir(type(msg)):
        if name.startswith("STATE_") and getattr(type(msg), name) == msg.state:
            return name[len("STATE_") :]
    return f"state {msg.state}"


def _reliable_qos() -> Any:
    from rclpy.qos import QoSProfile

    from human_video_policy.nodes.qos import RELIABLE

    return QoSProfile(
        history=RELIABLE.history,
        depth=_HISTORY_DEPTH,
        reliability=RELIABLE.reliability,
        durability=RELIABLE.durability,
    )


def run_live(
    commands_topic: str,
    chunk_start_topic: str,
    chunks_topic: str,
    status_topic: str,
    duration_s: float | None,
    interval_s: float,
    json_path: str = "",
    window: int = 500,
    rate_hz: float | None = None,
) -> int:
    """Subscribe, print the report every ``interval_s`` until ``duration_s`` (None: Ctrl-C),
    write the last report to ``json_path``; 0, or 2 when no command could be measured."""
    from builtin_interfaces.msg import Time
    from human_video_policy_msgs.msg import ActionChunk, PolicyStatus
    from sensor_msgs.msg import JointState

    from human_video_policy.bringup.topic_tools import ros_session

    stats = LiveStats(SmoothnessMonitor(window, None if rate_hz is None else 1.0 / rate_hz))
    with ros_session("hvp_policy_stats") as (node, executor):
        qos = _reliable_qos()
        node.create_subscription(JointState, commands_topic, stats.on_command, qos)
        node.create_subscription(Time, chunk_start_topic, stats.on_chunk_start, qos)
        node.create_subscription(ActionChunk, chunks_topic, stats.on_chunk, qos)
        node.create_subscription(PolicyStatus, status_topic, stats.on_status, qos)
        print(
            f"listening to {commands_topic}, {chunk_start_topic}, {chunks_topic}, {status_topic}"
            + (f" for {duration_s:g} s" if duration_s is not None else " (Ctrl-C to stop)"),
            flush=True,
        )
        start = time.monotonic()
        next_print = start + interval_s
        try:
            while duration_s is None or time.monotonic() - start < duration_s:
                executor.spin_once(timeout_sec=0.02)
                if time.monotonic() >= next_print:
                    next_print += interval_s
                    _print_report(stats, time.monotonic() - start, commands_topic)
        except KeyboardInterrupt:
            pass
    report = stats.monitor.report()
    if report is None:
        domain = os.environ.get("ROS_DOMAIN_ID", "0")
        if stats.commands_received == 0:
            print(
                f"no command arrived on {commands_topic} (is the executor running, with the "
                f"same ROS_DOMAIN_ID={domain}?)",
                file=sys.stderr,
            )
        else:
            print(
                f"{len(stats.monitor)} usable command(s) on {commands_topic} "
                f"({stats.commands_received} received, {stats.skipped_commands} skipped): "
                f"too few to measure (need {SmoothnessMonitor.MIN_COMMANDS})",
                file=sys.stderr,
            )
        return 2
    print(f"final\n  {stats.status_line()}\n  " + report.text().replace("\n", "\n  "), flush=True)
    if json_path:
        live = {f"live:{commands_topic}": stats.to_json(report)}
        Path(json_path).write_text(json.dumps(live, indent=1) + "\n")
    return 0


def _print_report(stats: LiveStats, elapsed_s: float, commands_topic: str) -> None:
    report = stats.monitor.report()
    body = (
        report.text()
        if report is not None
        else f"waiting for commands on {commands_topic} ({len(stats.monitor)} so far)"
    )
    print(
        f"--- {elapsed_s:.1f} s: {stats.status_line()}\n  " + body.replace("\n", "\n  "),
        flush=True,
    )
