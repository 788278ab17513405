#!/usr/bin/env bash
# Builds the op library (and the C++ tests) with CMake and installs the Python package from
# that build. Incremental: quick when nothing changed.
#   BUILD_DIR (default build/$FLASHHIP_GPU)   FLASHHIP_GPU (default AUTO)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export FLASHHIP_GPU=${FLASHHIP_GPU:-AUTO}
BUILD_DIR=${BUILD_DIR:-build/$(echo "$FLASHHIP_GPU" | tr 'A-Z' 'a-z')}
JOBS=${MAX_JOBS:-$(nproc)}
mkdir -p "$BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -G Ninja -DPython3_EXECUTABLE="$(command -v "$PY")" -DFLASHHIP_GPU="$FLASHHIP_GPU" \
  -DFLASHHIP_BUILD_TESTS=ON ${CMAKE_ARGS:-} >"$BUILD_DIR.configure.log" 2>&1 || { cat "$BUILD_DIR.configure.log"; exit 1; }
cmake --build "$BUILD_DIR" -j "$JOBS"
FLASHHIP_BUILD_DIR="$PWD/$BUILD_DIR" "$PY" -m pip install -q --no-build-isolation --no-deps . 2>&1 \
  | { grep -v "Running pip as the 'root'" || true; }
"$PY" -c "import flashhip" || { echo "build: flashhip does not import after install"; exit 1; }
echo "build: $BUILD_DIR, flashhip installed"
