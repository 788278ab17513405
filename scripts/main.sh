#!/usr/bin/env bash
# The main job: builds and installs flashhip if needed, then checks every op against its
# reference and times it, on the GPU when there is one and on the CPU otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
scripts/setup.sh build
scripts/build.sh >/dev/null
exec "$PY" -m flashhip check "$@"
