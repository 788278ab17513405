// The rotary embedding called through the C++ front-end (the dispatcher), against ATen math.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>

#include "flashhip/api.h"
#include "test_util.h"

namespace {

using flashhip::testing::devices;
using flashhip::testing::error_of;

// cos | sin of position * theta^(-2i/rotary_dim), fp32 [max_positions, rotary_dim].
at::Tensor plain_cache(int64_t max_positions, int64_t rotary_dim, const at::TensorOptions& opts) {
  const auto i = at::arange(0, rotary_dim, 2, opts.dtype(at::kDouble));
  const auto inv_freq = at::pow(10000.0, -i / static_cast<double>(rotary_dim));
  const auto angles = at::outer(at::arange(max_positions, opts.dtype(at::kDouble)), inv_freq);
  return at::cat({angles.cos(), angles.sin()}, -1).to(at::kFloat);
}

// x [nnz, heads, head_dim] rotated in fp32: NeoX pairs (i, i + r/2) or GPT-J pairs (2i, 2i+1).
at::Tensor rope_reference(const at::Tensor& x, const at::Tensor& cache, const at::Tensor& positions, bool interleave) {
  const int64_t rot = cache.size(1);
  const auto rows = cache.index_select(0, positions.to(at::kLong)).unsqueeze(1);  // [nnz, 1, rot]
  const auto cos = rows.narrow(-1, 0, rot / 2);
  const auto sin = rows.narrow(-1, rot / 2, rot / 2);
  const auto xf = x.to(at::kFloat);
  const auto r = xf.narrow(-1, 0, rot);
  at::Tensor x1, x2;
  if (interleave) {
    x1 = r.slice(-1, 0, rot, 2);
    x2 = r.slice(-1, 1, rot, 2);
  } else {
    x1 = r.narrow(-1, 0, rot / 2);
    x2 = r.narrow(-1, rot / 2, rot / 2);
  }
  const auto y1 = x1 * cos - x2 * sin;
  const auto y2 = x2 * cos + x1 * sin;
  const auto rotated = interleave ? at::stack({y1, y2}, -1).flatten(-2) : at::cat({y1, y2}, -1);
  return at::cat({rotated, xf.narrow(-1, rot, x.size(-1) - rot)}, -1);
}

TEST(Rope, MatchesAtenOnEveryDeviceStyleAndDtype) {
  for (const auto& device : devices()) {
    for (const auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
      for (const bool interleave : {false, true}) {
        const auto opts = at::TensorOptions().device(device);
        const auto cache = plain_cache(4096, 64, opts);  // partial rotary: 64 of 80
        const auto q = at::randn({19, 8, 80}, opts.dtype(dtype));
        const auto k = at::randn({19, 2, 80}, opts.dtype(dtype));
        const auto positions = at::randint(0, 4096, {19}, opts.dtype(at::kInt));
        auto q_out = at::full_like(q, std::nan(""));
        auto k_out = at::full_like(k, std::nan(""));
        flashhip::rope(q_out, k_out, q, k, cache, positions, interleave);
        const double tol = dtype == at::kFloat ? 1e-5 : 1.6e-2;
        EXPECT_TRUE(at::allclose(q_out.to(at::kFloat), rope_reference(q, cache, positions, interleave), tol, tol))
            << device << " " << dtype << " interleave " << interleave;
        EXPECT_TRUE(at::allclose(k_out.to(at::kFloat), rope_reference(k, cache, positions, interleave), tol, tol))
            << device << " " << dtype << " interleave " << interleave;
      }
    }
  }
}

TEST(Rope, InPlaceOnViewsOfOneFusedQkvBuffer) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device);
    const int64_t nnz = 7, hq = 4, hk = 2, d = 128;
    auto qkv = at::randn({nnz, (hq + 2 * hk) * d}, opts);
    const auto v_before = qkv.narrow(1, (hq + hk) * d, hk * d).clone();
    auto q = qkv.narrow(1, 0, hq * d).view({nnz, hq, d});
    auto k = qkv.narrow(1, hq * d, hk * d).view({nnz, hk, d});
    const auto cache = plain_cache(64, d, opts);
    const auto positions = at::randint(0, 64, {nnz}, opts.dtype(at::kLong));
    const auto q_expected = rope_reference(q, cache, positions, false);
    const auto k_expected = rope_reference(k, cache, positions, false);
    flashhip::rope(q, k, q, k, cache, positions, false);
    EXPECT_TRUE(at::allclose(q, q_expected, 1e-5, 1e-5)) << device;
    EXPECT_TRUE(at::allclose(k, k_expected, 1e-5, 1e-5)) << device;
    EXPECT_TRUE(at::equal(qkv.narrow(1, (hq + hk) * d, hk * d), v_before)) << "v must be left alone on " << device;
  }
}

TEST(Rope, ZeroTokensDoesNothing) {
  const auto q = at::empty({0, 4, 64});
  const auto k = at::empty({0, 1, 64});
  auto q_out = at::empty_like(q);
  auto k_out = at::empty_like(k);
  flashhip::rope(q_out, k_out, q, k, plain_cache(8, 64, {}), at::empty({0}, at::kLong), false);
}

