// CPU implementation of the rotary embedding, over the same parameters as the GPU launcher.
#pragma once

#include "flashhip/kernels/rope/rope.h"

namespace flashhip::cpu {

// With a cache, positions must already be known to lie in [0, max_positions) (the op wrapper
// checks them); without one (cos_sin_cache null) any position is valid. With the KV-cache write,
// cache_loc must hold distinct rows in [0, cache_slots) (checked by the op wrapper too): tokens
// run in parallel.
void rope(const kernels::RopeParams& params);

}  // namespace flashhip::cpu
