"""The project's RM75 + XHand model agrees with the vendor descriptions, in pinocchio and MuJoCo.

The project ships urdf/rm75_xhand_right.urdf (RM75 arm + XHand right hand on a configurable
mount), urdf/rm75.urdf (the arm alone) and mjcf/rm75_xhand_scene.xml. IK, the executor's limits
and the sim trust that their kinematics and limits are the vendor's, so this file compares:
arm frames with the vendor RM75 URDF, hand frames (in the flange frame, through the documented
default mount) with the vendor XHand URDF, both over 1,000 random configurations within
1 mm / 1 mrad; joint by joint (type, tree, origin, axis, limits); and MuJoCo's forward kinematics
with pinocchio's over 200 configurations. Perturbation tests show the comparisons catch a 2 mm /
2 mrad error in an arm joint or in the mount. The vendor references must be present: missing,
the tests fail (they never skip).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest
from urdf_compare import (
    assert_joints_match,
    assert_vendor_joints_present,
    max_fk_errors,
    max_relative_fk_errors,
    urdf_joints,
)

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.kinematics import ForwardKinematics
from human_video_policy.kinematics.robots import rm75_xhand_forward_kinematics
from human_video_policy.robots.rm75 import (
    BASE_FRAME,
    DEFAULT_HAND_MOUNT,
    EE_FRAME,
    FLANGE_FRAME,
    HAND_ROOT_FRAME,
    HOME_POSITION,
    MOUNT_JOINT,
    RM75_ARM_JOINTS,
    RM75_XHAND_JOINTS,
    HandMount,
    rm75_joint_limits,
    rm75_urdf_path,
    rm75_xhand_joint_limits,
    rm75_xhand_urdf_path,
    rm75_xhand_urdf_xml,
)
from human_video_policy.robots.xhand import FINGERTIP_FRAMES, XHAND_JOINTS
from human_video_policy.sim.rm75_world import RM75World, RM75WorldConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_URDF = PROJECT_ROOT / "urdf" / "rm75_xhand_right.urdf"
ARM_URDF = PROJECT_ROOT / "urdf" / "rm75.urdf"
SCENE = PROJECT_ROOT / "mjcf" / "rm75_xhand_scene.xml"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
VENDOR_RM75 = SHARED_DATA / "robots" / "rm75" / "rm_description" / "urdf" / "rm_75.urdf"
VENDOR_XHAND = SHARED_DATA / "robots" / "xhand" / "xhand_right.urdf"

POSITION_TOLERANCE_M = 1e-3
ROTATION_TOLERANCE_RAD = 1e-3
N_CONFIGURATIONS = 1000
N_MUJOCO_CONFIGURATIONS = 200
SEED = 75
ARM = slice(0, 7)
HAND = slice(7, 19)


@pytest.fixture(scope="module")
def vendor_files() -> tuple[Path, Path]:
    """The comparison against the vendor models is the point of these tests: fail, never skip."""
    for path in (VENDOR_RM75, VENDOR_XHAND):
        assert path.is_file(), (
            f"vendor reference URDF not found at {path}: the shared data folder must sit "
            "beside the checkout (../shared/data/robots/, see ../shared/data/SOURCES.md)"
        )
    return VENDOR_RM75, VENDOR_XHAND


def random_configurations(n: int, seed: int) -> np.ndarray:
    """Uniform samples within the project URDF's limits, (n, 19) in RM75_XHAND_JOINTS order."""
    limits = rm75_xhand_joint_limits()
    return np.random.default_rng(seed).uniform(limits.lower, limits.upper, size=(n, 19))


@pytest.fixture(scope="module")
def project_fk() -> ForwardKinematics:
    return rm75_xhand_forward_kinematics()


@pytest.fixture(scope="module")
def vendor_arm_fk(vendor_files) -> ForwardKinematics:
    # pin.buildModelFromXML ignores meshes: the package:// paths need not resolve.
    return ForwardKinematics.from_urdf(vendor_files[0], RM75_ARM_JOINTS)


@pytest.fixture(scope="module")
def vendor_hand_fk(vendor_files) -> ForwardKinematics:
    return ForwardKinematics.from_urdf(vendor_files[1], XHAND_JOINTS)


@pytest.fixture(scope="module")
def configurations() -> np.ndarray:
    return random_configurations(N_CONFIGURATIONS, SEED)


def _hand_frames(vendor_hand_fk: ForwardKinematics) -> list[str]:
    return [f for f in vendor_hand_fk.frame_names if f != "universe"]


