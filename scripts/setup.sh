#!/usr/bin/env bash
# Installs what flashhip needs, skipping whatever is already there (quick when nothing is).
#   scripts/setup.sh build   torch, a C++ compiler, CMake, ninja
#   scripts/setup.sh test    the above plus pytest, hypothesis, googletest sources and hipcc (compile check)
set -euo pipefail
mode=${1:-build}
PY=${PYTHON:-python3}

apt_missing=()
command -v g++ >/dev/null || apt_missing+=(g++)
command -v cmake >/dev/null || apt_missing+=(cmake)
command -v ninja >/dev/null || apt_missing+=(ninja-build)
if [ "$mode" = test ]; then
  [ -f /usr/src/googletest/CMakeLists.txt ] || apt_missing+=(googletest)
  command -v hipcc >/dev/null || apt_missing+=(hipcc)
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "setup: installing ${apt_missing[*]} (apt)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

pip_missing=()
# This machine kind serves torch 2.13.0 (CPU) from a local wheel; any installed torch will do.
"$PY" -c "import torch" 2>/dev/null || pip_missing+=("torch==2.13.0")
"$PY" -c "import numpy" 2>/dev/null || pip_missing+=(numpy)
"$PY" -c "import setuptools, wheel" 2>/dev/null || pip_missing+=(setuptools wheel)
[ "$mode" = test ] && { "$PY" -c "import pytest" 2>/dev/null || pip_missing+=(pytest); }
# tests/python/test_properties.py (property-based tests) needs hypothesis.
[ "$mode" = test ] && { "$PY" -c "import hypothesis" 2>/dev/null || pip_missing+=(hypothesis); }
if [ ${#pip_missing[@]} -gt 0 ]; then
  echo "setup: installing ${pip_missing[*]} (pip)"
  "$PY" -m pip install -q "${pip_missing[@]}"
fi
