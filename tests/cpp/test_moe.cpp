// The MoE routing ops called through the C++ front-end (the dispatcher).
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <tuple>

#include "flashhip/api.h"
#include "test_util.h"

namespace {

using flashhip::testing::devices;
using flashhip::testing::error_of;

// Softmax top-k by ATen: the k largest logits (distinct here), weights from the softmax.
std::tuple<at::Tensor, at::Tensor> softmax_topk_reference(const at::Tensor& logits, int64_t k) {
  const auto probs = at::softmax(logits.to(at::kFloat), -1);
  auto [values, ids] = at::topk(probs, k, -1, true, true);
  return {values, ids.to(at::kInt)};
}

TEST(Moe, SoftmaxTopkMatchesAten) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device);
    // A permutation per token: distinct logits, so the choice is unambiguous.
    const auto logits = at::argsort(at::rand({37, 60}, opts), /*dim=*/-1, /*descending=*/false).to(at::kFloat) * 0.05;
    auto weights = at::full({37, 6}, std::nan(""), opts);
    auto ids = at::full({37, 6}, -7, opts.dtype(at::kInt));
    flashhip::moe_topk(weights, ids, logits, std::nullopt, "softmax", 1, 1, false, 1.0);
    const auto [ref_weights, ref_ids] = softmax_topk_reference(logits, 6);
    EXPECT_TRUE(at::equal(ids, ref_ids)) << device;
    EXPECT_TRUE(at::allclose(weights, ref_weights, 1e-5, 1e-6)) << device;
  }
}

TEST(Moe, DeepSeekGroupedSigmoidKeepsOnlyKeptGroups) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device);
    const auto logits = at::randn({16, 256}, opts);
    const auto bias = at::randn({256}, opts) * 0.1;
    auto weights = at::empty({16, 8}, opts);
    auto ids = at::empty({16, 8}, opts.dtype(at::kInt));
    flashhip::moe_topk(weights, ids, logits, bias, "sigmoid", 8, 4, true, 2.5);
    // Renormalised then scaled: each row sums to the scaling factor.
    EXPECT_TRUE(at::allclose(weights.sum(-1), at::full({16}, 2.5, opts), 1e-5, 1e-5)) << device;
    // At most 4 distinct groups per token.
    const auto groups = (ids / 32).to(at::kLong).cpu();
    for (int64_t t = 0; t < 16; ++t) {
      EXPECT_LE(std::get<0>(at::_unique(groups[t])).numel(), 4);
    }
  }
}

TEST(Moe, AlignGroupsPairsByExpertPaddedToBlocks) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device).dtype(at::kInt);
    const auto topk_ids = at::tensor({2, 0, 2, 1, 0, 2}, opts).reshape({3, 2});
    const int64_t experts = 4, block = 4;
    auto sorted = at::full({6 + experts * (block - 1)}, -5, opts);
    auto expert_ids = at::full({(6 + experts * (block - 1) + block - 1) / block}, -5, opts);
    auto total = at::full({1}, -5, opts);
    flashhip::moe_align_block_size(topk_ids, experts, block, sorted, expert_ids, total);
    // Expert 0: pairs 1, 4; expert 1: pair 3; expert 2: pairs 0, 2, 5; each padded to 4 with 6.
    const auto expected = at::tensor({1, 4, 6, 6, 3, 6, 6, 6, 0, 2, 5, 6, 6, 6, 6, 6, 6, 6}, opts);
    EXPECT_TRUE(at::equal(sorted, expected)) << device << sorted;
    EXPECT_TRUE(at::equal(expert_ids, at::tensor({0, 1, 2, -1, -1}, opts))) << device << expert_ids;
    EXPECT_EQ(total.item<int32_t>(), 12);
  }
}

TEST(Moe, SumAddsTheSlotsInFp32) {
  for (const auto& device : devices()) {
    const auto opts = at::TensorOptions().device(device);
    const auto input = at::randn({9, 4, 72}, opts).to(at::kBFloat16);
    auto output = at::full({9, 72}, std::nan(""), opts.dtype(at::kBFloat16));
    flashhip::moe_sum(output, input);
    auto expected = at::zeros({9, 72}, opts);
    for (int64_t j = 0; j < 4; ++j) expected = expected + input.select(1, j).to(at::kFloat);
    EXPECT_TRUE(at::equal(output, expected.to(at::kBFloat16))) << device;
  }
  auto output = at::full({9, 72}, 7.0);
  const auto message = error_of([&] { flashhip::moe_sum(output, at::randn({9, 4, 71})); });
  EXPECT_NE(message.find("'output'"), std::string::npos) << message;
  EXPECT_TRUE(output.eq(7.0).all().item<bool>());
}

TEST(Moe, BadArgumentsAreNamedAndNothingIsWritten) {
  const auto logits = at::randn({4, 64});
  auto weights = at::full({4, 8}, 7.0);
  auto ids = at::full({4, 8}, 7, at::kInt);
  auto message = error_of([&] { flashhip::moe_topk(weights, ids, logits, std::nullopt, "softmax", 3, 1, false, 1.0); });
  EXPECT_NE(message.find("'num_expert_group'"), std::string::npos) << message;
  message = error_of([&] { flashhip::moe_topk(weights, ids, logits, at::randn({63}), "sigmoid", 1, 1, false, 1.0); });
  EXPECT_NE(message.find("'correction_bias'"), std::string::npos) << message;
  message = error_of([&] { flashhip::moe_topk(weights, ids, logits, std::nullopt, "relu", 1, 1, false, 1.0); });
  EXPECT_NE(message.find("'scoring_func'"), std::string::npos) << message;
  EXPECT_TRUE(weights.eq(7.0).all().item<bool>());
  EXPECT_TRUE(ids.eq(7).all().item<bool>());

  auto sorted = at::full({10}, 7, at::kInt);  // too small for 8 pairs and 4 experts of block 4
  auto expert_ids = at::full({8}, 7, at::kInt);
  auto total = at::full({1}, 7, at::kInt);
  message = error_of([&] {
    flashhip::moe_align_block_size(at::zeros({4, 2}, at::kInt), 4, 4, sorted, expert_ids, total);
  });
  EXPECT_NE(message.find("'sorted_token_ids'"), std::string::npos) << message;
  EXPECT_TRUE(sorted.eq(7).all().item<bool>());
}

}  // namespace
