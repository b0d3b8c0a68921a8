"""`hvp launch sim_rm75`: the RM75 + XHand graph as real processes over DDS (isolated domain).

Poses in, robot out: a stream of /arm/target_pose (base frame, then the head camera's frame
through the extrinsic the graph publishes) is solved by ik and followed by the arm controller
until the forward kinematics of /arm/joint_states is at the pose; /hand/joint_commands moves the
hand; the scene camera's images arrive at their rate and show the arm moving; /safety/estop stops
both controllers mid-motion and they refuse everything after it; SIGINT ends the graph with 0.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
import threading
import time
import types

import numpy as np
import pinocchio as pin
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from ros_helpers import PROJECT_ROOT, RosProbe, diagnostic_values, start_process, wait_for
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool

from human_video_policy.bringup.graph import load_graph
from human_video_policy.kinematics.inverse import IkSolver, pose_from_position_quaternion
from human_video_policy.nodes.conversions import (
    image_to_rgb,
    numpy_to_joint_state,
    seconds_to_stamp,
)
from human_video_policy.nodes.qos import LATCHED, SENSOR_DATA
from human_video_policy.robots.rm75 import HOME_ARM_POSITION, RM75_ARM_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits

pytestmark = [pytest.mark.ros, pytest.mark.timeout(120)]

CAMERA = "/camera/camera"
CAMERA_FRAME = "head_camera_optical_frame"
REACH_TOLERANCE_M = 0.003
REACH_TOLERANCE_RAD = 0.02
# The sim hand's servos (kp 5 N m/rad) settle within ~0.015 rad of a command in ~3 s.
HAND_TOLERANCE_RAD = 0.03


def _pose_msg(T: np.ndarray, frame_id: str) -> PoseStamped:
    q = pin.Quaternion(T[:3, :3])
    msg = PoseStamped()
    msg.header.stamp = seconds_to_stamp(time.time())
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in T[:3, 3])
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = float(q.x), float(q.y), float(q.z), float(q.w)
    return msg


class _Streamer:
    """Publishes the current arm target pose and hand command at 20 Hz, freshly stamped, as an
    executor upstream would (the controllers' watchdog holds the robot without a stream)."""

    def __init__(self, probe: RosProbe) -> None:
        self.targets = probe.publisher("/arm/target_pose", PoseStamped)
        self.hand = probe.publisher("/hand/joint_commands", JointState)
        self.arm_target: tuple[np.ndarray, str] | None = None
        self.hand_target: np.ndarray | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            arm, hand = self.arm_target, self.hand_target
            if arm is not None:
                self.targets.publish(_pose_msg(*arm))
            if hand is not None:
                stamp = seconds_to_stamp(time.time())
                self.hand.publish(numpy_to_joint_state(XHAND_JOINTS, hand, stamp))
            self._stop.wait(0.05)

    def __enter__(self) -> _Streamer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _latest(recording, names: tuple[str, ...]) -> np.ndarray:
    msg = recording.messages()[-1]
    index = {n: i for i, n in enumerate(msg.name)}
    return np.array([msg.position[index[n]] for n in names])


def _pose_error(solver: IkSolver, q: np.ndarray, goal: np.ndarray) -> tuple[float, float]:
    """(position error m, rotation error rad) of the EE at ``q`` from ``goal``."""
    reached = solver.forward(q)
    rotation = reached[:3, :3].T @ goal[:3, :3]
    angle = float(np.arccos(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)))
    return float(np.linalg.norm(reached[:3, 3] - goal[:3, 3])), angle


