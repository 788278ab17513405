// per_token_group_quant_fp8 kernels (torch-free). Memory-bound: each lane moves one 16-byte
// vector of a group, the group's lanes (group_size / vector elements, a power of two <= WAVE)
// reduce its amax with wave shuffles, and every lane writes its quantised vector; a lane per
// group writes the scale. Each thread carries kGroupsInFlight independent groups so that many
// loads are in flight before the first reduction waits on one. A scalar kernel (one thread per
// group) covers group sizes and alignments the vector kernel does not take.
//
//   scale = max(amax, eps) / fp8_max,  out = rne(saturate(x / scale))  (a true division)
#pragma once

#include <cstdint>

#include "flashhip/kernels/gemm/fp8_gemm.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/fp8.h"
#include "flashhip/platform/vec.h"
#include "flashhip/platform/wave.h"

namespace flashhip::kernels {
namespace group_quant_detail {

inline constexpr int kThreads = 256;
inline constexpr int kGroupsInFlight = 4;

template <typename TOut>
FH_DEVICE FH_INLINE constexpr float fp8_max() {
  return Fp8Traits<TOut>::kMaxFinite;
}

// Work unit: one group of one row. `lanes` lanes of a wave share a group; a block covers
// kThreads / lanes groups per step and takes kGroupsInFlight steps, blocks stride the grid.
// Groups are numbered along the scale's unit stride, so that consecutive groups write
// consecutive scales: row by row for a row-major scale, column by column (`by_column`, rows
// innermost) for an M-major one. Either way each group's input is one contiguous run.
template <int WAVE, typename TIn, typename TOut>
__global__ void FH_LAUNCH_BOUNDS(kThreads) group_quant_vector(const GroupQuantParams p, int lanes,
                                                               uint32_t groups_per_row, uint32_t total_groups,
                                                               bool by_column) {
  constexpr int kVec = kWideVecElems<TIn>;
  using InVec = Vec<TIn, kVec>;
  using OutVec = Vec<TOut, kVec>;
  const int sub = lane_id<WAVE>() % lanes;  // this lane's vector within its group
  const uint32_t groups_per_block_step = kThreads / lanes;
  const uint32_t local_group = threadIdx.x / lanes;
  const uint32_t step = groups_per_block_step * gridDim.x;
  const auto* input = static_cast<const TIn*>(p.input);
  auto* out = static_cast<TOut*>(p.out);

  // The loop bound is the block's first group, the same for every thread: all lanes of a wave
  // take every iteration and join every shuffle; groups past the end are only masked.
  for (uint32_t block_base = blockIdx.x * groups_per_block_step; block_base < total_groups;
       block_base += step * kGroupsInFlight) {
    const uint32_t base = block_base + local_group;
    InVec v[kGroupsInFlight];
    uint32_t row[kGroupsInFlight], col[kGroupsInFlight];
#pragma unroll
    for (int u = 0; u < kGroupsInFlight; ++u) {
      const uint32_t gidx = base + u * step;
      const uint32_t inner = by_column ? static_cast<uint32_t>(p.m) : groups_per_row;
      const uint32_t outer = gidx / inner;
      row[u] = by_column ? gidx - outer * inner : outer;
      col[u] = by_column ? outer : gidx - outer * inner;
      if (gidx < total_groups) {
        const TIn* src = input + static_cast<int64_t>(row[u]) * p.input_stride_m +
                         static_cast<int64_t>(col[u]) * p.group_size + sub * kVec;
        v[u] = InVec::template load<CachePolicy::kStreaming>(src);
      }
    }
#pragma unroll
    for (int u = 0; u < kGroupsInFlight; ++u) {
      const uint32_t gidx = base + u * step;
      // A group's lanes share gidx, so each aligned segment of the reduction is all live or
      // all dead; dead lanes still join the shuffles.
      const bool live = gidx < total_groups;
      float x[kVec];
      float amax = 0.0f;
#pragma unroll
      for (int i = 0; i < kVec; ++i) {
        x[i] = live ? to_float(v[u][i]) : 0.0f;
        amax = fmaxf(amax, fabsf(x[i]));
      }
      amax = group_reduce_max<WAVE>(amax, lanes);
      if (!live) continue;
      const float scale = fmaxf(amax, p.eps) / fp8_max<TOut>();
      float y[kVec];
#pragma unroll
      for (int i = 0; i < kVec; ++i) y[i] = x[i] / scale;
      TOut q[kVec];
      convert_floats<TOut, kVec>(y, q);
      OutVec o;
#pragma unroll
      for (int i = 0; i < kVec; ++i) o[i] = q[i];
      o.template store_global<CachePolicy::kStreaming>(out + static_cast<int64_t>(row[u]) * p.out_stride_m +
                                                static_cast<int64_t>(col[u]) * p.group_size + sub * kVec);
      if (sub == 0) p.scale[static_cast<int64_t>(row[u]) * p.scale_stride_m + static_cast<int64_t>(col[u]) * p.scale_stride_g] = scale;
    }
  }
}

// Any group size, any alignment: one thread per group, two passes over it (the second from L1/L2).
template <typename TIn, typename TOut>
__global__ void FH_LAUNCH_BOUNDS(kThreads) group_quant_scalar(const GroupQuantParams p, int64_t groups_per_row,
                                                               int64_t total_groups) {
  const auto* input = static_cast<const TIn*>(p.input);
  auto* out = static_cast<TOut*>(p.out);
  for (int64_t gidx = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; gidx < total_groups;
       gidx += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t row = gidx / groups_per_row, col = gidx % groups_per_row;
    const TIn* src = input + row * p.input_stride_m + col * p.group_size;
    TOut* dst = out + row * p.out_stride_m + col * p.group_size;
    float amax = 0.0f;
    for (int j = 0; j < p.group_size; ++j) amax = fmaxf(amax, fabsf(to_float(src[j])));
    const float scale = fmaxf(amax, p.eps) / fp8_max<TOut>();
    for (int j = 0; j < p.group_size; ++j) dst[j] = from_float<TOut>(to_float(src[j]) / scale);
    p.scale[row * p.scale_stride_m + col * p.scale_stride_g] = scale;
  }
}

}  // namespace group_quant_detail
}  // namespace flashhip::kernels
