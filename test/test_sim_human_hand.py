"""The simulated human hand (mjcf/hands/human_hand_right.xml, sim/human_hand.py): keypoints sit
on the geometry and on the hand's pixels, postures move the right joints (as the project's own
keypoint joint angles measure them), joint ranges hold, the wrist pose lands where asked and
the hand goes into task scenes beside a robot."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.joint_angles import MANO_JOINT_NAMES, joint_angles
from human_video_policy.hands.keypoints import FINGER_CHAINS, MIDDLE_MCP, WRIST
from human_video_policy.hands.rotations import matrix_from_axis_angle
from human_video_policy.hands.wrist_pose import wrist_pose_from_keypoints
from human_video_policy.sim.human_hand import (
    FINGERS,
    JOINT_NAMES,
    POSTURES,
    HumanHand,
    HumanHandWorld,
    add_human_hand,
    demo_world,
    grasp_aperture_range,
    grasp_posture,
    hand_frame,
    tip_aperture,
)
from human_video_policy.sim.scene import compose_scene, scene_robot

PALM = (WRIST, 5, 9, 13, 17)
TIPS = {finger: chain[-1] for finger, chain in FINGER_CHAINS.items()}


@pytest.fixture(scope="module")
def world():
    w = demo_world((320, 240))
    yield w
    w.close()


def _postures() -> dict[str, np.ndarray]:
    return {**{n: f() for n, f in POSTURES.items()}, "grasp": grasp_posture(0.05)}


def _geom_end(model: mujoco.MjModel, data: mujoco.MjData, geom: str) -> np.ndarray:
    """The end of a capsule's surface along its axis that lies away from its body's joint."""
    g = model.geom(geom).id
    radius, half = model.geom_size[g][:2]
    axis = data.geom_xmat[g].reshape(3, 3)[:, 2] * (half + radius)
    ends = data.geom_xpos[g] + axis, data.geom_xpos[g] - axis
    joint = data.xpos[model.geom_bodyid[g]]
    return max(ends, key=lambda e: float(np.linalg.norm(e - joint)))


def _skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels: the hand's red/green ratio (~1.4 lit or shaded) is well above the
    table's and the backdrop's (<= 1.17)."""
    f = rgb.astype(np.float64) + 1.0
    return (f[..., 0] / f[..., 1] > 1.28) & (f[..., 1] / f[..., 2] > 1.1) & (rgb[..., 0] > 40)


def _skin_hits(mask: np.ndarray, pixels: np.ndarray, radius: int = 3) -> int:
    """How many pixels have a skin pixel within ``radius`` px."""
    h = mask.shape[0]
    hits = 0
    for u, v in np.round(pixels).astype(int):
        window = mask[
            max(v - radius, 0) : min(v + radius + 1, h), max(u - radius, 0) : u + radius + 1
        ]
        hits += bool(window.any())
    return hits


# -- the model ----------------------------------------------------------------------------------
def test_model_has_manos_joints_in_the_documented_order_with_adult_proportions(world) -> None:
    m, hand = world.model, world.hand
    assert len(JOINT_NAMES) == 21 and len(set(JOINT_NAMES)) == 21
    assert [m.joint(i).name for i in range(m.njnt)] == [f"hand/{n}" for n in JOINT_NAMES]
    assert [m.actuator(i).name for i in range(m.nu)] == [f"hand/{n}" for n in JOINT_NAMES]
    # thumb CMC 3 + MCP + IP; fingers MCP 2 + PIP + DIP
    assert sum(n.startswith("thumb_cmc") for n in JOINT_NAMES) == 3
    for finger in FINGERS[1:]:
        assert [n for n in JOINT_NAMES if n.startswith(finger)] == [
            f"{finger}_{j}" for j in ("mcp_abd", "mcp_flex", "pip", "dip")
        ]
    hand.set_wrist_pose(np.zeros(3), np.eye(3))
    hand.open()
    kp = hand.keypoints()
    assert 0.18 <= np.linalg.norm(kp[12] - kp[0]) <= 0.195  # wrist to middle tip
    # palm breadth across the knuckles: the metacarpal capsules end at the MCP keypoints
    breadth = (kp[17, 1] + m.geom("hand/metacarpal_pinky").size[0]) - (
        kp[5, 1] - m.geom("hand/metacarpal_index").size[0]
    )
    assert 0.088 <= breadth <= 0.10
    # actuators drive within the joint ranges
    assert np.allclose(m.actuator_ctrlrange[hand.actuator_index], hand.ranges)


