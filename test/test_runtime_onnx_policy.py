"""OnnxPolicy against real ONNX Runtime sessions: good models, and every way a file can be bad."""

from __future__ import annotations

import numpy as np
import pytest
from onnx_models import make_policy_model

from human_video_policy.errors import InputError, ModelLoadError
from human_video_policy.runtime.onnx_policy import OnnxPolicy

STATE = ["a", "b", "c"]
ACTIONS = ["a", "b"]


@pytest.fixture()
def model_path(tmp_path):
    return make_policy_model(
        tmp_path / "p.onnx", state_names=STATE, action_names=ACTIONS, horizon=4, image_gain=1.0
    )


def test_predicts_the_graph_output(model_path):
    policy = OnnxPolicy(model_path)
    assert policy.metadata.horizon == 4 and policy.metadata.dims == 2
    image = np.full((64, 48, 3), 255, dtype=np.uint8)  # resized to 32x32 internally
    actions = policy.predict(image, np.array([0.5, -0.25, 9.0]))
    expected = np.array([0.5, -0.25]) + 1.0 + 0.01 * np.arange(1, 5)[:, None]
    np.testing.assert_allclose(actions, expected, atol=1e-5)
    chunk = policy.predict_chunk(image, np.zeros(3), observation_stamp=12.5)
    assert chunk.names == ("a", "b") and chunk.dt == pytest.approx(0.1)
    assert chunk.observation_stamp == 12.5 and chunk.actions.shape == (4, 2)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        OnnxPolicy(tmp_path / "nope.onnx")


def test_corrupt_file_is_a_clear_error(tmp_path, model_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(model_path.read_bytes()[:200])
    with pytest.raises(ModelLoadError, match="cannot load policy model"):
        OnnxPolicy(corrupt)


def test_missing_metadata_is_rejected(tmp_path):
    path = make_policy_model(
        tmp_path / "m.onnx",
        state_names=STATE,
        action_names=ACTIONS,
        metadata={"hvp.state_names": None},
    )
    with pytest.raises(ModelLoadError, match=r"hvp\.state_names"):
        OnnxPolicy(path)


def test_graph_shape_that_disagrees_with_metadata_is_rejected(tmp_path):
    path = make_policy_model(
        tmp_path / "m.onnx",
        state_names=STATE,
        action_names=ACTIONS,
        image_size=(32, 32),
        graph_image_size=(16, 16),
    )
    with pytest.raises(ModelLoadError, match="image height is 16 in the graph but 32"):
        OnnxPolicy(path)


def test_wrong_state_shape_and_nan_are_input_errors(model_path):
    policy = OnnxPolicy(model_path)
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    with pytest.raises(InputError, match=r"shape \(3,\)"):
        policy.predict(image, np.zeros(7))
    with pytest.raises(InputError, match="NaN"):
        policy.predict(image, np.array([0.0, np.nan, 0.0]))
    with pytest.raises(InputError, match="uint8"):
        policy.predict(image.astype(np.float32), np.zeros(3))
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        policy.predict(np.zeros((32, 32), dtype=np.uint8), np.zeros(3))


def test_nan_model_output_never_leaves_the_runtime(tmp_path):
    path = make_policy_model(
        tmp_path / "nan.onnx", state_names=STATE, action_names=ACTIONS, output_nan=True
    )
    policy = OnnxPolicy(path, self_test=False)  # self_test=True refuses it at load
    with pytest.raises(InputError, match="NaN"):
        policy.predict(np.zeros((32, 32, 3), dtype=np.uint8), np.zeros(3))


def test_unavailable_provider_lists_the_available_ones(model_path):
    with pytest.raises(ModelLoadError, match="CPUExecutionProvider"):
        OnnxPolicy(model_path, providers=["NoSuchExecutionProvider"])
