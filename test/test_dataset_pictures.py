"""``hvp dataset plot`` and ``hvp dataset show -o``: what the pictures hold, measured on the
figures they are drawn from (panels, legends, units, masked rows) and on the written files
(H.264, one frame per row)."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from human_video_policy.cli import dataset_cmd
from human_video_policy.data.dataset_format import DatasetSpec, vector_feature, video_feature
from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.data.dataset_writer import DatasetWriter
from human_video_policy.data.episode_render import (
    action_strip,
    episode_curves,
    episode_figure,
    group_dimensions,
)
from human_video_policy.errors import HvpError
from human_video_policy.policies.action_spaces import HUMAN_HAND_102, get_action_space
from human_video_policy.robots.rm75 import RM75_ARM_JOINTS, RM75_XHAND_JOINTS

CAM = "observation.images.front"
T = 12
MASKED_ROWS = [3, 4, 5]  # rows where joint1's action is masked (e.g. the tracker lost the hand)


def hvp_dataset(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hvp")
    dataset_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dataset", *argv])
    try:
        return int(args.func(args))
    except HvpError as exc:
        print(f"hvp dataset: error: {exc}")
        return 2


def _video(n: int) -> np.ndarray:
    yy, xx = np.mgrid[0:16, 0:24]
    return np.stack(
        [np.dstack([xx * 8 + 10 * i, yy * 12, np.full_like(xx, 60)]) for i in range(n)]
    ).astype(np.uint8)


@pytest.fixture(scope="module")
def rm75_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An rm75_xhand episode whose joint1 action is masked on MASKED_ROWS (value 0 there)."""
    root = tmp_path_factory.mktemp("pictures") / "rm75"
    names = list(RM75_XHAND_JOINTS)
    spec = DatasetSpec(
        fps=10,
        robot_type="rm75_xhand",
        features=(
            vector_feature("observation.state", names),
            vector_feature("action", names),
            vector_feature("mask.action", names),
            video_feature(CAM, 16, 24, 10),
        ),
        embodiment="rm75_xhand",
        action_space="rm75_xhand_joint_position",
    )
    t = np.arange(T)[:, None] / 10.0
    action = 0.5 + np.sin(t + np.arange(len(names)))  # never 0 where it is valid
    mask = np.ones((T, len(names)))
    mask[MASKED_ROWS, 0] = 0
    action[MASKED_ROWS, 0] = 0.0
    with DatasetWriter(root, spec) as w:
        w.add_episode(
            {"observation.state": action - 0.01, "action": action, "mask.action": mask},
            "wave",
            {CAM: _video(T)},
        )
    return root


