// fp8_gemm and per_token_group_quant_fp8 through the C++ front-end (the dispatcher), against
// hand-written references.
#include <gtest/gtest.h>

#include <cmath>

#include "flashhip/api.h"
#include "test_util.h"

namespace {

using flashhip::testing::error_of;

// out[m, n] = sum_kb a_scale[m, kb] * b_scale[n / 128, kb] * sum_{k in kb} a[m, k] * b[n, k], in double.
at::Tensor blockwise_reference(const at::Tensor& a, const at::Tensor& b, const at::Tensor& as, const at::Tensor& bs) {
  const auto af = a.to(at::kDouble), bf = b.to(at::kDouble), asd = as.to(at::kDouble), bsd = bs.to(at::kDouble);
  const int64_t m = a.size(0), n = b.size(0), k = a.size(1);
  auto out = at::zeros({m, n}, at::kDouble);
  auto acc = out.accessor<double, 2>();
  auto A = af.accessor<double, 2>();
  auto B = bf.accessor<double, 2>();
  auto SA = asd.accessor<double, 2>();
  auto SB = bsd.accessor<double, 2>();
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double total = 0.0;
      for (int64_t kb = 0; kb < k / 128; ++kb) {
        double block = 0.0;
        for (int64_t kk = kb * 128; kk < (kb + 1) * 128; ++kk) block += A[i][kk] * B[j][kk];
        total += SA[i][kb] * SB[j / 128][kb] * block;
      }
      acc[i][j] = total;
    }
  }
  return out;
}

TEST(Fp8Gemm, SmallGemmMatchesHandReferenceInBothLayouts) {
  const int64_t m = 5, n = 192, k = 256;  // N not a multiple of 128: a partial last b_scale row
  for (const auto flavour : {at::kFloat8_e4m3fn, at::kFloat8_e4m3fnuz}) {
    for (const bool mn_major : {false, true}) {
      const auto a = mn_major ? at::randn({k, m}).to(flavour).t() : at::randn({m, k}).to(flavour);
      const auto b = mn_major ? at::randn({k, n}).to(flavour).t() : at::randn({n, k}).to(flavour);
      const auto as = mn_major ? at::randn({k / 128, m}).t() : at::randn({m, k / 128});
      const auto bs = at::randn({2, k / 128});
      auto out = at::full({m, n}, std::nan(""), at::kBFloat16);
      flashhip::fp8_gemm(out, a, b, as, bs);
      const auto ref = blockwise_reference(a, b, as, bs);
      EXPECT_TRUE(at::allclose(out.to(at::kDouble), ref, 2e-2, 1e-3)) << flavour << " mn_major " << mn_major;
    }
  }
}

TEST(Fp8Gemm, BadArgumentsAreNamedAndNothingIsWritten) {
  const auto a = at::randn({4, 256}).to(at::kFloat8_e4m3fn);
  const auto b = at::randn({64, 256}).to(at::kFloat8_e4m3fn);
  const auto as = at::ones({4, 2});
  const auto bs = at::ones({1, 2});
  auto out = at::full({4, 64}, 7.0, at::kBFloat16);
  const auto bad_k = error_of([&] {
    flashhip::fp8_gemm(out, at::randn({4, 200}).to(at::kFloat8_e4m3fn), at::randn({64, 200}).to(at::kFloat8_e4m3fn),
                       as, bs);
  });
  EXPECT_NE(bad_k.find("multiple of 128"), std::string::npos) << bad_k;
  const auto bad_scale = error_of([&] { flashhip::fp8_gemm(out, a, b, at::ones({4, 3}), bs); });
  EXPECT_NE(bad_scale.find("'a_scale'"), std::string::npos) << bad_scale;
  const auto mixed = error_of([&] { flashhip::fp8_gemm(out, a, b.to(at::kFloat).to(at::kFloat8_e4m3fnuz), as, bs); });
  EXPECT_NE(mixed.find("'b'"), std::string::npos) << mixed;
  EXPECT_TRUE(out.eq(7.0).all().item<bool>());
}

TEST(GroupQuant, QuantisesEachGroupByItsAmax) {
  const auto x = at::randn({3, 256}, at::kBFloat16) * 10;
  auto q = at::empty({3, 256}, at::kFloat8_e4m3fn);
  auto s = at::empty({2, 3}).t();  // M-major
  flashhip::per_token_group_quant_fp8(q, s, x, 128, 1e-10, true);
  const auto amax = x.to(at::kFloat).view({3, 2, 128}).abs().amax(-1);
  EXPECT_TRUE(at::allclose(s, amax / 448.0));
  const auto deq = q.to(at::kFloat).view({3, 2, 128}) * s.unsqueeze(-1);
  EXPECT_TRUE(at::allclose(deq.view({3, 256}), x.to(at::kFloat), 0.07, 1e-2));
  EXPECT_EQ(q.to(at::kFloat).abs().amax().item<float>(), 448.0f);

  auto row_major = at::empty({3, 2});
  const auto message = error_of([&] { flashhip::per_token_group_quant_fp8(q, row_major, x, 128, 1e-10, true); });
  EXPECT_NE(message.find("'scale_m_major'"), std::string::npos) << message;
}

}  // namespace
