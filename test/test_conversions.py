"""Message <-> numpy conversions: round trips and the errors a bad message must raise."""

from __future__ import annotations

import array

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image, JointState

from human_video_policy.errors import InputError
from human_video_policy.nodes import conversions as conv
from human_video_policy.runtime.action_chunk import ActionChunk

STAMP = Time(sec=12, nanosec=500_000_000)
NAMES = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "left_finger")


def test_time_round_trip_and_errors() -> None:
    for seconds in (0.0, 1.5, 12.000000001, 1_700_000_000.123456789):
        back = conv.stamp_to_seconds(conv.seconds_to_stamp(seconds))
        assert back == pytest.approx(seconds, abs=2e-9 * max(1.0, seconds / 1e9))
    stamp = conv.seconds_to_stamp(2.9999999999)  # rounds up into the next second
    assert (stamp.sec, stamp.nanosec) == (3, 0)
    with pytest.raises(InputError, match="must be >= 0"):
        conv.seconds_to_stamp(-0.1)
    with pytest.raises(InputError, match="finite"):
        conv.seconds_to_stamp(float("nan"))


def test_rgb_round_trip_is_exact() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    msg = conv.rgb_to_image(rgb, STAMP, "cam")
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("rgb8", 6, 5, 15)
    assert msg.header.frame_id == "cam" and msg.header.stamp == STAMP
    np.testing.assert_array_equal(conv.image_to_rgb(msg), rgb)


def test_bgr8_is_returned_as_rgb() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (4, 3, 3), dtype=np.uint8)
    msg = conv.numpy_to_image(np.ascontiguousarray(rgb[:, :, ::-1]), "bgr8", STAMP, "cam")
    np.testing.assert_array_equal(conv.image_to_rgb(msg), rgb)


def test_padded_rows_are_cropped() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = Image(height=2, width=3, encoding="rgb8", step=12)  # 3 bytes of padding per row
    padded = np.zeros((2, 12), dtype=np.uint8)
    padded[:, :9] = rgb.reshape(2, 9)
    msg.data = array.array("B", padded.tobytes())
    np.testing.assert_array_equal(conv.image_to_rgb(msg), rgb)


def test_depth_16uc1_millimetres_round_trip() -> None:
    depth = np.array([[0.5, 1.2345], [np.nan, 0.0]], dtype=np.float32)
    msg = conv.depth_to_image(depth, STAMP, "cam")
    assert msg.encoding == "16UC1" and msg.step == 4
    raw = conv.image_to_numpy(msg)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, [[500, 1234], [0, 0]])  # mm; no data = 0
    metres = conv.depth_image_to_metres(msg)
    np.testing.assert_allclose(metres[0], [0.5, 1.234], atol=1e-6)
    assert np.isnan(metres[1]).all()


def test_depth_32fc1_round_trip() -> None:
    depth = np.array([[0.25, 3.0, -1.0]], dtype=np.float32)
    msg = conv.depth_to_image(depth, STAMP, "cam", encoding="32FC1")
    assert msg.encoding == "32FC1" and msg.step == 12
    metres = conv.depth_image_to_metres(msg)
    np.testing.assert_allclose(metres[0, :2], [0.25, 3.0])
    assert np.isnan(metres[0, 2])


def test_big_endian_16uc1_is_read_correctly() -> None:
    values = np.array([[1, 258, 65535]], dtype=">u2")
    msg = Image(height=1, width=3, encoding="16UC1", step=6, is_bigendian=1)
    msg.data = array.array("B", values.tobytes())
    out = conv.image_to_numpy(msg)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[1, 258, 65535]])


@pytest.mark.parametrize(
    ("kwargs", "data_size", "match"),
    [
        ({"encoding": "yuv422"}, 12, "encoding 'yuv422' is not supported"),
        ({"step": 5}, 10, "step=5 is invalid"),
        ({"step": 6}, 11, "data has 11 bytes but step \\* height"),
        ({"height": 0}, 0, "size 2x0 is invalid"),
    ],
)
def test_bad_images_raise(kwargs: dict, data_size: int, match: str) -> None:
    fields = {"height": 2, "width": 2, "encoding": "rgb8", "step": 6, **kwargs}
    msg = Image(**fields)
    msg.data = array.array("B", bytes(data_size))
    with pytest.raises(InputError, match=match):
        conv.image_to_numpy(msg)