@pytest.fixture(scope="module")
def human_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A human_hand_102 episode with only the right hand present (the left one masked)."""
    root = tmp_path_factory.mktemp("pictures") / "human"
    names = list(get_action_space(HUMAN_HAND_102).names)
    spec = DatasetSpec(
        fps=10,
        robot_type="human_hand",
        features=(vector_feature("action", names), vector_feature("mask.action", names)),
        embodiment="human_hand",
        action_space=HUMAN_HAND_102,
    )
    mask = np.zeros((T, 102))
    mask[:, 51:] = 1
    rng = np.random.default_rng(0)
    with DatasetWriter(root, spec) as w:
        w.add_episode({"action": rng.normal(size=(T, 102)), "mask.action": mask}, "pinch")
    return root


def test_plot_leaves_masked_rows_out_of_the_lines(rm75_dataset: Path) -> None:
    fig, curves = episode_figure(rm75_dataset, 0)
    ax = next(a for a in fig.axes if a.get_title(loc="left") == "action: rm75 arm")
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "joint1")
    y = np.asarray(line.get_ydata(), dtype=float)
    rows = DatasetReader(rm75_dataset).episode_rows(0)
    # before: the masked rows were drawn at 0; now they are gaps, the rest is the data
    assert np.isnan(y[MASKED_ROWS]).all()
    valid = np.setdiff1d(np.arange(T), MASKED_ROWS)
    np.testing.assert_allclose(y[valid], rows["action"][valid, 0], rtol=1e-6)
    assert not np.isnan(np.delete(curves.values["action"], 0, axis=1)).any()


def test_plot_puts_arm_and_hand_in_separate_panels_with_units_and_legends(
    rm75_dataset: Path, tmp_path: Path
) -> None:
    fig, curves = episode_figure(rm75_dataset, 0)
    for key in ("observation.state", "action"):
        titles = [p.title for p in curves.panels[key]]
        assert titles == [
            "rm75 arm", "xhand hand: thumb, index, middle", "xhand hand: ring, pinky",
        ], titles  # fmt: skip
        arm = curves.panels[key][0]
        assert [curves.names[key][j] for j in arm.columns] == list(RM75_ARM_JOINTS)
        assert {p.unit for p in curves.panels[key]} == {"rad"}
    drawn = [a for a in fig.axes if a.get_lines()]
    assert len(drawn) == 6
    for ax in drawn:
        assert ax.get_ylabel() == "rad"
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == [ln.get_label() for ln in ax.get_lines()] and legend
    hand = next(a for a in drawn if a.get_title(loc="left") == "action: xhand hand: ring, pinky")
    assert [t.get_text() for t in hand.get_legend().get_texts()] == [
        "ring_joint1",
        "ring_joint2",
        "pinky_joint1",
        "pinky_joint2",
    ]  # fmt: skip  (the shared "right_hand_" left out)
    assert any(a.get_xlabel() == "time in episode (s)" for a in drawn)
    png = tmp_path / "ep.png"
    assert hvp_dataset("plot", str(rm75_dataset), "-o", str(png)) == 0
    assert cv2.imread(str(png)) is not None


def test_human_fingers_are_in_anatomical_order_with_units(human_dataset: Path) -> None:
    curves = episode_curves(DatasetReader(human_dataset), 0, ("action",))
    panels = curves.panels["action"]
    assert [p.title for p in panels] == [
        "right wrist translation", "right wrist rotation",
        "right thumb", "right index", "right middle", "right ring", "right pinky",
    ]  # fmt: skip
    assert [p.unit for p in panels] == ["m", "rad", "rad", "rad", "rad", "rad", "rad"]
    assert panels[2].labels[:3] == ("thumb1.flexion", "thumb1.abduction", "thumb1.twist")
    assert sum(len(p.columns) for p in panels) == 51  # the left hand is masked: not drawn


def test_group_dimensions_of_other_robots_and_unknown_names() -> None:
    widowx = group_dimensions(
        ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate",
         "left_finger", "right_finger"],
        ["rad"] * 6 + ["m", "m"],
        "widowx",
    )  # fmt: skip
    assert [(p.title, p.unit, len(p.columns)) for p in widowx] == [
        ("widowx arm", "rad", 6), ("widowx gripper", "m", 2),
    ]  # fmt: skip
    unknown = group_dimensions([f"d{i}" for i in range(12)])
    assert [len(p.columns) for p in unknown] == [9, 3] and unknown[0].title == "d0 .. d8"


def test_show_video_is_h264_with_the_plot_panels_and_a_legend_per_panel(
    rm75_dataset: Path, tmp_path: Path
) -> None:
    mp4 = tmp_path / "ep.mp4"
    assert hvp_dataset("show", str(rm75_dataset), "--rows", "0", "-o", str(mp4)) == 0
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(mp4)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == f"h264,{T}"
    curves = episode_curves(DatasetReader(rm75_dataset), 0, ("action",))
    _, boxes, fig = action_strip(curves, 960)
    titles = [a.get_title(loc="left") for a in fig.axes]
    assert titles == [f"action: {p.title}" for p in curves.panels["action"]]  # as in the plot
    entries = [len(a.get_legend().get_texts()) for a in fig.axes]
    assert entries == [len(p.columns) for p in curves.panels["action"]] and sum(entries) == 19
    assert len(boxes) == 3 and all(x1 > x0 and bottom > top for x0, x1, top, bottom in boxes)
