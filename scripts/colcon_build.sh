#!/usr/bin/env bash
# Build both packages (human_video_policy and its interfaces, msg/ = human_video_policy_msgs)
# with colcon into a ROS 2 workspace, the way docs/lab_machine.md describes.
#
#   scripts/colcon_build.sh [--workspace DIR] [extra `colcon build` arguments...]
#
# The workspace defaults to the folder above src/ when this clone lives in <ws>/src/; build/,
# install/ and log/ go there. With ROS 2 Jazzy from apt (/opt/ros/jazzy sourced) this is plain
# `colcon build --paths <clone> <clone>/msg`. On a machine with ROS 2 from PyPI wheels only (the
# project's .venv, activated or named with PYTHON=), it also passes the include fix the wheels
# need (msg/cmake/fix_wheel_python_includes.cmake, the same as scripts/setup.sh), writing it to
# <ws>/colcon_defaults.yaml so later builds can reuse it:
#   COLCON_DEFAULTS_FILE=<ws>/colcon_defaults.yaml colcon build --paths <clone> <clone>/msg
# Afterwards: `source <ws>/install/setup.bash` and run the nodes from the install space.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[colcon_build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

WS=""
if [ "${1:-}" = "--workspace" ]; then
  [ $# -ge 2 ] || die "--workspace needs a directory"
  WS="$2"; shift 2
elif [ "$(basename "$(dirname "$ROOT")")" = "src" ]; then
  WS="$(dirname "$(dirname "$ROOT")")"
else
  die "this clone is not inside <workspace>/src/: pass --workspace DIR"
fi
mkdir -p "$WS"
WS="$(cd "$WS" && pwd)"

# The interpreter that has rclpy: the activated venv's, $PYTHON, or python3 (apt ROS).
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -n "${VIRTUAL_ENV:-}" ]; then PY="$VIRTUAL_ENV/bin/python"; else PY="$(command -v python3)"; fi
fi
"$PY" -c 'import rclpy' 2>/dev/null \
  || die "$PY cannot import rclpy: source /opt/ros/jazzy/setup.bash, or activate the venv scripts/setup.sh made (or set PYTHON=.venv/bin/python)"
PREFIX="$("$PY" -c 'import sys; print(sys.prefix)')"
COLCON="$(dirname "$PY")/colcon"
[ -x "$COLCON" ] || COLCON="$(command -v colcon || true)"
[ -n "$COLCON" ] || die "colcon not found: pip install colcon-common-extensions (or apt install python3-colcon-common-extensions)"

args=(build --paths "$ROOT" "$ROOT/msg" --build-base "$WS/build" --install-base "$WS/install")
if [ -f "$PREFIX/share/ament_cmake/cmake/ament_cmakeConfig.cmake" ] \
   && [ ! -d "/opt/ros/${ROS_DISTRO:-jazzy}/share/ament_cmake" ]; then
  # ROS 2 from PyPI wheels: the venv is the underlay; pass the include fix.
  export AMENT_PREFIX_PATH="$PREFIX${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$PREFIX${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export PATH="$(dirname "$PY"):$PATH"
  py_inc="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_inc="$("$PY" -c 'import numpy; print(numpy.get_include())')"
  cat > "$WS/colcon_defaults.yaml" <<YAML
# Written by human_video_policy/scripts/colcon_build.sh for ROS 2 from PyPI wheels in $PREFIX.
build:
  cmake-args:
    - -DBUILD_TESTING=OFF
    - -DPython3_EXECUTABLE=$PY
    - -DCMAKE_PROJECT_INCLUDE=$ROOT/msg/cmake/fix_wheel_python_includes.cmake
    - -DHVP_PYTHON_INCLUDE=$py_inc
    - -DHVP_NUMPY_INCLUDE=$np_inc
YAML
  export COLCON_DEFAULTS_FILE="$WS/colcon_defaults.yaml"
  log "ROS 2 from PyPI wheels in $PREFIX: include fix in $COLCON_DEFAULTS_FILE"
fi
log "colcon ${args[*]} $*"
cd "$WS"
"$COLCON" --log-base "$WS/log" "${args[@]}" "$@"
log "done: source $WS/install/setup.bash"