def test_colour_and_depth_encodings_are_checked() -> None:
    depth = conv.depth_to_image(np.ones((2, 2), np.float32), STAMP, "cam")
    with pytest.raises(InputError, match="not a colour image"):
        conv.image_to_rgb(depth)
    rgb = conv.rgb_to_image(np.zeros((2, 2, 3), np.uint8), STAMP, "cam")
    with pytest.raises(InputError, match="depth encoding 'rgb8'"):
        conv.depth_image_to_metres(rgb)
    with pytest.raises(InputError, match="dtype uint8"):
        conv.rgb_to_image(np.zeros((2, 2, 3), np.float32), STAMP, "cam")
    with pytest.raises(InputError, match="shape"):
        conv.rgb_to_image(np.zeros((2, 2), np.uint8), STAMP, "cam")


def test_camera_info_from_intrinsics() -> None:
    from human_video_policy.camera.pinhole import CameraIntrinsics

    intrinsics = CameraIntrinsics(128, 96, 100.0, 101.0, 63.5, 47.5, "cam_optical")
    info = conv.camera_info_from_intrinsics(intrinsics, STAMP)
    assert (info.width, info.height, info.header.frame_id) == (128, 96, "cam_optical")
    np.testing.assert_allclose(info.k, [100.0, 0, 63.5, 0, 101.0, 47.5, 0, 0, 1])
    np.testing.assert_allclose(info.p, [100.0, 0, 63.5, 0, 0, 101.0, 47.5, 0, 0, 0, 1, 0])
    assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
    fisheye = CameraIntrinsics(
        128, 96, 100.0, 101.0, 63.5, 47.5, "cam_optical", "equidistant", (0.1, -0.02, 0.0, 0.0)
    )
    same = conv.camera_info_from_intrinsics(fisheye, STAMP)
    assert list(same.k) == list(info.k)
    assert same.distortion_model == "equidistant" and list(same.d) == [0.1, -0.02, 0.0, 0.0]


def _joint_state(names: list[str], positions: list[float]) -> JointState:
    msg = JointState()
    msg.name = names
    msg.position = positions
    return msg


def test_joint_state_is_reordered_by_name_and_extras_ignored() -> None:
    names = [*reversed(NAMES), "right_finger"]
    positions = [float(i) for i in range(len(names))]
    q = conv.joint_state_to_numpy(_joint_state(names, positions), NAMES)
    expected = [positions[names.index(n)] for n in NAMES]
    np.testing.assert_array_equal(q, expected)


def test_joint_state_errors_name_the_joints() -> None:
    with pytest.raises(InputError, match=r"lacks joints \['left_finger'\]"):
        conv.joint_state_to_numpy(_joint_state(list(NAMES[:-1]), [0.0] * 6), NAMES)
    bad = [0.0] * 7
    bad[2] = float("nan")
    with pytest.raises(InputError, match=r"NaN/inf for joints \['elbow'\]"):
        conv.joint_state_to_numpy(_joint_state(list(NAMES), bad), NAMES)
    with pytest.raises(InputError, match="7 names but 6 position values"):
        conv.joint_state_to_numpy(_joint_state(list(NAMES), [0.0] * 6), NAMES)


def test_joint_state_round_trip() -> None:
    q = np.linspace(-1, 1, 7)
    msg = conv.numpy_to_joint_state(NAMES, q, STAMP, velocities=np.zeros(7))
    assert list(msg.name) == list(NAMES) and len(msg.velocity) == 7
    np.testing.assert_array_equal(conv.joint_state_to_numpy(msg, NAMES), q)
    with pytest.raises(InputError, match="7 joint names but 6 positions"):
        conv.numpy_to_joint_state(NAMES, np.zeros(6), STAMP)


