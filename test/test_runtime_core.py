"""ActionChunk validation, image resizing and latency statistics."""

from __future__ import annotations

import numpy as np
import pytest

from human_video_policy.errors import InputError
from human_video_policy.runtime.action_chunk import ActionChunk
from human_video_policy.runtime.image_ops import prepare_rgb, resize_rgb, to_chw_float
from human_video_policy.runtime.latency import LatencyStats


def test_action_chunk_from_flat_is_row_major():
    chunk = ActionChunk.from_flat(
        np.arange(6), horizon=3, dims=2, dt=0.1, names=["x", "y"], action_space="s"
    )
    np.testing.assert_array_equal(chunk.actions, [[0, 1], [2, 3], [4, 5]])
    assert (chunk.horizon, chunk.dims) == (3, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"actions": np.zeros((2, 2)), "names": ("x",)}, "2 columns but 1 names"),
        ({"actions": np.array([[0.0, np.nan]])}, "NaN/inf .*column 1 'y'"),
        ({"actions": np.zeros(3)}, "shape"),
        ({"dt": 0.0}, "dt"),
        ({"dt": float("nan")}, "dt"),
        ({"action_space": ""}, "action_space"),
    ],
)
def test_action_chunk_rejects_bad_input(kwargs, match):
    base = {"actions": np.zeros((2, 2)), "dt": 0.1, "names": ("x", "y"), "action_space": "s"}
    with pytest.raises(InputError, match=match):
        ActionChunk(**{**base, **kwargs})


def test_from_flat_rejects_wrong_size():
    with pytest.raises(InputError, match="horizon x dims"):
        ActionChunk.from_flat(
            np.zeros(5), horizon=3, dims=2, dt=0.1, names=["x", "y"], action_space="s"
        )


def test_resize_area_average_and_bilinear():
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[:2, :2] = 200  # top-left quadrant bright
    small = resize_rgb(image, 2, 2)
    assert small[0, 0, 0] == 200 and small[1, 1, 0] == 0
    gradient = np.tile(np.linspace(0, 255, 10, dtype=np.float32)[None, :, None], (5, 1, 3))
    out = resize_rgb(gradient.astype(np.uint8), 5, 7)
    assert out.shape == (5, 7, 3)
    assert np.all(np.diff(out[0, :, 0].astype(int)) >= 0)  # order preserved
    assert resize_rgb(image, 4, 4) is image


def test_to_chw_float_layout():
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[..., 1] = 255
    tensor = to_chw_float(image)
    assert tensor.shape == (1, 3, 2, 3) and tensor.dtype == np.float32
    assert tensor[0, 1].min() == 1.0 and tensor[0, 0].max() == 0.0


def test_latency_stats():
    stats = LatencyStats(window=100)
    assert np.isnan(stats.median)
    for value in range(1, 101):
        stats.add(value)
    assert stats.last == 100 and stats.median == pytest.approx(50.5)
    assert stats.p99 == pytest.approx(99.01)
    with pytest.raises(ValueError):
        LatencyStats(window=0)


def test_prepare_rgb_crops_to_the_model_aspect_instead_of_stretching():
    wide = np.zeros((120, 160, 3), dtype=np.uint8)
    wide[:, 20:140] = 255  # the centred 120x120 square is white, the side bands black
    out = prepare_rgb(wide, 64, 64)
    assert out.shape == (64, 64, 3) and out.min() == 255  # side bands cropped away
    tall = np.zeros((160, 120, 3), dtype=np.uint8)
    tall[20:140] = 255
    assert prepare_rgb(tall, 32, 32).min() == 255
    square = np.full((128, 128, 3), 7, dtype=np.uint8)
    np.testing.assert_array_equal(prepare_rgb(square, 64, 64), resize_rgb(square, 64, 64))
