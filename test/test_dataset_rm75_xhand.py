"""The RM75 + XHand embodiment: a dataset converted with the ``teleop_rm75_xhand`` preset is
``rm75_xhand`` (not "unknown") and mixes with a human dataset in the 102-d human space: the
XHand fingers land on their nearest MANO joints (as the bare XHand's do), the arm is masked.

The bag is written here with the project's BagWriter, with the topics the teleop graph records;
the human dataset is written with the human-episode spec ``hvp dataset from-video`` uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from human_video_policy.data.bag_to_dataset import conversion_preset, convert_bags
from human_video_policy.data.bags import BagWriter, make_typestore
from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.data.dataset_writer import DatasetWriter
from human_video_policy.data.embodiment import EMBODIMENTS, human_dim
from human_video_policy.data.human_episodes import (
    DEFAULT_CAMERA_KEY,
    HumanDatasetConfig,
    human_dataset_spec,
)
from human_video_policy.errors import InputError
from human_video_policy.policies.action_spaces import RM75_XHAND_JOINT_POSITION
from human_video_policy.robots.rm75 import RM75_ARM_JOINTS, RM75_XHAND_JOINTS
from human_video_policy.robots.xhand import XHAND_JOINTS
from human_video_policy.training.torch_dataset import (
    ChunkDataset,
    ChunkDatasetConfig,
    MixedChunkDataset,
)

ROBOT_VIEW = "/robot_view/camera/color/image_raw"  # config/datasets/teleop_rm75_xhand.yaml
H = W = 32
T0_NS = 1_700_000_000 * 10**9


def _q(t: float, n: int, base: float) -> np.ndarray:
    return base + 0.2 * np.sin(t + np.arange(n))


def write_teleop_bag(path: Path, seconds: float = 2.0) -> None:
    """What `hvp record` keeps of the teleop graph: the robot view, arm and hand states and
    commands (states at 50 Hz, commands 3 ms later, the camera at 15 Hz)."""
    store = make_typestore()
    t = store.types
    Time, Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
    JointState, Image = t["sensor_msgs/msg/JointState"], t["sensor_msgs/msg/Image"]

    def header(ns: int) -> object:
        return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="")

    def joints(ns: int, names: tuple[str, ...], q: np.ndarray) -> object:
        empty = np.zeros(0)
        return JointState(header=header(ns), name=list(names), position=q, velocity=empty,
                          effort=empty)  # fmt: skip

    events: list[tuple[int, str, object]] = []
    for i in range(int(seconds * 50)):
        ts = i / 50
        ns = T0_NS + round(ts * 1e9)
        for topic, names, base, delay in (
            ("/arm/joint_states", RM75_ARM_JOINTS, 0.5, 0),
            ("/hand/joint_states", XHAND_JOINTS, 0.3, 0),
            ("/arm/joint_commands", RM75_ARM_JOINTS, 0.5, 3_000_000),
            ("/hand/joint_commands", XHAND_JOINTS, 0.3, 3_000_000),
        ):
            lead = 0.02 if "commands" in topic else 0.0  # commands run ahead of the states
            events.append(
                (ns + delay, topic, joints(ns + delay, names, _q(ts + lead, len(names), base)))
            )
    for i in range(int(seconds * 15)):
        ns = T0_NS + round(i / 15 * 1e9) + 1_000_000
        pixels = np.full((H, W, 3), (8 * i) % 256, np.uint8)
        image = Image(header=header(ns), height=H, width=W, encoding="rgb8", is_bigendian=0,
                      step=W * 3, data=pixels.reshape(-1))  # fmt: skip
        events.append((ns, ROBOT_VIEW, image))
    events.sort(key=lambda e: e[0])
    with BagWriter(path, typestore=store) as bag:
        for topic in ("/arm/joint_states", "/hand/joint_states"):
            bag.add_topic(topic, "sensor_msgs/msg/JointState")
        for topic in ("/arm/joint_commands", "/hand/joint_commands"):
            bag.add_topic(topic, "sensor_msgs/msg/JointState")
        bag.add_topic(ROBOT_VIEW, "sensor_msgs/msg/Image")
        for ns, topic, msg in events:
            bag.write(topic, ns, msg)


def write_human_dataset(root: Path, key: str, frames: int = 20) -> None:
    """One right-hand episode in the human space (as `hvp dataset from-video` writes it)."""
    config = HumanDatasetConfig(image_size=(H, W), camera_key=key)
    camera = {"width": W, "height": H, "k": [30.0, 0.0, 16.0, 0.0, 30.0, 16.0, 0.0, 0.0, 1.0]}
    writer = DatasetWriter(root, human_dataset_spec(10.0, H, W, config, camera))
    rng = np.random.default_rng(0)
    right = np.zeros((frames, 102), np.float32)
    right[:, 51:] = 1.0
    writer.add_episode(
        {
            "observation.state": rng.normal(0, 0.3, (frames, 102)) * right,
            "mask.observation.state": right,
            "action": rng.normal(0, 0.3, (frames, 102)) * right,
            "mask.action": right,
            "segment_index": np.zeros(frames, np.int64),
            "source_frame_index": np.arange(frames),
            "human.hand_keypoints": np.zeros((frames, 126)),
        },
        "Left hand: None. Right hand: wave.",
        {key: np.full((frames, H, W, 3), 128, np.uint8)},
    )
    writer.finalize()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("rm75_xhand")
    write_teleop_bag(tmp / "bag")
    report = convert_bags(
        [tmp / "bag"], tmp / "robot", conversion_preset("teleop_rm75_xhand", instruction="wave")
    )
    assert report.episodes == 1 and not report.failed, report.outcomes
    # as `hvp dataset from-video` writes it: the preset's camera_keys give the robot view this key
    write_human_dataset(tmp / "human", DEFAULT_CAMERA_KEY)
    return {"robot": tmp / "robot", "human": tmp / "human"}


def test_the_teleop_preset_gives_the_rm75_xhand_embodiment(datasets: dict[str, Path]) -> None:
    reader = DatasetReader(datasets["robot"])
    assert reader.validate().ok, reader.validate()
    assert reader.spec.embodiment == "rm75_xhand" != "unknown"
    assert reader.spec.action_space == RM75_XHAND_JOINT_POSITION
    assert reader.names("action") == reader.names("observation.state") == list(RM75_XHAND_JOINTS)


def test_the_robot_dataset_mixes_with_human_data(datasets: dict[str, Path]) -> None:
    cfg = ChunkDatasetConfig(horizon=4, action_space="human", image_size=(H, W))
    robot = ChunkDataset(datasets["robot"], cfg)  # refused before: "has no mapping"
    human = ChunkDataset(datasets["human"], cfg)
    mixed = MixedChunkDataset([human, robot], normalize=False)
    sample = mixed[len(human) + 2]
    assert sample["dataset_index"] == 1 and sample["embodiment"] == "rm75_xhand"
    action, mask = sample["action"].numpy(), sample["mask.action"].numpy()
    assert action.shape == (4, 102) and mask.shape == (4, 102)
    emb = EMBODIMENTS["rm75_xhand"]
    xhand = EMBODIMENTS["xhand"]
    mapped = {m.robot_joint: m.human_index for m in emb.mappings}
    assert mapped == {m.robot_joint: m.human_index for m in xhand.mappings}  # fingers as XHand
    assert set(emb.unmapped_joints) == set(RM75_ARM_JOINTS)  # the arm is masked
    assert np.array_equal(mask[0] > 0, emb.human_mask() > 0) and mask[0].sum() == 12
    assert not mask[:, :51].any()  # right hand only
    # the commanded finger joints land on their MANO joint, exactly
    rows = DatasetReader(datasets["robot"]).episode_rows(0)
    index1 = RM75_XHAND_JOINTS.index("right_hand_index_joint1")
    np.testing.assert_array_equal(
        action[:, human_dim("right", "index1", "flexion")], rows["action"][3:7, index1]
    )
    state_mask = sample["mask.observation.state"].numpy().reshape(-1, 102)
    assert np.all(state_mask.sum(-1) == 12)  # the measured fingers, the arm masked
    # back to the robot's 19 joints: the fingers from the human values, the arm from fill
    fill = rows["action"][3:7]
    back = emb.from_human(action, fill=fill)
    np.testing.assert_allclose(back, fill, atol=1e-6)
    with pytest.raises(InputError, match="have no human counterpart"):
        emb.from_human(action)
