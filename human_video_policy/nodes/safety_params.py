"""The safety layer's ROS parameters, declared the same way by every node that commands a
robot through it (arm_controller_node, sim_node): one set of names, ranges and descriptions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from human_video_policy.errors import ConfigError
from human_video_policy.validation import check_int_range, check_range


def declare_safety_params(node: Any, defaults: Mapping[str, float], tick: str) -> dict[str, Any]:
    """Declare ``velocity_scale``, ``max_acceleration``, ``estop_deceleration``,
    ``watchdog_periods`` and ``max_command_age_s`` on ``node`` (an HvpNode) with ``defaults``
    and return their checked values (keyword arguments of SafetyConfig). ``tick`` names what
    the watchdog counts ("control periods", "physics ticks")."""
    values = {
        "velocity_scale": node.param(
            "velocity_scale",
            float(defaults["velocity_scale"]),
            "Safety layer: fraction (0, 1] of the URDF joint velocity limits a command may use.",
            lambda n, v: check_range(n, v, 0.01, 1.0),
        ),
        "max_acceleration": node.param(
            "max_acceleration",
            float(defaults["max_acceleration"]),
            "Safety layer: joint acceleration bound (rad/s^2, m/s^2); also how hard a hold brakes.",
            lambda n, v: check_range(n, v, 0.01, 1000.0),
        ),
        "estop_deceleration": node.param(
            "estop_deceleration",
            float(defaults["estop_deceleration"]),
            "Safety layer: how hard an e-stop brakes (rad/s^2, m/s^2); >= max_acceleration. "
            "Stopping distances per robot: docs/safety.md.",
            lambda n, v: check_range(n, v, 0.01, 10000.0),
        ),
        "watchdog_periods": node.param(
            "watchdog_periods",
            int(defaults["watchdog_periods"]),
            f"Safety layer: hold position after this many {tick} without a fresh valid command.",
            lambda n, v: check_int_range(n, v, 1, 100000),
        ),
        "max_command_age_s": node.param(
            "max_command_age_s",
            float(defaults["max_command_age_s"]),
            "Safety layer: refuse commands stamped longer ago (or further ahead) than this (s of "
            "the node clock); 0 = off.",
            lambda n, v: check_range(n, v, 0.0, 60.0),
        ),
    }
    if values["estop_deceleration"] < values["max_acceleration"]:
        raise ConfigError(
            f"parameter estop_deceleration={values['estop_deceleration']:g} is invalid: must be "
            f">= max_acceleration ({values['max_acceleration']:g}); an e-stop never brakes "
            "softer than normal motion"
        )
    return values