TEST(Rope, BadArgumentsAreNamedAndNothingIsWritten) {
  const auto q = at::randn({3, 4, 64});
  const auto k = at::randn({3, 2, 64});
  const auto cache = plain_cache(16, 64, {});
  auto q_out = at::full_like(q, 7.0);
  auto k_out = at::full_like(k, 7.0);

  const auto beyond = error_of([&] {
    flashhip::rope(q_out, k_out, q, k, cache, at::tensor({0, 16, 2}, at::kLong), false);
  });
  EXPECT_NE(beyond.find("'positions' holds 16 at index 1"), std::string::npos) << beyond;

  const auto odd = error_of([&] {
    flashhip::rope(q_out, k_out, q, k, plain_cache(16, 64, {}).narrow(1, 0, 63), at::zeros({3}, at::kLong), false);
  });
  EXPECT_NE(odd.find("'cos_sin_cache'"), std::string::npos) << odd;
  EXPECT_NE(odd.find("even"), std::string::npos) << odd;

  auto k_short = at::randn({2, 2, 64});
  auto k_short_out = at::empty_like(k_short);
  const auto tokens = error_of([&] {
    flashhip::rope(q_out, k_short_out, q, k_short, cache, at::zeros({3}, at::kLong), false);
  });
  EXPECT_NE(tokens.find("'k' has 2 tokens but 'q' has 3"), std::string::npos) << tokens;

  EXPECT_TRUE(q_out.eq(7.0).all().item<bool>());
  EXPECT_TRUE(k_out.eq(7.0).all().item<bool>());
}

TEST(RopeSetKvBuffer, WritesRotatedKAndVIntoTheirRowsOnly) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device);
    const int64_t nnz = 5, hq = 4, hk = 2, d = 64, slots = 12;
    auto qkv = at::randn({nnz, (hq + 2 * hk) * d}, opts.dtype(at::kBFloat16));
    auto q = qkv.narrow(1, 0, hq * d).view({nnz, hq, d});
    auto k = qkv.narrow(1, hq * d, hk * d).view({nnz, hk, d});
    const auto v = qkv.narrow(1, (hq + hk) * d, hk * d).view({nnz, hk, d});
    const auto cache = plain_cache(64, 32, opts);  // partial rotary: the cache takes whole heads
    const auto positions = at::randint(0, 64, {nnz}, opts.dtype(at::kLong));
    const auto loc = at::tensor({7, 0, 11, 3, 5}, opts.dtype(at::kLong));
    auto k_cache = at::full({slots, hk, d}, std::nan(""), opts.dtype(at::kBFloat16));
    auto v_cache = at::full({slots, hk, d}, std::nan(""), opts.dtype(at::kBFloat16));
    const auto k_expected = rope_reference(k, cache, positions, false);
    flashhip::rope_set_kv_buffer(q, k, k_cache, v_cache, q, k, v, cache, positions, loc, false);
    EXPECT_TRUE(at::allclose(k.to(at::kFloat), k_expected, 1.6e-2, 1.6e-2)) << device;
    EXPECT_TRUE(at::equal(k_cache.index_select(0, loc), k)) << device;
    EXPECT_TRUE(at::equal(v_cache.index_select(0, loc), v)) << device;
    const auto others = at::tensor({1, 2, 4, 6, 8, 9, 10}, opts.dtype(at::kLong));
    EXPECT_TRUE(k_cache.index_select(0, others).isnan().all().item<bool>()) << device;
    EXPECT_TRUE(v_cache.index_select(0, others).isnan().all().item<bool>()) << device;
  }
}

TEST(RopeSetKvBuffer, BadArgumentsAreNamedAndNothingIsWritten) {
  auto q = at::randn({3, 4, 64});
  auto k = at::randn({3, 2, 64});
  const auto v = at::randn({3, 2, 64});
  const auto cache = plain_cache(16, 64, {});
  const auto positions = at::zeros({3}, at::kLong);
  auto k_cache = at::full({4, 2, 64}, 7.0);
  auto v_cache = at::full({4, 2, 64}, 7.0);
  const auto q_before = q.clone();
  const auto repeated = error_of([&] {
    flashhip::rope_set_kv_buffer(q, k, k_cache, v_cache, q, k, v, cache, positions, at::tensor({1, 3, 1}, at::kLong));
  });
  EXPECT_NE(repeated.find("'cache_loc' holds row 1 at indices 0 and 2"), std::string::npos) << repeated;
  auto fp8_cache = at::zeros({4, 2, 64}, at::kFloat8_e4m3fn);
  const auto fp8 = error_of([&] {
    flashhip::rope_set_kv_buffer(q, k, fp8_cache, v_cache, q, k, v, cache, positions, at::tensor({0, 1, 2}, at::kLong));
  });
  EXPECT_NE(fp8.find("'k_cache' must have the dtype of 'k'"), std::string::npos) << fp8;
  EXPECT_TRUE(at::equal(q, q_before));
  EXPECT_TRUE(k_cache.eq(7.0).all().item<bool>() && v_cache.eq(7.0).all().item<bool>());
}

