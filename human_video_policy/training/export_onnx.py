"""Export a trained :class:`BCMLPPolicy` to the project's ONNX policy format.

The file follows docs/CONTRACTS.md: inputs ``image`` float32 [B, 3, H, W] (RGB in [0, 1]) and
``state`` float32 [B, S] (raw joint positions), output ``actions`` float32 [B, horizon, dims]
(absolute joint targets), a dynamic batch dimension, and ``hvp.*`` metadata_props describing
the action space, joint names, dt, horizon, image size and how the model was trained. The
export is checked with ONNX Runtime against torch on random and given inputs.

Usage: ``python -m human_video_policy.training.export_onnx --checkpoint model.pt --out p.onnx``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch

from human_video_policy.errors import ModelLoadError
from human_video_policy.policies.action_spaces import WIDOWX_JOINT_POSITION
from human_video_policy.policies.bc_mlp.modeling_bc_mlp import BCMLPPolicy
from human_video_policy.policies.model_spec import PolicyMetadata, onnx_metadata
from human_video_policy.robots.widowx import WIDOWX_COMMAND_JOINTS, WIDOWX_STATE_JOINTS

ACTION_SPACE = WIDOWX_JOINT_POSITION
OPSET = 17


def policy_metadata(
    model: BCMLPPolicy,
    dt: float,
    training: dict,
    action_space: str = ACTION_SPACE,
    action_names: Sequence[str] = WIDOWX_COMMAND_JOINTS,
    state_names: Sequence[str] = WIDOWX_STATE_JOINTS,
) -> dict[str, str]:
    """The ``hvp.*`` metadata_props for ``model`` (all values are strings)."""
    cfg = model.config
    if len(action_names) != cfg.action_dim or len(state_names) != cfg.state_dim:
        raise ModelLoadError(
            f"model has {cfg.action_dim} action dims / {cfg.state_dim} state dims but "
            f"{len(action_names)} action names / {len(state_names)} state names were given"
        )
    meta = PolicyMetadata(
        action_space=action_space,
        action_names=tuple(action_names),
        state_names=tuple(state_names),
        horizon=cfg.horizon,
        dt=float(dt),
        image_height=cfg.image_height,
        image_width=cfg.image_width,
        training=training,
    )
    return onnx_metadata(meta, cfg.to_dict())


def _torch_to_onnx(model: BCMLPPolicy) -> onnx.ModelProto:
    cfg = model.config
    image = torch.rand(2, 3, cfg.image_height, cfg.image_width)
    state = torch.zeros(2, cfg.state_dim)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (image, state),
            buffer,
            input_names=["image", "state"],
            output_names=["actions"],
            dynamic_axes={"image": {0: "batch"}, "state": {0: "batch"}, "actions": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def first_non_finite(model: torch.nn.Module) -> str | None:
    """The name of the first parameter or float buffer holding NaN/inf, None when all are
    finite: such a model exports to a graph whose actions are NaN, so it is refused first."""
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    for name, tensor in tensors:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def require_finite_weights(model: torch.nn.Module, what: str = "the model") -> None:
    """ModelLoadError naming the first NaN/inf parameter of ``model`` (``what`` names it)."""
    name = first_non_finite(model)
    if name is not None:
        raise ModelLoadError(
            f"{what} has NaN/inf weights (first: {name}): its exported graphs would give "
            "invalid actions; nothing was exported (retrain, or export an earlier checkpoint)"
        )


def mode_under_umask(full: int = 0o666) -> int:
    """Permissions a new file (0o666) or folder (0o777) gets under this process's umask: a
    temporary one is created 0600/0700, the renamed result should look like any other."""
    umask = os.umask(0)
    os.umask(umask)
    return full & ~umask


def verify_onnx(
    model: BCMLPPolicy,
    path: str | Path,
    images: np.ndarray | None = None,
    states: np.ndarray | None = None,
    seed: int = 0,
) -> float:
    """Max |ORT - torch| over given (N,3,H,W)/(N,S) inputs or 8 random ones."""
    import onnxruntime as ort

    cfg = model.config
    if images is None or states is None:
        rng = np.random.default_rng(seed)
        images = rng.random((8, 3, cfg.image_height, cfg.image_width), dtype=np.float32)
        states = rng.normal(0.0, 0.5, (8, cfg.state_dim)).astype(np.float32)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(["actions"], {"image": images, "state": states})
    model.eval()
    with torch.no_grad():
        torch_out = model(torch.from_numpy(images), torch.from_numpy(states)).numpy()
    return float(np.max(np.abs(onnx_out - torch_out)))


def export_policy(
    model: BCMLPPolicy,
    path: str | Path,
    dt: float,
    training: dict,
    tolerance: float = 1e-4,
    check_images: np.ndarray | None = None,
    check_states: np.ndarray | None = None,
    action_names: Sequence[str] = WIDOWX_COMMAND_JOINTS,
    state_names: Sequence[str] = WIDOWX_STATE_JOINTS,
) -> dict:
    """Write ``model`` to ``path`` with metadata (its config's action space; the joint names
    of its training data, the WidowX's by default); verify with ORT. Returns a report.

    The graph is written to a temporary file beside ``path`` and moved into place only once
    it agrees with torch, so a failing export never leaves a bad file nor replaces a good one.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelLoadError(
            f"{path} is a directory; a bc_mlp policy is exported to one .onnx file"
        )
    require_finite_weights(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    proto = _torch_to_onnx(model)
    proto.producer_name = "human_video_policy"
    del proto.metadata_props[:]
    space = getattr(model.config, "action_space", ACTION_SPACE)
    metadata = policy_metadata(model, dt, training, space, action_names, state_names)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(handle)
    staging = Path(name)
    try:
        onnx.save(proto, str(staging))
        errors = [verify_onnx(model, staging)]
        if check_images is not None and check_states is not None:
            errors.append(verify_onnx(model, staging, check_images, check_states))
        max_error = max(errors)
        if not max_error <= tolerance:
            raise ModelLoadError(
                f"exported {path} disagrees with torch: max |ORT - torch| = {max_error:.3g} > "
                f"{tolerance:g}; nothing was written"
            )
        staging.chmod(mode_under_umask())
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "max_abs_error_vs_torch": max_error,
        "opset": OPSET,
    }


def main(argv: list[str] | None = None) -> int:
    from human_video_policy.training.train_reach import load_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help=".pt from train_reach")
    parser.add_argument("--out", required=True, help="output .onnx")
    parser.add_argument("--dt", type=float, default=0.1, help="seconds between action rows")
    args = parser.parse_args(argv)
    model = load_checkpoint(args.checkpoint)
    blob = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    report = export_policy(model, args.out, args.dt, blob.get("extra", {}))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
