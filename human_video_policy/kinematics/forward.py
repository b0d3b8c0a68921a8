"""Forward kinematics on pinocchio, addressed by joint and frame names.

Follows pinocchio's Model/Data split: the Model (tree, constants) is built once from a URDF, one
Data (the workspace FK writes into) is kept and reused, so a pose query costs a few microseconds
and allocates only its result. Callers pass the joints they command (e.g. the WidowX's 7) by name
or as a vector in a fixed order; joints with a URDF ``<mimic>`` tag (the right finger) are filled
in from their source joint, joints nobody passes stay at zero (continuous joints: angle 0).

One instance is not thread-safe (it owns one Data and one configuration buffer): give each
thread its own, they are cheap.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin

from human_video_policy.errors import ConfigError, InputError

JointValues = Mapping[str, float] | Sequence[float] | np.ndarray


@dataclass(frozen=True)
class MimicJoint:
    """URDF ``<mimic>``: q[name] = multiplier * q[source] + offset."""

    name: str
    source: str
    multiplier: float = 1.0
    offset: float = 0.0


def parse_mimic_joints(urdf_xml: str) -> tuple[MimicJoint, ...]:
    """The ``<mimic>`` tags of a URDF: pinocchio builds mimic joints free, we couple them."""
    try:
        root = ET.fromstring(urdf_xml)
    except ET.ParseError as exc:
        raise ConfigError(f"URDF is not valid XML: {exc}") from exc
    mimics = []
    for joint in root.findall("joint"):
        tag = joint.find("mimic")
        if tag is None:
            continue
        try:
            mimics.append(
                MimicJoint(
                    name=joint.get("name", ""),
                    source=tag.get("joint", ""),
                    multiplier=float(tag.get("multiplier", "1")),
                    offset=float(tag.get("offset", "0")),
                )
            )
        except ValueError as exc:
            raise ConfigError(f"URDF joint {joint.get('name')!r}: bad <mimic>: {exc}") from exc
    return tuple(mimics)


class ForwardKinematics:
    """Poses of named frames for named joint values, in the model's root frame (the base link)."""

    def __init__(
        self,
        model: pin.Model,
        input_joints: Sequence[str] | None = None,
        mimics: Sequence[MimicJoint] = (),
    ) -> None:
        self.model = model
        self.data = model.createData()
        self._joint_ids = {model.names[i]: i for i in range(1, model.njoints)}
        self._mimics = {m.name: m for m in mimics}
        for mimic in self._mimics.values():
            for name in (mimic.name, mimic.source):
                if name not in self._joint_ids:
                    raise ConfigError(f"mimic joint {name!r} is not a joint of the model")
                if model.joints[self._joint_ids[name]].nq != 1:
                    raise ConfigError(f"mimic joint {name!r} must have one coordinate")
        if input_joints is None:
            input_joints = [n for n in self._joint_ids if n not in self._mimics]
        self.input_joints: tuple[str, ...] = tuple(input_joints)
        for name in self.input_joints:
            if name not in self._joint_ids:
                raise ConfigError(
                    f"input joint {name!r} is not in the model; joints: {list(self._joint_ids)}"
                )
            if name in self._mimics:
                raise ConfigError(
                    f"input joint {name!r} mimics {self._mimics[name].source!r}; "
                    "pass the source joint instead"
                )
        if len(set(self.input_joints)) != len(self.input_joints):
            raise ConfigError(f"input joints repeat a name: {self.input_joints}")

        # Index plans so an array input is scattered without Python loops over 1-DoF joints.
        scalar_in, scalar_q, self._angle_joints = [], [], []
        for k, name in enumerate(self.input_joints):
            joint = model.joints[self._joint_ids[name]]
            if joint.nq == 1:
                scalar_in.append(k)
                scalar_q.append(joint.idx_q)
            elif joint.nq == 2 and joint.nv == 1:  # continuous joint stored as (cos, sin)
                self._angle_joints.append((k, joint.idx_q))
            else:
                raise ConfigError(f"joint {name!r} has nq={joint.nq}; only 1-DoF joints are inputs")
        self._scalar_in = np.array(scalar_in, dtype=np.intp)
        self._scalar_q = np.array(scalar_q, dtype=np.intp)
        self._mimic_q = np.array(
            [model.joints[self._joint_ids[m.name]].idx_q for m in self._mimics.values()], np.intp
        )
        self._mimic_src_q = np.array(
            [model.joints[self._joint_ids[m.source]].idx_q for m in self._mimics.values()], np.intp
        )
        self._mimic_gain = np.array([m.multiplier for m in self._mimics.values()])
        self._mimic_offset = np.array([m.offset for m in self._mimics.values()])
        self._neutral = pin.neutral(model)
        self._q = self._neutral.copy()
        self._frame_ids: dict[str, int] = {}
        for i, frame in enumerate(model.frames):
            if frame.name not in self._frame_ids or frame.type == pin.FrameType.BODY:
                self._frame_ids[frame.name] = i

    @classmethod
    def from_urdf(
        cls, urdf_path: str | Path, input_joints: Sequence[str] | None = None
    ) -> ForwardKinematics:
        """Build from a URDF file; meshes are not loaded (kinematics only)."""
        path = Path(urdf_path)
        try:
            xml = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read URDF {path}: {exc}") from exc
        return cls.from_urdf_string(xml, input_joints, source=str(path))

    @classmethod
    def from_urdf_string(
        cls, urdf_xml: str, input_joints: Sequence[str] | None = None, source: str = "<string>"
    ) -> ForwardKinematics:
        """Build from URDF text (e.g. a robot_description parameter)."""
        mimics = parse_mimic_joints(urdf_xml)
        try:
            model = pin.buildModelFromXML(urdf_xml)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"pinocchio cannot parse URDF {source}: {exc}") from exc
        return cls(model, input_joints, mimics)

    @property
    def frame_names(self) -> tuple[str, ...]:
        """Every frame the model knows (links, joints, fixed joints)."""
        return tuple(self._frame_ids)

    @property
    def mimic_joints(self) -> tuple[MimicJoint, ...]:
        return tuple(self._mimics.values())

    def frame_id(self, frame: str) -> int:
        try:
            return self._frame_ids[frame]
        except KeyError:
            raise ConfigError(
                f"unknown frame {frame!r}; frames: {sorted(self._frame_ids)}"
            ) from None

    def input_vector(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """Reorder (names, positions), e.g. a JointState, into ``input_joints`` order.

        Extra names (like the mirrored right finger) are ignored; a missing one is an error.
        """
        if len(names) != len(positions):
            raise InputError(f"{len(names)} joint names but {len(positions)} positions")
        by_name = dict(zip(names, positions, strict=True))
        missing = [n for n in self.input_joints if n not in by_name]
        if missing:
            raise InputError(f"joint values missing for {missing} (got {list(names)})")
        return np.array([by_name[n] for n in self.input_joints], dtype=np.float64)

    def configuration(self, q: JointValues) -> np.ndarray:
        """Pinocchio configuration (model.nq,) for ``q``: a vector in ``input_joints`` order or
        a {joint name: value} mapping (any non-mimic model joints; absent ones stay at zero)."""
        return self._load(q).copy()

    def _load(self, q: JointValues) -> np.ndarray:
        full = self._q
        full[:] = self._neutral
        if isinstance(q, Mapping):
            for name, value in q.items():
                self._set_named(full, name, value)
        else:
            vector = np.asarray(q, dtype=np.float64)
            if vector.shape != (len(self.input_joints),):
                raise InputError(
                    f"joint vector has shape {vector.shape}, expected "
                    f"({len(self.input_joints)},) in the order {self.input_joints}"
                )
            if not np.isfinite(vector).all():
                raise InputError(f"joint vector is not finite: {vector}")
            full[self._scalar_q] = vector[self._scalar_in]
            for k, idx_q in self._angle_joints:
                full[idx_q] = math.cos(vector[k])
                full[idx_q + 1] = math.sin(vector[k])
        if self._mimic_q.size:
            full[self._mimic_q] = self._mimic_gain * full[self._mimic_src_q] + self._mimic_offset
        return full

    def _set_named(self, full: np.ndarray, name: str, value: float) -> None:
        if name in self._mimics:
            raise InputError(f"joint {name!r} mimics {self._mimics[name].source!r}; pass that one")
        joint_id = self._joint_ids.get(name)
        if joint_id is None:
            raise InputError(f"unknown joint {name!r}; joints: {list(self._joint_ids)}")
        value = float(value)
        if not math.isfinite(value):
            raise InputError(f"joint {name!r} value is not finite: {value}")
        joint = self.model.joints[joint_id]
        if joint.nq == 1:
            full[joint.idx_q] = value
        else:
            full[joint.idx_q] = math.cos(value)
            full[joint.idx_q + 1] = math.sin(value)

    def frame_pose(self, q: JointValues, frame: str) -> np.ndarray:
        """4x4 homogeneous transform of ``frame`` in the root (base) frame."""
        frame_id = self.frame_id(frame)
        pin.forwardKinematics(self.model, self.data, self._load(q))
        return pin.updateFramePlacement(self.model, self.data, frame_id).homogeneous

    def frame_position(self, q: JointValues, frame: str) -> np.ndarray:
        """(3,) position of ``frame`` in the root (base) frame, metres."""
        frame_id = self.frame_id(frame)
        pin.forwardKinematics(self.model, self.data, self._load(q))
        return pin.updateFramePlacement(self.model, self.data, frame_id).translation.copy()

    def frame_poses(self, q: JointValues, frames: Sequence[str]) -> dict[str, np.ndarray]:
        """4x4 poses of several frames from one forward-kinematics pass."""
        frame_ids = [self.frame_id(f) for f in frames]
        pin.forwardKinematics(self.model, self.data, self._load(q))
        return {
            name: pin.updateFramePlacement(self.model, self.data, fid).homogeneous
            for name, fid in zip(frames, frame_ids, strict=True)
        }
