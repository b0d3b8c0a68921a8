"""``hvp bench``: the files it writes, its floors and its refusals (in process, 2 episodes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from human_video_policy.cli.main import main


def test_bench_writes_json_markdown_and_plot_with_confidence_intervals(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "bench"
    code = main(
        [
            "bench",
            "--task",
            "push",
            "--level",
            "position",
            "--level",
            "scene",
            "--policy",
            "expert",
            "--policy",
            "frozen",
            "--episodes",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    result = json.loads((out / "results.json").read_text())
    assert len(result["episodes"]) == 2 * 2 * 2
    assert {e["seed"] for e in result["episodes"]} == {1_000_000, 1_000_001, 1_100_000, 1_100_001}
    rows = {(r["policy"], r["level"]): r for r in result["rows"]}
    assert rows[("expert", "position")]["successes"] == 2
    assert rows[("frozen", "scene")]["successes"] == 0
    low, high = rows[("frozen", "scene")]["ci_low"], rows[("frozen", "scene")]["ci_high"]
    assert low == 0.0 and 0.5 < high < 0.9  # Wilson interval of 0/2
    table = (out / "results.md").read_text()
    assert "| push | scene | 100% [" in table and "| task | level | expert | frozen |" in table
    assert table in printed
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_exits_1_below_a_floor(tmp_path: Path, capsys) -> None:
    config = tmp_path / "bench.yaml"
    config.write_text(
        "tasks: [push]\nlevels: [position]\npolicies: [frozen]\nepisodes: 1\n"
        "floors:\n  'frozen/*/*': 0.5\n"
    )
    code = main(["bench", "--config", str(config), "--out", str(tmp_path), "--no-progress"])
    assert code == 1
    assert "below floor: frozen/push/position: 0% < floor 50%" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--task", "fly"], "task='fly' is unknown"),
        (["--level", "hard"], "level='hard' is invalid"),
        (["--policy", "/no/such/model"], "neither one of"),
        (["--episodes", "0"], "episodes"),
        (["--robot", "no_such_robot"], "has no benchmark tasks"),
    ],
)
def test_bench_refuses_bad_settings(tmp_path: Path, capsys, arguments, message) -> None:
    code = main(["bench", *arguments, "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err


def test_bench_config_files_are_checked(tmp_path: Path, capsys) -> None:
    config = tmp_path / "bench.yaml"
    config.write_text("tasks: [push]\nepisodez: 3\n")
    assert main(["bench", "--config", str(config), "--no-progress"]) == 2
    assert "unknown fields ['episodez']" in capsys.readouterr().err
    config.write_text("floors:\n  push: 0.5\n")
    assert main(["bench", "--config", str(config), "--no-progress"]) == 2
    assert "keys are policy/task/level" in capsys.readouterr().err


def test_the_shipped_bench_configs_load() -> None:
    from human_video_policy.resources import resource_path
    from human_video_policy.sim.bench import BenchConfig

    for name in ("smoke.yaml", "full.yaml"):
        config = BenchConfig.from_yaml(resource_path("config", "bench", name))
        assert config.runs() and config.floors


def test_bench_lists_its_tasks(capsys) -> None:
    assert main(["bench", "--list"]) == 0
    printed = capsys.readouterr().out
    assert "pick_place" in printed and "stages: reach > grasp > lift > place" in printed


def test_the_ci_smoke_configuration_stays_above_its_floors(tmp_path: Path, capsys) -> None:
    """config/bench/smoke.yaml: every WidowX task, expert and frozen, two levels; the
    human_only task (stack) only at new_skill, and nothing else there."""
    from human_video_policy.resources import resource_path

    smoke = resource_path("config", "bench", "smoke.yaml")
    code = main(["bench", "--config", str(smoke), "--out", str(tmp_path), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert all(r["success_rate"] == 0.0 for r in rows if r["policy"] == "frozen"), rows
    cells = {(r["task"], r["level"]) for r in rows}
    assert {t for t, level in cells if level == "new_skill"} == {"stack"}, cells
    assert ("stack", "position") not in cells and ("push", "position") in cells


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_through_the_ros_graph(tmp_path: Path, capsys) -> None:
    """--ros: each cell is a real hvp launch (sim_node + executor_node, + policy_node for a
    model) on the level's evaluation seeds; sim_node writes the episodes it ran."""
    from human_video_policy.resources import default_policy_path

    model = str(default_policy_path())  # the reach DiT: runs, but was never trained on push
    code = main(
        ["bench", "--ros", "--task", "push", "--policy", "expert", "--policy", model,
         "--episodes", "2", "--realtime-factor", "3", "--out", str(tmp_path), "--no-progress"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    result = json.loads((tmp_path / "results.json").read_text())
    by_policy: dict[str, list[dict]] = {}
    for episode in result["episodes"]:
        by_policy.setdefault(episode["policy"], []).append(episode)
    assert [e["seed"] for e in by_policy["expert"]] == [1_000_000, 1_000_001]
    assert all(e["success"] and e["score"] == 1.0 for e in by_policy["expert"])
    assert len(by_policy["widowx_reach_dit"]) == 2
    assert all(0.0 <= e["score"] <= 1.0 for e in by_policy["widowx_reach_dit"])


def test_bench_refuses_in_process_only_policies_through_ros(tmp_path: Path, capsys) -> None:
    assert main(["bench", "--ros", "--policy", "frozen", "--out", str(tmp_path)]) == 2
    assert "exist in process only" in capsys.readouterr().err
