"""A :class:`~human_video_policy.hands.tracker.HandTracker` for any ONNX hand-keypoint model.

Stronger hand models (WiLoR, HaMeR, RTMPose-hand...) exported to ONNX plug in here given only
a path; the MediaPipe tracker stays the default. The model describes itself through
``metadata_props``, with these defaults, so preprocessing cannot drift from its training:

Input (exactly one, float32):
    ``[1, 3, H, W]`` (NCHW) or ``[1, H, W, 3]`` (NHWC), layout read from the shape (or
    ``hvp.input_layout`` = ``"NCHW"`` / ``"NHWC"`` when both are 3). ``H, W`` come from the
    shape, or from ``hvp.input_size`` (JSON ``[H, W]``) when the shape is dynamic.
    Pixels: ``(pixel * hvp.pixel_scale - hvp.mean) / hvp.std`` per channel, in
    ``hvp.channel_order`` (``"rgb"`` default or ``"bgr"``); defaults ``pixel_scale = 1/255``,
    ``mean = [0, 0, 0]``, ``std = [1, 1, 1]`` (JSON lists of 3).
    Fitting: ``hvp.resize`` = ``"letterbox"`` (default: keep the aspect ratio, centre, pad
    with ``hvp.pad_value``, default 0) or ``"stretch"``.

Outputs (names ``hvp.output.<role>``, default the role name; batch 1; ``N`` hand slots, which
may be left out for a one-hand model):
    ``keypoints_2d`` ``[1, N, 21, 2]``: in model-input pixels (``hvp.keypoints_2d_units`` =
    ``"pixels"``) or normalised to ``[0, 1]`` of the input width/height (``"normalized"``,
    default); continuous coordinates, 0 at the left/top edge, as MediaPipe's.
    ``keypoints_3d`` ``[1, N, 21, 3]``: metres, hand-centred, camera axes, MediaPipe order.
    ``handedness`` ``[1, N]``: probability that the hand is an anatomical right hand.
    ``confidence`` ``[1, N]``: hand presence score in ``[0, 1]``.

The model runs on the whole image, or on square crops around given hand boxes
(``track(rgb, boxes=...)``) for crop-based models; keypoints are mapped back to the original
image either way. A missing file, a file ONNX Runtime cannot load, or inputs/outputs that break
this contract raise :class:`ModelLoadError` naming what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from human_video_policy.errors import ConfigError, InputError, ModelLoadError
from human_video_policy.hands.keypoints import NUM_KEYPOINTS
from human_video_policy.hands.tracker import FrameHands, HandDetection
from human_video_policy.validation import check_int_range, check_range

if TYPE_CHECKING:
    from human_video_policy.video.reader import VideoFrame

OUTPUT_ROLES = ("keypoints_2d", "keypoints_3d", "handedness", "confidence")


@dataclass(frozen=True)
class OnnxHandTrackerConfig:
    """Options of :class:`OnnxHandTracker`.

    Attributes:
        model_path: the ``.onnx`` file (contract in the module docstring).
        max_num_hands: most confident hands kept per image (1..8).
        min_confidence: hands scoring below this are dropped (0..1).
        box_scale: a hand box given to ``track`` is made square and enlarged by this factor
            before cropping (crop models expect some context around the hand; >= 1).
        intra_op_threads: ONNX Runtime threads for one inference.
        providers: ONNX Runtime execution providers, in order of preference.
    """

    model_path: str
    max_num_hands: int = 2
    min_confidence: float = 0.5
    box_scale: float = 1.25
    intra_op_threads: int = 1
    providers: tuple[str, ...] = ("CPUExecutionProvider",)

    def __post_init__(self) -> None:
        if not str(self.model_path):
            raise ConfigError("model_path='' is invalid: must name an .onnx file")
        check_int_range("max_num_hands", self.max_num_hands, 1, 8)
        check_range("min_confidence", self.min_confidence, 0.0, 1.0)
        check_range("box_scale", self.box_scale, 1.0, 4.0)
        check_int_range("intra_op_threads", self.intra_op_threads, 1, 64)
        if not self.providers:
            raise ConfigError("providers=() is invalid: give at least one execution provider")


@dataclass(frozen=True, eq=False)
class ModelContract:
    """What :class:`OnnxHandTracker` read from the model file (see the module docstring)."""

    input_name: str
    layout: str
    height: int
    width: int
    resize: str
    pad_value: float
    channel_order: str
    pixel_scale: float
    mean: np.ndarray
    std: np.ndarray
    keypoints_2d_units: str
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegionTransform:
    """How an image region was placed into the model input: ``u_input = (u - x0) * sx + pad_x``
    (and the same for v), in continuous coordinates (0 at the image's left/top edge)."""

    x0: float
    y0: float
    sx: float
    sy: float
    pad_x: float
    pad_y: float

    def to_image(self, uv_input: np.ndarray) -> np.ndarray:
        """``(..., 2)`` model-input coordinates -> original-image coordinates."""
        uv = np.asarray(uv_input, dtype=np.float64)
        u = (uv[..., 0] - self.pad_x) / self.sx + self.x0
        v = (uv[..., 1] - self.pad_y) / self.sy + self.y0
        return np.stack([u, v], axis=-1)


def _meta_choice(meta: dict[str, str], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = meta.get(key, default)
    if value not in allowed:
        raise ModelLoadError(f"metadata {key}={value!r} is invalid: must be one of {allowed}")
    return value


def _meta_json(meta: dict[str, str], key: str, default: Any) -> Any:
    if key not in meta:
        return default
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"metadata {key}={meta[key]!r} is not valid JSON: {exc}") from exc


def _triple(meta: dict[str, str], key: str, default: float) -> np.ndarray:
    value = np.asarray(_meta_json(meta, key, [default] * 3), dtype=np.float64)
    if value.shape != (3,) or not np.isfinite(value).all():
        raise ModelLoadError(f"metadata {key} must be a JSON list of 3 numbers, got {value}")
    return value


def _keypoint_shape_ok(shape: list, dims: int) -> bool:
    """[1, N, 21, dims] or [1, 21, dims]; symbolic (dynamic) dimensions pass."""

    def fits(actual: object, wanted: int) -> bool:
        return not isinstance(actual, int) or actual == wanted

    return len(shape) in (3, 4) and fits(shape[-1], dims) and fits(shape[-2], NUM_KEYPOINTS)


def read_contract(session: Any, meta: dict[str, str]) -> ModelContract:
    """Check a loaded session against the contract; ModelLoadError says what breaks it."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise ModelLoadError(f"model must have exactly one input (the image), it has {names}")
    inp = inputs[0]
    if inp.type != "tensor(float)":
        raise ModelLoadError(f"model input {inp.name!r} must be float32, it is {inp.type}")
    shape = list(inp.shape)
    if len(shape) != 4:
        raise ModelLoadError(
            f"model input {inp.name!r} must be 4-D [1, 3, H, W] or [1, H, W, 3], got {shape}"
        )
    layout = meta.get("hvp.input_layout")
    if layout is None:
        layout = "NCHW" if shape[1] == 3 else "NHWC" if shape[3] == 3 else ""
    if layout not in ("NCHW", "NHWC"):
        raise ModelLoadError(
            f"model input {inp.name!r} shape {shape} has no channel axis of size 3 (NCHW or "
            "NHWC); set metadata hvp.input_layout"
        )
    channels = shape[1] if layout == "NCHW" else shape[3]
    if isinstance(channels, int) and channels != 3:
        raise ModelLoadError(
            f"model input {inp.name!r} {layout} shape {shape} must have 3 channels"
        )
    hw = shape[2:4] if layout == "NCHW" else shape[1:3]
    if not all(isinstance(d, int) and d > 0 for d in hw):
        size = _meta_json(meta, "hvp.input_size", None)
        if not (
            isinstance(size, list) and len(size) == 2 and all(isinstance(d, int) for d in size)
        ):
            raise ModelLoadError(
                f"model input {inp.name!r} has a dynamic size {shape}: set metadata "
                "hvp.input_size to a JSON [H, W]"
            )
        hw = size
    height, width = int(hw[0]), int(hw[1])
    if not (8 <= height <= 4096 and 8 <= width <= 4096):
        raise ModelLoadError(f"model input size {height}x{width} is invalid: 8..4096 pixels")
    available = {o.name: o for o in session.get_outputs()}
    outputs = {}
    for role in OUTPUT_ROLES:
        name = meta.get(f"hvp.output.{role}", role)
        if name not in available:
            raise ModelLoadError(
                f"model has no output {name!r} ({role}); its outputs are {sorted(available)} "
                f"(name it with metadata hvp.output.{role})"
            )
        out_shape = list(available[name].shape)
        last = {"keypoints_2d": 2, "keypoints_3d": 3}.get(role)
        if last is not None and not _keypoint_shape_ok(out_shape, last):
            raise ModelLoadError(
                f"model output {name!r} ({role}) must be [1, N, 21, {last}] or [1, 21, {last}], "
                f"got {out_shape}"
            )
        if last is None and len(out_shape) not in (1, 2):
            raise ModelLoadError(
                f"model output {name!r} ({role}) must be [1, N] or [1], got {out_shape}"
            )
        outputs[role] = name
    std = _triple(meta, "hvp.std", 1.0)
    if (std == 0).any():
        raise ModelLoadError(f"metadata hvp.std={std.tolist()} must not contain 0")
    try:
        pixel_scale = float(meta.get("hvp.pixel_scale", 1.0 / 255.0))
        pad_value = float(meta.get("hvp.pad_value", 0.0))
    except ValueError as exc:
        raise ModelLoadError(
            f"metadata hvp.pixel_scale / hvp.pad_value must be numbers: {exc}"
        ) from None
    return ModelContract(
        input_name=inp.name,
        layout=layout,
        height=height,
        width=width,
        resize=_meta_choice(meta, "hvp.resize", "letterbox", ("letterbox", "stretch")),
        pad_value=pad_value,
        channel_order=_meta_choice(meta, "hvp.channel_order", "rgb", ("rgb", "bgr")),
        pixel_scale=pixel_scale,
        mean=_triple(meta, "hvp.mean", 0.0),
        std=std,
        keypoints_2d_units=_meta_choice(
            meta, "hvp.keypoints_2d_units", "normalized", ("normalized", "pixels")
        ),
        outputs=outputs,
    )


def _check_rgb(rgb: object) -> np.ndarray:
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or min(img.shape[:2]) < 1:
        raise InputError(
            f"image must be (H, W, 3) uint8 RGB, got shape {img.shape} dtype {img.dtype}"
        )
    return img


class OnnxHandTracker:
    """Runs an ONNX hand-keypoint model on images (contract: module docstring).

    Stateless between images (``track_video`` tracks every frame independently). Usable as a
    context manager.
    """

    def __init__(self, config: OnnxHandTrackerConfig) -> None:
        import onnxruntime as ort

        self.config = config
        path = Path(config.model_path).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"hand keypoint model not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.intra_op_threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=list(config.providers)
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"cannot load hand keypoint model {path}: {exc}") from exc
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        try:
            self.contract = read_contract(self._session, meta)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{path}: {exc}") from None
        self.path = path

    def __enter__(self) -> OnnxHandTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session = None

    # -- preprocessing -----------------------------------------------------------------------
    def preprocess(
        self, rgb: np.ndarray, region: tuple[int, int, int, int] | None = None
    ) -> tuple[np.ndarray, RegionTransform]:
        """The model input tensor for ``region`` (``x0, y0, x1, y1`` integer pixels, may reach
        outside the image: padded) of ``rgb`` (default the whole image), and its transform."""
        c = self.contract
        img = _check_rgb(rgb)
        height, width = img.shape[:2]
        x0, y0, x1, y1 = region if region is not None else (0, 0, width, height)
        if x1 <= x0 or y1 <= y0:
            raise InputError(f"region {region} is empty")
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if cx1 <= cx0 or cy1 <= cy0:
            raise InputError(f"region {region} lies outside the {width}x{height} image")
        crop = img[cy0:cy1, cx0:cx1]
        pad = (c.pad_value,) * 3
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
            crop = cv2.copyMakeBorder(
                crop, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_CONSTANT, value=pad
            )
        rw, rh = x1 - x0, y1 - y0
        if c.resize == "letterbox":
            s = min(c.width / rw, c.height / rh)
            cw = min(c.width, max(1, round(rw * s)))
            ch = min(c.height, max(1, round(rh * s)))
        else:
            cw, ch = c.width, c.height
        interp = cv2.INTER_AREA if cw < rw or ch < rh else cv2.INTER_LINEAR
        resized = cv2.resize(crop, (cw, ch), interpolation=interp)
        pad_x, pad_y = (c.width - cw) // 2, (c.height - ch) // 2
        canvas = np.empty((c.height, c.width, 3), np.float32)
        canvas[:] = c.pad_value
        canvas[pad_y : pad_y + ch, pad_x : pad_x + cw] = resized
        if c.channel_order == "bgr":
            canvas = canvas[:, :, ::-1]
        x = (canvas * np.float32(c.pixel_scale) - c.mean.astype(np.float32)) / c.std.astype(
            np.float32
        )
        x = x.transpose(2, 0, 1) if c.layout == "NCHW" else x
        transform = RegionTransform(x0, y0, cw / rw, ch / rh, pad_x, pad_y)
        return np.ascontiguousarray(x[None], dtype=np.float32), transform

    # -- inference ---------------------------------------------------------------------------
    def _run(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        if self._session is None:
            raise InputError("OnnxHandTracker is closed")
        c = self.contract
        names = [c.outputs[r] for r in OUTPUT_ROLES]
        values = self._session.run(names, {c.input_name: tensor})
        raw = dict(zip(OUTPUT_ROLES, values, strict=True))
        out: dict[str, np.ndarray] = {}
        for role, dims in (("keypoints_2d", 2), ("keypoints_3d", 3)):
            arr = np.asarray(raw[role], dtype=np.float64)
            if arr.shape[-2:] != (NUM_KEYPOINTS, dims) or arr.shape[0] != 1:
                raise InputError(
                    f"model output {c.outputs[role]!r} has shape {arr.shape}, expected "
                    f"[1, N, 21, {dims}]"
                )
            out[role] = arr.reshape(-1, NUM_KEYPOINTS, dims)
        n = out["keypoints_2d"].shape[0]
        for role in ("handedness", "confidence"):
            arr = np.asarray(raw[role], dtype=np.float64).reshape(-1)
            if arr.shape != (n,):
                raise InputError(
                    f"model output {c.outputs[role]!r} has {arr.size} values for {n} hands"
                )
            out[role] = arr
        if out["keypoints_3d"].shape[0] != n:
            raise InputError(f"model outputs disagree on the number of hands ({n} 2D)")
        return out

    def _detections(self, out: dict[str, np.ndarray], transform: RegionTransform) -> list:
        c = self.contract
        found = []
        for i in np.argsort(-out["confidence"]):
            conf = float(out["confidence"][i])
            if not conf >= self.config.min_confidence:
                continue
            kp = out["keypoints_2d"][i]
            if c.keypoints_2d_units == "normalized":
                kp = kp * [c.width, c.height]
            world = out["keypoints_3d"][i]
            if not (np.isfinite(kp).all() and np.isfinite(world).all()):
                raise InputError(
                    f"model {self.path.name} returned NaN/inf keypoints for a hand with "
                    f"confidence {conf:.2f}"
                )
            right = float(out["handedness"][i]) >= 0.5
            found.append(
                HandDetection(
                    keypoints_px=transform.to_image(kp),
                    keypoints_world=world,
                    handedness="right" if right else "left",
                    confidence=min(max(conf, 0.0), 1.0),
                )
            )
        return found

    def square_region(self, box: object, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The crop for a hand box ``(x0, y0, x1, y1)`` pixels: square, ``box_scale`` larger."""
        b = np.asarray(box, dtype=np.float64)
        if b.shape != (4,) or not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
            raise InputError(f"hand box must be finite (x0, y0, x1, y1) with x1 > x0, y1 > y0: {b}")
        cx, cy = (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0
        side = max(2, round(max(b[2] - b[0], b[3] - b[1]) * self.config.box_scale))
        x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
        return x0, y0, x0 + side, y0 + side

    def track(self, rgb: np.ndarray, boxes: object | None = None) -> list[HandDetection]:
        """Hands in one RGB image: the whole image, or one hand per box of ``boxes`` (``(N, 4)``
        pixel ``x0, y0, x1, y1``). Most confident first, at most ``max_num_hands``."""
        img = _check_rgb(rgb)
        if boxes is None:
            tensor, transform = self.preprocess(img)
            hands = self._detections(self._run(tensor), transform)
        else:
            hands = []
            for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
                region = self.square_region(box, (img.shape[1], img.shape[0]))
                tensor, transform = self.preprocess(img, region)
                hands += self._detections(self._run(tensor), transform)[:1]
            hands.sort(key=lambda h: -h.confidence)
        return hands[: self.config.max_num_hands]

    def track_video(self, frames: Iterable[VideoFrame]) -> Iterator[FrameHands]:
        """Every frame of ``frames`` tracked independently, in order."""
        for frame in frames:
            yield FrameHands(index=frame.index, stamp_s=frame.stamp_s, hands=self.track(frame.rgb))
