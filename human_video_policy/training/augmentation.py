"""VITRA's trajectory-aware augmentation (sec. 4.2) as ``sample -> sample`` transforms.

Why: VITRA pretrains on human-hand video with images "randomly cropped and perspective-warped
with varying FoV, aspect ratio and crop centre, while keeping the principal point at the image
centre", the actions "transformed accordingly", crops that would lose the projected hand
trajectory rejected, plus random flips (hands and the words left/right swapped) and colour
jitter unless the instruction names a colour. Removing it was the largest ablation loss in
VITRA's Table 1. These transforms do that on the samples of
:class:`~human_video_policy.training.torch_dataset.ChunkDataset` (``action_space="human"``,
not normalised: they need metres and radians; :class:`MixedChunkDataset` normalises after the
transforms), so they go into ``ChunkDatasetConfig.transforms``::

    transforms = vitra_augmentation("data/human_ds", seed=None)
    ChunkDataset("data/human_ds", ChunkDatasetConfig(action_space="human", transforms=transforms,
                                                     image_size=(224, 224)))

Conventions (the project's own, see :mod:`human_video_policy.hands.joint_angles`,
:mod:`human_video_policy.hands.wrist_pose`, :mod:`human_video_policy.camera.pinhole`):

* Human space, per hand (left 0..50, right 51..101): action ``[dt (3, m), dr (3), theta (45)]``
  with ``dt = p_next - p_prev``, ``dr`` the **intrinsic xyz Euler angles**
  (``R = Rx(a) Ry(b) Rz(c)``, :mod:`~human_video_policy.hands.rotations`) of
  ``dR = R_next R_prev^T``, ``theta`` the 15 MANO joints x (flexion, abduction, twist) of the
  next frame; state ``[wrist position (3, m), Euler xyz of the wrist rotation R (3), theta]``,
  where ``R = [x y z]`` maps wrist-frame vectors into the camera frame. All in the camera
  optical frame (x right, y down, z forward) of the current image.
* Pixels: centres at integer coordinates, so the image centre is ``((W - 1) / 2, (H - 1) / 2)``
  (OpenCV / ROS CameraInfo); that is where a warped image's principal point goes.
* A vector group (the 3 dims of a ``dt``, ``dr``, wrist position or wrist rotation) is changed
  only where its mask is 1; masked values are left as they are (a flip only moves them to the
  other hand's block). A group that is partly masked cannot be rotated and is refused.

Sample keys beyond :class:`ChunkDataset`'s (added by :class:`AddCamera`, or by the caller):

* ``observation.intrinsics.<camera>``: ``(3, 3)`` float32 camera matrix of the sample's image
  ``observation.images.<camera>`` at its current size;
* ``observation.fov``: ``(2,)`` float32 horizontal and vertical field of view in radians
  (what the DiT's FoV token reads), ``2 atan(W / (2 fx))``, ``2 atan(H / (2 fy))``;
* ``human.hand_keypoints``: ``(history, 2, 21, 3)`` camera-frame keypoints (m) of both
  hands (left, right), 0 where a hand is absent.

Randomness: every transform takes a ``numpy.random.Generator`` or an int seed (its own stream,
one draw per call), or ``None``, which draws each call's generator from numpy's global state:
the trainer seeds that per sample (``SeededSources``), so with ``None`` a sample is the same in
any DataLoader worker and after a resume. A generator given here is copied into each worker
(the workers then repeat one another's draws): leave it ``None`` under the trainer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from human_video_policy.camera.pinhole import CameraIntrinsics
from human_video_policy.data.dataset_format import (
    ACTION_MASK_KEY,
    HAND_KEYPOINTS_KEY,
    STATE_MASK_KEY,
    hand_keypoints_array,
)
from human_video_policy.data.embodiment import HAND_DIM, HUMAN_DIM
from human_video_policy.errors import ConfigError, InputError
from human_video_policy.hands.rotations import euler_xyz_from_matrix, matrix_from_euler_xyz
from human_video_policy.validation import check_choice, check_int_range, check_range

Sample = dict[str, Any]
Transform = Callable[[Sample], Sample]
RngLike = np.random.Generator | int | None

IMAGE_PREFIX = "observation.images."
INTRINSICS_PREFIX = "observation.intrinsics."
FOV_KEY = "observation.fov"
KEYPOINTS_KEY = HAND_KEYPOINTS_KEY
STATE_KEY = "observation.state"
ACTION_KEY = "action"

#: Offsets of the hands' 51-d blocks (left, right) and, within a block, of the translation
#: group (dt / wrist position) and the rotation group (dr / wrist rotation).
HAND_OFFSETS = (0, HAND_DIM)
_T, _R = 0, 3

#: Words that make an instruction colour-dependent (whole words, case-insensitive; ``-ish``
#: and plural forms count, see :func:`names_a_colour`): colour jitter is skipped for them.
COLOUR_WORDS: tuple[str, ...] = (
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white", "gray",
    "grey", "brown", "cyan", "magenta", "violet", "indigo", "beige", "gold", "golden", "silver",
    "turquoise", "teal", "navy", "maroon", "lime", "olive", "crimson", "khaki", "colour",
    "color", "colored", "coloured", "colorful", "colourful",
)  # fmt: skip

_SWAP = re.compile(r"\b(left|right)(?=(?:most|ward|wards)?\b)", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Sample helpers


def intrinsics_key(image_key: str) -> str:
    """``observation.images.<cam>`` -> ``observation.intrinsics.<cam>``."""
    if not image_key.startswith(IMAGE_PREFIX):
        raise ConfigError(f"image_key={image_key!r} is invalid: 'observation.images.<name>'")
    return INTRINSICS_PREFIX + image_key[len(IMAGE_PREFIX) :]


def image_keys(sample: Sample) -> list[str]:
    """The camera keys of a sample, sorted."""
    return sorted(k for k in sample if k.startswith(IMAGE_PREFIX))


def _camera_key(sample: Sample, image_key: str | None, what: str) -> str:
    keys = image_keys(sample)
    if image_key is None:
        if len(keys) != 1:
            raise InputError(
                f"{what}: the sample has cameras {keys}; set image_key to the one whose optical "
                "frame the actions are expressed in"
            )
        return keys[0]
    if image_key not in sample:
        raise InputError(f"{what}: the sample has no {image_key!r} (cameras {keys})")
    return image_key


def _array(sample: Sample, key: str) -> np.ndarray:
    value = sample[key]
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def _like(value: np.ndarray, template: Any) -> Any:
    """``value`` back in the type and dtype of ``template`` (a tensor or an array)."""
    if isinstance(template, torch.Tensor):
        return torch.from_numpy(np.ascontiguousarray(value)).to(template.dtype)
    return np.asarray(value, dtype=np.asarray(template).dtype)


def _human_arrays(sample: Sample, what: str) -> dict[str, np.ndarray]:
    """State, action and their masks (float64, last dim 102); missing masks are ones."""
    out: dict[str, np.ndarray] = {}
    for key, mask_key in ((STATE_KEY, STATE_MASK_KEY), (ACTION_KEY, ACTION_MASK_KEY)):
        if key not in sample:
            continue
        x = _array(sample, key)
        if x.shape[-1] != HUMAN_DIM:
            raise InputError(
                f"{what}: {key} has width {x.shape[-1]}; these transforms work in the 102-d "
                "human hand space (ChunkDatasetConfig(action_space='human'))"
            )
        m = _array(sample, mask_key) if mask_key in sample else np.ones_like(x)
        if m.shape != x.shape:
            raise InputError(f"{what}: {mask_key} shape {m.shape} differs from {key} {x.shape}")
        out[key], out[mask_key] = x, m
    return out


def _groups(mask: np.ndarray, start: int, what: str) -> np.ndarray:
    """(...,) bool: rows whose 3 dims ``start:start+3`` are all present; partial -> error."""
    m = mask[..., start : start + 3] > 0.5
    full = m.all(axis=-1)
    if np.any(m.any(axis=-1) & ~full):
        raise InputError(
            f"{what}: dims {start}..{start + 2} are partly masked; a 3-d translation or "
            "rotation must be present or masked as a whole"
        )
    return full


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles into (-pi, pi]."""
    return np.pi - np.mod(np.pi - angle, 2.0 * np.pi)


