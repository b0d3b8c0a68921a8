"""ik_node as a real process over DDS: targets in, arm commands out, refusals counted, not sent."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pinocchio as pin
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from ros_helpers import PROJECT_ROOT, RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import JointState

from human_video_policy.kinematics.inverse import IkSolver, pose_from_position_quaternion
from human_video_policy.nodes.conversions import numpy_to_joint_state, seconds_to_stamp
from human_video_policy.robots.rm75 import HOME_POSITION, RM75_ARM_JOINTS, RM75_XHAND_JOINTS

pytestmark = pytest.mark.ros

PARAMS = PROJECT_ROOT / "config" / "ik.params.yaml"
CAMERA_FRAME = "head_camera_optical_frame"
# The extrinsic in config/ik.params.yaml (the sim's head camera).
T_BASE_CAMERA = pose_from_position_quaternion(
    (-0.1, 0.25, 0.85), (-0.503645, 0.814915, -0.243967, 0.15078)
)
HOME_ARM = np.array(HOME_POSITION[:7])


def _pose_msg(T: np.ndarray, frame_id: str) -> PoseStamped:
    q = pin.Quaternion(T[:3, :3])
    msg = PoseStamped()
    msg.header.stamp = seconds_to_stamp(time.time())
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in T[:3, 3])
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = float(q.x), float(q.y), float(q.z), float(q.w)
    return msg


def _diagnostics(recording) -> dict[str, str]:
    for msg in reversed(recording.messages()):
        for status in msg.status:
            if status.name == "ik":
                return {kv.key: kv.value for kv in status.values}
    return {}


def _count(recording, key: str) -> int:
    return int(_diagnostics(recording).get(key, 0))


class _JointStateFeeder:
    """Publishes the robot's 19 joints (arm at home, or at ``arm``) at 20 Hz, as a sim or
    driver would."""

    def __init__(self, probe: RosProbe, arm: np.ndarray | None = None) -> None:
        self._position = np.array(HOME_POSITION)
        if arm is not None:
            self._position[:7] = arm
        self._pub = probe.publisher("/arm/joint_states", JointState)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            stamp = seconds_to_stamp(time.time())
            self._pub.publish(numpy_to_joint_state(RM75_XHAND_JOINTS, self._position, stamp))
            time.sleep(0.05)

    def __enter__(self) -> _JointStateFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _check_command(solver: IkSolver, command: JointState, goal: np.ndarray) -> np.ndarray:
    assert tuple(command.name) == RM75_ARM_JOINTS
    q = np.array(command.position)
    reached = solver.forward(q)
    assert np.linalg.norm(reached[:3, 3] - goal[:3, 3]) <= 1e-3
    rotation = reached[:3, :3].T @ goal[:3, :3]
    assert np.arccos(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)) <= 1e-3
    assert np.abs(q - HOME_ARM).max() < 0.4  # warm-started from the state: a nearby solution
    return q


def test_ik_node_solves_refuses_and_reports() -> None:
    solver = IkSolver.for_rm75()
    command = node_command(
        "ik_node", "--params-file", str(PARAMS), "-p", "max_jump_s:=0.1"
    )  # 0.1 s x 3.14 rad/s: a 0.31 rad move is the most joint1 may make
    with RosProbe("probe_ik") as probe, start_process(command) as process:
        commands = probe.record("/arm/joint_commands", JointState)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        targets = probe.publisher("/arm/target_pose", PoseStamped)
        assert probe.wait_for_subscribers(targets, 1, 30.0), process.output()

        # No joint state yet: refused, nothing published.
        near = solver.forward(HOME_ARM + np.array([0.1, 0.05, 0.0, -0.1, 0.0, 0.1, 0.2]))
        targets.publish(_pose_msg(near, "base_link"))
        assert wait_for(lambda: _count(diagnostics, "refused_no_joint_state") == 1, 10.0)

        with _JointStateFeeder(probe):
            time.sleep(0.5)
            # A base-frame target near the current pose: one command reaching it.
            targets.publish(_pose_msg(near, "base_link"))
            assert wait_for(lambda: len(commands) == 1, 10.0), process.output()
            _check_command(solver, commands.messages()[0], near)

            # The same kind of target seen by the head camera: converted through the extrinsic.
            goal = solver.forward(HOME_ARM + np.array([-0.1, 0.1, 0.05, 0.1, -0.1, -0.1, 0.1]))
            targets.publish(_pose_msg(np.linalg.inv(T_BASE_CAMERA) @ goal, CAMERA_FRAME))
            assert wait_for(lambda: len(commands) == 2, 10.0), process.output()
            _check_command(solver, commands.messages()[1], goal)

            # A burst of unreachable targets: no command, every one counted, one log line.
            far = np.eye(4)
            far[:3, 3] = (1.5, 0.0, 0.3)
            for _ in range(10):
                targets.publish(_pose_msg(far, "base_link"))
            assert wait_for(lambda: _count(diagnostics, "refused_unreachable") == 10, 10.0)
            # A target the arm reaches only by swinging joint1 0.7 rad at once: refused.
            swing = solver.forward(HOME_ARM + np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
            targets.publish(_pose_msg(swing, "base_link"))
            # Malformed targets: an unknown frame and an unset (all-zero) orientation.
            targets.publish(_pose_msg(near, "world"))
            unset = _pose_msg(near, "base_link")
            unset.pose.orientation.w = 0.0
            unset.pose.orientation.x = unset.pose.orientation.y = unset.pose.orientation.z = 0.0
            targets.publish(unset)
            assert wait_for(lambda: _count(diagnostics, "refused_bad_target") == 2, 10.0)
            assert _count(diagnostics, "refused_wild_jump") == 1
            assert _count(diagnostics, "refused_in_a_row") == 13
            assert len(commands) == 2  # none of the refused targets became a command

            # Solvable again: a command, and the burst ends with one line.
            targets.publish(_pose_msg(near, "base_link"))
            assert wait_for(lambda: len(commands) == 3, 10.0), process.output()
            assert wait_for(lambda: _count(diagnostics, "solved") == 3, 10.0)
            assert _count(diagnostics, "refused_in_a_row") == 0

        # The joint states stopped: the newest is soon older than max_joint_state_age_s (0.5 s)
        # and a target is refused instead of being solved from where the arm used to be.
        time.sleep(0.8)
        targets.publish(_pose_msg(near, "base_link"))
        assert wait_for(lambda: _count(diagnostics, "refused_stale_joint_state") == 1, 10.0)
        assert len(commands) == 3

        assert process.stop(signal.SIGINT) == 0
        log = process.output()
    warnings = [line for line in log.splitlines() if "no command for this target" in line]
    # The no-state refusal, one for the burst of 13, one for the stale state.
    assert len(warnings) == 3, warnings
    assert "(unreachable)" in warnings[1] and "(stale_joint_state)" in warnings[2]
    assert "IK solving again after 13 refused targets" in log


def test_ik_node_relaxes_an_unreachable_orientation_only_within_its_bound() -> None:
    """relaxed_orientation_max_rad (teleop): the wrist at its joint limit and targets turned
    past it. 0.4 rad off: the position is reached, the orientation relaxed and counted; 0.8 rad
    off (over the 0.5 bound): refused, nothing sent."""
    import pinocchio as pin

    solver = IkSolver.for_rm75()
    arm = HOME_ARM.copy()
    arm[5] = solver.upper[5]  # joint6 at its limit

    def turned(angle: float) -> np.ndarray:
        T = solver.forward(arm)
        T[:3, :3] = T[:3, :3] @ pin.exp3(np.array([0.0, -angle, 0.0]))
        return T

    assert not solver.solve(turned(0.4), arm).success  # the strict IK refuses it
    command = node_command(
        "ik_node", "--params-file", str(PARAMS), "-p", "relaxed_orientation_max_rad:=0.5"
    )
    with RosProbe("probe_ik_relaxed") as probe, start_process(command) as process:
        commands = probe.record("/arm/joint_commands", JointState)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        targets = probe.publisher("/arm/target_pose", PoseStamped)
        assert probe.wait_for_subscribers(targets, 1, 30.0), process.output()
        with _JointStateFeeder(probe, arm):
            time.sleep(0.5)
            goal = turned(0.4)
            targets.publish(_pose_msg(goal, "base_link"))
            assert wait_for(lambda: len(commands) == 1, 10.0), process.output()
            q = np.array(commands.messages()[0].position)
            reached = solver.forward(q)
            assert np.linalg.norm(reached[:3, 3] - goal[:3, 3]) <= 1e-3
            assert np.all(q <= solver.upper) and np.all(q >= solver.lower)
            assert wait_for(lambda: _count(diagnostics, "orientation_relaxed") == 1, 10.0)
            error = float(_diagnostics(diagnostics)["relaxed_orientation_error_rad_max"])
            assert 0.3 < error <= 0.401, error

            targets.publish(_pose_msg(turned(0.8), "base_link"))
            assert wait_for(
                lambda: _count(diagnostics, "refused_orientation_out_of_reach") == 1, 10.0
            ), process.output()
            assert len(commands) == 1
        assert process.stop(signal.SIGINT) == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("camera_extrinsic:=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]", "quaternion"),
        ("camera_extrinsic:=[0.0, 0.0, 1.0]", "7 finite numbers"),
        ("max_jump_s:=0.0", "max_jump_s=0.0 is invalid"),
        ("base_frame:=''", "base_frame='' is invalid"),
        ("relaxed_orientation_max_rad:=-0.1", "relaxed_orientation_max_rad=-0.1 is invalid"),
    ],
)
def test_bad_parameter_exits_2_naming_it(override: str, message: str) -> None:
    with start_process(node_command("ik_node", "-p", override)) as process:
        assert process.wait(timeout=60) == 2, process.output()
        lines = [line for line in process.output().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ik: error: parameter"), lines
    assert message in lines[0], lines
