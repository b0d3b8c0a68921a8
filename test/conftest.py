"""Test-wide settings: headless MuJoCo rendering and paths to the shared third-party data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

TEST_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TEST_DIR.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"

if str(TEST_DIR) not in sys.path:
    sys.path.insert(0, str(TEST_DIR))
