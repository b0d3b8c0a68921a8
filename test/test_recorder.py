"""EpisodeRecorder: split per episode, markers, both storages, SIGKILL and a full disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from human_video_policy.data import BagReader
from human_video_policy.data.bag_repair import read_custom_data, repair_bag, repair_tree
from human_video_policy.data.recorder import (
    MARKER_TOPICS,
    EpisodeRecorder,
    RecorderConfig,
)
from human_video_policy.errors import ConfigError, InputError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STRING = "std_msgs/msg/String"
JOINTS = "sensor_msgs/msg/JointState"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _joint_state(store, i: int) -> bytes:
    t = store.types
    msg = t[JOINTS](
        header=t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=i, nanosec=7), frame_id="base"
        ),
        name=["waist", "shoulder"],
        position=np.array([0.1 * i, -0.2], dtype=np.float64),
        velocity=np.zeros(2),
        effort=np.zeros(0),
    )
    return bytes(store.serialize_cdr(msg, JOINTS))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_two_episodes_split_files_markers_and_exact_content(tmp_path: Path, storage: str) -> None:
    clock = FakeClock()
    rec = EpisodeRecorder(
        RecorderConfig(tmp_path, session="s1", storage=storage, fsync=False, instruction="pick"),
        clock=clock,
    )
    store = rec.typestore
    sent: dict[int, list[tuple[int, bytes]]] = {1: [], 2: []}
    for episode in (1, 2):
        base = episode * 10_000_000_000
        rec.start_episode(base, instruction="pick" if episode == 1 else "place")
        for i in range(40):
            clock.t += 0.05  # 2 s of messages per episode -> 4+ files of 0.5 s
            data = _joint_state(store, i)
            assert rec.record("/arm/joint_states", JOINTS, data, base + 1000 + i)
            sent[episode].append((base + 1000 + i, data))
        summary = rec.stop_episode(base + 5000, success=episode == 1)
        assert summary.messages == 40 + 3 + 1  # data + start, instruction, success, stop
    assert not rec.record("/arm/joint_states", JOINTS, _joint_state(store, 0), 1)
    assert rec.ignored_outside_episode == 1

    episodes = sorted((tmp_path / "s1").iterdir())
    assert [p.name for p in episodes] == ["episode_000001", "episode_000002"]
    suffix = ".mcap" if storage == "mcap" else ".db3"
    for episode, path in zip((1, 2), episodes, strict=True):
        files = sorted(p.name for p in path.iterdir() if p.suffix == suffix)
        assert len(files) >= 4, files  # split every 0.5 s of the recorder's clock
        assert not list(path.glob(".part_*"))
        with BagReader(path) as bag:
            assert bag.storage == storage
            topics = bag.topics
            assert topics["/arm/joint_states"].count == 40
            assert topics["/episode/start"].msgtype == "std_msgs/msg/UInt32"
            got = [(s, d) for _, s, d in bag.messages(["/arm/joint_states"], raw=True)]
            assert got == sent[episode]
            markers = {t: [m.data for _, _, m in bag.messages([t])] for t in MARKER_TOPICS}
            assert markers["/episode/start"] == [episode]
            assert markers["/episode/stop"] == [episode]
            assert markers["/episode/success"] == [episode == 1]
            assert markers["/task/instruction"] == ["pick" if episode == 1 else "place"]
            assert bag.start_ns == episode * 10_000_000_000
            assert bag.end_ns == episode * 10_000_000_000 + 5000
        custom = read_custom_data(path)
        assert custom["hvp.episode"] == str(episode)
        assert custom["hvp.success"] == ("true" if episode == 1 else "false")
        assert custom["hvp.end_reason"] == "stopped"
        assert custom["hvp.instruction"] == ("pick" if episode == 1 else "place")
        # the plain rosbags reader (what many tools use) reads the split bag too
        reader = Reader(path)
        reader.open()
        try:
            assert reader.message_count == 44
            assert len(list(reader.messages())) == 44  # metadata and storage QoS agree
        finally:
            reader.close()

    # a new recorder in the same session continues the numbering
    rec2 = EpisodeRecorder(RecorderConfig(tmp_path, session="s1", storage=storage, fsync=False))
    assert rec2.start_episode(1).index == 3
    rec2.close()
    assert read_custom_data(tmp_path / "s1" / "episode_000003")["hvp.end_reason"] == "shutdown"


def test_messages_as_objects_and_bad_input(tmp_path: Path) -> None:
    rec = EpisodeRecorder(RecorderConfig(tmp_path, session="x", fsync=False))
    store = rec.typestore
    with pytest.raises(InputError, match="no episode"):
        rec.stop_episode(1)
    rec.start_episode(100)
    rec.record("/chat", STRING, store.types[STRING](data="hello"), 200)
    with pytest.raises(InputError, match="too short for CDR"):
        rec.record("/chat", STRING, b"\x00", 201)
    with pytest.raises(InputError, match="carries std_msgs/msg/String"):
        rec.record("/chat", "std_msgs/msg/UInt32", _joint_state(store, 1), 202)
    with pytest.raises(InputError, match="unknown"):
        rec.record("/x", "nope_msgs/msg/Thing", b"\x00\x01\x00\x00abcd", 203)
    with pytest.raises(InputError, match="written by the recorder"):
        rec.record("/episode/start", "std_msgs/msg/UInt32", b"\x00\x01\x00\x00abcd", 204)
    with pytest.raises(InputError, match="must start with '/'"):
        rec.record("chat", STRING, b"\x00\x01\x00\x00abcd", 205)
    with pytest.raises(InputError, match="stamp_ns"):
        rec.record("/chat", STRING, b"\x00\x01\x00\x00abcd", -1)
    with pytest.raises(InputError, match="is a dict"):
        rec.record("/chat", STRING, {"data": "x"}, 206)
    rec.stop_episode(300)
    with BagReader(tmp_path / "x" / "episode_000001") as bag:
        assert [m.data for _, _, m in bag.messages(["/chat"])] == ["hello"]
    for bad in (
        {"storage": "rosbag1"},
        {"split_period_s": 5.0},
        {"split_period_s": 0.0},
        {"session": "a/b"},
    ):
        with pytest.raises(ConfigError):
            RecorderConfig(tmp_path, **bad)


# -- SIGKILL: bounded loss ------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys, time
    from human_video_policy.data.recorder import EpisodeRecorder, RecorderConfig
    out, storage = sys.argv[1], sys.argv[2]
    rec = EpisodeRecorder(RecorderConfig(out, session="kill", storage=storage, split_period_s=0.5))
    store = rec.typestore
    String = store.types["std_msgs/msg/String"]
    rec.start_episode(time.time_ns(), instruction="wave")
    i = 0
    while True:
        stamp = time.time_ns()
        rec.record("/chat", "std_msgs/msg/String",
                   store.serialize_cdr(String(data="x" * 2000 + str(i)), "std_msgs/msg/String"),
                   stamp)
        print(stamp, flush=True)  # sent = handed to the recorder
        i += 1
        time.sleep(0.005)
    """
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sigkill_mid_episode_loses_at_most_one_second(tmp_path: Path, storage: str) -> None:
    log = tmp_path / "sent.txt"
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), storage],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and log.read_text().count("\n") < 300:
            assert child.poll() is None, log.read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(0.7)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    sent = [int(line) for line in log.read_text().split()]
    assert len(sent) > 300
    bag = tmp_path / "kill" / "episode_000001"

    # readable at once: metadata.yaml lists the files closed before the kill
    with BagReader(bag) as reader:
        before_repair = [s for _, s, _ in reader.messages(["/chat"], raw=True)]
    report = repair_bag(bag, fsync=False)
    assert len(report.incomplete) <= 1  # only the file being written when killed
    with BagReader(bag) as reader:
        stamps = [s for _, s, _ in reader.messages(["/chat"], raw=True)]
        texts = [m.data for _, _, m in reader.messages(["/chat"])]
        assert [m.data for _, _, m in reader.messages(["/task/instruction"])] == ["wave"]
    assert stamps == sent[: len(stamps)]  # nothing reordered or corrupted
    assert texts[-1].endswith(str(len(stamps) - 1))
    assert len(before_repair) <= len(stamps)
    loss_s = (sent[-1] - stamps[-1]) * 1e-9
    print(f"SIGKILL loss ({storage}): {loss_s:.3f} s, {len(stamps)} of {len(sent)} kept")
    assert 0 <= loss_s <= 1.0, f"lost {loss_s:.3f} s of {len(sent)} messages"
    assert read_custom_data(bag)["hvp.end_reason"] == "interrupted"


