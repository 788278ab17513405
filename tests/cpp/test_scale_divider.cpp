// ScaleDivider (the quantisers' division by a shared scale) gives exactly IEEE x / d: every bf16
// dividend significand against a spread of divisor significands, random fp32 pairs over the
// exponent range, and the divisors outside its reciprocal range (0, inf, NaN, subnormal, huge);
// the unchecked forms a loop calls after asking by_reciprocal() once; and SaturatingDivider, whose
// saturated quotients equal those of the true division for every dividend (inf and NaN included).
// The device spelling is checked against the hardware division in tests/cpp/kernels/test_platform.cu.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

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

TEST(ScaleDivider, UncheckedFormsAgreeWithTheCheckedOne) {
  std::mt19937_64 rng(18);
  std::uniform_int_distribution<int> exponent(-140, 140);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t r = rng();
    const float x = std::ldexp(from_bits(0x3f800000u | uint32_t(r & 0x7fffff)), exponent(rng) / 2);
    const float d = std::ldexp(from_bits(0x3f800000u | uint32_t((r >> 23) & 0x7fffff)), exponent(rng));
    const flashhip::ScaleDivider divide(d);
    EXPECT_EQ(divide.by_reciprocal(), std::fabs(d) > 0x1p-126f && std::fabs(d) < 0x1p126f) << d;
    const float unchecked = divide.by_reciprocal() ? divide.quotient_by_reciprocal(x) : divide.quotient_by_division(x);
    ASSERT_TRUE(same(unchecked, divide(x))) << "x=" << x << " d=" << d;
    ASSERT_TRUE(same(divide.quotient_by_division(x), x / d));
  }
}

// The reciprocal path unbounded overflows to NaN (inf - inf in the correction) where the true
// quotient is inf: what SaturatingDivider exists for.
TEST(ScaleDivider, ReciprocalPathOverflowsToNan) {
  const flashhip::ScaleDivider divide(1e-30f);
  ASSERT_TRUE(divide.by_reciprocal());
  EXPECT_TRUE(std::isnan(divide.quotient_by_reciprocal(3e38f)));
  EXPECT_TRUE(std::isinf(3e38f / 1e-30f));
}

float saturate(float v, float limit) { return std::isnan(v) ? v : std::fmax(-limit, std::fmin(v, limit)); }

TEST(SaturatingDivider, SaturatedQuotientsEqualTheDivisions) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float fmax = std::numeric_limits<float>::max();
  std::vector<float> divisors = {1e-36f, 0x1.000002p-126f, 1e-30f, 1e-6f, 0.0125f, 1.0f, 3.0f, 1e30f,
                                 2.9e33f, 3.9e35f, 1e37f, 0x1.fffffep125f, 0x1p126f, 1e-40f, 3e38f};
  std::vector<float> dividends = {0.0f, -0.0f, 1.0f, -1.0f, 447.9f, 448.0f, 57344.0f, 1e-38f, 1e-45f, 3e8f,
                                  3e38f, -3e38f, fmax, -fmax, inf, -inf, nan, -nan};
  std::mt19937_64 rng(2718);
  dividends.push_back(-1.5946956e-38f);
  std::uniform_int_distribution<int> exponent(-149, 127);
  for (int i = 0; i < 64; ++i) {
    const uint64_t r = rng();
    divisors.push_back(std::ldexp(from_bits(0x3f800000u | uint32_t(r & 0x7fffff)), exponent(rng)));
  }
  for (int i = 0; i < 4000; ++i) {
    const uint64_t r = rng();
    dividends.push_back(std::ldexp(from_bits(0x3f800000u | uint32_t(r & 0x7fffff)), exponent(rng)) * ((r >> 63) ? -1 : 1));
  }
  for (const float limit : {448.0f, 240.0f, 57344.0f}) {
    for (const float d : divisors) {
      const flashhip::SaturatingDivider divide(d, limit);
      // The reciprocal wherever the bound is finite (subnormal divisors too, scaled by 2^64); the
      // division for the largest divisors.
      const float scaled = d < 0x1p-60f ? d * 0x1p64f : d;
      EXPECT_EQ(divide.by_reciprocal(), scaled < 0x1p126f && scaled > 0x1p-126f && 2.0f * limit * scaled <= fmax) << d;
      for (const float y : dividends) {
        const float want = saturate(y / d, limit);
        const float got = saturate(divide(y), limit);
        const float unchecked =
            saturate(divide.by_reciprocal() ? divide.quotient_by_reciprocal(y) : divide.quotient_by_division(y), limit);
        if (std::fabs(want) < 0x1p-40f) {  // rounds to zero in every fp8 flavour: may be an fp32 ulp off
          ASSERT_LT(std::fabs(got), 0x1p-40f) << "y=" << y << " d=" << d;
          ASSERT_EQ(std::fabs(unchecked), std::fabs(got));
          continue;
        }
        ASSERT_TRUE(same(got, want)) << "y=" << y << " d=" << d << " limit=" << limit << " got " << got;
        ASSERT_TRUE(same(unchecked, want));
        ASSERT_FALSE(std::isnan(got) && !std::isnan(y)) << "y=" << y << " d=" << d;
      }
    }
  }
}

}  // namespace
