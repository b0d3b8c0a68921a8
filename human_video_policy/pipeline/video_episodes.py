"""One video -> per-hand episodes (VITRA-style episode construction, METHODS.md).

Stages, each timed (``video.json`` ``stage_seconds``):

1. ``decode``: :class:`~human_video_policy.video.VideoReader` frames, optionally downscaled for
   the tracker, in a background thread so decoding overlaps tracking.
2. ``track``: MediaPipe Hands per frame (temporal tracking), pixel keypoints scaled back to the
   full-resolution image.
3. ``lift``: RGB-only lifting of every detection to metric camera-frame keypoints with pinhole
   intrinsics from ``fx`` or from an assumed horizontal field of view (``hfov_deg``); by
   default per hand track with one hand size and a slowly filtered depth
   (:func:`~human_video_policy.hands.lifting.lift_rgb_track`).
4. ``trajectory``: per hand, gaps filled / outliers repaired and the track cut into pieces.
5. ``kinematics``: method A wrist 6D poses, 15 x 3 joint angles, 51-d VITRA actions.
6. ``retarget``: XHand joints (12) and a WidowX gripper opening from the pinch.
7. ``segment``: speed-minima segments of the wrist trajectory, RAD move / gripper primitives
   (moves gated on the wrist's measured position noise, :func:`motion_noise`), hand shapes
   and a template caption per segment (what the hand and its fingers do).

Bad input raises :class:`~human_video_policy.errors.InputError` with the reason (the batch runner
records it as a failed video); a video without a usable hand track gives status ``"empty"``.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.joint_angles import hand_actions_51, joint_angles_sequence
from human_video_policy.hands.keypoints import HANDEDNESS
from human_video_policy.hands.primitives import (
    MotionLabelConfig,
    depth_noise_from_pixels,
    label_segments,
    position_noise,
)
from human_video_policy.hands.segmentation import SegmentationConfig, segment_wrist_trajectory
from human_video_policy.hands.tracker import (
    HandDetection,
    MediaPipeHandsConfig,
    MediaPipeHandTracker,
)
from human_video_policy.hands.wrist_pose import wrist_poses_from_keypoints
from human_video_policy.pipeline.episode_format import FORMAT_VERSION, HandEpisode
from human_video_policy.validation import (
    check_int_range,
    check_non_negative,
    check_positive,
    check_range,
)
from human_video_policy.video.reader import VideoReader

#: The retargeting settings used (the project's defaults, under the package resources).
RETARGET_CONFIG = ("config", "retarget_xhand.yaml")
STAGES = ("decode", "track", "lift", "trajectory", "kinematics", "retarget", "segment")


@dataclass(frozen=True)
class VideoPipelineConfig:
    """Everything that decides what a video turns into (its hash decides whether to redo).

    Fields:
        model_complexity: MediaPipe landmark model, 0 (lite, faster) or 1 (full, default).
        min_detection_confidence / min_tracking_confidence: MediaPipe thresholds in [0, 1].
        max_num_hands: hands tracked per frame (1..4).
        track_max_side: downscale frames so their longest side is at most this many pixels
            before tracking (0 = track at full resolution). Keypoints are scaled back.
        fx: focal length in pixels of the full-resolution video (None = estimate from
            ``hfov_deg``); fy = fx, principal point at the image centre.
        hfov_deg: assumed horizontal field of view (degrees, (1, 179)) when ``fx`` is None.
        stabilise_depth: lift each hand's track with
            :func:`~human_video_policy.hands.lifting.lift_rgb_track` (one hand size per track,
            wrist depth filtered over time, wrist on its 2D pixel); False = every frame on its
            own with ``lift_rgb``, whose depth follows finger curl (std 5.5 cm vs 1.3 cm on
            the dexret video, docs/hand_lifting.md).
        depth_sigma_s: time constant (s) of the depth filter of ``stabilise_depth``
            (``TrackDepthConfig.depth_sigma_s``; 2 s: depth oscillations faster than ~0.1 Hz
            are mostly removed, real ones too). 0 = no temporal filtering.
        max_frames: process only the first N frames (0 = all).
        min_episode_frames: track pieces shorter than this are dropped (>= 2).
        allow_truncated: keep the frames of a file that ends early (else the video fails).
        decode_thread: decode in a background thread that overlaps tracking.
        queue_frames: frames buffered between the decode thread and the tracker (>= 1).
        segment_window_s / segment_sigma_s / min_segment_s: speed-minima segmentation
            (:class:`~human_video_policy.hands.segmentation.SegmentationConfig`), seconds.
        stop_speed: below this wrist speed (m/s) a frame's move primitive is "stop" (so is a
            move within the measured position noise: hands/primitives.py).
        close_below / open_above: pinch distances (m) of the gripper-state hysteresis.
    """

    model_complexity: int = 1
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    max_num_hands: int = 2
    track_max_side: int = 0
    fx: float | None = None
    hfov_deg: float = 60.0
    stabilise_depth: bool = True
    depth_sigma_s: float = 2.0
    max_frames: int = 0
    min_episode_frames: int = 10
    allow_truncated: bool = False
    decode_thread: bool = True
    queue_frames: int = 8
    segment_window_s: float = 0.5
    segment_sigma_s: float = 0.05
    min_segment_s: float = 0.5
    stop_speed: float = 0.03
    close_below: float = 0.03
    open_above: float = 0.05

    def __post_init__(self) -> None:
        # The MediaPipe config validates its own fields.
        self.tracker_config()
        check_int_range("track_max_side", self.track_max_side, 0)
        if 0 < self.track_max_side < 64:
            raise ConfigError(
                f"track_max_side={self.track_max_side!r} is invalid: must be 0 or >= 64"
            )
        if self.fx is not None:
            check_positive("fx", self.fx)
        check_range("hfov_deg", self.hfov_deg, 1.0, 179.0)
        check_int_range("max_frames", self.max_frames, 0)
        check_int_range("min_episode_frames", self.min_episode_frames, 2)
        check_int_range("queue_frames", self.queue_frames, 1, 1024)
        self.track_depth_config()
        for name in ("allow_truncated", "decode_thread", "stabilise_depth"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid: must be a bool")
        check_positive("segment_window_s", self.segment_window_s)
        check_non_negative("segment_sigma_s", self.segment_sigma_s)
        check_non_negative("min_segment_s", self.min_segment_s)
        MotionLabelConfig(
            fps=30.0,
            stop_speed=self.stop_speed,
            close_below=self.close_below,
            open_above=self.open_above,
        )

    def tracker_config(self) -> MediaPipeHandsConfig:
        return MediaPipeHandsConfig(
            max_num_hands=self.max_num_hands,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
            model_complexity=self.model_complexity,
        )

    def track_depth_config(self) -> Any:
        """The :class:`~human_video_policy.hands.lifting.TrackDepthConfig` of the lift stage."""
        from human_video_policy.hands.lifting import TrackDepthConfig

        return TrackDepthConfig(depth_sigma_s=self.depth_sigma_s)

    def config_hash(self) -> str:
        """Hash of what changes the output: these fields (not the threading knobs), the file
        format version and the default settings of the lifting, trajectory and retargeting
        stages (so changing one of those defaults redoes finished videos)."""
        data = asdict(self)
        for speed_only in ("decode_thread", "queue_frames"):
            data.pop(speed_only)
        data["format_version"] = FORMAT_VERSION
        data["stage_defaults"] = _stage_defaults()
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stage_defaults() -> dict[str, str]:
    from human_video_policy.hands.lifting import LiftingConfig, TrackDepthConfig
    from human_video_policy.hands.trajectory import TrajectoryConfig
    from human_video_policy.resources import resource_path
    from human_video_policy.retargeting import RetargetConfig

    retarget = RetargetConfig.from_yaml(resource_path(*RETARGET_CONFIG))
    return {
        "lifting": repr(LiftingConfig()),
        "track_depth": repr(TrackDepthConfig()),
        "trajectory": repr(TrajectoryConfig()),
        "retarget": repr(retarget),
        "labels": repr(MotionLabelConfig(fps=30.0)),  # captions: moves, hand shapes
    }


@dataclass
class VideoResult:
    """What one video produced: ``record`` (the video.json content) and its episodes."""

    record: dict[str, Any]
    episodes: list[HandEpisode] = field(default_factory=list)


@dataclass
class _Decoded:
    """Frame indices and stamps seen by the tracker, decode seconds, a decode-thread error."""

    stamps: list[float] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    seconds: float = 0.0
    error: BaseException | None = None


def _tracking_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def _frames_for_tracking(
    reader: VideoReader, config: VideoPipelineConfig, decoded: _Decoded
) -> Iterator[np.ndarray]:
    """Decode (and downscale) frames; time spent here is counted in ``decoded.seconds``."""
    size = _tracking_size(reader.width, reader.height, config.track_max_side)
    it = iter(reader)
    try:
        while not config.max_frames or len(decoded.indices) < config.max_frames:
            start = time.perf_counter()
            frame = next(it, None)
            if frame is not None and size != (reader.width, reader.height):
                rgb = cv2.resize(frame.rgb, size, interpolation=cv2.INTER_AREA)
            elif frame is not None:
                rgb = frame.rgb
            decoded.seconds += time.perf_counter() - start
            if frame is None:
                return
            decoded.indices.append(frame.index)
            decoded.stamps.append(frame.stamp_s)
            yield rgb
    finally:
        it.close()  # type: ignore[attr-defined]


def _threaded(source: Iterator[np.ndarray], depth: int, decoded: _Decoded) -> Iterator[np.ndarray]:
    """Run ``source`` in a daemon thread through a bounded queue (decode overlaps tracking)."""
    q: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as exc:  # forwarded to the consumer
            decoded.error = exc
        finally:
            source.close()  # type: ignore[attr-defined]
            q.put(None)

    thread = threading.Thread(target=produce, name="hvp-video-decode", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
    if decoded.error is not None:
        raise decoded.error


def _scale_detection(det: HandDetection, sx: float, sy: float) -> HandDetection:
    if sx == 1.0 and sy == 1.0:
        return det
    px = det.keypoints_px * np.array([sx, sy])
    return HandDetection(px, det.keypoints_world, det.handedness, det.confidence)


# ---- stages that call the lifting / retargeting modules: one function each -----------------


def camera_intrinsics_for(width: int, height: int, config: VideoPipelineConfig) -> Any:
    """Pinhole intrinsics of the full-resolution video (``fx`` given, or from ``hfov_deg``)."""
    from human_video_policy.camera.pinhole import CameraIntrinsics

    if config.fx is None:
        return CameraIntrinsics.from_fov(width, height, hfov_deg=config.hfov_deg)
    return CameraIntrinsics(
        width=width,
        height=height,
        fx=config.fx,
        fy=config.fx,
        cx=(width - 1) / 2.0,
        cy=(height - 1) / 2.0,
    )


def lift_detections(
    detections: list[HandDetection | None],
    K: Any,
    stamps_s: np.ndarray,
    config: VideoPipelineConfig,
) -> tuple[np.ndarray, str]:
    """``(N, 21, 3)`` camera-frame keypoints (NaN where no detection) and the lifting method:
    the whole track at once (``stabilise_depth``) or frame by frame."""
    from human_video_policy.hands.lifting import lift_rgb, lift_rgb_track

    if config.stabilise_depth:
        lifted = lift_rgb_track(detections, stamps_s, K, config.track_depth_config())
    else:
        lifted = [None if det is None else lift_rgb(det, K) for det in detections]
    out = np.full((len(detections), 21, 3), np.nan)
    method = "none"
    for i, hand in enumerate(lifted):
        if hand is not None:
            out[i] = hand.keypoints_cam
            method = hand.method
    return out, method


def clean_track(keypoints: np.ndarray, stamps_s: np.ndarray) -> list[Any]:
    """Gap filling / outlier repair / cutting of one hand's track (TrackPiece list)."""
    from human_video_policy.hands.trajectory import TrajectoryConfig, process_track

    return list(process_track(keypoints, stamps_s, TrajectoryConfig()))


