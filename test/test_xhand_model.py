"""The project's XHand (right hand) model agrees with the vendor description, and its spec holds.

The project ships its own urdf/xhand_right.urdf (primitive geometry). Retargeting, the executor's
limits and the sim trust that its kinematics and limits are the vendor's, so this file compares
the two: forward kinematics of every common frame over 1,000 random configurations, and joint by
joint (type, tree, origin, axis, limits, dynamics, mimic). Perturbation tests show the comparison
catches a 2 mm / 2 mrad modelling error. The vendor reference must be present: missing, the
tests fail (they never skip).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest
from urdf_compare import (
    assert_joints_match,
    max_fk_errors,
    physical_inertials_total_mass,
    urdf_joints,
)

from human_video_policy.kinematics import ForwardKinematics
from human_video_policy.kinematics.robots import robot_forward_kinematics
from human_video_policy.robots.xhand import (
    EE_FRAME,
    FINGER_JOINTS,
    FINGERS,
    FINGERTIP_FRAMES,
    PALM_FRAME,
    XHAND_JOINTS,
    xhand_joint_limits,
    xhand_urdf_path,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_URDF = PROJECT_ROOT / "urdf" / "xhand_right.urdf"
VENDOR_URDF = PROJECT_ROOT.parent / "shared" / "data" / "robots" / "xhand" / "xhand_right.urdf"

POSITION_TOLERANCE_M = 1e-3
ROTATION_TOLERANCE_RAD = 1e-3
N_CONFIGURATIONS = 1000
SEED = 12


def _require_vendor() -> None:
    """The comparison against the vendor model is the point of these tests: fail, never skip."""
    assert VENDOR_URDF.is_file(), (
        f"vendor reference URDF not found at {VENDOR_URDF}: the shared data folder must sit "
        "beside the checkout (../shared/data/robots/xhand/xhand_right.urdf)"
    )


@pytest.fixture(scope="module")
def vendor_urdf() -> Path:
    _require_vendor()
    return VENDOR_URDF


def random_configurations(n: int, seed: int) -> np.ndarray:
    """Uniform samples within the project URDF's limits, in XHAND_JOINTS order."""
    limits = xhand_joint_limits()
    return np.random.default_rng(seed).uniform(limits.lower, limits.upper, size=(n, 12))


@pytest.fixture(scope="module")
def project_fk() -> ForwardKinematics:
    return robot_forward_kinematics("xhand")


@pytest.fixture(scope="module")
def vendor_fk(vendor_urdf) -> ForwardKinematics:
    # pin.buildModelFromXML ignores meshes: the mesh paths need not resolve.
    return ForwardKinematics.from_urdf(vendor_urdf, XHAND_JOINTS)


@pytest.fixture(scope="module")
def common_frames(project_fk, vendor_fk) -> tuple[str, ...]:
    return tuple(f for f in vendor_fk.frame_names if f in set(project_fk.frame_names))


# --- the project's URDF against the vendor's --------------------------------------------------


def test_every_vendor_frame_exists_in_project_model(project_fk, vendor_fk, common_frames):
    missing = set(vendor_fk.frame_names) - set(project_fk.frame_names)
    assert not missing, f"vendor frames missing from the project's URDF: {sorted(missing)}"
    required = {PALM_FRAME, EE_FRAME, *FINGERTIP_FRAMES.values()}
    assert required <= set(common_frames)
    assert len(common_frames) == len(vendor_fk.frame_names) > 30
    assert project_fk.model.nq == vendor_fk.model.nq == 12
    assert list(project_fk.model.names) == list(vendor_fk.model.names)


def test_forward_kinematics_matches_vendor_on_random_configurations(
    project_fk, vendor_fk, common_frames
):
    configurations = random_configurations(N_CONFIGURATIONS, SEED)
    limits = xhand_joint_limits()
    assert all(limits.contains(q) for q in configurations)
    pos, pos_frame, rot, rot_frame = max_fk_errors(
        project_fk, vendor_fk, configurations, common_frames
    )
    print(f"max FK error: {pos * 1e3:.3g} mm at {pos_frame}, {rot * 1e3:.3g} mrad at {rot_frame}")
    assert pos < POSITION_TOLERANCE_M, f"position error {pos * 1e3:.3f} mm at {pos_frame}"
    assert rot < ROTATION_TOLERANCE_RAD, f"rotation error {rot * 1e3:.3f} mrad at {rot_frame}"


