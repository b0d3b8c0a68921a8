"""The safety layer, one rule at a time, on the real WidowX limits and forward kinematics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.kinematics.robots import robot_forward_kinematics
from human_video_policy.robots.widowx import (
    EE_FRAME,
    HOME_POSITION,
    widowx_joint_limits,
)
from human_video_policy.safety import (
    JointCommand,
    SafetyConfig,
    SafetyLayer,
    WorkspaceBox,
)
from human_video_policy.safety.layer import stoppable_step

DT = 0.01
HOME = np.array(HOME_POSITION)


def _layer(**overrides) -> SafetyLayer:
    settings = {"limits": widowx_joint_limits(), "control_rate_hz": 100.0}
    settings.update(overrides)
    return SafetyLayer(SafetyConfig(**settings))


def _ee():
    fk = robot_forward_kinematics("widowx")
    return lambda q: fk.frame_position(q, EE_FRAME)


def _run(layer: SafetyLayer, targets, start: float = 0.0, measured=HOME) -> np.ndarray:
    """Feed one command per tick (None = no command); returns the emitted commands."""
    out = []
    for k, target in enumerate(targets):
        now = start + k * DT
        command = None if target is None else JointCommand(np.asarray(target, float), now)
        out.append(layer.step(now, measured, command).positions)
    return np.array(out)


def _check_bounds(layer: SafetyLayer, sent: np.ndarray, first: np.ndarray) -> None:
    config = layer.config
    path = np.vstack([first, first, sent])  # starts at rest at `first`
    steps = np.diff(path, axis=0)
    assert np.all(sent >= config.limits.lower) and np.all(sent <= config.limits.upper)
    assert np.all(np.abs(steps) <= config.max_step + 1e-12)
    assert np.all(np.abs(np.diff(steps, axis=0)) <= config.max_step_change + 1e-12)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"max_acceleration": float("nan")}, "max_acceleration"),
        ({"max_acceleration": [1.0, 2.0]}, "max_acceleration"),
        ({"max_acceleration": [1.0] * 6 + [-1.0]}, "max_acceleration"),
        ({"watchdog_periods": 0}, "watchdog_periods"),
        ({"velocity_scale": 1.5}, "velocity_scale"),
        ({"control_rate_hz": 0.0}, "control_rate_hz"),
        ({"max_command_age_s": -1.0}, "max_command_age_s"),
        ({"workspace": WorkspaceBox((0, 0, 0), (1, 1, 1))}, "ee_position"),
        ({"limits": "widowx"}, "limits"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        _layer(**overrides)


def test_workspace_box_must_be_a_real_box() -> None:
    with pytest.raises(ConfigError, match="maximum"):
        WorkspaceBox((0.0, 0.0, 0.0), (1.0, 0.0, 1.0))
    with pytest.raises(ConfigError, match="minimum"):
        WorkspaceBox((0.0, float("nan"), 0.0), (1.0, 1.0, 1.0))
    box = WorkspaceBox((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert box.contains([0.5, 1.0, 0.0]) and not box.contains([0.5, 1.01, 0.0])
    assert not box.contains([np.nan, 0.5, 0.5])


def test_stoppable_step_stops_exactly_within_the_distance() -> None:
    change = 0.003
    for distance in [0.0, 0.001, 0.003, 0.0045, 0.009, 0.05, 0.1234, 1.0]:
        step = float(stoppable_step(np.array([distance]), np.array([change]))[0])
        travelled, s = step, step
        while s > 0:
            s = max(s - change, 0.0)
            travelled += s
        assert travelled <= distance + 1e-12
        # and it is the largest such step: a bit more overshoots
        bigger, total = step + 1e-6, step + 1e-6
        while bigger > 0:
            bigger = max(bigger - change, 0.0)
            total += bigger
        assert total > distance


def test_a_long_move_is_interpolated_and_arrives_without_overshoot() -> None:
    layer = _layer()
    target = HOME.copy()
    target[0] = 2.0  # 2 rad of waist: far more than one tick's step
    sent = _run(layer, [target] * 400)
    _check_bounds(layer, sent, HOME)
    waist = sent[:, 0]
    assert np.all(np.diff(waist) >= -1e-12)  # monotonic: no overshoot and come back
    assert waist.max() <= 2.0 + 1e-12
    assert waist[-1] == pytest.approx(2.0, abs=1e-9)
    max_step = layer.config.max_step[0]
    assert np.max(np.diff(waist)) == pytest.approx(max_step)  # cruises at the velocity bound
    assert int(np.argmax(waist >= 2.0 - 1e-9)) >= 2.0 / max_step  # took at least d / vmax
    assert layer.counters.velocity_limited_ticks > 100
    assert np.allclose(sent[-1, 1:], HOME[1:])


@pytest.mark.parametrize(
    ("bad", "counter"),
    [
        ([np.nan] + [0.0] * 6, "refused_nonfinite"),
        ([0.0, np.inf, 0, 0, 0, 0, 0], "refused_nonfinite"),
        ([0.0, -np.inf, 0, 0, 0, 0, 0], "refused_nonfinite"),
        ([0.0] * 6, "refused_invalid"),
        ([[0.0] * 7], "refused_invalid"),
    ],
)
def test_malformed_commands_are_refused_and_counted(bad: list, counter: str) -> None:
    layer = _layer()
    sent = _run(layer, [None, bad, bad, None])
    assert np.all(sent == sent[0]) and np.allclose(sent[0], HOME)
    assert getattr(layer.counters, counter) == 2
    assert layer.counters.commands_accepted == 0
    assert layer.holding


def test_stale_and_future_commands_are_refused() -> None:
    layer = _layer(max_command_age_s=0.2)
    target = HOME + 0.1
    layer.step(10.0, HOME)
    layer.step(10.01, HOME, JointCommand(target, 9.7))  # 0.31 s old
    layer.step(10.02, HOME, JointCommand(target, 10.5))  # 0.48 s in the future
    layer.step(10.03, HOME, JointCommand(target, float("nan")))
    assert layer.counters.refused_stale == 1
    assert layer.counters.refused_future == 1
    assert layer.counters.refused_invalid == 1
    assert layer.holding and np.allclose(layer.last_command, HOME)
    layer.step(10.04, HOME, JointCommand(target, 9.9))  # 0.14 s old: fine
    assert not layer.holding and layer.counters.commands_accepted == 1


def test_out_of_range_targets_are_clamped_into_the_limits() -> None:
    layer = _layer()
    limits = layer.config.limits
    wild = np.array(limits.upper) + 5.0
    sent = _run(layer, [wild] * 600)
    _check_bounds(layer, sent, HOME)
    assert np.allclose(sent[-1], limits.upper)
    assert layer.counters.position_clamps == 600


def test_start_outside_the_limits_commands_the_nearest_limit() -> None:
    layer = _layer()
    measured = HOME.copy()
    measured[-1] = 0.05  # finger beyond its 0.037 m limit
    decision = layer.step(0.0, measured)
    assert decision.holding
    assert decision.positions[-1] == pytest.approx(widowx_joint_limits().upper[-1])


def test_first_tick_needs_a_usable_measured_state() -> None:
    layer = _layer()
    with pytest.raises(InputError, match="finite"):
        layer.step(0.0, np.full(7, np.nan))
    layer.step(0.0, HOME)
    layer.step(0.01, np.full(7, np.nan))  # later: counted, not used
    assert layer.counters.invalid_states == 1


def test_watchdog_holds_after_n_periods_without_a_fresh_command() -> None:
    layer = _layer(watchdog_periods=3)
    target = HOME.copy()
    target[0] = 1.0
    decisions = []
    for k in range(40):
        now = k * DT
        command = JointCommand(target, now) if k < 20 else None
        decisions.append(layer.step(now, HOME, command))
    assert not any(d.holding for d in decisions[:22])  # last fresh command at tick 19
    assert all(d.holding for d in decisions[22:])  # 3 periods later
    assert decisions[22].reason.startswith("watchdog")
    assert layer.counters.watchdog_trips == 1
    steps = np.diff([d.positions[0] for d in decisions], axis=0)
    assert np.all(np.diff(steps[21:]) <= 1e-15)  # braking: the step only shrinks
    assert steps[-1] == 0.0  # and then it holds still
    # a fresh command resumes
    layer.step(0.40, HOME, JointCommand(target, 0.40))
    assert not layer.holding


def test_estop_latches_until_an_explicit_reset() -> None:
    layer = _layer()
    target = HOME.copy()
    target[0] = 1.0
    _run(layer, [target] * 30)
    assert not layer.holding
    layer.set_estop_input(True)
    sent = _run(layer, [target] * 30, start=0.3)
    assert layer.holding and layer.hold_reason == "e-stop"
    assert np.all(sent[-5:] == sent[-1])  # braked to rest, holding
    assert layer.counters.refused_estop == 30
    layer.set_estop_input(False)  # the input is released: still latched
    _run(layer, [target] * 5, start=0.6)
    assert layer.holding and layer.estop_latched
    layer.set_estop_input(True)
    ok, message = layer.reset_estop()
    assert not ok and "still asserted" in message
    assert layer.counters.estop_resets_refused == 1
    layer.set_estop_input(False)
    ok, _ = layer.reset_estop()
    assert ok and not layer.estop_latched
    assert layer.holding  # holds until a command arrives after the reset
    _run(layer, [None] * 3, start=0.7)
    assert layer.holding
    _run(layer, [target], start=0.8)
    assert not layer.holding
    assert layer.counters.estop_engagements == 1 and layer.counters.estop_resets == 1


def test_workspace_target_outside_the_box_is_refused() -> None:
    box = WorkspaceBox((0.05, -0.3, 0.05), (0.45, 0.3, 0.45))
    layer = _layer(workspace=box, ee_position=_ee())
    low = HOME.copy()
    low[1] = 0.9  # shoulder forward: the gripper goes down through the table plane
    assert _ee()(low)[2] < 0.05
    sent = _run(layer, [None, low, low])
    assert layer.counters.refused_workspace == 2
    assert layer.holding and layer.hold_reason.startswith("workspace")
    assert np.allclose(sent, HOME)


def test_workspace_holds_while_a_joint_path_would_leave_the_box() -> None:
    # Both end points are inside, but the straight joint-space path swings the gripper over
    # y < -0.05, outside this narrow box: the layer must brake at the edge and never leave it.
    fk = _ee()
    box = WorkspaceBox((0.0, -0.05, 0.05), (0.45, 0.3, 0.45))
    layer = _layer(workspace=box, ee_position=fk)
    start = HOME.copy()
    start[0] = 0.2
    goal = HOME.copy()
    goal[0] = 0.2
    goal[5] = 0.5
    detour = start.copy()
    detour[0] = -0.6  # waist to the right: y < 0
    assert box.contains(fk(start)) and not box.contains(fk(detour))
    layer.step(0.0, start)
    sent = _run(layer, [detour] * 200, start=0.01, measured=start)
    assert layer.counters.refused_workspace == 200  # the detour target itself is outside
    sent = _run(layer, [goal] * 200, start=2.01, measured=start)
    assert all(box.contains(fk(q)) for q in sent)
    assert np.allclose(sent[-1], goal)


def test_workspace_brakes_before_an_arc_leaves_the_box() -> None:
    # Waist -0.3 -> +0.3 rad swings the gripper on an arc whose middle (y = 0) reaches further
    # forward than its ends: with x_max between the two, both ends are inside, the arc is not.
    fk = _ee()
    start, goal = HOME.copy(), HOME.copy()
    start[0], goal[0] = -0.3, 0.3
    x_end, x_mid = fk(start)[0], fk(HOME)[0]
    box = WorkspaceBox((0.0, -0.3, 0.05), ((x_end + x_mid) / 2, 0.3, 0.45))
    assert box.contains(fk(start)) and box.contains(fk(goal)) and not box.contains(fk(HOME))
    layer = _layer(workspace=box, ee_position=fk)
    sent = _run(layer, [goal] * 300, measured=start)
    _check_bounds(layer, sent, start)
    assert all(box.contains(fk(q)) for q in sent)
    assert layer.counters.workspace_brakes > 0
    assert -0.3 < sent[-1, 0] < -0.01  # moved toward the goal, stopped at the box edge
    assert np.all(sent[-10:] == sent[-1])


def test_clock_going_back_holds() -> None:
    layer = _layer()
    target = HOME + 0.05
    layer.step(5.0, HOME, JointCommand(target, 5.0))
    assert not layer.holding
    layer.step(4.0, HOME, JointCommand(target, 4.0))  # stamp fine for the age check...
    assert layer.counters.clock_jumps_back == 1
    layer.step(math.nan, HOME)
    assert layer.counters.clock_jumps_back == 2 and layer.holding


def test_hold_on_request_and_reseed() -> None:
    layer = _layer()
    target = HOME.copy()
    target[0] = 1.0
    _run(layer, [target] * 20)
    layer.hold("driver error")
    decision = layer.step(0.2, HOME)
    assert decision.holding and decision.reason == "driver error"
    assert layer.counters.holds_requested == 1
    moved = HOME - 0.01
    layer.reseed(moved)
    decision = layer.step(0.21, moved)
    assert np.allclose(decision.positions, moved) and decision.holding