def test_keypoints_are_at_the_joint_centres_and_the_fingertip_ends(world) -> None:
    m, d, hand = world.model, world.data, world.hand
    hand.set_wrist_pose([0.3, 0.05, 0.2], matrix_from_axis_angle([0.4, -0.7, 1.1]))
    for name, q in _postures().items():
        hand.set_posture(q)
        kp = hand.keypoints()
        for finger in FINGERS:
            tip = TIPS[finger]
            end = _geom_end(m, d, f"hand/{finger}_distal")
            assert np.linalg.norm(kp[tip] - end) < 1e-9, (name, finger)
        # joint keypoints = the anchors of the joints they stand for
        joints = {1: "thumb_cmc_flex", 2: "thumb_mcp", 3: "thumb_ip"}
        for finger, chain in list(FINGER_CHAINS.items())[1:]:
            names = (f"{finger}_mcp_flex", f"{finger}_pip", f"{finger}_dip")
            joints.update(zip(chain[1:4], names, strict=True))
        for k, joint in joints.items():
            assert np.linalg.norm(kp[k] - d.xanchor[m.joint(f"hand/{joint}").id]) < 1e-9, (name, k)
        p, _ = hand.wrist_pose()
        assert np.linalg.norm(kp[WRIST] - p) < 1e-12


def test_projected_keypoints_land_on_skin_coloured_pixels(world) -> None:
    hand = world.hand
    p, R = hand.wrist_pose()
    results = {}
    try:
        for name in ("grasp", "open", "fist"):
            hand.set_posture(_postures()[name])
            pixels = world.keypoints_px()
            mask = _skin_mask(world.render_rgb())
            results[name] = _skin_hits(mask, pixels)
            # the colour test is not trivially true: the hand moved away leaves them on the table
            hand.set_wrist_pose(p + np.array([0.0, -0.2, 0.0]), R)
            assert _skin_hits(_skin_mask(world.render_rgb()), pixels) <= 2, name
            hand.set_wrist_pose(p, R)
    finally:
        hand.set_wrist_pose(p, R)
    assert all(hits >= 19 for hits in results.values()), results


# -- postures -----------------------------------------------------------------------------------
def test_fist_brings_every_fingertip_to_the_palm_and_open_spreads_them(world) -> None:
    hand = world.hand

    def tip_to_palm() -> np.ndarray:
        kp = hand.keypoints()
        centre = kp[list(PALM)].mean(axis=0)
        return np.array([np.linalg.norm(kp[TIPS[f]] - centre) for f in FINGERS])

    hand.open()
    opened = tip_to_palm()
    hand.fist()
    fist = tip_to_palm()
    assert np.all(fist < opened - 0.03), (opened, fist)
    assert np.all(fist < 0.07)


def test_postures_move_the_joints_that_the_keypoint_angles_measure(world) -> None:
    """The project's keypoint joint angles (hands/joint_angles.py) read back the finger joints'
    flexion: the sim hand's joint signs and keypoints agree with the stack's conventions."""
    hand = world.hand
    mano = {name: i for i, name in enumerate(MANO_JOINT_NAMES)}
    for name, q in _postures().items():
        hand.set_posture(q)
        angles = joint_angles(hand.keypoints(), "right")
        for finger in FINGERS[1:]:
            for k, joint in enumerate(("mcp_flex", "pip", "dip")):
                measured = angles[mano[f"{finger}{k + 1}"], 0]
                expected = q[JOINT_NAMES.index(f"{finger}_{joint}")]
                assert abs(measured - expected) < np.radians(4.0), (name, finger, joint)
    fist = POSTURES["fist"]()
    flexion = [i for i, n in enumerate(JOINT_NAMES) if n.endswith(("_flex", "_pip", "_dip"))]
    assert np.all(fist[flexion] > 0.4)
    abduction = [i for i, n in enumerate(JOINT_NAMES) if n.endswith("_mcp_abd")]
    assert np.all(fist[abduction] == 0.0)


def test_pinch_and_grasp_set_the_thumb_to_index_distance(world) -> None:
    hand = world.hand
    hand.pinch()
    kp = hand.keypoints()
    assert np.linalg.norm(kp[4] - kp[8]) < 0.015  # pulps touching: tips ~ 1 cm apart
    closed, opened = grasp_aperture_range()
    assert closed < 0.015 and opened > 0.09
    for aperture in (0.02, 0.045, 0.08):
        hand.grasp(aperture)
        kp = hand.keypoints()
        assert abs(np.linalg.norm(kp[4] - kp[8]) - aperture) < 5e-4
        assert abs(tip_aperture(hand.posture()) - aperture) < 5e-4
    for bad in (0.2, -0.01, float("nan")):
        with pytest.raises(InputError, match="grasp aperture"):
            grasp_posture(bad)


