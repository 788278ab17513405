#!/usr/bin/env bash
# Compiles every GPU kernel translation unit without a GPU or a GPU build of torch:
# nvcc for sm_90a, and hipcc for AMD (gfx940 stands in for MI300X's gfx942 on Debian's ROCm 5.2,
# which knows no gfx942; same ISA family, FNUZ fp8 and fp8 MFMA), and gfx90a.
#   CUDA_ARCHS (default "90a")   HIP_ARCHS (default "gfx940 gfx90a")
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_ARCHS=${CUDA_ARCHS:-90a}
HIP_ARCHS=${HIP_ARCHS:-gfx940 gfx90a}
out=build/compile_check
mkdir -p "$out"
command -v nvcc >/dev/null || { echo "compile check: nvcc not found (CUDA toolkit needed)"; exit 1; }
command -v hipcc >/dev/null || { echo "compile check: hipcc not found (apt-get install hipcc)"; exit 1; }

gencode=""; for a in $CUDA_ARCHS; do gencode+=" -gencode=arch=compute_$a,code=sm_$a"; done
offload=""; for a in $HIP_ARCHS; do offload+=" --offload-arch=$a"; done

jobs=()
for src in csrc/platform/*.cu csrc/kernels/*.cu; do
  name=$(basename "$src" .cu)
  jobs+=("nvcc -std=c++17 -O3 --expt-relaxed-constexpr $gencode -Icsrc/include -c $src -o $out/$name.sm.o")
  jobs+=("HIP_PLATFORM=amd hipcc -std=c++17 -O3 -x hip $offload -Icsrc/include -c $src -o $out/$name.hip.o")
done
printf '%s\n' "${jobs[@]}" | xargs -P "$(nproc)" -I{} bash -c '{} 2>&1 | grep -v "^$" ; exit ${PIPESTATUS[0]}' \
  || { echo "compile check: FAILED"; exit 1; }
echo "compile check: $(ls csrc/platform/*.cu csrc/kernels/*.cu | wc -l) kernel files built for sm_$CUDA_ARCHS (nvcc) and $HIP_ARCHS (hipcc): ok"
