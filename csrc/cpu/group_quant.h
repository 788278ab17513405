// CPU implementation of per-token-group fp8 quantisation, over the GPU launcher's parameters.
#pragma once

#include "flashhip/kernels/gemm/fp8_gemm.h"

namespace flashhip::cpu {

void group_quant_fp8(const kernels::GroupQuantParams& params);

}  // namespace flashhip::cpu
