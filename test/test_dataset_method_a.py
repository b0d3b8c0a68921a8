"""``hvp dataset from-video --action-space xhand_wrist_method_a``: method A's robot space
(human_video_prompt_policy sec. III-B) from the real hand video, checked against the
pipeline's own output: retargeted XHand joints, the wrist 6D rotation and position taken from
the camera frame into the robot base frame through the configured extrinsic."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import PROJECT_ROOT, SHARED_DATA

from human_video_policy.cli import dataset_cmd, video_cmd
from human_video_policy.data.dataset_format import check_conformance
from human_video_policy.data.dataset_reader import DatasetReader
from human_video_policy.errors import HvpError
from human_video_policy.hands.rotations import matrix_from_axis_angle, rot6d_to_matrix
from human_video_policy.pipeline.episode_format import read_episode, write_episode
from human_video_policy.policies.action_spaces import XHAND_WRIST_METHOD_A, get_action_space
from human_video_policy.robots.xhand import XHAND_JOINTS

VIDEO = SHARED_DATA / "human_video" / "dexret_hand" / "human_hand_video.mp4"
CAM = "observation.images.camera_color"
FRAMES = 60
BLANK = (30, 31, 32)  # frames painted black: the tracker loses the hand, the pipeline fills them


def hvp(module, command: str, *argv: str) -> int:  # type: ignore[no-untyped-def]
    """What ``hvp <command> ...`` does (the module's argparse registration, hvp's error rule)."""
    parser = argparse.ArgumentParser(prog="hvp")
    module.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([command, *argv])
    try:
        return int(args.func(args))
    except HvpError as exc:
        print(f"hvp {command}: error: {exc}")
        return 2


def scene_extrinsic() -> np.ndarray:
    """A camera 1 m in front of the base, 0.6 m up, tilted down (not the config default)."""
    T = np.eye(4)
    R0 = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # optical z -> -x base
    T[:3, :3] = matrix_from_axis_angle([0.0, 0.5, 0.0]) @ R0
    T[:3, 3] = [1.0, -0.1, 0.6]
    return T


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first 60 frames of the real video with frames 30-32 blacked out, through ``hvp video
    process``, then ``hvp dataset from-video`` in method A's space with a given extrinsic and
    with the default one."""
    assert VIDEO.is_file(), f"shared test data missing: {VIDEO}"
    tmp = tmp_path_factory.mktemp("method_a")
    clip = tmp / "gap.mp4"
    blank = f"drawbox=enable='between(n,{BLANK[0]},{BLANK[-1]})':color=black:t=fill"
    subprocess.run(
        [*("ffmpeg", "-y", "-loglevel", "error", "-i", str(VIDEO), "-frames:v", str(FRAMES)),
         *("-vf", blank, "-c:v", "libx264", "-preset", "ultrafast", str(clip))],
        check=True, timeout=60,
    )  # fmt: skip
    out = {"videos": tmp / "videos", "ds": tmp / "ds", "default": tmp / "ds_default"}
    assert hvp(video_cmd, "video", "process", str(clip), "-o", str(out["videos"]), "-q") == 0
    out["extrinsic"] = tmp / "scene_camera.yaml"
    out["extrinsic"].write_text(
        yaml.safe_dump(
            {
                "T_base_camera": scene_extrinsic().tolist(),
                "base_frame": "base_link",
                "camera_frame": "scene_camera_optical_frame",
            }
        )
    )
    assert hvp(dataset_cmd, "dataset", "from-video", str(out["videos"]), "-o", str(out["ds"]),
               "--image-size", "64x48", "--action-space", XHAND_WRIST_METHOD_A,
               "--extrinsic", str(out["extrinsic"])) == 0  # fmt: skip
    assert hvp(dataset_cmd, "dataset", "from-video", str(out["videos"]), "-o",
               str(out["default"]), "--image-size", "64x48",
               "--action-space", XHAND_WRIST_METHOD_A) == 0  # fmt: skip
    return out


def pipeline_episode(work: dict[str, Path]):  # type: ignore[no-untyped-def]
    (folder,) = [p for p in work["videos"].iterdir() if p.is_dir()]
    (path,) = sorted(folder.glob("episode_*.npz"))
    return read_episode(path), folder


