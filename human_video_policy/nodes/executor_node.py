"""Plays action chunks as joint commands at the control rate (receding horizon, clamped).

Subscribes /policy/action_chunk and the robot's joint states, runs
:class:`runtime.chunk_executor.ChunkExecutor` at ``control_rate_hz`` on the node clock (sim time
under use_sim_time) and publishes joint commands (JointState) to each controller of ``robot``
(robots/spec.py ``joint_topics``): /arm/joint_commands with the 7 WidowX command joints, or for
``rm75_xhand`` the 7 arm joints on /arm/joint_commands and the 12 XHand joints, in the hand's
own order, on /hand/joint_commands; the measured state is assembled from each controller's
``<namespace>/joint_states`` (no command before every controller has reported).
Every command is within the URDF joint limits and the scaled velocity limits; chunks that are
stale, malformed or for other joints are refused and counted on /diagnostics.

``mode`` picks how chunks hand over (``k_of_n`` with ``execute_steps``, ``ensemble``, ``rtc``;
runtime/chunk_executor.py). The stamp of every command that starts playing a new chunk is
published on /executor/chunk_start (builtin_interfaces/Time), so a recording shows where the
handovers are (``hvp policy stats BAG``); /diagnostics carries the smoothness of the last
``smoothness_window`` commands (runtime/smoothness.py: step and jump at chunk boundaries, step
within chunks, jerk, command period p99, jitter and deadline misses; a
:class:`runtime.smoothness.SmoothnessMonitor`).

/safety/estop (std_msgs/Bool, from publishers of any QoS, latched ones included:
:mod:`human_video_policy.nodes.estop_input`): while true, no command is published (the controllers
hold position) and the executor forgets its chunks, so motion resumes only from a new chunk.
/episode/start (std_msgs/UInt32) also makes it forget its chunks and last command, so a new
episode starts from the measured state instead of the previous episode's targets.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from human_video_policy_msgs.msg import ActionChunk as ActionChunkMsg
from sensor_msgs.msg import JointState
from std_msgs.msg import UInt32

from human_video_policy.errors import InputError
from human_video_policy.nodes.base import DiagnosticsReport, HvpNode, Level, RateMeter, run_node
from human_video_policy.nodes.conversions import (
    action_chunk_from_msg,
    joint_state_to_numpy,
    numpy_to_joint_state,
)
from human_video_policy.nodes.estop_input import EstopInput
from human_video_policy.nodes.qos import RELIABLE
from human_video_policy.robots.spec import get_robot, robot_names
from human_video_policy.runtime.chunk_executor import (
    EXECUTION_MODES,
    ChunkExecutor,
    ChunkExecutorConfig,
)
from human_video_policy.runtime.smoothness import SmoothnessMonitor
from human_video_policy.validation import check_choice, check_int_range, check_range


class ExecutorNode(HvpNode):
    """ActionChunk + joint states -> clamped joint commands; see the module docstring."""

    default_name = "executor"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.default_name, **kwargs)
        robot = self.param(
            "robot",
            "widowx",
            f"Robot whose joints, controllers and URDF limits are used: one of {robot_names()}.",
            lambda n, v: check_choice(n, v, robot_names()),
        )
        config = ChunkExecutorConfig(
            execute_steps=self.param(
                "execute_steps",
                2,
                "Chunk rows played before a newer chunk replaces the active one (k of N).",
                lambda n, v: check_int_range(n, v, 1, 1000),
            ),
            control_rate_hz=self.param(
                "control_rate_hz",
                50.0,
                "Joint commands per second of the node clock (Hz).",
                lambda n, v: check_range(n, v, 1.0, 1000.0),
            ),
            max_chunk_age_s=self.param(
                "max_chunk_age_s",
                0.5,
                "Refuse a chunk whose observation is older than this on arrival (s); 0 = off.",
                lambda n, v: check_range(n, v, 0.0, 60.0),
            ),
            max_velocity_scale=self.param(
                "max_velocity_scale",
                0.5,
                "Fraction (0, 1] of the URDF joint velocity limits a command may use.",
                lambda n, v: check_range(n, v, 0.01, 1.0),
            ),
            mode=self.param(
                "mode",
                "k_of_n",
                f"How chunks hand over: one of {list(EXECUTION_MODES)} (k_of_n: after "
                "execute_steps rows; ensemble: weighted mean of the chunks covering now; rtc: "
                "switch on arrival, for policies run with real-time chunking).",
                lambda n, v: check_choice(n, v, EXECUTION_MODES),
            ),
            ensemble_decay=self.param(
                "ensemble_decay",
                0.5,
                "mode ensemble: weight exp(-decay * i) of the i-th newest chunk (0 = mean).",
                lambda n, v: check_range(n, v, 0.0, 100.0),
            ),
        )
        window = self.param(
            "smoothness_window",
            500,
            "Commands the smoothness figures on /diagnostics are computed over.",
            lambda n, v: check_int_range(n, v, 10, 100_000),
        )
        self.smoothness = SmoothnessMonitor(window, 1.0 / config.control_rate_hz)
        spec = get_robot(robot)
        self.joint_names = spec.command_joints
        # per controller: (namespace, its command joints, their columns in a command)
        self.groups = [
            (ns, joints, np.array([self.joint_names.index(j) for j in joints]))
            for ns, joints, _ in spec.joint_topics()
        ]
        self.chunk_executor = ChunkExecutor(config, spec.limits())
        self._command_pubs = [
            self.create_publisher(JointState, f"{ns}/joint_commands", RELIABLE)
            for ns, _, _ in self.groups
        ]
        self._chunk_start_pub = self.create_publisher(Time, "/executor/chunk_start", RELIABLE)
        self.create_subscription(ActionChunkMsg, "/policy/action_chunk", self._on_chunk, RELIABLE)
        for index, (ns, _, _) in enumerate(self.groups):
            self.create_subscription(
                JointState,
                f"{ns}/joint_states",
                lambda msg, i=index: self._on_joint_state(msg, i),
                RELIABLE,
            )
        self._parts: list[np.ndarray | None] = [None] * len(self.groups)
        self.estop = EstopInput(self, self._on_estop)
        self.create_subscription(UInt32, "/episode/start", self._on_episode_start, RELIABLE)
        self.create_timer(1.0 / config.control_rate_hz, self._tick)

        self._measured: np.ndarray | None = None
        self._estop = False
        self._last_chunk_stamp = float("nan")
        self.invalid_chunks = 0
        self.invalid_states = 0
        self.estop_ticks = 0
        self._command_rate = RateMeter()
        self.enable_diagnostics()
        self.get_logger().info(
            f"executing chunks for {robot} at {config.control_rate_hz:g} Hz "
            f"(mode {config.mode}, execute {config.execute_steps} steps, velocity scale "
            f"{config.max_velocity_scale:g})"
        )

    def _on_chunk(self, msg: ActionChunkMsg) -> None:
        try:
            chunk = action_chunk_from_msg(msg)
            self.chunk_executor.submit(chunk, self.now_s())
        except InputError as exc:
            self.invalid_chunks += 1
            self.get_logger().warning(f"refusing action chunk: {exc}", throttle_duration_sec=2.0)
            return
        self._last_chunk_stamp = chunk.observation_stamp

    def _on_joint_state(self, msg: JointState, part: int) -> None:
        """One controller's joint state: its joints' slice of the measured command joints."""
        _, joints, _ = self.groups[part]
        try:
            self._parts[part] = joint_state_to_numpy(msg, joints)
        except InputError as exc:
            self.invalid_states += 1
            self._parts[part] = np.full(len(joints), np.nan)  # counted by the executor
            self.get_logger().warning(f"invalid joint state: {exc}", throttle_duration_sec=2.0)
        if any(p is None for p in self._parts):
            return  # a controller has not reported yet
        measured = np.empty(len(self.joint_names))
        for (_, _, columns), values in zip(self.groups, self._parts, strict=True):
            measured[columns] = values
        self._measured = measured

    def _on_estop(self, asserted: bool) -> None:
        if asserted != self._estop:
            self._estop = asserted
            self.chunk_executor.reset()
            self.get_logger().warning(f"e-stop {'ENGAGED' if self._estop else 'released'}")

    def _on_episode_start(self, msg: UInt32) -> None:
        self.chunk_executor.reset()
        self._measured = None  # wait for a joint state of the new episode
        self._parts = [None] * len(self.groups)
        self.get_logger().info(f"episode {msg.data} started: chunks and last command cleared")

    def _tick(self) -> None:
        if self._estop:
            self.estop_ticks += 1
            return
        if self._measured is None:
            return
        try:
            command = self.chunk_executor.command(self.now_s(), self._measured)
        except InputError as exc:
            self.get_logger().warning(f"no command: {exc}", throttle_duration_sec=2.0)
            return
        if command is None:
            return
        stamp = self.now_msg()
        for publisher, (_, joints, columns) in zip(self._command_pubs, self.groups, strict=True):
            publisher.publish(numpy_to_joint_state(joints, command[columns], stamp))
        started = self.chunk_executor.last_command_started_chunk
        if started:
            self._chunk_start_pub.publish(stamp)
        try:
            self.smoothness.add_command(stamp.sec * 1_000_000_000 + stamp.nanosec, command, started)
        except InputError as exc:  # not expected: commands are clamped, of fixed joints
            self.get_logger().warning(f"smoothness: {exc}", throttle_duration_sec=2.0)
        self._command_rate.tick()

    def _smoothness(self) -> dict[str, Any]:
        """runtime/smoothness.py over the recent commands (empty until there are enough)."""
        report = self.smoothness.report()
        if report is None:
            return {}
        keys = (
            "boundary_step",
            "boundary_jump",
            "within_step",
            "jerk_rms",
            "period_p99_ms",
            "period_jitter_ms",
        )
        values: dict[str, Any] = {f"smoothness_{k}": getattr(report, k) for k in keys}
        values["smoothness_deadline_misses"] = report.deadline_misses
        return values

    def diagnostics_report(self) -> DiagnosticsReport:
        counters = dataclasses.asdict(self.chunk_executor.counters)
        estop_values, estop_warning = self.estop.diagnostics(publisher_required=False)
        values: dict[str, Any] = {
            **estop_values,
            "command_rate_hz_wall": self._command_rate.rate_hz,
            "estop": self._estop,
            "last_chunk_age_s": self.now_s() - self._last_chunk_stamp,
            "invalid_chunk_messages": self.invalid_chunks,
            "invalid_joint_state_messages": self.invalid_states,
            "mode": self.chunk_executor.config.mode,
            **counters,
            **self._smoothness(),
        }
        if self._estop:
            return DiagnosticsReport(Level.WARN, "e-stop engaged: holding position", values)
        if estop_warning:
            return DiagnosticsReport(Level.WARN, estop_warning, values)
        if self._measured is None:
            parts = zip(self.groups, self._parts, strict=True)
            waiting = [f"{ns}/joint_states" for (ns, _, _), p in parts if p is None]
            return DiagnosticsReport(Level.WARN, f"waiting for {', '.join(waiting)}", values)
        if counters["commands"] == 0:
            return DiagnosticsReport(Level.WARN, "waiting for action chunks", values)
        clamps = counters["position_clamps"]
        message = f"running ({clamps} position clamps)" if clamps else "running"
        return DiagnosticsReport(Level.OK, message, values)


def main(args: list[str] | None = None) -> int:
    return run_node(ExecutorNode, args)


if __name__ == "__main__":
    sys.exit(main())
