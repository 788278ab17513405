// x / d rounded to nearest even, exactly as the IEEE division, for a divisor that many dividends
// share (a quantisation scale): one reciprocal per divisor, then three operations a quotient
// instead of a division's ~10 and its range check.
//
//   r = RN(1 / d),  q = RN(x * r),  e = x - q * d (exact in one fma),  x / d = RN(q + e * r)
//
// q is within an ulp of x / d, which makes the remainder e exact; one correction with the
// correctly rounded reciprocal then gives the correctly rounded quotient. Checked against x / d:
// every 11-bit dividend significand (fp16's; bf16's 8 bits are a subset) against every fp32
// divisor significand (1.7e10 pairs), and 2e10 random pairs of fp32 significands: no difference.
// Scaling either operand by a power of two is exact, so this covers every divisor with
// 2^-126 < |d| < 2^126 (1/d normal) and every dividend whose quotient is a normal float. Outside
// that range of d the true division is used. A quotient past fp32's range comes out NaN rather than
// inf, a subnormal one may be an ulp off: the fp8 quantisers bound their quotients (see each).
#pragma once

#include <cmath>

#include "flashhip/platform/macros.h"

namespace flashhip {

class ScaleDivider {
 public:
  FH_HOST_DEVICE explicit ScaleDivider(float divisor) : d_(divisor) {
    const float m = fabsf(divisor);
    by_reciprocal_ = m > 0x1p-126f && m < 0x1p126f;  // false for 0, inf and NaN too
    r_ = by_reciprocal_ ? reciprocal_rn(divisor) : 0.0f;
  }

  FH_HOST_DEVICE float operator()(float x) const {
    if (!by_reciprocal_) return x / d_;
    const float q = mul_rn(x, r_);
    const float e = fma_rn(-q, d_, x);
    return fma_rn(e, r_, q);
  }

  FH_HOST_DEVICE float divisor() const { return d_; }

 private:
  // Each step rounded once, whatever the compiler's contraction setting.
  FH_HOST_DEVICE static float reciprocal_rn(float d) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
    return __frcp_rn(d);
#else
    return 1.0f / d;
#endif
  }
  FH_HOST_DEVICE static float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
    return __fmul_rn(a, b);
#else
    volatile float p = a * b;  // a separate rounding even under -ffp-contract=fast
    return p;
#endif
  }
  FH_HOST_DEVICE static float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
    return __fmaf_rn(a, b, c);
#else
    return std::fma(a, b, c);
#endif
  }

  float d_;
  float r_ = 0.0f;
  bool by_reciprocal_ = false;
};

}  // namespace flashhip
