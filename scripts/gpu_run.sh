#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (the lent H200; earlier the H100): builds for sm_90a, runs the C++ and Python
# GPU tests, compute-sanitizer memcheck and racecheck, the main job and the benchmarks, and
# writes the log and JSON results into OUTDIR. Needs no network; keeps going after a failed
# step and exits non-zero if any failed.
#   scripts/gpu_run.sh OUTDIR [steps...]    steps: build (or build_quick) cpp kernels pytest memcheck racecheck check bench
#   (also: gemm_profile [GEMM_PROFILE="M,N,K,SPLIT,BLOCK_M[,STREAM_K] ..."], decode [DECODE_SETTINGS, DECODE_SHAPES], profile [PROFILE_CASES="case ...", see benchmarks/tools/profile_cases.py],
#    ab [AB_CASES=rope,moe,norm,quant] [AB_BASE_TAR=git archive of the other commit])
#   PYTEST_PATHS and BENCHES narrow the pytest and bench steps (default: all of tests/python, every bench).
set -uo pipefail
OUTDIR=$(realpath -m "${1:?usage: scripts/gpu_run.sh OUTDIR [steps...]}"); shift
cd "$(dirname "$0")/.."
mkdir -p "$OUTDIR"
LOG="$OUTDIR/run.log"
STEPS=${*:-build cpp kernels pytest memcheck racecheck check bench}  # also: gemm_profile decode profile ab
PY=${PYTHON:-python3}
BUILD_DIR=build/cuda
# The lent image's default g++ (/opt/gcc) links libstdc++ statically into shared libraries; a
# second libstdc++ in the Python process crashed the first exception thrown through it. Build
# with the system compiler, whose libstdc++.so torch and Python also use.
if [ -x /usr/bin/g++ ]; then export CXX=/usr/bin/g++ CC=/usr/bin/gcc CUDAHOSTCXX=/usr/bin/g++; fi
export FLASHHIP_LIBRARY="$PWD/$BUILD_DIR/libflashhip_ops.so" PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
# The device's copy of the tree has no .git: the caller passes the commit (FLASHHIP_COMMIT=...).
export PYTHONUNBUFFERED=1 FLASHHIP_COMMIT=${FLASHHIP_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
failed=()

step() {  # step NAME COMMAND...: runs it, appends its output to the log, prints a summary line
  local name=$1; shift
  local start=$(date +%s)
  echo "===== $name: $*" >>"$LOG"
  "$@" >>"$LOG" 2>&1
  local rc=$?
  echo "===== $name rc=$rc ($(( $(date +%s) - start ))s)" >>"$LOG"
  printf '%-10s rc=%d  %4ds\n' "$name" "$rc" "$(( $(date +%s) - start ))"
  [ $rc -eq 0 ] || failed+=("$name")
  return $rc
}
want() { [[ " $STEPS " == *" $1 "* ]]; }

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; nvcc --version | tail -n 2;
  "$PY" -c "import torch; print('torch', torch.__version__)"; echo "commit $FLASHHIP_COMMIT"; } >>"$LOG" 2>&1

if want build || want build_quick; then
  step configure cmake -S . -B $BUILD_DIR -G Ninja -DFLASHHIP_GPU=CUDA -DFLASHHIP_BUILD_TESTS=ON \
    -DPython3_EXECUTABLE="$(command -v "$PY")" || { echo "build failed"; tail -n 60 "$LOG"; exit 1; }
  # build_quick: only the op library and the kernel checks (what pytest, kernels, decode, bench,
  # profile and the sanitizers need), minutes less of device time than the C++ test suites.
  targets=(); want build || targets=(--target flashhip_ops flashhip_kernel_checks)
  step build cmake --build $BUILD_DIR -j "$(nproc)" "${targets[@]}" || { tail -n 60 "$LOG"; exit 1; }
  "$PY" - >>"$LOG" 2>&1 <<'PYEOF'
import subprocess, glob
import collections, re
for obj in sorted(glob.glob("build/cuda/CMakeFiles/flashhip_gpu_kernels.dir/csrc/kernels/**/*.o", recursive=True)):
    out = subprocess.run(["cuobjdump", "-res-usage", obj], capture_output=True, text=True).stdout
    print(obj, "\n", "\n".join(l for l in out.splitlines() if "REG" in l)[:4000])
    if "/gemm/" in obj:  # the matrix-core instructions the kernel is meant to use
        sass = subprocess.run(["cuobjdump", "--dump-sass", obj], capture_output=True, text=True).stdout
        ops = collections.Counter(re.findall(r"\b(QGMMA\.[0-9A-Z.]+|HGMMA\.[0-9A-Z.]+|UTMALDG\.[0-9A-Z.]+|USETMAXREG\.[A-Z.]+|UCGABAR_[A-Z]+)", sass))
        print("SASS", obj, dict(ops))
