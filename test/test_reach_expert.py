"""The privileged scripted reach expert: IK, chunk format, closed-loop success."""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.policies.action_spaces import WIDOWX_JOINT_POSITION
from human_video_policy.robots.widowx import HOME_POSITION, WIDOWX_COMMAND_JOINTS
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.sim.evaluate import (
    EvaluationConfig,
    evaluate,
    expert_factory,
    run_episode,
)
from human_video_policy.sim.reach_expert import (
    PrivilegedExpertSource,
    ReachExpert,
    ReachExpertConfig,
)
from human_video_policy.sim.widowx_world import WidowXWorld, WidowXWorldConfig, default_scene_path


@pytest.fixture(scope="module")
def expert():
    return ReachExpert(default_scene_path())


def home_state() -> np.ndarray:
    return np.concatenate([HOME_POSITION, [-HOME_POSITION[6]]])


@pytest.mark.parametrize("point", [(0.2, -0.16, 0.042), (0.38, 0.16, 0.042), (0.3, 0.0, 0.1)])
def test_ik_reaches_points_with_the_gripper_down(expert, point):
    result = expert.solve_ik(np.array(point))
    assert result.position_error < 2e-4
    pos, rot = expert.forward(result.q)
    np.testing.assert_allclose(pos, point, atol=2e-4)
    assert rot[:, 0] @ [0.0, 0.0, -1.0] > 0.999  # gripper x axis points down
    assert result.q[3] == 0.0 and result.q[5] == 0.0  # rolls untouched
    limits_ok = (result.q >= expert._lower - 1e-9) & (result.q <= expert._upper + 1e-9)
    assert limits_ok.all()


def test_unreachable_target_is_refused(expert):
    with pytest.raises(InputError, match="out of reach"):
        expert.waypoints(np.array([1.5, 0.0, 0.03]))


def test_chunk_is_a_smooth_velocity_limited_action_chunk(expert):
    target = np.array([0.33, 0.12, 0.03])
    chunk = expert.chunk(home_state(), target, observation_stamp=1.5)
    cfg = expert.config
    assert isinstance(chunk, ActionChunk)
    assert chunk.action_space == WIDOWX_JOINT_POSITION == "widowx_joint_position"
    assert chunk.names == WIDOWX_COMMAND_JOINTS
    assert chunk.actions.shape == (cfg.horizon, 7) and chunk.dt == cfg.dt
    assert chunk.observation_stamp == 1.5
    rows = np.vstack([HOME_POSITION, chunk.actions])
    speed = np.abs(np.diff(rows, axis=0))[:, :6] / cfg.dt
    assert speed.max() <= cfg.max_joint_speed + 1e-4
    assert speed.max() > 0.5 * cfg.max_joint_speed  # far from the goal: moves at full speed
    # Straight joint-space line: every step points the same way.
    steps = np.diff(rows, axis=0)[:, :6]
    cos = steps @ steps[0] / (np.linalg.norm(steps, axis=1) * np.linalg.norm(steps[0]))
    assert cos.min() > 0.999
    # Deterministic, and a function of (state, target) only.
    np.testing.assert_array_equal(chunk.actions, expert.plan(home_state(), target))


def test_goal_descends_only_when_above_the_target(expert):
    target = np.array([0.3, -0.05, 0.03])
    pre, touch = expert.waypoints(target)
    _, height_far = expert.goal(home_state(), target)
    assert height_far == pytest.approx(expert.config.pre_touch_height)
    above = np.concatenate([pre, [0.037, -0.037]])
    goal, height_above = expert.goal(above, target)
    assert height_above == pytest.approx(expert.config.touch_height)
    np.testing.assert_allclose(goal[:6], touch)


def test_bad_state_and_config_are_refused(expert):
    with pytest.raises(InputError):
        expert.plan(np.zeros(7), np.array([0.3, 0.0, 0.03]))
    with pytest.raises(InputError):
        expert.plan(np.full(8, np.nan), np.array([0.3, 0.0, 0.03]))
    with pytest.raises(ConfigError):
        ReachExpertConfig(horizon=0)
    with pytest.raises(ConfigError):
        ReachExpertConfig(funnel_inner=0.1, funnel_outer=0.05)


def test_expert_succeeds_in_closed_loop():
    summary = evaluate(expert_factory, EvaluationConfig(episodes=6, seed=1_000_000, progress=False))
    assert summary.success_rate == 1.0, summary.to_dict()
    assert 0.5 < summary.mean_time_to_success < 4.0
    for r in summary.results:
        assert r.min_distance <= 0.03 and r.chunks >= 5


def test_evaluation_is_deterministic_and_times_out_without_progress():
    config = EvaluationConfig(episodes=1, seed=0, progress=False)
    with WidowXWorld(WidowXWorldConfig()) as world:
        source = PrivilegedExpertSource(world)
        a = run_episode(world, source, 42, config)
        b = run_episode(world, source, 42, config)
        assert a == b and a.success

        class Frozen:  # a "policy" that holds the arm at home never succeeds
            needs_image = False

            def predict_chunk(self, image, state, observation_stamp=0.0):
                return ActionChunk(
                    np.tile(state[:7], (10, 1)),
                    0.1,
                    WIDOWX_COMMAND_JOINTS,
                    WIDOWX_JOINT_POSITION,
                    observation_stamp,
                )

        frozen = run_episode(world, Frozen(), 42, config)
        assert not frozen.success and frozen.time_to_success is None
        assert world.time == pytest.approx(world.task.config.max_episode_s)
        assert frozen.chunks == 80
