// CPU implementation of the normalisation family, over the same parameters as the GPU launcher.
#pragma once

#include "flashhip/kernels/norm/norm.h"

namespace flashhip::cpu {

void norm(const kernels::NormParams& params);

}  // namespace flashhip::cpu
