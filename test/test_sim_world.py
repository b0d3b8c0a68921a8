"""The MuJoCo WidowX reach world: contract API, camera model, task layout, kinematics vs URDF."""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pinocchio as pin
import pytest

from human_video_policy.camera.pinhole import CameraIntrinsics
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.robots.widowx import (
    EE_FRAME,
    HOME_POSITION,
    WIDOWX_COMMAND_JOINTS,
    WIDOWX_STATE_JOINTS,
    widowx_joint_limits,
)
from human_video_policy.sim.reach_task import TARGET_HEIGHT_M, ReachTask, ReachTaskConfig
from human_video_policy.sim.widowx_world import (
    WidowXWorld,
    WidowXWorldConfig,
    default_scene_path,
)

PROJECT_URDF = Path(__file__).resolve().parents[1] / "urdf" / "wx250s.urdf"


@pytest.fixture(scope="module")
def world():
    with WidowXWorld(WidowXWorldConfig(image_width=80, image_height=60)) as w:
        yield w


def test_reset_puts_the_arm_home_at_rest(world):
    world.set_joint_command(np.array([0.5, 0, 0, 0, 0, 0, 0.02]))
    world.step(0.3)
    world.reset(3)
    assert world.time == 0.0
    assert world.joint_names == WIDOWX_COMMAND_JOINTS
    assert world.state_joint_names == WIDOWX_STATE_JOINTS
    q = world.joint_positions()
    assert q.shape == (8,) and world.joint_velocities().shape == (8,)
    np.testing.assert_allclose(q[:7], HOME_POSITION, atol=1e-9)
    assert q[7] == pytest.approx(-q[6])
    np.testing.assert_allclose(world.joint_velocities(), 0.0)
    np.testing.assert_allclose(world.joint_command(), HOME_POSITION)


def test_step_advances_whole_physics_steps(world):
    world.reset(0)
    dt = world.timestep
    assert world.step(0.1) == round(0.1 / dt)
    assert world.time == pytest.approx(0.1)
    assert world.step(0.0) == 0
    assert world.step(2.6 * dt) == 3
    assert world.time == pytest.approx(0.1 + 3 * dt)
    with pytest.raises(InputError):
        world.step(-0.1)
    with pytest.raises(InputError):
        world.step(float("nan"))


def test_position_servos_track_commands_and_clamp_to_limits(world):
    world.reset(0)
    goal = np.array([0.4, -0.2, 0.6, 0.3, 1.2, -0.5, 0.025])
    world.set_joint_command(goal)
    world.step(1.5)
    q = world.joint_positions()
    np.testing.assert_allclose(q[:6], goal[:6], atol=0.01)
    assert q[6] == pytest.approx(0.025, abs=1e-3)
    assert q[7] == pytest.approx(-0.025, abs=1e-3)  # the right finger mirrors the left
    limits = widowx_joint_limits()
    world.set_joint_command(np.array([9.0, 9.0, -9.0, 0.0, 9.0, 0.0, 1.0]))
    cmd = world.joint_command()
    assert np.all(cmd >= limits.lower - 1e-6) and np.all(cmd <= limits.upper + 1e-6)
    with pytest.raises(InputError):
        world.set_joint_command(np.full(7, np.nan))
    with pytest.raises(InputError):
        world.set_joint_command(np.zeros(6))


def test_render_shapes_and_depth(world):
    world.reset(1)
    rgb = world.render_rgb()
    depth = world.render_depth()
    assert rgb.shape == (60, 80, 3) and rgb.dtype == np.uint8
    assert depth.shape == (60, 80) and depth.dtype == np.float32
    assert np.all(np.isfinite(depth)) and depth.max() < 5.0
    seen = depth[depth > 0]  # 0 = no return (the background above the table)
    assert seen.size > 0.7 * depth.size and seen.min() > 0.2
    assert depth[0, 0] == 0.0 and depth[0, -1] == 0.0 and np.all(depth[-1] > 0.2)
    assert rgb.std() > 10  # not a blank frame