def _hand_errors(fk, vendor_hand_fk, configurations):
    """Hand frames in the flange frame: project model vs vendor XHand behind the default mount."""
    return max_relative_fk_errors(
        fk,
        FLANGE_FRAME,
        configurations,
        vendor_hand_fk,
        HAND_ROOT_FRAME,
        configurations[:, HAND],
        _hand_frames(vendor_hand_fk),
        offset_b=DEFAULT_HAND_MOUNT.transform(),
    )


# --- the project's URDFs against the vendors' ---------------------------------------------------


def test_every_vendor_frame_exists_in_project_model(project_fk, vendor_arm_fk, vendor_hand_fk):
    frames = set(project_fk.frame_names)
    for vendor in (vendor_arm_fk, vendor_hand_fk):
        missing = set(vendor.frame_names) - frames - {"universe"}
        assert not missing, f"vendor frames missing from the project's URDF: {sorted(missing)}"
    assert {BASE_FRAME, FLANGE_FRAME, HAND_ROOT_FRAME, EE_FRAME} <= frames
    assert project_fk.model.nq == 19 and vendor_arm_fk.model.nq == 7
    assert list(project_fk.model.names)[1:8] == list(RM75_ARM_JOINTS)


def test_arm_forward_kinematics_matches_vendor_rm75(project_fk, vendor_arm_fk, configurations):
    frames = [f for f in vendor_arm_fk.frame_names if f != "universe"]
    assert len(frames) >= 15  # 8 links + 7 joint frames
    assert all(rm75_xhand_joint_limits().contains(q) for q in configurations)
    pos, pos_frame, rot, rot_frame = max_relative_fk_errors(
        project_fk,
        BASE_FRAME,
        configurations,
        vendor_arm_fk,
        BASE_FRAME,
        configurations[:, ARM],
        frames,
    )
    print(
        f"arm: max FK error {pos * 1e3:.3g} mm at {pos_frame}, {rot * 1e3:.3g} mrad at {rot_frame}"
    )
    assert pos < POSITION_TOLERANCE_M, f"position error {pos * 1e3:.3f} mm at {pos_frame}"
    assert rot < ROTATION_TOLERANCE_RAD, f"rotation error {rot * 1e3:.3f} mrad at {rot_frame}"


def test_hand_forward_kinematics_matches_vendor_xhand_behind_the_mount(
    project_fk, vendor_hand_fk, configurations
):
    assert len(_hand_frames(vendor_hand_fk)) > 30
    pos, pos_frame, rot, rot_frame = _hand_errors(project_fk, vendor_hand_fk, configurations)
    print(
        f"hand: max FK error {pos * 1e3:.3g} mm at {pos_frame}, {rot * 1e3:.3g} mrad at {rot_frame}"
    )
    assert pos < POSITION_TOLERANCE_M, f"position error {pos * 1e3:.3f} mm at {pos_frame}"
    assert rot < ROTATION_TOLERANCE_RAD, f"rotation error {rot * 1e3:.3f} mrad at {rot_frame}"


def test_arm_only_urdf_matches_vendor_rm75(vendor_files, vendor_arm_fk, configurations):
    arm_fk = ForwardKinematics.from_urdf(rm75_urdf_path(), RM75_ARM_JOINTS)
    frames = [f for f in vendor_arm_fk.frame_names if f != "universe"]
    pos, pos_frame, rot, rot_frame = max_fk_errors(
        arm_fk, vendor_arm_fk, configurations[:200, ARM], frames
    )
    assert pos < POSITION_TOLERANCE_M, f"position error {pos * 1e3:.3f} mm at {pos_frame}"
    assert rot < ROTATION_TOLERANCE_RAD, f"rotation error {rot * 1e3:.3f} mrad at {rot_frame}"
    assert_joints_match(ARM_URDF, vendor_files[0], dynamics=False)


def test_joints_match_vendors_one_by_one(vendor_files):
    assert_vendor_joints_present(PROJECT_URDF, vendor_files[0], dynamics=False)
    assert_vendor_joints_present(PROJECT_URDF, vendor_files[1], dynamics=True)
    joints = urdf_joints(PROJECT_URDF)
    extra = set(joints) - set(urdf_joints(vendor_files[0])) - set(urdf_joints(vendor_files[1]))
    assert extra == {MOUNT_JOINT}
    mount = joints[MOUNT_JOINT]
    assert mount.get("type") == "fixed"
    assert mount.find("parent").get("link") == FLANGE_FRAME
    assert mount.find("child").get("link") == HAND_ROOT_FRAME


