"""Method A's hand + wrist space on an arm with a hand: wrist-pose chunks -> joint chunks, and
the robot's joints -> the wrist-pose state such a policy observes.

A policy in a ``hand_wrist_pose`` action space (``xhand_wrist_method_a``: 12 XHand finger
joints, the wrist rotation as continuous 6D and the wrist position) says where the hand should
be, not how the arm gets it there, and observes the same quantities (human_episodes.py: state
and action share the columns). :meth:`WristPoseMapping.state` computes that state from the
measured joints (forward kinematics of the wrist flange, the fingers by name), and
:meth:`WristPoseMapping.convert` turns each chunk into a chunk
of the robot's joint-position space (``rm75_xhand``: 7 arm joints then the 12 XHand joints, in
the hand's own order), so it runs through the same executor, limits and safety layer as any
joint policy:

- each row's pose is the pose of the hand's wrist flange frame (``wrist_frame``, default the
  XHand root ``right_hand_link``) in the robot base frame; a chunk whose ``frame_id`` is the
  camera's optical frame (``camera_frame``) is first taken into the base frame through the
  camera extrinsic (``T_base_camera``), as ik_node does for camera-frame targets;
- the arm joints of each row come from damped least-squares IK (kinematics/inverse.py),
  warm-started from the row before (the first from the measured joints), with the solver's
  no-wild-jump check;
- the finger columns are copied by name into the hand's joint order.

A row that is unreachable, a rotation that is not one (zero or parallel 6D columns), NaN, or a
frame it does not know refuses the whole chunk with an InputError naming the row: the executor
counts it and plays on (or holds), never a partial chunk.
"""

from __future__ import annotations

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.rotations import matrix_to_rot6d, rot6d_to_matrix
from human_video_policy.kinematics.inverse import IkSolver, camera_pose_to_base
from human_video_policy.policies.action_spaces import get_action_space
from human_video_policy.robots.spec import RobotSpec
from human_video_policy.runtime.action_chunk import ActionChunk

#: Action-space kind this module maps.
WRIST_POSE_KIND = "hand_wrist_pose"