def _perturb(joint: str, xyz: str | None = None, rpy: str | None = None) -> str:
    root = ET.fromstring(PROJECT_URDF.read_text())
    origin = next(j for j in root.findall("joint") if j.get("name") == joint).find("origin")
    if xyz is not None:
        origin.set("xyz", xyz)
    if rpy is not None:
        origin.set("rpy", rpy)
    return ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize(
    ("joint", "xyz", "rpy", "which"),
    [
        ("right_hand_mid_joint2", "0 0 -0.0578", None, "position"),  # middle finger 2 mm long
        ("right_hand_thumb_rota_joint2", "0.0553 0.002 0", None, "position"),  # thumb 2 mm off
        ("right_hand_pinky_joint3", "0 0 -0.0445", None, "position"),  # fixed tip joint 2 mm out
        ("right_hand_index_bend_joint", None, "0.002 0 0", "rotation"),  # 2 mrad tilted knuckle
    ],
)
def test_comparison_detects_a_2mm_or_2mrad_error(
    tmp_path, vendor_fk, common_frames, joint, xyz, rpy, which
):
    broken_urdf = tmp_path / "xhand_right_broken.urdf"
    broken_urdf.write_text(_perturb(joint, xyz, rpy))
    broken = ForwardKinematics.from_urdf(broken_urdf, XHAND_JOINTS)
    pos, _, rot, _ = max_fk_errors(
        broken, vendor_fk, random_configurations(50, SEED), common_frames
    )
    if which == "position":
        assert pos > POSITION_TOLERANCE_M, f"a 2 mm error in {joint} went unnoticed"
    else:
        assert rot > ROTATION_TOLERANCE_RAD, f"a 2 mrad error in {joint} went unnoticed"


def test_joints_match_vendor_one_by_one(vendor_urdf):
    assert_joints_match(PROJECT_URDF, vendor_urdf, dynamics=True)


def test_vendor_model_has_no_mimic_joints_so_all_12_are_inputs(vendor_urdf, vendor_fk):
    # If a future vendor model couples joints (<mimic>), XHAND_JOINTS and these tests must change.
    assert not vendor_fk.mimic_joints
    assert "<mimic" not in vendor_urdf.read_text()
    assert "<mimic" not in PROJECT_URDF.read_text()
    assert not robot_forward_kinematics("xhand").mimic_joints


def test_joint_order_is_the_vendor_declaration_order(vendor_urdf, project_fk):
    for path in (vendor_urdf, PROJECT_URDF):
        declared = [
            j.get("name")
            for j in ET.fromstring(path.read_text()).findall("joint")
            if j.get("type") != "fixed"
        ]
        assert tuple(declared) == XHAND_JOINTS, path
    pinocchio_order = tuple(project_fk.model.names[1:])
    assert set(pinocchio_order) == set(XHAND_JOINTS)
    assert pinocchio_order != XHAND_JOINTS  # why FK maps by name (see robots/xhand.py)
    assert pinocchio_order[0] == "right_hand_index_bend_joint"
    assert pinocchio_order[-1] == "right_hand_thumb_rota_joint2"


def test_xhand_joint_limits_are_the_urdf_and_vendor_limits(vendor_urdf):
    limits = xhand_joint_limits()
    assert limits.names == XHAND_JOINTS
    joints = {"project": urdf_joints(PROJECT_URDF), "vendor": urdf_joints(vendor_urdf)}
    for source, by_name in joints.items():
        for k, name in enumerate(XHAND_JOINTS):
            limit = by_name[name].find("limit")
            assert limits.lower[k] == float(limit.get("lower")), (source, name)
            assert limits.upper[k] == float(limit.get("upper")), (source, name)
            assert limits.max_velocity[k] == float(limit.get("velocity")), (source, name)
    index_spread = XHAND_JOINTS.index("right_hand_index_bend_joint")
    assert (limits.lower[index_spread], limits.upper[index_spread]) == (-0.175, 0.175)


# --- the project's URDF on its own ------------------------------------------------------------


def test_urdf_is_the_projects_own_with_primitive_geometry():
    assert xhand_urdf_path().resolve() == PROJECT_URDF.resolve()
    text = PROJECT_URDF.read_text()
    assert "project's own robot description" in text
    assert "<mesh" not in text and "package://" not in text and ".STL" not in text
    root = ET.fromstring(text)
    kinds = {g[0].tag for g in root.iter("geometry")}
    assert kinds <= {"box", "cylinder", "sphere"}, kinds
    links = {link.get("name"): link for link in root.iter("link")}
    with_geometry = {name for name, link in links.items() if link.find("visual") is not None}
    assert len(links) == 19 and len(with_geometry) == 13  # palm + 12 moving; not the 6 frames


def test_urdf_inertials_are_physical():
    total = physical_inertials_total_mass(PROJECT_URDF, max_link_mass_kg=0.6)
    assert 1.0 < total < 1.25  # vendor link masses add up to about 1.12 kg


