"""Install test/plugin_fixture (a tiny external package with runtime-policy and prompt-encoder
entry points) the way an integrator's package is installed: ``pip install --target``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "plugin_fixture"


def install_plugin_fixture(root: Path) -> Path:
    """The folder the fixture was installed into (put it on PYTHONPATH / sys.path); copied to
    ``root`` first because pip builds in the source tree."""
    source = shutil.copytree(FIXTURE, root / "src")
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(source)],
        check=True, timeout=300,
    )  # fmt: skip
    if not list(target.glob("hvp_hold_policy-*.dist-info")):
        raise RuntimeError(f"pip did not install the plugin fixture into {target}")
    return target
