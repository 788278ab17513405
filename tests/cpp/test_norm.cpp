// The normalisation ops called through the C++ front-end (the dispatcher), against ATen.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "flashhip/api.h"
#include "test_util.h"

namespace {

using flashhip::testing::devices;
using flashhip::testing::error_of;

at::Tensor rms_reference(const at::Tensor& x, const at::Tensor& w, double eps, bool gemma) {
  const auto xf = x.to(at::kFloat);
  const auto wf = gemma ? w.to(at::kFloat) + 1 : w.to(at::kFloat);
  return xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps) * wf;
}

TEST(Norm, RmsnormMatchesAtenOnEveryDevice) {
  for (const auto& device : devices()) {
    for (const auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
      const auto opts = at::TensorOptions().device(device).dtype(dtype);
      const auto x = at::randn({37, 1000}, opts);
      const auto w = at::randn({1000}, opts);
      auto out = at::full({37, 1000}, std::nan(""), opts);
      flashhip::rmsnorm(out, x, w, 1e-6, true);
      const auto ref = rms_reference(x, w, 1e-6, true);
      const double tol = dtype == at::kFloat ? 1e-5 : 2e-2;
      EXPECT_TRUE(at::allclose(out.to(at::kFloat), ref, tol, tol)) << device << " " << dtype;
    }
  }
}

TEST(Norm, FusedAddRmsnormUpdatesBothTensors) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device).dtype(at::kFloat);
    auto x = at::randn({5, 4096}, opts);
    auto r = at::randn({5, 4096}, opts);
    const auto w = at::randn({4096}, opts);
    const auto sum = x + r;
    flashhip::fused_add_rmsnorm(x, r, w, 1e-6, false);
    EXPECT_TRUE(at::allclose(r, sum));
    EXPECT_TRUE(at::allclose(x, rms_reference(sum, w, 1e-6, false), 1e-5, 1e-5));
  }
}

TEST(Norm, FusedAddRmsnormOfTheFp32Sum) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device).dtype(at::kBFloat16);
    auto x = at::randn({7, 4096}, opts);
    auto r = at::randn({7, 4096}, opts);
    const auto w = at::randn({4096}, opts);
    const auto sum = x.to(at::kFloat) + r.to(at::kFloat);
    flashhip::fused_add_rmsnorm(x, r, w, 1e-6, false, /*fp32_sum=*/true);
    EXPECT_TRUE(at::equal(r, sum.to(at::kBFloat16))) << device;
    EXPECT_TRUE(at::allclose(x.to(at::kFloat), rms_reference(sum, w, 1e-6, false), 2e-2, 2e-2)) << device;
  }
}

TEST(Norm, FusedAddRmsnormQuantOfTheFp32Sum) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device);
    const auto x = at::randn({7, 4096}, opts.dtype(at::kBFloat16));
    auto r = at::randn({7, 4096}, opts.dtype(at::kBFloat16));
    const auto w = at::randn({4096}, opts.dtype(at::kBFloat16));
    const auto scale = at::full({1}, 0.02, opts.dtype(at::kFloat));
    const auto x_before = x.clone();
    const auto sum = x.to(at::kFloat) + r.to(at::kFloat);
    auto out = at::empty({7, 4096}, opts.dtype(at::kFloat8_e4m3fn));
    flashhip::fused_add_rmsnorm_quant(out, x, r, w, scale, 1e-6, false, /*fp32_sum=*/true);
    EXPECT_TRUE(at::equal(r, sum.to(at::kBFloat16))) << device;
    EXPECT_TRUE(at::equal(x, x_before)) << device;
    const auto want = (rms_reference(sum, w, 1e-6, false) / scale).clamp(-448, 448);
    const auto values = out.to(at::kFloat);
    // Within one e4m3 step of the saturated quotient (3 mantissa bits, subnormal quantum 2^-9).
    const auto step = at::maximum(want.abs(), values.abs()) * 0.125 + 0x1p-9;
    EXPECT_TRUE((values - want).abs().le(step).all().item<bool>()) << device;
  }
}

