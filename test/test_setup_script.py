"""scripts/setup.sh is idempotent: run again on a set-up environment, it is fast and changes
nothing (the test command runs it first, so here it always finds a complete environment)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_second_setup_run_is_fast_and_changes_nothing() -> None:
    venv = Path(sys.prefix)
    stamps = [venv / ".hvp-requirements", venv / ".hvp-msgs"]
    assert all(p.is_file() for p in stamps), (
        f"{venv} was not made by scripts/setup.sh (run the README's set-up first)"
    )
    before = {p: p.stat().st_mtime_ns for p in stamps}
    env = {**os.environ, "HVP_VENV": str(venv), "PYTHON": sys.executable}
    start = time.monotonic()
    result = subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "setup.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Python dependencies up to date" in result.stdout
    assert "interfaces (human_video_policy_msgs) up to date" in result.stdout
    assert "human_video_policy installed" in result.stdout
    assert elapsed < 15.0, f"second run took {elapsed:.1f} s"
    assert {p: p.stat().st_mtime_ns for p in stamps} == before
