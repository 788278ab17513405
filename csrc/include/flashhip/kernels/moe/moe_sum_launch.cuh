// launch_moe_sum's variants: 16-byte vectors when the hidden size, every stride and both base
// pointers allow them, else one element per thread; blocks of kWavesPerBlock waves of the
// device's width.
#pragma once

#include "flashhip/kernels/moe/moe_sum_kernels.cuh"
#include "flashhip/platform/arch.h"

namespace flashhip::kernels::moe_sum_detail {

// Whether VEC-element vectors fit every access of the call.
template <typename T, int VEC>
bool vectors_fit(const MoeSumParams& p) {
  constexpr int kBytes = static_cast<int>(sizeof(T)) * VEC;
  return p.hidden % VEC == 0 && p.out_row_stride % VEC == 0 && p.input_token_stride % VEC == 0 &&
         p.input_slot_stride % VEC == 0 && is_aligned(p.out, kBytes) && is_aligned(p.input, kBytes);
}

template <int WAVE, typename T, int VEC>
gpuError_t launch_vec(const MoeSumParams& p, gpuStream_t stream, MoeSumLaunchInfo* info) {
  constexpr int kThreads = WAVE * kWavesPerBlock;
  const int64_t total = p.tokens * (p.hidden / VEC);
  int64_t blocks = (total + kThreads - 1) / kThreads;
  blocks = blocks < kMaxBlocks ? blocks : kMaxBlocks;
  if (info != nullptr) *info = MoeSumLaunchInfo{WAVE, kThreads, VEC, blocks};
  moe_sum_kernel<WAVE, T, VEC><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
  return gpuGetLastError();
}

template <int WAVE, typename T>
gpuError_t launch_typed(const MoeSumParams& p, gpuStream_t stream, MoeSumLaunchInfo* info) {
  constexpr int kVec = kMaxVectorBytes / static_cast<int>(sizeof(T));
  if (vectors_fit<T, kVec>(p)) return launch_vec<WAVE, T, kVec>(p, stream, info);
  return launch_vec<WAVE, T, 1>(p, stream, info);
}

}  // namespace flashhip::kernels::moe_sum_detail
