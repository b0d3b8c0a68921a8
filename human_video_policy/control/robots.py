"""What a joint controller needs to know about each robot it can drive.

One :class:`RobotSpec` per robot: command joints, URDF limits, end-effector forward kinematics
(for the workspace box), the MuJoCo model its sim driver runs, and reported joints that mirror a
commanded one. The controller nodes, the stopping-distance measurement and the fault tests read
these, so a robot's facts are written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from human_video_policy.robots.joint_limits import JointLimits


@dataclass(frozen=True)
class RobotSpec:
    """What a controller needs to know about a robot: joints (command order) and limits, the
    end-effector forward kinematics for the workspace box, its sim model, and joints it
    reports that mirror a commanded one (name -> (source, factor))."""

    joints: tuple[str, ...]
    limits: Callable[[], JointLimits]
    ee_position: Callable[[], Callable[[np.ndarray], np.ndarray]]
    sim_config: Callable[[float], Any]
    mirrored: tuple[tuple[str, str, float], ...] = ()


def _widowx() -> RobotSpec:
    from human_video_policy.robots import widowx

    def fk() -> Callable[[np.ndarray], np.ndarray]:
        model = widowx.widowx_forward_kinematics()
        return lambda q: model.frame_position(q, widowx.EE_FRAME)

    def sim(realtime_factor: float) -> Any:
        from human_video_policy.drivers.sim import MujocoDriverConfig

        return MujocoDriverConfig(realtime_factor=realtime_factor)

    return RobotSpec(
        widowx.WIDOWX_COMMAND_JOINTS,
        widowx.widowx_joint_limits,
        fk,
        sim,
        mirrored=(("right_finger", "left_finger", -1.0),),
    )


def _xhand() -> RobotSpec:
    from human_video_policy.robots import xhand

    def fk() -> Callable[[np.ndarray], np.ndarray]:
        model = xhand.xhand_forward_kinematics()
        return lambda q: model.frame_position(q, xhand.EE_FRAME)

    def sim(realtime_factor: float) -> Any:
        from human_video_policy.drivers.sim import MujocoDriverConfig

        limits = xhand.xhand_joint_limits()
        start = np.clip(0.0, limits.lower, limits.upper)
        return MujocoDriverConfig(
            model_path=str(xhand.xhand_urdf_path()),
            joint_names=xhand.XHAND_JOINTS,
            initial_positions=tuple(float(v) for v in start),
            added_actuator_kp=xhand.SIM_SERVO_KP,
            joint_dynamics=xhand.SIM_JOINT_DYNAMICS,
            gravity_compensation=True,
            contacts=False,
            realtime_factor=realtime_factor,
        )

    return RobotSpec(xhand.XHAND_JOINTS, xhand.xhand_joint_limits, fk, sim)


def _rm75() -> RobotSpec:
    from human_video_policy.robots import rm75

    def fk() -> Callable[[np.ndarray], np.ndarray]:
        from human_video_policy.kinematics.forward import ForwardKinematics

        model = ForwardKinematics.from_urdf(rm75.rm75_xhand_urdf_path(), rm75.RM75_ARM_JOINTS)
        return lambda q: model.frame_position(q, rm75.EE_FRAME)

    def sim(realtime_factor: float) -> Any:
        from human_video_policy.drivers.sim import MujocoDriverConfig
        from human_video_policy.resources import resource_path

        # The project's RM75 + XHand scene (servos, gravity compensation); the hand holds its
        # start pose while this controller drives the arm.
        return MujocoDriverConfig(
            model_path=str(resource_path("mjcf", "rm75_xhand_scene.xml")),
            joint_names=rm75.RM75_ARM_JOINTS,
            initial_positions=tuple(float(v) for v in rm75.HOME_ARM_POSITION),
            realtime_factor=realtime_factor,
        )

    return RobotSpec(rm75.RM75_ARM_JOINTS, rm75.rm75_joint_limits, fk, sim)


ROBOTS: dict[str, Callable[[], RobotSpec]] = {"widowx": _widowx, "xhand": _xhand, "rm75": _rm75}
