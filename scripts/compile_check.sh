#!/usr/bin/env bash
# Compiles every GPU kernel translation unit without a GPU or a GPU build of torch, from the
# CMake build description (FLASHHIP_KERNELS_ONLY=ON: the kernel objects alone, per-file arch
# lists included): nvcc for sm_90a, and hipcc for AMD (gfx940 stands in for MI300X's gfx942 on
# Debian's ROCm 5.2, which knows no gfx942; same ISA family, FNUZ fp8 and fp8 MFMA), and gfx90a.
#   CUDA_ARCHS (default "90a")   HIP_ARCHS (default "gfx940 gfx90a")
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CUDA_ARCHS=${CUDA_ARCHS:-90a}
HIP_ARCHS=${HIP_ARCHS:-gfx940 gfx90a}
out=build/compile_check
command -v nvcc >/dev/null || { echo "compile check: nvcc not found (CUDA toolkit needed)"; exit 1; }
command -v hipcc >/dev/null || { echo "compile check: hipcc not found (apt-get install hipcc)"; exit 1; }
JOBS=${MAX_JOBS:-$(nproc)}

configure() {  # dir, cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DPython3_EXECUTABLE="$(command -v "$PY")" -DFLASHHIP_KERNELS_ONLY=ON "$@" \
    >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; echo "compile check: configure of $dir FAILED"; exit 1; }
}
mkdir -p "$out"
configure "$out/cuda" -DFLASHHIP_GPU=CUDA -DFLASHHIP_CUDA_ARCHS="${CUDA_ARCHS// /;}"
export HIP_PLATFORM=amd
configure "$out/hip" -DFLASHHIP_GPU=HIP -DFLASHHIP_HIP_AS_CXX=ON -DCMAKE_CXX_COMPILER=hipcc \
  -DFLASHHIP_HIP_ARCHS="${HIP_ARCHS// /;}"
# One job pool for both: two ninjas of $JOBS each would oversubscribe the machine.
cmake --build "$out/cuda" -j "$JOBS" || { echo "compile check: nvcc FAILED"; exit 1; }
cmake --build "$out/hip" -j "$JOBS" || { echo "compile check: hipcc FAILED"; exit 1; }
n=$(ls csrc/platform/*.cu csrc/kernels/*/*.cu | wc -l)
echo "compile check: $n kernel files and the device tests built for sm_$CUDA_ARCHS (nvcc) and $HIP_ARCHS (hipcc): ok"
# The CDNA3 fp8 GEMM must really use the fp8 MFMA (gfx940 stands in for gfx942).
if [[ " $HIP_ARCHS " == *" gfx940 "* ]]; then
  mfma=$(hipcc -std=c++17 -O3 -x hip --offload-arch=gfx940 --cuda-device-only -S -Icsrc/include \
    csrc/kernels/gemm/fp8_gemm_cdna3.cu -o - 2>/dev/null | grep -cE "v_mfma_f32_(16x16x32|32x32x16)_fp8_fp8" || true)
  [ "${mfma:-0}" -gt 0 ] || { echo "compile check: no fp8 MFMA in the gfx940 fp8 GEMM"; exit 1; }
  echo "compile check: gfx940 fp8 GEMM issues $mfma v_mfma_f32_*_fp8_fp8 instructions"
fi
