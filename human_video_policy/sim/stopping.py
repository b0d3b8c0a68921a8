"""How far and how long each joint travels after an e-stop or a watchdog stop, in MuJoCo.

Why a simulation: the layer's commanded stop is exact arithmetic (v^2 / 2a), but what a user
needs is how far the *measured* joint goes, including the servo's lag behind its command. Each
measurement runs the real controller core (:class:`~human_video_policy.control.JointController`:
sim driver + safety layer) on a virtual clock, so it is deterministic and faster than real time:

1. start at the robot's sim start pose, command one joint toward its farther limit;
2. once the measured joint moves at >= 95 % of the scaled velocity limit (or has covered half
   the way), trigger the stop: assert the e-stop, or stop sending commands (watchdog);
3. tick until the joint rests; report the measured travel from the trigger and the time to rest.

``benchmarks/stopping_distance.py`` runs it for every joint of every robot (docs/safety.md has
the table); ``test/test_fault_stopping_distance.py`` holds the RM75 e-stop bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from human_video_policy.control import JointController
from human_video_policy.errors import ConfigError
from human_video_policy.robots.spec import controller_robot_names, get_robot
from human_video_policy.safety import SafetyConfig, SafetyLayer

TRIGGERS = ("estop", "watchdog")
# The joint rests when it moved less than this (rad or m) per tick for REST_TICKS ticks.
REST_STEP = 1e-4
REST_TICKS = 10


@dataclass(frozen=True)
class StopMeasurement:
    """One stop of one joint. ``speed``: measured joint speed when the stop was triggered
    (rad/s or m/s); ``distance``: measured travel from there (rad or m); ``commanded_distance``:
    the layer's own commands' travel; ``time_to_rest_s``: trigger to rest."""

    robot: str
    joint: str
    trigger: str
    speed: float
    distance: float
    commanded_distance: float
    time_to_rest_s: float


def measure_stop(
    robot: str,
    joint: str,
    trigger: str,
    *,
    control_rate_hz: float = 100.0,
    velocity_scale: float = 0.5,
    max_acceleration: float = 5.0,
    estop_deceleration: float | None = None,
    watchdog_periods: int = 25,
    max_time_s: float = 6.0,
) -> StopMeasurement:
    """Measure one stop (see the module docstring); settings as in :class:`SafetyConfig`."""
    robots = controller_robot_names()
    if robot not in robots:
        raise ConfigError(f"robot={robot!r} is invalid: one of {robots}")
    if trigger not in TRIGGERS:
        raise ConfigError(f"trigger={trigger!r} is invalid: one of {list(TRIGGERS)}")
    from human_video_policy.drivers.sim import MujocoJointDriver, sim_driver_config

    spec = get_robot(robot)
    joints = spec.command_joints
    if joint not in joints:
        raise ConfigError(f"joint={joint!r} is invalid for {robot}: one of {list(joints)}")
    j = joints.index(joint)
    limits = spec.limits()
    config = SafetyConfig(
        limits=limits,
        control_rate_hz=control_rate_hz,
        velocity_scale=velocity_scale,
        max_acceleration=max_acceleration,
        estop_deceleration=estop_deceleration,
        watchdog_periods=watchdog_periods,
        max_command_age_s=0.0,
    )
    now = [0.0]
    dt = config.period_s
    driver = MujocoJointDriver(sim_driver_config(spec, 1.0), clock=lambda: now[0])
    controller = JointController(driver, SafetyLayer(config))
    start = controller.start().positions.copy()
    lower, upper = limits.lower[j], limits.upper[j]
    goal_j = upper if upper - start[j] >= start[j] - lower else lower
    goal = start.copy()
    goal[j] = start[j] + 0.9 * (goal_j - start[j])
    cruise = velocity_scale * limits.max_velocity[j]
    try:
        previous = start[j]
        trigger_q = trigger_cmd = speed = None
        trigger_t = 0.0
        rest_ticks = 0
        q_max_travel = cmd_max_travel = 0.0
        for _ in range(int(max_time_s / dt)):
            now[0] += dt
            if trigger_q is None:
                controller.submit(goal, now[0])
            result = controller.tick(now[0])
            if result.state is None or result.decision is None:
                raise RuntimeError(f"sim driver error while measuring: {result.error}")
            q = result.state.positions[j]
            velocity = (q - previous) / dt
            previous = q
            if trigger_q is None:
                covered = abs(q - start[j]) / abs(goal[j] - start[j])
                if abs(velocity) >= 0.95 * cruise or covered >= 0.5:
                    trigger_q, trigger_cmd, speed = q, result.decision.positions[j], abs(velocity)
                    trigger_t = now[0]
                    if trigger == "estop":
                        controller.set_estop(True)
                continue
            q_max_travel = max(q_max_travel, abs(q - trigger_q))
            cmd_max_travel = max(cmd_max_travel, abs(result.decision.positions[j] - trigger_cmd))
            rest_ticks = rest_ticks + 1 if abs(velocity) * dt < REST_STEP else 0
            if rest_ticks >= REST_TICKS:
                return StopMeasurement(
                    robot,
                    joint,
                    trigger,
                    float(speed),
                    float(q_max_travel),
                    float(cmd_max_travel),
                    now[0] - trigger_t - REST_TICKS * dt,
                )
        raise RuntimeError(f"{robot} {joint} did not come to rest within {max_time_s} s")
    finally:
        controller.stop()
