"""Bags -> dataset: round trip to the torch loader, real ROS 2 bags, and bad bags.

The bags are written here with the project's BagWriter (MCAP and sqlite3), holding what the
stack publishes: measured joints at 50 Hz, commanded joints at 50 Hz, rgb8 images at 15 Hz and
camera_info. The expected rows are computed independently from what was written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA

from human_video_policy.data.bag_to_dataset import (
    BagConversionConfig,
    camera_key,
    convert_bags,
)
from human_video_policy.data.bags import BagWriter, make_typestore
from human_video_policy.data.dataset_format import check_conformance
from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.errors import ConfigError
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS

T0_NS = 1_700_000_000_000_000_000
CAMERA = "/camera/camera/color/image_raw"
H, W = 48, 64
TALKER = SHARED_DATA / "rosbags" / "rosbag2_talker"


def command_at(t: float) -> np.ndarray:
    """Commanded joints (7) at time t seconds after the start."""
    k = np.arange(7)
    q = 0.3 * np.sin(0.7 * t + k) + 0.05 * k
    q[6] = 0.026 + 0.01 * np.sin(t)
    return q


def image_at(t: float) -> np.ndarray:
    """A smooth test picture that moves with t (h264 keeps such pictures well)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    r = 128 + 100 * np.sin(xx / 16.0 + 2.0 * t)
    g = 128 + 100 * np.cos(yy / 12.0 - 1.5 * t)
    b = 128 + 60 * np.sin((xx + yy) / 24.0 + t)
    return np.clip(np.dstack([r, g, b]), 0, 255).astype(np.uint8)


