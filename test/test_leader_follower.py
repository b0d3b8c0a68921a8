"""The leader_widowx graph over DDS: a fake leader (this test) drives the simulated WidowX.

`hvp launch leader_widowx` starts the real arm controller (MuJoCo WidowX behind the safety
layer) and the real leader_follower node as processes; the test publishes the leader's joint
states and holds the deadman (/teleop/enable at 20 Hz) like a pedal, and checks from outside:

- a leader far from the follower is refused (nothing commanded) until it is moved onto it;
- without the deadman nothing is commanded even with an aligned leader;
- aligned + deadman: the follower tracks a moving leader (arm joints and the gripper) within
  the safety layer's velocity limit;
- a leader that goes silent (stale) stops the commands within max_leader_age_s and the
  follower holds still;
- SIGINT ends the graph with exit code 0.
"""

from __future__ import annotations

import re
import signal
import sys
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_helpers import RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool

from human_video_policy.nodes.conversions import joint_state_to_numpy, numpy_to_joint_state
from human_video_policy.robots.widowx import WIDOWX_ARM_JOINTS, WIDOWX_COMMAND_JOINTS

pytestmark = [pytest.mark.ros, pytest.mark.timeout(90)]

MAX_LEADER_AGE_S = 0.1  # config/teleop.params.yaml
DEADMAN_TIMEOUT_S = 0.25  # config/teleop.params.yaml
VELOCITY_SCALE, MAX_VELOCITY = 0.5, 3.14  # controllers.params.yaml; wx250s waist/shoulder rad/s


def _leader_state_names() -> list[str]:
    return [*WIDOWX_ARM_JOINTS, "left_finger", "right_finger"]  # as a vendor driver reports


def _leader_msg(probe: RosProbe, arm: np.ndarray, finger: float) -> JointState:
    values = np.concatenate([arm, [finger, -finger]])
    return numpy_to_joint_state(
        _leader_state_names(), values, probe.node.get_clock().now().to_msg()
    )


def _leader_follower_state(diagnostics) -> str:
    for msg in reversed(diagnostics.messages()):
        for status in msg.status:
            if status.name == "leader_follower":
                return {kv.key: kv.value for kv in status.values}.get("state", "")
    return ""


