"""OnnxHandTracker (hands/onnx_tracker.py) with small real ONNX models the test builds.

The "dot finder" model answers with the location of the brightest pixel of its input for all
21 keypoints. A bright dot drawn at a known place in the original image must therefore come
back at that place through letterboxing / stretching / cropping and the mapping back, which
checks the whole coordinate chain on real ONNX Runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from hand_fixtures import canonical_right_hand
from onnx import TensorProto, helper, numpy_helper

from human_video_policy.errors import ConfigError, InputError, ModelLoadError
from human_video_policy.hands.onnx_tracker import OnnxHandTracker, OnnxHandTrackerConfig
from human_video_policy.hands.tracker import HandTracker
from human_video_policy.video.reader import VideoFrame

HAND_3D = canonical_right_hand() - canonical_right_hand().mean(axis=0)


def make_dot_finder(
    path: Path,
    *,
    layout: str = "NCHW",
    size: tuple[int, int] = (160, 160),
    units: str = "normalized",
    metadata: dict[str, str] | None = None,
    output_names: dict[str, str] | None = None,
    handedness: float = 0.9,
    confidence: float = 0.8,
    dynamic: bool = False,
    input_shape: list | None = None,
    kp2d_dims: int = 2,
    hand3d: np.ndarray | None = None,
) -> Path:
    """``kp2d_dims=3`` makes a broken model whose 2D output really is ``[1, 1, 21, 3]``."""
    h, w = size
    names = {r: r for r in ("keypoints_2d", "keypoints_3d", "handedness", "confidence")} | (
        output_names or {}
    )
    in_shape = [1, 3, h, w] if layout == "NCHW" else [1, h, w, 3]
    if dynamic:
        in_shape = [1, 3, "H", "W"]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, input_shape or in_shape)
    channel_axis = 1 if layout == "NCHW" else 3
    scale = [1.0 / w, 1.0 / h] if units == "normalized" else [1.0, 1.0]
    inits = [
        numpy_helper.from_array(np.array([channel_axis], np.int64), "channel_axis"),
        numpy_helper.from_array(np.array([1, h * w], np.int64), "flat_shape"),
        numpy_helper.from_array(np.array([w], np.int64), "width"),
        numpy_helper.from_array(np.array([0.5], np.float32), "half"),
        numpy_helper.from_array(np.array(scale, np.float32), "scale"),
        numpy_helper.from_array(np.array([1, 1, 1, 2], np.int64), "point_shape"),
        numpy_helper.from_array(np.array([1, 1, 21, 1], np.int64), "repeats"),
        numpy_helper.from_array(
            (HAND_3D if hand3d is None else hand3d)[None, None].astype(np.float32), "hand3d"
        ),
        numpy_helper.from_array(np.array([[handedness]], np.float32), "hand_prob"),
        numpy_helper.from_array(np.array([[confidence]], np.float32), "conf"),
    ]
    nodes = [
        helper.make_node("ReduceSum", ["image", "channel_axis"], ["gray"], keepdims=0),
        helper.make_node("Reshape", ["gray", "flat_shape"], ["flat"]),
        helper.make_node("ArgMax", ["flat"], ["idx"], axis=1, keepdims=0),
        helper.make_node("Mod", ["idx", "width"], ["col"]),
        helper.make_node("Div", ["idx", "width"], ["row"]),
        helper.make_node("Concat", ["col", "row"], ["colrow"], axis=0),
        helper.make_node("Cast", ["colrow"], ["colrow_f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["colrow_f", "half"], ["centre"]),
        helper.make_node("Mul", ["centre", "scale"], ["point"]),
        helper.make_node("Reshape", ["point", "point_shape"], ["point4"]),
        helper.make_node("Tile", ["point4", "repeats"], ["dots"]),
        helper.make_node(
            "Identity", ["dots" if kp2d_dims == 2 else "hand3d"], [names["keypoints_2d"]]
        ),
        helper.make_node("Identity", ["hand3d"], [names["keypoints_3d"]]),
        helper.make_node("Identity", ["hand_prob"], [names["handedness"]]),
        helper.make_node("Identity", ["conf"], [names["confidence"]]),
    ]
    outputs = [
        helper.make_tensor_value_info(
            names["keypoints_2d"],
            TensorProto.FLOAT,
            [1, 1, 21, kp2d_dims],
        ),
        helper.make_tensor_value_info(names["keypoints_3d"], TensorProto.FLOAT, [1, 1, 21, 3]),
        helper.make_tensor_value_info(names["handedness"], TensorProto.FLOAT, [1, 1]),
        helper.make_tensor_value_info(names["confidence"], TensorProto.FLOAT, [1, 1]),
    ]
    graph = helper.make_graph(nodes, "dot_finder", [image], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    props = {"hvp.keypoints_2d_units": units}
    props |= {f"hvp.output.{r}": n for r, n in names.items() if n != r}
    props |= metadata or {}
    helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


def dot_image(u: int, v: int, shape=(480, 640), radius: int = 4) -> np.ndarray:
    img = np.zeros((*shape, 3), np.uint8)
    img[v - radius : v + radius + 1, u - radius : u + radius + 1] = 255
    return img


def tracker(path: Path, **kwargs) -> OnnxHandTracker:
    return OnnxHandTracker(OnnxHandTrackerConfig(model_path=str(path), **kwargs))


@pytest.mark.parametrize(
    ("layout", "units", "resize", "size"),
    [
        ("NCHW", "normalized", "letterbox", (160, 160)),
        ("NHWC", "pixels", "letterbox", (128, 192)),
        ("NCHW", "pixels", "stretch", (120, 200)),
    ],
)
def test_keypoints_map_back_to_the_original_image(
    tmp_path: Path, layout: str, units: str, resize: str, size: tuple[int, int]
) -> None:
    path = make_dot_finder(
        tmp_path / "m.onnx", layout=layout, units=units, size=size, metadata={"hvp.resize": resize}
    )
    with tracker(path) as t:
        assert isinstance(t, HandTracker)
        assert (t.contract.layout, t.contract.height, t.contract.width) == (layout, *size)
        for u, v in [(100, 60), (600, 400), (320, 240), (20, 450)]:
            (hand,) = t.track(dot_image(u, v))
            _, transform = t.preprocess(dot_image(u, v))
            # The dot (pixel centre u, v) in continuous coordinates is (u + 0.5, v + 0.5); the
            # model finds it to within one input pixel, i.e. 1/scale original pixels.
            tol = 1.0 / min(transform.sx, transform.sy)
            assert np.abs(hand.keypoints_px - [u + 0.5, v + 0.5]).max() <= tol, (u, v, hand)
            assert hand.keypoints_px.shape == (21, 2)
            assert np.allclose(hand.keypoints_world, HAND_3D, atol=1e-6)
            assert hand.handedness == "right" and hand.confidence == pytest.approx(0.8)


def test_letterbox_and_normalisation_of_the_input(tmp_path: Path) -> None:
    mean, std = [0.5, 0.4, 0.3], [0.25, 0.2, 0.1]
    path = make_dot_finder(
        tmp_path / "m.onnx",
        metadata={
            "hvp.mean": json.dumps(mean),
            "hvp.std": json.dumps(std),
            "hvp.pad_value": "255",
            "hvp.channel_order": "bgr",
        },
    )
    img = np.zeros((480, 640, 3), np.uint8)
    img[:] = (10, 100, 200)  # R, G, B
    with tracker(path) as t:
        x, transform = t.preprocess(img)
    assert x.shape == (1, 3, 160, 160) and x.dtype == np.float32
    # 640x480 into 160x160: scale 1/4, content 160x120 centred, 20 rows of padding each side.
    assert (transform.sx, transform.sy, transform.pad_x, transform.pad_y) == (0.25, 0.25, 0, 20)
    bgr = np.array([200, 100, 10]) / 255.0
    content = (bgr - np.array(mean)) / np.array(std)
    padding = (1.0 - np.array(mean)) / np.array(std)
    for ch in range(3):
        assert np.allclose(x[0, ch, 20:140], content[ch], atol=1e-5)
        assert np.allclose(x[0, ch, :20], padding[ch], atol=1e-5)
        assert np.allclose(x[0, ch, 140:], padding[ch], atol=1e-5)


def test_hand_boxes_crop_and_map_back(tmp_path: Path) -> None:
    path = make_dot_finder(tmp_path / "m.onnx", size=(64, 64))
    img = dot_image(600, 30, radius=1)
    img = np.maximum(img, dot_image(100, 300, radius=1) // 2)  # a dimmer second dot
    with tracker(path, box_scale=1.5) as t:
        # Whole image: the brightest dot; 640 -> 64 loses the 3-pixel dot's precision.
        (whole,) = t.track(img)
        assert np.abs(whole.keypoints_px[0] - [600.5, 30.5]).max() <= 10.0
        # Boxes: each crop finds its own dot, precisely; the first box sticks out of the image.
        hands = t.track(img, boxes=[[590, 10, 630, 50], [80, 280, 120, 320]])
        assert len(hands) == 2
        points = sorted(tuple(h.keypoints_px[0]) for h in hands)
        assert np.abs(np.array(points) - [[100.5, 300.5], [600.5, 30.5]]).max() <= 1.0
        assert t.square_region([590, 10, 630, 50], (640, 480)) == (580, 0, 640, 60)
        with pytest.raises(InputError, match="outside"):
            t.track(img, boxes=[[700, 500, 740, 540]])
        with pytest.raises(InputError, match="hand box"):
            t.track(img, boxes=[[10, 10, 5, 50]])


def test_confidence_handedness_and_limits(tmp_path: Path) -> None:
    left = make_dot_finder(tmp_path / "left.onnx", handedness=0.2, confidence=0.6)
    with tracker(left) as t:
        (hand,) = t.track(dot_image(50, 50))
        assert hand.handedness == "left"
        frames = [VideoFrame(i, i / 30.0, dot_image(50 + 10 * i, 50)) for i in range(3)]
        tracked = list(t.track_video(frames))
        assert [f.index for f in tracked] == [0, 1, 2]
        assert tracked[2].hand("left") is not None
        with pytest.raises(InputError, match="uint8"):
            t.track(np.zeros((48, 64, 3), np.float32))
    with tracker(left, min_confidence=0.7) as t:
        assert t.track(dot_image(50, 50)) == []
    with pytest.raises(InputError, match="closed"):
        t.track(dot_image(50, 50))


def test_output_names_from_metadata(tmp_path: Path) -> None:
    path = make_dot_finder(
        tmp_path / "m.onnx",
        output_names={"keypoints_2d": "uv", "keypoints_3d": "xyz", "confidence": "score"},
    )
    with tracker(path) as t:
        assert t.contract.outputs["keypoints_2d"] == "uv"
        assert len(t.track(dot_image(300, 200))) == 1


def test_model_problems_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        tracker(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x01 not an onnx model" * 20)
    with pytest.raises(ModelLoadError, match="cannot load"):
        tracker(garbage)
    # Output names that are not in the metadata or the defaults: the error lists what exists.
    renamed = make_dot_finder(tmp_path / "renamed.onnx", output_names={"confidence": "score"})
    onnx_model = onnx.load(str(renamed))
    del onnx_model.metadata_props[:]
    onnx.save(onnx_model, str(renamed))
    with pytest.raises(ModelLoadError, match=r"no output 'confidence'.*score"):
        tracker(renamed)
    with pytest.raises(ModelLoadError, match=r"keypoints_2d.*\[1, N, 21, 2\]"):
        tracker(make_dot_finder(tmp_path / "kp3.onnx", kp2d_dims=3))
    broken = HAND_3D.copy()
    broken[5, 1] = np.nan
    nan_model = make_dot_finder(tmp_path / "nan.onnx", hand3d=broken)
    with tracker(nan_model) as t, pytest.raises(InputError, match="NaN/inf keypoints"):
        t.track(dot_image(300, 200))
    with pytest.raises(ModelLoadError, match="4-D"):
        tracker(make_dot_finder(tmp_path / "rank3.onnx", input_shape=[1, 160, 160]))
    with pytest.raises(ModelLoadError, match="channel axis"):
        tracker(make_dot_finder(tmp_path / "c4.onnx", input_shape=[1, 4, 160, 160]))
    with pytest.raises(ModelLoadError, match=r"hvp\.input_size"):
        tracker(make_dot_finder(tmp_path / "dyn.onnx", dynamic=True))
    dyn = make_dot_finder(
        tmp_path / "dyn_ok.onnx", dynamic=True, metadata={"hvp.input_size": "[160, 160]"}
    )
    with tracker(dyn) as t:
        assert (t.contract.height, t.contract.width) == (160, 160)
        assert len(t.track(dot_image(300, 200))) == 1
    with pytest.raises(ModelLoadError, match=r"hvp\.resize"):
        tracker(make_dot_finder(tmp_path / "rs.onnx", metadata={"hvp.resize": "crop"}))
    with pytest.raises(ModelLoadError, match=r"hvp\.std"):
        tracker(make_dot_finder(tmp_path / "std.onnx", metadata={"hvp.std": "[1, 0, 1]"}))


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"model_path": ""}, "model_path"),
        ({"max_num_hands": 0}, "max_num_hands"),
        ({"min_confidence": 2.0}, "min_confidence"),
        ({"box_scale": 0.5}, "box_scale"),
        ({"providers": ()}, "providers"),
    ],
)
def test_config_is_validated(change: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        OnnxHandTrackerConfig(**{"model_path": "m.onnx", **change})
