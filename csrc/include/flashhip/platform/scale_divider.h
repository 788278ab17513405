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
// 2^-126 < |d| < 2^126 (1/d normal) and every dividend |x| >= 2^-103 whose quotient is a normal
// float; below 2^-103 the remainder e (about 2^-24 |x|) can fall below fp32's subnormal quantum
// and the quotient be an ulp off (x = -1.5946956e-38, d = 1e-36 is one). Outside that range of d
// the true division is used. A quotient past fp32's range comes out NaN rather than inf, a
// subnormal one may be an ulp off: SaturatingDivider below bounds and scales for the quantisers.
//
// operator() checks the range per call. A loop over many dividends of one divisor asks
// by_reciprocal() once, outside the loop, and calls quotient_by_reciprocal() or
// quotient_by_division() inside it, so that the loop body has no branch.
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
    return by_reciprocal_ ? quotient_by_reciprocal(x) : quotient_by_division(x);
  }

  // Whether the divisor is in the reciprocal's range (2^-126 < |d| < 2^126; false for 0, inf, NaN).
  FH_HOST_DEVICE bool by_reciprocal() const { return by_reciprocal_; }

  // x / d by the reciprocal and one correction, unchecked: only where by_reciprocal() is true
  // (elsewhere the reciprocal is 0 and the result meaningless).
  FH_HOST_DEVICE float quotient_by_reciprocal(float x) const {
    const float q = mul_rn(x, r_);
    const float e = fma_rn(-q, d_, x);
    return fma_rn(e, r_, q);
  }

  // x / d by the division: any divisor.
  FH_HOST_DEVICE float quotient_by_division(float x) const { return x / d_; }

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

// y / d for a quotient that is then saturated to +-limit (an fp8 quantiser): after saturation it
// equals the saturated true quotient for every y (inf and NaN included), exactly wherever
// |y / d| >= 2^-40 (smaller quotients are below half of any fp8 flavour's smallest subnormal, so
// they round to zero either way; they may be an fp32 ulp off). Through the reciprocal:
// - a divisor below 2^-60 (a subnormal one too) is first scaled up by 2^64, and every dividend
//   with it (one exact multiply), so that a dividend whose quotient matters is large enough for
//   an exact remainder;
// - a dividend is bounded to +-2 * limit * |d| (NaN passes unchanged): below the bound nothing
//   changes, beyond it the true quotient exceeds the limit and so does the bounded one, and no
//   quotient can overflow into the reciprocal path's NaN.
// Where 2 * limit * |d| is past fp32's range (an infinite dividend could not be bounded), or d is
// outside the reciprocal's range, the division is used, whose overflow gives inf, which saturates
// too. As with ScaleDivider, ask by_reciprocal() once outside a loop.
class SaturatingDivider {
 public:
  FH_HOST_DEVICE SaturatingDivider(float divisor, float limit)
      : prescale_(fabsf(divisor) < 0x1p-60f ? 0x1p64f : 1.0f), divide_(divisor * prescale_) {
    bound_ = 2.0f * limit * fabsf(divisor * prescale_);
    by_reciprocal_ = divide_.by_reciprocal() && bound_ <= 0x1.fffffep127f;
    if (!by_reciprocal_) {  // the division, of the divisor as given
      prescale_ = 1.0f;
      divide_ = ScaleDivider(divisor);
    }
  }

  FH_HOST_DEVICE float operator()(float y) const {
    return by_reciprocal_ ? quotient_by_reciprocal(y) : quotient_by_division(y);
  }

  FH_HOST_DEVICE bool by_reciprocal() const { return by_reciprocal_; }

  // Only where by_reciprocal() is true.
  FH_HOST_DEVICE float quotient_by_reciprocal(float y) const {
    const float scaled = y * prescale_;  // exact, or an overflow to inf that the bound catches
    const float bounded = fabsf(scaled) > bound_ ? copysignf(bound_, scaled) : scaled;  // NaN kept
    return divide_.quotient_by_reciprocal(bounded);
  }

  FH_HOST_DEVICE float quotient_by_division(float y) const { return divide_.quotient_by_division(y); }

 private:
  float prescale_;
  ScaleDivider divide_;
  float bound_ = 0.0f;
  bool by_reciprocal_ = false;
};

}  // namespace flashhip