def test_follower_mirrors_an_aligned_leader_only_with_the_deadman() -> None:
    command = [sys.executable, "-m", "human_video_policy.cli.main", "launch", "leader_widowx"]
    with RosProbe("probe_leader") as probe:
        states = probe.record("/arm/joint_states", JointState)
        commands = probe.record("/arm/joint_commands", JointState)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        leader = probe.publisher("/leader/joint_states", JointState)
        enable = probe.publisher("/teleop/enable", Bool)
        with start_process(command) as launcher:
            assert wait_for(lambda: len(states) > 10, 40.0), launcher.output()[-3000:]
            assert probe.wait_for_subscribers(leader, 1) and probe.wait_for_subscribers(enable)
            home = joint_state_to_numpy(states.messages()[-1], WIDOWX_COMMAND_JOINTS)
            arm0, finger0 = home[:6], float(home[6])

            def pump(seconds: float, arm_of_t, finger_of_t, deadman: bool) -> None:
                start = time.monotonic()
                while (t := time.monotonic() - start) < seconds:
                    leader.publish(_leader_msg(probe, arm_of_t(t), finger_of_t(t)))
                    if deadman:
                        enable.publish(Bool(data=True))
                    time.sleep(0.02)

            # 1. Misaligned leader (waist 0.6 rad off) + deadman: refused.
            off = arm0 + np.array([0.6, 0, 0, 0, 0, 0])
            pump(1.5, lambda t: off, lambda t: finger0, deadman=True)
            assert len(commands) == 0, "a misaligned leader was followed"
            assert wait_for(lambda: _leader_follower_state(diagnostics) == "misaligned", 3.0)

            # 2. Aligned leader without the deadman (after the last "true" has lapsed: each
            #    holds it for deadman_timeout_s): still nothing.
            time.sleep(DEADMAN_TIMEOUT_S + 0.2)
            pump(1.0, lambda t: arm0, lambda t: finger0, deadman=False)
            assert len(commands) == 0, "commands without the deadman"

            # 3. Aligned + deadman: the follower tracks a moving leader and gripper.
            def moving(t: float) -> np.ndarray:
                return arm0 + np.array([0.3 * np.sin(1.5 * t), 0.15 * np.sin(t), 0, 0, 0, 0])

            def finger(t: float) -> float:
                return 0.015 + 0.011 * (1.0 + np.cos(2.0 * t))  # 0.037 (open) .. 0.015

            follow_start = time.monotonic()
            pump(4.0, moving, finger, deadman=True)
            assert len(commands) > 50, launcher.output()[-3000:]
            sent = np.array(
                [joint_state_to_numpy(m, WIDOWX_COMMAND_JOINTS) for m in commands.messages()]
            )
            assert list(commands.messages()[0].name) == list(WIDOWX_COMMAND_JOINTS)
            # the last command is the leader's pose of a moment ago (DDS and the follower's
            # 50 Hz tick: up to 0.6 s on a loaded machine), not necessarily of the last one
            times = np.linspace(3.4, 4.0, 61)
            errors = [float(np.abs(sent[-1][:6] - moving(t)).max()) for t in times]
            then = float(times[int(np.argmin(errors))])
            assert min(errors) < 0.05, (sent[-1][:6], moving(4.0))
            assert abs(sent[-1][6] - finger(then)) < 0.003, (sent[-1][6], finger(then))
            measured = [
                (t, joint_state_to_numpy(m, WIDOWX_COMMAND_JOINTS))
                for t, m in states.since(follow_start + 1.0)
            ]
            q = np.array([v for _, v in measured])
            assert np.ptp(q[:, 0]) > 0.4, "the follower waist did not follow the leader"
            # The follower tracks the leader (lag from the velocity/acceleration limits).
            last_t, last_q = measured[-1]
            assert abs(last_q[0] - moving(last_t - follow_start)[0]) < 0.15
            speeds = np.abs(np.diff(q[:, 0])) / np.maximum(np.diff([t for t, _ in measured]), 1e-3)
            assert np.median(speeds) <= VELOCITY_SCALE * MAX_VELOCITY + 0.1

            # 4. The leader goes silent (deadman still held): commands stop, follower holds.
            silent_at = time.monotonic()
            while time.monotonic() - silent_at < 1.5:
                enable.publish(Bool(data=True))
                time.sleep(0.05)
            late = [t for t, _ in commands.items() if t > silent_at + MAX_LEADER_AGE_S + 0.15]
            assert not late, f"{len(late)} commands after the leader went stale"
            assert wait_for(lambda: _leader_follower_state(diagnostics) == "stale_leader", 3.0)
            tail = np.array(
                [
                    joint_state_to_numpy(m, WIDOWX_ARM_JOINTS)
                    for _, m in states.since(silent_at + 0.8)
                ]
            )
            assert np.abs(tail - tail[0]).max() < 2e-3, "the follower kept moving"

            launcher.send_signal(signal.SIGINT)
            assert launcher.wait(30.0) == 0, launcher.output()[-3000:]


def test_hvp_teleop_enable_holds_the_deadman_at_20_hz_and_releases_it() -> None:
    command = [sys.executable, "-m", "human_video_policy.cli.teleop_cmd", "enable"]
    with RosProbe("probe_deadman") as probe:
        enable = probe.record("/teleop/enable", Bool)
        with start_process([*command, "--duration", "2.5"]) as cli:
            assert cli.wait(30.0) == 0, cli.output()
        assert wait_for(lambda: len(enable) > 0 and not enable.messages()[-1].data, 2.0)
        items = enable.items()
        trues = [t for t, m in items if m.data]
        assert items[-1][1].data is False  # released at once on exit
        rate = (len(trues) - 1) / (trues[-1] - trues[0])
        assert 15.0 < rate < 25.0, f"{rate:.1f} Hz"
        assert np.diff(trues).max() < DEADMAN_TIMEOUT_S, "a gap long enough to drop the deadman"


@pytest.mark.parametrize(
    ("module", "params", "message"),
    [
        ("leader_follower_node", ["align:=teleport"], "align='teleport' is invalid"),
        ("leader_follower_node", ["signs:=[1.0, 2.0]"], "signs=\\[1.0, 2.0\\] is invalid"),
        ("leader_follower_node", ["gripper_leader_open:=0.015"], "leader_open=0.015"),
        ("deadman_node", ["mode:=key"], "not a TTY"),
    ],
)
def test_bad_parameters_exit_2_naming_them(module: str, params: list[str], message: str) -> None:
    args = [x for p in params for x in ("-p", p)]
    with start_process(node_command(module, *args)) as process:
        assert process.wait(30.0) == 2, process.output()
        assert re.search(message, process.output()), process.output()
