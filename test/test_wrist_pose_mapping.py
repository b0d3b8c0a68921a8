"""Method A's wrist-pose chunks become RM75 + XHand joint chunks (runtime/wrist_pose_mapping.py):
the arm joints found by IK put the hand's wrist flange where each row says (base or camera
frame), the fingers land in the XHand's order, and a bad row refuses the whole chunk."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from human_video_policy.errors import InputError
from human_video_policy.hands.rotations import matrix_to_rot6d
from human_video_policy.kinematics.robots import rm75_xhand_forward_kinematics
from human_video_policy.policies.action_spaces import XHAND_WRIST_METHOD_A, get_action_space
from human_video_policy.robots.rm75 import HAND_ROOT_FRAME, RM75_ARM_JOINTS, RM75_XHAND_JOINTS
from human_video_policy.robots.spec import get_robot
from human_video_policy.robots.xhand import XHAND_JOINTS
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.wrist_pose_mapping import WristPoseMapping

SPACE = get_action_space(XHAND_WRIST_METHOD_A)


def _trajectory(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth reachable arm motion from home and random finger targets: (arm q, fingers)."""
    spec = get_robot("rm75_xhand")
    rng = np.random.default_rng(seed)
    home = spec.home()[: len(RM75_ARM_JOINTS)]
    goal = home + rng.uniform(-0.3, 0.3, len(RM75_ARM_JOINTS))
    arm = home + np.linspace(0.05, 1.0, rows)[:, None] * (goal - home)
    fingers = rng.uniform(0.0, 0.8, (rows, len(XHAND_JOINTS)))
    return arm, fingers


def _chunk(arm: np.ndarray, fingers: np.ndarray, frame_id: str = "", T_camera_base=None):
    fk = rm75_xhand_forward_kinematics()
    rows = []
    for q, f in zip(arm, fingers, strict=True):
        values = dict(zip(RM75_ARM_JOINTS, q, strict=True))
        pose = fk.frame_pose(values, HAND_ROOT_FRAME)
        if T_camera_base is not None:
            pose = T_camera_base @ pose
        rows.append(np.concatenate([f, matrix_to_rot6d(pose[:3, :3]), pose[:3, 3]]))
    return ActionChunk(np.array(rows), 0.1, SPACE.names, XHAND_WRIST_METHOD_A, 7.0, frame_id)


def _wrist_poses(chunk: ActionChunk) -> list[np.ndarray]:
    fk = rm75_xhand_forward_kinematics()
    index = [chunk.names.index(j) for j in RM75_ARM_JOINTS]
    return [fk.frame_pose(dict(zip(RM75_ARM_JOINTS, row[index], strict=True)), HAND_ROOT_FRAME)
            for row in chunk.actions.astype(np.float64)]  # fmt: skip


def test_rows_become_joints_that_put_the_wrist_where_asked() -> None:
    mapping = WristPoseMapping.for_robot("rm75_xhand")
    arm, fingers = _trajectory(10, seed=3)
    chunk = _chunk(arm, fingers)
    assert mapping.accepts(chunk)
    measured = get_robot("rm75_xhand").home()
    joints = mapping.convert(chunk, measured)
    assert joints.names == RM75_XHAND_JOINTS and joints.action_space == "rm75_xhand_joint_position"
    assert joints.observation_stamp == 7.0 and joints.dt == 0.1
    for pose, row_arm in zip(_wrist_poses(joints), arm, strict=True):
        fk = rm75_xhand_forward_kinematics()
        wanted = fk.frame_pose(dict(zip(RM75_ARM_JOINTS, row_arm, strict=True)), HAND_ROOT_FRAME)
        assert np.linalg.norm(pose[:3, 3] - wanted[:3, 3]) < 2e-3
        assert np.abs(pose[:3, :3] - wanted[:3, :3]).max() < 2e-2
    hand = joints.actions[:, [RM75_XHAND_JOINTS.index(j) for j in XHAND_JOINTS]]
    np.testing.assert_allclose(hand, fingers, atol=1e-6)
    joint_chunk = ActionChunk(joints.actions, 0.1, joints.names, joints.action_space)
    assert not mapping.accepts(joint_chunk)  # joint chunks pass through untouched


def test_camera_frame_chunks_go_through_the_extrinsic() -> None:
    T_base_camera = np.eye(4)
    T_base_camera[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]  # a camera looking along +x
    T_base_camera[:3, 3] = [-0.2, 0.1, 0.6]
    arm, fingers = _trajectory(5, seed=4)
    chunk = _chunk(arm, fingers, "head_camera_optical_frame", np.linalg.inv(T_base_camera))
    mapping = WristPoseMapping.for_robot("rm75_xhand", "head_camera_optical_frame", T_base_camera)
    joints = mapping.convert(chunk, get_robot("rm75_xhand").home())
    fk = rm75_xhand_forward_kinematics()
    last = fk.frame_pose(dict(zip(RM75_ARM_JOINTS, arm[-1], strict=True)), HAND_ROOT_FRAME)
    assert np.linalg.norm(_wrist_poses(joints)[-1][:3, 3] - last[:3, 3]) < 2e-3
    with pytest.raises(InputError, match="frame_id 'head_camera_optical_frame' is not one of"):
        WristPoseMapping.for_robot("rm75_xhand").convert(chunk, get_robot("rm75_xhand").home())


def test_a_bad_row_refuses_the_whole_chunk() -> None:
    mapping = WristPoseMapping.for_robot("rm75_xhand")
    home = get_robot("rm75_xhand").home()
    arm, fingers = _trajectory(4, seed=5)
    chunk = _chunk(arm, fingers)
    far = chunk.actions.copy()
    far[2, SPACE.names.index("wrist_x")] = 3.0  # 3 m away: out of the arm's reach
    with pytest.raises(InputError, match="row 2: unreachable"):
        mapping.convert(dataclasses.replace(chunk, actions=far), home)
    flat = chunk.actions.copy()
    flat[1, SPACE.names.index("wrist_rot6d_0") : SPACE.names.index("wrist_rot6d_0") + 6] = 0.0
    with pytest.raises(InputError, match="wrist-pose chunk"):
        mapping.convert(dataclasses.replace(chunk, actions=flat), home)
    with pytest.raises(InputError, match="lacks columns"):
        mapping.convert(
            ActionChunk(chunk.actions[:, :12], 0.1, SPACE.names[:12], chunk.action_space), home
        )
    with pytest.raises(InputError, match="finite"):
        mapping.convert(chunk, np.full(19, np.nan))


def test_the_state_is_the_wrist_pose_of_the_measured_joints() -> None:
    mapping = WristPoseMapping.for_robot("rm75_xhand")
    arm, fingers = _trajectory(1, seed=6)
    q = np.concatenate([arm[0], fingers[0]])
    state = mapping.state(q, SPACE.names)
    expected = _chunk(arm, fingers).actions[0]
    np.testing.assert_allclose(state, expected, atol=1e-5)
    # and back: the chunk of that state holds the robot where it is
    held = ActionChunk(np.tile(state, (3, 1)), 0.1, SPACE.names, XHAND_WRIST_METHOD_A)
    np.testing.assert_allclose(mapping.convert(held, q).actions[0], q, atol=2e-3)
    with pytest.raises(InputError, match="no wrist-pose state for"):
        mapping.state(q, ("elbow",))
