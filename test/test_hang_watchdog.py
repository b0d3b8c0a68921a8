"""The suite's hang watchdog (conftest): a test stuck in C code that holds the GIL, where
pytest-timeout's signal handler never runs, still ends the run with every thread's stack."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

TEST_DIR = Path(__file__).resolve().parent


def test_a_test_stuck_holding_the_gil_ends_the_run_with_its_stack(tmp_path: Path) -> None:
    shutil.copy(TEST_DIR / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_stuck.py").write_text(
        "import itertools\n"
        "import conftest\n"
        "import pytest\n"
        "conftest.HARD_TIMEOUT_MARGIN_S = 1.0\n"
        "@pytest.mark.timeout(1)\n"
        "def test_stuck():\n"
        "    sum(itertools.repeat(1, 10**12))  # a C loop that never checks for signals\n"
    )
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_stuck.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - start
    assert result.returncode != 0
    assert "Timeout (0:00:02)!" in result.stderr, result.stderr
    assert 'test_stuck.py", line 7 in test_stuck' in result.stderr, result.stderr
    assert took < 60, took
