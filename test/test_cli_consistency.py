"""The ``hvp`` command tree behaves one way everywhere (issue 14 item 10): every option's help
shows its default, ``--image-size`` is ``WxH`` in every command through one parser, a command
group without its subcommand prints its help (exit 2), ``launch --list`` prints each default
once, and ``dataset info`` names the robot of the project's presets."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from human_video_policy.cli import common
from human_video_policy.cli.main import build_parser, main


def _options(parser: argparse.ArgumentParser):  # type: ignore[no-untyped-def]
    """(command path, parser, action) for every option of every hvp command."""

    def walk(p: argparse.ArgumentParser, path: str):  # type: ignore[no-untyped-def]
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}")
            elif action.option_strings:
                yield path, p, action

    yield from walk(parser, "hvp")


def _expanded_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    return parser._get_formatter()._expand_help(action)


def test_every_option_help_shows_its_default() -> None:
    missing = []
    for path, parser, action in _options(build_parser()):
        if isinstance(action, common._FLAG_ACTIONS) or action.help == argparse.SUPPRESS:
            continue  # flags (off unless given), --help, --version
        if action.required:
            continue  # no default to show
        text = _expanded_help(parser, action)  # also: every %(...)s expands
        if "default:" not in text and "(required" not in text:  # required at run time
            missing.append(f"{path} {'/'.join(action.option_strings)}: {text!r}")
    assert not missing, "options whose help does not say 'default: ...':\n" + "\n".join(missing)


def test_help_shows_a_numeric_default_in_one_format() -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    text = sub["video"]._subparsers._group_actions[0].choices["process"].format_help()
    assert "(default: 60.0)" in " ".join(text.split())  # --hfov
    text = " ".join(sub["teleop"].format_help().split())
    assert "usage: hvp teleop" in text


def test_image_size_is_wxh_in_every_command() -> None:
    found = [
        (path, action)
        for path, _, action in _options(build_parser())
        if "--image-size" in action.option_strings
    ]
    assert len(found) >= 3, found  # dataset from-bags, from-video, from-sim
    for path, action in found:
        assert action.type is common.image_size, f"{path}: --image-size type {action.type}"
        assert action.metavar == "WxH", f"{path}: --image-size metavar {action.metavar}"
        assert action.nargs is None, f"{path}: --image-size takes {action.nargs} values"


def test_image_size_parser_reads_width_first_and_names_the_format() -> None:
    assert common.image_size("640x480") == (640, 480)
    assert common.image_size("1280X720") == (1280, 720)
    for bad in ("640", "480 640", "640x", "x480", "0x480", "640x480x3", "-640x480"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"WxH|>= 1"):
            common.image_size(bad)


@pytest.mark.parametrize(
    ("argv", "target", "keyword"),
    [
        (
            ["dataset", "from-bags", "BAG"],
            "human_video_policy.data.bag_to_dataset.convert_bags",
            None,
        ),
        (
            ["dataset", "from-video", "EPISODES"],
            "human_video_policy.data.human_episodes.convert_hand_videos",
            None,
        ),
        (
            ["dataset", "from-sim", "--episodes", "1"],
            "human_video_policy.training.sim_episodes.record_sim_dataset",
            "image_size",
        ),
    ],
)
def test_image_size_reaches_each_converter_as_height_width(
    argv: list[str], target: str, keyword: str | None, tmp_path: Path, monkeypatch
) -> None:
    """``--image-size 320x240`` means 320 wide, 240 high in every command (the converters
    take (height, width))."""
    seen = {}

    class Stop(Exception):
        pass

    def capture(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen["size"] = kwargs[keyword] if keyword else args[2].image_size
        raise Stop

    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(__import__(module, fromlist=[name]), name, capture)
    with pytest.raises(Stop):
        main([*argv, "-o", str(tmp_path / "out"), "--image-size", "320x240"])
    assert seen["size"] == (240, 320)


def test_a_bad_image_size_exits_2_naming_the_format(capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", "from-bags", "BAG", "-o", str(tmp_path), "--image-size", "240", "320"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --image-size: '240' is not WxH" in err and "640x480" in err, err


def _groups() -> list[str]:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    return [
        name
        for name, p in commands.items()
        if any(isinstance(a, argparse._SubParsersAction) for a in p._actions) or name == "teleop"
    ]


def test_a_command_group_without_subcommand_prints_its_help_and_exits_2(capsys) -> None:
    groups = _groups()
    assert {"dataset", "video", "topic", "teleop", "view"} <= set(groups), groups
    for name in groups:
        assert main([name]) == 2, name
        out = capsys.readouterr().out
        assert out.startswith(f"usage: hvp {name}"), (name, out[:200])
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: hvp")


def test_launch_list_prints_each_default_once(capsys) -> None:
    assert main(["launch", "sim_widowx", "--list"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  episodes ")]
    assert lines == ["  episodes = '0': run this many episodes, print the success rate and "
                     "stop; 0 = run until Ctrl-C"], lines  # fmt: skip
    assert main(["launch", "sim_widowx", "episodes:=3", "--list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  episodes "))
    assert line.startswith("  episodes = '3' (default '0'): run this many"), line


def test_every_project_preset_names_a_robot_of_the_project() -> None:
    from human_video_policy.data.bag_to_dataset import conversion_preset, preset_names
    from human_video_policy.robots.spec import robot_names

    robots = {name: conversion_preset(name).robot for name in preset_names()}
    assert len(robots) >= 5, robots
    assert all(robot in robot_names() for robot in robots.values()), robots
    assert robots["leader_rm75"] == "rm75"


def test_dataset_info_names_the_robot(tmp_path: Path, capsys) -> None:
    from test_dataset_bags import make_bag

    make_bag(tmp_path / "bag", seconds=1.0)
    out = tmp_path / "ds"
    assert main(["dataset", "from-bags", str(tmp_path / "bag"), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["dataset", "info", str(out)]) == 0
    robot = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("robot "))
    assert robot.startswith("robot     widowx: Trossen WidowX 250s: 6-DoF arm"), robot
