"""A simulated robot behind the driver interface: MuJoCo position servos on named joints.

:class:`MujocoJointDriver` implements :class:`~human_video_policy.drivers.base.JointDriver` on
any MuJoCo model (MJCF, or a URDF that MuJoCo compiles), so a controller switches between the
sim and a real robot by one parameter. Joints are addressed by name; each is driven by the
position actuator on it (bound by drivers/mujoco_joints.py, as the simulated worlds bind theirs),
and joints without one get a position actuator added when the model is built
(``added_actuator_kp``), so a bare URDF such as the project's XHand is drivable too.

The sim runs in its own time, like a real robot: each call advances the physics to the
driver's clock (``time.monotonic`` by default, times ``realtime_factor``) before it reads or
writes, in whole physics steps, at most ``max_catch_up_s`` per call (after a longer stall the
sim falls behind instead of jumping). ``enable()`` holds the current position; ``disable()``
turns actuation off (the arm sags under gravity, as a real one with torque off would).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from human_video_policy.drivers.base import (
    DriverCommandError,
    DriverConnectionError,
    JointState,
    check_command,
)
from human_video_policy.drivers.mujoco_joints import MujocoJoints
from human_video_policy.errors import ConfigError
from human_video_policy.robots.spec import RobotSpec, get_robot
from human_video_policy.robots.widowx import HOME_POSITION, WIDOWX_COMMAND_JOINTS
from human_video_policy.validation import check_non_negative, check_range


def default_widowx_scene() -> Path:
    """The project's WidowX 250s reach scene (mjcf/wx250s_reach_scene.xml)."""
    from human_video_policy.resources import resource_path

    return resource_path("mjcf", "wx250s_reach_scene.xml")


@dataclass
class MujocoDriverConfig:
    """Settings of :class:`MujocoJointDriver`.

    Attributes:
        model_path: MJCF or URDF file; empty = the project's WidowX 250s reach scene.
        joint_names: the commanded joints, in command/state order (model joint names, which
            are the project's URDF names). Default: the 7 WidowX command joints.
        initial_positions: positions (rad, m) the joints start at on ``connect()``, in
            ``joint_names`` order; None = the model's reference pose (qpos0). Default: the
            WidowX home pose.
        added_actuator_kp: stiffness (N m/rad) of the position actuator added to a joint
            that has none in the model; 0 = every joint must already have one (the model is
            refused otherwise).
        joint_dynamics: None = keep the model's joint damping, friction and armature; else
            (damping N m s/rad, frictionloss N m, armature kg m^2) set on every commanded
            joint. URDFs often carry placeholder dynamics (the XHand URDF's damping 1 and
            friction 1 N m make a 5 N m/rad servo crawl at 1 rad/s, a real finger does 8).
        gravity_compensation: cancel gravity on every body of the model (``gravcomp`` 1), as
            servos with a gravity feed-forward do; the scene's XHand bodies have it, a bare
            URDF has not (its fingers would sag 0.035 rad off target on a 3 N m/rad servo).
        contacts: simulate contacts; False turns collision off in the whole model (for robot
            models whose collision shapes overlap at rest, like the primitive geometry of the
            project's XHand URDF, where self-contacts would jam the joints).
        realtime_factor: sim seconds per second of the driver's clock (1 = real time).
        max_catch_up_s: at most this much sim time (s) is simulated per call; a longer
            pause of the caller makes the sim fall behind its clock instead of jumping.
        device_name: the name in logs and errors; empty = ``"mujoco:<model file name>"``.
    """

    model_path: str = ""
    joint_names: tuple[str, ...] = tuple(WIDOWX_COMMAND_JOINTS)
    initial_positions: tuple[float, ...] | None = tuple(float(v) for v in HOME_POSITION)
    added_actuator_kp: float = 0.0
    joint_dynamics: tuple[float, float, float] | None = None
    gravity_compensation: bool = False
    contacts: bool = True
    realtime_factor: float = 1.0
    max_catch_up_s: float = 0.1
    device_name: str = ""

    def __post_init__(self) -> None:
        if self.model_path and not Path(self.model_path).is_file():
            raise ConfigError(f"model_path={self.model_path!r} is invalid: file not found")
        names = tuple(self.joint_names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"joint_names={self.joint_names!r} is invalid: need joint names")
        if len(set(names)) != len(names):
            raise ConfigError(f"joint_names={names!r} is invalid: names repeat")
        self.joint_names = names
        if self.initial_positions is not None:
            q = np.asarray(self.initial_positions, dtype=np.float64)
            if q.shape != (len(names),) or not np.all(np.isfinite(q)):
                raise ConfigError(
                    f"initial_positions={self.initial_positions!r} is invalid: must be "
                    f"{len(names)} finite values for {list(names)}"
                )
            self.initial_positions = tuple(float(v) for v in q)
        check_non_negative("added_actuator_kp", self.added_actuator_kp)
        if self.joint_dynamics is not None:
            dynamics = np.asarray(self.joint_dynamics, dtype=np.float64)
            if dynamics.shape != (3,) or not np.all(np.isfinite(dynamics)) or np.any(dynamics < 0):
                raise ConfigError(
                    f"joint_dynamics={self.joint_dynamics!r} is invalid: need (damping, "
                    "frictionloss, armature), three finite values >= 0"
                )
            self.joint_dynamics = (float(dynamics[0]), float(dynamics[1]), float(dynamics[2]))
        check_range("realtime_factor", self.realtime_factor, 0.01, 100.0)
        check_range("max_catch_up_s", self.max_catch_up_s, 0.001, 10.0)