def test_joint_ranges_are_realistic_and_enforced(world) -> None:
    hand = world.hand
    ranges = dict(zip(JOINT_NAMES, hand.ranges, strict=True))
    for finger in FINGERS[1:]:
        assert np.radians(80) <= ranges[f"{finger}_mcp_flex"][1] <= np.radians(100)
        assert np.radians(100) <= ranges[f"{finger}_pip"][1] <= np.radians(115)
        assert np.radians(70) <= ranges[f"{finger}_dip"][1] <= np.radians(90)
        assert np.radians(15) <= -ranges[f"{finger}_mcp_abd"][0] <= np.radians(30)
    q = np.zeros(21)
    q[JOINT_NAMES.index("index_pip")] = 2.5
    with pytest.raises(InputError, match=r"index_pip=2\.5000 rad is outside its range"):
        hand.set_posture(q)
    with pytest.raises(InputError, match="thumb_ip"):
        hand.set_posture({"thumb_ip": -1.0})
    set_q = hand.set_posture(q, clip=True)
    assert set_q[JOINT_NAMES.index("index_pip")] == pytest.approx(hand.ranges[7, 1])
    assert hand.posture()[7] == pytest.approx(hand.ranges[7, 1])
    with pytest.raises(InputError, match="unknown hand joint"):
        hand.set_posture({"index_knuckle": 0.1})
    with pytest.raises(InputError, match="shape"):
        hand.set_posture(np.zeros(20))
    # physics keeps them: stepping with the targets at the limits stays inside the ranges
    world.step(0.2)
    assert np.all(hand.posture() <= hand.ranges[:, 1] + 0.02)
    assert np.all(hand.posture() >= hand.ranges[:, 0] - 0.02)


# -- the wrist ----------------------------------------------------------------------------------
def test_wrist_pose_puts_the_wrist_keypoint_and_the_hand_frame_where_asked(world) -> None:
    hand = world.hand
    rng = np.random.default_rng(7)
    for _ in range(5):
        position = rng.uniform([0.1, -0.2, 0.05], [0.4, 0.2, 0.3])
        rotation = matrix_from_axis_angle(rng.normal(size=3))
        hand.set_wrist_pose(position, rotation)
        for q in _postures().values():
            hand.set_posture(q)
            kp = hand.keypoints()
            assert np.linalg.norm(kp[WRIST] - position) < 1e-3
            middle = kp[MIDDLE_MCP] - kp[WRIST]
            assert np.allclose(middle / np.linalg.norm(middle), rotation[:, 0], atol=1e-6)
            # the hand frame is the stack's method A wrist frame in every posture
            R, p = wrist_pose_from_keypoints(kp, "right")
            assert np.allclose(R, rotation, atol=1e-6) and np.allclose(p, position, atol=1e-9)
    with pytest.raises(InputError, match="not a rotation"):
        hand.set_wrist_pose(np.zeros(3), np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(InputError, match="wrist position"):
        hand.set_wrist_pose([0.0, 0.0], np.eye(3))


def test_hand_frame_aims_the_fingers_and_the_palm() -> None:
    R = hand_frame([1.0, 0.0, 0.0], [0.3, 0.0, -1.0])
    assert np.allclose(R[:, 0], [1, 0, 0]) and np.allclose(R[:, 2], [0, 0, -1])
    assert np.allclose(R[:, 1], [0, -1, 0])  # right hand palm down: the pinky to the right
    with pytest.raises(InputError, match="parallel"):
        hand_frame([0, 0, 1], [0, 0, 2])


def test_posture_holds_under_physics_and_follows_joint_commands(world) -> None:
    hand = world.hand
    hand.set_wrist_pose([0.3, 0.0, 0.2], hand_frame([1, 0, 0], [0, 0, -1]))
    hand.grasp(0.05)
    before = hand.keypoints()
    world.step(0.5)
    assert np.abs(hand.keypoints() - before).max() < 2e-3
    world.set_joint_command(POSTURES["fist"]())
    world.step(0.5)
    assert np.abs(hand.posture() - POSTURES["fist"]()).max() < 0.03


# -- scenes -------------------------------------------------------------------------------------
def test_the_hand_goes_into_a_task_scene_beside_the_robot_under_its_prefix() -> None:
    robot = scene_robot("widowx")

    def two_hands(spec: mujoco.MjSpec) -> None:
        add_human_hand(spec)
        add_human_hand(spec, prefix="left_of_robot/")

    model = compose_scene(robot, two_hands).compile()
    data = mujoco.MjData(model)
    assert model.joint(robot.command_joints[0]).id >= 0  # robot names unchanged
    a, b = HumanHand(model, data), HumanHand(model, data, prefix="left_of_robot/")
    a.set_wrist_pose([0.3, 0.1, 0.2], np.eye(3))
    b.set_wrist_pose([0.3, -0.1, 0.2], np.eye(3))
    a.fist()
    assert np.allclose(a.keypoints()[0], [0.3, 0.1, 0.2])
    assert np.allclose(b.keypoints()[0], [0.3, -0.1, 0.2])
    assert not np.allclose(a.posture(), b.posture())
    with pytest.raises(ConfigError, match="no human hand with prefix"):
        HumanHand(model, data, prefix="nobody/")
    with pytest.raises(ConfigError, match="prefix"):
        add_human_hand(mujoco.MjSpec(), prefix="")


def test_hand_world_renders_the_robot_camera_view() -> None:
    with HumanHandWorld((64, 48)) as w:
        robot = scene_robot("widowx")
        assert np.allclose(w.model.camera("scene_camera").pos, robot.camera_pos)
        assert w.render_rgb().shape == (48, 64, 3)
        assert w.camera_intrinsics().width == 64
        assert w.keypoints_px().shape == (21, 2)