def test_arm_link_inertials_are_the_vendor_ones(vendor_files):
    def inertials(path: Path) -> dict[str, tuple[float, ...]]:
        out = {}
        for link in ET.parse(path).getroot().findall("link"):
            inertial = link.find("inertial")
            if inertial is None or not link.get("name", "").startswith(("base_link", "Link")):
                continue
            values = [float(inertial.find("mass").get("value"))]
            values += [float(v) for v in inertial.find("origin").get("xyz").split()]
            values += [float(v) for v in inertial.find("inertia").attrib.values()]
            out[link.get("name")] = tuple(values)
        return out

    vendor = inertials(vendor_files[0])
    assert len(vendor) == 8
    assert inertials(PROJECT_URDF) == vendor == inertials(ARM_URDF)


@pytest.mark.parametrize(
    ("joint", "xyz", "rpy", "which"),
    [
        ("joint3", "0 0 0.258", "-1.5708 0 0", "position"),  # upper arm 2 mm long
        ("joint6", "0 0 0", "1.5708 0.002 0", "rotation"),  # 2 mrad tilted wrist
    ],
)
def test_arm_comparison_detects_a_2mm_or_2mrad_error(
    vendor_arm_fk, configurations, joint, xyz, rpy, which
):
    root = ET.fromstring(PROJECT_URDF.read_text())
    origin = next(j for j in root.findall("joint") if j.get("name") == joint).find("origin")
    origin.set("xyz", xyz)
    origin.set("rpy", rpy)
    broken = ForwardKinematics.from_urdf_string(
        ET.tostring(root, encoding="unicode"), RM75_XHAND_JOINTS
    )
    frames = [f for f in vendor_arm_fk.frame_names if f != "universe"]
    pos, _, rot, _ = max_relative_fk_errors(
        broken,
        BASE_FRAME,
        configurations[:50],
        vendor_arm_fk,
        BASE_FRAME,
        configurations[:50, ARM],
        frames,
    )
    if which == "position":
        assert pos > POSITION_TOLERANCE_M, f"a 2 mm error in {joint} went unnoticed"
    else:
        assert rot > ROTATION_TOLERANCE_RAD, f"a 2 mrad error in {joint} went unnoticed"


# --- the mount --------------------------------------------------------------------------------


def test_urdf_mount_is_the_documented_default(project_fk):
    joint = urdf_joints(PROJECT_URDF)[MOUNT_JOINT]
    xyz = [float(v) for v in joint.find("origin").get("xyz").split()]
    rpy = [float(v) for v in joint.find("origin").get("rpy").split()]
    assert HandMount(tuple(xyz), tuple(rpy)).transform() == pytest.approx(
        DEFAULT_HAND_MOUNT.transform(), abs=1e-12
    )
    poses = project_fk.frame_poses(HOME_POSITION, [FLANGE_FRAME, HAND_ROOT_FRAME])
    flange_to_hand = np.linalg.inv(poses[FLANGE_FRAME]) @ poses[HAND_ROOT_FRAME]
    np.testing.assert_allclose(flange_to_hand, DEFAULT_HAND_MOUNT.transform(), atol=1e-12)
    # The default points the fingers out of the flange: hand -Z along flange +Z.
    np.testing.assert_allclose(flange_to_hand[:3, 2], [0.0, 0.0, -1.0], atol=1e-12)
    assert rm75_xhand_urdf_xml() == PROJECT_URDF.read_text()


@pytest.mark.parametrize(
    "mount",
    [
        HandMount(xyz=(0.0, 0.0, 0.002)),  # 2 mm thicker adapter
        HandMount(rpy=(math.pi, 0.0, 0.002)),  # 2 mrad of yaw
    ],
)
def test_a_changed_mount_is_detected(vendor_hand_fk, configurations, mount):
    moved = rm75_xhand_forward_kinematics(mount)
    pos, _, rot, _ = _hand_errors(moved, vendor_hand_fk, configurations[:50])
    assert pos > POSITION_TOLERANCE_M or rot > ROTATION_TOLERANCE_RAD
    # ... and it is the mount, nothing else: behind the new mount the hand matches again.
    pos, _, rot, _ = max_relative_fk_errors(
        moved,
        FLANGE_FRAME,
        configurations[:50],
        vendor_hand_fk,
        HAND_ROOT_FRAME,
        configurations[:50, HAND],
        _hand_frames(vendor_hand_fk),
        offset_b=mount.transform(),
    )
    assert pos < POSITION_TOLERANCE_M and rot < ROTATION_TOLERANCE_RAD


