"""One :class:`RobotSpec` per robot and the registry that names them.

Why: the executor, the controllers, the sim, IK, export and the embodiment maps all need the
same facts about a robot (joints in command order, limits, URDF/MJCF, frames, home pose, the
action spaces it acts in). They read them here instead of keeping their own copies. The facts
themselves stay in the robot's module (:mod:`.widowx`, :mod:`.xhand`, :mod:`.rm75`); a spec
gathers them into one value.

A spec is plain data (this layer imports no kinematics, drivers or sim): forward kinematics of
a spec is :func:`human_video_policy.kinematics.robots.robot_forward_kinematics`, its MuJoCo
driver config :func:`human_video_policy.drivers.sim.sim_driver_config`.

Specs are built on first use (:func:`get_robot`; building one reads its URDF limits).
:func:`register_robot` adds a robot, e.g. from an outside package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from human_video_policy.errors import ConfigError
from human_video_policy.resources import resource_path
from human_video_policy.robots import rm75, widowx, xhand
from human_video_policy.robots.joint_limits import JointLimits, read_urdf_joint_limits


@dataclass(frozen=True)
class SimModel:
    """How the MuJoCo sim driver models a robot (``drivers.sim.sim_driver_config`` reads it).

    Fields:
        model_path: MJCF scene or URDF (MuJoCo compiles both) the sim loads.
        joints: the joints the sim driver commands, in command order.
        initial_positions: where those joints start (rad, m), in ``joints`` order.
        added_actuator_kp: stiffness (N m/rad) of a position servo added to a joint the model
            gives none (a bare URDF); 0 = the model must have one on every joint.
        joint_dynamics: (damping, frictionloss, armature) set on every commanded joint, or
            None to keep the model's.
        gravity_compensation: cancel gravity on every body (servos with gravity feed-forward).
        contacts: simulate contacts (False for models whose collision shapes overlap at rest).
    """

    model_path: Path
    joints: tuple[str, ...]
    initial_positions: tuple[float, ...]
    added_actuator_kp: float = 0.0
    joint_dynamics: tuple[float, float, float] | None = None
    gravity_compensation: bool = False
    contacts: bool = True

    def __post_init__(self) -> None:
        if len(self.initial_positions) != len(self.joints):
            raise ConfigError(
                f"SimModel.initial_positions has {len(self.initial_positions)} values for "
                f"{len(self.joints)} joints {list(self.joints)}"
            )


@dataclass(frozen=True)
class RobotSpec:
    """Everything the stack knows about one robot.

    Fields:
        name: registry id (``widowx``, ``xhand``, ``rm75``, ``rm75_xhand``).
        description: one line for people (model, DoF, what it is used for).
        command_joints: what the policy, the executor and the controller command, in order.
        state_joints: what the robot reports on its joint_states topic, in order (the command
            joints first, then joints that mirror one: ``mirrored``).
        urdf_path: the project's URDF; limits and kinematics are read from it.
        base_frame: URDF frame Cartesian targets and method-A wrist poses are expressed in.
        ee_frame: the frame IK places and the workspace box checks.
        home_position: ready pose (rad, m) in ``command_joints`` order.
        action_spaces: ids of the action spaces the robot acts in (``policies.action_spaces``);
            the first is its joint-position space, names = ``command_joints``.
        sim: how the MuJoCo sim driver models it.
        mjcf_path: the MuJoCo model that holds the robot (today a scene around it), or None
            when the sim compiles the URDF.
        ik_joints: the joints IK moves to place ``ee_frame`` (empty: the robot has no IK).
        mirrored: reported joints that mirror a commanded one, (name, source joint, factor).
        parts: for a robot made of others (an arm with a hand), the robots whose controllers
            drive it; empty for a robot one joint controller drives.
        driver_adapters: (real driver kind, ``"module:Class"``) pairs: the class wraps that
            driver so it speaks the command joints (e.g. the WidowX gripper servo angle as the
            finger position in m).
        topic_namespace: where the robot's joint controller publishes and listens
            (``<namespace>/joint_states``, ``<namespace>/joint_commands``): ``/arm`` for an
            arm, ``/hand`` for a hand; a robot with ``parts`` uses its parts' namespaces.
    """

    name: str
    description: str
    command_joints: tuple[str, ...]
    state_joints: tuple[str, ...]
    urdf_path: Path
    base_frame: str
    ee_frame: str
    home_position: tuple[float, ...]
    action_spaces: tuple[str, ...]
    sim: SimModel
    mjcf_path: Path | None = None
    ik_joints: tuple[str, ...] = ()
    mirrored: tuple[tuple[str, str, float], ...] = ()
    parts: tuple[str, ...] = ()
    driver_adapters: tuple[tuple[str, str], ...] = ()
    topic_namespace: str = "/arm"

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise ConfigError(f"RobotSpec.name={self.name!r} is invalid: a lower_case id")
        for field_name in ("command_joints", "state_joints"):
            joints = getattr(self, field_name)
            if not joints or len(set(joints)) != len(joints):
                raise ConfigError(
                    f"RobotSpec {self.name}: {field_name}={list(joints)} is invalid: non-empty, "
                    "no repeats"
                )
        if self.state_joints[: len(self.command_joints)] != self.command_joints:
            raise ConfigError(
                f"RobotSpec {self.name}: state_joints must start with the command joints "
                f"{list(self.command_joints)}, got {list(self.state_joints)}"
            )
        if len(self.home_position) != len(self.command_joints):
            raise ConfigError(
                f"RobotSpec {self.name}: home_position has {len(self.home_position)} values for "
                f"{len(self.command_joints)} command joints"
            )
        if not self.action_spaces:
            raise ConfigError(f"RobotSpec {self.name}: needs at least its joint action space")
        if unknown := [j for j in self.ik_joints if j not in self.command_joints]:
            raise ConfigError(f"RobotSpec {self.name}: ik_joints {unknown} are not command joints")
        for name, source, factor in self.mirrored:
            if source not in self.command_joints or name not in self.state_joints:
                raise ConfigError(
                    f"RobotSpec {self.name}: mirrored joint {name!r} needs a state joint mirroring "
                    f"a command joint, got source {source!r}"
                )
            if factor == 0:
                raise ConfigError(f"RobotSpec {self.name}: mirrored {name!r} has factor 0")

    @property
    def dims(self) -> int:
        """Number of command joints."""
        return len(self.command_joints)

    @property
    def joint_action_space(self) -> str:
        """Id of the robot's joint-position action space (names = command joints)."""
        return self.action_spaces[0]

    def joint_topics(self) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]:
        """(namespace, command joints, state joints) of each controller that drives this
        robot: one for a simple robot, one per part for an arm with a hand."""
        if not self.parts:
            return ((self.topic_namespace, self.command_joints, self.state_joints),)
        parts = [get_robot(part) for part in self.parts]
        return tuple((p.topic_namespace, p.command_joints, p.state_joints) for p in parts)

    def limits(self) -> JointLimits:
        """Position and velocity limits of the command joints, from the URDF (read once)."""
        return _urdf_limits(self.urdf_path, self.command_joints)

    def home(self) -> np.ndarray:
        """Read-only ``home_position`` as a float64 array."""
        home = np.array(self.home_position, dtype=np.float64)
        home.setflags(write=False)
        return home