def test_method_a_dataset_is_valid_with_the_registry_names(work: dict[str, Path]) -> None:
    assert check_conformance(work["ds"]) == []
    assert hvp(dataset_cmd, "dataset", "validate", str(work["ds"])) == 0
    reader = DatasetReader(work["ds"])
    ep, _ = pipeline_episode(work)
    assert reader.spec.action_space == XHAND_WRIST_METHOD_A
    assert reader.info["hvp"]["action_space"] == XHAND_WRIST_METHOD_A
    assert reader.spec.embodiment == "human_hand"  # human data, in the robot's space
    names = [
        *XHAND_JOINTS,
        *(f"wrist_rot6d_{i}" for i in range(6)),
        "wrist_x",
        "wrist_y",
        "wrist_z",
    ]
    assert len(names) == 21
    assert list(get_action_space(XHAND_WRIST_METHOD_A).names) == names
    for key in ("action", "mask.action", "observation.state", "mask.observation.state"):
        assert reader.names(key) == names and reader.info["features"][key]["shape"] == [21]
    assert reader.info["hvp"]["action_names"] == names == reader.info["hvp"]["state_names"]
    # one episode per segment of the right hand's track piece
    segs = ep.arrays["segments"].tolist()
    assert ep.handedness == "right" and reader.num_episodes == len(segs) >= 2
    assert reader.num_frames == FRAMES
    assert [r["tasks"] for r in reader.episodes] == [[str(c)] for c in ep.arrays["captions"]]


def test_the_extrinsic_used_is_recorded(work: dict[str, Path]) -> None:
    ext = DatasetReader(work["ds"]).info["hvp"]["cameras"][CAM]["extrinsic"]
    np.testing.assert_array_equal(ext["T_base_camera"], scene_extrinsic())
    assert ext["base_frame"] == "base_link"
    assert ext["camera_frame"] == "scene_camera_optical_frame"
    assert ext["source"] == f"{work['extrinsic']}#T_base_camera"
    # no --extrinsic: the robot camera of config/ik.params.yaml (the ik node's calibration)
    params = yaml.safe_load((PROJECT_ROOT / "config" / "ik.params.yaml").read_text())
    x, y, z, qx, qy, qz, qw = params["ik"]["ros__parameters"]["camera_extrinsic"]
    q = np.array([qx, qy, qz, qw]) / np.linalg.norm([qx, qy, qz, qw])
    ext = DatasetReader(work["default"]).info["hvp"]["cameras"][CAM]["extrinsic"]
    assert ext["source"].endswith("config/ik.params.yaml#ik.ros__parameters.camera_extrinsic")
    assert ext["base_frame"] == "base_link"
    T = np.asarray(ext["T_base_camera"])
    np.testing.assert_allclose(T[:3, 3], [x, y, z])
    # quaternion (x, y, z, w) rotates vectors as R: check it on the camera's optical axis
    v = np.array([0.0, 0.0, 1.0])
    qv = np.array([qx, qy, qz]) / np.linalg.norm([qx, qy, qz, qw])
    rotated = v + 2 * q[3] * np.cross(qv, v) + 2 * np.cross(qv, np.cross(qv, v))
    np.testing.assert_allclose(T[:3, :3] @ v, rotated, atol=1e-12)


