// moe_sum: memory-bound. Each thread owns VEC adjacent elements of one token's output row and
// reads the same VEC elements of each of the token's topk input rows (16-byte loads, streamed:
// they are read once), adding in fp32 in slot order; a grid-stride loop covers the rest.
#pragma once

#include "flashhip/kernels/moe/moe_sum.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/vec.h"

namespace flashhip::kernels::moe_sum_detail {

inline constexpr int kWavesPerBlock = 4;
// Most blocks of a launch; the grid-stride loop walks the rest.
inline constexpr int64_t kMaxBlocks = int64_t{1} << 20;

template <int WAVE, typename T, int VEC>
__global__ void FH_LAUNCH_BOUNDS(WAVE * kWavesPerBlock) moe_sum_kernel(const MoeSumParams p) {
  using V = Vec<T, VEC>;
  const int64_t vecs_per_row = p.hidden / VEC;
  const int64_t total = p.tokens * vecs_per_row;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const T* input = static_cast<const T*>(p.input);
  T* out = static_cast<T*>(p.out);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t token = i / vecs_per_row;
    const int64_t h = (i - token * vecs_per_row) * VEC;
    const T* slot = input + token * p.input_token_stride + h;  // slot 0's VEC elements
    float acc[VEC];
#pragma unroll
    for (int e = 0; e < VEC; ++e) acc[e] = 0.0f;
#pragma unroll 4
    for (int64_t j = 0; j < p.topk; ++j) {
      const V v = V::template load<CachePolicy::kStreaming>(slot + j * p.input_slot_stride);
#pragma unroll
      for (int e = 0; e < VEC; ++e) acc[e] += to_float(v[e]);
    }
    V result;
#pragma unroll
    for (int e = 0; e < VEC; ++e) result[e] = from_float<T>(acc[e]);
    result.store_global(out + token * p.out_row_stride + h);
  }
}

}  // namespace flashhip::kernels::moe_sum_detail
