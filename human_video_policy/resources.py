"""Find the package's data files (config/, launch/, urdf/, mjcf/, assets/).

Works the same from a source checkout (editable install), from a pip install into a virtual
environment (files land in ``<prefix>/share/human_video_policy``) and from a colcon install on a
lab machine (``$AMENT_PREFIX_PATH/.../share/human_video_policy``).
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from human_video_policy.errors import HvpError

PACKAGE_NAME = "human_video_policy"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def share_dir() -> Path:
    """Root that holds config/, launch/, urdf/, mjcf/ and assets/."""
    if (_SOURCE_ROOT / "package.xml").is_file() and (_SOURCE_ROOT / "config").is_dir():
        return _SOURCE_ROOT
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(sys.prefix)
    for prefix in prefixes:
        candidate = Path(prefix) / "share" / PACKAGE_NAME
        if (candidate / "config").is_dir():
            return candidate
    raise HvpError(
        f"cannot find the {PACKAGE_NAME} data files (config/, urdf/...): looked in the source "
        f"tree {_SOURCE_ROOT} and in share/{PACKAGE_NAME} under {prefixes}. Reinstall the package."
    )


def resource_path(*parts: str) -> Path:
    """Path of a data file, e.g. ``resource_path("urdf", "wx250s.urdf")``; must exist."""
    path = share_dir().joinpath(*parts)
    if not path.exists():
        raise HvpError(f"missing data file {path}: reinstall {PACKAGE_NAME}")
    return path


# The policy `hvp launch sim_widowx`, `hvp sim-eval` and `hvp doctor` use when none is given.
DEFAULT_POLICY = ("assets", "policies", "widowx_reach_dit")
# The behaviour-cloning baseline, kept selectable (model_path:=... / --model ...).
BASELINE_POLICY = ("assets", "policies", "widowx_reach.onnx")


def default_policy_path() -> Path:
    """The committed default policy (its path even where the files are missing)."""
    return share_dir().joinpath(*DEFAULT_POLICY)
