#!/usr/bin/env bash
# The test command: set up (idempotent) then lint and run the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k executor -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-egl}"
.venv/bin/ruff check human_video_policy test benchmarks launch setup.py
.venv/bin/python -m pytest "$@"