def motion_noise(
    keypoints_cam: np.ndarray,
    keypoints_px: np.ndarray,
    fps: float,
    intrinsics: dict[str, float] | None,
) -> np.ndarray:
    """``(3,)`` position noise (m) of the wrist per camera axis, measured on the episode: the
    high-frequency residual of the wrist trajectory, and for z at least the depth noise the
    image implies for RGB-only lifting (``hands.primitives.depth_noise_from_pixels``). The
    move primitives and captions count only motion above it."""
    noise = position_noise(keypoints_cam[:, 0], fps)
    if intrinsics:
        depth = depth_noise_from_pixels(
            keypoints_cam,
            keypoints_px,
            intrinsics["fx"],
            intrinsics["fy"],
            intrinsics["cx"],
            intrinsics["cy"],
        )
        if depth is not None:
            noise[2] = max(noise[2], depth)
    return noise


class _Retargeting:
    """XHand joints and the WidowX gripper from keypoint sequences (built once, reused)."""

    def __init__(self, config: VideoPipelineConfig) -> None:
        from human_video_policy.resources import resource_path
        from human_video_policy.retargeting import XHandRetargeter
        from human_video_policy.retargeting.gripper import GripperMapping, GripperMappingConfig

        self._retargeter = XHandRetargeter.from_yaml(resource_path(*RETARGET_CONFIG))
        self.joint_names = tuple(self._retargeter.joint_names)
        self._gripper = GripperMapping(
            GripperMappingConfig(close_below=config.close_below, open_above=config.open_above)
        )

    def __call__(self, kp: np.ndarray, handedness: str) -> tuple[np.ndarray, ...]:
        result = self._retargeter.retarget_sequence(kp, handedness)
        return (
            np.asarray(result.joints, dtype=np.float64),
            np.asarray(result.fingertip_error_m, dtype=np.float64),
            self._gripper.map_keypoints(kp),
        )


