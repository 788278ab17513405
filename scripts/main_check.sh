#!/usr/bin/env bash
# CI's check of the README's main command as a new user meets it: scripts/main.sh with
# googletest hidden from its build (a main job that needs the tests' googletest fails here) and
# its own build directory. Passes when main.sh exits 0 and printed the check table, all ok.
#   MAIN_CHECK_CLEAN=1  start from an empty build directory (a clean checkout has one anyway)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build/main_check
log=$dir.main.log
[ "${MAIN_CHECK_CLEAN:-0}" = 1 ] && rm -rf "$dir"
mkdir -p build
echo "main_check: BUILD_DIR=$dir CMAKE_ARGS=-DFLASHHIP_GTEST_SOURCE_DIR=/nonexistent scripts/main.sh (log: $log)"
rc=0
env -u FLASHHIP_BUILD_TESTS BUILD_DIR="$dir" CMAKE_ARGS="-DFLASHHIP_GTEST_SOURCE_DIR=/nonexistent/googletest" \
  scripts/main.sh 2>&1 | tee "$log" || rc=$?
fail() { echo "main_check: FAILED: $*" >&2; exit 1; }
[ "$rc" -eq 0 ] || fail "scripts/main.sh exited $rc (output above; also in $log)"
grep -q "^op .*rel. error.*result" "$log" || fail "scripts/main.sh printed no check table"
grep -q "^all checks passed" "$log" || fail "the check table does not end with 'all checks passed'"
grep -q "^main: building" "$log" || fail "no progress line for the build"
if grep -q "googletest\|gtest" "$dir/build.ninja"; then fail "the main build still builds googletest"; fi
echo "main_check: ok (main.sh built without googletest and printed the check table)"