# --------------------------------------------------------------------------------------------
# The geometry of the human space


def rotate_human_actions(
    action: np.ndarray, mask: np.ndarray, R: np.ndarray, what: str = "action"
) -> np.ndarray:
    """``(..., 102)`` actions in camera frame ``c`` -> frame ``c'`` with ``p' = R p``.

    ``dt -> R dt``, ``dR -> R dR R^T`` (back to Euler xyz), ``theta`` unchanged (joint angles
    live in the hand's own frame). Masked groups are left as they are.
    """
    out = np.array(action, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    for o in HAND_OFFSETS:
        t = _groups(mask, o + _T, what)
        out[..., o + _T : o + _T + 3][t] = out[..., o + _T : o + _T + 3][t] @ R.T
        r = _groups(mask, o + _R, what)
        if np.any(r):
            dR = matrix_from_euler_xyz(out[..., o + _R : o + _R + 3][r])
            out[..., o + _R : o + _R + 3][r] = euler_xyz_from_matrix(R @ dR @ R.T)
    return out


def rotate_human_state(
    state: np.ndarray, mask: np.ndarray, R: np.ndarray, what: str = "observation.state"
) -> np.ndarray:
    """``(..., 102)`` states in frame ``c`` -> ``c'`` (``p' = R p``): wrist position ``R p``,
    wrist rotation ``R R_w`` (back to Euler xyz), joint angles unchanged."""
    out = np.array(state, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    for o in HAND_OFFSETS:
        t = _groups(mask, o + _T, what)
        out[..., o + _T : o + _T + 3][t] = out[..., o + _T : o + _T + 3][t] @ R.T
        r = _groups(mask, o + _R, what)
        if np.any(r):
            Rw = matrix_from_euler_xyz(out[..., o + _R : o + _R + 3][r])
            out[..., o + _R : o + _R + 3][r] = euler_xyz_from_matrix(R @ Rw)
    return out


def swap_hands(x: np.ndarray) -> np.ndarray:
    """The left and right 51-d blocks of ``(..., 102)`` exchanged."""
    x = np.asarray(x)
    return np.concatenate([x[..., HAND_DIM:], x[..., :HAND_DIM]], axis=-1)


def mirror_human_actions(action: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Actions of the scene reflected across the camera's y-z plane (``S = diag(-1, 1, 1)``),
    then the hand blocks swapped (the mirror image of a left hand is a right hand).

    ``dt -> S dt``; ``dR -> S dR S``, which for intrinsic xyz Euler angles is exactly
    ``(a, b, c) -> (a, -b, -c)``; ``theta`` unchanged: the project measures a left hand's joint
    angles in its mirrored (right-hand) form (:func:`~human_video_policy.hands.joint_angles.
    local_keypoints`), so a hand and its mirror image have the same angles. Per dimension, so
    masked dims are only moved, never changed.
    """
    out = np.array(action, dtype=np.float64)
    on = np.asarray(mask) > 0.5
    for o in HAND_OFFSETS:
        for d in (o + _T, o + _R + 1, o + _R + 2):  # dt_x, dr_b, dr_c change sign
            out[..., d] = np.where(on[..., d], -out[..., d], out[..., d])
    return swap_hands(out)


def mirror_human_state(state: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """States of the reflected scene, hand blocks swapped: wrist position ``S p``; wrist
    rotation ``S R diag(1, -1, 1)``, i.e. Euler ``(a, b, c) -> (a, -b, pi - c)``; joint angles
    unchanged.

    The wrist frame is rebuilt from the mirrored keypoints by the project's own rule
    (:mod:`~human_video_policy.hands.wrist_pose`): ``x`` (to the middle MCP) and the palm
    normal ``z`` mirror to ``S x`` and ``S z``, and ``y = z x x`` becomes ``-S y``, so the
    mirrored hand's rotation is ``S R diag(1, -1, 1) = (S R S) Rz(pi)``, not ``S R S`` (that
    would be a left-handed frame turned about z). Relative rotations ``dR`` do conjugate to
    ``S dR S`` (:func:`mirror_human_actions`).
    """
    out = np.array(state, dtype=np.float64)
    on = np.asarray(mask) > 0.5
    for o in HAND_OFFSETS:
        x, b, c = o + _T, o + _R + 1, o + _R + 2
        out[..., x] = np.where(on[..., x], -out[..., x], out[..., x])
        out[..., b] = np.where(on[..., b], -out[..., b], out[..., b])
        out[..., c] = np.where(on[..., c], _wrap(np.pi - out[..., c]), out[..., c])
    return swap_hands(out)


def future_wrist_positions(
    state: np.ndarray, state_mask: np.ndarray, action: np.ndarray, action_mask: np.ndarray
) -> list[np.ndarray]:
    """Per present hand, ``(1 + k, 3)``: the current wrist position (last state row) and the
    positions after each of the chunk's first ``k`` translations ``dt`` (cumulative), ``k`` =
    rows until the first one whose ``dt`` is masked (a gap or the padding at the episode end).
    A hand whose current wrist position is masked is left out (nothing to anchor it)."""
    s = np.asarray(state, dtype=np.float64).reshape(-1, HUMAN_DIM)[-1]
    sm = np.asarray(state_mask, dtype=np.float64).reshape(-1, HUMAN_DIM)[-1]
    a = np.asarray(action, dtype=np.float64).reshape(-1, HUMAN_DIM)
    am = np.asarray(action_mask, dtype=np.float64).reshape(-1, HUMAN_DIM)
    out = []
    for o in HAND_OFFSETS:
        if not np.all(sm[o : o + 3] > 0.5):
            continue
        present = np.all(am[:, o : o + 3] > 0.5, axis=1)
        k = len(present) if present.all() else int(np.argmin(present))
        steps = np.cumsum(a[:k, o : o + 3], axis=0)
        out.append(np.vstack([s[o : o + 3], s[o : o + 3] + steps]))
    return out


def _project(K: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) pixels and (n,) depths z."""
    z = points[:, 2]
    safe = np.where(np.abs(z) > 1e-12, z, 1e-12)
    uv = np.stack(
        [K[0, 0] * points[:, 0] / safe + K[0, 2], K[1, 1] * points[:, 1] / safe + K[1, 2]]
    )
    return uv.T, z


def fov_of(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """``[hfov, vfov]`` (rad) of a camera matrix for a ``width x height`` image."""
    return np.array(
        [2.0 * math.atan(width / (2.0 * K[0, 0])), 2.0 * math.atan(height / (2.0 * K[1, 1]))]
    )


def swap_left_right_words(text: str) -> str:
    """ "left" <-> "right" as whole words (also in leftmost/rightward(s)), case kept
    (``Left`` -> ``Right``, ``LEFT`` -> ``RIGHT``). The project's two-hand instruction
    ``"Left hand: A. Right hand: B."`` keeps its order: it becomes
    ``"Left hand: B. Right hand: A."``."""

    def repl(m: re.Match[str]) -> str:
        word = m.group(1)
        new = "right" if word.lower() == "left" else "left"
        if word.isupper():
            return new.upper()
        if word[0].isupper():
            return new.capitalize()
        return new

    out = _SWAP.sub(repl, text)
    two = re.fullmatch(r"Right hand: (.*)\. Left hand: (.*)\.", out, re.DOTALL)
    if two is not None and text.startswith("Left hand: "):
        out = f"Left hand: {two.group(2)}. Right hand: {two.group(1)}."
    return out


def names_a_colour(text: str, words: Sequence[str] = COLOUR_WORDS) -> bool:
    """Whether ``text`` contains one of ``words`` as a whole word (case-insensitive), plural
    or -ish form included: "blues", "greenish", "reddish", "bluish", "whitish"."""
    if not words:
        return False
    forms = []
    for w in words:
        stem = re.escape(w)
        forms.append(stem + r"(?:s|es|ish)?")
        forms.append(re.escape(w + w[-1]) + "ish")  # red -> reddish
        if w.endswith("e"):
            forms.append(re.escape(w[:-1]) + "ish")  # blue -> bluish, white -> whitish
    pattern = r"\b(?:" + "|".join(forms) + r")\b"
    return re.search(pattern, text, re.IGNORECASE) is not None


def _generator(own: np.random.Generator | None, rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is not None:
        return np.random.default_rng(rng)
    if own is not None:
        return own
    return np.random.default_rng(int(np.random.randint(0, 2**31 - 1)))


def _own_generator(rng: RngLike, what: str) -> np.random.Generator | None:
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise ConfigError(f"{what}: rng={rng!r} is invalid: a numpy Generator, an int or None")
    return np.random.default_rng(int(rng))


def _check_pair(name: str, value: Sequence[float], low: float, high: float) -> None:
    if len(value) != 2:
        raise ConfigError(f"{name}={value!r} is invalid: must be (min, max)")
    check_range(f"{name}[0]", value[0], low, high)
    check_range(f"{name}[1]", value[1], low, high)
    if value[0] > value[1]:
        raise ConfigError(f"{name}={tuple(value)!r} is invalid: min > max")


def _check_probability(value: float) -> None:
    check_range("probability", value, 0.0, 1.0)


def _check_image_key(value: str | None) -> None:
    if value is not None:
        intrinsics_key(value)


# --------------------------------------------------------------------------------------------
# Camera information in the sample


class AddCamera:
    """Adds the camera matrix (``observation.intrinsics.<camera>``) and FoV
    (``observation.fov``) of the sample's image, optionally the hand keypoints of its frames.

    ``source``: a dataset folder or :class:`~human_video_policy.data.dataset_reader.
    DatasetReader` (intrinsics from ``meta/info.json`` ``hvp.cameras[<camera>]``: ``width``,
    ``height``, ``k``, as ``hvp dataset from-video`` writes them), or the
    :class:`CameraIntrinsics` of the stored frames (datasets without them in their meta). The
    matrix is adapted to the sample's image size the way the loader resizes (largest centred
    crop of that aspect, then scale; pixel centres at integer coordinates).
    ``keypoints=True`` adds ``human.hand_keypoints`` ``(history, 2, 21, 3)`` of the
    sample's observation frames (needs a dataset with that column).
    """

    def __init__(
        self,
        source: str | Path | Any,
        image_key: str | None = None,
        *,
        keypoints: bool = False,
    ) -> None:
        _check_image_key(image_key)
        self.image_key = image_key
        self.keypoints = keypoints
        self._intrinsics: CameraIntrinsics | None = None
        self._root: Path | None = None
        self._reader: Any = None
        self._rows: tuple[int, np.ndarray] | None = None
        if isinstance(source, CameraIntrinsics):
            if keypoints:
                raise ConfigError("keypoints=True needs a dataset as source, not intrinsics")
            self._intrinsics = source
        elif isinstance(source, (str, Path)):
            self._root = Path(source)
        elif hasattr(source, "spec") and hasattr(source, "episode_rows"):
            self._reader = source
            self._root = Path(source.root)
        else:
            raise ConfigError(
                f"source={source!r} is invalid: a dataset folder, a DatasetReader or "
                "CameraIntrinsics"
            )

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers open their own reader
        state = dict(self.__dict__)
        state["_reader"], state["_rows"] = None, None
        return state

    def _open(self) -> Any:
        if self._reader is None:
            from human_video_policy.data.dataset_reader import DatasetReader

            assert self._root is not None
            self._reader = DatasetReader(self._root)
        return self._reader

    def source_intrinsics(self, image_key: str) -> CameraIntrinsics:
        """The intrinsics of the stored frames of ``image_key``."""
        if self._intrinsics is not None:
            return self._intrinsics
        reader = self._open()
        camera = dict(reader.spec.cameras.get(image_key, {}))
        if not {"width", "height", "k"} <= set(camera):
            raise InputError(
                f"{self._root}: meta/info.json has no intrinsics for {image_key!r} "
                f"(hvp.cameras: {camera or 'none'}); pass AddCamera(CameraIntrinsics(...))"
            )
        self._intrinsics = CameraIntrinsics.from_matrix(
            camera["k"], int(camera["width"]), int(camera["height"])
        )
        return self._intrinsics

    def __call__(self, sample: Sample) -> Sample:
        key = _camera_key(sample, self.image_key, "AddCamera")
        height, width = (int(v) for v in sample[key].shape[-2:])
        src = self.source_intrinsics(key)
        K = _resized_matrix(src, height, width)
        out = dict(sample)
        out[intrinsics_key(key)] = torch.from_numpy(K.astype(np.float32))
        out[FOV_KEY] = torch.from_numpy(fov_of(K, width, height).astype(np.float32))
        if self.keypoints:
            out[KEYPOINTS_KEY] = torch.from_numpy(self._keypoints(sample).astype(np.float32))
        return out

    def _keypoints(self, sample: Sample) -> np.ndarray:
        ep, t = int(sample["episode_index"]), int(sample["frame_index"])
        if self._rows is None or self._rows[0] != ep:
            rows = self._open().episode_rows(ep, [KEYPOINTS_KEY])[KEYPOINTS_KEY]
            self._rows = (ep, hand_keypoints_array(rows).astype(np.float64))
        rows = self._rows[1]
        history = int(sample[STATE_KEY].shape[0]) if STATE_KEY in sample else 1
        hist = np.clip(np.arange(t - history + 1, t + 1), 0, len(rows) - 1)
        return rows[hist]


def _resized_matrix(src: CameraIntrinsics, height: int, width: int) -> np.ndarray:
    """K of ``src``'s image centre-cropped to the aspect ``height:width`` and resized to it
    (as ``resize_area`` / ``prepare_rgb`` do)."""
    if (src.width, src.height) == (width, height):
        return src.matrix
    from human_video_policy.data.human_episodes import scaled_intrinsics

    camera = {
        "width": src.width,
        "height": src.height,
        "fx": src.fx,
        "fy": src.fy,
        "cx": src.cx,
        "cy": src.cy,
    }
    return np.asarray(scaled_intrinsics(camera, height, width)["k"], np.float64).reshape(3, 3)


def _sample_intrinsics(sample: Sample, key: str) -> np.ndarray | None:
    k = intrinsics_key(key)
    if k not in sample:
        return None
    K = _array(sample, k).reshape(3, 3)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError(f"{k} is not a camera matrix: {K.tolist()}")
    return K


# --------------------------------------------------------------------------------------------
# 1. Crop + perspective warp


@dataclass(frozen=True)
class TrajectoryCropConfig:
    """Random crop rendered as a rotated virtual camera, keeping the future hand trajectory.

    A candidate crop (size, aspect, centre) is drawn in the source image; the virtual camera is
    the source camera turned (pan, then tilt: no roll) to look through the crop centre, with the
    focal lengths that make the crop fill the output, ``fx' = fx W_out / w_crop``,
    ``fy' = fy H_out / h_crop`` and the principal point at the output centre. The image is
    warped with ``H = K' R K^-1`` and the actions, states, keypoints and intrinsics follow.

    Fields:
        probability: chance that a sample is cropped at all (otherwise it passes unchanged).
        area: (min, max) area of the crop as a fraction of the source image, in (0, 1].
        aspect: (min, max) of the crop's aspect ratio (width / height) relative to the
            output's, drawn log-uniformly, in [0.5, 2]. Not 1 means the virtual pixels are not
            square (``fx'/fy'`` = ``(fx/fy) / aspect``): the "new aspect ratio" of VITRA, told
            to the model by the FoV.
        output_size: (height, width) of the warped images; None keeps the input size.
        margin_px: the projected future wrist trajectory must stay at least this many output
            pixels inside the border.
        min_depth_m: trajectory points must lie at least this far in front of the virtual
            camera (z, metres).
        max_tries: candidate crops drawn before giving up; the sample is then not cropped.
        keep_view_inside: reject candidates whose warped view needs pixels outside the source
            image (by more than half a pixel); False fills those pixels with 0.
        ignore_points_outside_source: trajectory points that do not project into the source
            image (hand leaving the view, or behind the camera) are not required to be inside
            the crop (no crop can keep them); False: such samples are never cropped.
        interpolation: ``linear`` or ``cubic`` (OpenCV warpPerspective).
        image_key: the camera the actions are expressed in (None: the sample's only camera).
            Other cameras pass unchanged.
        on_missing_camera: ``error`` (default) or ``skip`` (pass the sample unchanged) when it
            carries no ``observation.intrinsics.<camera>`` (add :class:`AddCamera` first).
    """

    probability: float = 1.0
    area: tuple[float, float] = (0.4, 1.0)
    aspect: tuple[float, float] = (0.75, 4.0 / 3.0)
    output_size: tuple[int, int] | None = None
    margin_px: float = 0.0
    min_depth_m: float = 0.05
    max_tries: int = 10
    keep_view_inside: bool = True
    ignore_points_outside_source: bool = True
    interpolation: str = "linear"
    image_key: str | None = None
    on_missing_camera: str = "error"

    def __post_init__(self) -> None:
        _check_probability(self.probability)
        _check_pair("area", self.area, 1e-3, 1.0)
        _check_pair("aspect", self.aspect, 0.5, 2.0)
        size = self.output_size
        if size is not None and (
            len(size) != 2
            or any(not isinstance(v, int) or isinstance(v, bool) or v < 2 for v in size)
        ):
            raise ConfigError(f"output_size={size!r} is invalid: (height, width), ints >= 2")
        check_range("margin_px", self.margin_px, 0.0, 1e4)
        check_range("min_depth_m", self.min_depth_m, 0.0, 1e3)
        check_int_range("max_tries", self.max_tries, 1, 10_000)
        check_choice("interpolation", self.interpolation, ("linear", "cubic"))
        _check_image_key(self.image_key)
        check_choice("on_missing_camera", self.on_missing_camera, ("error", "skip"))


@dataclass(frozen=True)
class CropChoice:
    """One accepted crop: ``rotation`` (3, 3) maps source-camera points to the virtual camera
    (``p' = R p``), ``intrinsics`` (3, 3) the virtual camera's K, ``homography`` (3, 3) output
    pixel -> source pixel, ``size`` (height, width) of the output, ``crop`` the drawn
    ``(u_centre, v_centre, width, height)`` in source pixels, ``tries`` candidates drawn."""

    rotation: np.ndarray
    intrinsics: np.ndarray
    homography: np.ndarray
    size: tuple[int, int]
    crop: tuple[float, float, float, float]
    tries: int


def look_at_rotation(direction: np.ndarray) -> np.ndarray:
    """Rotation ``R`` (rows = the new camera's axes in the old frame) of a camera turned to look
    along ``direction`` by a pan about the old y axis and a tilt, without roll: the new x axis
    stays horizontal (perpendicular to the old y). ``R @ direction`` is along +z."""
    z = np.asarray(direction, dtype=np.float64)
    z = z / np.linalg.norm(z)
    x = np.cross([0.0, 1.0, 0.0], z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def crop_camera(
    K: np.ndarray,
    centre: tuple[float, float],
    crop_size: tuple[float, float],
    output_size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R, K', H) of the virtual camera for a crop of ``crop_size`` (width, height) source
    pixels centred at ``centre`` (u, v), rendered at ``output_size`` (height, width):
    ``H = K R^T K'^-1`` maps output pixels to source pixels."""
    K = np.asarray(K, dtype=np.float64)
    out_h, out_w = output_size
    direction = np.linalg.solve(K, np.array([centre[0], centre[1], 1.0]))
    R = look_at_rotation(direction)
    K_new = np.array(
        [
            [K[0, 0] * out_w / crop_size[0], 0.0, (out_w - 1) / 2.0],
            [0.0, K[1, 1] * out_h / crop_size[1], (out_h - 1) / 2.0],
            [0.0, 0.0, 1.0],
        ]
    )
    H = K @ R.T @ np.linalg.inv(K_new)
    return R, K_new, H / H[2, 2]


def warp_images(
    images: torch.Tensor | np.ndarray,
    homography: np.ndarray,
    size: tuple[int, int],
    *,
    interpolation: str = "linear",
    border: str = "replicate",
) -> Any:
    """``(..., C, H, W)`` images -> ``(..., C, h, w)`` with ``out(p) = in(homography @ p)``."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    lead, (c, h_in, w_in) = x.shape[:-3], x.shape[-3:]
    flat = x.reshape(-1, c, h_in, w_in).astype(np.float32)
    flags = (cv2.INTER_CUBIC if interpolation == "cubic" else cv2.INTER_LINEAR) | (
        cv2.WARP_INVERSE_MAP
    )
    mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
    out = np.empty((flat.shape[0], c, size[0], size[1]), np.float32)
    for i, frame in enumerate(flat):
        hwc = np.ascontiguousarray(frame.transpose(1, 2, 0))
        warped = cv2.warpPerspective(
            hwc, homography, (size[1], size[0]), flags=flags, borderMode=mode, borderValue=0
        )
        out[i] = warped.reshape(size[0], size[1], c).transpose(2, 0, 1)
    if interpolation == "cubic":
        np.clip(out, 0.0, 1.0, out=out)
    out = out.reshape(*lead, c, size[0], size[1])
    return _like(out, images) if isinstance(images, torch.Tensor) else out


class TrajectoryCrop:
    """VITRA's trajectory-aware crop + perspective warp (see :class:`TrajectoryCropConfig`).

    ``transform(sample)`` draws and applies; :meth:`choose` and :meth:`apply` split the two
    (``choose`` returns None when the sample is not cropped).
    """

    def __init__(self, config: TrajectoryCropConfig | None = None, rng: RngLike = None) -> None:
        self.config = config or TrajectoryCropConfig()
        self._rng = _own_generator(rng, "TrajectoryCrop")

    def __call__(self, sample: Sample, rng: RngLike = None) -> Sample:
        choice = self.choose(sample, rng)
        return sample if choice is None else self.apply(sample, choice)

    def choose(self, sample: Sample, rng: RngLike = None) -> CropChoice | None:
        cfg = self.config
        gen = _generator(self._rng, rng)
        key = _camera_key(sample, cfg.image_key, "TrajectoryCrop")
        K = _sample_intrinsics(sample, key)
        if K is None:
            if cfg.on_missing_camera == "skip":
                return None
            raise InputError(
                f"TrajectoryCrop: the sample has no {intrinsics_key(key)!r}; put AddCamera(...) "
                "before it in the transforms (or on_missing_camera='skip')"
            )
        if gen.random() >= cfg.probability:
            return None
        arrays = _human_arrays(sample, "TrajectoryCrop")
        h_in, w_in = (int(v) for v in sample[key].shape[-2:])
        out_h, out_w = cfg.output_size or (h_in, w_in)
        points = np.zeros((0, 3))
        if STATE_KEY in arrays and ACTION_KEY in arrays:
            tracks = future_wrist_positions(
                arrays[STATE_KEY], arrays[STATE_MASK_KEY], arrays[ACTION_KEY],
                arrays[ACTION_MASK_KEY],
            )  # fmt: skip
            if tracks:
                points = np.concatenate(tracks)
        if cfg.ignore_points_outside_source and len(points):
            uv, z = _project(K, points)
            seen = (
                (z > cfg.min_depth_m)
                & (uv[:, 0] >= -0.5) & (uv[:, 0] <= w_in - 0.5)
                & (uv[:, 1] >= -0.5) & (uv[:, 1] <= h_in - 0.5)
            )  # fmt: skip
            points = points[seen]
        out_aspect = out_w / out_h
        log_lo, log_hi = math.log(cfg.aspect[0]), math.log(cfg.aspect[1])
        corners = np.array(
            [[0, 0, 1], [out_w - 1, 0, 1], [0, out_h - 1, 1], [out_w - 1, out_h - 1, 1]], float
        ).T
        for attempt in range(1, cfg.max_tries + 1):
            area = gen.uniform(*cfg.area) * w_in * h_in
            ratio = math.exp(gen.uniform(log_lo, log_hi)) * out_aspect
            cw = min(float(w_in), math.sqrt(area * ratio))
            ch = min(float(h_in), math.sqrt(area / ratio))
            # crop centre: the crop inside the image (pixel areas span [-0.5, W - 0.5])
            u = gen.uniform(cw / 2.0 - 0.5, w_in - 0.5 - cw / 2.0)
            v = gen.uniform(ch / 2.0 - 0.5, h_in - 0.5 - ch / 2.0)
            R, K_new, H = crop_camera(K, (u, v), (cw, ch), (out_h, out_w))
            if cfg.keep_view_inside:
                src = H @ corners
                if np.any(src[2] <= 0):
                    continue
                src = src[:2] / src[2]
                if (
                    src[0].min() < -1.0 or src[0].max() > w_in or
                    src[1].min() < -1.0 or src[1].max() > h_in
                ):  # fmt: skip
                    continue
            if len(points):
                uv, z = _project(K_new, points @ R.T)
                m = cfg.margin_px
                if not (
                    np.all(z > cfg.min_depth_m)
                    and np.all((uv[:, 0] >= m) & (uv[:, 0] <= out_w - 1 - m))
                    and np.all((uv[:, 1] >= m) & (uv[:, 1] <= out_h - 1 - m))
                ):
                    continue
            return CropChoice(R, K_new, H, (out_h, out_w), (u, v, cw, ch), attempt)
        return None

    def apply(self, sample: Sample, choice: CropChoice) -> Sample:
        """The sample seen by the virtual camera of ``choice``."""
        cfg = self.config
        key = _camera_key(sample, cfg.image_key, "TrajectoryCrop")
        return rotate_camera(
            sample,
            key,
            choice.rotation,
            choice.intrinsics,
            choice.homography,
            choice.size,
            interpolation=cfg.interpolation,
            border="replicate" if cfg.keep_view_inside else "constant",
        )


def rotate_camera(
    sample: Sample,
    image_key: str,
    R: np.ndarray,
    K_new: np.ndarray,
    homography: np.ndarray,
    size: tuple[int, int],
    *,
    interpolation: str = "linear",
    border: str = "replicate",
) -> Sample:
    """``sample`` as seen by a camera at the same place turned by ``R`` (``p' = R p``) with
    intrinsics ``K_new``, its image ``size`` (height, width) warped by ``homography`` (output
    pixel -> source pixel). Actions, state, keypoints and intrinsics follow, and the FoV if
    the sample carries one; masked dimensions are left as they are."""
    arrays = _human_arrays(sample, "rotate_camera")
    out = dict(sample)
    out[image_key] = warp_images(
        sample[image_key], homography, size, interpolation=interpolation, border=border
    )
    if ACTION_KEY in arrays:
        a = rotate_human_actions(arrays[ACTION_KEY], arrays[ACTION_MASK_KEY], R)
        out[ACTION_KEY] = _like(a, sample[ACTION_KEY])
    if STATE_KEY in arrays:
        s = rotate_human_state(arrays[STATE_KEY], arrays[STATE_MASK_KEY], R)
        out[STATE_KEY] = _like(s, sample[STATE_KEY])
    if KEYPOINTS_KEY in sample:
        kp = _array(sample, KEYPOINTS_KEY)
        out[KEYPOINTS_KEY] = _like(kp @ np.asarray(R).T, sample[KEYPOINTS_KEY])
    k_key = intrinsics_key(image_key)
    template = sample.get(k_key, torch.zeros(3, 3))
    out[k_key] = _like(np.asarray(K_new, np.float64), template)
    if FOV_KEY in sample:  # only if carried: a batch's samples must have the same keys
        out[FOV_KEY] = _like(fov_of(np.asarray(K_new), size[1], size[0]), sample[FOV_KEY])
    return out


# --------------------------------------------------------------------------------------------
# 2. Horizontal flip


@dataclass(frozen=True)
class HorizontalFlipConfig:
    """Mirror image: the scene reflected across the camera's y-z plane.

    The image is mirrored (``u -> W - 1 - u``), the hands' blocks of action, state, masks and
    keypoints swapped (a mirrored left hand is a right hand), x of translations and positions
    negated, rotations reflected (:func:`mirror_human_actions`, :func:`mirror_human_state`),
    the principal point mirrored (``cx -> W - 1 - cx``; unchanged when centred), and the words
    left/right of the instruction swapped.

    Fields:
        probability: chance that a sample is flipped.
        image_key: the camera the actions are expressed in (None: the sample's only camera).
            Other cameras are not mirrored.
        swap_words: swap "left" and "right" in ``task`` (case kept); False leaves the text.
    """

    probability: float = 0.5
    image_key: str | None = None
    swap_words: bool = True

    def __post_init__(self) -> None:
        _check_probability(self.probability)
        _check_image_key(self.image_key)
        if not isinstance(self.swap_words, bool):
            raise ConfigError(f"swap_words={self.swap_words!r} is invalid: must be a bool")


class HorizontalFlip:
    """See :class:`HorizontalFlipConfig`; :meth:`apply` flips unconditionally."""

    def __init__(self, config: HorizontalFlipConfig | None = None, rng: RngLike = None) -> None:
        self.config = config or HorizontalFlipConfig()
        self._rng = _own_generator(rng, "HorizontalFlip")

    def __call__(self, sample: Sample, rng: RngLike = None) -> Sample:
        gen = _generator(self._rng, rng)
        if gen.random() >= self.config.probability:
            return sample
        return self.apply(sample)

    def apply(self, sample: Sample) -> Sample:
        cfg = self.config
        key = _camera_key(sample, cfg.image_key, "HorizontalFlip")
        arrays = _human_arrays(sample, "HorizontalFlip")
        out = dict(sample)
        image = sample[key]
        out[key] = (
            torch.flip(image, dims=(-1,))
            if isinstance(image, torch.Tensor)
            else np.ascontiguousarray(np.asarray(image)[..., ::-1])
        )
        if ACTION_KEY in arrays:
            a = mirror_human_actions(arrays[ACTION_KEY], arrays[ACTION_MASK_KEY])
            out[ACTION_KEY] = _like(a, sample[ACTION_KEY])
            if ACTION_MASK_KEY in sample:
                out[ACTION_MASK_KEY] = _like(
                    swap_hands(arrays[ACTION_MASK_KEY]), sample[ACTION_MASK_KEY]
                )
        if STATE_KEY in arrays:
            s = mirror_human_state(arrays[STATE_KEY], arrays[STATE_MASK_KEY])
            out[STATE_KEY] = _like(s, sample[STATE_KEY])
            if STATE_MASK_KEY in sample:
                out[STATE_MASK_KEY] = _like(
                    swap_hands(arrays[STATE_MASK_KEY]), sample[STATE_MASK_KEY]
                )
        if KEYPOINTS_KEY in sample:
            kp = _array(sample, KEYPOINTS_KEY)
            if kp.shape[-3:-2] != (2,) or kp.shape[-1] != 3:
                raise InputError(f"{KEYPOINTS_KEY} must be (..., 2, 21, 3), got {kp.shape}")
            kp = kp[..., ::-1, :, :].copy()
            kp[..., 0] *= -1.0
            out[KEYPOINTS_KEY] = _like(kp, sample[KEYPOINTS_KEY])
        K = _sample_intrinsics(sample, key)
        if K is not None:
            width = int(image.shape[-1])
            K = K.copy()
            K[0, 2] = (width - 1) - K[0, 2]
            out[intrinsics_key(key)] = _like(K, sample[intrinsics_key(key)])
        if cfg.swap_words and isinstance(sample.get("task"), str):
            out["task"] = swap_left_right_words(sample["task"])
        return out


# --------------------------------------------------------------------------------------------
# 3. Colour jitter

_RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
_GREY = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class ColorJitterConfig:
    """Random brightness, contrast, saturation and hue, one draw per sample for all its frames
    and cameras, applied in a random order, the result clipped to [0, 1]; skipped when the
    instruction names a colour (VITRA: "when the text description does not contain explicit
    colour cues").

    Fields:
        probability: chance that a sample (without colour words) is jittered.
        brightness: the image is scaled by a factor in [1 - brightness, 1 + brightness], < 1.
        contrast: blend with the frame's mean grey by a factor in [1 - c, 1 + c], < 1.
        saturation: blend with the pixel's grey by a factor in [1 - s, 1 + s], < 1.
        hue: hue turned by up to +-hue of a full turn (rotation of the YIQ chroma plane),
            in [0, 0.5].
        colour_words: words that mark an instruction as colour-dependent (whole words,
            case-insensitive, plural/-ish forms included); empty: always jitter.
        image_keys: cameras to jitter (None: all the sample's cameras).
    """

    probability: float = 1.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.03
    colour_words: tuple[str, ...] = COLOUR_WORDS
    image_keys: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        _check_probability(self.probability)
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            check_range(name, value, 0.0, 1.0)
            if value >= 1.0:
                raise ConfigError(f"{name}={value!r} is invalid: must be < 1")
        check_range("hue", self.hue, 0.0, 0.5)
        if isinstance(self.colour_words, str) or any(
            not isinstance(w, str) or not w.strip() for w in self.colour_words
        ):
            raise ConfigError(
                f"colour_words={self.colour_words!r} is invalid: a tuple of non-empty words"
            )
        if self.image_keys is not None:
            if isinstance(self.image_keys, str):
                raise ConfigError(f"image_keys={self.image_keys!r} is invalid: a tuple of keys")
            for k in self.image_keys:
                intrinsics_key(k)


def _grey(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
    return (_GREY[0] * r + _GREY[1] * g + _GREY[2] * b).unsqueeze(-3)


def hue_matrix(turn: float) -> np.ndarray:
    """3x3 RGB -> RGB matrix turning the hue by ``turn`` of a full circle (YIQ rotation)."""
    a = 2.0 * math.pi * turn
    rot = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    return np.linalg.inv(_RGB_TO_YIQ) @ rot @ _RGB_TO_YIQ


class ColorJitter:
    """See :class:`ColorJitterConfig`. :meth:`apply` jitters with given factors."""

    def __init__(self, config: ColorJitterConfig | None = None, rng: RngLike = None) -> None:
        self.config = config or ColorJitterConfig()
        self._rng = _own_generator(rng, "ColorJitter")

    def __call__(self, sample: Sample, rng: RngLike = None) -> Sample:
        cfg = self.config
        gen = _generator(self._rng, rng)
        if gen.random() >= cfg.probability:
            return sample
        if names_a_colour(str(sample.get("task", "")), cfg.colour_words):
            return sample
        factors = {
            "brightness": gen.uniform(1.0 - cfg.brightness, 1.0 + cfg.brightness),
            "contrast": gen.uniform(1.0 - cfg.contrast, 1.0 + cfg.contrast),
            "saturation": gen.uniform(1.0 - cfg.saturation, 1.0 + cfg.saturation),
            "hue": gen.uniform(-cfg.hue, cfg.hue),
        }
        order = [list(factors)[i] for i in gen.permutation(4)]
        return self.apply(sample, factors, order)

    def apply(
        self, sample: Sample, factors: dict[str, float], order: Sequence[str] | None = None
    ) -> Sample:
        """Jitter every selected camera with ``factors`` (brightness, contrast, saturation:
        multiplicative, 1 = unchanged; hue: turn, 0 = unchanged) in ``order``."""
        keys = self.config.image_keys or image_keys(sample)
        out = dict(sample)
        for key in keys:
            if key not in sample:
                raise InputError(f"ColorJitter: the sample has no {key!r}")
            x = sample[key]
            t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
            y = t.float()
            for name in order or ("brightness", "contrast", "saturation", "hue"):
                f = float(factors.get(name, 0.0 if name == "hue" else 1.0))
                if name == "brightness":
                    y = y * f
                elif name == "contrast":
                    mean = _grey(y).mean(dim=(-3, -2, -1), keepdim=True)
                    y = f * y + (1.0 - f) * mean
                elif name == "saturation":
                    y = f * y + (1.0 - f) * _grey(y)
                elif name == "hue" and f != 0.0:
                    M = torch.from_numpy(hue_matrix(f).astype(np.float32))
                    y = torch.einsum("ij,...jhw->...ihw", M, y)
                y = y.clamp(0.0, 1.0)
            y = y.to(t.dtype)
            out[key] = y if isinstance(x, torch.Tensor) else y.numpy()
        return out


# --------------------------------------------------------------------------------------------
# All of it


@dataclass(frozen=True)
class VitraAugmentationConfig:
    """The three transforms in VITRA's order (crop, flip, colour jitter).

    Fields:
        crop: the crop + warp, or None to leave it out.
        flip: the horizontal flip, or None.
        jitter: the colour jitter, or None.
        keypoints: also load ``human.hand_keypoints`` of the observation frames (so they
            are transformed too) when a dataset is given.
    """

    crop: TrajectoryCropConfig | None = field(default_factory=TrajectoryCropConfig)
    flip: HorizontalFlipConfig | None = field(default_factory=HorizontalFlipConfig)
    jitter: ColorJitterConfig | None = field(default_factory=ColorJitterConfig)
    keypoints: bool = False

    def __post_init__(self) -> None:
        for name, kind in (
            ("crop", TrajectoryCropConfig),
            ("flip", HorizontalFlipConfig),
            ("jitter", ColorJitterConfig),
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise ConfigError(f"{name}={value!r} is invalid: a {kind.__name__} or None")


def vitra_augmentation(
    camera: str | Path | Any | None,
    config: VitraAugmentationConfig | None = None,
    *,
    image_key: str | None = None,
    seed: int | None = None,
) -> tuple[Transform, ...]:
    """The transforms for ``ChunkDatasetConfig.transforms``: :class:`AddCamera` of
    ``camera`` (a dataset folder, DatasetReader or CameraIntrinsics; None if the samples carry
    their intrinsics already), then crop, flip and jitter. ``seed``: None draws from numpy's
    global state per call (what the trainer seeds per sample); an int gives each transform
    its own stream."""
    config = config or VitraAugmentationConfig()
    seeds: list[RngLike] = [None, None, None]
    if seed is not None:
        seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3)]
    out: list[Transform] = []
    if camera is not None:
        out.append(AddCamera(camera, image_key, keypoints=config.keypoints))
    if config.crop is not None:
        crop = config.crop
        if image_key is not None and crop.image_key is None:
            crop = replace(crop, image_key=image_key)
        out.append(TrajectoryCrop(crop, seeds[0]))
    if config.flip is not None:
        flip = config.flip
        if image_key is not None and flip.image_key is None:
            flip = replace(flip, image_key=image_key)
        out.append(HorizontalFlip(flip, seeds[1]))
    if config.jitter is not None:
        out.append(ColorJitter(config.jitter, seeds[2]))
    return tuple(out)


__all__ = [
    "COLOUR_WORDS",
    "FOV_KEY",
    "KEYPOINTS_KEY",
    "AddCamera",
    "ColorJitter",
    "ColorJitterConfig",
    "CropChoice",
    "HorizontalFlip",
    "HorizontalFlipConfig",
    "TrajectoryCrop",
    "TrajectoryCropConfig",
    "VitraAugmentationConfig",
    "crop_camera",
    "fov_of",
    "future_wrist_positions",
    "hue_matrix",
    "intrinsics_key",
    "look_at_rotation",
    "mirror_human_actions",
    "mirror_human_state",
    "names_a_colour",
    "rotate_camera",
    "rotate_human_actions",
    "rotate_human_state",
    "swap_hands",
    "swap_left_right_words",
    "vitra_augmentation",
    "warp_images",
]
