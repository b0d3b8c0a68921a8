#!/usr/bin/env bash
# One command from a fresh clone to a working stack, without a ROS installation:
#   - Debian packages for headless MuJoCo rendering and the msg/ build (only if missing),
#   - a virtual environment (.venv) with ROS 2 Jazzy from PyPI wheels and every dependency,
#   - msg/ built with cmake into real ROS 2 interface types inside the venv,
#   - this package installed in editable mode (the `hvp` command).
# Idempotent: a second run checks stamps and returns in about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HVP_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*"; }
need_cmd() { command -v "$1" >/dev/null 2>&1; }

# 1. System packages (Debian). Only what is missing; needs root or sudo.
missing=()
need_cmd cmake || missing+=(cmake)
need_cmd g++ || missing+=(g++)
need_cmd make || missing+=(make)
ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1' || missing+=(libegl1)
ldconfig -p 2>/dev/null | grep -q 'libEGL_mesa.so.0' || missing+=(libegl-mesa0 libgl1-mesa-dri)
ldconfig -p 2>/dev/null | grep -q 'libOpenGL.so.0' || missing+=(libopengl0)
# pyrealsense2 (camera node) links libusb; ffmpeg writes test videos with rotation metadata.
ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || missing+=(libusb-1.0-0)
need_cmd ffmpeg || missing+=(ffmpeg)
need_cmd "$PYTHON" || missing+=(python3 python3-venv python3-dev)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
need_cmd "$PYTHON" || PYTHON=python3
"$PYTHON" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"[setup] Python 3.11 is required (ROS 2 Jazzy wheels are cp311); found {sys.version.split()[0]}."
             " Set PYTHON=/path/to/python3.11")
PY

# 2. Virtual environment + Python dependencies (skipped when the requirement files are unchanged).
[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
req_stamp="$(stamp_of requirements/*.txt)"
if [ "$(cat "$VENV/.hvp-requirements" 2>/dev/null)" != "$req_stamp" ]; then
  log "installing Python dependencies (ROS 2 Jazzy wheels, MuJoCo, ONNX Runtime, pinocchio, torch CPU)"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -r requirements/ros-jazzy.txt -r requirements/core.txt -r requirements/colcon.txt
  # MediaPipe without its declared deps (jax, protobuf<5, ...): see requirements/no-deps.txt.
  "$PY" -m pip install -q --no-deps -r requirements/no-deps.txt
  echo "$req_stamp" > "$VENV/.hvp-requirements"
else
  log "Python dependencies up to date"
fi

# 3. Build msg/ into a ROS 2 interface package installed in the venv prefix.
msg_stamp="$(stamp_of msg/package.xml msg/CMakeLists.txt msg/cmake/*.cmake msg/msg/*.msg msg/srv/*.srv)"
if [ "$(cat "$VENV/.hvp-msgs" 2>/dev/null)" != "$msg_stamp" ] \
   || ! "$PY" -c "import human_video_policy_msgs.msg" 2>/dev/null; then
  log "building msg/ (human_video_policy_msgs) with cmake, ~30 s"
  build="$VENV/.build/human_video_policy_msgs"
  rm -rf "$build"; mkdir -p "$build"
  py_inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_inc="$("$PY" -c 'import numpy; print(numpy.get_include())')"
  (
    export AMENT_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
    cmake -S msg -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
      -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_PREFIX_PATH="$VENV" \
      -DPython3_EXECUTABLE="$PY" \
      -DCMAKE_PROJECT_INCLUDE="$ROOT/msg/cmake/fix_wheel_python_includes.cmake" \
      -DHVP_PYTHON_INCLUDE="$py_inc" -DHVP_NUMPY_INCLUDE="$np_inc" > "$build.log" 2>&1 \
    && cmake --build "$build" -j "$(nproc)" >> "$build.log" 2>&1 \
    && cmake --install "$build" >> "$build.log" 2>&1
  ) || { tail -n 40 "$build.log"; log "msg/ build failed; full log: $build.log"; exit 1; }
  "$PY" -c "import human_video_policy_msgs.msg as m, human_video_policy_msgs.srv as s; m.ActionChunk(); s.EncodePromptVideo.Request()"
  echo "$msg_stamp" > "$VENV/.hvp-msgs"
else
  log "interfaces (human_video_policy_msgs) up to date"
fi

# 4. This package, editable, so config/ urdf/ mjcf/ assets/ are read from the checkout
#    (again when setup.py changed: its entry points are read at install time).
pkg_stamp="$(stamp_of setup.py pyproject.toml)"
if ! "$PY" -c "import human_video_policy, sys; sys.exit(0 if human_video_policy.__file__.startswith('$ROOT/') else 1)" 2>/dev/null \
   || [ ! -x "$VENV/bin/hvp" ] || [ "$(cat "$VENV/.hvp-package" 2>/dev/null)" != "$pkg_stamp" ]; then
  log "installing human_video_policy (editable)"
  "$PY" -m pip install -q --no-deps --no-build-isolation -e . > "$VENV/.hvp-install.log" 2>&1 \
    || { cat "$VENV/.hvp-install.log"; exit 1; }
  echo "$pkg_stamp" > "$VENV/.hvp-package"
else
  log "human_video_policy installed"
fi
log "ready: $VENV/bin/hvp (try: $VENV/bin/hvp doctor)"
