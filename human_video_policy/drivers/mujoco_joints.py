"""Named, position-controlled 1-DoF joints of a compiled MuJoCo model: the one binding every
simulated robot uses.

Why one: the sim driver (drivers/sim.py, behind the JointDriver interface of the controller
nodes) and the simulated worlds (sim/world_base.py: reach, task and human-hand scenes) both
drive robot joints by name through position actuators; binding names to qpos/qvel addresses
and actuators, clamping targets to the actuators' ranges and refusing non-finite or
mis-shaped commands is done here once, so both paths command a joint the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np

from human_video_policy.errors import ConfigError, InputError

_ONE_DOF = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
_JOINT_TRANSMISSION = int(mujoco.mjtTrn.mjTRN_JOINT)


def checked_command(positions: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """``positions`` as float64 if it is one finite value per joint of ``names``; else an
    InputError naming what is wrong."""
    q = np.asarray(positions, dtype=np.float64)
    if q.shape != (len(names),):
        raise InputError(
            f"joint command must have shape ({len(names)},) for {list(names)}, got {q.shape}"
        )
    if not np.all(np.isfinite(q)):
        raise InputError(f"joint command contains NaN/inf: {q.tolist()}")
    return q


class MujocoJoints:
    """Joints ``names`` of ``model`` in that order; with ``actuated`` each must carry a position
    actuator (the first joint-transmission actuator on it).

    Attributes (index arrays into ``MjData``, ``names`` order): ``qpos``, ``qvel``; with
    ``actuated``: ``actuators``, ``ctrl_low``, ``ctrl_high`` (the actuators' control range,
    +-inf where unlimited).
    """

    def __init__(
        self, model: mujoco.MjModel, names: Sequence[str], *, actuated: bool = True
    ) -> None:
        self.names = tuple(names)
        if not self.names:
            raise ConfigError("joint names=() is invalid: need at least one joint")
        ids = []
        for name in self.names:
            try:
                jid = model.joint(name).id
            except KeyError:
                known = [model.joint(j).name for j in range(model.njnt)]
                raise ConfigError(f"the model has no joint {name!r}; joints: {known}") from None
            if int(model.jnt_type[jid]) not in _ONE_DOF:
                raise ConfigError(f"joint {name!r} is not a 1-DoF (hinge or slide) joint")
            ids.append(jid)
        self.qpos = np.array([model.jnt_qposadr[j] for j in ids], dtype=np.int64)
        self.qvel = np.array([model.jnt_dofadr[j] for j in ids], dtype=np.int64)
        self.actuators = np.zeros(0, dtype=np.int64)
        self.ctrl_low = np.zeros(0)
        self.ctrl_high = np.zeros(0)
        if actuated:
            found = []
            for name, jid in zip(self.names, ids, strict=True):
                on_joint = [
                    a
                    for a in range(model.nu)
                    if int(model.actuator_trntype[a]) == _JOINT_TRANSMISSION
                    and model.actuator_trnid[a, 0] == jid
                ]
                if not on_joint:
                    raise ConfigError(f"joint {name!r} has no actuator")
                found.append(on_joint[0])
            self.actuators = np.array(found, dtype=np.int64)
            limited = model.actuator_ctrllimited[self.actuators].astype(bool)
            ranges = model.actuator_ctrlrange[self.actuators]
            self.ctrl_low = np.where(limited, ranges[:, 0], -np.inf)
            self.ctrl_high = np.where(limited, ranges[:, 1], np.inf)

    def positions(self, data: mujoco.MjData) -> np.ndarray:
        """Joint positions (rad, m), ``names`` order."""
        return data.qpos[self.qpos].copy()

    def velocities(self, data: mujoco.MjData) -> np.ndarray:
        """Joint velocities (rad/s, m/s)."""
        return data.qvel[self.qvel].copy()

    def efforts(self, data: mujoco.MjData) -> np.ndarray:
        """The actuators' forces (N m, N)."""
        return data.actuator_force[self.actuators].copy()

    def command(self, data: mujoco.MjData) -> np.ndarray:
        """The position targets currently applied."""
        return data.ctrl[self.actuators].copy()

    def set_command(self, data: mujoco.MjData, positions: np.ndarray) -> np.ndarray:
        """Apply position targets, clamped to the actuators' ranges (as servo firmware
        clamps); a wrong shape or a non-finite value is refused. Returns what was applied."""
        applied = np.clip(checked_command(positions, self.names), self.ctrl_low, self.ctrl_high)
        data.ctrl[self.actuators] = applied
        return applied
