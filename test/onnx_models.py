"""Small real ONNX models built with onnx.helper, for runtime tests (no torch needed).

``make_policy_model`` builds a graph honouring docs/CONTRACTS.md: actions[b, i, :] =
state[b, :dims] + (i + 1) * step + image_mean * image_gain, so tests can predict its output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_policy_model(
    path: Path,
    *,
    state_names: list[str],
    action_names: list[str],
    horizon: int = 4,
    dt: float = 0.1,
    image_size: tuple[int, int] = (32, 32),
    step: float = 0.01,
    image_gain: float = 0.0,
    metadata: dict[str, str] | None = None,
    graph_image_size: tuple[int, int] | None = None,
    output_nan: bool = False,
) -> Path:
    dims = len(action_names)
    s = len(state_names)
    gh, gw = graph_image_size or image_size
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, gh, gw])
    state = helper.make_tensor_value_info("state", TensorProto.FLOAT, ["batch", s])
    actions = helper.make_tensor_value_info("actions", TensorProto.FLOAT, ["batch", horizon, dims])
    # select first `dims` state entries (pad with zeros if state is shorter)
    select = np.zeros((s, dims), dtype=np.float32)
    for j in range(min(s, dims)):
        select[j, j] = 1.0
    offsets = (np.arange(1, horizon + 1, dtype=np.float32)[:, None] * step) * np.ones(
        (1, dims), dtype=np.float32
    )
    if output_nan:
        offsets[0, 0] = np.nan
    inits = [
        numpy_helper.from_array(select, "select"),
        numpy_helper.from_array(offsets[None], "offsets"),
        numpy_helper.from_array(np.array([image_gain], dtype=np.float32), "gain"),
        numpy_helper.from_array(np.array([1, 1, dims], dtype=np.int64), "row_shape"),
    ]
    nodes = [
        helper.make_node("MatMul", ["state", "select"], ["picked"]),
        helper.make_node("ReduceMean", ["image"], ["img_mean"], keepdims=0),
        helper.make_node("Mul", ["img_mean", "gain"], ["img_term"]),
        helper.make_node("Unsqueeze", ["img_term", "axes1"], ["img_term2"]),
        helper.make_node("Add", ["picked", "img_term2"], ["base"]),
        helper.make_node("Unsqueeze", ["base", "axes1"], ["base3"]),
        helper.make_node("Add", ["base3", "offsets"], ["actions"]),
    ]
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axes1"))
    graph = helper.make_graph(nodes, "test_policy", [image, state], [actions], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    props = {
        "hvp.format_version": "1",
        "hvp.action_space": "widowx_joint_position",
        "hvp.action_names": json.dumps(action_names),
        "hvp.state_names": json.dumps(state_names),
        "hvp.dt": str(dt),
        "hvp.horizon": str(horizon),
        "hvp.image_size": json.dumps(list(image_size)),
        "hvp.training": json.dumps({"note": "test model"}),
    }
    if metadata is not None:
        props = {k: v for k, v in {**props, **metadata}.items() if v is not None}
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
