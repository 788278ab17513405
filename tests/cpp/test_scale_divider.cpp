// ScaleDivider (the quantisers' division by a shared scale) gives exactly IEEE x / d: every bf16
// dividend significand against a spread of divisor significands, random fp32 pairs over the
// exponent range, and the divisors outside its reciprocal range (0, inf, NaN, subnormal, huge).
// The device spelling is checked against the hardware division in tests/cpp/kernels/test_platform.cu.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

#include "flashhip/platform/scale_divider.h"

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Same value, or both NaN.
bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

TEST(ScaleDivider, EveryBf16SignificandAgainstSpreadDivisors) {
  long mismatches = 0;
  for (uint32_t ds = 0; ds < (1u << 23); ds += 61) {  // 137,500 divisor significands
    const float d = from_bits(0x3f800000u | ds);
    const flashhip::ScaleDivider divide(d);
    for (uint32_t xs = 0; xs < (1u << 7); ++xs) {
      const float x = from_bits(0x3f800000u | (xs << 16));
      mismatches += divide(x) != x / d;
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(ScaleDivider, RandomFp32PairsOverTheExponentRange) {
  std::mt19937_64 rng(2026);
  std::uniform_int_distribution<int> exponent(-60, 60);
  long mismatches = 0;
  for (int i = 0; i < 2000000; ++i) {
    const uint64_t r = rng();
    const float x = std::ldexp(from_bits(0x3f800000u | uint32_t(r & 0x7fffff)), exponent(rng)) * ((r >> 62) ? -1 : 1);
    const float d = std::ldexp(from_bits(0x3f800000u | uint32_t((r >> 23) & 0x7fffff)), exponent(rng)) *
                    ((r >> 63) ? -1 : 1);
    mismatches += flashhip::ScaleDivider(d)(x) != x / d;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(ScaleDivider, DivisorsOutsideTheReciprocalRangeDivide) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float divisors[] = {0.0f, -0.0f, inf, -inf, nan, 1e-40f, -3e-39f, 0x1p-126f, 0x1p126f, 3e38f};
  const float dividends[] = {0.0f, 1.0f, -2.5f, 448.0f, 1e-38f, 3e38f, inf, nan};
  for (float d : divisors)
    for (float x : dividends) EXPECT_TRUE(same(flashhip::ScaleDivider(d)(x), x / d)) << "x=" << x << " d=" << d;
}

}  // namespace