def test_columns_equal_the_pipeline_output_in_the_base_frame(work: dict[str, Path]) -> None:
    reader = DatasetReader(work["ds"])
    ep, _ = pipeline_episode(work)
    a = ep.arrays
    T = scene_extrinsic()
    R_bc, t_bc = T[:3, :3], T[:3, 3]
    # the pipeline's camera-frame wrist, through the extrinsic by hand
    p_base = a["wrist_position"] @ R_bc.T + t_bc
    R_base = np.einsum("ij,tjk->tik", R_bc, a["wrist_rotation"])
    order = [list(ep.xhand_joint_names).index(j) for j in XHAND_JOINTS]
    fingers = a["xhand_joints"][:, order]
    seen = ~(a["filled"] | a["outlier"])
    for i, (s, e) in enumerate(a["segments"].tolist()):
        rows = reader.episode_rows(i)
        np.testing.assert_array_equal(rows["source_frame_index"], a["frame_index"][s:e])
        np.testing.assert_array_equal(rows["action"], rows["observation.state"])
        np.testing.assert_array_equal(rows["mask.action"], rows["mask.observation.state"])
        ok = rows["mask.action"][:, 0] > 0
        np.testing.assert_array_equal(ok, seen[s:e])
        act = rows["action"][ok].astype(np.float64)
        np.testing.assert_allclose(act[:, :12], fingers[s:e][ok], atol=1e-6)
        np.testing.assert_allclose(act[:, 18:], p_base[s:e][ok], atol=1e-6)
        # 6D = the first two columns of the base-frame rotation
        np.testing.assert_allclose(act[:, 12:15], R_base[s:e][ok][:, :, 0], atol=1e-6)
        np.testing.assert_allclose(act[:, 15:18], R_base[s:e][ok][:, :, 1], atol=1e-6)
        # ... which form a rotation: orthonormal after Gram-Schmidt, and that rotation is R_base
        M = rot6d_to_matrix(act[:, 12:18])
        gram = np.einsum("tji,tjk->tik", M, M)
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(3), gram.shape), atol=1e-5)
        np.testing.assert_allclose(np.linalg.det(M), 1.0, atol=1e-5)
        np.testing.assert_allclose(M, R_base[s:e][ok], atol=1e-5)
        # the raw stored columns are unit and orthogonal already (float32 rounding)
        c0, c1 = act[:, 12:15], act[:, 15:18]
        np.testing.assert_allclose(np.linalg.norm(c0, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(np.einsum("ti,ti->t", c0, c1), 0.0, atol=1e-5)
    # the wrist went through the extrinsic: in the base frame it is not the camera-frame wrist
    assert np.abs(p_base - a["wrist_position"]).max() > 0.3


def test_frames_where_tracking_failed_are_masked(work: dict[str, Path]) -> None:
    reader = DatasetReader(work["ds"])
    ep, _ = pipeline_episode(work)
    # the tracker lost the hand on the black frames; the pipeline gap-filled them
    filled = ep.arrays["frame_index"][ep.arrays["filled"]].tolist()
    assert set(BLANK) <= set(filled)
    rows = {
        k: np.concatenate([reader.episode_rows(i)[k] for i in range(reader.num_episodes)])
        for k in ("source_frame_index", "action", "mask.action", "mask.observation.state")
    }
    lost = np.isin(rows["source_frame_index"], filled)
    assert lost.sum() == len(filled)
    for key in ("mask.action", "mask.observation.state"):
        assert not rows[key][lost].any() and rows[key][~lost].all()
    assert not rows["action"][lost].any()  # masked values are zero
    # the human-space dataset keeps its own rule (the filled frames stay in the track)
    human = work["ds"].parent / "human"
    assert hvp(dataset_cmd, "dataset", "from-video", str(work["videos"]), "-o", str(human),
               "--image-size", "64x48") == 0  # fmt: skip
    reader = DatasetReader(human)
    assert reader.spec.action_space == "human_hand_102" and reader.names("action")[0] == "left.dt_x"
    assert reader.info["hvp"]["cameras"][CAM].get("extrinsic") is None


def test_only_the_right_hand_becomes_episodes(
    work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ep, folder = pipeline_episode(work)
    # the same track as a left hand too: left-hand segments are not written (XHand is right)
    two = tmp_path / "two" / folder.name
    shutil.copytree(folder, two)
    ep.handedness, ep.piece = "left", 1
    write_episode(two, ep)
    record = json.loads((two / "video.json").read_text())
    right = record["episodes"][0]
    record["episodes"].append({**right, "file": ep.file_name, "handedness": "left"})
    (two / "video.json").write_text(json.dumps(record))
    assert hvp(dataset_cmd, "dataset", "from-video", str(two), "-o", str(tmp_path / "two_ds"),
               "--image-size", "64x48", "--action-space", XHAND_WRIST_METHOD_A,
               "--extrinsic", str(work["extrinsic"])) == 0  # fmt: skip
    reader = DatasetReader(tmp_path / "two_ds")
    assert reader.num_episodes == len(ep.arrays["segments"])
    assert all(r["hvp/source"].split("#")[0].endswith("_right.npz") for r in reader.episodes)
    assert all(not t.startswith("Left hand:") for t in reader.tasks)
    # a video with only a left hand: skipped, with the reason
    (two / right["file"]).unlink()
    record["episodes"] = record["episodes"][1:]
    (two / "video.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert hvp(dataset_cmd, "dataset", "from-video", str(two), "-o", str(tmp_path / "left_ds"),
               "--action-space", XHAND_WRIST_METHOD_A) == 0  # fmt: skip
    assert "skipped (no right-hand segment" in capsys.readouterr().out
    assert DatasetReader(tmp_path / "left_ds").num_episodes == 0


@pytest.mark.parametrize(
    ("content", "field", "reason"),
    [
        (
            {"T_base_camera": [[1, 0, 0, 0], [0, 1.2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]},
            "T_base_camera",
            "not a rotation",
        ),
        (
            {"T_base_camera": [[1, 0, 0, float("nan")], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]},
            "T_base_camera",
            "NaN",
        ),
        (
            {
                "robot_cam": {
                    "ros__parameters": {"camera_extrinsic": [0, 0, float("nan"), 0, 0, 0, 1]}
                }
            },
            "robot_cam.ros__parameters.camera_extrinsic",
            "finite",
        ),
        ({"camera_extrinsic": [0, 0, 0, 0, 0, 0, 2]}, "camera_extrinsic", "unit norm"),
        ({"T_base_camera": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}, "T_base_camera", "shape (4, 4)"),
        ({"camera": [1, 2, 3]}, "camera_extrinsic", "found neither"),
        (
            {n: {"ros__parameters": {"camera_extrinsic": [0, 0, 0, 0, 0, 0, 1]}} for n in "ab"},
            "camera_extrinsic",
            "several nodes",
        ),
    ],
)
def test_a_bad_extrinsic_is_refused_naming_the_field(
    work: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    content: dict,
    field: str,
    reason: str,
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(content))
    out = tmp_path / "ds"
    capsys.readouterr()
    assert hvp(dataset_cmd, "dataset", "from-video", str(work["videos"]), "-o", str(out),
               "--action-space", XHAND_WRIST_METHOD_A, "--extrinsic", str(bad)) == 2  # fmt: skip
    text = capsys.readouterr().out
    assert f"extrinsic file {bad}: " in text and field in text and reason in text, text
    assert not out.exists()


def test_extrinsic_only_with_method_a_and_loads_for_training(
    work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    capsys.readouterr()
    assert hvp(dataset_cmd, "dataset", "from-video", str(work["videos"]), "-o",
               str(tmp_path / "x"), "--extrinsic", str(work["extrinsic"])) == 2  # fmt: skip
    assert "--extrinsic is used only with --action-space xhand_wrist_method_a" in (
        capsys.readouterr().out
    )
    from human_video_policy.errors import InputError
    from human_video_policy.training.torch_dataset import ChunkDataset, ChunkDatasetConfig

    data = ChunkDataset(work["ds"], ChunkDatasetConfig(image_keys=()))
    sample = data[0]
    assert tuple(sample["action"].shape) == (16, 21)
    assert tuple(sample["mask.action"].shape) == (16, 21)
    with pytest.raises(InputError, match="differ from embodiment human_hand"):
        ChunkDataset(work["ds"], ChunkDatasetConfig(image_keys=(), action_space="human"))


def test_the_method_a_config_trains_one_head_per_part(
    work: dict[str, Path], tmp_path: Path
) -> None:
    """config/train/dit_method_a.yaml on the method-A dataset (tiny overrides): the DiT gets
    the three heads of the space's groups and logs a loss for each."""
    from human_video_policy.cli.main import main as hvp_main

    run = tmp_path / "run"
    argv = [
        "train",
        str(PROJECT_ROOT / "config" / "train" / "dit_method_a.yaml"),
        f"data.sources[0].path={work['ds']}",
        "data.image_size=[32,32]",
        "policy.config.image_size=[32,32]",
        "policy.config.size=tiny",
        "data.batch_size=4",
        "data.samples_per_episode=1",
        "data.normalization_samples=8",
        "optim.warmup_steps=1",
        "train.steps=2",
        "train.log_every=1",
        "train.checkpoint_every=2",
        "train.progress=false",
        f"train.output_dir={run}",
    ]
    assert hvp_main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    text = json.dumps(metrics)
    for part in ("loss_fingers", "loss_wrist_rotation", "loss_wrist_position"):
        assert part in text, metrics
    config = yaml.safe_load((run / "config.yaml").read_text())
    heads = config["policy"]["config"]["heads_split"]  # stored resolved from the registry
    assert [(h["name"], h["start"], h["stop"]) for h in heads] == [
        ("fingers", 0, 12),
        ("wrist_rotation", 12, 18),
        ("wrist_position", 18, 21),
    ]
    # The run resumes from its own config (heads written resolved, read back as given).
    assert hvp_main([*argv, "train.steps=3", "--resume"]) == 0
