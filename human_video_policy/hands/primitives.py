"""RAD-style per-frame hand labels and an offline captioner (rad_action_free_reasoning.txt).

- **Move primitive** per frame from the displacement of the *wrist* (``move_point``; RAD's
  gripper point between thumb and index tips moves when the fingers open and close, so on a
  hand video it reports finger motion as hand motion) over a centred window of ``window_s``
  seconds: ``"stop"`` when its speed is below ``stop_speed`` (m/s) or when no axis moved more
  than ``noise_factor`` times that axis's measured position noise, otherwise the direction of
  the largest such axis. The noise comes from the data (:func:`position_noise`): the
  high-frequency residual of the trajectory per axis and, for RGB-only lifting, the depth
  noise (the depth each frame's 2D hand size implies against the trajectory's depth,
  :func:`depth_noise_from_pixels`: 3.1-3.4 cm on the dexret video, against ~1 mm sideways).
  A segment's caption names a move only when at least a third of its frames move and its net
  wrist displacement along that direction exceeds the same noise.
- **Gripper state** from the thumb-index tip distance with hysteresis: it becomes ``"closed"``
  when the distance drops below ``close_below`` and ``"open"`` again only when it rises above
  ``open_above`` (metres).
- **Hand shape** per frame (:func:`hand_shapes`) from the joint angles (flexion summed over a
  finger's 3 joints: curled above ``curl_above`` rad, straight again below ``straight_below``)
  and fingertip distances (thumb tip within ``pinch_below`` m of a fingertip, apart again above
  ``pinch_release_above``): ``fist`` (index, middle, ring and pinky curled), ``pinch:<finger>``
  (the thumb touches that finger), ``point`` (index straight, the other three curled),
  ``curl:<fingers>`` (some fingers curled), ``open``. A segment's finger action
  (:meth:`SegmentLabels.finger_action`) is the shape it enters and holds longest (at least
  ``min_action_s``): grasp (fist), pinch, point, curl; or, entering none, the release of the
  shape it started in. Captions: "pinch with the right thumb and middle finger", "grasp with
  the right hand", "move the right hand left and release the grasp".

Axis conventions (:data:`AXES`, pick with ``MotionLabelConfig.axes``):

- ``"camera"`` (default, optical frame): +x right, +y down, +z forward (away from the camera).
- ``"base"`` (REP-103 robot base): +x forward, +y left, +z up.

Keypoints must already be in that frame (rotate camera points into a base frame before calling
with ``axes="base"``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.keypoints import (
    INDEX_TIP,
    MIDDLE_TIP,
    PINKY_TIP,
    RING_TIP,
    THUMB_TIP,
    WRIST,
    check_handedness,
    check_keypoint_sequence,
    check_points,
)
from human_video_policy.validation import check_choice, check_non_negative, check_positive

#: For each frame convention: the words for (+x, -x, +y, -y, +z, -z).
AXES: dict[str, tuple[str, str, str, str, str, str]] = {
    "camera": ("right", "left", "down", "up", "forward", "backward"),
    "base": ("forward", "backward", "left", "right", "up", "down"),
}

STOP = "stop"
OPEN = "open"
CLOSED = "closed"
#: Hand shapes (:func:`hand_shapes`); pinch and curl carry their fingers after a colon.
FIST, POINT, PINCH, CURL = "fist", "point", "pinch", "curl"
#: The four fingers (anatomical order) with their tip keypoint and MANO joint rows.
FINGERS: tuple[tuple[str, int, tuple[int, int, int]], ...] = (
    ("index", INDEX_TIP, (0, 1, 2)),
    ("middle", MIDDLE_TIP, (3, 4, 5)),
    ("ring", RING_TIP, (9, 10, 11)),
    ("pinky", PINKY_TIP, (6, 7, 8)),
)
#: MANO joint rows of the thumb (``joint_angles.MANO_JOINT_NAMES``: thumb1..3).
THUMB_ROWS = (12, 13, 14)
MOVE_POINTS = ("wrist", "gripper")


@dataclass(frozen=True)
class MotionLabelConfig:
    """How frames and segments are labelled (module docstring; lengths in m, angles in rad).

    Fields:
        fps: frame rate of the sequence.
        window_s: centred window of the per-frame move primitive (s).
        stop_speed: below this speed (m/s) of the move point a frame is "stop".
        close_below / open_above: thumb-index distance hysteresis of the gripper state.
        axes: "camera" (optical frame) or "base" (REP-103), the direction words.
        move_point: "wrist" (default) or "gripper" (RAD's thumb-index midpoint).
        noise_factor: a move must exceed this many times the axis's position noise.
        min_noise_m: floor of the estimated noise per axis.
        min_move_m: a segment's caption names a move only when the net displacement along it
            is at least this (and above the noise): smaller moves are not worth an instruction
            (and the 2D wrist shifts ~1 cm when a fist opens).
        curl_above / straight_below: flexion summed over a finger's 3 joints (rad) above which
            it is curled, below which it is straight again (hysteresis).
        thumb_curl_above / thumb_straight_below: the same for the thumb (folded across the
            palm: ~0.8 rad on the dexret video, stretched out: -0.8).
        pinch_below / pinch_release_above: thumb tip to fingertip distance (m) below which the
            two touch, above which they are apart again.
        min_action_s: a hand shape must be held this long (s) to count as a finger action.
    """

    fps: float
    window_s: float = 0.2
    stop_speed: float = 0.03
    close_below: float = 0.03
    open_above: float = 0.05
    axes: str = "camera"
    move_point: str = "wrist"
    noise_factor: float = 1.0
    min_noise_m: float = 0.001
    min_move_m: float = 0.015
    curl_above: float = 2.0
    straight_below: float = 1.6
    thumb_curl_above: float = 0.6
    thumb_straight_below: float = 0.3
    pinch_below: float = 0.04
    pinch_release_above: float = 0.05
    min_action_s: float = 0.1

    def __post_init__(self) -> None:
        check_positive("fps", self.fps)
        check_positive("window_s", self.window_s)
        check_non_negative("stop_speed", self.stop_speed)
        check_positive("close_below", self.close_below)
        check_positive("open_above", self.open_above)
        if self.open_above < self.close_below:
            raise ConfigError(
                f"open_above={self.open_above!r} is invalid: must be >= close_below="
                f"{self.close_below!r} (hysteresis band)"
            )
        check_choice("axes", self.axes, AXES)
        check_choice("move_point", self.move_point, MOVE_POINTS)
        check_non_negative("noise_factor", self.noise_factor)
        check_non_negative("min_noise_m", self.min_noise_m)
        check_non_negative("min_action_s", self.min_action_s)
        check_non_negative("min_move_m", self.min_move_m)
        bands = (
            ("straight_below", "curl_above"),
            ("thumb_straight_below", "thumb_curl_above"),
            ("pinch_below", "pinch_release_above"),
        )
        for low, high in bands:
            if low.startswith("pinch"):
                check_positive(low, getattr(self, low))
            if getattr(self, high) < getattr(self, low):
                raise ConfigError(
                    f"{high}={getattr(self, high)!r} is invalid: must be >= {low}="
                    f"{getattr(self, low)!r} (hysteresis band)"
                )

    @property
    def half_window(self) -> int:
        return max(1, round(self.window_s * self.fps / 2.0))


def gripper_positions(kp: object) -> np.ndarray:
    """``(T, 21, 3)`` -> ``(T, 3)`` mean of thumb tip and index tip."""
    arr = check_keypoint_sequence(kp)
    return 0.5 * (arr[:, THUMB_TIP] + arr[:, INDEX_TIP])


def pinch_distances(kp: object) -> np.ndarray:
    """``(T, 21, 3)`` -> ``(T,)`` thumb-tip to index-tip distance."""
    arr = check_keypoint_sequence(kp)
    return np.linalg.norm(arr[:, THUMB_TIP] - arr[:, INDEX_TIP], axis=-1)


def move_positions(kp: object, config: MotionLabelConfig) -> np.ndarray:
    """``(T, 21, 3)`` -> ``(T, 3)`` the point whose motion is the move primitive."""
    arr = check_keypoint_sequence(kp)
    return arr[:, WRIST].copy() if config.move_point == "wrist" else gripper_positions(arr)


def direction_word(displacement: np.ndarray, axes: str = "camera") -> str:
    """Word for the dominant axis of one displacement vector (ties: lowest axis index)."""
    words = AXES[check_choice("axes", axes, AXES)]
    i = int(np.argmax(np.abs(displacement)))
    return words[2 * i + (0 if displacement[i] >= 0 else 1)]


def _robust_std(x: np.ndarray) -> np.ndarray:
    """1.4826 x the median absolute deviation per column (the std of Gaussian data, unmoved
    by the few large values a real motion adds)."""
    return 1.4826 * np.median(np.abs(x - np.median(x, axis=0)), axis=0)


def position_noise(positions: object, fps: float, sigma_s: float = 0.1) -> np.ndarray:
    """``(3,)`` noise (m) per axis of a ``(T, 3)`` trajectory: the robust std of what a
    Gaussian smoothing with ``sigma_s`` removes (jitter faster than any hand motion)."""
    from human_video_policy.hands.segmentation import gaussian_smooth

    p = check_points(positions, "positions", min_frames=2)
    check_positive("fps", fps)
    residual = p - gaussian_smooth(p, sigma_s * fps)
    return _robust_std(residual)


#: Wrist -> index/middle/ring/pinky MCP: the palm, whose 2D size says how far the hand is.
_PALM = (5, 9, 13, 17)


def depth_noise_from_pixels(
    keypoints_cam: object, keypoints_px: object, fx: float, fy: float, cx: float, cy: float
) -> float | None:
    """Depth noise (m) of an RGB-lifted track, measured on its own data: per frame, the depth
    at which the lifted hand's palm would have the palm size seen in the image
    (``z * projected size / detected size``) minus the lifted depth; the robust std of that
    over the frames. None with fewer than 10 frames that have pixels (filled gaps have NaN)."""
    kp = check_keypoint_sequence(keypoints_cam)
    px = np.asarray(keypoints_px, dtype=np.float64)
    if px.shape != (*kp.shape[:2], 2):
        raise InputError(f"keypoints_px must be (T, 21, 2) for (T, 21, 3), got {px.shape}")
    ok = np.isfinite(px).all(axis=(1, 2)) & (kp[:, :, 2] > 0).all(axis=1)
    if ok.sum() < 10:
        return None
    kp, px = kp[ok], px[ok]
    proj = np.stack([fx * kp[..., 0] / kp[..., 2] + cx, fy * kp[..., 1] / kp[..., 2] + cy], axis=-1)
    palm = list(_PALM)
    size_proj = np.linalg.norm(proj[:, palm] - proj[:, [WRIST]], axis=-1).mean(axis=1)
    size_px = np.linalg.norm(px[:, palm] - px[:, [WRIST]], axis=-1).mean(axis=1)
    good = size_px > 1.0
    if good.sum() < 10:
        return None
    z = kp[good, WRIST, 2]
    implied = z * size_proj[good] / size_px[good]
    return float(_robust_std((implied - z)[:, None])[0])


def move_primitives(
    positions: object, config: MotionLabelConfig, noise: object | None = None
) -> list[str]:
    """Per-frame move primitive (``"stop"`` or a direction word) of a ``(T, 3)`` trajectory.

    ``noise``: ``(3,)`` position noise per axis (m); a frame moves along an axis only when its
    window displacement exceeds ``noise_factor`` times it. None: no noise gate."""
    p = check_points(positions, "positions", min_frames=2)
    T, h = p.shape[0], config.half_window
    lo = np.clip(np.arange(T) - h, 0, T - 1)
    hi = np.clip(np.arange(T) + h, 0, T - 1)
    disp = p[hi] - p[lo]
    span = (hi - lo) / config.fps
    speed = np.linalg.norm(disp, axis=1) / span
    gate = np.zeros(3) if noise is None else config.noise_factor * _noise(noise, config)
    out = []
    for t in range(T):
        moved = np.where(np.abs(disp[t]) > gate, disp[t], 0.0)
        if speed[t] < config.stop_speed or not moved.any():
            out.append(STOP)
        else:
            out.append(direction_word(moved, config.axes))
    return out


def _noise(noise: object, config: MotionLabelConfig) -> np.ndarray:
    n = np.asarray(noise, dtype=np.float64)
    if n.shape != (3,) or not np.isfinite(n).all() or (n < 0).any():
        raise InputError(f"noise must be 3 finite non-negative values (m), got {noise!r}")
    return np.maximum(n, config.min_noise_m)


def gripper_states(distances: object, config: MotionLabelConfig) -> list[str]:
    """Per-frame ``"open"``/``"closed"`` from pinch distances with hysteresis.

    The first frame is closed if its distance is below the middle of the hysteresis band.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not np.isfinite(d).all():
        raise InputError(f"distances must be a finite non-empty (T,) array, got shape {d.shape}")
    state = CLOSED if d[0] < 0.5 * (config.close_below + config.open_above) else OPEN
    out = []
    for x in d:
        if state == OPEN and x < config.close_below:
            state = CLOSED
        elif state == CLOSED and x > config.open_above:
            state = OPEN
        out.append(state)
    return out


def _hysteresis(values: np.ndarray, enter: float, leave: float, above: bool) -> np.ndarray:
    """``(T, n)`` bool: each column enters its state past ``enter`` and leaves it only past
    ``leave`` (``above``: entering means rising above ``enter``)."""
    v = values if above else -values
    enter, leave = (enter, leave) if above else (-enter, -leave)
    state = v[0] > 0.5 * (enter + leave)
    out = np.empty(v.shape, dtype=bool)
    for t in range(v.shape[0]):
        state = np.where(state, v[t] >= leave, v[t] > enter)
        out[t] = state
    return out


def hand_shapes(kp: object, handedness: str, config: MotionLabelConfig) -> list[str]:
    """Per-frame hand shape of a ``(T, 21, 3)`` keypoint sequence (module docstring):
    ``fist``, ``pinch:<finger>``, ``point``, ``curl:<finger>+<finger>``, ``open``."""
    from human_video_policy.hands.joint_angles import joint_angles_sequence

    arr = check_keypoint_sequence(kp)
    flexion = joint_angles_sequence(arr, handedness)[..., 0]
    curl_sum = np.stack([flexion[:, list(rows)].sum(axis=1) for _, _, rows in FINGERS], axis=1)
    curled = _hysteresis(curl_sum, config.curl_above, config.straight_below, above=True)
    tips = np.stack(
        [np.linalg.norm(arr[:, THUMB_TIP] - arr[:, tip], axis=-1) for _, tip, _ in FINGERS],
        axis=1,
    )
    touching = _hysteresis(tips, config.pinch_below, config.pinch_release_above, above=False)
    thumb = flexion[:, list(THUMB_ROWS)].sum(axis=1)[:, None]
    thumb_curled = _hysteresis(
        thumb, config.thumb_curl_above, config.thumb_straight_below, above=True
    )[:, 0]
    out = []
    for t in range(arr.shape[0]):
        if curled[t].all():
            out.append(FIST)
        elif touching[t].any():
            nearest = int(np.argmin(np.where(touching[t], tips[t], np.inf)))
            out.append(f"{PINCH}:{FINGERS[nearest][0]}")
        elif not curled[t, 0] and curled[t, 1:].all():
            out.append(POINT)
        elif curled[t].any() or thumb_curled[t]:
            names = ["thumb"] if thumb_curled[t] else []
            names += [f for (f, _, _), c in zip(FINGERS, curled[t], strict=True) if c]
            out.append(f"{CURL}:" + "+".join(names))
        else:
            out.append(OPEN)
    return out


def _finger_words(fingers: str) -> str:
    """ "index" -> "index finger", "ring+pinky" -> "ring and pinky fingers", "thumb" -> "thumb"."""
    names = fingers.split("+")
    if names == ["thumb"]:
        return "thumb"
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
    return f"{text} finger" + ("s" if len(names) > 1 else "")


def action_phrase(action: tuple[str, str], hand: str) -> str:
    """Words for ``(verb, shape)`` from :meth:`SegmentLabels.finger_action`, e.g.
    ``("pinch", "pinch:middle")`` -> "pinch with the right thumb and middle finger"."""
    verb, shape = action
    kind, _, fingers = shape.partition(":")
    the = f"the {hand}"
    if verb == "release":
        if kind == FIST:
            return f"release the grasp of {the} hand"
        if kind == PINCH:
            return f"release the pinch of {the} thumb and {_finger_words(fingers)}"
        if kind == CURL:
            return f"straighten {the} {_finger_words(fingers)}"
        return f"open {the} hand"
    if kind == FIST:
        return f"grasp with {the} hand"
    if kind == PINCH:
        return f"pinch with {the} thumb and {_finger_words(fingers)}"
    if kind == POINT:
        return f"point with {the} index finger"
    return f"curl {the} {_finger_words(fingers)}"


@dataclass(frozen=True)
class SegmentLabels:
    """What a captioner gets for one segment of one hand."""

    handedness: str
    start: int
    end: int
    moves: tuple[str, ...]  #: per-frame move primitives in [start, end)
    gripper: tuple[str, ...]  #: per-frame gripper states in [start, end)
    shapes: tuple[str, ...] = ()  #: per-frame hand shapes in [start, end) (:func:`hand_shapes`)
    #: net displacement of the move point over the segment (m) and the smallest one that
    #: counts per axis (max(noise x noise_factor, min_move_m)); empty: no check
    displacement: tuple[float, ...] = ()
    min_displacement: tuple[float, ...] = ()
    axes: str = "camera"
    min_action_frames: int = 1

    def dominant_move(self) -> str:
        """Most frequent non-stop primitive if moving at least a third of the time and, when
        the segment's net displacement is known, moving along it by more than the noise;
        else stop."""
        moving = [m for m in self.moves if m != STOP]
        if not moving or 3 * len(moving) < len(self.moves):
            return STOP
        word = Counter(moving).most_common(1)[0][0]
        if self.displacement and self.min_displacement:
            i = AXES[self.axes].index(word)
            along = self.displacement[i // 2] * (1 if i % 2 == 0 else -1)
            if along <= self.min_displacement[i // 2]:
                return STOP
        return word

    def finger_action(self) -> tuple[str, str] | None:
        """``(verb, shape)``: the shape the hand enters in the segment and holds longest
        (verb grasp / pinch / point / curl), or, entering none, the release of the shape it
        started in; None when the fingers do nothing (or no shapes are known)."""
        if not self.shapes:
            return None
        runs: list[tuple[str, int, int]] = []  # (shape, first frame, length)
        for k, shape in enumerate(self.shapes):
            if runs and runs[-1][0] == shape:
                runs[-1] = (shape, runs[-1][1], runs[-1][2] + 1)
            else:
                runs.append((shape, k, 1))
        held: dict[str, int] = {}
        for shape, first, length in runs:
            if first > 0 and shape != OPEN and shape != self.shapes[0]:
                held[shape] = max(held.get(shape, 0), length)
        entered = [(n, s) for s, n in held.items() if n >= self.min_action_frames]
        if entered:
            shape = max(entered)[1]
            verb = {FIST: "grasp", POINT: "point"}.get(shape, shape.partition(":")[0])
            return verb, shape
        first_shape = self.shapes[0]
        if first_shape != OPEN and self.shapes[-1] != first_shape:
            tail = self.shapes[-self.min_action_frames :]
            if all(s != first_shape for s in tail):
                return "release", first_shape
        return None

    def gripper_change(self) -> str | None:
        """``"close"``/``"open"`` if the state differs between the first and last frame."""
        if not self.gripper or self.gripper[0] == self.gripper[-1]:
            return None
        return "close" if self.gripper[-1] == CLOSED else "open"


class Captioner(Protocol):
    """Turns one segment's labels into an imperative instruction (a VLM can implement this)."""

    def caption(self, labels: SegmentLabels) -> str: ...


class TemplateCaptioner:
    """Offline captions: "pinch with the right thumb and middle finger", "grasp with the right
    hand", "move the right hand left and release the grasp of the right hand", "keep the right
    hand still". Without hand shapes (``SegmentLabels.shapes`` empty) the finger part is the
    gripper change: "move the right hand forward and close it"."""

    def caption(self, labels: SegmentLabels) -> str:
        side = check_handedness(labels.handedness)
        hand = f"the {side} hand"
        move, action = labels.dominant_move(), labels.finger_action()
        if action is not None:
            finger = action_phrase(action, side)
            return finger if move == STOP else f"move {hand} {move} and {finger}"
        grip = labels.gripper_change()
        if move == STOP:
            return f"{grip} {hand}" if grip else f"keep {hand} still"
        text = f"move {hand} {move}"
        return f"{text} and {grip} it" if grip else text


def label_segments(
    kp: object,
    segments: list[tuple[int, int]],
    handedness: str,
    config: MotionLabelConfig,
    captioner: Captioner | None = None,
    noise: object | None = None,
) -> list[tuple[SegmentLabels, str]]:
    """Label and caption each ``[start, end)`` segment of a ``(T, 21, 3)`` keypoint sequence.

    ``noise``: ``(3,)`` position noise (m) of the move point per axis; None = measured here
    with :func:`position_noise` (no depth term: pass it for RGB-only lifting, as
    ``pipeline/video_episodes.py`` does with :func:`depth_noise_from_pixels`)."""
    arr = check_keypoint_sequence(kp, min_frames=2)
    check_handedness(handedness)
    points = move_positions(arr, config)
    sigma = _noise(position_noise(points, config.fps) if noise is None else noise, config)
    moves = move_primitives(points, config, sigma)
    grip = gripper_states(pinch_distances(arr), config)
    shapes = hand_shapes(arr, handedness, config)
    min_frames = max(1, round(config.min_action_s * config.fps))
    captioner = captioner or TemplateCaptioner()
    out = []
    for s, e in segments:
        if not 0 <= s < e <= arr.shape[0]:
            raise ConfigError(f"segment ({s}, {e}) is invalid: need 0 <= start < end <= {len(arr)}")
        labels = SegmentLabels(
            handedness,
            s,
            e,
            tuple(moves[s:e]),
            tuple(grip[s:e]),
            shapes=tuple(shapes[s:e]),
            displacement=tuple(float(v) for v in points[e - 1] - points[s]),
            min_displacement=tuple(
                float(v) for v in np.maximum(config.noise_factor * sigma, config.min_move_m)
            ),
            axes=config.axes,
            min_action_frames=min_frames,
        )
        out.append((labels, captioner.caption(labels)))
    return out
