"""Pinocchio IK of the RM75 + XHand EE point: accuracy, redundancy, wrap-around, refusals.

Real pinocchio on the project's URDF (no mocks). The accuracy tests use targets that are
reachable by construction (forward kinematics of configurations drawn within the limits), like
benchmarks/ik_benchmark.py, which measures the same thing at 1,000 targets with timings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.kinematics.inverse import (
    RM75_IK_CONFIG,
    IkConfig,
    IkSolver,
    camera_pose_to_base,
    pose_from_position_quaternion,
)
from human_video_policy.kinematics.robots import rm75_xhand_forward_kinematics
from human_video_policy.robots.rm75 import (
    EE_FRAME,
    HOME_ARM_POSITION,
    HOME_POSITION,
    RM75_ARM_JOINTS,
    HandMount,
)
from human_video_policy.sim.rm75_world import RM75World, RM75WorldConfig

N_TARGETS = 300


@pytest.fixture(scope="module")
def solver() -> IkSolver:
    return IkSolver.for_rm75(IkConfig(jump_dt_s=None, nullspace_gain=0.1))


def _targets(solver: IkSolver, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_TARGETS):
        q = rng.uniform(solver.lower, solver.upper)
        out.append((q, solver.forward(q)))
    return out


def _check_results(solver: IkSolver, targets, results) -> None:
    successes = [r for r in results if r.success]
    rate = len(successes) / len(results)
    assert rate >= 0.995, f"success {rate:.3%}; failures: {[r.reason for r in results][:5]}"
    for (_, T), r in zip(targets, results, strict=True):
        assert np.all(r.q >= solver.lower) and np.all(r.q <= solver.upper)
        if r.success:
            assert r.position_error_m <= 1e-3 and r.rotation_error_rad <= 1e-3
            reached = solver.forward(r.q)  # independently recomputed, not the solver's word
            assert np.linalg.norm(reached[:3, 3] - T[:3, 3]) <= 1e-3


def test_solver_uses_the_7_arm_joints_and_matches_forward_kinematics(solver):
    assert solver.joints == RM75_ARM_JOINTS and solver.ee_frame == EE_FRAME
    fk = rm75_xhand_forward_kinematics()
    q = np.array([0.3, -0.5, 0.8, 1.1, -0.4, 0.7, 2.0])
    expected = fk.frame_pose(np.concatenate([q, np.zeros(12)]), EE_FRAME)
    np.testing.assert_allclose(solver.forward(q), expected, atol=1e-12)


def test_reachable_targets_from_a_nearby_warm_start(solver):
    rng = np.random.default_rng(3)
    targets = _targets(solver, 1)
    results = []
    for q, T in targets:
        seed = np.clip(q + rng.normal(0.0, 0.1, q.shape), solver.lower, solver.upper)
        results.append(solver.solve(T, seed))
    _check_results(solver, targets, results)
    assert np.mean([r.iterations for r in results]) < 6  # a warm start converges in a few


def test_reachable_targets_from_home(solver):
    targets = _targets(solver, 2)
    results = [solver.solve(T, HOME_ARM_POSITION) for _, T in targets]
    _check_results(solver, targets, results)


def _track_loops(solver: IkSolver, loops: int) -> tuple[np.ndarray, int]:
    """Follow a 12 cm closed loop of the EE (60 targets a loop), warm-starting each solve from
    the previous answer, as ik_node does; returns (final q, failures)."""
    home = np.array(HOME_ARM_POSITION)
    start = solver.forward(home)
    q, failures = home.copy(), 0
    for k in range(loops * 60):
        a = 2.0 * math.pi * k / 60
        T = start.copy()
        T[:3, 3] += 0.12 * np.array([math.cos(a) - 1.0, math.sin(a), 0.5 * math.sin(2.0 * a)])
        r = solver.solve(T, q)
        failures += not r.success
        if r.success:
            q = np.array(r.q)
    return q, failures


def test_null_space_pull_keeps_the_redundant_dof_from_drifting():
    """Without the pull the 7th DoF drifts by radians over a few loops of a closed EE path
    (the same EE poses, an ever-different elbow); with the pull toward home the arm comes back."""
    home = np.array(HOME_ARM_POSITION)
    free_q, free_failures = _track_loops(IkSolver.for_rm75(IkConfig(nullspace_gain=0.0)), 3)
    pulled_q, pulled_failures = _track_loops(IkSolver.for_rm75(), 3)
    assert free_failures == pulled_failures == 0
    assert np.linalg.norm(free_q - home) > 1.0, free_q
    assert np.linalg.norm(pulled_q - home) < 0.3, pulled_q


def test_rest_posture_chooses_the_elbow_among_equal_poses():
    """Same target, two rest postures: the EE pose is the same, the elbow (self-motion) is not."""
    seed = np.array(HOME_ARM_POSITION)
    T = IkSolver.for_rm75().forward(seed + np.array([0.1, 0.1, 0.0, -0.1, 0.0, 0.1, 0.0]))
    results = []
    for joint3 in (-0.4, 0.4):
        rest = seed.copy()
        rest[2] = joint3
        solver = IkSolver.for_rm75(
            IkConfig(jump_dt_s=None, nullspace_gain=0.3, max_iterations=300, stall_tolerance=0.0),
            rest_posture=rest,
        )
        # Start from the rest posture: the pull keeps joint3 near it while the task converges.
        r = solver.solve(T, rest)
        assert r.success, r.reason
        results.append(r.q)
    assert results[0][2] < -0.1 and results[1][2] > 0.1, results
    for q in results:
        np.testing.assert_allclose(IkSolver.for_rm75().forward(q)[:3, 3], T[:3, 3], atol=1e-3)


def test_joint7_wraps_to_the_turn_nearest_the_seed(solver):
    """joint7 spans two turns (+-6.28 rad): a solution is reported at the angle nearest the
    seed, never a full turn away (which would be a wild jump of the wrist)."""
    for seed7 in (5.0, -5.0, 0.5):
        q = np.array([0.2, 0.5, -0.3, 1.2, 0.4, 0.9, seed7 + 0.2])
        seed = q.copy()
        seed[6] = seed7
        seed[:6] += 0.05
        r = IkSolver.for_rm75().solve(solver.forward(q), seed)
        assert r.success, r.reason
        assert abs(r.q[6] - seed7) < 0.5, (seed7, r.q[6])


def test_far_solution_is_refused_not_jumped_to():
    solver = IkSolver.for_rm75(IkConfig(jump_dt_s=0.1, nullspace_gain=0.1))  # 0.31 rad max
    q_far = np.array(HOME_ARM_POSITION) + np.array([1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    T = solver.forward(q_far)
    r = solver.solve(T, HOME_ARM_POSITION)
    assert not r.success
    assert r.reason.startswith("wild jump"), r.reason
    assert solver.solve(T, HOME_ARM_POSITION, check_jump=False).success
    near = solver.forward(np.array(HOME_ARM_POSITION) + 0.03)
    assert solver.solve(near, HOME_ARM_POSITION).success


def test_unreachable_target_fails_with_reason(solver):
    T = np.eye(4)
    T[:3, 3] = (1.5, 0.0, 0.3)  # the arm + hand reach is under 0.9 m
    r = solver.solve(T, HOME_ARM_POSITION)
    assert not r.success and r.reason.startswith("unreachable"), r.reason
    assert r.position_error_m > 0.5
    assert np.all(r.q >= solver.lower) and np.all(r.q <= solver.upper)


def _wrist_beyond_its_limit(solver: IkSolver, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(q, target): the arm at HOME with joint6 at its upper limit, and a target at the same
    EE position turned ``angle`` rad further about the EE's y axis (past joint6's limit)."""
    import pinocchio as pin

    q = np.array(HOME_ARM_POSITION)
    q[5] = solver.upper[5]
    target = solver.forward(q)
    target[:3, :3] = target[:3, :3] @ pin.exp3(np.array([0.0, -angle, 0.0]))
    return q, target