def sim_driver_config(robot: str | RobotSpec, realtime_factor: float = 1.0) -> MujocoDriverConfig:
    """The sim driver settings of a registered robot (its spec's :class:`SimModel`)."""
    spec = robot if isinstance(robot, RobotSpec) else get_robot(robot)
    sim = spec.sim
    return MujocoDriverConfig(
        model_path=str(sim.model_path),
        joint_names=sim.joints,
        initial_positions=sim.initial_positions,
        added_actuator_kp=sim.added_actuator_kp,
        joint_dynamics=sim.joint_dynamics,
        gravity_compensation=sim.gravity_compensation,
        contacts=sim.contacts,
        realtime_factor=realtime_factor,
    )


class MujocoJointDriver:
    """JointDriver on a MuJoCo model; see the module docstring. Not thread-safe."""

    def __init__(
        self, config: MujocoDriverConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or MujocoDriverConfig()
        self._clock = clock
        self._path = Path(self.config.model_path) if self.config.model_path else None
        self._name = self.config.device_name or (
            f"mujoco:{(self._path or default_widowx_scene()).name}"
        )
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self._enabled = False
        self._clock_origin = 0.0

    # -- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.config.joint_names

    @property
    def is_connected(self) -> bool:
        return self.data is not None

    @property
    def sim_time(self) -> float:
        """Simulated seconds since ``connect()``."""
        return 0.0 if self.data is None else float(self.data.time)

    # -- life cycle --------------------------------------------------------------------------
    def connect(self) -> None:
        """Build the model and put the joints at ``initial_positions``, actuation off."""
        if self.data is not None:
            return
        path = self._path or default_widowx_scene()
        try:
            spec = mujoco.MjSpec.from_file(str(path))
            self._set_joint_dynamics(spec)
            self._add_missing_actuators(spec)
            model = spec.compile()
        except (ValueError, RuntimeError) as exc:
            raise DriverConnectionError(f"{self.name}: cannot load model {path}: {exc}") from exc
        self._bind(model)
        self.model, self.data = model, mujoco.MjData(model)
        joints = self._joints
        if self.config.initial_positions is not None:
            self.data.qpos[joints.qpos] = np.asarray(self.config.initial_positions)
        joints.set_command(self.data, joints.positions(self.data))
        model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)
        if not self.config.contacts:
            model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONTACT)
        mujoco.mj_forward(model, self.data)
        self._enabled = False
        self._clock_origin = self._clock()

    def _set_joint_dynamics(self, spec: mujoco.MjSpec) -> None:
        if self.config.gravity_compensation:
            for body in spec.bodies:
                body.gravcomp = 1.0
        if self.config.joint_dynamics is None:
            return
        damping, frictionloss, armature = self.config.joint_dynamics
        joints = {j.name: j for j in spec.joints}
        for name in self.joint_names:
            if name not in joints:
                raise ValueError(f"the model has no joint {name!r}; joints: {sorted(joints)}")
            joint = joints[name]
            joint.damping = np.array([damping, 0.0, 0.0])  # linear term (MuJoCo >= 4: 3 terms)
            joint.frictionloss = frictionloss
            joint.armature = armature

    def _add_missing_actuators(self, spec: mujoco.MjSpec) -> None:
        driven = {a.target for a in spec.actuators if a.trntype == mujoco.mjtTrn.mjTRN_JOINT}
        joints = {j.name: j for j in spec.joints}
        for name in self.joint_names:
            if name not in joints:
                raise ValueError(f"the model has no joint {name!r}; joints: {sorted(joints)}")
            if name in driven:
                continue
            if self.config.added_actuator_kp <= 0:
                raise ValueError(
                    f"joint {name!r} has no actuator (set added_actuator_kp to add a position "
                    "actuator)"
                )
            actuator = spec.add_actuator(
                name=f"hvp_position_{name}", target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT
            )
            actuator.set_to_position(kp=self.config.added_actuator_kp, dampratio=1.0)
            joint = joints[name]
            auto = joint.limited == mujoco.mjtLimited.mjLIMITED_AUTO
            if joint.limited == mujoco.mjtLimited.mjLIMITED_TRUE or (
                auto and joint.range[0] < joint.range[1]
            ):
                actuator.ctrlrange = joint.range
                actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE

    def _bind(self, model: mujoco.MjModel) -> None:
        try:
            self._joints = MujocoJoints(model, self.joint_names)
        except ConfigError as exc:
            raise DriverConnectionError(f"{self.name}: {exc}") from exc

    def close(self) -> None:
        """Drop the model (safe to call twice and after a failed connect)."""
        self.model = None
        self.data = None
        self._enabled = False

    def enable(self) -> None:
        """Actuation on, holding the current positions."""
        self._require_connection()
        self._advance()
        assert self.model is not None and self.data is not None
        self._joints.set_command(self.data, self._joints.positions(self.data))
        self.model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)
        self._enabled = True

    def disable(self) -> None:
        """Actuation off (gravity acts on the joints)."""
        self._require_connection()
        self._advance()
        assert self.model is not None
        self.model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)
        self._enabled = False

    def __enter__(self) -> MujocoJointDriver:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_connected and self._enabled:
            self.disable()
        self.close()

    # -- streaming -----------------------------------------------------------------------------
    def read_state(self) -> JointState:
        self._require_connection()
        self._advance()
        data = self.data
        assert data is not None
        joints = self._joints
        return JointState(
            names=self.joint_names,
            positions=joints.positions(data),
            stamp_s=self._clock(),
            velocities=joints.velocities(data),
            efforts=joints.efforts(data),
            enabled=self._enabled,
        )

    def send_positions(self, positions: np.ndarray) -> None:
        """Position targets (clamped by the actuators' ctrlrange, as servo firmware would)."""
        command = check_command(self.name, self.joint_names, positions)
        self._require_connection()
        if not self._enabled:
            raise DriverCommandError(f"{self.name}: motors are disabled; call enable() first")
        self._advance()
        assert self.data is not None
        self._joints.set_command(self.data, command)

    def commanded_positions(self) -> np.ndarray:
        """The position targets currently applied (after the actuators' range clamp)."""
        self._require_connection()
        assert self.data is not None
        return self._joints.command(self.data)

    def step_physics(self, seconds: float) -> None:
        """Advance the sim by ``seconds`` on top of its clock (tests, faster-than-real-time)."""
        self._require_connection()
        assert self.model is not None and self.data is not None
        steps = round(seconds / self.model.opt.timestep)
        if steps > 0:
            mujoco.mj_step(self.model, self.data, nstep=steps)
            self._clock_origin -= steps * self.model.opt.timestep / self.config.realtime_factor

    # -- internals -----------------------------------------------------------------------------
    def _require_connection(self) -> None:
        if self.data is None:
            raise DriverConnectionError(f"{self.name}: not connected; call connect() first")

    def _advance(self) -> None:
        """Step the physics up to the driver's clock (at most max_catch_up_s at once)."""
        model, data = self.model, self.data
        assert model is not None and data is not None
        target = (self._clock() - self._clock_origin) * self.config.realtime_factor
        dt = model.opt.timestep
        behind = target - data.time
        steps = math.floor(min(behind, self.config.max_catch_up_s) / dt + 1e-9)
        if steps > 0:
            mujoco.mj_step(model, data, nstep=steps)
        if behind > self.config.max_catch_up_s:  # a stall: fall behind, do not burst
            self._clock_origin += (behind - steps * dt) / self.config.realtime_factor
