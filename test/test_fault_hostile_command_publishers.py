"""Fault injection: hostile /arm/joint_commands and /hand/joint_commands publishers over DDS.

The RM75 and XHand controllers of the sim_rm75 graph (their shipped parameter file) get
thousands of hostile commands (up to 500 Hz per controller; 100,000-element messages slow
the publisher): NaN, +-inf, 1e308, far outside the limits, huge steps, wrong and duplicate names,
names and positions of different lengths, 100,000-element arrays, stale, future and zero stamps,
mixed with valid commands. What reaches the robot (the sim joint states) must stay inside the
URDF limits and the scaled velocity limits, the node must keep its control rate, and every
malformed message must be counted. The figures are printed (docs/safety.md quotes them).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_helpers import (
    PROJECT_ROOT,
    PeriodicThread,
    RosProbe,
    diagnostic_values,
    node_command,
    start_process,
    wait_for,
)
from sensor_msgs.msg import JointState

from human_video_policy.nodes.conversions import seconds_to_stamp
from human_video_policy.robots.rm75 import RM75_ARM_JOINTS, rm75_joint_limits
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits

pytestmark = pytest.mark.ros

PARAMS = PROJECT_ROOT / "config" / "sim_rm75.params.yaml"
VELOCITY_SCALE = 0.5  # sim_rm75.params.yaml


class HostileCommander(PeriodicThread):
    """Publishes a random mix of hostile and valid JointState commands at ``rate_hz``."""

    def __init__(self, probe: RosProbe, topic: str, names: tuple[str, ...], limits, seed: int):
        super().__init__(0.002)
        self.publisher = probe.publisher(topic, JointState)
        self.names = names
        self.lower = np.asarray(limits.lower)
        self.upper = np.asarray(limits.upper)
        self.rng = np.random.default_rng(seed)
        self.sent: dict[str, int] = {}

    def _message(self) -> tuple[str, JointState]:
        rng, n = self.rng, len(self.names)
        msg = JointState()
        now = time.time()
        msg.header.stamp = seconds_to_stamp(now)
        names = list(self.names)
        positions = rng.uniform(self.lower, self.upper)
        kind = rng.choice(
            [
                "valid",
                "valid",
                "nan",
                "inf",
                "huge",
                "out_of_range",
                "wrong_names",
                "duplicate_names",
                "length_mismatch",
                "giant",
                "stale",
                "future",
                "zero_stamp",
                "empty",
            ]
        )
        if kind == "nan":
            positions[rng.integers(n)] = np.nan
        elif kind == "inf":
            positions[rng.integers(n)] = rng.choice([np.inf, -np.inf])
        elif kind == "huge":
            positions[rng.integers(n)] = rng.choice([1e308, -1e308])
        elif kind == "out_of_range":
            positions = rng.uniform(self.lower - 20.0, self.upper + 20.0)
        elif kind == "wrong_names":
            names = [f"{name}_x" for name in names]
        elif kind == "duplicate_names":
            names = names + names[:2]
            positions = np.concatenate([positions, [1e6, -1e6]])
        elif kind == "length_mismatch":
            positions = positions[: n - 1]
        elif kind == "giant":
            names = names + [f"extra_{i}" for i in range(100_000)]
            positions = np.concatenate([positions, rng.uniform(-1e9, 1e9, 100_000)])
        elif kind == "stale":
            msg.header.stamp = seconds_to_stamp(now - 5.0)
        elif kind == "future":
            msg.header.stamp = seconds_to_stamp(now + 5.0)
        elif kind == "zero_stamp":
            msg.header.stamp = seconds_to_stamp(0.0)
        elif kind == "empty":
            names, positions = [], np.zeros(0)
        msg.name = names
        msg.position = [float(v) for v in positions]
        return str(kind), msg

    def step(self) -> None:
        kind, msg = self._message()
        self.publisher.publish(msg)
        self.sent[kind] = self.sent.get(kind, 0) + 1


def _check_states(states, names: tuple[str, ...], limits) -> tuple[float, float]:
    """(largest excursion beyond a limit, largest speed / velocity limit) over the states."""
    items = states.items()
    index = [list(items[-1][1].name).index(n) for n in names]
    q = np.array([[m.position[i] for i in index] for _, m in items])
    assert np.all(np.isfinite(q))
    beyond = np.maximum(q - limits.upper, limits.lower - q).max()
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in items])
    # speed over 20 ticks (0.2 s): a state is stamped when published, not when read, so short
    # windows carry the publishing jitter (over 10 ticks one late stamp read as 0.64-0.90 of the
    # limit in three runs of the same test; the layer bounds commands at 0.5)
    dt = stamps[20:] - stamps[:-20]
    speed = np.abs(q[20:] - q[:-20]) / dt[:, None]
    return float(beyond), float((speed / limits.max_velocity).max())


def test_hostile_command_publishers_never_move_a_robot_unsafely() -> None:
    arm = node_command("arm_controller_node", "--params-file", str(PARAMS))
    hand = node_command("hand_controller_node", "--params-file", str(PARAMS))
    with (
        RosProbe("probe_hostile_commands") as probe,
        start_process(arm) as arm_process,
        start_process(hand) as hand_process,
    ):
        arm_states = probe.record("/arm/joint_states", JointState)
        hand_states = probe.record("/hand/joint_states", JointState)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        assert wait_for(lambda: len(arm_states) > 20 and len(hand_states) > 20, 30.0), (
            arm_process.output()[-2000:] + hand_process.output()[-2000:]
        )
        arm_limits, hand_limits = rm75_joint_limits(), xhand_joint_limits()
        with (
            HostileCommander(probe, "/arm/joint_commands", RM75_ARM_JOINTS, arm_limits, 1) as a,
            HostileCommander(probe, "/hand/joint_commands", XHAND_JOINTS, hand_limits, 2) as h,
        ):
            # At least 8 s of flood and at least 1,500 hostile messages (a loaded machine
            # publishes fewer per second: seen 1,391 in 8 s with another job on the cores).
            start = time.monotonic()
            while time.monotonic() - start < 30.0 and (
                time.monotonic() - start < 8.0
                or sum(a.sent.values()) + sum(h.sent.values()) <= 1500
            ):
                time.sleep(0.2)
        time.sleep(1.0)
        arm_values = diagnostic_values(diagnostics, "arm_controller")
        hand_values = diagnostic_values(diagnostics, "hand_controller")
        assert arm_process.popen.poll() is None and hand_process.popen.poll() is None
        arm_beyond, arm_speed = _check_states(arm_states, RM75_ARM_JOINTS, arm_limits)
        hand_beyond, hand_speed = _check_states(hand_states, XHAND_JOINTS, hand_limits)
        sent = sum(a.sent.values()) + sum(h.sent.values())
        print(
            f"hostile commands sent: {sent} (arm {a.sent}, hand {h.sent}); arm: beyond limits "
            f"{arm_beyond:.4f} rad, speed/limit {arm_speed:.3f}, tick rate "
            f"{arm_values.get('tick_rate_hz_wall')} Hz; hand: beyond {hand_beyond:.4f} rad, "
            f"speed/limit {hand_speed:.3f}, tick rate {hand_values.get('tick_rate_hz_wall')} Hz"
        )
        print(f"arm counters: {arm_values}")
        assert sent > 1500
        # the sim joints may sit a hair past a limit while a servo settles against it
        assert arm_beyond < 0.01 and hand_beyond < 0.01
        # joint speed from sampled states: the layer's bound (0.5) + servo overshoot
        assert arm_speed < 0.75 and hand_speed < 0.75
        # at 100 Hz the layer sees the newest message of each tick (the others are replaced and
        # counted as driver_commands_replaced): every refusal path ran, in small numbers
        malformed = ("empty", "wrong_names", "duplicate_names", "length_mismatch")
        for values, sender in ((arm_values, a), (hand_values, h)):
            assert float(values["tick_rate_hz_wall"]) > 90.0
            # a share of what was sent, not a count: under load fewer messages reach the node
            # (seen: 100 counted of 246 malformed hand messages sent on a busy machine)
            sent_malformed = sum(sender.sent.get(kind, 0) for kind in malformed)
            assert int(values["invalid_command_messages"]) > max(20, 0.1 * sent_malformed)
            assert int(values["refused_nonfinite"]) > 3
            assert int(values["refused_stale"]) > 3 and int(values["refused_future"]) > 3
            assert int(values["position_clamps"]) > 3
            assert int(values["commands_accepted"]) > 50
