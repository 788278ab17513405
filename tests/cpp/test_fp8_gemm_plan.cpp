// fp8_gemm's Hopper launch plan (kernels/gemm/fp8_gemm_plan_sm90.h) on the host: the heuristic's
// choices on the challenge shapes are the ones measured fastest on the H200 (the launcher's
// comments give the numbers), and every plan's grid, stream-K split and workspace are consistent.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "flashhip/kernels/common/tile_scheduler.cuh"
#include "flashhip/kernels/gemm/fp8_gemm_plan_sm90.h"

namespace {

using flashhip::DType;
using flashhip::kernels::Fp8GemmParams;
namespace plan_sm90 = flashhip::kernels::sm90_gemm;

constexpr int kH200Sms = 132;

// K-contiguous operands at 16-byte aligned (fake) addresses: the plan reads only their alignment.
Fp8GemmParams params(int64_t m, int64_t n, int64_t k, DType out = DType::kBFloat16) {
  Fp8GemmParams p;
  p.a = reinterpret_cast<const void*>(uintptr_t{1} << 20);
  p.b = reinterpret_cast<const void*>(uintptr_t{1} << 30);
  p.m = m, p.n = n, p.k = k, p.out_dtype = out;
  p.a_stride_m = k, p.b_stride_n = k, p.out_stride_m = n;
  p.a_scale_stride_m = k / 128, p.b_scale_stride_nb = k / 128;
  return p;
}

struct Want {
  int m, n, k;
  int block_m, split_k;
  bool stream_k;
  int grid;  // 0: not checked
  int block_n = plan_sm90::kBlockN;
};

TEST(Fp8GemmPlanSm90, ChallengeShapesTakeTheMeasuredPlans) {
  const std::vector<Want> wants = {
      // stream-K where the tiles are just past a whole number of waves
      {1024, 4608, 7168, 256, 1, true, 132},  {6144, 1536, 7168, 256, 1, true, 132},
      {6144, 4608, 7168, 256, 1, true, 132},
      // data-parallel where stream-K (and 128x192 tiles) measured slower
      {1024, 1536, 7168, 128, 1, false, 96},  {1024, 7168, 2304, 256, 1, false, 132},
      {6144, 576, 7168, 256, 1, false, 120},  {6144, 512, 7168, 256, 1, false, 96},
      {1024, 3072, 1536, 256, 1, false, 96},  {8192, 8192, 8192, 256, 1, false, 132},
      // split-K with few tiles and long K
      {1024, 576, 7168, 128, 3, false, 120},  {1024, 512, 7168, 128, 4, false, 128},
      {128, 7168, 2048, 128, 2, false, 112},  {128, 512, 7168, 128, 14, false, 0},
      // decode: the swapped kernel, tokens as wgmma's N
      {1, 7168, 7168, 8, 7, false, 132},      {64, 7168, 7168, 64, 2, false, 112},
  };
  for (const Want& w : wants) {
    const auto plan = plan_sm90::make_plan(params(w.m, w.n, w.k), kH200Sms);
    const std::string shape = std::to_string(w.m) + "x" + std::to_string(w.n) + "x" + std::to_string(w.k);
    EXPECT_EQ(plan.block_m, w.block_m) << shape;
    EXPECT_EQ(plan.block_n, w.block_n) << shape;
    EXPECT_EQ(plan.split_k, w.split_k) << shape;
    EXPECT_EQ(plan.stream_k, w.stream_k) << shape;
    if (w.grid) {
      EXPECT_EQ(plan.grid, w.grid) << shape;
    }
  }
}

TEST(Fp8GemmPlanSm90, PlansAreConsistent) {
  for (int m : {1, 7, 64, 65, 128, 129, 300, 1024, 2048, 6144})
    for (int n : {64, 576, 1536, 4608, 7168})
      for (int k : {128, 1152, 2048, 7168})
        for (DType out : {DType::kBFloat16, DType::kFloat32})
          for (int force_sk : {-1, 0, 1})
            for (int force_mc : {-1, 0, 1, 2})
              for (int force_bn : {0, 192}) {
              Fp8GemmParams p = params(m, n, k, out);
              p.force_stream_k = force_sk;
              p.force_multicast = force_mc;
              p.force_block_n = force_bn;
              // 63 resident 2-CTA clusters: fewer than 132 / 2, as when a GPC has an odd SM count
              const auto plan = plan_sm90::make_plan(p, kH200Sms, 63);
              const std::string what = std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
                                       (out == DType::kFloat32 ? " fp32" : " bf16") + " sk " + std::to_string(force_sk) +
                                       " mc " + std::to_string(force_mc) + " bn " + std::to_string(force_bn);
              const int cluster = plan.cluster_m * plan.cluster_n;
              ASSERT_GE(plan.grid, 1) << what;
              ASSERT_LE(plan.grid, kH200Sms) << what;
              ASSERT_EQ(plan.grid % cluster, 0) << what;
              ASSERT_LE(plan.grid / cluster, cluster > 1 ? 63 : kH200Sms) << what;
              ASSERT_EQ(plan.sched_tiles_m, (plan.tiles_m + plan.cluster_m - 1) / plan.cluster_m) << what;
              ASSERT_EQ(plan.sched_tiles_n, (plan.tiles_n + plan.cluster_n - 1) / plan.cluster_n) << what;
              if (force_mc <= 0 || plan.swap_tokens || plan.block_n != plan_sm90::kBlockN) {
                ASSERT_EQ(cluster, 1) << what;
              } else {
                ASSERT_EQ(plan.cluster_m, force_mc == 1 ? 2 : 1) << what;
                ASSERT_EQ(plan.cluster_n, force_mc == 2 ? 2 : 1) << what;
              }
              ASSERT_TRUE(plan.block_n == plan_sm90::kBlockN || plan.block_n == plan_sm90::kWideBlockN) << what;
              if (plan.block_n == plan_sm90::kWideBlockN) {  // data-parallel, no clusters, 128 rows
                ASSERT_EQ(plan.swap_tokens, 0) << what;
                ASSERT_FALSE(plan.stream_k) << what;
                ASSERT_EQ(plan.split_k, 1) << what;
                ASSERT_EQ(plan.block_m, 128) << what;
                ASSERT_EQ(plan.tiles_n, (n + 191) / 192) << what;
              } else {
                ASSERT_EQ(plan.tiles_n, (n + 127) / 128) << what;
              }
              if (force_bn == 192 && !plan.swap_tokens && force_sk <= 0) {
                ASSERT_EQ(plan.block_n, plan_sm90::kWideBlockN) << what;
              }
              ASSERT_GE(plan.split_k, 1) << what;
              ASSERT_LE(plan.split_k, plan.k_blocks) << what;
              if (out == DType::kFloat32) {
                ASSERT_NE(plan.block_m, 256) << what << ": fp32 out leaves a 256-row ring 3 stages";
              }
              if (force_sk < 0) {
                ASSERT_FALSE(plan.stream_k) << what;
              }
              if (!plan.swap_tokens) {
                ASSERT_GE(plan.stages, 3) << what;
              }
              // params() gives [m, k_blocks] scales: the main kernel with a long K loop gets an M-major
              // copy in the workspace.
              ASSERT_EQ(plan.pack_a_scale, plan.swap_tokens == 0 && plan_sm90::busiest_cta_k_blocks(plan) >=
                                                                        plan_sm90::kPackScalesMinBlocks)
                  << what;
              if (plan.pack_a_scale) {
                ASSERT_GE(plan.a_scale_rows, m) << what;
                ASSERT_EQ(plan.a_scale_rows % 4, 0) << what;
                ASSERT_EQ(plan.a_scale_offset % plan_sm90::kWorkspaceAlign, 0u) << what;
                ASSERT_GE(plan.bytes, plan.a_scale_offset + size_t(plan.a_scale_rows) * plan.k_blocks * 4) << what;
              }
              const size_t scale_bytes = plan.pack_a_scale ? plan_sm90::align_up(size_t(plan.a_scale_rows) * plan.k_blocks * 4) : 0;
              if (plan.stream_k) {
                ASSERT_EQ(plan.split_k, 1) << what;
                ASSERT_EQ(plan.swap_tokens, 0) << what;
                const int clusters = plan.grid / cluster;  // stream-K's parties
                const flashhip::kernels::TileScheduler<plan_sm90::kGroupM> s{
                    plan.sched_tiles_m, plan.sched_tiles_n, plan.k_blocks, 1, clusters, plan.whole_tiles};
                ASSERT_EQ(plan.whole_tiles % clusters, 0) << what;
                ASSERT_GE(s.shared_blocks(), clusters) << what << ": a cluster with no shared K block";
                // one fp32 partial tile and a flag per consumer warpgroup of each CTA, inside the workspace
                const size_t partials = size_t(plan.grid) * plan.block_m * plan.block_n * 4;
                ASSERT_GE(plan.flags_offset, plan.partials_offset + partials) << what;
                ASSERT_GE(plan.bytes, plan.flags_offset + size_t(plan.grid) * plan_sm90::main_loop_consumers(plan.block_m) * 4)
                    << what;
                ASSERT_EQ(plan.partials_offset % plan_sm90::kWorkspaceAlign, 0u) << what;
              } else if (plan.split_k > 1) {
                ASSERT_GE(plan.bytes, plan.partials_offset + size_t(plan.split_k) * m * n * 4) << what;
              } else {
                ASSERT_EQ(plan.bytes, scale_bytes) << what << ": K-contiguous, unsplit: only the scales' copy";
              }
            }
}

TEST(Fp8GemmPlanSm90, ScalesAreCopiedMMajorUnlessTheyAlreadyAre) {
  Fp8GemmParams p = params(1024, 1536, 7168);  // a_scale [1024, 56], K blocks contiguous
  auto plan = plan_sm90::make_plan(p, kH200Sms);
  EXPECT_TRUE(plan.pack_a_scale);
  EXPECT_EQ(plan.a_scale_rows, 1024);
  EXPECT_EQ(plan.bytes, size_t(1024) * 56 * 4);
  p.a_scale_stride_m = 1, p.a_scale_stride_kb = 1024;  // M-major (DeepGEMM's layout): read as it is
  plan = plan_sm90::make_plan(p, kH200Sms);
  EXPECT_FALSE(plan.pack_a_scale);
  EXPECT_EQ(plan.bytes, 0u);
  p.a_scale_stride_kb = 1026;  // M-major, but K-block columns not 16-byte aligned
  EXPECT_TRUE(plan_sm90::make_plan(p, kH200Sms).pack_a_scale);
  p.a_scale_stride_kb = 1024;
  p.a_scale = reinterpret_cast<const float*>(uintptr_t{1} << 12) + 1;  // base not 16-byte aligned
  EXPECT_TRUE(plan_sm90::make_plan(p, kH200Sms).pack_a_scale);
  p = params(1001, 1536, 7168);
  plan = plan_sm90::make_plan(p, kH200Sms);
  EXPECT_EQ(plan.a_scale_rows, 1004);  // rounded up to whole 16-byte vectors
  EXPECT_FALSE(plan_sm90::make_plan(params(1, 7168, 7168), kH200Sms).pack_a_scale);  // decode reads them itself
  // A short K loop (4 blocks a CTA) would not win back the copy's launch.
  plan = plan_sm90::make_plan(params(1024, 4096, 512), kH200Sms);
  EXPECT_LT(plan_sm90::busiest_cta_k_blocks(plan), plan_sm90::kPackScalesMinBlocks);
  EXPECT_FALSE(plan.pack_a_scale);
  EXPECT_EQ(plan.bytes, 0u);
  EXPECT_EQ(plan_sm90::busiest_cta_k_blocks(plan_sm90::make_plan(params(8192, 8192, 8192), kH200Sms)), 16 * 64);
}

TEST(Fp8GemmPlanSm90, MnContiguousOperandsArePackedIntoTheWorkspace) {
  Fp8GemmParams p = params(1024, 1536, 7168);
  p.a_stride_m = 1, p.a_stride_k = 1024, p.b_stride_n = 1, p.b_stride_k = 1536;
  const auto plan = plan_sm90::make_plan(p, kH200Sms);
  EXPECT_TRUE(plan.pack_a);
  EXPECT_TRUE(plan.pack_b);
  EXPECT_GE(plan.b_offset, plan.a_offset + size_t(1024) * 7168);
  EXPECT_GE(plan.bytes, plan.b_offset + size_t(1536) * 7168);
  EXPECT_EQ(plan.b_offset % plan_sm90::kWorkspaceAlign, 0u);
}

}  // namespace

