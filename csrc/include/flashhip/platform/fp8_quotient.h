// saturate(y / d) as an fp8 code, for many dividends y of one divisor d (a quantisation scale):
// the code of the IEEE quotient, from two multiplies an element instead of a division.
//
//   r = RN(1 / d),  r_lo = RN(r * (1 - 2^-21)),  r_hi = RN(r * (1 + 2^-21))
//   lo = RN(y * r_lo),  hi = RN(y * r_hi)
//
// Why it is exact: for 2^-80 <= |d| <= 2^124 the reciprocals are normal, and wherever y * r_lo
// is a normal float, lo = (y / d)(1 - 2^-21)(1 + e), |e| <= 3 * 2^-24 + tiny (three roundings), so
// |lo| <= |y / d| (1 - 5 * 2^-24); likewise |hi| >= |y / d| (1 + 5 * 2^-24), while the IEEE
// quotient is within 2^-24 of y / d. It therefore lies strictly between lo and hi, and since
// converting to fp8 is monotone, where lo and hi convert to the same code that code is the
// quotient's. They differ only where an fp8 rounding boundary falls inside a window of about
// 2^-20 of the value against fp8's spacing of 2^-3 or 2^-4: about one element in 30,000, and those
// vectors are divided. At the edges: a product that overflows gives inf, which saturates as the
// (still larger) quotient does; one that underflows is below 2^-126, as is the quotient, which is
// then 0 in every flavour (half of the smallest fp8 subnormal is 2^-17 or more); 0, inf and NaN
// dividends give the quotient's code (the product keeps the division's sign rules).
// Where they differ the quotient is a finite value near an fp8 rounding boundary (2^-17 <= |q| <=
// 2^17), and is found without a division (whose slow path is a call: saved registers that the
// callers' prefetching loops cannot spare) by the reciprocal and one correction:
//   q0 = RN(y * r),  e = y - q0 * d (exact in one fma),  RN(y / d) = RN(q0 + e * r)
// exact for 2^-126 < |d| < 2^126 and |y| >= 2^-103 with a normal quotient (checked against the
// division over every 11-bit dividend significand against every fp32 divisor significand, and
// 2e10 random pairs of significands); |d| >= 2^-80 keeps |y| = |q d| >= 2^-97.
// An infinite divisor takes the bracket too: r, r_lo and r_hi are 0 (signed as d), so both ends
// are y * 0, which is the quotient itself (a signed zero for finite y, NaN for inf and NaN).
// A divisor outside 2^-80..2^124 and not infinite (0, NaN, a tiny or huge scale) has every
// element divided: by_bracket() is false, asked once per kernel so that the loops have no branch
// on it.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "flashhip/platform/fp8.h"
#include "flashhip/platform/macros.h"

namespace flashhip {

class Fp8Quotient {
 public:
  FH_HOST_DEVICE explicit Fp8Quotient(float divisor) : d_(divisor) {
    const float m = fabsf(divisor);
    by_bracket_ = (m >= 0x1p-80f && m <= 0x1p124f) || m == INFINITY;  // false for 0 and NaN
    if (by_bracket_) {
      r_ = reciprocal_rn(divisor);
      r_lo_ = mul_rn(r_, 1.0f - 0x1p-21f);
      r_hi_ = mul_rn(r_, 1.0f + 0x1p-21f);
    }
  }

  FH_HOST_DEVICE bool by_bracket() const { return by_bracket_; }

  // The bracket's ends for y (only where by_bracket()).
  FH_HOST_DEVICE float lower(float y) const { return mul_rn(y, r_lo_); }
  FH_HOST_DEVICE float upper(float y) const { return mul_rn(y, r_hi_); }
  // RN(y / d) by the division: any divisor, any dividend.
  FH_HOST_DEVICE float quotient(float y) const { return y / d_; }
  // RN(y / d) by the reciprocal, for the dividends whose bracket straddles a boundary (only where
  // by_bracket()).
  FH_HOST_DEVICE float corrected_quotient(float y) const {
    const float q0 = mul_rn(y, r_);
    return fma_rn(fma_rn(-q0, d_, y), r_, q0);
  }

  // One element's code, by the bracket where it decides, else by the division.
  template <typename T>
  FH_HOST_DEVICE T code(float y) const {
    if (by_bracket_) {
      const T lo = from_float<T>(lower(y));
      if (lo.bits == from_float<T>(upper(y)).bits) return lo;
      return from_float<T>(corrected_quotient(y));
    }
    return from_float<T>(quotient(y));
  }

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
  // N codes (a multiple of 4) packed four to a word as convert_floats_to_words packs them, of the
  // dividends value(0..N-1). BY_BRACKET is by_bracket(), as a constant of the caller's loop. The
  // dividends are asked for again by the rare correction rather than held across the conversions
  // (registers the callers' prefetched rows need).
  template <typename T, bool BY_BRACKET, int N, typename Value>
  FH_DEVICE FH_INLINE void codes(Value&& value, uint32_t (&words)[N / 4]) const {
    if constexpr (BY_BRACKET) {
      bool differ = false;
#pragma unroll
      for (int k = 0; k < N / 4; ++k) {  // a word at a time: four values live, not N
        float lo[4], hi[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float y = value(4 * k + j);
          lo[j] = lower(y);
          hi[j] = upper(y);
        }
        uint32_t lo_word[1], hi_word[1];
        convert_floats_to_words<T, 4>(lo, lo_word);
        convert_floats_to_words<T, 4>(hi, hi_word);
        words[k] = lo_word[0];
        differ |= lo_word[0] != hi_word[0];
      }
      if (!differ) return;  // the common case: the bracket decided every element
    }
    float q[N];
#pragma unroll
    for (int j = 0; j < N; ++j) q[j] = BY_BRACKET ? corrected_quotient(value(j)) : quotient(value(j));
    convert_floats_to_words<T, N>(q, words);
  }

  // N codes of any count, for vectors narrower than a word.
  template <typename T, bool BY_BRACKET, int N, typename Value>
  FH_DEVICE FH_INLINE void codes(Value&& value, T (&out)[N]) const {
    if constexpr (N % 4 == 0) {
      uint32_t words[N / 4];
      codes<T, BY_BRACKET, N>(value, words);
      memcpy(out, words, sizeof words);
    } else {
#pragma unroll
      for (int j = 0; j < N; ++j) out[j] = BY_BRACKET ? code<T>(value(j)) : from_float<T>(quotient(value(j)));
    }
  }
#endif

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
  float r_lo_ = 0.0f;
  float r_hi_ = 0.0f;
  bool by_bracket_ = false;
};

}  // namespace flashhip
