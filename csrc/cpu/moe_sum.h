// CPU implementation of the MoE combine, over the same parameters as the GPU launcher.
#pragma once

#include "flashhip/kernels/moe/moe_sum.h"

namespace flashhip::cpu {

void moe_sum(const kernels::MoeSumParams& params);

}  // namespace flashhip::cpu
