// Hardware approximations of transcendental functions, for kernels that trade a few ulp for
// instruction count. The per-target spelling (PTX on NVIDIA) lives here, not in the kernels.
#pragma once

#include "flashhip/platform/macros.h"

namespace flashhip {

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
// e^x with the hardware exp2 (a few ulp). On NVIDIA it is the flush-to-zero ex2: __expf keeps
// results below 2^-126 as denormals with a range check and two multiplies, this returns 0 there.
FH_DEVICE FH_INLINE float exp_approx(float x) {
#if FH_PLATFORM_CUDA
  float e;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(x * 1.4426950408889634f));  // 2^(x log2 e), as __expf scales
  return e;
#else
  return __expf(x);
#endif
}
#endif

}  // namespace flashhip