namespace {

// The decode kernel's split-K summed in clusters, forced: only for split-K of 2..8 whose units
// all fit one wave (the kernel's CTAs of one tile must be resident together); off unless forced.
TEST(Fp8GemmPlanSm90, DecodeClusterSplitOnlyWhereOneWaveHoldsIt) {
  const auto forced = [](int64_t m, int64_t n, int64_t k, int split) {
    Fp8GemmParams p = params(m, n, k);
    p.force_decode_cluster_split = 1;
    p.force_split_k = split;
    return plan_sm90::make_plan(p, kH200Sms);
  };
  const auto two = forced(1, 7168, 2048, 0);  // the heuristic's 2 splits over 56 tiles
  EXPECT_TRUE(two.swap_cluster_split);
  EXPECT_EQ(two.split_k, 2);
  EXPECT_EQ(two.grid, 112);
  EXPECT_FALSE(forced(1, 4608, 7168, 0).swap_cluster_split);  // 7 splits x 36 tiles > 132
  const auto fourteen = forced(1, 512, 7168, 0);  // the heuristic's 14 splits: a non-portable cluster size
  EXPECT_TRUE(fourteen.swap_cluster_split);
  EXPECT_EQ(fourteen.grid, 56);
  EXPECT_FALSE(forced(1, 512, 7168, 20).swap_cluster_split);  // 20 splits > 16
  const auto eight = forced(1, 512, 7168, 8);
  EXPECT_TRUE(eight.swap_cluster_split);
  EXPECT_EQ(eight.grid, 32);
  EXPECT_GE(eight.bytes, eight.partials_offset + size_t{8} * 512 * 4);  // partials kept for the fallback
  EXPECT_FALSE(forced(128, 7168, 2048, 0).swap_cluster_split);  // the main kernel
  EXPECT_FALSE(forced(1, 7168, 256, 0).swap_cluster_split);     // no split
  EXPECT_FALSE(plan_sm90::make_plan(params(1, 7168, 2048), kH200Sms).swap_cluster_split);
}

}  // namespace
