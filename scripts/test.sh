#!/usr/bin/env bash
# Runs every test: builds (installing what is missing), the C++ tests through the dispatcher
# (TorchScript module included), pytest, and the compile check of the GPU kernels for nvcc
# sm_90a and hipcc gfx940/gfx90a. On a machine with a GPU the GPU tests run too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
scripts/setup.sh test
export FLASHHIP_GPU=${FLASHHIP_GPU:-AUTO}
export BUILD_DIR=${BUILD_DIR:-build/$(echo "$FLASHHIP_GPU" | tr 'A-Z' 'a-z')}
scripts/build.sh

echo "== C++ tests (googletest) =="
"$PY" tests/fixtures/make_scripted.py "$BUILD_DIR/scripted_rmsnorm.pt"
FLASHHIP_SCRIPTED_MODULE="$BUILD_DIR/scripted_rmsnorm.pt" "$BUILD_DIR/flashhip_cpp_tests"

echo "== compile check (nvcc, hipcc) =="
scripts/compile_check.sh

echo "== Python tests (pytest) =="
"$PY" -m pytest -q -p no:cacheprovider tests/python "$@"
