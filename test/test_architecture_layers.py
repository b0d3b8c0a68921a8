"""The layer order of the package, checked on the source (ARCHITECTURE.md, "Layout").

A module may import from its own layer and the layers below it, never from a layer above:
module-level, function-level and ``TYPE_CHECKING`` imports alike (a lazy import is still a
dependency). Each entry names a top-level package or module, or a single module inside one
(``runtime.image_ops``) where one file serves lower layers; the longest name wins. A module
that no entry covers fails the test, so a new package gets a place in the order.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "human_video_policy"
ROOT = "human_video_policy"

# Lowest first. Within a layer any import is allowed.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # shared leaves: errors, parameter checks, data files, process helpers, the version
    ("core", ("", "errors", "validation", "resources", "parent_death", "stop_signals")),
    ("robots", ("robots",)),  # robot specs: plain data, no kinematics
    ("kinematics", ("kinematics",)),  # pinocchio FK/IK of the robot specs
    # pixels and human hands; image_ops is the one image preprocessing of data and inference
    ("perception", ("video", "camera", "hands", "runtime.image_ops")),
    # hardware, safety, hand -> robot mappings and the action-space vocabulary
    ("devices", ("drivers", "safety", "retargeting", "teleop", "policies.action_spaces")),
    ("control", ("control",)),  # the joint controller loop (driver + safety layer)
    ("pipeline", ("pipeline",)),  # hand videos -> episodes
    ("data", ("data",)),  # bags, datasets, embodiment maps, normalisation
    ("viewing", ("viz",)),  # messages -> Foxglove, datasets/bags -> Rerun
    ("policies", ("policies", "runtime", "models")),  # the policy interface, models, inference
    ("sim", ("sim",)),  # MuJoCo worlds, tasks, experts, closed-loop evaluation
    ("training", ("training", "export")),  # torch training and model export
    ("entry points", ("nodes", "bringup", "cli")),  # ROS nodes, launch, the hvp command
)
RANK = {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}
LAYER_NAME = {rank: layer for rank, (layer, _) in enumerate(LAYERS)}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """``data/embodiment.py`` -> ``data.embodiment``; a package's __init__ is the package."""
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    """Rank of ``module`` (dotted, inside the package; "" = the package itself)."""
    parts = module.split(".") if module else []
    if not parts:
        return RANK[""]
    for n in range(len(parts), 0, -1):  # the longest entry that covers it
        rank = RANK.get(".".join(parts[:n]))
        if rank is not None:
            return rank
    return None


def _is_module(dotted: str, package: Path) -> bool:
    path = package.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(
    source: str, module: str, is_package: bool, package: Path = PACKAGE
) -> list[tuple[int, str, str]]:
    """(line, imported module inside the package, import text) of every import in ``source``,
    at any depth (functions, ``if TYPE_CHECKING``), relative imports resolved."""
    out: list[tuple[int, str, str]] = []
    here = module.split(".") if module else []
    base = here if is_package else here[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == ROOT:
                    out.append((node.lineno, ".".join(parts[1:]), f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = [*anchor, *(node.module.split(".") if node.module else [])]
                text = f"from {'.' * node.level}{node.module or ''} import ..."
            elif node.module and node.module.split(".")[0] == ROOT:
                target = node.module.split(".")[1:]
                text = f"from {node.module} import ..."
            else:
                continue
            dotted = ".".join(target)
            names = [a.name for a in node.names]
            text = text.replace("...", ", ".join(names))
            subs = [f"{dotted}.{n}" if dotted else n for n in names]
            subs = [s for s in subs if _is_module(s, package)]
            for target_module in subs or [dotted]:
                out.append((node.lineno, target_module, text))
    return out


def layer_violations(path: Path, source: str, package: Path = PACKAGE) -> list[str]:
    """Imports in ``source`` (the file ``path`` of the package) from a higher layer."""
    module = module_name(path, package)
    rank = layer_of(module)
    rel = path.relative_to(package.parent)
    if rank is None:
        return [f"{rel}: module {module!r} is in no layer; add it to LAYERS"]
    problems = []
    for line, target, text in imported_modules(source, module, path.name == "__init__.py", package):
        target_rank = layer_of(target)
        if target_rank is None:
            problems.append(f"{rel}:{line}: `{text}` imports {target!r}, which is in no layer")
        elif target_rank > rank:
            problems.append(
                f"{rel}:{line}: `{text}` imports {target} (layer {LAYER_NAME[target_rank]!r}) "
                f"into layer {LAYER_NAME[rank]!r}, which is below it"
            )
    return problems


def test_no_module_imports_from_a_higher_layer() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        problems += layer_violations(path, path.read_text(encoding="utf-8"))
    assert not problems, "imports against the layer order:\n" + "\n".join(problems)


def test_the_checker_catches_upward_imports(tmp_path: Path) -> None:
    # A throwaway package tree with the real layout's names, so _is_module sees submodules.
    package = tmp_path / ROOT
    for sub in ("robots", "kinematics", "data", "training", "sim"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "kinematics" / "forward.py").write_text("")
    (package / "training" / "record_demos.py").write_text("")
    robots = package / "robots" / "fake.py"
    lazy = "def fk():\n    from human_video_policy.kinematics.forward import ForwardKinematics\n"
    (problem,) = layer_violations(robots, lazy, package)
    assert "human_video_policy/robots/fake.py:2:" in problem
    assert "`from human_video_policy.kinematics.forward import ForwardKinematics`" in problem
    assert "kinematics.forward (layer 'kinematics') into layer 'robots'" in problem
    typing_only = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    import human_video_policy.sim.world\n"
    )
    assert "sim.world (layer 'sim')" in layer_violations(robots, typing_only, package)[0]
    data = package / "data" / "fake.py"
    relative = "from ..training import record_demos\n"
    (problem,) = layer_violations(data, relative, package)
    assert "`from ..training import record_demos`" in problem
    assert "training.record_demos (layer 'training') into layer 'data'" in problem
    from_root = "from human_video_policy import training\n"
    assert layer_violations(data, from_root, package)
    downward = "from human_video_policy.robots import spec\nfrom . import other\nimport numpy\n"
    assert layer_violations(data, downward, package) == []
    stray = package / "newpkg" / "x.py"
    assert "in no layer" in layer_violations(stray, "", package)[0]


def test_single_module_entries_override_their_package() -> None:
    assert layer_of("runtime.image_ops") < layer_of("data") < layer_of("runtime.onnx_policy")
    assert layer_of("policies.action_spaces") < layer_of("data") < layer_of("policies.base")
    assert layer_of("policies.dit.modeling_dit") == layer_of("policies")
    assert layer_of("") == layer_of("errors") == 0
    assert layer_of("nonexistent") is None