def test_intrinsics_project_the_target_onto_red_pixels_at_the_right_depth():
    with WidowXWorld(WidowXWorldConfig(image_width=160, image_height=120)) as w:
        k = w.camera_intrinsics()
        assert isinstance(k, CameraIntrinsics)
        fovy = math.radians(float(w.model.cam_fovy[w.model.camera("scene_camera").id]))
        assert k.fy == pytest.approx(60 / math.tan(fovy / 2))
        assert k.fx == pytest.approx(k.fy)
        assert (k.cx, k.cy) == (79.5, 59.5)
        assert k.frame_id == "scene_camera_optical_frame"
        pose = w.camera_pose()
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
        for seed in (0, 5, 11):
            w.reset(seed)
            rgb = w.render_rgb().astype(int)
            red = (rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
            assert red.sum() > 10
            # The visible red blob's centroid sits near the projected centre of the cylinder.
            centre = w.target_position() - [0.0, 0.0, TARGET_HEIGHT_M / 2]
            u, v = w.project(centre)
            rows, cols = np.nonzero(red)
            assert abs(cols.mean() - u) < 2.0 and abs(rows.mean() - v) < 2.5
            # Depth at the projected top point equals its optical-frame z.
            top = w.target_position()
            p_cam = pose[:3, :3].T @ (top - pose[:3, 3])
            u, v = w.project(top)
            depth = w.render_depth()
            assert depth[round(v), round(u)] == pytest.approx(p_cam[2], abs=0.01)


def test_targets_land_in_the_region_and_are_seeded():
    cfg = ReachTaskConfig()
    task = ReachTask(cfg)
    targets = []
    for seed in range(300):
        layout = task.sample_layout(np.random.default_rng(seed))
        x, y, z = layout.target_base
        assert cfg.x_range[0] <= x <= cfg.x_range[1] and cfg.y_range[0] <= y <= cfg.y_range[1]
        assert z == 0.0
        objects = np.vstack([layout.target_base, layout.distractor_bases])
        assert len(objects) == 1 + cfg.num_distractors
        gaps = [np.linalg.norm(a - b) for i, a in enumerate(objects) for b in objects[i + 1 :]]
        assert min(gaps) >= cfg.min_spacing
        targets.append(layout.target_base[:2])
    targets = np.array(targets)
    # Uniform: both halves of each range get a fair share.
    assert 0.35 < np.mean(targets[:, 0] < np.mean(cfg.x_range)) < 0.65
    assert 0.35 < np.mean(targets[:, 1] < 0.0) < 0.65
    a = task.sample_layout(np.random.default_rng(7)).target_base
    b = task.sample_layout(np.random.default_rng(7)).target_base
    np.testing.assert_array_equal(a, b)


def test_world_places_objects_and_judges_success(world):
    world.reset(4)
    first = world.target_position().copy()
    assert first[2] == pytest.approx(TARGET_HEIGHT_M)
    assert world.distractor_positions().shape == (2, 3)
    assert not world.success()
    world.reset(5)
    assert not np.allclose(first, world.target_position())
    world.reset(4)
    np.testing.assert_array_equal(first, world.target_position())
    # Move the end effector onto the goal by hand: success.
    site = world.model.site("ee_site").id
    assert world.success() is False
    world.data.site_xpos[site] = world.target_position() + np.array([0.0, 0.0, 0.02])
    assert world.success() is True
    world.data.site_xpos[site] = world.target_position() + np.array([0.0, 0.0, 0.035])
    assert world.success() is False
    with pytest.raises(InputError):
        world.reset(-1)


def test_config_is_validated():
    with pytest.raises(ConfigError):
        WidowXWorldConfig(image_width=0)
    with pytest.raises(ConfigError):
        WidowXWorldConfig(image_height=5000)
    with pytest.raises(ConfigError):
        WidowXWorldConfig(home_position=(0.0, 1.0))
    with pytest.raises(ConfigError):
        WidowXWorldConfig(scene_path="/nonexistent/scene.xml")
    with pytest.raises(ConfigError):
        WidowXWorldConfig(camera_name="")
    with pytest.raises(ConfigError):
        ReachTaskConfig(x_range=(0.4, 0.2))
    with pytest.raises(ConfigError):
        ReachTaskConfig(success_radius=0.0)
    with pytest.raises(ConfigError):
        ReachTaskConfig(num_distractors=3)
    with pytest.raises(ConfigError):
        WidowXWorld(WidowXWorldConfig(camera_name="no_such_camera"))


def test_mjcf_kinematics_match_the_project_urdf():
    """ee_site and the finger bodies vs pinocchio FK of urdf/wx250s.urdf (< 1 mm, < 1 mrad)."""
    m = mujoco.MjModel.from_xml_path(str(default_scene_path()))
    d = mujoco.MjData(m)
    urdf = pin.buildModelFromUrdf(str(PROJECT_URDF))
    data = urdf.createData()
    ee_frame = urdf.getFrameId(EE_FRAME)
    finger_frame = urdf.getFrameId("wx250s/left_finger_link")
    limits = widowx_joint_limits()
    rng = np.random.default_rng(0)
    worst_pos = worst_rot = 0.0
    for _ in range(200):
        q7 = rng.uniform(limits.lower, limits.upper)
        q8 = np.concatenate([q7, [-q7[6]]])
        for name, value in zip(WIDOWX_STATE_JOINTS, q8, strict=True):
            d.qpos[m.jnt_qposadr[m.joint(name).id]] = value
        mujoco.mj_kinematics(m, d)
        q = pin.neutral(urdf)
        for name, value in zip(WIDOWX_STATE_JOINTS, q8, strict=True):
            q[urdf.idx_qs[urdf.getJointId(name)]] = value
        pin.framesForwardKinematics(urdf, data, q)
        ee = data.oMf[ee_frame]
        worst_pos = max(worst_pos, np.linalg.norm(d.site("ee_site").xpos - ee.translation))
        rot_err = pin.log3(d.site("ee_site").xmat.reshape(3, 3).T @ ee.rotation)
        worst_rot = max(worst_rot, np.linalg.norm(rot_err))
        finger = data.oMf[finger_frame].translation
        worst_pos = max(worst_pos, np.linalg.norm(d.body("wx250s/left_finger_link").xpos - finger))
    assert worst_pos < 1e-3, f"MJCF vs URDF position error {worst_pos * 1e3:.3f} mm"
    assert worst_rot < 1e-3, f"MJCF vs URDF rotation error {worst_rot:.2e} rad"


def test_mjcf_limits_match_the_project_urdf():
    m = mujoco.MjModel.from_xml_path(str(default_scene_path()))
    limits = widowx_joint_limits()
    for i, name in enumerate(WIDOWX_COMMAND_JOINTS):
        np.testing.assert_allclose(
            m.joint(name).range, [limits.lower[i], limits.upper[i]], atol=1e-6, err_msg=name
        )
    np.testing.assert_allclose(m.joint("right_finger").range, [-0.037, -0.015])
