#!/usr/bin/env bash
# Builds the C++ TorchScript example against the installed flashhip (as a user would), makes the
# module with make_module.py and runs the program on it. Needs flashhip installed for $PYTHON
# (scripts/build.sh or pip install), cmake and a C++ compiler; no GPU.
#   PYTHON (default python3)   BUILD_DIR (default build/torchscript_cpp)   MAX_JOBS (default nproc)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY=${PYTHON:-python3}
BUILD_DIR=${BUILD_DIR:-$ROOT/build/torchscript_cpp}
JOBS=${MAX_JOBS:-$(nproc)}
GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
fail() { echo "torchscript_cpp: FAILED: $*" >&2; exit 1; }
# Runs a step with its output in a log; on failure prints the log's last lines and its path.
step() {
  local name=$1 log="$BUILD_DIR/$1.log"; shift
  echo "torchscript_cpp: $name ..."
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    fail "$name (full log: $log)"
  fi
}

mkdir -p "$BUILD_DIR"
"$PY" -c "import flashhip" || fail "flashhip does not import with $PY: install it first (scripts/build.sh or pip install)"
# A stale cache from an earlier build could point at another op library or torch: start clean.
rm -f "$BUILD_DIR/CMakeCache.txt"
step configure cmake -S "$HERE" -B "$BUILD_DIR" "${GEN[@]}" -DPython3_EXECUTABLE="$(command -v "$PY")"
grep "flashhip example: op library" "$BUILD_DIR/configure.log" | sed 's/^-- /torchscript_cpp: /' || true
step build cmake --build "$BUILD_DIR" -j "$JOBS"
step make_module "$PY" "$HERE/make_module.py" "$BUILD_DIR/norm_and_route.pt"
echo "torchscript_cpp: run $BUILD_DIR/flashhip_torchscript_example $BUILD_DIR/norm_and_route.pt"
"$BUILD_DIR/flashhip_torchscript_example" "$BUILD_DIR/norm_and_route.pt" || fail "the program exited with status $?"
echo "torchscript_cpp: passed"
