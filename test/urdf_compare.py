"""Comparing a project URDF with a vendor URDF: shared by the robot-model tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pinocchio as pin

from human_video_policy.kinematics import ForwardKinematics


def urdf_joints(path_or_xml: Path | str) -> dict[str, ET.Element]:
    text = path_or_xml.read_text() if isinstance(path_or_xml, Path) else path_or_xml
    return {j.get("name"): j for j in ET.fromstring(text).findall("joint")}


def floats(element: ET.Element | None, attribute: str, default: str) -> np.ndarray:
    raw = default if element is None else element.get(attribute, default)
    return np.array([float(x) for x in raw.split()])


def physical_inertials_total_mass(urdf: Path, max_link_mass_kg: float) -> float:
    """Assert every link has an inertial with 0 < mass < ``max_link_mass_kg`` and a positive
    definite inertia obeying the triangle rule; return the total mass (kg)."""
    root = ET.fromstring(urdf.read_text())
    for link in root.iter("link"):
        name = link.get("name")
        inertial = link.find("inertial")
        assert inertial is not None, name
        mass = float(inertial.find("mass").get("value"))
        assert 0.0 < mass < max_link_mass_kg, name
        i = {k: float(v) for k, v in inertial.find("inertia").attrib.items()}
        tensor = np.array(
            [
                [i["ixx"], i["ixy"], i["ixz"]],
                [i["ixy"], i["iyy"], i["iyz"]],
                [i["ixz"], i["iyz"], i["izz"]],
            ]
        )
        principal = np.linalg.eigvalsh(tensor)
        assert principal.min() > 0.0, name
        assert principal[0] + principal[1] >= principal[2] * (1 - 1e-9), name  # triangle rule
    return sum(float(m.get("value")) for m in root.iter("mass"))


def max_fk_errors(
    fk_a: ForwardKinematics, fk_b: ForwardKinematics, configurations: np.ndarray, frames
) -> tuple[float, str, float, str]:
    """Largest position (m) and rotation (rad, |log3(Ra^T Rb)|) error, with the worst frames."""
    worst_pos, worst_pos_frame, worst_rot, worst_rot_frame = 0.0, "", 0.0, ""
    for q in configurations:
        poses_a = fk_a.frame_poses(q, frames)
        poses_b = fk_b.frame_poses(q, frames)
        for frame in frames:
            pose_a, pose_b = poses_a[frame], poses_b[frame]
            pos = float(np.linalg.norm(pose_a[:3, 3] - pose_b[:3, 3]))
            rot = float(np.linalg.norm(pin.log3(pose_a[:3, :3].T @ pose_b[:3, :3])))
            if pos > worst_pos:
                worst_pos, worst_pos_frame = pos, frame
            if rot > worst_rot:
                worst_rot, worst_rot_frame = rot, frame
    return worst_pos, worst_pos_frame, worst_rot, worst_rot_frame


def assert_joints_match(project_urdf: Path, vendor_urdf: Path, *, dynamics: bool) -> None:
    """Joint by joint: type, tree, origin, axis, limits, mimic (and <dynamics> if asked)."""
    project, vendor = urdf_joints(project_urdf), urdf_joints(vendor_urdf)
    assert set(project) == set(vendor)
    assert_vendor_joints_present(project_urdf, vendor_urdf, dynamics=dynamics)


def assert_vendor_joints_present(
    project_urdf: Path | str, vendor_urdf: Path, *, dynamics: bool
) -> None:
    """Every vendor joint is in the project URDF, equal as in assert_joints_match; the project
    may have more (e.g. an arm URDF that also carries a hand)."""
    project, vendor = urdf_joints(project_urdf), urdf_joints(vendor_urdf)
    missing = set(vendor) - set(project)
    assert not missing, f"vendor joints missing from the project URDF: {sorted(missing)}"
    for name, vj in vendor.items():
        pj = project[name]
        where = f"joint {name!r}"
        assert pj.get("type") == vj.get("type"), where
        assert pj.find("parent").get("link") == vj.find("parent").get("link"), where
        assert pj.find("child").get("link") == vj.find("child").get("link"), where
        for attr in ("xyz", "rpy"):
            np.testing.assert_allclose(
                floats(pj.find("origin"), attr, "0 0 0"),
                floats(vj.find("origin"), attr, "0 0 0"),
                atol=1e-12,
                err_msg=f"{where} origin {attr}",
            )
        if vj.get("type") == "fixed":
            continue
        np.testing.assert_array_equal(
            floats(pj.find("axis"), "xyz", "1 0 0"),
            floats(vj.find("axis"), "xyz", "1 0 0"),
            err_msg=f"{where} axis",
        )
        v_limit, p_limit = vj.find("limit"), pj.find("limit")
        assert p_limit is not None, where
        for attr in ("lower", "upper", "velocity", "effort"):
            assert (attr in p_limit.attrib) == (attr in v_limit.attrib), f"{where} limit {attr}"
            if attr in v_limit.attrib:
                assert float(p_limit.get(attr)) == float(v_limit.get(attr)), f"{where} {attr}"
        if dynamics:
            v_dyn, p_dyn = vj.find("dynamics"), pj.find("dynamics")
            assert (p_dyn is None) == (v_dyn is None), f"{where} dynamics"
            if v_dyn is not None:
                assert {k: float(x) for k, x in p_dyn.attrib.items()} == {
                    k: float(x) for k, x in v_dyn.attrib.items()
                }, f"{where} dynamics"
        v_mimic, p_mimic = vj.find("mimic"), pj.find("mimic")
        assert (p_mimic is None) == (v_mimic is None), f"{where} mimic"
        if v_mimic is not None:
            assert p_mimic.attrib == v_mimic.attrib, f"{where} mimic"


def relative_pose(fk: ForwardKinematics, q: np.ndarray, root: str, frames) -> dict:
    """4x4 poses of ``frames`` expressed in frame ``root`` (one FK pass)."""
    poses = fk.frame_poses(q, [root, *frames])
    inverse_root = np.linalg.inv(poses[root])
    return {frame: inverse_root @ poses[frame] for frame in frames}


def max_relative_fk_errors(
    fk_a: ForwardKinematics,
    root_a: str,
    configurations_a: np.ndarray,
    fk_b: ForwardKinematics,
    root_b: str,
    configurations_b: np.ndarray,
    frames,
    offset_b: np.ndarray | None = None,
) -> tuple[float, str, float, str]:
    """Like max_fk_errors, for two models with different inputs and roots: each frame's pose in
    ``root_a`` (model a) against its pose in ``root_b`` (model b), pre-multiplied by
    ``offset_b`` (root_a <- root_b, e.g. the flange-to-hand mount) when given. The i-th
    configurations of a and b must describe the same joint values."""
    offset = np.eye(4) if offset_b is None else np.asarray(offset_b)
    worst_pos, worst_pos_frame, worst_rot, worst_rot_frame = 0.0, "", 0.0, ""
    for qa, qb in zip(configurations_a, configurations_b, strict=True):
        poses_a = relative_pose(fk_a, qa, root_a, frames)
        poses_b = relative_pose(fk_b, qb, root_b, frames)
        for frame in frames:
            pose_a, pose_b = poses_a[frame], offset @ poses_b[frame]
            pos = float(np.linalg.norm(pose_a[:3, 3] - pose_b[:3, 3]))
            rot = float(np.linalg.norm(pin.log3(pose_a[:3, :3].T @ pose_b[:3, :3])))
            if pos > worst_pos:
                worst_pos, worst_pos_frame = pos, frame
            if rot > worst_rot:
                worst_rot, worst_rot_frame = rot, frame
    return worst_pos, worst_pos_frame, worst_rot, worst_rot_frame
