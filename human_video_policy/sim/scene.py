"""Composing a task scene: the tabletop, a robot, its camera and the task's objects.

A robot is its own MJCF file (mjcf/robots/<robot>.xml) and a scene attaches it, as MuJoCo
Menagerie's scenes include their robots, so every task runs on every robot that can do it: the
tabletop (mjcf/scenes/tabletop.xml) includes the robot file, whose base frame is the world
origin; then MuJoCo's model-editing API (``mujoco.MjSpec``) adds the robot's scene camera and
the task's bodies, and the result is compiled once per world. Names are kept as in the robot
file (joint names are the robot's joint names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from human_video_policy.errors import ConfigError
from human_video_policy.resources import resource_path

TABLETOP = ("mjcf", "scenes", "tabletop.xml")
# Task objects touch the table, the robot and each other (see mjcf/scenes/tabletop.xml).
OBJECT_CONTYPE = 3
OBJECT_CONAFFINITY = 3


@dataclass(frozen=True)
class SceneRobot:
    """What a task scene needs to know about a robot.

    Attributes:
        name: the robot's name in the robot registry (robots/spec.py).
        mjcf: the robot's MJCF file, as resource path parts.
        base_body: the body whose frame is the robot's base frame (the world origin).
        ee_site: the end-effector site the experts and task detectors use.
        command_joints: the joints the robot is commanded by, in action order.
        state_joints: the joints reported as state (command joints plus mirrored ones).
        home: command-joint positions at reset.
        camera_pos: scene camera position (m, base frame).
        camera_xyaxes: scene camera orientation as MJCF xyaxes (its x and y axes).
        camera_fovy: vertical field of view (degrees).
        workspace_x, workspace_y: (min, max) of the table region (m) its tasks place objects in.
        grasp_parts: the gripper's or hand's parts (fingers, palm) as groups of geom names; an
            object is held when geoms of at least two parts touch it (the WidowX's two fingers,
            the XHand's thumb and a finger or the palm), so one finger pushing it is no grasp.
        grasp_center: where a held object's centre sits (m, end-effector site frame): the
            reach stages of grasping tasks measure from it.
    """

    name: str
    mjcf: tuple[str, ...]
    base_body: str
    ee_site: str
    command_joints: tuple[str, ...]
    state_joints: tuple[str, ...]
    home: tuple[float, ...]
    camera_pos: tuple[float, float, float]
    camera_xyaxes: tuple[float, ...]
    camera_fovy: float
    workspace_x: tuple[float, float]
    workspace_y: tuple[float, float]
    grasp_parts: tuple[tuple[str, ...], ...]
    grasp_center: tuple[float, float, float]


def _widowx() -> SceneRobot:
    from human_video_policy.robots.widowx import (
        HOME_POSITION,
        WIDOWX_COMMAND_JOINTS,
        WIDOWX_STATE_JOINTS,
    )

    return SceneRobot(
        name="widowx",
        mjcf=("mjcf", "robots", "wx250s.xml"),
        base_body="wx250s/base_link",
        ee_site="ee_site",
        command_joints=tuple(WIDOWX_COMMAND_JOINTS),
        state_joints=tuple(WIDOWX_STATE_JOINTS),
        home=tuple(float(v) for v in HOME_POSITION[: len(WIDOWX_COMMAND_JOINTS)]),
        camera_pos=(0.62, 0.0, 0.45),
        camera_xyaxes=(0.0, 1.0, 0.0, -0.7071, 0.0, 0.7071),
        camera_fovy=50.0,
        workspace_x=(0.18, 0.40),
        workspace_y=(-0.18, 0.18),
        grasp_parts=(("left_finger",), ("right_finger",)),
        grasp_center=(0.008, 0.0, 0.0),  # 8 mm along the fingers (site x)
    )


# XHand geoms per part (mjcf/robots/rm75_xhand.xml): the palm and the five fingers.
XHAND_GRASP_PARTS: tuple[tuple[str, ...], ...] = (
    ("right_hand_link_0", "right_hand_link_1"),
    (
        "right_hand_thumb_bend_link",
        "right_hand_thumb_rota_link1",
        "right_hand_thumb_rota_link2_0",
        "right_hand_thumb_rota_link2_1",
    ),
    (
        "right_hand_index_bend_link",
        "right_hand_index_rota_link1",
        "right_hand_index_rota_link2_0",
        "right_hand_index_rota_link2_1",
    ),
    *(
        (f"right_hand_{f}_link1", f"right_hand_{f}_link2_0", f"right_hand_{f}_link2_1")
        for f in ("mid", "ring", "pinky")
    ),
)


def _rm75_xhand() -> SceneRobot:
    from human_video_policy.robots.rm75 import BASE_FRAME, HOME_POSITION, RM75_XHAND_JOINTS

    return SceneRobot(
        name="rm75_xhand",
        mjcf=("mjcf", "robots", "rm75_xhand.xml"),
        base_body=BASE_FRAME,
        ee_site="ee_site",
        command_joints=tuple(RM75_XHAND_JOINTS),
        state_joints=tuple(RM75_XHAND_JOINTS),
        home=tuple(float(v) for v in HOME_POSITION),
        # The head camera of mjcf/rm75_xhand_scene.xml (what the RM75 reach world renders).
        camera_pos=(-0.1, 0.25, 0.85),
        camera_xyaxes=(-0.4472, -0.8944, 0.0, 0.7473, -0.3736, 0.5495),
        camera_fovy=60.0,
        # Where the palm-down hand reaches the table turned up to 45 deg from the direction
        # from the base (the elbow's limit rules out x < 0.42 m; reach, x > 0.58 m).
        workspace_x=(0.44, 0.56),
        workspace_y=(-0.2, 0.2),
        grasp_parts=XHAND_GRASP_PARTS,
        # Between the thumb and the curled fingers in the grasp of sim/tasks/common.py
        # XHAND_GRASP_AXES: 6.7 cm out of the palm (site +y), 7.2 cm along the fingers (-z).
        grasp_center=(0.0, 0.067, -0.072),
    )


_ROBOTS: dict[str, Callable[[], SceneRobot]] = {"widowx": _widowx, "rm75_xhand": _rm75_xhand}


def scene_robot(name: str) -> SceneRobot:
    """The scene description of robot ``name`` (``widowx``, ``rm75_xhand``)."""
    try:
        return _ROBOTS[name]()
    except KeyError:
        raise ConfigError(
            f"robot={name!r} has no task scene: choose one of {sorted(_ROBOTS)}"
        ) from None


def scene_robots() -> list[str]:
    """Names of the robots that task scenes can hold."""
    return sorted(_ROBOTS)


def compose_scene(robot: SceneRobot, add_objects: Callable[[mujoco.MjSpec], None]) -> mujoco.MjSpec:
    """The tabletop with ``robot`` attached at the origin, its scene camera and the objects
    ``add_objects(spec)`` adds (not compiled)."""
    tabletop = resource_path(*TABLETOP).read_text()
    robot_file = resource_path(*robot.mjcf).resolve()
    if "<worldbody>" not in tabletop or '"' in str(robot_file):
        raise ConfigError(f"cannot include {robot_file} into {resource_path(*TABLETOP)}")
    # An MJCF include keeps the robot's names as they are (MjSpec.attach would need a prefix).
    spec = mujoco.MjSpec.from_string(
        tabletop.replace("<worldbody>", f'<include file="{robot_file}"/>\n  <worldbody>', 1)
    )
    spec.worldbody.add_camera(
        name="scene_camera",
        pos=list(robot.camera_pos),
        quat=list(xyaxes_quaternion(robot.camera_xyaxes)),
        fovy=robot.camera_fovy,
    )
    add_objects(spec)
    return spec


def xyaxes_quaternion(xyaxes: tuple[float, ...]) -> np.ndarray:
    """The (w, x, y, z) quaternion of a frame given as MJCF ``xyaxes`` (its x and y axes)."""
    x = np.asarray(xyaxes[:3], dtype=np.float64)
    x /= np.linalg.norm(x)
    y = np.asarray(xyaxes[3:], dtype=np.float64)
    y -= (y @ x) * x
    y /= np.linalg.norm(y)
    rot = np.column_stack([x, y, np.cross(x, y)])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot.flatten())
    return quat


# -- helpers tasks use to add objects ----------------------------------------------------------
def _add_free_object(
    spec: mujoco.MjSpec,
    name: str,
    shape: mujoco.mjtGeom,
    size: list[float],
    half_height: float,
    rgba: tuple[float, float, float, float],
    mass: float,
    friction: float,
) -> mujoco.MjsBody:
    """A free-floating body ``name`` with one geom of the same name that touches the table,
    the robot and the other objects."""
    body = spec.worldbody.add_body(name=name, pos=[0.3, 0.0, half_height])
    body.add_freejoint(name=f"{name}_free")
    body.add_geom(
        name=name,
        type=shape,
        size=size,
        rgba=list(rgba),
        mass=mass,
        contype=OBJECT_CONTYPE,
        conaffinity=OBJECT_CONAFFINITY,
        condim=4,
        friction=[friction, 0.01, 0.0001],
        group=1,
    )
    return body


def add_free_box(
    spec: mujoco.MjSpec,
    name: str,
    half_size: tuple[float, float, float],
    rgba: tuple[float, float, float, float],
    mass: float,
    friction: float = 1.0,
) -> mujoco.MjsBody:
    """A free-floating box (half sizes in m) resting on its base."""
    return _add_free_object(
        spec, name, mujoco.mjtGeom.mjGEOM_BOX, list(half_size), half_size[2], rgba, mass, friction
    )


def add_free_cylinder(
    spec: mujoco.MjSpec,
    name: str,
    radius: float,
    half_height: float,
    rgba: tuple[float, float, float, float],
    mass: float,
    friction: float = 1.0,
) -> mujoco.MjsBody:
    """A free-floating upright cylinder (m)."""
    return _add_free_object(
        spec,
        name,
        mujoco.mjtGeom.mjGEOM_CYLINDER,
        [radius, half_height, 0.0],
        half_height,
        rgba,
        mass,
        friction,
    )


def add_marker(
    spec: mujoco.MjSpec,
    name: str,
    radius: float,
    rgba: tuple[float, float, float, float],
) -> mujoco.MjsBody:
    """A flat disc drawn on the table (mocap, no contacts): a goal region."""
    body = spec.worldbody.add_body(name=name, pos=[0.3, 0.0, 0.0], mocap=True)
    body.add_geom(
        name=name,
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[radius, 0.0005, 0.0],
        rgba=list(rgba),
        contype=0,
        conaffinity=0,
        group=1,
    )
    return body


def set_free_pose(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    body: str,
    position: np.ndarray,
    yaw: float = 0.0,
) -> None:
    """Put free body ``body`` at ``position`` (world, m) turned by ``yaw`` about z, at rest."""
    joint = model.body(body).jntadr[0]
    qpos, qvel = model.jnt_qposadr[joint], model.jnt_dofadr[joint]
    data.qpos[qpos : qpos + 3] = position
    data.qpos[qpos + 3 : qpos + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
    data.qvel[qvel : qvel + 6] = 0.0


def free_pose(
    model: mujoco.MjModel, data: mujoco.MjData, body: str
) -> tuple[np.ndarray, np.ndarray]:
    """Position (3,) and rotation matrix (3, 3) of body ``body`` in the world."""
    b = model.body(body).id
    return data.xpos[b].copy(), data.xmat[b].reshape(3, 3).copy()
