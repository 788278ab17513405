// CPU implementation of MoE block alignment, over the same parameters as the GPU launcher.
#pragma once

#include "flashhip/kernels/moe/moe_align.h"

namespace flashhip::cpu {

// Ids and map values are expected in range (the op checks them first).
void moe_align(const kernels::MoeAlignParams& params);

}  // namespace flashhip::cpu