def test_adapter_plate_moves_the_ee_along_the_flange_axis(project_fk):
    thick = rm75_xhand_forward_kinematics(HandMount(xyz=(0.0, 0.0, 0.012)))
    q = random_configurations(1, SEED + 3)[0]
    before, after = project_fk.frame_pose(q, EE_FRAME), thick.frame_pose(q, EE_FRAME)
    flange_z = project_fk.frame_pose(q, FLANGE_FRAME)[:3, 2]
    np.testing.assert_allclose(after[:3, 3] - before[:3, 3], 0.012 * flange_z, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"xyz": (0.0, 0.0)}, "xyz"),
        ({"xyz": (0.0, 0.0, float("nan"))}, "xyz"),
        ({"xyz": (0.0, 0.0, 0.9)}, "0.5 m"),
        ({"rpy": "abc"}, "rpy"),
    ],
)
def test_bad_mount_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        HandMount(**kwargs)
    with pytest.raises(ConfigError, match="HandMount"):
        rm75_xhand_urdf_xml("0 0 0")  # type: ignore[arg-type]


# --- spec and geometry ------------------------------------------------------------------------


def test_joint_lists_limits_and_home(vendor_files):
    assert tuple(f"joint{i}" for i in range(1, 8)) == RM75_ARM_JOINTS
    assert (*RM75_ARM_JOINTS, *XHAND_JOINTS) == RM75_XHAND_JOINTS
    limits = rm75_joint_limits()
    vendor = urdf_joints(vendor_files[0])
    for k, name in enumerate(RM75_ARM_JOINTS):
        limit = vendor[name].find("limit")
        assert limits.lower[k] == float(limit.get("lower")), name
        assert limits.upper[k] == float(limit.get("upper")), name
        assert limits.max_velocity[k] == float(limit.get("velocity")), name
    assert (limits.lower[6], limits.upper[6]) == (-6.28, 6.28)  # joint7: two turns
    assert rm75_xhand_joint_limits().names == RM75_XHAND_JOINTS
    assert rm75_xhand_joint_limits().contains(HOME_POSITION)
    assert rm75_xhand_urdf_path().resolve() == PROJECT_URDF.resolve()


def test_home_pose_holds_the_open_hand_down_above_the_table(project_fk):
    pose = project_fk.frame_pose(HOME_POSITION, EE_FRAME)
    np.testing.assert_allclose(pose[:3, 3], [0.30, 0.0, 0.25], atol=0.01)
    palm = project_fk.frame_pose(HOME_POSITION, HAND_ROOT_FRAME)
    assert palm[2, 2] > 0.99  # hand +Z up: the fingers (-Z) point down at the table
    tips = project_fk.frame_poses(HOME_POSITION, list(FINGERTIP_FRAMES.values()))
    assert min(p[2, 3] for p in tips.values()) > 0.05  # every fingertip above the table


def test_urdfs_are_the_projects_own_with_primitive_geometry():
    for path in (PROJECT_URDF, ARM_URDF):
        text = path.read_text()
        assert "project's own robot description" in text, path
        assert "<mesh" not in text and "package://" not in text and ".STL" not in text, path
        kinds = {g[0].tag for g in ET.fromstring(text).iter("geometry")}
        assert kinds <= {"box", "cylinder", "sphere"}, path


# --- MuJoCo -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(SCENE))


