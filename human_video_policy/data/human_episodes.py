"""Processed hand videos (``hvp video process`` output) -> dataset episodes of the human hand.

Why: VITRA trains one model on human and robot V-L-A episodes. Here the per-hand track pieces
of the video pipeline become episodes in the same LeRobot v3 format the robot data uses, with
``embodiment = "human_hand"`` and the 102-d two-hand action space with masks, so a loader can
mix both in one batch (:mod:`human_video_policy.training.torch_dataset`).

One dataset episode per **atomic segment** of one hand's track piece (VITRA makes one episode
per atomic action; sec. 3.2). Its columns, per frame ``t`` of the segment:

* ``observation.state`` (102): per hand ``[wrist position (3, m), Euler xyz of the wrist
  rotation (3, rad), joint angles (45, rad)]`` in the camera frame (VITRA sec. 4.1), left hand
  0..50, right hand 51..101 (:data:`~human_video_policy.data.embodiment.HUMAN_STATE_NAMES`);
* ``action`` (102): per hand the pipeline's 51-d action of the transition **into** frame ``t``
  (``actions_51[t - 1]``: ``[dp, dR, theta_t]``), so that, as for robot rows (the command in
  force at ``t``), a chunk for an observation at ``t`` with ``action_offset=1`` holds the
  transitions ``t -> t+1, t+1 -> t+2 ...`` (VITRA's ``a_t .. a_{t+N}``);
* ``mask.action`` / ``mask.observation.state`` (102): 1 where the hand is tracked at that frame
  (the action also needs the previous frame in the same track piece); a hand that is not
  present is 0 and its values are 0;
* ``human.hand_keypoints`` (2, 21, 3): lifted 3D keypoints (m, camera frame), 0 if absent;
* ``segment_index``: the segment's index within its track piece; ``source_frame_index``: the
  frame number in the source video;
* the camera (``camera_key``): the source video's frames, centre-cropped to ``image_size`` and
  resized with ``cv2.INTER_AREA`` (or, without ``image_size``, scaled to ``max_side``).

The other hand is filled in where one of its track pieces covers the frame (two-hand episodes),
and the task is then ``"Left hand: <caption>. Right hand: <caption>."`` as VITRA words
instructions (sec. 4.1.3); with one hand the task is its segment caption. ``hvp/prompt_video``
holds the source video and the segment's time range as a W3C media fragment
(``/path/video.mp4#t=1.200,2.400``); ``hvp/source`` the episode file it came from.

**Method A robot space** (``HumanDatasetConfig(action_space=XHAND_WRIST_METHOD_A)``,
human_video_prompt_policy sec. III-B): the pipeline's wrist pose and retargeted XHand joints
become the 21-d ``xhand_wrist_method_a`` space of the robot (policies/action_spaces.py): the 12
XHand joints (``xhand_joints``, XHAND_JOINTS order), the wrist rotation as its first two
columns (continuous 6D, ``wrist_rot6d_0..5``) and the wrist position (``wrist_x/y/z``, m), the
pose taken from the camera frame into the robot base frame through ``extrinsics``
(``T_base_camera``: ``R_base = R_bc R_cam``, ``p_base = R_bc p_cam + t``). The XHand is a right
hand, so only the **right** hand's segments become episodes. Per row ``t`` both
``observation.state`` and ``action`` hold the quantities at frame ``t`` (an absolute target, as
a robot row holds the command in force at ``t``: with ``action_offset=1`` the chunk for an
observation at ``t`` holds the poses of ``t+1 .. t+N``). The masks (21) are 0, and the values
0, on frames where the tracker did not see the hand (the pipeline gap-filled it, ``filled``) or
its detection was replaced as an outlier (``outlier``). The extrinsic used and where it came
from are in ``info["hvp"]["cameras"][camera_key]["extrinsic"]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from human_video_policy.camera.pinhole import CameraExtrinsics
from human_video_policy.data.dataset_format import (
    HAND_KEYPOINTS_KEY,
    DatasetSpec,
    FeatureSpec,
    hand_keypoints_feature,
    vector_feature,
    video_feature,
)
from human_video_policy.data.dataset_reader import resize_area
from human_video_policy.data.dataset_writer import DatasetWriter
from human_video_policy.data.embodiment import (
    HAND_DIM,
    HUMAN_ACTION_NAMES,
    HUMAN_DIM,
    HUMAN_STATE_NAMES,
)
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.rotations import euler_xyz_from_matrix, matrix_to_rot6d
from human_video_policy.pipeline.episode_format import (
    VIDEO_RECORD_NAME,
    HandEpisode,
    read_episode,
    read_video_record,
)
from human_video_policy.policies.action_spaces import (
    HUMAN_HAND_102,
    XHAND_WRIST_METHOD_A,
    get_action_space,
)
from human_video_policy.robots.xhand import XHAND_JOINTS
from human_video_policy.validation import check_choice, check_int_range

HANDS = ("left", "right")
DEFAULT_CAMERA_KEY = "observation.images.camera_color"
#: Action spaces ``hvp dataset from-video`` writes.
VIDEO_ACTION_SPACES = (HUMAN_HAND_102, XHAND_WRIST_METHOD_A)
#: The hand the method-A robot space is written for (the XHand is a right hand).
METHOD_A_HAND = "right"
#: Where the camera -> robot base extrinsic comes from by default: the robot's camera in the ik
#: node's parameters (``ik.ros__parameters.camera_extrinsic``), one place for the calibration.
DEFAULT_EXTRINSIC_FILE = ("config", "ik.params.yaml")


@dataclass(frozen=True)
class HumanDatasetConfig:
    """How processed hand videos become dataset episodes.

    Fields:
        image_size: (height, width) of the stored frames: centre-cropped to this aspect and
            resized (``cv2.INTER_AREA``); None keeps the source aspect and scales the longest
            side to ``max_side``. Both must be even (h264/yuv420p). Store at the training size
            to make loading cheap.
        max_side: longest side (px) when ``image_size`` is None (rounded to even sides).
        camera_key: the camera feature; the robot datasets' key by default, so human and robot
            images share one key in a mixed batch.
        min_frames: segments shorter than this many frames are skipped (a chunk needs frames).
        action_space: ``human_hand_102`` (default: VITRA's two-hand space) or
            ``xhand_wrist_method_a`` (method A's robot space, right hand only; see the module
            docstring).
        extrinsics: ``T_base_camera`` of the video's camera in the robot base frame; required
            by ``xhand_wrist_method_a`` and refused with the human space (it would be unused).
            :func:`load_extrinsics` reads one from YAML.
        extrinsics_source: where ``extrinsics`` came from (``FILE#field``), recorded in the
            dataset metadata with the transform.
    """

    image_size: tuple[int, int] | None = None
    max_side: int = 320
    camera_key: str = DEFAULT_CAMERA_KEY
    min_frames: int = 2
    action_space: str = HUMAN_HAND_102
    extrinsics: CameraExtrinsics | None = None
    extrinsics_source: str = ""

    def __post_init__(self) -> None:
        size = self.image_size
        if size is not None and (
            len(size) != 2 or any(not isinstance(v, int) or v < 2 or v % 2 for v in size)
        ):
            raise ConfigError(f"image_size={size!r} is invalid: (height, width), even ints >= 2")
        check_int_range("max_side", self.max_side, 2, 4096)
        if not self.camera_key.startswith("observation.images.") or "/" in self.camera_key:
            raise ConfigError(
                f"camera_key={self.camera_key!r} is invalid: 'observation.images.<name>', no '/'"
            )
        check_int_range("min_frames", self.min_frames, 1)
        check_choice("action_space", self.action_space, VIDEO_ACTION_SPACES)
        if self.extrinsics is not None and not isinstance(self.extrinsics, CameraExtrinsics):
            raise ConfigError(f"extrinsics={self.extrinsics!r} is invalid: a CameraExtrinsics")
        if self.method_a and self.extrinsics is None:
            raise ConfigError(
                f"action_space={self.action_space} needs extrinsics (T_base_camera): the wrist "
                "pose is written in the robot base frame"
            )
        if not self.method_a and self.extrinsics is not None:
            raise ConfigError(
                f"extrinsics are used only by action_space={XHAND_WRIST_METHOD_A}, not by "
                f"{self.action_space} (camera-frame actions)"
            )

    @property
    def method_a(self) -> bool:
        """True when the method-A robot space is written."""
        return self.action_space == XHAND_WRIST_METHOD_A

    @property
    def hands(self) -> tuple[str, ...]:
        """The hands whose segments become episodes."""
        return (METHOD_A_HAND,) if self.method_a else HANDS


def load_extrinsics(path: str | Path | None = None) -> tuple[CameraExtrinsics, str]:
    """``T_base_camera`` from a YAML file (:meth:`CameraExtrinsics.from_yaml` lists the forms),
    or by default from config/ik.params.yaml (the robot camera the ik node uses); returns it and
    ``FILE#field``. A bad extrinsic is a ConfigError naming the file and the field."""
    if path is None:
        from human_video_policy.resources import resource_path

        path = resource_path(*DEFAULT_EXTRINSIC_FILE)
    return CameraExtrinsics.from_yaml(path)


@dataclass
class VideoConversion:
    """What happened to one processed video: ``episodes`` written, or why not."""

    folder: str
    status: str  # "ok", "skipped" (the pipeline found no hands / failed) or "failed"
    episodes: int = 0
    frames: int = 0
    source_seconds: float = 0.0
    error: str = ""


@dataclass
class HumanConversionReport:
    """Result of :func:`convert_hand_videos`."""

    dataset: str
    videos: list[VideoConversion] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def failed(self) -> list[VideoConversion]:
        return [v for v in self.videos if v.status == "failed"]

    @property
    def episodes(self) -> int:
        return sum(v.episodes for v in self.videos)

    @property
    def frames(self) -> int:
        return sum(v.frames for v in self.videos)

    def summary(self) -> str:
        ok = sum(v.status == "ok" for v in self.videos)
        skipped = sum(v.status == "skipped" for v in self.videos)
        seconds = sum(v.source_seconds for v in self.videos)
        speed = f", {seconds / self.wall_s:.1f}x real time" if self.wall_s > 0 else ""
        return (
            f"{ok}/{len(self.videos)} video(s) converted, {self.episodes} episodes, "
            f"{self.frames} frames, {skipped} skipped, {len(self.failed)} failed "
            f"({self.wall_s:.1f} s{speed})"
        )


@dataclass
class _Segment:
    """One dataset episode being assembled: source frames [start, end) and its columns."""

    start: int
    end: int
    task: str
    columns: dict[str, np.ndarray]
    source: str
    prompt_video: str
    frames: list[np.ndarray] = field(default_factory=list)


def video_folders(paths: Sequence[str | Path]) -> list[Path]:
    """The processed-video folders under ``paths`` (an ``hvp video process`` output folder, or
    one video folder holding ``video.json``), in order."""
    folders: list[Path] = []
    for p in map(Path, paths):
        if (p / VIDEO_RECORD_NAME).is_file():
            folders.append(p)
        elif p.is_dir():
            found = sorted(
                d for d in p.iterdir() if d.is_dir() and (d / VIDEO_RECORD_NAME).is_file()
            )
            if not found:
                raise InputError(f"{p}: no processed video (no */{VIDEO_RECORD_NAME}) inside")
            folders += found
        else:
            raise InputError(f"{p}: not a folder of processed videos (hvp video process -o)")
    return folders


def output_size(width: int, height: int, config: HumanDatasetConfig) -> tuple[int, int]:
    """(height, width) of the stored frames for a source of ``width`` x ``height`` px."""
    if config.image_size is not None:
        return config.image_size
    scale = min(1.0, config.max_side / max(width, height))
    return max(2, round(height * scale / 2) * 2), max(2, round(width * scale / 2) * 2)


def scaled_intrinsics(intrinsics: dict[str, float], height: int, width: int) -> dict[str, Any]:
    """Pinhole intrinsics of the stored frames (centre crop, then scale; pixel centres at
    integer coordinates as in the pipeline)."""
    src_w, src_h = int(intrinsics["width"]), int(intrinsics["height"])
    if src_w * height > src_h * width:
        crop_w, crop_h = max(1, round(src_h * width / height)), src_h
    else:
        crop_w, crop_h = src_w, max(1, round(src_w * height / width))
    left, top = (src_w - crop_w) // 2, (src_h - crop_h) // 2
    sx, sy = width / crop_w, height / crop_h
    fx, fy = intrinsics["fx"] * sx, intrinsics["fy"] * sy
    cx = (intrinsics["cx"] + 0.5 - left) * sx - 0.5
    cy = (intrinsics["cy"] + 0.5 - top) * sy - 0.5
    return {"width": width, "height": height, "k": [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]}


def human_dataset_spec(
    fps: float, height: int, width: int, config: HumanDatasetConfig, camera: dict[str, Any]
) -> DatasetSpec:
    """The dataset spec of human hand episodes (see the module docstring for the columns)."""
    state_names, action_names = HUMAN_STATE_NAMES, HUMAN_ACTION_NAMES
    if config.method_a:
        assert config.extrinsics is not None  # HumanDatasetConfig checks it
        state_names = action_names = get_action_space(XHAND_WRIST_METHOD_A).names
        camera = {
            **camera,
            "extrinsic": {**config.extrinsics.to_json(), "source": config.extrinsics_source},
        }
    feats: list[FeatureSpec] = [
        vector_feature("observation.state", state_names),
        vector_feature("mask.observation.state", state_names),
        vector_feature("action", action_names),
        vector_feature("mask.action", action_names),
        FeatureSpec("segment_index", "int64", (1,)),
        FeatureSpec("source_frame_index", "int64", (1,)),
        hand_keypoints_feature(),
        video_feature(config.camera_key, height, width, fps),
    ]
    return DatasetSpec(
        fps=fps,
        robot_type="human_hand",
        features=tuple(feats),
        embodiment="human_hand",
        action_space=config.action_space,
        cameras={config.camera_key: camera},
    )


def hand_state(episode: HandEpisode) -> np.ndarray:
    """(T, 51) per-hand state: wrist position, Euler xyz of the wrist rotation, joint angles."""
    a = episode.arrays
    euler = euler_xyz_from_matrix(a["wrist_rotation"])
    return np.concatenate(
        [a["wrist_position"], euler, a["joint_angles"].reshape(episode.num_frames, -1)], axis=1
    )


def method_a_state(
    episode: HandEpisode, extrinsics: CameraExtrinsics
) -> tuple[np.ndarray, np.ndarray]:
    """(T, 21) method-A robot space of the episode's hand in the robot base frame (12 XHand
    joints in XHAND_JOINTS order, 6D wrist rotation, wrist position) and (T,) bool: the tracker
    saw the hand at that frame (not gap-filled, not replaced as an outlier)."""
    a = episode.arrays
    names = tuple(episode.xhand_joint_names)
    if sorted(names) != sorted(XHAND_JOINTS):
        raise InputError(
            f"episode {episode.file_name}: xhand_joint_names {list(names)} are not the XHand's "
            f"{list(XHAND_JOINTS)}"
        )
    joints = a["xhand_joints"][:, [names.index(j) for j in XHAND_JOINTS]]
    R, p = extrinsics.pose_to_base(a["wrist_rotation"], a["wrist_position"])
    values = np.concatenate([joints, matrix_to_rot6d(R), p], axis=1)
    return values, ~(a["filled"] | a["outlier"])


def _frame_lookup(episodes: Sequence[HandEpisode]) -> dict[int, tuple[int, int]]:
    """source frame -> (episode number, row) for the pieces of one hand (they never overlap)."""
    lookup: dict[int, tuple[int, int]] = {}
    for k, ep in enumerate(episodes):
        for row, f in enumerate(ep.arrays["frame_index"].tolist()):
            lookup[int(f)] = (k, row)
    return lookup


def _segments_of_video(
    folder: Path, record: dict[str, Any], config: HumanDatasetConfig
) -> list[_Segment]:
    by_hand: dict[str, list[HandEpisode]] = {h: [] for h in HANDS}
    files: dict[int, str] = {}
    for entry in record.get("episodes", []):
        path = folder / entry["file"]
        ep = read_episode(path)
        if np.any(np.diff(ep.arrays["frame_index"]) != 1):
            raise InputError(f"{path}: frame_index is not consecutive; cannot cut segments")
        files[id(ep)] = str(path)
        by_hand[ep.handedness].append(ep)
    lookups = {h: _frame_lookup(eps) for h, eps in by_hand.items()}
    source = str(record["source"])
    segments: list[_Segment] = []
    for hand in config.hands:
        for ep in by_hand[hand]:
            fi = ep.arrays["frame_index"]
            for s, (a, b) in enumerate(ep.arrays["segments"].tolist()):
                if b - a < config.min_frames:
                    continue
                frames = fi[a:b].astype(np.int64)
                columns = _columns(frames, by_hand, lookups)
                if config.method_a:
                    assert config.extrinsics is not None
                    columns.update(_method_a_columns(frames, ep, lookups[hand], config.extrinsics))
                columns["segment_index"] = np.full(b - a, s, np.int64)
                captions = {hand: str(ep.arrays["captions"][s])}
                other = "left" if hand == "right" else "right"
                hit = lookups[other].get(int(frames[0]))
                if hit is not None and not config.method_a:  # method A: one hand, one caption
                    o_ep = by_hand[other][hit[0]]
                    captions[other] = str(
                        o_ep.arrays["captions"][o_ep.arrays["segment_id"][hit[1]]]
                    )
                task = (
                    f"Left hand: {captions['left']}. Right hand: {captions['right']}."
                    if len(captions) == 2
                    else captions[hand]
                )
                fps = ep.fps
                t0, t1 = frames[0] / fps, (frames[-1] + 1) / fps
                segments.append(
                    _Segment(
                        start=int(frames[0]),
                        end=int(frames[-1]) + 1,
                        task=task,
                        columns=columns,
                        source=f"{files[id(ep)]}#segment={s}",
                        prompt_video=f"{source}#t={t0:.3f},{t1:.3f}",
                    )
                )
    segments.sort(key=lambda seg: (seg.end, seg.start, seg.source))
    return segments


def _columns(
    frames: np.ndarray,
    by_hand: dict[str, list[HandEpisode]],
    lookups: dict[str, dict[int, tuple[int, int]]],
) -> dict[str, np.ndarray]:
    """State, action, masks and keypoints of both hands at the source ``frames``."""
    n = len(frames)
    state = np.zeros((n, HUMAN_DIM), np.float64)
    state_mask = np.zeros((n, HUMAN_DIM), np.float32)
    action = np.zeros((n, HUMAN_DIM), np.float64)
    action_mask = np.zeros((n, HUMAN_DIM), np.float32)
    keypoints = np.zeros((n, 2, 21, 3), np.float64)
    for h_i, hand in enumerate(HANDS):
        cols = slice(h_i * HAND_DIM, (h_i + 1) * HAND_DIM)
        states = [hand_state(ep) for ep in by_hand[hand]]
        for t, f in enumerate(frames.tolist()):
            hit = lookups[hand].get(int(f))
            if hit is None:
                continue
            k, row = hit
            ep = by_hand[hand][k]
            state[t, cols] = states[k][row]
            state_mask[t, cols] = 1.0
            keypoints[t, h_i] = ep.arrays["keypoints_cam"][row]
            if row > 0 and ep.arrays["action_mask"][row - 1]:
                action[t, cols] = ep.arrays["actions_51"][row - 1]
                action_mask[t, cols] = 1.0
    return {
        "observation.state": state,
        "mask.observation.state": state_mask,
        "action": action,
        "mask.action": action_mask,
        HAND_KEYPOINTS_KEY: keypoints.reshape(len(keypoints), -1),
        "source_frame_index": frames.copy(),
    }


def _method_a_columns(
    frames: np.ndarray,
    episode: HandEpisode,
    lookup: dict[int, tuple[int, int]],
    extrinsics: CameraExtrinsics,
) -> dict[str, np.ndarray]:
    """State, action and masks in the method-A robot space of ``episode``'s hand at ``frames``
    (the segment's own track piece covers them all)."""
    values, seen = method_a_state(episode, extrinsics)
    rows = np.array([lookup[int(f)][1] for f in frames.tolist()], np.int64)
    mask = np.repeat(seen[rows, None], values.shape[1], axis=1).astype(np.float32)
    state = values[rows] * mask
    return {
        "observation.state": state,
        "mask.observation.state": mask,
        "action": state.copy(),
        "mask.action": mask.copy(),
    }


def _decoded_frames(source: Path, last: int) -> Iterator[tuple[int, np.ndarray]]:
    """(frame number, RGB) of ``source`` up to ``last``, with the pipeline's reader (rotation
    metadata applied the same way, so frame numbers match the episodes')."""
    from human_video_policy.video.reader import VideoReader

    for frame in VideoReader(source):
        if frame.index > last:
            return
        yield frame.index, frame.rgb


def convert_hand_videos(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    config: HumanDatasetConfig | None = None,
    *,
    progress: Callable[[VideoConversion], None] | None = None,
) -> HumanConversionReport:
    """Write every segment of every processed video under ``inputs`` into a new dataset.

    A video the pipeline marked ``empty``/``failed`` is skipped; one whose episode files or
    source video cannot be read is reported as failed and the rest go on. All videos must share
    one frame rate (a dataset has one ``fps``). The dataset is finalized even if nothing
    converted.
    """
    config = config or HumanDatasetConfig()
    folders = video_folders(inputs)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"dataset folder {out} exists and is not empty; choose another")
    report = HumanConversionReport(dataset=str(out_dir))
    t_start = time.perf_counter()
    writer: DatasetWriter | None = None
    fps0: float | None = None
    size: tuple[int, int] | None = None
    for folder in folders:
        outcome = VideoConversion(folder=str(folder), status="ok")
        report.videos.append(outcome)
        try:
            record = read_video_record(folder)
            if record is None:
                raise InputError(f"{folder / VIDEO_RECORD_NAME} is unreadable")
            if record["status"] != "ok":
                outcome.status = "skipped"
                outcome.error = f"pipeline status {record['status']}: {record.get('error')}"
                continue
            source = Path(str(record["source"]))
            if not source.is_file():
                raise InputError(
                    f"source video {source} (from {folder / VIDEO_RECORD_NAME}) is missing: "
                    "the frames come from it; was it moved?"
                )
            segments = _segments_of_video(folder, record, config)
            if not segments:
                outcome.status = "skipped"
                hand = f"{METHOD_A_HAND}-hand " if config.method_a else ""
                outcome.error = f"no {hand}segment of >= {config.min_frames} frames"
                continue
            fps = float(record["fps"])
            if fps0 is None:
                fps0 = fps
                size = output_size(int(record["width"]), int(record["height"]), config)
                first = read_episode(folder / record["episodes"][0]["file"])
                camera = {
                    "source": "hvp video process",
                    "frame_id": "camera_optical",
                    **scaled_intrinsics(first.intrinsics, *size),
                }
                spec = human_dataset_spec(fps, size[0], size[1], config, camera)
                writer = DatasetWriter(out_dir, spec)
            elif abs(fps - fps0) > 1e-6:
                raise InputError(
                    f"video at {fps:g} fps cannot join a dataset at {fps0:g} fps; convert "
                    "videos of each frame rate into their own dataset"
                )
            assert writer is not None and size is not None
            _write_video_segments(writer, source, segments, size, config, outcome)
            outcome.source_seconds = sum(s.end - s.start for s in segments) / fps
        except (InputError, OSError, KeyError) as exc:
            outcome.status = "failed"
            outcome.error = str(exc)
        finally:
            if progress is not None:
                progress(outcome)
    if writer is None:  # nothing converted: still leave a valid (empty) dataset
        spec = human_dataset_spec(30.0, 240, 320, config, {})
        writer = DatasetWriter(out_dir, spec)
    writer.finalize()
    report.wall_s = time.perf_counter() - t_start
    return report


def _write_video_segments(
    writer: DatasetWriter,
    source: Path,
    segments: list[_Segment],
    size: tuple[int, int],
    config: HumanDatasetConfig,
    outcome: VideoConversion,
) -> None:
    """Decode the source once, front to back, and write each segment once its frames are in."""
    pending = sorted(segments, key=lambda s: s.start)
    order = {id(s): i for i, s in enumerate(segments)}  # write order: by end frame
    done: dict[int, _Segment] = {}
    next_write = 0
    last = max(s.end for s in segments) - 1
    for index, rgb in _decoded_frames(source, last):
        small: np.ndarray | None = None
        for seg in pending:
            if seg.start > index:
                break
            if index < seg.end:
                if small is None:
                    small = resize_area(rgb, *size)
                seg.frames.append(small)
                if index == seg.end - 1:
                    done[order[id(seg)]] = seg
        pending = [s for s in pending if s.end - 1 > index]
        while next_write in done:
            seg = done.pop(next_write)
            writer.add_episode(
                seg.columns,
                seg.task,
                {config.camera_key: np.stack(seg.frames)},
                source=seg.source,
                prompt_video=seg.prompt_video,
            )
            outcome.episodes += 1
            outcome.frames += seg.end - seg.start
            next_write += 1
    if next_write != len(segments):
        raise InputError(
            f"{source}: decoding ended before frame {last} that the episodes refer to "
            "(truncated or replaced video?)"
        )


__all__ = [
    "DEFAULT_CAMERA_KEY",
    "DEFAULT_EXTRINSIC_FILE",
    "METHOD_A_HAND",
    "VIDEO_ACTION_SPACES",
    "HumanConversionReport",
    "HumanDatasetConfig",
    "VideoConversion",
    "convert_hand_videos",
    "hand_state",
    "human_dataset_spec",
    "load_extrinsics",
    "method_a_state",
    "output_size",
    "scaled_intrinsics",
    "video_folders",
]