def make_bag(
    path: Path,
    *,
    storage: str = "mcap",
    seconds: float = 3.0,
    offset_s: float = 0.0,
    with_camera: bool = True,
    with_commands: bool = True,
    state_rate: float = 50.0,
    camera_rate: float = 15.0,
    duplicate_state_stamp: bool = False,
    clock_jump_at: float | None = None,
    command_pause: tuple[float, float] | None = None,
    image_size: tuple[int, int] = (H, W),
    compressed: bool = False,
) -> dict[str, list[tuple[int, object]]]:
    """Write a WidowX-like bag; returns what was written per topic as (stamp_ns, value).

    ``compressed``: images as ``hvp record`` stores them by default, JPEG CompressedImage on
    ``<camera>/compressed`` (``written["image"]`` then holds the decoded pictures)."""
    store = make_typestore()
    t = store.types
    Time, Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
    JointState, Image = t["sensor_msgs/msg/JointState"], t["sensor_msgs/msg/Image"]
    CameraInfo = t["sensor_msgs/msg/CameraInfo"]
    CompressedImage = t["sensor_msgs/msg/CompressedImage"]
    camera_topic = CAMERA + "/compressed" if compressed else CAMERA
    written: dict[str, list[tuple[int, object]]] = {"state": [], "command": [], "image": []}

    def header(ns: int, frame: str) -> object:
        return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame)

    events: list[tuple[int, str, object]] = []
    for i in range(int(seconds * state_rate)):
        ts = offset_s + i / state_rate
        jump = clock_jump_at is not None and ts >= clock_jump_at
        ns = T0_NS + round((ts + (5.0 if jump else 0.0)) * 1e9)
        cns = ns + 3_000_000  # commands 3 ms after states
        if duplicate_state_stamp and i == 10:
            ns = written["state"][-1][0]  # the previous state's stamp again
        q = command_at(ts - 0.02)
        state = np.append(q, -q[6])
        events.append(
            (
                ns,
                "/arm/joint_states",
                JointState(
                    header=header(ns, ""),
                    name=list(WIDOWX_STATE_JOINTS),
                    position=state,
                    velocity=np.zeros(8),
                    effort=np.zeros(0),
                ),
            )
        )
        written["state"].append((ns, state))
        paused = command_pause is not None and command_pause[0] <= ts < command_pause[1]
        if with_commands and not paused:
            cmd = command_at(ts)
            # commands listed in a shuffled joint order: the converter must reorder by name
            order = [3, 0, 6, 1, 5, 2, 4]
            events.append(
                (
                    cns,
                    "/arm/joint_commands",
                    JointState(
                        header=header(cns, ""),
                        name=[WIDOWX_COMMAND_JOINTS[j] for j in order],
                        position=cmd[order],
                        velocity=np.zeros(0),
                        effort=np.zeros(0),
                    ),
                )
            )
            written["command"].append((cns, cmd))
    if with_camera:
        h, w = image_size
        for i in range(int(seconds * camera_rate)):
            ts = offset_s + i / camera_rate
            ns = T0_NS + round(ts * 1e9) + 1_000_000
            img = image_at(ts)[:h, :w] if (h, w) != (H, W) else image_at(ts)
            if compressed:
                ok, jpeg = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
                assert ok
                events.append(
                    (
                        ns,
                        camera_topic,
                        CompressedImage(
                            header=header(ns, "camera_color_optical_frame"),
                            format="rgb8; jpeg compressed bgr8",
                            data=jpeg.reshape(-1),
                        ),
                    )
                )
                img = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1]
                written["image"].append((ns, img))
                continue
            events.append(
                (
                    ns,
                    CAMERA,
                    Image(
                        header=header(ns, "camera_color_optical_frame"),
                        height=h,
                        width=w,
                        encoding="rgb8",
                        is_bigendian=0,
                        step=w * 3,
                        data=np.ascontiguousarray(img).reshape(-1),
                    ),
                )
            )
            written["image"].append((ns, img))
        info = CameraInfo(
            header=header(T0_NS, "camera_color_optical_frame"),
            height=h,
            width=w,
            distortion_model="plumb_bob",
            d=np.zeros(5),
            k=np.array([50.0, 0, w / 2, 0, 50.0, h / 2, 0, 0, 1]),
            r=np.eye(3).reshape(-1),
            p=np.zeros(12),
            binning_x=0,
            binning_y=0,
            roi=t["sensor_msgs/msg/RegionOfInterest"](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
            ),
        )
        events.append((T0_NS, "/camera/camera/color/camera_info", info))
    events.sort(key=lambda e: e[0])
    with BagWriter(path, storage=storage, typestore=store) as bag:
        bag.add_topic("/arm/joint_states", "sensor_msgs/msg/JointState")
        if with_commands:
            bag.add_topic("/arm/joint_commands", "sensor_msgs/msg/JointState")
        if with_camera:
            image_type = "CompressedImage" if compressed else "Image"
            bag.add_topic(camera_topic, f"sensor_msgs/msg/{image_type}")
            bag.add_topic("/camera/camera/color/camera_info", "sensor_msgs/msg/CameraInfo")
        for ns, topic, msg in events:
            bag.write(topic, ns, msg)
    return written