# ---------------------------------------------------------------------------------------------


class VideoEpisodePipeline:
    """Turns video files into :class:`VideoResult` (models built once, reused across videos)."""

    def __init__(self, config: VideoPipelineConfig | None = None) -> None:
        self.config = config or VideoPipelineConfig()
        self._tracker = MediaPipeHandTracker(self.config.tracker_config())
        self._retargeting: _Retargeting | None = None

    def close(self) -> None:
        self._tracker.close()

    def __enter__(self) -> VideoEpisodePipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def process(
        self,
        path: str | Path,
        video_id: str | None = None,
        on_frame: Callable[[], None] | None = None,
    ) -> VideoResult:
        """Process one video. Raises InputError (with the reason) when it cannot be decoded.

        ``on_frame``: called after each frame is tracked (a progress bar)."""
        cfg = self.config
        path = Path(path)
        video_id = video_id or path.stem
        t_start = time.perf_counter()
        timings = dict.fromkeys(STAGES, 0.0)
        reader = VideoReader(path)  # InputError: missing, unopenable or no decodable frame
        record: dict[str, Any] = {
            "video_id": video_id,
            "source": str(path.resolve()),
            "width": reader.width,
            "height": reader.height,
            "fps": reader.fps,
            "frames_announced": reader.frame_count,
            "rotation_deg": reader.rotation_deg,
            "config_hash": cfg.config_hash(),
            "config": asdict(cfg),
        }
        detections, decoded = self.track(reader, timings, on_frame)
        n = len(decoded.indices)
        expected = reader.frame_count
        if cfg.max_frames and expected:
            expected = min(expected, cfg.max_frames)
        truncated = expected > 0 and n < expected
        record.update(frames=n, truncated=truncated)
        if truncated and not cfg.allow_truncated:
            raise InputError(
                f"{path}: decoded only {n} of {expected} announced frames (file truncated or "
                "damaged); use allow_truncated to keep the frames it has"
            )
        stamps = np.asarray(decoded.stamps, dtype=np.float64)
        fps = reader.fps if reader.fps > 0 else _fps_from_stamps(stamps)
        record["fps"] = fps
        frame_has_hand = np.array([any(d[h] is not None for h in HANDEDNESS) for d in detections])
        record["frames_with_hand"] = int(frame_has_hand.sum())
        record["hand_fraction"] = float(frame_has_hand.mean()) if n else 0.0
        record["hands_found"] = {
            h: int(sum(d[h] is not None for d in detections)) for h in HANDEDNESS
        }
        episodes: list[HandEpisode] = []
        if record["frames_with_hand"]:
            episodes = self._episodes(video_id, reader, detections, decoded, fps, timings)
        if not episodes:
            record.update(status="empty", error=_empty_reason(record, cfg))
        else:
            record.update(status="ok", error=None)
        timings["total"] = time.perf_counter() - t_start
        record["stage_seconds"] = {k: round(v, 4) for k, v in timings.items()}
        record["frames_per_second"] = round(n / timings["total"], 2) if timings["total"] else 0.0
        record["episodes"] = [
            {
                "file": e.file_name,
                "handedness": e.handedness,
                "frames": e.num_frames,
                "start_frame": int(e.arrays["frame_index"][0]),
                "end_frame": int(e.arrays["frame_index"][-1]) + 1,
                "segments": int(e.arrays["segments"].shape[0]),
            }
            for e in episodes
        ]
        return VideoResult(record, episodes)

    def track(
        self,
        reader: VideoReader,
        timings: dict[str, float],
        on_frame: Callable[[], None] | None = None,
    ) -> tuple[list[dict[str, HandDetection | None]], _Decoded]:
        """Stages 1-2: per frame the most confident detection of each hand (or None), and the
        decoded frame indices / stamps; adds ``decode`` and ``track`` seconds to ``timings``;
        calls ``on_frame()`` after each frame."""
        cfg = self.config
        decoded = _Decoded()
        frames: Iterator[np.ndarray] = _frames_for_tracking(reader, cfg, decoded)
        if cfg.decode_thread:
            frames = _threaded(frames, cfg.queue_frames, decoded)
        self._tracker.reset()
        out: list[dict[str, HandDetection | None]] = []
        track_s = 0.0
        for rgb in frames:
            start = time.perf_counter()
            sx, sy = reader.width / rgb.shape[1], reader.height / rgb.shape[0]
            per_hand: dict[str, HandDetection | None] = dict.fromkeys(HANDEDNESS)
            for det in self._tracker.track(rgb):
                best = per_hand[det.handedness]
                if best is None or det.confidence > best.confidence:
                    per_hand[det.handedness] = _scale_detection(det, sx, sy)
            out.append(per_hand)
            track_s += time.perf_counter() - start
            if on_frame is not None:
                on_frame()
        timings["decode"] = decoded.seconds
        timings["track"] = track_s
        return out, decoded

    def _episodes(
        self,
        video_id: str,
        reader: VideoReader,
        detections: list[dict[str, HandDetection | None]],
        decoded: _Decoded,
        fps: float,
        timings: dict[str, float],
    ) -> list[HandEpisode]:
        cfg = self.config
        stamps = np.asarray(decoded.stamps, dtype=np.float64)
        indices = np.asarray(decoded.indices, dtype=np.int64)
        K = camera_intrinsics_for(reader.width, reader.height, cfg)
        intrinsics = {k: float(getattr(K, k)) for k in ("width", "height", "fx", "fy", "cx", "cy")}
        episodes: list[HandEpisode] = []
        for hand in HANDEDNESS:
            dets = [d[hand] for d in detections]
            if not any(d is not None for d in dets):
                continue
            start = time.perf_counter()
            kp_cam, method = lift_detections(dets, K, stamps, cfg)
            px = np.full((len(dets), 21, 2), np.nan)
            for i, d in enumerate(dets):
                if d is not None:
                    px[i] = d.keypoints_px
            timings["lift"] += time.perf_counter() - start
            start = time.perf_counter()
            pieces = clean_track(kp_cam, stamps)
            timings["trajectory"] += time.perf_counter() - start
            for piece in pieces:
                s, e = int(piece.start), int(piece.end)
                if e - s < cfg.min_episode_frames:
                    continue
                arrays = {
                    "frame_index": indices[s:e].copy(),
                    "stamps_s": np.asarray(piece.stamps_s, dtype=np.float64),
                    "keypoints_px": px[s:e].copy(),
                    "keypoints_cam": np.asarray(piece.keypoints, dtype=np.float64),
                    "filled": np.asarray(piece.filled, dtype=bool),
                    "outlier": np.asarray(piece.outliers, dtype=bool),
                }
                arrays["keypoints_px"][arrays["filled"]] = np.nan
                episodes.append(
                    self._episode(video_id, hand, len(episodes), fps, arrays, timings, intrinsics)
                )
                episodes[-1].intrinsics = intrinsics
                episodes[-1].lift_method = method
        return episodes

    def _episode(
        self,
        video_id: str,
        hand: str,
        piece: int,
        fps: float,
        arrays: dict[str, np.ndarray],
        timings: dict[str, float],
        intrinsics: dict[str, float] | None = None,
    ) -> HandEpisode:
        cfg = self.config
        kp = arrays["keypoints_cam"]
        T = kp.shape[0]
        start = time.perf_counter()
        R, p = wrist_poses_from_keypoints(kp, hand)
        angles = joint_angles_sequence(kp, hand)
        actions = np.zeros((T, 51))
        actions[:-1] = hand_actions_51(R, p, angles)
        mask = np.ones(T, dtype=bool)
        mask[-1] = False
        arrays.update(
            wrist_rotation=R,
            wrist_position=p,
            joint_angles=angles,
            actions_51=actions,
            action_mask=mask,
        )
        timings["kinematics"] += time.perf_counter() - start
        start = time.perf_counter()
        if self._retargeting is None:
            self._retargeting = _Retargeting(cfg)
        joints, tip_err, gripper = self._retargeting(kp, hand)
        arrays.update(xhand_joints=joints, fingertip_error_m=tip_err, gripper=gripper)
        timings["retarget"] += time.perf_counter() - start
        start = time.perf_counter()
        seg = segment_wrist_trajectory(
            p,
            SegmentationConfig(
                fps=fps,
                window_s=cfg.segment_window_s,
                sigma_s=cfg.segment_sigma_s,
                min_segment_s=cfg.min_segment_s,
            ),
        )
        bounds = [(s.start, s.end) for s in seg.segments]
        label_config = MotionLabelConfig(
            fps=fps,
            stop_speed=cfg.stop_speed,
            close_below=cfg.close_below,
            open_above=cfg.open_above,
        )
        noise = motion_noise(kp, arrays["keypoints_px"], fps, intrinsics)
        labels = label_segments(kp, bounds, hand, label_config, noise=noise)
        moves = [m for lab, _ in labels for m in lab.moves]
        grip = [g for lab, _ in labels for g in lab.gripper]
        arrays.update(
            segments=np.asarray(bounds, dtype=np.int64).reshape(-1, 2),
            segment_id=np.repeat(np.arange(len(bounds)), [e - s for s, e in bounds]).astype(
                np.int64
            ),
            move_primitive=np.asarray(moves, dtype=str),
            gripper_state=np.asarray(grip, dtype=str),
            captions=np.asarray([c for _, c in labels], dtype=str),
        )
        timings["segment"] += time.perf_counter() - start
        return HandEpisode(
            video_id=video_id,
            handedness=hand,
            piece=piece,
            fps=fps,
            intrinsics={},
            lift_method="",
            xhand_joint_names=self._retargeting.joint_names,
            arrays=arrays,
            extra={
                "segmentation": {
                    "window_s": cfg.segment_window_s,
                    "sigma_s": cfg.segment_sigma_s,
                    "min_segment_s": cfg.min_segment_s,
                },
                "cut_points": [int(c) for c in seg.cut_points],
                "motion_noise_m": [round(float(v), 6) for v in noise],
                "retarget_config": "/".join(RETARGET_CONFIG),
                "gripper_joint": "left_finger (WidowX 250s, m)",
            },
        )


def _fps_from_stamps(stamps: np.ndarray) -> float:
    steps = np.diff(stamps)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise InputError("video has no usable timestamps and no frame rate")
    return float(1.0 / np.median(steps))


def _empty_reason(record: dict[str, Any], cfg: VideoPipelineConfig) -> str:
    if record["frames_with_hand"] == 0:
        return f"no hand found in any of the {record['frames']} frames"
    return (
        f"hands found in {record['frames_with_hand']} of {record['frames']} frames, but no "
        f"continuous track of at least {cfg.min_episode_frames} frames"
    )


def process_video(
    path: str | Path, config: VideoPipelineConfig | None = None, video_id: str | None = None
) -> VideoResult:
    """One-shot convenience: build a pipeline, process ``path``, release the tracker."""
    with VideoEpisodePipeline(config) as pipeline:
        return pipeline.process(path, video_id)
