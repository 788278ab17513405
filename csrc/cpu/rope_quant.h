// CPU implementation of the RoPE + fp8 quantisation, over the same parameters as the GPU launcher.
#pragma once

#include "flashhip/kernels/rope/rope_quant.h"

namespace flashhip::cpu {

// Positions must already be known to lie in [0, max_positions) (the op wrapper checks them).
void rope_quant(const kernels::RopeQuantParams& params);

}  // namespace flashhip::cpu
