// The portable fp8 conversions (used on GPUs whose native flavour differs) agree with c10's.
#include <gtest/gtest.h>

#include <c10/util/BFloat16.h>
#include <c10/util/Float8_e4m3fn.h>
#include <c10/util/Float8_e4m3fnuz.h>
#include <c10/util/Float8_e5m2.h>

#include <cmath>
#include <random>

#include "flashhip/platform/fp8.h"

namespace {

template <typename Ours, typename Theirs>
void expect_same_rounding() {
  constexpr float kMax = flashhip::Fp8Traits<Ours>::kMaxFinite;
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> log_magnitude(-14.0f, 9.0f);
  for (int i = 0; i < 200000; ++i) {
    float x = std::exp2(log_magnitude(rng)) * ((i & 1) ? -1.0f : 1.0f);
    const float clamped = std::fmax(-kMax, std::fmin(x, kMax));
    const uint8_t ours = flashhip::fp8_e4m3_from_float_software<Ours>(x).bits;
    const uint8_t theirs = Theirs(clamped).x;
    ASSERT_EQ(ours, theirs) << "x=" << x;
    ASSERT_EQ(flashhip::to_float(Ours{ours}), static_cast<float>(Theirs(clamped))) << "x=" << x;
  }
  // Every code decodes as c10 decodes it.
  for (int code = 0; code < 256; ++code) {
    const float ours = flashhip::to_float(Ours{static_cast<uint8_t>(code)});
    const float theirs = static_cast<float>(Theirs(static_cast<uint8_t>(code), Theirs::from_bits()));
    if (std::isnan(theirs)) {
      EXPECT_TRUE(std::isnan(ours)) << code;
    } else {
      EXPECT_EQ(ours, theirs) << code;
    }
  }
  EXPECT_TRUE(std::isnan(flashhip::to_float(flashhip::fp8_e4m3_from_float_software<Ours>(std::nanf("")))));
  EXPECT_EQ(flashhip::to_float(flashhip::fp8_e4m3_from_float_software<Ours>(1e9f)), kMax);
  EXPECT_EQ(flashhip::to_float(flashhip::fp8_e4m3_from_float_software<Ours>(-INFINITY)), -kMax);
}

TEST(Fp8, OcpE4M3MatchesC10) { expect_same_rounding<flashhip::fp8_e4m3fn_t, c10::Float8_e4m3fn>(); }
TEST(Fp8, FnuzE4M3MatchesC10) { expect_same_rounding<flashhip::fp8_e4m3fnuz_t, c10::Float8_e4m3fnuz>(); }

// e5m2 (the norm quantisers' third output): rounding as c10's below the largest finite value,
// saturation beyond it (inf included, where c10 overflows to inf), every code decoded as c10's.
TEST(Fp8, OcpE5M2MatchesC10AndSaturates) {
  constexpr float kMax = flashhip::Fp8Traits<flashhip::fp8_e5m2_t>::kMaxFinite;
  EXPECT_EQ(kMax, 57344.0f);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> log_magnitude(-20.0f, 17.0f);
  for (int i = 0; i < 400000; ++i) {
    const float x = std::exp2(log_magnitude(rng)) * ((i & 1) ? -1.0f : 1.0f);
    const float clamped = std::fmax(-kMax, std::fmin(x, kMax));
    const uint8_t ours = flashhip::fp8_e5m2_from_float_software(x).bits;
    ASSERT_EQ(ours, c10::Float8_e5m2(clamped).x) << "x=" << x;
  }
  for (int code = 0; code < 256; ++code) {
    const float ours = flashhip::to_float(flashhip::fp8_e5m2_t{static_cast<uint8_t>(code)});
    const float theirs = static_cast<float>(c10::Float8_e5m2(static_cast<uint8_t>(code), c10::Float8_e5m2::from_bits()));
    if (std::isnan(theirs)) {
      EXPECT_TRUE(std::isnan(ours)) << code;
    } else {
      EXPECT_EQ(ours, theirs) << code;
      // Finite codes round-trip.
      if (std::isfinite(theirs)) EXPECT_EQ(flashhip::fp8_e5m2_from_float_software(theirs).bits, code) << code;
    }
  }
  EXPECT_TRUE(std::isnan(flashhip::to_float(flashhip::fp8_e5m2_from_float_software(std::nanf("")))));
  EXPECT_EQ(flashhip::to_float(flashhip::fp8_e5m2_from_float_software(INFINITY)), kMax);
  EXPECT_EQ(flashhip::to_float(flashhip::fp8_e5m2_from_float_software(-1e30f)), -kMax);
  EXPECT_EQ(flashhip::to_float(flashhip::fp8_e5m2_from_float_software(61439.0f)), kMax);
}

TEST(Bf16, RoundsToNearestEven) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (int i = 0; i < 100000; ++i) {
    const float x = normal(rng) * 1000;
    EXPECT_EQ(flashhip::bf16_from_float(x).bits, c10::BFloat16(x).x);
  }
}

}  // namespace
