// CPU implementation of MoE routing, over the same parameters as the GPU launcher.
#pragma once

#include "flashhip/kernels/moe/moe_topk.h"

namespace flashhip::cpu {

void moe_topk(const kernels::MoeTopkParams& params);

}  // namespace flashhip::cpu