def test_sim_rm75_graph_reaches_poses_moves_the_hand_renders_and_stops_on_estop() -> None:
    solver = IkSolver.for_rm75()
    home = np.array(HOME_ARM_POSITION)
    goal_base = solver.forward(home + np.array([0.25, 0.15, 0.0, -0.2, 0.1, 0.2, 0.3]))
    goal_camera = solver.forward(home + np.array([-0.2, 0.2, 0.1, 0.1, -0.1, -0.15, -0.2]))
    goal_far = solver.forward(home + np.array([0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    limits = xhand_joint_limits()
    hand_goal = limits.lower + 0.4 * (limits.upper - limits.lower)

    command = [sys.executable, "-m", "human_video_policy.cli.main", "launch", "sim_rm75"]
    with RosProbe("probe_sim_rm75") as probe:
        arm = probe.record("/arm/joint_states", JointState)
        hand = probe.record("/hand/joint_states", JointState)
        images = probe.record(f"{CAMERA}/color/image_raw", Image, SENSOR_DATA)
        depths = probe.record(f"{CAMERA}/aligned_depth_to_color/image_raw", Image, SENSOR_DATA)
        infos = probe.record(f"{CAMERA}/color/camera_info", CameraInfo, SENSOR_DATA)
        extrinsics = probe.record(f"{CAMERA}/extrinsic", PoseStamped, LATCHED)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)
        estop = probe.publisher("/safety/estop", Bool, LATCHED)
        with start_process(command) as launcher, _Streamer(probe) as streamer:
            assert wait_for(
                lambda: len(arm) > 10 and len(hand) > 10 and len(images) > 3 and extrinsics,
                40.0,
            ), launcher.output()
            assert probe.wait_for_subscribers(streamer.targets, 1, 20.0), launcher.output()

            # Camera rate (wall clock, 2 s) and the picture of the arm at home.
            t0 = time.monotonic()
            time.sleep(2.0)
            window = [t for t, _ in images.items() if t0 <= t <= t0 + 2.0]
            image_rate = (len(window) - 1) / (window[-1] - window[0])
            depth_count = len([t for t, _ in depths.items() if t0 <= t <= t0 + 2.0])
            home_rgb = image_to_rgb(images.messages()[-1]).astype(np.int16)

            # 1. A base-frame target: the arm gets there.
            streamer.arm_target = (goal_base, "base_link")
            streamer.hand_target = hand_goal

            def arm_error(goal: np.ndarray) -> tuple[float, float]:
                return _pose_error(solver, _latest(arm, RM75_ARM_JOINTS), goal)

            def reached(goal: np.ndarray) -> bool:
                position, angle = arm_error(goal)
                return position < REACH_TOLERANCE_M and angle < REACH_TOLERANCE_RAD

            assert wait_for(lambda: reached(goal_base), 15.0), (
                arm_error(goal_base),
                launcher.output(),
            )
            # ... and the hand follows its command.
            assert wait_for(
                lambda: np.abs(_latest(hand, XHAND_JOINTS) - hand_goal).max() < HAND_TOLERANCE_RAD,
                10.0,
            ), _latest(hand, XHAND_JOINTS) - hand_goal
            hand_error = float(np.abs(_latest(hand, XHAND_JOINTS) - hand_goal).max())
            base_error = arm_error(goal_base)  # settled, a few seconds after first reaching
            # The camera shows the move (frames rendered after the arm got there).
            moved_at = time.monotonic()
            assert wait_for(lambda: len(images.since(moved_at)) >= 2, 5.0)
            moved_rgb = image_to_rgb(images.messages()[-1]).astype(np.int16)
            image_change = float(np.abs(moved_rgb - home_rgb).mean())
            changed_pixels = float(np.any(moved_rgb != home_rgb, axis=2).mean())

            # 2. A target given in the head camera's frame, through the published extrinsic.
            p, o = (
                extrinsics.messages()[-1].pose.position,
                extrinsics.messages()[-1].pose.orientation,
            )
            T_base_camera = pose_from_position_quaternion((p.x, p.y, p.z), (o.x, o.y, o.z, o.w))
            streamer.arm_target = (np.linalg.inv(T_base_camera) @ goal_camera, CAMERA_FRAME)
            assert wait_for(lambda: reached(goal_camera), 15.0), (
                arm_error(goal_camera),
                launcher.output(),
            )
            time.sleep(1.0)
            camera_error = arm_error(goal_camera)  # settled
            hand_settled = float(np.abs(_latest(hand, XHAND_JOINTS) - hand_goal).max())

            # 3. The e-stop, asserted while the arm swings toward a far target: both
            # controllers brake and hold, and refuse what keeps coming.
            before = _latest(arm, RM75_ARM_JOINTS)
            streamer.arm_target = (goal_far, "base_link")
            assert wait_for(
                lambda: np.abs(_latest(arm, RM75_ARM_JOINTS) - before).max() > 0.05, 10.0
            )
            estop.publish(Bool(data=True))
            streamer.hand_target = limits.lower + 0.9 * (limits.upper - limits.lower)
            for name in ("arm_controller", "hand_controller"):
                assert wait_for(
                    lambda n=name: diagnostic_values(diagnostics, n).get("estop_latched") == "true",
                    10.0,
                )
            time.sleep(1.0)  # braking (<= 0.35 s at 5 rad/s^2) is over
            held_arm = _latest(arm, RM75_ARM_JOINTS)
            held_hand = _latest(hand, XHAND_JOINTS)
            time.sleep(1.0)
            arm_drift = float(np.abs(_latest(arm, RM75_ARM_JOINTS) - held_arm).max())
            hand_drift = float(np.abs(_latest(hand, XHAND_JOINTS) - held_hand).max())
            far_error = arm_error(goal_far)
            arm_values = diagnostic_values(diagnostics, "arm_controller")
            hand_values = diagnostic_values(diagnostics, "hand_controller")
            ik_values = diagnostic_values(diagnostics, "ik")
            camera_values = diagnostic_values(diagnostics, "scene_camera")

            code = launcher.stop(signal.SIGINT, timeout=30.0)
            output = launcher.output()

    print(
        f"\nimages {image_rate:.1f} Hz (depth {depth_count / 2.0:.1f} Hz); reached base target "
        f"{base_error[0] * 1e3:.2f} mm / {base_error[1]:.4f} rad, camera-frame target "
        f"{camera_error[0] * 1e3:.2f} mm / {camera_error[1]:.4f} rad; hand max error "
        f"{hand_error:.4f} rad (settled {hand_settled:.4f}); image change "
        f"{image_change:.2f} levels, {changed_pixels:.1%} pixels; after e-stop drift arm "
        f"{arm_drift:.2e} hand {hand_drift:.2e} rad, "
        f"far target still {far_error[0] * 1e3:.0f} mm away; scene camera render "
        f"{camera_values.get('render_ms_last')} ms, ik solve median "
        f"{ik_values.get('solve_ms_median')} ms"
    )
    for error in (base_error, camera_error):
        assert error[0] < REACH_TOLERANCE_M and error[1] < REACH_TOLERANCE_RAD, error
    assert hand_settled < HAND_TOLERANCE_RAD, hand_settled
    assert 12.0 <= image_rate <= 18.0, image_rate  # rate_hz 15
    assert depth_count >= 0.8 * 15.0 * 2.0 - 1
    assert infos.messages()[-1].header.frame_id == CAMERA_FRAME
    assert changed_pixels > 0.01 and image_change > 0.2, (image_change, changed_pixels)
    assert arm_drift < 1e-3 and hand_drift < 1e-3, (arm_drift, hand_drift)
    assert far_error[0] > 0.02, far_error  # stopped on the way
    assert int(arm_values["refused_estop"]) > 0 and int(hand_values["refused_estop"]) > 0
    assert int(ik_values["solved"]) > 0
    assert code == 0, output
    assert "Traceback" not in output
    assert "[launch] done: exit code 0" in output


def test_sim_rm75_graph_and_its_launch_file_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph's node commands, and launch/sim_rm75.launch.py (with stand-ins for launch and
    launch_ros, which are not installable here) building the same nodes from the same yaml."""
    graph = load_graph("sim_rm75", {"arm_driver": "realman", "arm_driver_config": "{host: h}"})
    assert [n.name for n in graph.nodes] == [
        "arm_controller",
        "hand_controller",
        "ik",
        "scene_camera",
    ]
    assert all(n.required for n in graph.nodes)
    arm = graph.node("arm_controller").command("python")
    assert arm[:3] == ["python", "-m", "human_video_policy.nodes.arm_controller_node"]
    assert "driver:=realman" in arm and "driver_config:='{host: h}'" in arm
    ik_files = [p.name for p in graph.node("ik").parameter_files]
    assert ik_files == ["ik.params.yaml", "sim_rm75.params.yaml"]

    created: list[dict] = []
    declared: dict[str, str] = {}
    described: list = []

    class Recorder:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.args, self.kwargs = args, kwargs

    class LaunchConfiguration(Recorder):
        def perform(self, context: dict) -> str:
            return context[self.args[0]]

    def node(**kwargs: object) -> None:
        created.append(kwargs)

    def declare(name: str, **kwargs: object) -> None:
        declared[name] = kwargs["default_value"]

    fakes = {
        name: types.ModuleType(name)
        for name in (
            "launch",
            "launch.actions",
            "launch.substitutions",
            "launch_ros",
            "launch_ros.actions",
        )
    }
    fakes["launch"].LaunchDescription = described.extend
    fakes["launch.actions"].DeclareLaunchArgument = declare
    fakes["launch.actions"].OpaqueFunction = Recorder
    fakes["launch.actions"].Shutdown = Recorder
    fakes["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    fakes["launch_ros.actions"].Node = node
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    path = PROJECT_ROOT / "launch" / "sim_rm75.launch.py"
    spec = importlib.util.spec_from_file_location("sim_rm75_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate_launch_description()
    assert declared == {name: a.default for name, a in load_graph("sim_rm75").arguments.items()}
    values = {**declared, "arm_driver": "realman", "arm_driver_config": "{host: h}"}
    described[-1].kwargs["function"](values)
    assert [n["name"] for n in created] == [n.name for n in graph.nodes]
    for kwargs, spec_ in zip(created, graph.nodes, strict=True):
        assert kwargs["executable"] == spec_.executable
        files = [str(p) for p in spec_.parameter_files]
        assert kwargs["parameters"][: len(files)] == files
        assert kwargs["parameters"][len(files) :] == (
            [spec_.parameters] if spec_.parameters else []
        )
        assert kwargs["on_exit"] is not None
