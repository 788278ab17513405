// launch_moe_topk: picks the experts each lane holds (experts / wave, rounded up to a power of
// two), the layout (contiguous_layout below) and the gating dtype, then launches one wave per
// token on the caller's stream.
#pragma once
#include <cstdint>
#include <cstring>

#include "flashhip/kernels/moe/moe_topk_contiguous_kernels.cuh"
#include "flashhip/kernels/moe/moe_topk_kernels.cuh"
#include "flashhip/platform/arch.h"

namespace flashhip::kernels {
namespace moe_topk_detail {

template <int WAVE, int EXPERTS_PER_LANE, typename TIn>
gpuError_t launch_strided(const MoeTopkParams& p, const GroupPlan& plan, gpuStream_t stream) {
  const dim3 block(WAVE * kWavesPerBlock);
  const dim3 grid(static_cast<unsigned>((p.tokens + kWavesPerBlock - 1) / kWavesPerBlock));
  const size_t smem = sizeof(float) * kWavesPerBlock * grouped_smem_floats(p, plan);
  moe_topk_kernel<WAVE, EXPERTS_PER_LANE, TIn><<<grid, block, smem, stream>>>(p, plan);
  return gpuGetLastError();
}

// Groups go across lanes when each is an aligned run of lanes (its size divides the wave) and
// one lane per group can rank them.
template <int WAVE>
GroupPlan plan_groups(const MoeTopkParams& p) {
  GroupPlan plan;
  plan.group_size = p.experts / p.num_groups;
  plan.lane_aligned = p.grouped() && WAVE % plan.group_size == 0 && p.num_groups <= WAVE;
  plan.group_lanes_log2 = log2_at_least(plan.group_size);
  return plan;
}

// DeepSeek-V3's routing (256 experts in 8 groups, top 8) with the shape compiled in: on a
// 32-lane warp 8 experts a lane and 4 lanes a group, on a 64-lane wave 4 and 8.
inline constexpr int kFixedExperts = 256;
inline constexpr int kFixedGroups = 8;
inline constexpr int kFixedK = 8;

template <int WAVE>
using DeepSeekV3Shape = FixedShape<log2_at_least(kFixedExperts / kFixedGroups / (kFixedExperts / WAVE)), kFixedGroups, kFixedK>;

inline bool fixed_shape(const MoeTopkParams& p) {
  return p.experts == kFixedExperts && p.num_groups == kFixedGroups && p.k == kFixedK &&
         p.layout == MoeTopkLayout::kAuto;
}

// The contiguous kernel (lane l holds experts [l * experts_per_lane, (l + 1) * experts_per_lane))
// takes grouped calls that fill the wave exactly with 2 to 8 experts a lane and whose groups are
// whole lanes (then aligned runs of a power of two of them: groups * lanes_per_group == WAVE).
template <int WAVE>
bool contiguous_layout(const MoeTopkParams& p, int experts_per_lane) {
  return p.grouped() && p.experts == WAVE * experts_per_lane && experts_per_lane >= 2 && experts_per_lane <= 8 &&
         (p.experts / p.num_groups) % experts_per_lane == 0 && p.layout != MoeTopkLayout::kStrided;
}

// Whether every lane's EXPERTS_PER_LANE logits (and bias) can move kExpertsPerLoad at a time.
template <int EXPERTS_PER_LANE, typename TIn>
bool wide_loads(const MoeTopkParams& p) {
  constexpr int kGatingVec = kExpertsPerLoad<EXPERTS_PER_LANE, TIn>;
  constexpr int kBiasVec = kExpertsPerLoad<EXPERTS_PER_LANE, float>;
  return is_aligned(p.gating, kGatingVec * static_cast<int>(sizeof(TIn))) && p.gating_row_stride % kGatingVec == 0 &&
         (p.correction_bias == nullptr || is_aligned(p.correction_bias, kBiasVec * static_cast<int>(sizeof(float))));
}

template <int WAVE, int EXPERTS_PER_LANE, typename TIn, typename Shape>
gpuError_t launch_contiguous_shaped(const MoeTopkParams& p, gpuStream_t stream, MoeTopkLaunchInfo* info) {
  const dim3 block(WAVE * kWavesPerBlock);
  const dim3 grid(static_cast<unsigned>((p.tokens + kWavesPerBlock - 1) / kWavesPerBlock));
  const int group_lanes_log2 = log2_at_least(p.experts / p.num_groups / EXPERTS_PER_LANE);  // a group is whole lanes
  const bool wide = wide_loads<EXPERTS_PER_LANE, TIn>(p);
  if (info != nullptr) {
    info->wide_loads = wide;
    info->fixed_shape = Shape::kFixed;
  }
  if (wide) {
    moe_topk_contiguous_kernel<WAVE, EXPERTS_PER_LANE, TIn, true, Shape>
        <<<grid, block, 0, stream>>>(p, group_lanes_log2);
  } else {
    moe_topk_contiguous_kernel<WAVE, EXPERTS_PER_LANE, TIn, false, Shape>
        <<<grid, block, 0, stream>>>(p, group_lanes_log2);
  }
  return gpuGetLastError();
}

template <int WAVE, int EXPERTS_PER_LANE, typename TIn>
gpuError_t launch_contiguous(const MoeTopkParams& p, gpuStream_t stream, MoeTopkLaunchInfo* info) {
  if constexpr (EXPERTS_PER_LANE * WAVE == kFixedExperts) {
    if (fixed_shape(p)) {
      return launch_contiguous_shaped<WAVE, EXPERTS_PER_LANE, TIn, DeepSeekV3Shape<WAVE>>(p, stream, info);
    }
  }
  return launch_contiguous_shaped<WAVE, EXPERTS_PER_LANE, TIn, RuntimeShape>(p, stream, info);
}

template <int WAVE, typename TIn>
gpuError_t launch_typed(const MoeTopkParams& p, gpuStream_t stream, MoeTopkLaunchInfo* info) {
  constexpr int kMaxExpertsPerLane = kMoeMaxExperts / WAVE;
  static_assert(kMaxExpertsPerLane * WAVE == kMoeMaxExperts, "the expert limit must be a multiple of the wave");
  int experts_per_lane = 1;
  while (experts_per_lane * WAVE < p.experts) experts_per_lane *= 2;
  if (experts_per_lane > kMaxExpertsPerLane || p.k > WAVE) return gpuErrorNoVariant;
  if (contiguous_layout<WAVE>(p, experts_per_lane)) {
    if (info != nullptr) *info = MoeTopkLaunchInfo{WAVE, experts_per_lane, kWavesPerBlock, true, true};
    switch (experts_per_lane) {
      case 2: return launch_contiguous<WAVE, 2, TIn>(p, stream, info);
      case 4: return launch_contiguous<WAVE, 4, TIn>(p, stream, info);
      default: return launch_contiguous<WAVE, 8, TIn>(p, stream, info);
    }
  }
  const GroupPlan plan = plan_groups<WAVE>(p);
  if (info != nullptr) {
    *info = MoeTopkLaunchInfo{WAVE, experts_per_lane, kWavesPerBlock, plan.lane_aligned};
  }
  switch (experts_per_lane) {
    case 1: return launch_strided<WAVE, 1, TIn>(p, plan, stream);
    case 2: return launch_strided<WAVE, 2, TIn>(p, plan, stream);
    case 4: return launch_strided<WAVE, 4, TIn>(p, plan, stream);
    case 8: return launch_strided<WAVE, 8, TIn>(p, plan, stream);
    case 16: return launch_strided<WAVE, 16, TIn>(p, plan, stream);
    default:
      if constexpr (kMaxExpertsPerLane >= 32) return launch_strided<WAVE, 32, TIn>(p, plan, stream);
      return gpuErrorNoVariant;
  }
}

template <typename TIn>
gpuError_t launch_on_device(const MoeTopkParams& p, gpuStream_t stream, MoeTopkLaunchInfo* info) {
  return dispatch_device_wave([&](const DeviceTraits&, auto wave) {
    return launch_typed<decltype(wave)::value, TIn>(p, stream, info);
  });
}

}  // namespace moe_topk_detail

}  // namespace flashhip::kernels
