"""The README's main job: `hvp launch sim_widowx episodes:=N` runs N episodes and exits 0.

Real processes over DDS (isolated domain): the sim decides success from its own physics, moves
to the next episode (announced on /episode/start, which makes the executor forget the previous
episode's chunks), logs a SUMMARY line and exits 0; the launcher then stops the graph with 0.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import ros_helpers  # noqa: F401  (isolates the ROS domain for the launched processes)

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(150)]


def test_main_job_runs_episodes_and_prints_the_success_rate() -> None:
    command = [
        sys.executable,
        "-m",
        "human_video_policy.cli.main",
        "launch",
        "sim_widowx",
        "episodes:=3",
        "episode_timeout_s:=10.0",
        "episode_seed:=40",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    outcomes = re.findall(r"episode (\d)/3: (SUCCESS in [\d.]+ s|TIMEOUT) \(seed (\d+)\)", output)
    assert [(n, seed) for n, _, seed in outcomes] == [("1", "40"), ("2", "41"), ("3", "42")]
    summary = re.search(r"SUMMARY: (\d)/3 episodes succeeded \((\d+) % success\)", output)
    assert summary, output
    successes = sum(o.startswith("SUCCESS") for _, o, _ in outcomes)
    assert int(summary.group(1)) == successes >= 2, output
    assert output.count("chunks and last command cleared") == 2, output  # executor reset twice
    assert "[launch] done: exit code 0" in output


def test_episodes_without_a_timeout_is_refused() -> None:
    command = [
        sys.executable,
        "-m",
        "human_video_policy.cli.main",
        "launch",
        "sim_widowx",
        "episodes:=3",
        "episode_timeout_s:=0.0",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "episodes=3 needs episode_timeout_s > 0" in result.stdout + result.stderr
