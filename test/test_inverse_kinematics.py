"""Pinocchio IK of the WidowX 250s: accuracy on reachable targets, limits, failure reporting."""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.kinematics.inverse import (
    IkConfig,
    IkSolver,
    camera_pose_to_base,
    check_pose,
)
from human_video_policy.kinematics.robots import robot_forward_kinematics
from human_video_policy.robots.widowx import HOME_POSITION

N_TARGETS = 300
HOME_ARM = np.array(HOME_POSITION[:6])


@pytest.fixture(scope="module")
def solver() -> IkSolver:
    return IkSolver.for_widowx(IkConfig(jump_dt_s=None))


def _targets(solver: IkSolver, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_TARGETS):
        q = rng.uniform(solver.lower, solver.upper)
        out.append((q, solver.forward(q)))
    return out


def _check_results(solver: IkSolver, results: list) -> None:
    successes = [r for r in results if r.success]
    rate = len(successes) / len(results)
    failures = [r.reason for r in results if not r.success]
    assert rate >= 0.995, f"success {rate:.3%}; failures: {failures[:5]}"
    for r in results:
        assert np.all(r.q >= solver.lower) and np.all(r.q <= solver.upper)
    for r in successes:
        assert r.position_error_m <= 1e-3 and r.rotation_error_rad <= 1e-3
        assert r.reason == "converged"


def test_forward_matches_forward_kinematics(solver: IkSolver) -> None:
    fk = robot_forward_kinematics("widowx")
    q = np.array([0.3, -0.2, 0.5, 0.4, 0.9, -1.1])
    expected = fk.frame_pose([*q, 0.03], solver.ee_frame)
    np.testing.assert_allclose(solver.forward(q), expected, atol=1e-12)


def test_reachable_targets_from_perturbed_seed(solver: IkSolver) -> None:
    rng = np.random.default_rng(7)
    results = []
    for q, T in _targets(solver, 1):
        seed = np.clip(q + rng.normal(0.0, 0.15, q.shape), solver.lower, solver.upper)
        results.append(solver.solve(T, seed))
    _check_results(solver, results)
    # A nearby warm start is the realistic case and should be fast.
    assert np.mean([r.iterations for r in results]) < 10


def test_reachable_targets_from_home(solver: IkSolver) -> None:
    results = [solver.solve(T, HOME_ARM) for _, T in _targets(solver, 2)]
    _check_results(solver, results)


def test_solution_reproduces_target_pose(solver: IkSolver) -> None:
    q = np.array([0.5, 0.1, -0.3, 0.2, 0.8, 0.4])
    T = solver.forward(q)
    r = solver.solve(T, HOME_ARM)
    assert r.success
    reached = solver.forward(r.q)
    assert np.linalg.norm(reached[:3, 3] - T[:3, 3]) <= 1e-3
    assert np.abs(reached[:3, :3] - T[:3, :3]).max() <= 2e-3


def test_warm_start_at_solution_converges_immediately(solver: IkSolver) -> None:
    q = np.array([-0.4, 0.2, 0.1, -0.6, 0.5, 1.0])
    T = solver.forward(q)
    r = solver.solve(T, q)
    assert r.success and r.iterations <= 2
    r = solver.solve(T, q + 1e-4)
    assert r.success and r.iterations <= 2


def test_unreachable_target_fails_with_reason(solver: IkSolver) -> None:
    T = np.eye(4)
    T[:3, 3] = (2.0, 0.0, 0.3)
    r = solver.solve(T, HOME_ARM)
    assert not r.success
    assert r.reason.startswith("unreachable: best error")
    assert "mm" in r.reason and "iterations" in r.reason
    assert r.position_error_m > 1.0
    assert np.all(r.q >= solver.lower) and np.all(r.q <= solver.upper)


def test_position_only_reaches_position() -> None:
    solver = IkSolver.for_widowx(IkConfig(position_only=True, jump_dt_s=None))
    T = np.eye(4)
    T[:3, 3] = (0.3, 0.1, 0.15)  # reachable position, orientation ignored
    r = solver.solve(T, HOME_ARM)
    assert r.success and r.position_error_m <= 1e-3


