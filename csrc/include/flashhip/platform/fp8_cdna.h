// CDNA3/CDNA4 hardware fp8 conversion. The flavour the instruction produces is the target's:
// FNUZ on gfx940/gfx942, OCP on gfx950; fp8.h calls this only for the matching flavour.
#pragma once

#include <cstdint>

#include "flashhip/platform/fp8_types.h"
#include "flashhip/platform/macros.h"

namespace flashhip {

#if FH_ARCH_CDNA3 || FH_ARCH_CDNA4
template <typename T>
FH_DEVICE FH_INLINE uint8_t fp8_convert_native_amd(float f) {
  // v_cvt_pk_fp8_f32 rounds to nearest even but does not saturate: clamp first, keep NaN.
  if (__builtin_isnan(f)) return Fp8Traits<T>::kNaN;
  f = fminf(fmaxf(f, -Fp8Traits<T>::kMaxFinite), Fp8Traits<T>::kMaxFinite);
  return static_cast<uint8_t>(__builtin_amdgcn_cvt_pk_fp8_f32(f, f, 0, false) & 0xff);
}
#endif

}  // namespace flashhip