def test_position_first_reaches_the_position_when_the_orientation_is_out_of_reach():
    solver = IkSolver.for_rm75()
    q, target = _wrist_beyond_its_limit(solver, 0.4)
    strict = solver.solve(target, q)
    assert not strict.success and strict.reason.startswith("unreachable"), strict.reason
    r = solver.solve_position_first(target, q)
    assert r.success and r.orientation_relaxed, r.reason
    reached = solver.forward(r.q)  # recomputed, not the solver's word
    assert np.linalg.norm(reached[:3, 3] - target[:3, 3]) <= 1e-3
    assert np.all(r.q >= solver.lower) and np.all(r.q <= solver.upper)
    # The orientation is as close as the limits allow here: no worse than the seed's own
    # 0.4 rad (joint6 pinned), and the error reported is the real one.
    turned = reached[:3, :3].T @ target[:3, :3]
    real = math.acos(np.clip((np.trace(turned) - 1.0) / 2.0, -1.0, 1.0))
    assert abs(real - r.rotation_error_rad) < 1e-6
    assert 1e-3 < r.rotation_error_rad <= 0.4 + 1e-3, r.rotation_error_rad
    assert r.reason.startswith("position first: orientation 0.4"), r.reason
    assert np.abs(r.q - q).max() < 0.3  # a local answer, not a jump to another elbow