def test_nan_target_raises(solver: IkSolver) -> None:
    T = np.eye(4)
    T[0, 3] = np.nan
    with pytest.raises(InputError, match="not finite"):
        solver.solve(T, HOME_ARM)


def test_non_orthonormal_rotation_raises(solver: IkSolver) -> None:
    T = np.eye(4)
    T[:3, :3] *= 1.1
    with pytest.raises(InputError, match="orthonormal"):
        solver.solve(T, HOME_ARM)
    T = np.diag([1.0, 1.0, -1.0, 1.0])  # reflection
    with pytest.raises(InputError, match="reflection"):
        solver.solve(T, HOME_ARM)


def test_bad_seed_raises(solver: IkSolver) -> None:
    with pytest.raises(InputError, match="shape"):
        solver.solve(np.eye(4), np.zeros(7))
    with pytest.raises(InputError, match="not finite"):
        solver.solve(np.eye(4), [0, 0, np.inf, 0, 0, 0])


def test_no_wild_jump_refuses_far_solution() -> None:
    solver = IkSolver.for_widowx(IkConfig(jump_dt_s=0.1))  # pi rad/s x 0.1 s = 0.31 rad
    q_far = HOME_ARM + np.array([1.5, 0.0, 0.0, 0.0, 0.0, 0.0])
    T = solver.forward(q_far)
    r = solver.solve(T, HOME_ARM)
    assert not r.success
    assert r.reason.startswith("wild jump") and "waist" in r.reason
    assert r.position_error_m <= 1e-3  # the pose was found, the motion was refused
    # The caller may disable the check for one call.
    assert solver.solve(T, HOME_ARM, check_jump=False).success
    # A nearby target passes.
    q_near = HOME_ARM + 0.05
    assert solver.solve(solver.forward(q_near), HOME_ARM).success


def test_solves_are_reproducible() -> None:
    T = np.eye(4)
    T[:3, 3] = (0.25, -0.1, 0.1)
    a = IkSolver.for_widowx(IkConfig(jump_dt_s=None)).solve(T, HOME_ARM)
    b = IkSolver.for_widowx(IkConfig(jump_dt_s=None)).solve(T, HOME_ARM)
    assert a.success == b.success and np.array_equal(a.q, b.q)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("position_tolerance_m", 0.0),
        ("rotation_tolerance_rad", float("nan")),
        ("max_iterations", 0),
        ("damping", -1.0),
        ("max_step_rad", 0.0),
        ("random_restarts", -1),
        ("jump_dt_s", 0.0),
        ("position_only", "yes"),
    ],
)
def test_config_validation(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        IkConfig(**{field: value})


def test_unknown_frame_or_joint_is_config_error() -> None:
    from human_video_policy.robots.widowx import (
        WIDOWX_ARM_JOINTS,
        widowx_joint_limits,
        widowx_urdf_path,
    )

    with pytest.raises(ConfigError, match="frame"):
        IkSolver.from_urdf(widowx_urdf_path(), WIDOWX_ARM_JOINTS, "no_such_link")
    with pytest.raises(ConfigError, match="not in the model"):
        IkSolver.from_urdf(
            widowx_urdf_path(),
            ("waist", "nope"),
            "wx250s/ee_gripper_link",
            None,
            widowx_joint_limits(),
        )


def test_camera_pose_to_base() -> None:
    T_base_camera = np.eye(4)
    T_base_camera[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # yaw 90 deg
    T_base_camera[:3, 3] = (0.1, 0.2, 0.5)
    T_camera_target = np.eye(4)
    T_camera_target[:3, 3] = (0.3, 0.0, -0.4)
    T = camera_pose_to_base(T_base_camera, T_camera_target)
    np.testing.assert_allclose(T[:3, 3], (0.1, 0.5, 0.1), atol=1e-12)
    np.testing.assert_allclose(T[:3, :3], T_base_camera[:3, :3])
    check_pose("result", T)
    bad = T_camera_target.copy()
    bad[:3, :3] = [[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    with pytest.raises(InputError, match=r"T_camera_target.*orthonormal"):
        camera_pose_to_base(T_base_camera, bad)
    with pytest.raises(InputError, match="shape"):
        camera_pose_to_base(np.eye(3), T_camera_target)
