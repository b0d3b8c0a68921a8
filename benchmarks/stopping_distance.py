"""Stopping distance and time per robot and joint, after an e-stop and after a watchdog stop.

Runs :func:`human_video_policy.sim.stopping.measure_stop` (the real controller core on the
MuJoCo models, virtual clock, deterministic) with each controller's shipped parameters:

    .venv/bin/python benchmarks/stopping_distance.py              # the table for docs/safety.md
    .venv/bin/python benchmarks/stopping_distance.py --old        # e-stop braking as before

``--old`` brakes the e-stop at ``max_acceleration`` (the behaviour before estop_deceleration).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from human_video_policy.robots.spec import get_robot
from human_video_policy.sim.stopping import TRIGGERS, measure_stop

CONFIG = Path(__file__).resolve().parents[1] / "config"
# robot -> (parameter file, node name) whose settings are measured
ROBOT_PARAMS = {
    "rm75": ("sim_rm75.params.yaml", "arm_controller"),
    "xhand": ("sim_rm75.params.yaml", "hand_controller"),
    "widowx": ("controllers.params.yaml", "arm_controller"),
}


def settings_of(robot: str, old: bool) -> dict:
    file, node = ROBOT_PARAMS[robot]
    params = yaml.safe_load((CONFIG / file).read_text())[node]["ros__parameters"]
    return {
        "control_rate_hz": params["control_rate_hz"],
        "velocity_scale": params["velocity_scale"],
        "max_acceleration": params["max_acceleration"],
        "estop_deceleration": None if old else params["estop_deceleration"],
        "watchdog_periods": params["watchdog_periods"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", action="store_true", help="e-stop brakes at max_acceleration")
    parser.add_argument("--robots", nargs="*", default=list(ROBOT_PARAMS))
    args = parser.parse_args()
    for robot in args.robots:
        settings = settings_of(robot, args.old)
        file, node = ROBOT_PARAMS[robot]
        print(f"\n### {robot} ({file}, {node}: {settings})\n")
        print("| joint | speed at trigger | e-stop: distance / time | watchdog: distance / time |")
        print("|---|---|---|---|")
        for joint in get_robot(robot).command_joints:
            stops = {t: measure_stop(robot, joint, t, **settings) for t in TRIGGERS}
            e, w = stops["estop"], stops["watchdog"]
            print(
                f"| {joint} | {e.speed:.2f} | {e.distance:.3f} / {e.time_to_rest_s:.2f} s "
                f"| {w.distance:.3f} / {w.time_to_rest_s:.2f} s |"
            )


if __name__ == "__main__":
    main()