PYEOF
  grep "^SASS" "$LOG"
fi
if want cpp; then
  "$PY" tests/fixtures/make_scripted.py $BUILD_DIR/scripted_rmsnorm.pt >>"$LOG" 2>&1
  FLASHHIP_SCRIPTED_MODULE=$BUILD_DIR/scripted_rmsnorm.pt step cpp $BUILD_DIR/flashhip_cpp_tests
  # Torch-free device tests of the platform primitives (built with the GPU backend only).
  step cpp_platform $BUILD_DIR/flashhip_platform_tests
fi
# Torch-free kernel checks: fp8_gemm against a float64 host reference, then the challenge shapes timed.
if want kernels; then
  step kernels timeout 300 $BUILD_DIR/flashhip_kernel_checks; awk '/===== kernels:/,/===== kernels rc/' "$LOG" | grep -E "FAIL|time|passed|FAILED"
fi
want pytest && step pytest "$PY" -m pytest -q -p no:cacheprovider ${PYTEST_PATHS:-tests/python} -rs
sanitize() { PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 400 compute-sanitizer --tool "$1" --error-exitcode 7 "$PY" tests/gpu/sanitize_ops.py; }
want memcheck && step memcheck sanitize memcheck
if want racecheck; then
  # First the GEMM's cp.async scale ring alone (tests/cpp/kernel_checks/cp_async_ring_case.cuh,
  # seconds): with the warp sync the GEMM uses (a report fails the step), and without it
  # (reported in the log only), to tell the tool's reports from real races; then every op
  # (minutes: SANITIZE_CASES=gemm_cases narrows it).
  step racecheck_ring timeout 120 compute-sanitizer --tool racecheck --error-exitcode 7 \
    $BUILD_DIR/flashhip_kernel_checks ring_case
  step racecheck_ring_nosync timeout 120 compute-sanitizer --tool racecheck \
    $BUILD_DIR/flashhip_kernel_checks ring_case nosync
  step racecheck sanitize racecheck
fi
if want profile; then  # one launch of each case under Nsight Compute: duration, throughput, stalls
  # (SourceCounters too: the report is kept and its SASS page written as CSV, stall samples per line)
  step profile ncu --profile-from-start off --section SpeedOfLight --section LaunchStats --section Occupancy \
    --section WarpStateStats --section ComputeWorkloadAnalysis --section InstructionStats --section MemoryWorkloadAnalysis \
    --section SourceCounters -f -o "$OUTDIR/profile" "$PY" benchmarks/tools/profile_cases.py ${PROFILE_CASES:-}
  ncu -i "$OUTDIR/profile.ncu-rep" --page details >>"$LOG" 2>&1
  ncu -i "$OUTDIR/profile.ncu-rep" --page source --csv --print-source sass >"$OUTDIR/profile_sass.csv" 2>>"$LOG"
  awk '/===== profile:/,0' "$LOG" >"$OUTDIR/ncu.txt"
  grep -E "^  [a-z_].*\(|^case |Duration|Memory Throughput|Compute \(SM\)|Registers Per|Achieved Occupancy|Executed Instructions  |Issue Slots Busy" "$OUTDIR/ncu.txt" | head -n 120