# -- disk full ------------------------------------------------------------------------------

_FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    from human_video_policy.data.recorder import (
        EpisodeRecorder, RecorderConfig, RecorderStorageError)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    out, storage = sys.argv[1], sys.argv[2]
    t = [0.0]
    rec = EpisodeRecorder(RecorderConfig(out, session="full", storage=storage, split_period_s=1.0),
                          clock=lambda: t[0])
    store = rec.typestore
    UInt8 = store.types["std_msgs/msg/UInt8MultiArray"]
    import numpy as np
    layout = store.types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
    blob = store.serialize_cdr(UInt8(layout=layout, data=np.full(300_000, 7, np.uint8)),
                               "std_msgs/msg/UInt8MultiArray")
    rec.start_episode(1)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, 3_000_000))
    try:
        for i in range(100):
            t[0] += 0.5 if i < 6 else 0.01   # 3 small files, then one that outgrows the limit
            rec.record("/blob", "std_msgs/msg/UInt8MultiArray", blob, 1000 + i)
    except RecorderStorageError as exc:
        print("ERROR", exc, flush=True)
        try:
            rec.record("/blob", "std_msgs/msg/UInt8MultiArray", blob, 99999)
        except RecorderStorageError as again:
            print("AGAIN", again, flush=True)
        sys.exit(3)
    print("NO ERROR")
    """
)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_disk_full_stops_with_clear_error_and_keeps_a_readable_bag(
    tmp_path: Path, storage: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(tmp_path), storage],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "ERROR disk full" in result.stdout
    assert "recording stopped" in result.stdout and "hvp record repair" in result.stdout
    assert "AGAIN recording stopped earlier" in result.stdout
    bag = tmp_path / "full" / "episode_000001"
    with BagReader(bag) as reader:
        stamps = [s for _, s, _ in reader.messages(["/blob"], raw=True)]
        sizes = {len(d) for _, _, d in reader.messages(["/blob"], raw=True)}
    assert stamps == list(range(1000, 1000 + len(stamps)))
    assert len(stamps) >= 4  # the files closed before the disk filled
    assert len(sizes) == 1 and sizes.pop() > 300_000
    assert read_custom_data(bag)["hvp.end_reason"] == "disk_full"
    reports = repair_tree(tmp_path / "full", fsync=False)
    assert reports[0].message_count >= len(stamps)


def test_repair_rebuilds_missing_metadata_and_adopts_a_finished_part(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = EpisodeRecorder(RecorderConfig(tmp_path, session="r", fsync=False), clock=clock)
    store = rec.typestore
    rec.start_episode(10)
    for i in range(10):
        clock.t += 0.2
        rec.record("/arm/joint_states", JOINTS, _joint_state(store, i), 100 + i)
    rec.stop_episode(500, success=True)
    bag = tmp_path / "r" / "episode_000001"
    files = sorted(bag.glob("*.mcap"))
    # simulate a kill between closing a file and moving it into place
    part = bag / ".part_000099"
    part.mkdir()
    files[-1].replace(part / ".part_000099.mcap")
    (bag / "metadata.yaml").unlink()
    (bag / ".part_000100").mkdir()
    (bag / ".part_000100" / ".part_000100.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 50)
    report = repair_bag(bag, fsync=False)
    assert report.message_count == 13  # 10 + start, success, stop markers
    assert list(report.incomplete) == [".part_000100/.part_000100.mcap"]
    assert "cannot be read" in report.incomplete[".part_000100/.part_000100.mcap"]
    with BagReader(bag) as reader:
        assert reader.topics["/arm/joint_states"].count == 10
        assert [s for _, s, _ in reader.messages(["/arm/joint_states"])] == list(range(100, 110))
    assert read_custom_data(bag) == {}  # metadata.yaml was gone: nothing to carry over
    with pytest.raises(InputError, match=r"no \.mcap or \.db3"):
        repair_bag(tmp_path)
    assert "left out .part_000100" in report.summary()