TEST(Norm, RmsnormPerHeadOfAFusedQkvView) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device).dtype(at::kBFloat16);
    const auto qkv = at::randn({9, 12 * 128}, opts);
    auto q = qkv.narrow(1, 0, 8 * 128).view({9, 8, 128});  // heads 128 apart, tokens 1536
    const auto w = at::randn({128}, opts);
    const auto want = rms_reference(q, w, 1e-6, false);
    flashhip::rmsnorm(q, q, w, 1e-6, false);
    EXPECT_TRUE(at::allclose(q.to(at::kFloat), want, 2e-2, 2e-2)) << device;
  }
}

TEST(Norm, LayernormMatchesAten) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device).dtype(at::kFloat);
    const auto x = at::randn({9, 513}, opts);
    const auto w = at::randn({513}, opts);
    const auto b = at::randn({513}, opts);
    auto out = at::empty_like(x).fill_(std::nan(""));
    flashhip::layernorm(out, x, w, b, 1e-5);
    const auto ref = at::layer_norm(x, {513}, w, b, 1e-5);
    EXPECT_TRUE(at::allclose(out, ref, 1e-4, 1e-4)) << device;
  }
}

TEST(Norm, RmsnormQuantWritesSaturatedFp8) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device);
    const auto x = at::randn({3, 256}, opts.dtype(at::kBFloat16)) * 100;
    const auto w = at::randn({256}, opts.dtype(at::kBFloat16));
    const auto scale = at::full({1}, 0.01, opts.dtype(at::kFloat));  // pushes values past 448
    auto out = at::empty({3, 256}, opts.dtype(at::kFloat8_e4m3fn));
    flashhip::rmsnorm_quant(out, x, w, scale, 1e-6, false);
    const auto values = out.to(at::kFloat);
    EXPECT_LE(values.abs().max().item<float>(), 448.0f);
    EXPECT_EQ(values.isnan().sum().item<int64_t>(), 0);
  }
}

TEST(Norm, LayernormQuantIsTheSaturatedQuotientOfLayernorm) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device);
    const auto x = at::randn({3, 513}, opts.dtype(at::kBFloat16)) * 3 + 2;
    const auto w = at::randn({513}, opts.dtype(at::kFloat));
    const auto b = at::randn({513}, opts.dtype(at::kFloat));
    const auto scale = at::full({1}, 0.01, opts.dtype(at::kFloat));  // pushes values past 448
    auto out = at::empty({3, 513}, opts.dtype(at::kFloat8_e4m3fn));
    flashhip::layernorm_quant(out, x, w, b, scale, 1e-5);
    const auto want = (at::layer_norm(x.to(at::kFloat), {513}, w, b, 1e-5) / scale).clamp(-448, 448);
    const auto values = out.to(at::kFloat);
    EXPECT_EQ(values.abs().max().item<float>(), 448.0f);
    // Within one e4m3 step of the saturated quotient (3 mantissa bits, subnormal quantum 2^-9).
    const auto step = at::maximum(want.abs(), values.abs()) * 0.125 + 0x1p-9;
    EXPECT_TRUE((values - want).abs().le(step).all().item<bool>());
  }
}

TEST(Norm, BadArgumentsAreNamedAndNothingIsWritten) {
  const auto x = at::randn({4, 64});
  const auto w = at::randn({63});
  auto out = at::full({4, 64}, 7.0);
  const auto message = error_of([&] { flashhip::rmsnorm(out, x, w, 1e-6, false); });
  EXPECT_NE(message.find("'weight'"), std::string::npos) << message;
  EXPECT_NE(message.find("[64]"), std::string::npos) << message;
  EXPECT_TRUE(out.eq(7.0).all().item<bool>());

  auto out_bad_dtype = at::empty({4, 64}, at::kHalf);
  const auto message2 = error_of([&] { flashhip::rmsnorm(out_bad_dtype, x, at::randn({64}), 1e-6, false); });
  EXPECT_NE(message2.find("'out'"), std::string::npos) << message2;
}

}  // namespace
