"""The architecture's two import rules, checked on the source (ARCHITECTURE.md, "ROS at the
edges"): only nodes/ and bringup/ import rclpy; nothing on the inference path imports torch
(torch lives in models/, training/, export/ and the policies' modeling_*.py files). The layer
order is checked in test_architecture_layers.py."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "human_video_policy"
ROS_ALLOWED = {"nodes", "bringup"}
TORCH_ALLOWED = {"models", "training", "export"}


def _torch_allowed(path: Path) -> bool:
    """models/, training/, export/, and policies/<type>/modeling_*.py (the torch side of a
    policy type; its configuration and everything else in policies/ stay torch-free)."""
    parts = path.relative_to(PACKAGE).parts
    if parts[0] in TORCH_ALLOWED:
        return True
    return parts[0] == "policies" and len(parts) == 3 and parts[2].startswith("modeling_")


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _modules() -> list[tuple[str, Path]]:
    return [(p.relative_to(PACKAGE).parts[0], p) for p in sorted(PACKAGE.rglob("*.py"))]


def test_only_nodes_and_bringup_import_rclpy() -> None:
    offenders = [
        str(p) for top, p in _modules() if top not in ROS_ALLOWED and "rclpy" in _imported_roots(p)
    ]
    assert not offenders, f"rclpy imported outside nodes/ and bringup/: {offenders}"


def test_inference_path_never_imports_torch() -> None:
    offenders = [
        str(p) for _, p in _modules() if not _torch_allowed(p) and "torch" in _imported_roots(p)
    ]
    assert not offenders, (
        f"torch imported outside models/, training/, export/ and policies/*/modeling_*.py: "
        f"{offenders}"
    )


def test_the_rules_see_imports() -> None:  # the checker itself can fail
    assert "rclpy" in _imported_roots(PACKAGE / "nodes" / "base.py")
    modeling = PACKAGE / "policies" / "bc_mlp" / "modeling_bc_mlp.py"
    assert "torch" in _imported_roots(modeling) and _torch_allowed(modeling)
    for path in (
        "policies/bc_mlp/configuration_bc_mlp.py",
        "policies/registry.py",
        "runtime/onnx_policy.py",
        "policies/modeling_x.py",
    ):
        assert not _torch_allowed(PACKAGE / path), path
