"""scene_camera_node as a real process over DDS: it renders what RM75World renders for the same
joint states, publishes the scene camera's intrinsics and extrinsic, and reports stale or bad
joint states while it keeps rendering."""

from __future__ import annotations

import signal
import threading
import time

import mujoco
import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from ros_helpers import PROJECT_ROOT, RosProbe, node_command, start_process, wait_for
from sensor_msgs.msg import CameraInfo, Image, JointState

from human_video_policy.kinematics.inverse import pose_from_position_quaternion
from human_video_policy.nodes.conversions import (
    image_to_numpy,
    image_to_rgb,
    numpy_to_joint_state,
    seconds_to_stamp,
)
from human_video_policy.nodes.qos import LATCHED, SENSOR_DATA
from human_video_policy.robots.rm75 import HOME_POSITION, RM75_ARM_JOINTS, RM75_XHAND_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS, xhand_joint_limits
from human_video_policy.sim.rm75_world import RM75World, RM75WorldConfig

pytestmark = pytest.mark.ros

PARAMS = PROJECT_ROOT / "config" / "sim_rm75.params.yaml"
IK_PARAMS = PROJECT_ROOT / "config" / "ik.params.yaml"
WIDTH, HEIGHT = 160, 120
PREFIX = "/camera/camera"


def _pose_state() -> np.ndarray:
    """A posture unlike home: arm turned and bent, fingers half closed (within the limits)."""
    limits = xhand_joint_limits()
    hand = limits.lower + 0.5 * (limits.upper - limits.lower)
    arm = np.array(HOME_POSITION[:7]) + np.array([0.35, 0.2, -0.3, -0.25, 0.4, -0.3, 0.6])
    return np.concatenate([arm, hand])


def _reference(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, RM75World]:
    """RGB and depth (m) of RM75World (target cube of seed 0) with its joints set to ``q``."""
    world = RM75World(RM75WorldConfig(image_width=WIDTH, image_height=HEIGHT))
    world.reset(0)
    model = world.model
    index = [model.joint(n).qposadr[0] for n in RM75_XHAND_JOINTS]
    world.data.qpos[index] = q
    mujoco.mj_forward(model, world.data)
    return world.render_rgb(), world.render_depth(), world


class _StateFeeder:
    """Publishes /arm/joint_states (7 joints) and /hand/joint_states (12) at 20 Hz."""

    def __init__(self, probe: RosProbe, q: np.ndarray) -> None:
        self.arm = probe.publisher("/arm/joint_states", JointState)
        self.hand = probe.publisher("/hand/joint_states", JointState)
        self.q = q
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            stamp = seconds_to_stamp(time.time())
            self.arm.publish(numpy_to_joint_state(RM75_ARM_JOINTS, self.q[:7], stamp))
            self.hand.publish(numpy_to_joint_state(XHAND_JOINTS, self.q[7:], stamp))
            self._stop.wait(0.05)

    def __enter__(self) -> _StateFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _status(recording) -> DiagnosticStatus | None:
    for msg in reversed(recording.messages()):
        for status in msg.status:
            if status.name == "scene_camera":
                return status
    return None


def _values(recording) -> dict[str, str]:
    status = _status(recording)
    return {kv.key: kv.value for kv in status.values} if status else {}


def _newest_after(recording, t: float, count: int = 1):
    """The newest message received after ``t``, once ``count`` have arrived (else None)."""
    later = recording.since(t)
    return later[-1][1] if len(later) >= count else None


