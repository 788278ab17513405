// The portable fp8 conversions (used on GPUs whose native flavour differs) agree with c10's.
#include <gtest/gtest.h>

#include <c10/util/BFloat16.h>
#include <c10/util/Float8_e4m3fn.h>
#include <c10/util/Float8_e4m3fnuz.h>

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

TEST(Bf16, RoundsToNearestEven) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (int i = 0; i < 100000; ++i) {
    const float x = normal(rng) * 1000;
    EXPECT_EQ(flashhip::bf16_from_float(x).bits, c10::BFloat16(x).x);
  }
}

}  // namespace
