// Fp8Quotient (the quantisers' saturate(y / scale) as an fp8 code) gives the code of the IEEE
// quotient in every flavour: random dividends and divisors over the bracket's range, dividends
// placed within a few ulps of every fp8 rounding boundary (where the bracket cannot decide and
// the corrected quotient must be exact), the edges (0, -0, inf, NaN, overflowing and underflowing
// products), and divisors outside the bracket's range, which divide. The device spelling is checked
// against the device's division in tests/cpp/kernels/test_platform.cu.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "flashhip/platform/fp8.h"
#include "flashhip/platform/fp8_quotient.h"

namespace {

using flashhip::Fp8Quotient;

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

float random_float(std::mt19937_64& rng, int min_exponent, int max_exponent) {
  const uint64_t r = rng();
  std::uniform_int_distribution<int> exponent(min_exponent, max_exponent);
  return std::ldexp(from_bits(0x3f800000u | uint32_t(r & 0x7fffff)), exponent(rng)) * ((r >> 63) ? -1.0f : 1.0f);
}

template <typename T>
uint8_t want_code(float y, float d) {
  return flashhip::from_float<T>(y / d).bits;
}

// Every pair's code against the division's; returns how many pairs the bracket left undecided.
template <typename T>
long check_pairs(const std::vector<float>& dividends, float d) {
  const Fp8Quotient q(d);
  long undecided = 0;
  for (const float y : dividends) {
    EXPECT_EQ(q.code<T>(y).bits, want_code<T>(y, d)) << "y=" << y << " d=" << d;
    if (q.by_bracket()) {
      undecided += flashhip::from_float<T>(q.lower(y)).bits != flashhip::from_float<T>(q.upper(y)).bits;
      // The corrected quotient is the IEEE one wherever the bracket may hand over to it.
      const float exact = y / d;
      if (std::fabs(exact) >= 0x1p-17f && std::fabs(exact) <= 0x1p17f) {
        EXPECT_EQ(q.corrected_quotient(y), exact) << "y=" << y << " d=" << d;
      }
    }
  }
  return undecided;
}

template <typename T>
void random_pairs_match() {
  std::mt19937_64 rng(2026);
  std::vector<float> dividends(20000);
  for (float& y : dividends) y = random_float(rng, -30, 30);
  long undecided = 0, total = 0;
  for (int i = 0; i < 200; ++i) {
    const float d = random_float(rng, -80, 124) * (i % 2 ? 1.0f : -1.0f);
    undecided += check_pairs<T>(dividends, d);
    total += static_cast<long>(dividends.size());
  }
  // A window of ~2^-20 of the value against fp8's relative spacing: rare.
  EXPECT_LT(static_cast<double>(undecided) / static_cast<double>(total), 1e-4);
}

TEST(Fp8Quotient, RandomPairsGiveTheDivisionsCodeE4m3fn) { random_pairs_match<flashhip::fp8_e4m3fn_t>(); }
TEST(Fp8Quotient, RandomPairsGiveTheDivisionsCodeE4m3fnuz) { random_pairs_match<flashhip::fp8_e4m3fnuz_t>(); }
TEST(Fp8Quotient, RandomPairsGiveTheDivisionsCodeE5m2) { random_pairs_match<flashhip::fp8_e5m2_t>(); }

// Dividends whose quotient lies within 8 fp32 ulps of each midpoint between neighbouring codes
// (and of each code): the cases the bracket hands to the corrected quotient.
template <typename T>
void boundaries_match() {
  std::vector<float> values;
  for (int code = 0; code < 0x7f; ++code) {
    const float a = flashhip::to_float(T{static_cast<uint8_t>(code)});
    const float b = flashhip::to_float(T{static_cast<uint8_t>(code + 1)});
    if (!std::isfinite(a) || !std::isfinite(b)) continue;
    values.push_back(a);
    values.push_back(0.5f * (a + b));  // exact: a + b is exact in fp32 for fp8 values
  }
  std::mt19937_64 rng(7);
  long undecided = 0;
  for (int i = 0; i < 300; ++i) {
    const float d = std::fabs(random_float(rng, -70, 70));
    std::vector<float> dividends;
    for (const float v : values) {
      const float centre = v * d;  // rounded: its quotient is within an ulp or two of v
      uint32_t bits;
      std::memcpy(&bits, &centre, sizeof bits);
      for (int k = -8; k <= 8; ++k) {
        const float y = from_bits(bits + static_cast<uint32_t>(k));
        dividends.push_back(y);
        dividends.push_back(-y);
      }
    }
    undecided += check_pairs<T>(dividends, d);
  }
  EXPECT_GT(undecided, 0);  // the boundaries were reached: the corrected quotient was exercised
}

TEST(Fp8Quotient, QuotientsAtRoundingBoundariesE4m3fn) { boundaries_match<flashhip::fp8_e4m3fn_t>(); }
TEST(Fp8Quotient, QuotientsAtRoundingBoundariesE4m3fnuz) { boundaries_match<flashhip::fp8_e4m3fnuz_t>(); }
TEST(Fp8Quotient, QuotientsAtRoundingBoundariesE5m2) { boundaries_match<flashhip::fp8_e5m2_t>(); }

TEST(Fp8Quotient, EdgesAndDivisorsOutsideTheBracket) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float fmax = std::numeric_limits<float>::max();
  const std::vector<float> dividends = {0.0f,  -0.0f, 1.0f,  -1.0f, 447.9f, 448.0f, 464.0f, 57344.0f, 1e-38f, -1e-45f,
                                        3e38f, -fmax, fmax,  inf,   -inf,   nan,    1e-7f,  -2e-3f,   3e8f};
  const std::vector<float> divisors = {1e-36f, 0x1p-80f, 0x1.fffffep-81f, 1e-20f, 1e-6f, 0.0125f, 1.0f, -3.0f,
                                       1e30f,  0x1p124f, 0x1.000002p124f, 0.0f,   -0.0f, inf,     -inf, nan,
                                       1e-40f, 3e38f};
  for (const float d : divisors) {
    const float m = std::fabs(d);
    EXPECT_EQ(Fp8Quotient(d).by_bracket(), (m >= 0x1p-80f && m <= 0x1p124f) || m == inf) << d;
    check_pairs<flashhip::fp8_e4m3fn_t>(dividends, d);
    check_pairs<flashhip::fp8_e4m3fnuz_t>(dividends, d);
    check_pairs<flashhip::fp8_e5m2_t>(dividends, d);
  }
}

}  // namespace