@cache
def _urdf_limits(urdf_path: Path, joints: tuple[str, ...]) -> JointLimits:
    return read_urdf_joint_limits(urdf_path, joints)


def _floats(values: np.ndarray | tuple[float, ...]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _widowx() -> RobotSpec:
    scene = resource_path("mjcf", "wx250s_reach_scene.xml")
    home = _floats(widowx.HOME_POSITION)
    return RobotSpec(
        name="widowx",
        description="Trossen WidowX 250s: 6-DoF arm + parallel gripper (left_finger, m)",
        command_joints=widowx.WIDOWX_COMMAND_JOINTS,
        state_joints=widowx.WIDOWX_STATE_JOINTS,
        urdf_path=widowx.widowx_urdf_path(),
        base_frame=widowx.BASE_FRAME,
        ee_frame=widowx.EE_FRAME,
        home_position=home,
        action_spaces=("widowx_joint_position", "widowx_ee_delta"),
        sim=SimModel(scene, widowx.WIDOWX_COMMAND_JOINTS, home),
        mjcf_path=scene,
        ik_joints=widowx.WIDOWX_ARM_JOINTS,
        mirrored=(("right_finger", "left_finger", -1.0),),
        driver_adapters=(
            ("dynamixel", "human_video_policy.drivers.widowx_gripper:FingerGripperDriver"),
        ),
    )


def _xhand() -> RobotSpec:
    limits = _urdf_limits(xhand.xhand_urdf_path(), xhand.XHAND_JOINTS)
    home = _floats(np.clip(0.0, limits.lower, limits.upper))  # open hand
    return RobotSpec(
        name="xhand",
        description="Robotera XHand right hand: 12 actuated finger joints (rad)",
        command_joints=xhand.XHAND_JOINTS,
        state_joints=xhand.XHAND_JOINTS,
        urdf_path=xhand.xhand_urdf_path(),
        base_frame=xhand.PALM_FRAME,
        ee_frame=xhand.EE_FRAME,
        home_position=home,
        action_spaces=("xhand_joint_position",),
        sim=SimModel(
            xhand.xhand_urdf_path(),
            xhand.XHAND_JOINTS,
            home,
            added_actuator_kp=xhand.SIM_SERVO_KP,
            joint_dynamics=xhand.SIM_JOINT_DYNAMICS,
            gravity_compensation=True,
            contacts=False,
        ),
        topic_namespace="/hand",
    )


def _rm75() -> RobotSpec:
    # The arm as its controller drives it: limits and kinematics from the arm + hand URDF, so
    # the EE point (and the workspace box) is the hand's, as mounted.
    scene = resource_path("mjcf", "rm75_xhand_scene.xml")
    home = _floats(rm75.HOME_ARM_POSITION)
    return RobotSpec(
        name="rm75",
        description="Realman RM75 7-DoF arm (with the XHand mounted; the hand held still)",
        command_joints=rm75.RM75_ARM_JOINTS,
        state_joints=rm75.RM75_ARM_JOINTS,
        urdf_path=rm75.rm75_xhand_urdf_path(),
        base_frame=rm75.BASE_FRAME,
        ee_frame=rm75.EE_FRAME,
        home_position=home,
        action_spaces=("rm75_joint_position",),
        sim=SimModel(scene, rm75.RM75_ARM_JOINTS, home),
        mjcf_path=scene,
        ik_joints=rm75.RM75_ARM_JOINTS,
    )


def _rm75_xhand() -> RobotSpec:
    scene = resource_path("mjcf", "rm75_xhand_scene.xml")
    home = _floats(rm75.HOME_POSITION)
    return RobotSpec(
        name="rm75_xhand",
        description="RM75 arm + XHand right hand: 7 arm then 12 hand joints (rad)",
        command_joints=rm75.RM75_XHAND_JOINTS,
        state_joints=rm75.RM75_XHAND_JOINTS,
        urdf_path=rm75.rm75_xhand_urdf_path(),
        base_frame=rm75.BASE_FRAME,
        ee_frame=rm75.EE_FRAME,
        home_position=home,
        action_spaces=("rm75_xhand_joint_position", "xhand_wrist_method_a"),
        sim=SimModel(scene, rm75.RM75_XHAND_JOINTS, home),
        mjcf_path=scene,
        ik_joints=rm75.RM75_ARM_JOINTS,
        parts=("rm75", "xhand"),
    )


_FACTORIES: dict[str, Callable[[], RobotSpec]] = {
    "widowx": _widowx,
    "xhand": _xhand,
    "rm75": _rm75,
    "rm75_xhand": _rm75_xhand,
}
_SPECS: dict[str, RobotSpec] = {}


def register_robot(name: str, factory: Callable[[], RobotSpec], replace: bool = False) -> None:
    """Add robot ``name``, built by ``factory`` on first use (its spec must carry that name)."""
    if name in _FACTORIES and not replace:
        raise ConfigError(f"robot {name!r} is already registered; pass replace=True to replace it")
    _FACTORIES[name] = factory
    _SPECS.pop(name, None)


def robot_names() -> list[str]:
    """Every registered robot, in registration order."""
    return list(_FACTORIES)


def controller_robot_names() -> list[str]:
    """Robots one joint controller drives (not made of other robots), in registration order."""
    return [n for n in _FACTORIES if not get_robot(n).parts]


def get_robot(name: str) -> RobotSpec:
    """The spec of robot ``name``; an unknown name is a ConfigError listing the known ones."""
    spec = _SPECS.get(name)
    if spec is not None:
        return spec
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"robot={name!r} is invalid: must be one of {robot_names()}")
    spec = factory()
    if spec.name != name:
        raise ConfigError(f"robot {name!r}: its factory built a spec named {spec.name!r}")
    _SPECS[name] = spec
    return spec


__all__ = [
    "RobotSpec",
    "SimModel",
    "controller_robot_names",
    "get_robot",
    "register_robot",
    "robot_names",
]
