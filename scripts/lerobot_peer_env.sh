#!/usr/bin/env bash
# Builds the LeRobot peer environment used by benchmarks/lerobot_peer/ to check that datasets
# written here are read, edited and trained on by LeRobot itself, and to make the fixture
# datasets in test/fixtures/lerobot_written/. It is a separate virtual environment on purpose:
# LeRobot 0.4.4 pins torch<2.11 and torchvision<0.26, older than the project's torch, so it
# stays out of the project's dependencies. Needs PyPI (torch 2.9.1 is a CUDA build; ~8 GB in all, most of it
# CUDA libraries) and Debian's ffmpeg libraries (torchcodec links them; scripts/setup.sh installs
# ffmpeg). Idempotent: a second run returns at once.
#   bash scripts/lerobot_peer_env.sh            # -> .peer/lerobot (override: HVP_LEROBOT_VENV)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER="${HVP_LEROBOT_VENV:-$ROOT/.peer/lerobot}"
PYTHON="${PYTHON:-python3.11}"
STAMP="lerobot==0.4.4 torch==2.9.1 torchvision==0.24.1 torchcodec==0.8.1 pandas==2.3.3"
if [ "$(cat "$PEER/.hvp-peer" 2>/dev/null)" = "$STAMP" ]; then
  echo "[peer] $PEER is up to date ($STAMP)"; exit 0
fi
command -v ffmpeg >/dev/null 2>&1 || { echo "[peer] ffmpeg libraries missing: run scripts/setup.sh first" >&2; exit 1; }
[ -x "$PEER/bin/python" ] || "$PYTHON" -m venv "$PEER"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$PEER/bin/python" -m pip install -q --upgrade pip
# torch first, pinned, so LeRobot's range does not pull a newer one.
"$PEER/bin/python" -m pip install -q torch==2.9.1 torchvision==0.24.1 torchcodec==0.8.1
"$PEER/bin/python" -m pip install -q lerobot==0.4.4 torch==2.9.1 torchvision==0.24.1 torchcodec==0.8.1 \
  pandas==2.3.3  # LeRobot leaves pandas open; its video-benchmark extra pins <2.4
"$PEER/bin/python" -c "import lerobot, torch, torchcodec; print('[peer] lerobot', lerobot.__version__ if hasattr(lerobot, '__version__') else '0.4.4', 'torch', torch.__version__, 'torchcodec', torchcodec.__version__)"
echo "$STAMP" > "$PEER/.hvp-peer"