// MLA shapes through the front-end: the rope parts rotated then scaled, the nope parts scaled,
// all saturated to e4m3fn (ATen's clamp-then-cast as the reference).
TEST(RopeQuantizeFp8, MlaPartsMatchAtenAndSaturate) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device);
    const int64_t nnz = 5, heads = 8, rope = 64, nope = 128;
    const auto q_rope = (at::randn({nnz, heads, rope}, opts) * 4).to(at::kBFloat16);
    const auto k_rope = (at::randn({nnz, rope}, opts) * 4).to(at::kBFloat16);
    const auto q_nope = (at::randn({nnz, heads, nope}, opts) * 4).to(at::kBFloat16);
    const auto k_nope = (at::randn({nnz, nope}, opts) * 4).to(at::kBFloat16);
    const auto cache = plain_cache(32, rope, opts);
    const auto positions = at::randint(0, 32, {nnz}, opts.dtype(at::kLong));
    const auto fp8 = opts.dtype(at::kFloat8_e4m3fn);
    auto q_rope_out = at::empty({nnz, heads, rope}, fp8), k_rope_out = at::empty({nnz, rope}, fp8);
    auto q_nope_out = at::empty({nnz, heads, nope}, fp8), k_nope_out = at::empty({nnz, nope}, fp8);
    flashhip::rope_quantize_fp8(q_rope_out, k_rope_out, q_nope_out, k_nope_out, q_rope, k_rope, q_nope, k_nope, cache,
                                positions, false, 100.0, 0.5);
    const auto quantised = [](const at::Tensor& x, double scale) {
      return (x.to(at::kFloat) * scale).clamp(-448, 448).to(at::kFloat8_e4m3fn).to(at::kFloat);
    };
    const auto q_expected = quantised(rope_reference(q_rope, cache, positions, false), 100.0);
    const auto k_expected = quantised(rope_reference(k_rope.unsqueeze(1), cache, positions, false).squeeze(1), 0.5);
    // One fp8 step at most (a GPU's FMA may move an fp32 rotation across a rounding boundary).
    EXPECT_TRUE(at::allclose(q_rope_out.to(at::kFloat), q_expected, 0.13, 1e-3)) << device;
    EXPECT_TRUE(at::allclose(k_rope_out.to(at::kFloat), k_expected, 0.13, 1e-3)) << device;
    EXPECT_TRUE(at::equal(q_nope_out.to(at::kFloat), quantised(q_nope, 100.0))) << device;
    EXPECT_TRUE(at::equal(k_nope_out.to(at::kFloat), quantised(k_nope, 0.5))) << device;
    EXPECT_EQ(q_nope_out.to(at::kFloat).abs().max().item<float>(), 448.0f) << device;
  }
}

TEST(RopeQuantizeFp8, BadArgumentsAreNamedAndNothingIsWritten) {
  const auto q_rope = at::randn({3, 4, 64}).to(at::kHalf);
  const auto k_rope = at::randn({3, 2, 64}).to(at::kHalf);
  const auto q_nope = at::randn({3, 4, 16}).to(at::kHalf);
  const auto k_nope = at::randn({3, 2, 16}).to(at::kHalf);
  const auto cache = plain_cache(16, 64, {});
  auto q_rope_out = at::zeros({3, 4, 64}, at::kFloat8_e4m3fn), k_rope_out = at::zeros({3, 2, 64}, at::kFloat8_e4m3fn);
  auto q_nope_out = at::zeros({3, 4, 16}, at::kFloat8_e4m3fn), k_nope_out = at::zeros({3, 2, 16}, at::kFloat8_e4m3fn);
  const auto outside = error_of([&] {
    flashhip::rope_quantize_fp8(q_rope_out, k_rope_out, q_nope_out, k_nope_out, q_rope, k_rope, q_nope, k_nope, cache,
                                at::tensor({0, 16, 1}, at::kLong));
  });
  EXPECT_NE(outside.find("'pos_ids' holds 16 at index 1"), std::string::npos) << outside;
  auto bf16_out = at::zeros({3, 2, 64}, at::kBFloat16);
  const auto not_fp8 = error_of([&] {
    flashhip::rope_quantize_fp8(q_rope_out, bf16_out, q_nope_out, k_nope_out, q_rope, k_rope, q_nope, k_nope, cache,
                                at::tensor({0, 1, 2}, at::kLong));
  });
  EXPECT_NE(not_fp8.find("'k_rope_out' must have dtype Float8_e4m3fn"), std::string::npos) << not_fp8;
  for (const auto* out : {&q_rope_out, &k_rope_out, &q_nope_out, &k_nope_out}) {
    EXPECT_TRUE(out->to(at::kFloat).eq(0).all().item<bool>());
  }
}

}  // namespace