def test_scene_camera_renders_the_joint_states_like_rm75_world() -> None:
    q = _pose_state()
    expected_rgb, expected_depth, world = _reference(q)
    intrinsics = world.camera_intrinsics()
    camera_pose = world.camera_pose()
    home_rgb = _reference(np.asarray(HOME_POSITION))[0]
    world.close()
    assert np.abs(expected_rgb.astype(int) - home_rgb).mean() > 1.0  # the posture shows

    command = node_command(
        "scene_camera_node",
        "-r",
        "__node:=scene_camera",
        "--params-file",
        str(PARAMS),
        "-p",
        f"image_width:={WIDTH}",
        "-p",
        f"image_height:={HEIGHT}",
    )
    with RosProbe("probe_scene_camera") as probe, start_process(command) as process:
        images = probe.record(f"{PREFIX}/color/image_raw", Image, SENSOR_DATA)
        depths = probe.record(f"{PREFIX}/aligned_depth_to_color/image_raw", Image, SENSOR_DATA)
        infos = probe.record(f"{PREFIX}/color/camera_info", CameraInfo, SENSOR_DATA)
        extrinsics = probe.record(f"{PREFIX}/extrinsic", PoseStamped, LATCHED)
        diagnostics = probe.record("/diagnostics", DiagnosticArray)

        # Before any joint state: home is rendered and the missing streams are reported.
        assert wait_for(lambda: len(images) >= 3 and _status(diagnostics), 30.0), process.output()
        status = _status(diagnostics)
        assert status.level == DiagnosticStatus.WARN and "no /arm/joint_states" in status.message
        assert np.array_equal(image_to_rgb(images.messages()[-1]), home_rgb)

        with _StateFeeder(probe, q):
            time.sleep(0.5)
            after = time.monotonic()
            assert wait_for(lambda: _newest_after(depths, after, 2) is not None, 10.0)
            rgb_msg, depth_msg = _newest_after(images, after), _newest_after(depths, after)
            assert wait_for(lambda: _status(diagnostics).level == DiagnosticStatus.OK, 5.0)

            # A joint state with NaN is ignored and counted; the picture stays.
            bad = numpy_to_joint_state(RM75_ARM_JOINTS, np.full(7, np.nan), seconds_to_stamp(0.0))
            probe.publisher("/arm/joint_states", JointState).publish(bad)
            assert wait_for(lambda: _values(diagnostics).get("arm_invalid_messages") == "1", 5.0)
            assert "NaN/inf" in _values(diagnostics)["arm_last_error"]
            t_bad = time.monotonic()
            assert wait_for(lambda: _newest_after(images, t_bad, 2) is not None, 5.0)
            assert np.array_equal(image_to_rgb(_newest_after(images, t_bad)), expected_rgb)

        # The states stop: still rendering (the last state), reported stale.
        stopped = time.monotonic()
        assert wait_for(lambda: "stale" in (_status(diagnostics).message or ""), 5.0)
        assert _status(diagnostics).level == DiagnosticStatus.WARN
        assert wait_for(lambda: len(images.since(stopped + 1.0)) >= 3, 5.0)
        assert np.array_equal(image_to_rgb(images.messages()[-1]), expected_rgb)
        assert process.stop(signal.SIGINT, timeout=15.0) == 0, process.output()

    # The node's render of the published state is RM75World's render of that state.
    rgb = image_to_rgb(rgb_msg)
    differing = np.any(rgb != expected_rgb, axis=2).mean()
    assert rgb.shape == (HEIGHT, WIDTH, 3) and differing == 0.0, differing
    assert depth_msg.encoding == "16UC1" and rgb_msg.header.stamp == depth_msg.header.stamp
    depth_mm = image_to_numpy(depth_msg).astype(np.int64)
    expected_mm = np.where(expected_depth > 0, np.rint(expected_depth * 1000.0), 0)
    assert np.abs(depth_mm - expected_mm).max() <= 1

    # camera_info: the scene camera's pinhole intrinsics, on the images' frame.
    info = infos.messages()[-1]
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert info.header.frame_id == rgb_msg.header.frame_id == "head_camera_optical_frame"
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    assert np.allclose(info.k, [fx, 0, cx, 0, fy, cy, 0, 0, 1], rtol=0, atol=1e-9)

    # The latched extrinsic: base <- camera optical frame, the same as ik_node's parameter.
    pose = extrinsics.messages()[-1]
    assert pose.header.frame_id == "base_link"
    p, o = pose.pose.position, pose.pose.orientation
    published = pose_from_position_quaternion((p.x, p.y, p.z), (o.x, o.y, o.z, o.w))
    assert np.allclose(published, camera_pose, atol=1e-9)
    ik_extrinsic = yaml.safe_load(IK_PARAMS.read_text())["ik"]["ros__parameters"][
        "camera_extrinsic"
    ]
    configured = pose_from_position_quaternion(ik_extrinsic[:3], ik_extrinsic[3:])
    assert np.allclose(published, configured, atol=1e-5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rate_hz:=0.0", "parameter rate_hz=0.0 is invalid"),
        ("mjcf_camera:=no_such_camera", "mjcf_camera='no_such_camera'"),
        ("camera_name:=bad-name", "camera_name='bad-name' is invalid"),
    ],
)
def test_bad_parameters_exit_2_naming_them(override: str, message: str) -> None:
    command = node_command("scene_camera_node", "-p", override)
    with start_process(command) as process:
        assert process.wait(timeout=60) == 2, process.output()
        assert message in process.output(), process.output()
