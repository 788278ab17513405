#!/usr/bin/env bash
# The main job: builds and installs flashhip if needed, then checks every op against its
# reference and times it, on the GPU when there is one and on the CPU otherwise.
# Builds only the op library (no C++ tests, so no googletest); every step says what it is
# doing, and a failing step prints its cause (or its log's path and last lines) and exits 1.
#   BUILD_DIR (default build/$FLASHHIP_GPU)   FLASHHIP_GPU (default AUTO)   CMAKE_ARGS
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export FLASHHIP_GPU=${FLASHHIP_GPU:-AUTO}
export BUILD_DIR=${BUILD_DIR:-build/$(echo "$FLASHHIP_GPU" | tr 'A-Z' 'a-z')}
echo "main: checking prerequisites (torch, a C++ compiler, CMake, ninja; installs what is missing)"
scripts/setup.sh build || { echo "main: FAILED: scripts/setup.sh build (see above)" >&2; exit 1; }
echo "main: building flashhip into $BUILD_DIR (the first build takes a few minutes; log: $BUILD_DIR.build.log)"
FLASHHIP_BUILD_TESTS=OFF scripts/build.sh || { echo "main: FAILED: the build (see above)" >&2; exit 1; }
echo "main: checking every op against its reference"
exec "$PY" -m flashhip check "$@"
