// CPU implementation of the blockwise-scaled fp8 GEMM, over the same parameters as the GPU
// launcher (workspace and the force_* knobs are ignored).
#pragma once

#include "flashhip/kernels/gemm/fp8_gemm.h"

namespace flashhip::cpu {

void fp8_gemm(const kernels::Fp8GemmParams& params);

}  // namespace flashhip::cpu
