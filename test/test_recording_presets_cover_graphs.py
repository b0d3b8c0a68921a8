"""One camera naming and one preset per recording graph (issue 14 item 1), without ROS running.

Before: ``hvp record`` without a preset recorded ``/camera/color/...`` while the graphs published
``/camera/camera/...``; ``from-bags`` without a preset read a third default; three graphs had no
preset (``hvp record --preset policy_widowx``: "preset not found")."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from human_video_policy.data.bag_to_dataset import (
    BagConversionConfig,
    camera_key,
    conversion_preset,
    preset_names,
    recording_topics,
)
from human_video_policy.data.human_episodes import DEFAULT_CAMERA_KEY
from human_video_policy.errors import ConfigError
from human_video_policy.nodes.recorder_node import DEFAULT_TOPICS
from human_video_policy.sim.replay import IMAGE_TOPICS

ROOT = Path(__file__).resolve().parents[1]
REALSENSE_COLOR = "/camera/camera/color/image_raw"  # realsense-ros 4: /<namespace>/<name>/...
NOT_RECORDED = {"camera", "view"}  # a bare camera and the viewer: nothing to learn from


def test_every_graph_that_runs_a_robot_has_its_preset() -> None:
    graphs = {p.stem for p in (ROOT / "config" / "graphs").glob("*.yaml")}
    assert graphs - NOT_RECORDED <= set(preset_names()), graphs - set(preset_names())
    for name in sorted(graphs - NOT_RECORDED):
        cfg = conversion_preset(name)
        topics = recording_topics(cfg)
        assert cfg.state_topics and cfg.action_topics, name  # leader graphs have no camera
        assert all(t in topics for t in (*cfg.camera_topics, *cfg.state_topics)), name


def test_inheriting_presets_record_their_bases_topics_and_more() -> None:
    base, derived = conversion_preset("sim_widowx"), conversion_preset("policy_widowx")
    assert derived.camera_topics == base.camera_topics and derived.embodiment == "widowx"
    assert set(recording_topics(base)) < set(recording_topics(derived))
    assert "/policy/action_chunk" in recording_topics(derived)
    assert conversion_preset("policy_rm75_xhand").embodiment == "rm75_xhand"
    assert recording_topics(conversion_preset("sim_task_policy")) == recording_topics(
        conversion_preset("sim_task")
    )


def test_inherits_is_checked(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"inherits: {b}\n")
    b.write_text(f"inherits: {a}\n")
    with pytest.raises(ConfigError, match="'inherits' makes a cycle"):
        conversion_preset(a)
    b.write_text("inherits: no_such_preset\n")
    with pytest.raises(ConfigError, match="preset 'no_such_preset' not found"):
        conversion_preset(a)
    b.write_text("inherits: [sim_widowx]\n")
    with pytest.raises(ConfigError, match="must name a preset"):
        conversion_preset(a)
    b.write_text("inherits: sim_widowx\nrate_hz: 5.0\n")
    a.write_text(f"inherits: {b}\nbogus: 1\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bogus'\]"):
        conversion_preset(a)


def test_record_defaults_hold_what_from_bags_defaults_read_under_realsense_names() -> None:
    defaults = BagConversionConfig()
    assert defaults.camera_topics == (REALSENSE_COLOR,)
    assert set(recording_topics(defaults)) <= set(DEFAULT_TOPICS)
    assert DEFAULT_TOPICS[0] == REALSENSE_COLOR
    params = yaml.safe_load((ROOT / "config" / "recorder.params.yaml").read_text())
    assert params["recorder"]["ros__parameters"]["topics"] == DEFAULT_TOPICS
    assert IMAGE_TOPICS[:2] == (REALSENSE_COLOR + "/compressed", REALSENSE_COLOR)
    # every image topic the project's graphs name lands on the human datasets' key
    for topic in (REALSENSE_COLOR, REALSENSE_COLOR + "/compressed", "/camera/color/image_raw"):
        assert camera_key(topic) == DEFAULT_CAMERA_KEY, topic
    assert camera_key("/robot_view/camera/color/image_raw") == (
        "observation.images.robot_view_camera_color"
    )
    for source in ("nodes/sim_node.py", "nodes/policy_node.py", "nodes/hand_tracker_node.py"):
        text = (ROOT / "human_video_policy" / source).read_text()
        assert REALSENSE_COLOR in text and '"/camera/color/' not in text, source
