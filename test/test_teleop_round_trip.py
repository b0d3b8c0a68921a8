"""The demonstration round trip on the teleop graph itself: a human hand video drives the real
`teleop_rm75_xhand` graph -> `hvp record` -> `hvp dataset from-bags --preset teleop_rm75_xhand`
-> torch loader gives back the same actions, states and images.

`hvp launch teleop_rm75_xhand camera_source:=video` runs every node as a process over DDS, as
in test_teleop_graph.py (same 320x180 clip of the dexret hand video, 15 fps): MediaPipe tracks
the hand, retarget_node and the clutched wrist mapping (-> ik_node) command the XHand and the
RM75 in their MuJoCo controllers, and scene_camera renders the robot on /robot_view/camera. The
one difference: the robot view runs at 15 Hz (test_teleop_graph.py renders 1 Hz to spare the
CPU), because the dataset's image rows need a frame within 0.075 s of each 10 Hz row.

The test holds the deadman for ~5 s while `hvp record` (the CLI, a process) records the preset's
topics, then releases it, stops the recorder and the graph with SIGINT (both exit 0) and
converts the session folder with the CLI. Expectations are recomputed independently from the
bag with BagReader on the 10 Hz grid (as test_demo_round_trip.py does, for the robot view): the
action is the newest command at or before the row time per command topic, the state the nearest
measured joints, the image the nearest frame; actions and states EXACT, images PSNR >= 35 dB;
and the actions must show the robot was driven (arm and fingers commanded to move).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import RosProbe, start_process, wait_for
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from test_demo_round_trip import expected_rows, hvp, psnr, read_streams
from test_teleop_graph import _small_clip

from human_video_policy.data.bag_to_dataset import conversion_preset, recording_topics
from human_video_policy.data.bags import BagReader
from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.data.embodiment import EMBODIMENTS
from human_video_policy.data.human_episodes import DEFAULT_CAMERA_KEY
from human_video_policy.kinematics.robots import rm75_xhand_forward_kinematics
from human_video_policy.robots.rm75 import EE_FRAME, RM75_ARM_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS

pytestmark = [pytest.mark.ros, pytest.mark.timeout(150)]

ROBOT_VIEW = "/robot_view/camera/color/image_raw"
ARM_STATES, ARM_COMMANDS = "/arm/joint_states", "/arm/joint_commands"
HAND_STATES, HAND_COMMANDS = "/hand/joint_states", "/hand/joint_commands"
TOPICS = [ROBOT_VIEW, "/robot_view/camera/color/camera_info"]
TOPICS += [ARM_STATES, ARM_COMMANDS, HAND_STATES, HAND_COMMANDS]
INSTRUCTION = "wave at the robot"
HOLD_S = 5.0  # the deadman is held this long
# Of the ~50 rows 5 s give at 10 Hz, the fewest the longest complete run must keep: ik_node
# refusing targets for 1.5 s (seen) or a stalled publisher cuts a run short.
ACTION_LAYOUT = [(ARM_COMMANDS, RM75_ARM_JOINTS), (HAND_COMMANDS, XHAND_JOINTS)]
STATE_LAYOUT = [(ARM_STATES, RM75_ARM_JOINTS), (HAND_STATES, XHAND_JOINTS)]


def test_teleop_preset_records_the_robot_view_commands_and_measured_joints() -> None:
    preset = conversion_preset("teleop_rm75_xhand")
    assert preset.camera_topics == (ROBOT_VIEW,)  # the robot, not the operator's camera
    assert (preset.action_topic, preset.extra_action_topics) == (ARM_COMMANDS, (HAND_COMMANDS,))
    assert (preset.state_topic, preset.extra_state_topics) == (ARM_STATES, (HAND_STATES,))
    assert preset.embodiment == "rm75_xhand" and not preset.joint_names  # mixes with human data
    assert EMBODIMENTS["rm75_xhand"].action_names == (*RM75_ARM_JOINTS, *XHAND_JOINTS)
    assert preset.rate_hz == 10.0 and preset.instruction == ""
    assert recording_topics(preset) == [TOPICS[0], TOPICS[1], ARM_STATES, HAND_STATES,
                                        ARM_COMMANDS, HAND_COMMANDS]  # fmt: skip


def test_teleop_session_driven_by_the_hand_video_round_trips_through_the_dataset(
    tmp_path: Path,
) -> None:
    import torch

    from human_video_policy.training.torch_dataset import (
        ChunkDataset,
        ChunkDatasetConfig,
        chunk_collate,
    )

    started = time.monotonic()
    clip = _small_clip(tmp_path)
    launch = hvp("launch", "teleop_rm75_xhand", "camera_source:=video", f"video_path:={clip}")
    launch += ["video_rate_hz:=15.0", "robot_view_rate_hz:=15.0"]
    out = tmp_path / "recordings"
    record = hvp("record", "-o", str(out), "--instruction", INSTRUCTION)
    record += ["--preset", "teleop_rm75_xhand"]  # TOPICS; the view as JPEG on .../compressed
    with RosProbe("probe_teleop_round_trip") as probe:
        # No probe subscription on the cameras (docs/recording.md, "Round trip": a subscriber
        # alone makes a topic appear and can make the recorder pick the wrong QoS).
        retargeted = probe.record("/teleop/hand/joint_commands", JointState)
        arm_states = probe.record(ARM_STATES, JointState)
        hand_commands = probe.record(HAND_COMMANDS, JointState)
        enable = probe.publisher("/teleop/enable", Bool)
        with start_process(launch) as launcher:
            # The hand is tracked and retargeted upstream of the gate; the robot is up.
            assert wait_for(lambda: len(retargeted) >= 10 and len(arm_states) > 0, 60.0), (
                launcher.output()[-4000:]
            )
            assert probe.wait_for_subscribers(enable, 1), "wrist_teleop never subscribed"
            with start_process(record) as recorder:
                assert wait_for(
                    lambda: (
                        recorder.output().count("recording /") >= len(TOPICS)
                        and "episode 1 started" in recorder.output()
                    ),
                    30.0,
                ), recorder.output()
                assert len(hand_commands) == 0, "hand commands before the deadman was held"
                held_at = time.monotonic()
                while time.monotonic() - held_at < HOLD_S:  # a pedal held down (20 Hz)
                    enable.publish(Bool(data=True))
                    time.sleep(0.05)
                time.sleep(1.0)  # released: the streams stop, the last frames reach the bag
                assert recorder.stop(signal.SIGINT, timeout=30.0) == 0, recorder.output()
                record_log = recorder.output()
            assert launcher.stop(signal.SIGINT, timeout=30.0) == 0, launcher.output()[-4000:]
            launch_log = launcher.output()
    session_s = time.monotonic() - started
    refusals = "".join(f"\n{line}" for line in launch_log.splitlines() if "no command for" in line)
    assert "Traceback" not in record_log, record_log
    sessions = list(out.iterdir())
    assert len(sessions) == 1, sessions  # the default session name: the start time
    bags = sorted(sessions[0].glob("episode_*"))
    assert [b.name for b in bags] == ["episode_000001"], bags
    with BagReader(bags[0]) as reader:
        stored = [f"{t}/compressed" if t == ROBOT_VIEW else t for t in TOPICS]
        counts = {t: reader.topics[t].count if t in reader.topics else 0 for t in stored}
    assert all(counts.values()), f"the bag misses topics: {counts}\n{record_log}"

    t = time.monotonic()
    dataset_dir = tmp_path / "ds"
    convert = hvp("dataset", "from-bags", str(sessions[0]), "-o", str(dataset_dir))
    convert += ["--preset", "teleop_rm75_xhand"]
    with start_process(convert) as process:
        assert process.wait(120.0) == 0, process.output()
        assert "1/1 bag(s) converted" in process.output(), f"{process.output()}{refusals}"
    convert_s = time.monotonic() - t

    preset = conversion_preset("teleop_rm75_xhand")
    topics = [ROBOT_VIEW, *(topic for topic, _ in ACTION_LAYOUT + STATE_LAYOUT)]
    streams = read_streams(bags[0], topics, camera=ROBOT_VIEW)
    actions, states, frames, grid = expected_rows(
        streams,
        ACTION_LAYOUT,
        STATE_LAYOUT,
        camera=ROBOT_VIEW,
        rate_hz=preset.rate_hz,
        tolerance_s=preset.sync_tolerance_s,
        max_age_s=preset.action_max_age_s,
    )
    reader = DatasetReader(dataset_dir)
    assert reader.validate().ok, reader.validate()
    assert reader.num_episodes == 1
    names = [*RM75_ARM_JOINTS, *XHAND_JOINTS]
    assert reader.names("action") == names and reader.names("observation.state") == names
    info = reader.episodes[0]
    assert info["length"] == len(actions), (info["length"], len(actions), grid)
    assert info["tasks"] == [INSTRUCTION]
    rows = reader.episode_rows(0)
    np.testing.assert_array_equal(rows["action"], actions)  # exact
    np.testing.assert_array_equal(rows["observation.state"], states)  # exact

    # The robot was driven by the hand video: the commanded EE moved, the fingers were commanded.
    fk = rm75_xhand_forward_kinematics()
    ee = np.array(
        [
            fk.frame_position(
                dict(zip(RM75_ARM_JOINTS, a[:7].astype(float), strict=True)), EE_FRAME
            )
            for a in actions
        ]
    )
    ee_range = float(np.linalg.norm(np.ptp(ee, axis=0)))
    arm_range = float(np.ptp(actions[:, :7], axis=0).max())
    finger_range = float(np.ptp(actions[:, 7:], axis=0).max())
    assert ee_range > 1e-3 or arm_range > 0.01, f"arm not driven: EE {ee_range:.4f} m"
    assert finger_range > 0.01, f"fingers not driven: range {finger_range:.4f} rad"
    assert np.abs(actions - states).max() > 1e-3  # commands lead the measured joints

    horizon = 4
    dataset = ChunkDataset(
        reader, ChunkDatasetConfig(horizon=horizon, action_offset=0, image_access="seek")
    )
    key = conversion_preset("teleop_rm75_xhand").feature_keys[0]
    assert key == DEFAULT_CAMERA_KEY  # the human datasets' key: the two mix
    worst = 99.0
    for row in range(len(actions)):
        sample = dataset[row]
        n = min(horizon, len(actions) - row)
        np.testing.assert_array_equal(sample["action"][:n].numpy(), actions[row : row + n])
        np.testing.assert_array_equal(sample["observation.state"][0].numpy(), states[row])
        assert sample["task"] == INSTRUCTION
        image = (sample[key][0].numpy().transpose(1, 2, 0) * 255.0).round()
        worst = min(worst, psnr(image, frames[row]))
    assert worst >= 35.0, f"robot view PSNR {worst:.1f} dB"
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=8, shuffle=True, collate_fn=chunk_collate
    )
    batch = next(iter(loader))
    assert batch["action"].shape == (8, horizon, len(names))
    assert batch[key].shape == (8, 1, 3, 240, 320)
    print(
        f"\n{len(actions)}/{grid} rows, EE command range {ee_range * 1000:.1f} mm, arm joint "
        f"range {arm_range:.3f} rad, finger range {finger_range:.3f} rad, PSNR >= {worst:.1f} dB;"
        f" messages {counts}; session {session_s:.1f} s, CLI conversion {convert_s:.1f} s"
        f"{refusals}"
    )