class WristPoseMapping:
    """Maps ``hand_wrist_pose`` chunks onto the joint space of ``robot`` (module docstring).

    Args:
        robot: an arm-with-hand spec (IK joints for the arm, the hand's joints among its
            command joints), e.g. ``rm75_xhand``.
        solver: IK of ``wrist_frame`` over the robot's IK joints.
        camera_frame: frame_id of chunks in the camera's optical frame ("" = refuse them).
        T_base_camera: 4x4 camera optical frame in the base frame (with ``camera_frame``).
    """

    def __init__(
        self,
        robot: RobotSpec,
        solver: IkSolver,
        camera_frame: str = "",
        T_base_camera: np.ndarray | None = None,
    ) -> None:
        if not robot.ik_joints:
            raise ConfigError(f"robot {robot.name!r} has no IK joints: wrist poses cannot map")
        if tuple(solver.joints) != tuple(robot.ik_joints):
            raise ConfigError(
                f"the IK solver moves {list(solver.joints)}, robot {robot.name!r} "
                f"{list(robot.ik_joints)}"
            )
        if camera_frame and T_base_camera is None:
            raise ConfigError(f"camera_frame={camera_frame!r} needs T_base_camera")
        self.robot, self.solver = robot, solver
        self.camera_frame = camera_frame
        self.T_base_camera = None if T_base_camera is None else np.asarray(T_base_camera, float)
        self.names = tuple(robot.command_joints)
        self._arm = np.array([self.names.index(j) for j in robot.ik_joints])

    def state(self, q_robot: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """The wrist-pose state ``names`` (columns of the action space: fingers, wrist_rot6d_*,
        wrist_x/y/z) of the robot at ``q_robot`` (its command joints), in the base frame."""
        q_robot = np.asarray(q_robot, dtype=np.float64)
        if q_robot.shape != (len(self.names),) or not np.all(np.isfinite(q_robot)):
            raise InputError(f"measured joints must be {len(self.names)} finite values")
        pose = self.solver.forward(q_robot[self._arm])
        values = dict(zip(self.names, q_robot, strict=True))
        rot6d = matrix_to_rot6d(pose[:3, :3])
        values.update((f"wrist_rot6d_{i}", float(rot6d[i])) for i in range(6))
        values.update(zip(("wrist_x", "wrist_y", "wrist_z"), pose[:3, 3], strict=True))
        if unknown := [n for n in names if n not in values]:
            raise InputError(f"no wrist-pose state for {unknown}")
        return np.array([values[n] for n in names], dtype=np.float32)

    def accepts(self, chunk: ActionChunk) -> bool:
        """True for a chunk in a hand-wrist-pose action space (the others pass through)."""
        try:
            return get_action_space(chunk.action_space).kind == WRIST_POSE_KIND
        except ConfigError:
            return False

    def convert(self, chunk: ActionChunk, q_measured: np.ndarray) -> ActionChunk:
        """The joint chunk for ``chunk``; ``q_measured`` (the robot's command joints) seeds
        the IK of the first row."""
        names = list(chunk.names)
        fingers = [n for n in self.names if n not in self.robot.ik_joints]
        wanted = [*fingers, *(f"wrist_rot6d_{i}" for i in range(6)), "wrist_x", "wrist_y",
                  "wrist_z"]  # fmt: skip
        if missing := [n for n in wanted if n not in names]:
            raise InputError(f"wrist-pose chunk ({chunk.action_space}) lacks columns {missing}")
        q_measured = np.asarray(q_measured, dtype=np.float64)
        if q_measured.shape != (len(self.names),) or not np.all(np.isfinite(q_measured)):
            raise InputError(f"measured joints must be {len(self.names)} finite values")
        actions = np.asarray(chunk.actions, dtype=np.float64)
        if not np.all(np.isfinite(actions)):
            raise InputError("wrist-pose chunk holds NaN or inf")
        column = {n: i for i, n in enumerate(names)}
        rot6d = actions[:, [column[f"wrist_rot6d_{i}"] for i in range(6)]]
        position = actions[:, [column[n] for n in ("wrist_x", "wrist_y", "wrist_z")]]
        try:
            rotations = rot6d_to_matrix(rot6d)
        except InputError as exc:
            raise InputError(f"wrist-pose chunk: {exc}") from None
        to_base = self._to_base(chunk.frame_id)
        out = np.empty((chunk.horizon, len(self.names)))
        seed = q_measured[self._arm]
        for row in range(chunk.horizon):
            pose = np.eye(4)
            pose[:3, :3], pose[:3, 3] = rotations[row], position[row]
            if to_base is not None:
                pose = camera_pose_to_base(to_base, pose)
            result = self.solver.solve(pose, seed)
            if not result.success:
                raise InputError(f"wrist-pose chunk row {row}: {result.reason}")
            seed = result.q
            out[row, self._arm] = result.q
            for name in fingers:
                out[row, self.names.index(name)] = actions[row, column[name]]
        return ActionChunk(
            out.astype(np.float32),
            chunk.dt,
            self.names,
            self.robot.joint_action_space,
            chunk.observation_stamp,
        )

    @classmethod
    def for_robot(
        cls, robot: str, camera_frame: str = "", T_base_camera: np.ndarray | None = None
    ) -> WristPoseMapping:
        """The mapping for a registered arm-with-hand robot (today ``rm75_xhand``), IK on its
        hand's wrist flange; ConfigError for a robot without one."""
        from human_video_policy.robots.rm75 import HAND_ROOT_FRAME
        from human_video_policy.robots.spec import get_robot

        if robot != "rm75_xhand":
            raise ConfigError(
                f"robot {robot!r} has no wrist-pose mapping (hand_wrist_pose action spaces run "
                "on rm75_xhand)"
            )
        solver = IkSolver.for_rm75(frame=HAND_ROOT_FRAME)
        return cls(get_robot(robot), solver, camera_frame, T_base_camera)

    def _to_base(self, frame_id: str) -> np.ndarray | None:
        if frame_id in ("", self.robot.base_frame):
            return None
        if self.camera_frame and frame_id == self.camera_frame:
            return self.T_base_camera
        known = [self.robot.base_frame] + ([self.camera_frame] if self.camera_frame else [])
        raise InputError(f"wrist-pose chunk frame_id {frame_id!r} is not one of {known}")