def test_position_first_is_solve_when_the_pose_is_reachable_and_refuses_a_far_position(solver):
    q = np.array([0.2, 0.5, -0.3, 1.2, 0.4, 0.9, 0.1])
    T = solver.forward(q)
    seed = q + 0.05
    strict, first = solver.solve(T, seed), solver.solve_position_first(T, seed)
    assert strict.success and first.success and not first.orientation_relaxed
    np.testing.assert_allclose(first.q, strict.q, atol=1e-9)
    far = np.eye(4)
    far[:3, 3] = (1.5, 0.0, 0.3)
    r = solver.solve_position_first(far, HOME_ARM_POSITION)
    assert not r.success and not r.orientation_relaxed and r.reason.startswith("unreachable")
    with pytest.raises(ConfigError, match="rotation_weight"):
        solver.solve_position_first(_wrist_beyond_its_limit(solver, 0.4)[1], q, rotation_weight=2)


def test_position_first_keeps_the_no_wild_jump_rule():
    solver = IkSolver.for_rm75(IkConfig(jump_dt_s=0.01, nullspace_gain=0.1))  # 0.03 rad max
    q, target = _wrist_beyond_its_limit(solver, 0.4)
    target[:3, 3] += (0.0, 0.05, 0.0)  # 5 cm away: more than 0.03 rad of motion
    r = solver.solve_position_first(target, q)
    assert not r.success and r.reason.startswith("wild jump"), r.reason


def test_bad_inputs_and_config():
    solver = IkSolver.for_rm75()
    with pytest.raises(InputError, match="shape"):
        solver.solve(np.eye(4), np.zeros(6))
    with pytest.raises(InputError, match="not finite"):
        solver.solve(np.full((4, 4), np.nan), HOME_ARM_POSITION)
    with pytest.raises(ConfigError, match="nullspace_gain"):
        IkConfig(nullspace_gain=1.5)
    with pytest.raises(ConfigError, match="rest_posture"):
        IkSolver.for_rm75(rest_posture=[0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # joint2 > 2.268
    assert RM75_IK_CONFIG.nullspace_gain > 0.0


def test_mount_changes_where_the_ee_is():
    q = np.array(HOME_ARM_POSITION)
    default = IkSolver.for_rm75().forward(q)
    thick = IkSolver.for_rm75(mount=HandMount(xyz=(0.0, 0.0, 0.012))).forward(q)
    assert np.linalg.norm(thick[:3, 3] - default[:3, 3]) == pytest.approx(0.012, abs=1e-9)


def test_camera_frame_target_through_the_sim_extrinsic():
    """A target seen by the head camera (optical frame) -> base frame -> IK -> the sim arm
    driven there ends with its EE on the target."""
    with RM75World(RM75WorldConfig(image_width=32, image_height=32)) as world:
        T_base_camera = world.camera_pose()
        goal = IkSolver.for_rm75().forward(
            np.array(HOME_ARM_POSITION) + np.array([0.3, 0.2, 0.0, -0.2, 0.1, -0.1, 0.3])
        )
        T_camera_target = np.linalg.inv(T_base_camera) @ goal  # what a perception node reports
        target = camera_pose_to_base(T_base_camera, T_camera_target)
        r = IkSolver.for_rm75().solve(target, HOME_ARM_POSITION)
        assert r.success, r.reason
        command = np.array(HOME_POSITION)
        command[:7] = r.q
        world.set_joint_command(command)
        world.step(2.0)
        reached = world.ee_pose()
        assert np.linalg.norm(reached[:3, 3] - goal[:3, 3]) < 0.005
        rotation = reached[:3, :3].T @ goal[:3, :3]
        assert math.acos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)) < 0.01


def test_pose_from_position_quaternion_matches_pinocchio_and_refuses_unset_orientation():
    import pinocchio as pin

    rng = np.random.default_rng(11)
    for _ in range(20):
        quat = rng.normal(size=4)
        quat /= np.linalg.norm(quat)
        T = pose_from_position_quaternion((0.1, -0.2, 0.3), quat)
        expected = pin.Quaternion(quat[3], quat[0], quat[1], quat[2]).toRotationMatrix()
        np.testing.assert_allclose(T[:3, :3], expected, atol=1e-12)
        np.testing.assert_allclose(T[:3, 3], (0.1, -0.2, 0.3))
    with pytest.raises(InputError, match=r"norm 0\.0000"):
        pose_from_position_quaternion((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="not finite"):
        pose_from_position_quaternion((np.nan, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    with pytest.raises(InputError, match="3 position and 4 quaternion"):
        pose_from_position_quaternion((0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