def test_action_chunk_round_trip() -> None:
    actions = np.arange(3 * 7, dtype=np.float32).reshape(3, 7) / 10
    chunk = ActionChunk(actions, 0.1, NAMES, "widowx_joint_position", observation_stamp=41.25)
    msg = conv.action_chunk_to_msg(chunk, STAMP)
    assert (msg.horizon, msg.dims, msg.header.stamp) == (3, 7, STAMP)
    assert conv.stamp_to_seconds(msg.observation_stamp) == pytest.approx(41.25)
    back = conv.action_chunk_from_msg(msg)
    np.testing.assert_array_equal(back.actions, actions)
    assert back.names == NAMES and back.action_space == "widowx_joint_position"
    assert back.dt == pytest.approx(0.1) and back.observation_stamp == pytest.approx(41.25)


def test_malformed_action_chunk_messages_raise() -> None:
    chunk = ActionChunk(np.zeros((2, 7), np.float32), 0.1, NAMES, "widowx_joint_position")
    msg = conv.action_chunk_to_msg(chunk, STAMP)
    msg.horizon = 3
    with pytest.raises(InputError, match="14 values but horizon x dims = 3 x 7"):
        conv.action_chunk_from_msg(msg)
    msg = conv.action_chunk_to_msg(chunk, STAMP)
    msg.names = msg.names[:-1]
    with pytest.raises(InputError, match="dims=7 but 6 names"):
        conv.action_chunk_from_msg(msg)
    msg = conv.action_chunk_to_msg(chunk, STAMP)
    msg.data[3] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        conv.action_chunk_from_msg(msg)


def test_pose_round_trip_and_error() -> None:
    msg = conv.position_to_pose(np.array([0.1, -0.2, 0.3]), STAMP, "wx250s/base_link")
    np.testing.assert_allclose(conv.pose_position(msg), [0.1, -0.2, 0.3])
    assert msg.pose.orientation.w == 1.0 and msg.header.frame_id == "wx250s/base_link"
    with pytest.raises(InputError, match="3 finite values"):
        conv.position_to_pose(np.array([0.1, np.nan, 0.3]), STAMP, "base")


def test_hand_keypoints_round_trip_and_errors() -> None:
    rng = np.random.default_rng(0)
    kp2 = rng.uniform(0, 640, (21, 2))
    kp3 = rng.normal(0, 0.05, (21, 3)) + np.array([0.0, 0.0, 0.5])
    hands = [conv.hand_to_msg("right", 0.9, kp2, kp3), conv.hand_to_msg("left", 0.4, kp2)]
    msg = conv.hand_keypoints_to_msg(hands, STAMP, "camera_color_optical_frame", 640, 480)
    back = conv.hands_from_msg(msg)
    assert [h.handedness for h in back] == ["right", "left"]
    np.testing.assert_allclose(back[0].keypoints_2d, kp2, rtol=1e-6)
    np.testing.assert_allclose(back[0].keypoints_3d, kp3, atol=1e-6)
    assert back[0].has_3d and not back[1].has_3d
    assert np.isnan(back[1].keypoints_3d).all()
    assert back[0].confidence == pytest.approx(0.9)

    half_nan = kp3.copy()
    half_nan[4] = np.nan
    msg.hands = [conv.hand_to_msg("right", 0.9, kp2, half_nan)]
    with pytest.raises(InputError, match="partly NaN"):
        conv.hands_from_msg(msg)
    msg.hands = [conv.hand_to_msg("right", 0.9, kp2, kp3)]
    msg.hands[0].handedness = "both"
    with pytest.raises(InputError, match="handedness"):
        conv.hands_from_msg(msg)
    msg.hands = [conv.hand_to_msg("right", 0.9, kp2, kp3)]
    msg.hands[0].confidence = 3.0
    with pytest.raises(InputError, match="confidence"):
        conv.hands_from_msg(msg)
    with pytest.raises(InputError, match=r"\(21, 2\)"):
        conv.hand_to_msg("right", 0.9, kp2[:20])
    with pytest.raises(InputError, match="finite"):
        conv.hand_to_msg("right", 0.9, np.full((21, 2), np.nan))
    with pytest.raises(InputError, match="handedness"):
        conv.hand_to_msg("up", 0.9, kp2)
