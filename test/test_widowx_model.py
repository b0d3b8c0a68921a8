"""The project's WidowX 250s model agrees with the vendor description, and its helpers hold.

The project ships its own urdf/wx250s.urdf (primitive geometry). Everything downstream (IK, the
executor's limits, the sim) trusts that its kinematics and limits are the vendor's, so this file
compares the two: forward kinematics of every common frame over 1,000 random configurations,
and joint by joint (type, tree, origin, axis, limits, mimic). A perturbation test shows the
comparison is sharp enough to catch a 2 mm / 2 mrad modelling error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from urdf_compare import (
    assert_joints_match,
    max_fk_errors,
    physical_inertials_total_mass,
    urdf_joints,
)

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.kinematics import ForwardKinematics
from human_video_policy.kinematics.robots import robot_forward_kinematics
from human_video_policy.robots.joint_limits import JointLimits, read_urdf_joint_limits
from human_video_policy.robots.widowx import (
    BASE_FRAME,
    EE_FRAME,
    GRIPPER_OPEN,
    HOME_POSITION,
    WIDOWX_ARM_JOINTS,
    WIDOWX_COMMAND_JOINTS,
    WIDOWX_STATE_JOINTS,
    widowx_joint_limits,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_URDF = PROJECT_ROOT / "urdf" / "wx250s.urdf"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
VENDOR_URDF = SHARED_DATA / "robots" / "wx250s_urdf" / "wx250s.urdf"

POSITION_TOLERANCE_M = 1e-3
ROTATION_TOLERANCE_RAD = 1e-3
N_CONFIGURATIONS = 1000
SEED = 250
# Every independent joint, so the motor prop ("gripper", continuous) is exercised too.
FK_INPUTS = (*WIDOWX_ARM_JOINTS, "gripper", "left_finger")
REQUIRED_FRAMES = (
    "wx250s/base_link",
    "wx250s/shoulder_link",
    "wx250s/upper_arm_link",
    "wx250s/upper_forearm_link",
    "wx250s/lower_forearm_link",
    "wx250s/wrist_link",
    "wx250s/gripper_link",
    "wx250s/ee_arm_link",
    "wx250s/gripper_prop_link",
    "wx250s/gripper_bar_link",
    "wx250s/fingers_link",
    "wx250s/left_finger_link",
    "wx250s/right_finger_link",
    "wx250s/ee_gripper_link",
)


def _require_vendor() -> None:
    """The comparison against the vendor model is the point of these tests: fail, never skip."""
    assert VENDOR_URDF.is_file(), (
        f"vendor reference URDF not found at {VENDOR_URDF}: the shared data folder must sit "
        "beside the checkout (../shared/data)"
    )


needs_vendor = pytest.mark.usefixtures("vendor_present")


@pytest.fixture()
def vendor_present() -> None:
    _require_vendor()


def random_configurations(n: int, seed: int) -> np.ndarray:
    """Uniform samples within the URDF limits, in FK_INPUTS order (prop angle in [-pi, pi])."""
    limits = read_urdf_joint_limits(PROJECT_URDF, (*WIDOWX_ARM_JOINTS, "left_finger"))
    lower = np.insert(limits.lower, 6, -np.pi)
    upper = np.insert(limits.upper, 6, np.pi)
    return np.random.default_rng(seed).uniform(lower, upper, size=(n, len(FK_INPUTS)))


@pytest.fixture(scope="module")
def project_fk() -> ForwardKinematics:
    return ForwardKinematics.from_urdf(PROJECT_URDF, FK_INPUTS)


@pytest.fixture(scope="module")
def vendor_fk() -> ForwardKinematics:
    _require_vendor()
    # pin.buildModelFromXML ignores meshes: the package:// paths need not resolve.
    return ForwardKinematics.from_urdf(VENDOR_URDF, FK_INPUTS)


@pytest.fixture(scope="module")
def common_frames(project_fk, vendor_fk) -> tuple[str, ...]:
    return tuple(f for f in vendor_fk.frame_names if f in set(project_fk.frame_names))


# --- the project's URDF against the vendor's --------------------------------------------------


@needs_vendor
def test_every_vendor_frame_exists_in_project_model(project_fk, vendor_fk, common_frames):
    missing = set(vendor_fk.frame_names) - set(project_fk.frame_names)
    assert not missing, f"vendor frames missing from the project's URDF: {sorted(missing)}"
    assert set(REQUIRED_FRAMES) <= set(common_frames)
    assert project_fk.model.nq == vendor_fk.model.nq
    assert list(project_fk.model.names) == list(vendor_fk.model.names)


@needs_vendor
def test_forward_kinematics_matches_vendor_on_random_configurations(
    project_fk, vendor_fk, common_frames
):
    configurations = random_configurations(N_CONFIGURATIONS, SEED)
    pos, pos_frame, rot, rot_frame = max_fk_errors(
        project_fk, vendor_fk, configurations, common_frames
    )
    print(
        f"\nmax FK error over {N_CONFIGURATIONS} configurations x {len(common_frames)} frames: "
        f"position {pos:.3e} m ({pos_frame}), rotation {rot:.3e} rad ({rot_frame})"
    )
    assert pos < POSITION_TOLERANCE_M, f"position error {pos} m at {pos_frame}"
    assert rot < ROTATION_TOLERANCE_RAD, f"rotation error {rot} rad at {rot_frame}"


def _perturb(joint: str, xyz: str | None = None, rpy: str | None = None) -> str:
    root = ET.fromstring(PROJECT_URDF.read_text())
    origin = next(j for j in root.findall("joint") if j.get("name") == joint).find("origin")
    if xyz is not None:
        origin.set("xyz", xyz)
    if rpy is not None:
        origin.set("rpy", rpy)
    return ET.tostring(root, encoding="unicode")


@needs_vendor
@pytest.mark.parametrize(
    ("joint", "xyz", "rpy", "which"),
    [
        ("elbow", "0.04975 0 0.252", None, "position"),  # upper arm 2 mm too long
        ("ee_gripper", "0.029575 0 0", None, "position"),  # tool point 2 mm off
        ("wrist_angle", None, "0 0.002 0", "rotation"),  # wrist mounted 2 mrad tilted
    ],
)
def test_comparison_detects_a_2mm_or_2mrad_error(vendor_fk, common_frames, joint, xyz, rpy, which):
    broken = ForwardKinematics.from_urdf_string(_perturb(joint, xyz, rpy), FK_INPUTS)
    pos, _, rot, _ = max_fk_errors(
        broken, vendor_fk, random_configurations(50, SEED), common_frames
    )
    if which == "position":
        assert pos > POSITION_TOLERANCE_M
    else:
        assert rot > ROTATION_TOLERANCE_RAD


@needs_vendor
def test_joints_match_vendor_one_by_one():
    assert_joints_match(PROJECT_URDF, VENDOR_URDF, dynamics=False)


@needs_vendor
def test_widowx_joint_limits_are_the_urdf_and_vendor_limits():
    limits = widowx_joint_limits()
    assert limits.names == WIDOWX_COMMAND_JOINTS
    joints = {"project": urdf_joints(PROJECT_URDF), "vendor": urdf_joints(VENDOR_URDF)}
    for source, by_name in joints.items():
        for k, name in enumerate(WIDOWX_COMMAND_JOINTS):
            limit = by_name[name].find("limit")
            assert limits.lower[k] == float(limit.get("lower")), (source, name)
            assert limits.upper[k] == float(limit.get("upper")), (source, name)
            assert limits.max_velocity[k] == float(limit.get("velocity")), (source, name)
    assert limits.lower[-1] == pytest.approx(0.015)
    assert limits.upper[-1] == pytest.approx(0.037)


# --- the project's URDF on its own ------------------------------------------------------------


def test_urdf_is_the_projects_own_with_primitive_geometry():
    text = PROJECT_URDF.read_text()
    assert "project's own robot description" in text
    assert "<mesh" not in text and "package://" not in text
    root = ET.fromstring(text)
    kinds = {g[0].tag for g in root.iter("geometry")}
    assert kinds <= {"box", "cylinder", "sphere"}, kinds


def test_urdf_inertials_are_physical():
    total = physical_inertials_total_mass(PROJECT_URDF, max_link_mass_kg=1.0)
    assert 2.0 < total < 2.5  # the real wx250s with gripper weighs about 2.2 kg


# --- robot spec -------------------------------------------------------------------------------


def test_joint_name_lists():
    assert len(WIDOWX_ARM_JOINTS) == 6
    assert (*WIDOWX_ARM_JOINTS, "left_finger") == WIDOWX_COMMAND_JOINTS
    assert (*WIDOWX_COMMAND_JOINTS, "right_finger") == WIDOWX_STATE_JOINTS
    assert BASE_FRAME == "wx250s/base_link"
    assert EE_FRAME == "wx250s/ee_gripper_link"


def test_home_position_is_a_ready_pose_above_the_table():
    assert HOME_POSITION.shape == (7,)
    assert not HOME_POSITION.flags.writeable
    assert widowx_joint_limits().contains(HOME_POSITION)
    assert HOME_POSITION[-1] == GRIPPER_OPEN
    fk = robot_forward_kinematics("widowx")
    pose = fk.frame_pose(HOME_POSITION, EE_FRAME)
    assert 0.15 < pose[0, 3] < 0.30 and abs(pose[1, 3]) < 1e-9 and 0.15 < pose[2, 3] < 0.25
    assert pose[:3, 0] @ np.array([0.0, 0.0, -1.0]) > 0.99  # tool axis (x) points down
    for frame in REQUIRED_FRAMES[1:]:
        assert fk.frame_position(HOME_POSITION, frame)[2] > 0.05, frame


# --- ForwardKinematics wrapper ----------------------------------------------------------------


def test_fk_mirrors_right_finger_and_accepts_names_or_vectors():
    fk = robot_forward_kinematics("widowx")
    assert fk.input_joints == WIDOWX_COMMAND_JOINTS
    q = np.array([0.3, -0.2, 0.5, 0.1, 0.4, -0.6, 0.03])
    left = fk.frame_pose(q, "wx250s/left_finger_link")
    right = fk.frame_pose(q, "wx250s/right_finger_link")
    fingers = fk.frame_pose(q, "wx250s/fingers_link")
    offset_left = np.linalg.inv(fingers) @ left
    offset_right = np.linalg.inv(fingers) @ right
    np.testing.assert_allclose(offset_left[:3, 3], [0.0, 0.03, 0.0], atol=1e-12)
    np.testing.assert_allclose(offset_right[:3, 3], [0.0, -0.03, 0.0], atol=1e-12)
    by_name = dict(zip(WIDOWX_COMMAND_JOINTS, q, strict=True))
    np.testing.assert_allclose(fk.frame_pose(by_name, EE_FRAME), fk.frame_pose(q, EE_FRAME))
    np.testing.assert_allclose(fk.frame_position(q, EE_FRAME), fk.frame_pose(q, EE_FRAME)[:3, 3])
    state_names = list(reversed(WIDOWX_STATE_JOINTS))  # JointState order is arbitrary
    state = [by_name.get(n, -0.03) for n in state_names]
    np.testing.assert_allclose(fk.input_vector(state_names, state), q)
    configuration = fk.configuration(q)
    assert configuration.shape == (fk.model.nq,)
    assert configuration[fk.model.joints[fk.model.getJointId("right_finger")].idx_q] == -0.03


def test_fk_rejects_bad_input():
    fk = robot_forward_kinematics("widowx")
    with pytest.raises(InputError, match="shape"):
        fk.frame_pose(np.zeros(6), EE_FRAME)
    with pytest.raises(InputError, match="finite"):
        fk.frame_pose(np.full(7, np.nan), EE_FRAME)
    with pytest.raises(InputError, match="right_finger"):
        fk.frame_pose({"right_finger": -0.02}, EE_FRAME)
    with pytest.raises(InputError, match="unknown joint"):
        fk.frame_pose({"elbo": 0.1}, EE_FRAME)
    with pytest.raises(InputError, match="missing"):
        fk.input_vector(["waist"], [0.0])
    with pytest.raises(ConfigError, match="unknown frame"):
        fk.frame_pose(HOME_POSITION, "wx250s/hand")
    with pytest.raises(ConfigError, match="mimics"):
        ForwardKinematics.from_urdf(PROJECT_URDF, ("waist", "right_finger"))


# --- JointLimits ------------------------------------------------------------------------------


def _limits(**overrides) -> JointLimits:
    fields = {
        "names": ("a", "b"),
        "lower": np.array([-1.0, 0.0]),
        "upper": np.array([1.0, 0.5]),
        "max_velocity": np.array([2.0, 1.0]),
    }
    fields.update(overrides)
    return JointLimits(**fields)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"lower": np.array([-1.0])}, "lower"),
        ({"upper": np.array([1.0, np.nan])}, "upper"),
        ({"lower": np.array([2.0, 0.0])}, "lower"),
        ({"max_velocity": np.array([2.0, 0.0])}, "max_velocity"),
        ({"max_velocity": np.array([np.inf, 1.0])}, "max_velocity"),
        ({"names": ("a", "a")}, "names"),
    ],
)
def test_joint_limits_validate_and_name_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        _limits(**overrides)


def test_joint_limits_clip_and_contains():
    limits = _limits()
    np.testing.assert_allclose(limits.clip([3.0, -1.0]), [1.0, 0.0])
    assert limits.contains([1.0, 0.5])
    assert not limits.contains([1.01, 0.5])
    assert limits.contains([1.01, 0.5], tol=0.02)
    assert not limits.contains([np.nan, 0.0])
    with pytest.raises(InputError, match="finite"):
        limits.clip([np.nan, 0.0])
    with pytest.raises(InputError, match="shape"):
        limits.clip([0.0])
    with pytest.raises(ValueError):
        limits.lower[0] = 5.0  # read-only: validated once, cannot drift