def test_mujoco_scene_matches_urdf_forward_kinematics(scene, project_fk):
    data = mujoco.MjData(scene)
    qadr = [scene.joint(n).qposadr[0] for n in RM75_XHAND_JOINTS]
    bodies = {scene.body(i).name for i in range(scene.nbody)}
    frames = [f for f in project_fk.frame_names if f in bodies]
    assert {BASE_FRAME, FLANGE_FRAME, HAND_ROOT_FRAME, EE_FRAME} <= set(frames)
    assert len(frames) == 27  # 8 arm links + 19 hand links (tips and ee link kept)
    worst_pos = worst_rot = 0.0
    for q in random_configurations(N_MUJOCO_CONFIGURATIONS, SEED + 1):
        data.qpos[qadr] = q
        mujoco.mj_kinematics(scene, data)
        poses = project_fk.frame_poses(q, frames)
        for frame in frames:
            body = data.body(frame)
            worst_pos = max(worst_pos, float(np.linalg.norm(body.xpos - poses[frame][:3, 3])))
            rotation = body.xmat.reshape(3, 3).T @ poses[frame][:3, :3]
            worst_rot = max(
                worst_rot, float(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
            )
        site = data.site("ee_site")
        np.testing.assert_allclose(site.xpos, poses[EE_FRAME][:3, 3], atol=1e-9)
    print(f"MuJoCo vs URDF: {worst_pos * 1e3:.3g} mm, {worst_rot * 1e3:.3g} mrad")
    assert worst_pos < POSITION_TOLERANCE_M and worst_rot < ROTATION_TOLERANCE_RAD


def test_mujoco_actuators_follow_the_command_order_and_limits(scene):
    assert scene.nu == scene.nq == 19
    names = [scene.joint(scene.actuator_trnid[a, 0]).name for a in range(scene.nu)]
    assert tuple(names) == RM75_XHAND_JOINTS
    limits = rm75_xhand_joint_limits()
    np.testing.assert_allclose(
        scene.actuator_ctrlrange, np.column_stack([limits.lower, limits.upper])
    )
    ranges = np.array([scene.joint(n).range for n in RM75_XHAND_JOINTS])
    np.testing.assert_allclose(ranges, np.column_stack([limits.lower, limits.upper]))


# --- the sim world ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world():
    with RM75World(RM75WorldConfig(image_width=160, image_height=120)) as w:
        yield w


def test_world_starts_at_home_and_reports_the_urdf_ee_pose(world, project_fk):
    world.reset(1)
    np.testing.assert_allclose(world.joint_positions(), HOME_POSITION, atol=1e-12)
    np.testing.assert_allclose(
        world.ee_pose(), project_fk.frame_pose(HOME_POSITION, EE_FRAME), atol=1e-9
    )
    target = world.target_position()
    assert (
        0.25 <= target[0] <= 0.45 and -0.2 <= target[1] <= 0.2 and target[2] == pytest.approx(0.04)
    )


def test_world_tracks_position_commands(world, project_fk):
    world.reset(0)
    limits = rm75_xhand_joint_limits()
    command = HOME_POSITION.copy()
    command[ARM] += (0.3, -0.2, 0.3, 0.3, 0.3, -0.3, 0.5)
    command[HAND] = limits.lower[HAND] + 0.6 * (limits.upper[HAND] - limits.lower[HAND])
    world.set_joint_command(command)
    world.step(2.0)
    assert world.time == pytest.approx(2.0)
    error = np.abs(world.joint_positions() - command)
    assert error.max() < 0.01, dict(zip(RM75_XHAND_JOINTS, error.round(4), strict=True))
    assert np.abs(world.joint_velocities()).max() < 0.05
    np.testing.assert_allclose(
        world.ee_pose()[:3, 3],
        project_fk.frame_pose(world.joint_positions(), EE_FRAME)[:3, 3],
        atol=1e-9,
    )


def test_world_camera_sees_the_target_and_the_hand(world):
    world.reset(5)
    rgb, depth = world.render_rgb(), world.render_depth()
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8 and depth.shape == (120, 160)
    u, v = np.round(world.project(world.target_position() - (0.0, 0.0, 0.005))).astype(int)
    assert 0 <= u < 160 and 0 <= v < 120
    red = rgb[v, u].astype(int)
    assert red[0] > 150 and red[1] < 80 and red[2] < 80, red  # the red cube's top face
    u, v = np.round(world.project(world.ee_pose()[:3, 3])).astype(int)
    assert 0 <= u < 160 and 0 <= v < 120  # the hand is in view
    # Depth at the cube's top centre is its distance along the optical axis.
    pose = world.camera_pose()
    top = world.target_position()
    u, v = np.round(world.project(top)).astype(int)
    along_axis = (pose[:3, :3].T @ (top - pose[:3, 3]))[2]
    assert depth[v, u] == pytest.approx(along_axis, abs=0.01)


def test_world_refuses_bad_commands_and_config(world):
    with pytest.raises(InputError, match="shape"):
        world.set_joint_command(np.zeros(7))
    with pytest.raises(InputError, match="NaN"):
        world.set_joint_command(np.full(19, np.nan))
    with pytest.raises(InputError, match="seed"):
        world.reset(-1)
    with pytest.raises(ConfigError, match="home_position"):
        RM75WorldConfig(home_position=(0.0,) * 7)
    with pytest.raises(ConfigError, match="image_width"):
        RM75WorldConfig(image_width=0)
    # A command past the limits is clamped to them, never passed on.
    world.set_joint_command(np.full(19, 10.0))
    np.testing.assert_allclose(world.joint_command(), rm75_xhand_joint_limits().upper)
