#!/usr/bin/env bash
# Builds the op library (and, with FLASHHIP_BUILD_TESTS=ON, the C++ tests) with CMake and
# installs the Python package from that build. Incremental: quick when nothing changed.
#   BUILD_DIR (default build/$FLASHHIP_GPU)   FLASHHIP_GPU (default AUTO)
#   FLASHHIP_BUILD_TESTS ON (default; needs googletest's sources) or OFF (scripts/main.sh)
#   CMAKE_ARGS  extra configure arguments
# Each step's output goes to a log beside the build directory; a failing step prints the log's
# path and its last lines, then exits non-zero. VERBOSE=1 streams the compile output instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export FLASHHIP_GPU=${FLASHHIP_GPU:-AUTO}
BUILD_DIR=${BUILD_DIR:-build/$(echo "$FLASHHIP_GPU" | tr 'A-Z' 'a-z')}
TESTS=${FLASHHIP_BUILD_TESTS:-ON}
JOBS=${MAX_JOBS:-$(nproc)}
mkdir -p "$BUILD_DIR"

# run_logged LOG DESCRIPTION CMD...: runs CMD with its output in LOG; on failure shows why.
run_logged() {
  local log=$1 what=$2; shift 2
  if [ "${VERBOSE:-0}" = 1 ]; then
    local rc=0; "$@" 2>&1 | tee "$log" || rc=$?
  else
    local rc=0; "$@" >"$log" 2>&1 || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    echo "build: FAILED: $what (exit $rc): $*" >&2
    echo "build: log: $log; its last 40 lines:" >&2
    tail -n 40 "$log" | sed 's/^/  | /' >&2
    exit "$rc"
  fi
}

run_logged "$BUILD_DIR.configure.log" "configure" \
  cmake -S . -B "$BUILD_DIR" -G Ninja -DPython3_EXECUTABLE="$(command -v "$PY")" -DFLASHHIP_GPU="$FLASHHIP_GPU" \
  -DFLASHHIP_BUILD_TESTS="$TESTS" ${CMAKE_ARGS:-}
run_logged "$BUILD_DIR.build.log" "compile" cmake --build "$BUILD_DIR" -j "$JOBS"
echo "build: compiled in $BUILD_DIR (tests $TESTS); installing the Python package"
FLASHHIP_BUILD_DIR="$PWD/$BUILD_DIR" run_logged "$BUILD_DIR.install.log" "pip install" \
  "$PY" -m pip install --no-build-isolation --no-deps .
# Import from elsewhere: from the repository root, python/ is not on the path, but be sure.
( cd / && "$PY" -c "import flashhip" ) >"$BUILD_DIR.import.log" 2>&1 || {
  echo "build: FAILED: flashhip does not import after install; $BUILD_DIR.import.log:" >&2
  tail -n 40 "$BUILD_DIR.import.log" | sed 's/^/  | /' >&2
  exit 1
}
echo "build: $BUILD_DIR, flashhip installed"