def test_urdf_loads_in_mujoco_with_the_same_kinematics(project_fk):
    model = mujoco.MjModel.from_xml_path(str(PROJECT_URDF))
    data = mujoco.MjData(model)
    assert model.nq == model.nv == model.nu + 12 == 12
    names = [model.joint(i).name for i in range(model.njnt)]
    assert set(names) == set(XHAND_JOINTS)
    limits = xhand_joint_limits()
    ranges = np.array([model.joint(name).range for name in XHAND_JOINTS])
    np.testing.assert_allclose(ranges, np.column_stack([limits.lower, limits.upper]))
    assert 1.0 < model.body_mass.sum() < 1.25
    # The tip bodies survive (fusestatic off) and sit where pinocchio puts them.
    qadr = [model.joint(n).qposadr[0] for n in XHAND_JOINTS]
    for q in random_configurations(20, SEED + 1):
        data.qpos[qadr] = q
        mujoco.mj_kinematics(model, data)
        poses = project_fk.frame_poses(q, list(FINGERTIP_FRAMES.values()))
        for frame, pose in poses.items():
            body = data.body(frame)
            np.testing.assert_allclose(body.xpos, pose[:3, 3], atol=1e-9, err_msg=frame)
            np.testing.assert_allclose(
                body.xmat.reshape(3, 3), pose[:3, :3], atol=1e-9, err_msg=frame
            )


def test_sim_servo_settings_are_the_scene_hands() -> None:
    """SIM_SERVO_KP and SIM_JOINT_DYNAMICS (the hand controller's sim hand) equal the "hand"
    class of mjcf/rm75_xhand_scene.xml, so both simulated XHands move alike."""
    from human_video_policy.robots.xhand import SIM_JOINT_DYNAMICS, SIM_SERVO_KP

    scene = mujoco.MjModel.from_xml_path(str(PROJECT_ROOT / "mjcf" / "rm75_xhand_scene.xml"))
    for name in XHAND_JOINTS:
        dof = scene.joint(name).dofadr[0]
        dynamics = (scene.dof_damping[dof], scene.dof_frictionloss[dof], scene.dof_armature[dof])
        np.testing.assert_allclose(dynamics, SIM_JOINT_DYNAMICS, err_msg=name)
        assert scene.actuator(name).gainprm[0] == SIM_SERVO_KP, name


# --- robot spec -------------------------------------------------------------------------------


def test_joint_and_frame_name_lists():
    assert len(XHAND_JOINTS) == len(set(XHAND_JOINTS)) == 12
    assert FINGERS == ("thumb", "index", "middle", "ring", "pinky")
    assert tuple(FINGER_JOINTS) == FINGERS == tuple(FINGERTIP_FRAMES)
    assert sum(FINGER_JOINTS.values(), ()) == XHAND_JOINTS
    assert PALM_FRAME == "right_hand_link"
    # Each tip hangs (through fixed joints) below the last joint of its own finger.
    joints = urdf_joints(PROJECT_URDF)
    child_of = {j.find("child").get("link"): j for j in joints.values()}
    for finger, tip in FINGERTIP_FRAMES.items():
        fixed = child_of[tip]
        assert fixed.get("type") == "fixed", tip
        parent = fixed.find("parent").get("link")
        assert child_of[parent].get("name") == FINGER_JOINTS[finger][-1], tip


def test_open_hand_follows_the_frame_convention(project_fk):
    """Zero pose (open hand): fingers along -Z, thumb on the +X side, index before pinky."""
    tips = {f: project_fk.frame_position(np.zeros(12), FINGERTIP_FRAMES[f]) for f in FINGERS}
    for finger in ("index", "middle", "ring", "pinky"):
        assert tips[finger][2] < -0.18, finger  # ~19-21 cm from the wrist flange
    assert tips["middle"][2] < tips["index"][2]  # the middle finger is the longest
    assert tips["thumb"][0] > tips["index"][0] > tips["middle"][0] > tips["ring"][0]
    assert tips["ring"][0] > tips["pinky"][0]
    ee = project_fk.frame_position(np.zeros(12), EE_FRAME)
    np.testing.assert_allclose(ee, [0.0, 0.0, -0.065], atol=1e-12)


def test_closing_a_finger_curls_it_towards_the_palm_normal(project_fk):
    """Flexion (positive joint1/joint2) moves the tips towards +Y, the palm side."""
    open_hand = np.zeros(12)
    for finger in ("index", "middle", "ring", "pinky"):
        closed = open_hand.copy()
        for name in FINGER_JOINTS[finger][-2:]:
            closed[XHAND_JOINTS.index(name)] = 1.2
        before = project_fk.frame_position(open_hand, FINGERTIP_FRAMES[finger])
        after = project_fk.frame_position(closed, FINGERTIP_FRAMES[finger])
        assert after[1] - before[1] > 0.05, finger
        assert after[2] > before[2] + 0.05, finger
