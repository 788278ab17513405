// Torch-free: moe_topk's routing kernels forced through MoeTopkParams::layout. DeepSeek-V3's
// routing runs the contiguous kernel with its shape compiled in by default, the contiguous
// kernel with the shape read at run time, or the strided kernel; sigmoid routing takes the same
// float ops on all three, so weights and ids agree bit for bit, and the launch info says which
// kernel ran.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "flashhip/kernels/moe/moe_topk.h"
#include "flashhip/platform/runtime.h"

namespace flashhip {
namespace {

constexpr int kTokens = 333, kExperts = 256, kTopk = 8;

struct Routed {
  std::vector<float> weights;
  std::vector<int32_t> ids;
  kernels::MoeTopkLaunchInfo info;
};

Routed route(const float* gating, const float* bias, kernels::MoeTopkLayout layout) {
  float* weights = nullptr;
  int32_t* ids = nullptr;
  EXPECT_EQ(gpuMalloc(reinterpret_cast<void**>(&weights), sizeof(float) * kTokens * kTopk), gpuSuccess);
  EXPECT_EQ(gpuMalloc(reinterpret_cast<void**>(&ids), sizeof(int32_t) * kTokens * kTopk), gpuSuccess);
  kernels::MoeTopkParams p;
  p.topk_weights = weights;
  p.topk_ids = ids;
  p.gating = gating;
  p.correction_bias = bias;
  p.weights_row_stride = kTopk;
  p.ids_row_stride = kTopk;
  p.gating_row_stride = kExperts;
  p.tokens = kTokens;
  p.experts = kExperts;
  p.k = kTopk;
  p.num_groups = 8;
  p.topk_group = 4;
  p.scoring = kernels::MoeScoring::kSigmoid;
  p.renormalize = true;
  p.routed_scaling_factor = 2.5f;
  p.layout = layout;
  Routed r;
  EXPECT_TRUE(kernels::launch_moe_topk(p, nullptr, &r.info).ok());
  EXPECT_EQ(gpuDeviceSynchronize(), gpuSuccess);
  r.weights.resize(kTokens * kTopk);
  r.ids.resize(kTokens * kTopk);
  EXPECT_EQ(gpuMemcpyToHost(r.weights.data(), weights, sizeof(float) * r.weights.size()), gpuSuccess);
  EXPECT_EQ(gpuMemcpyToHost(r.ids.data(), ids, sizeof(int32_t) * r.ids.size()), gpuSuccess);
  (void)gpuFree(weights);
  (void)gpuFree(ids);
  return r;
}

}  // namespace

TEST(MoeTopkLayouts, DeepSeekV3AgreesOnEveryLayout) {
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  std::vector<float> gating(kTokens * kExperts), bias(kExperts);
  for (float& g : gating) g = normal(rng);
  for (float& b : bias) b = 0.05f * normal(rng);
  float *d_gating = nullptr, *d_bias = nullptr;
  ASSERT_EQ(gpuMalloc(reinterpret_cast<void**>(&d_gating), sizeof(float) * gating.size()), gpuSuccess);
  ASSERT_EQ(gpuMalloc(reinterpret_cast<void**>(&d_bias), sizeof(float) * bias.size()), gpuSuccess);
  ASSERT_EQ(gpuMemcpyToDevice(d_gating, gating.data(), sizeof(float) * gating.size()), gpuSuccess);
  ASSERT_EQ(gpuMemcpyToDevice(d_bias, bias.data(), sizeof(float) * bias.size()), gpuSuccess);

  const Routed fixed = route(d_gating, d_bias, kernels::MoeTopkLayout::kAuto);
  const Routed runtime = route(d_gating, d_bias, kernels::MoeTopkLayout::kContiguousRuntimeShape);
  const Routed strided = route(d_gating, d_bias, kernels::MoeTopkLayout::kStrided);
  EXPECT_TRUE(fixed.info.contiguous && fixed.info.fixed_shape);
  EXPECT_TRUE(runtime.info.contiguous && !runtime.info.fixed_shape);
  EXPECT_FALSE(strided.info.contiguous);
  for (const Routed* other : {&runtime, &strided}) {
    EXPECT_EQ(other->ids, fixed.ids);
    EXPECT_EQ(std::memcmp(other->weights.data(), fixed.weights.data(), sizeof(float) * fixed.weights.size()), 0);
  }
  (void)gpuFree(d_gating);
  (void)gpuFree(d_bias);
}

}  // namespace flashhip
