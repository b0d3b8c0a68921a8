"""The architecture's two import rules, checked on the source (ARCHITECTURE.md, "ROS at the
edges"): only nodes/ and bringup/ import rclpy; nothing on the inference path imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "human_video_policy"
ROS_ALLOWED = {"nodes", "bringup"}
TORCH_ALLOWED = {"models", "training"}


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
        str(p)
        for top, p in _modules()
        if top not in TORCH_ALLOWED and "torch" in _imported_roots(p)
    ]
    assert not offenders, f"torch imported outside models/ and training/: {offenders}"


def test_the_rules_see_imports() -> None:  # the checker itself can fail
    assert "rclpy" in _imported_roots(PACKAGE / "nodes" / "base.py")
    assert "torch" in _imported_roots(PACKAGE / "models" / "reach_policy.py")