fi
if want gemm_profile; then  # fp8_gemm's kernel (main, or decode for M <= 64) under Nsight Compute: GEMM_PROFILE="M,N,K,SPLIT,BLOCK_M ..."
  # (SourceCounters: the SASS lines where the warps stall most, to see where a K block's cycles go)
  for shape in ${GEMM_PROFILE:-8192,8192,8192,1,128,-1 8192,8192,8192,1,256,-1}; do  # -1: stream-K off, as the plan runs 8192^3
    step "gemm_profile_$shape" timeout 120 ncu --clock-control none -k regex:"fp8_gemm_wgmma_(swap_)?kernel" --launch-skip 10 --launch-count 1 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section WarpStateStats \
      --section SchedulerStats --section LaunchStats --section SourceCounters -f -o "$OUTDIR/gemm_${shape//,/_}" \
      $BUILD_DIR/flashhip_kernel_checks time ${shape//,/ }
    # The report's details into the log, and every SASS line's counters (stall samples by reason) as CSV.
    ncu -i "$OUTDIR/gemm_${shape//,/_}.ncu-rep" --page details >>"$LOG" 2>&1
    ncu -i "$OUTDIR/gemm_${shape//,/_}.ncu-rep" --page source --csv --print-source sass >"$OUTDIR/gemm_sass_${shape//,/_}.csv" 2>>"$LOG"
    step "gemm_metrics_$shape" timeout 120 ncu --clock-control none -k regex:"fp8_gemm_wgmma_(swap_)?kernel" --launch-skip 10 --launch-count 1 \
      --metrics sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__cycles_elapsed.avg.per_second,l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed,l1tex__throughput.avg.pct_of_peak_sustained_active,smsp__average_warp_latency_issue_stalled_barrier.ratio \
      $BUILD_DIR/flashhip_kernel_checks time ${shape//,/ }
  done
  awk '/===== gemm_(profile|metrics)_/,/===== gemm_(profile|metrics)_.* rc/' "$LOG" >"$OUTDIR/gemm_ncu.txt"
fi
if want decode; then  # where fp8_gemm's decode-sized calls spend their time (benchmarks/tools/gemm_timeline.py):
  # each call's kernels, once per DECODE_SETTINGS entry ("NAME:VAR=VALUE,VAR=VALUE ..." of
  # FLASHHIP_DEV_* overrides; "default:" is the heuristics), one process each, in turn
  for setting in ${DECODE_SETTINGS:-default:}; do
    name=${setting%%:*}; vars=${setting#*:}
    step "decode_$name" env ${vars//,/ } "$PY" benchmarks/tools/gemm_timeline.py ${DECODE_SHAPES:+--shapes "$DECODE_SHAPES"} \
      --json "$OUTDIR/decode_$name.json"
  done
fi
if want ab; then  # this tree against another commit's (AB_BASE_TAR: `git archive` of it), one process each in turn
  AB_BASE_DIR=/tmp/flashhip_ab_base; rm -rf "$AB_BASE_DIR"; mkdir -p "$AB_BASE_DIR"
  { tar -xf "${AB_BASE_TAR:-build/ab_base.tar}" -C "$AB_BASE_DIR" || { echo "ab: no base tree to unpack"; failed+=(ab); false; }; } &&
    step ab_configure cmake -S "$AB_BASE_DIR" -B "$AB_BASE_DIR/build" -G Ninja -DFLASHHIP_GPU=CUDA -DPython3_EXECUTABLE="$(command -v "$PY")" &&
    step ab_build cmake --build "$AB_BASE_DIR/build" -j "$(nproc)" --target flashhip_ops &&
    step ab "$PY" benchmarks/tools/sweep_knobs.py --repeat "${AB_REPEAT:-3}" --cases "${AB_CASES:-rope,moe}" --out "$OUTDIR/ab.json" \
      --library "base=$AB_BASE_DIR/build/libflashhip_ops.so" --library "this=$FLASHHIP_LIBRARY" &&
    awk '/===== ab:/,/===== ab rc/' "$LOG" | tail -n 4
fi
want check && step check "$PY" -m flashhip check --json "$OUTDIR/check.json"
if want bench; then
  for bench in ${BENCHES:-benchmarks/bench_*.py}; do
    family=$(basename "$bench" .py); family=${family#bench_}
    step "bench_$family" "$PY" "$bench" --out "$OUTDIR/$family.json"
  done
fi

echo "---- summary"
grep -E "^(=====.*rc=|torch |NVIDIA|commit )" "$LOG" | tail -n 20
for f in "$OUTDIR"/*.json; do
  [ -f "$f" ] || continue
  "$PY" - "$f" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
if "records" not in d: sys.exit()
print("#", d["meta"]["family"], d["meta"]["device"], "copy", d["meta"].get("copy_TBps"))
for r in d["records"]:
    x = " ".join(f"{k}={v}" for k, v in r.items() if k.startswith("x_") or k in ("TBps", "frac_of_copy", "graph_us", "TFLOPs"))
    print(f"{r['op'][:24]:<24} {r['shape']:<12} {r['impl'][:13]:<13} {r['us']:>9.2f}us {x}")
PYEOF
done
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED steps: ${failed[*]}"; exit 1; fi
echo "all steps passed"