def expected_rows(written: dict, rate: float = 10.0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Independent expectation: per 1/rate row from the latest first stamp, the newest command
    at or before it, and the image nearest to it."""
    cmd_t = np.array([s for s, _ in written["command"]])
    img_t = np.array([s for s, _ in written["image"]])
    st_t = np.array([s for s, _ in written["state"]])
    t0 = max(cmd_t[0], img_t[0], st_t[0])
    t1 = min(cmd_t[-1], img_t[-1], st_t[-1])
    times = [t0 + round(k * 1e9 / rate) for k in range(int((t1 - t0) // (1e9 / rate)) + 1)]
    actions, images = [], []
    for tt in times:
        i = int(np.nonzero(cmd_t <= tt)[0][-1])
        actions.append(written["command"][i][1])
        j = int(np.argmin(np.abs(img_t - tt)))
        images.append(written["image"][j][1])
    return np.asarray(actions, np.float32), images


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


# -- round trip ---------------------------------------------------------------------------------


def test_round_trip_bag_to_dataset_to_torch_loader(tmp_path: Path) -> None:
    import torch

    from human_video_policy.training.torch_dataset import (
        ChunkDataset,
        ChunkDatasetConfig,
        chunk_collate,
    )

    bags, written = [], []
    for i, storage in enumerate(["mcap", "sqlite3"]):
        bags.append(tmp_path / f"bag_{storage}")
        written.append(make_bag(bags[-1], storage=storage, offset_s=0.013 * i, seconds=2.0 + i))
    out = tmp_path / "ds"
    report = convert_bags(bags, out, BagConversionConfig(instruction="reach the red cube"))
    assert report.episodes == 2 and not report.failed, report.outcomes
    assert check_conformance(out) == []

    reader = DatasetReader(out)
    assert reader.validate().ok
    key = camera_key(CAMERA)
    assert reader.video_keys == [key] == ["observation.images.camera_color"]
    assert reader.names("action") == list(WIDOWX_COMMAND_JOINTS)
    assert reader.info["hvp"]["cameras"][key]["topic"] == CAMERA
    assert reader.info["hvp"]["cameras"][key]["k"][0] == 50.0
    loader_cfg = ChunkDatasetConfig(horizon=4, action_offset=0)
    dataset = ChunkDataset(reader, loader_cfg)
    for ep, w in enumerate(written):
        actions, images = expected_rows(w)
        rows = reader.episode_rows(ep)
        np.testing.assert_array_equal(rows["action"], actions)  # exact
        assert len(rows["action"]) == reader.episodes[ep]["length"] == len(actions)
        np.testing.assert_allclose(rows["timestamp"], np.arange(len(actions)) / 10.0, atol=1e-6)
        frames = reader.video_frames(ep, key)
        worst = min(psnr(a, b) for a, b in zip(frames, images, strict=True))
        assert worst > 35.0, f"episode {ep}: PSNR {worst:.1f} dB"
        # loader: chunk starting at each frame gives back the same actions, exactly
        start = reader.episodes[ep]["dataset_from_index"]
        for t in range(len(actions)):
            s = dataset[start + t]
            n_valid = min(4, len(actions) - t)
            np.testing.assert_array_equal(s["action"][:n_valid].numpy(), actions[t : t + 4])
            assert s["action_is_pad"].tolist() == [i >= n_valid for i in range(4)]
            assert s["mask.action"][n_valid:].abs().sum() == 0
            assert s["task"] == "reach the red cube"
        seek = dataset[start + 5][key][0].numpy()  # (3, H, W) in [0, 1], decoded by seeking
        assert psnr((seek.transpose(1, 2, 0) * 255).round(), images[5]) > 35.0

    loader = torch.utils.data.DataLoader(
        dataset, batch_size=8, shuffle=True, collate_fn=chunk_collate
    )
    batch = next(iter(loader))
    assert batch["action"].shape == (8, 4, 7)
    assert batch[key].shape == (8, 1, 3, H, W)
    assert batch["observation.state"].shape == (8, 1, 8)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_real_ros2_bags_that_convert_nothing_leave_nothing_behind(
    tmp_path: Path, storage: str
) -> None:
    bag = TALKER / f"{storage}_talker"
    assert (bag / "metadata.yaml").is_file(), f"real rosbag2 data missing: {bag}"
    out = tmp_path / "ds"
    report = convert_bags([bag], out)
    assert report.episodes == 0 and report.frames == 0 and not report.written
    (failure,) = report.failed
    assert "no topic(s)" in failure.error and "/topic (std_msgs/msg/String)" in failure.error
    assert "nothing written" in report.summary()
    assert list(tmp_path.iterdir()) == []  # no dataset folder, no staging folder


def test_real_bag_string_topic_as_action_is_rejected_by_type(tmp_path: Path) -> None:
    bag = TALKER / "mcap_talker"
    cfg = BagConversionConfig(camera_topics=(), state_topic="/rosout", action_topic="/topic")
    report = convert_bags([bag], tmp_path / "ds", cfg)
    assert "carries std_msgs/msg/String, expected sensor_msgs/msg/JointState" in (
        report.failed[0].error
    )


# -- bad bags: each is reported, the good one still converts ------------------------------------


def test_bad_bags_are_reported_and_the_rest_converts(tmp_path: Path) -> None:
    good = tmp_path / "good"
    make_bag(good, seconds=1.5)
    no_cmd = tmp_path / "no_commands"
    make_bag(no_cmd, seconds=1.0, with_commands=False)
    dup = tmp_path / "duplicate"
    make_bag(dup, seconds=1.0, duplicate_state_stamp=True)
    jump = tmp_path / "jump"
    make_bag(jump, seconds=2.0, clock_jump_at=1.0)
    truncated = tmp_path / "truncated"
    make_bag(truncated, storage="sqlite3", seconds=1.0)
    db = next(truncated.glob("*.db3"))
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 3])
    short = tmp_path / "short"
    make_bag(short, seconds=0.1)
    odd = tmp_path / "odd_size"
    make_bag(odd, seconds=1.0, image_size=(47, 64))
    missing = tmp_path / "does_not_exist"

    bags = [no_cmd, dup, good, jump, truncated, short, odd, missing]
    report = convert_bags(bags, tmp_path / "ds")
    errors = {Path(o.source).name: o.error for o in report.outcomes}
    assert report.episodes == 1 and [o.ok for o in report.outcomes].count(True) == 1
    assert "no topic(s) ['/arm/joint_commands']" in errors["no_commands"]
    assert "duplicate header stamps on /arm/joint_states" in errors["duplicate"]
    assert "clock jump on /arm/joint_" in errors["jump"] and "5.0" in errors["jump"]
    assert "truncated or corrupt" in errors["truncated"]
    assert "empty episode" in errors["short"]
    assert "even sides" in errors["odd_size"] and "--image-size" in errors["odd_size"]
    assert "does not exist" in errors["does_not_exist"]
    reader = DatasetReader(tmp_path / "ds")
    assert reader.num_episodes == 1
    assert reader.episodes[0]["hvp/source"].endswith("good")
    assert reader.validate().ok


def test_a_pause_in_the_commands_keeps_the_bag(tmp_path: Path) -> None:
    """Commands stop while a deadman is released or IK refuses targets: a 1.5 s gap in the
    commands (more than max_clock_jump_s) is not a clock jump; rows without a fresh command are
    dropped and the longest complete stretch is the episode."""
    bag = tmp_path / "paused"
    written = make_bag(bag, seconds=4.0, command_pause=(1.0, 2.5))
    report = convert_bags([bag], tmp_path / "ds", BagConversionConfig(max_clock_jump_s=1.0))
    assert report.outcomes[0].ok, report.outcomes[0].error
    rows = DatasetReader(tmp_path / "ds").episode_rows(0)
    t = rows["timestamp"]
    assert len(t) >= 14  # the 1.5 s after the pause at 10 Hz (the 1 s before it is shorter)
    commands = np.array([c for _, c in written["command"]])
    assert np.isin(rows["action"][:, 0], commands[:, 0].astype(np.float32)).all()


def test_a_compressed_camera_is_found_and_keeps_the_raw_topics_key(tmp_path: Path) -> None:
    """hvp record stores images as JPEG CompressedImage on ``<topic>/compressed``: from-bags,
    given the raw topic (its default, or a preset's), reads the compressed twin by itself
    under the raw topic's feature key (before: 'bag has no topic', and with --camera
    .../compressed the key camera_color_image_raw), so the robot data mixes with a human
    dataset (observation.images.camera_color, what from-video writes)."""
    from test_dataset_rm75_xhand import write_human_dataset

    from human_video_policy.data.human_episodes import DEFAULT_CAMERA_KEY
    from human_video_policy.training.torch_dataset import (
        ChunkDataset,
        ChunkDatasetConfig,
        MixedChunkDataset,
    )

    bag = tmp_path / "bag"
    written = make_bag(bag, seconds=2.0, compressed=True)
    key = camera_key(CAMERA)
    assert key == camera_key(CAMERA + "/compressed") == DEFAULT_CAMERA_KEY
    for name, camera in (("raw_name", CAMERA), ("compressed_name", CAMERA + "/compressed")):
        out = tmp_path / name
        cfg = BagConversionConfig(camera_topics=(camera,), instruction="reach")
        report = convert_bags([bag], out, cfg)
        assert report.episodes == 1, report.outcomes
        reader = DatasetReader(out)
        assert reader.video_keys == [key]
        assert reader.info["hvp"]["cameras"][key]["topic"] == CAMERA + "/compressed"
        assert reader.info["hvp"]["cameras"][key]["k"][0] == 50.0  # its camera_info found
    actions, images = expected_rows(written)
    frames = reader.video_frames(0, key)
    np.testing.assert_array_equal(reader.episode_rows(0)["action"], actions)
    worst = min(psnr(a, b) for a, b in zip(frames, images, strict=True))
    assert worst > 35.0, f"PSNR {worst:.1f} dB against the decoded JPEGs"

    write_human_dataset(tmp_path / "human", DEFAULT_CAMERA_KEY)
    cfg = ChunkDatasetConfig(horizon=4, action_space="human", image_size=(32, 32))
    human = ChunkDataset(tmp_path / "human", cfg)
    mixed = MixedChunkDataset([human, ChunkDataset(out, cfg)], normalize=False)
    sample = mixed[len(human) + 1]
    assert sample["dataset_index"] == 1 and sample[key].shape == (1, 3, 32, 32)


def test_odd_image_size_converts_with_resize(tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    make_bag(odd, seconds=1.0, image_size=(47, 64))
    cfg = BagConversionConfig(image_size=(32, 48))
    report = convert_bags([odd], tmp_path / "ds", cfg)
    assert report.episodes == 1, report.outcomes
    assert DatasetReader(tmp_path / "ds").info["features"][camera_key(CAMERA)]["shape"] == [
        32,
        48,
        3,
    ]


def test_unknown_message_type_is_reported(tmp_path: Path) -> None:
    import sqlite3

    from rosbags.typesys import get_types_from_msg

    bag = tmp_path / "unknown"
    make_bag(tmp_path / "donor", storage="sqlite3", seconds=0.5, with_camera=False)
    store = make_typestore()
    store.register(get_types_from_msg("float64 x", "lab_msgs/msg/Secret"))
    with BagWriter(bag, storage="sqlite3", typestore=store) as w:
        w.add_topic("/arm/joint_states", "sensor_msgs/msg/JointState")
        w.add_topic("/arm/joint_commands", "lab_msgs/msg/Secret")
        w.write("/arm/joint_commands", T0_NS, store.types["lab_msgs/msg/Secret"](x=1.0))
    # drop the stored definition: the type is now unknown to any reader
    with sqlite3.connect(next(bag.glob("*.db3"))) as db:
        db.execute("UPDATE message_definitions SET encoded_message_definition=''")
    report = convert_bags(
        [bag, tmp_path / "donor"], tmp_path / "ds", BagConversionConfig(camera_topics=())
    )
    assert "unknown message type(s) {'/arm/joint_commands': 'lab_msgs/msg/Secret'}" in (
        report.outcomes[0].error
    )
    assert report.outcomes[1].ok


def test_dataset_folder_must_be_new(tmp_path: Path) -> None:
    good = tmp_path / "good"
    make_bag(good, seconds=1.0, with_camera=False)
    cfg = BagConversionConfig(camera_topics=())
    report = convert_bags([good], tmp_path / "ds", cfg)
    assert report.episodes == 1
    info = json.loads((tmp_path / "ds" / "meta" / "info.json").read_text())
    assert info["video_path"] is None
    with pytest.raises(ValueError, match="not empty"):
        convert_bags([good], tmp_path / "ds", cfg)


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="rate_hz=0"):
        BagConversionConfig(rate_hz=0)
    with pytest.raises(ConfigError, match="embodiment='robot9'"):
        BagConversionConfig(embodiment="robot9")
    with pytest.raises(ConfigError, match="image_size"):
        BagConversionConfig(image_size=(31, 40))
    with pytest.raises(ConfigError, match="own topic"):
        BagConversionConfig(state_topic="/x", action_topic="/x")


def test_copied_talker_is_unchanged(tmp_path: Path) -> None:
    # converting must never write into the source bag
    src = tmp_path / "talker"
    shutil.copytree(TALKER / "mcap_talker", src)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    convert_bags([src], tmp_path / "ds")
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
