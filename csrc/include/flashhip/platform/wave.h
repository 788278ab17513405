// Wave (warp) intrinsics, generic over the wave width. Kernels take the width as a template
// parameter WAVE chosen by the launcher from the device; nothing here assumes 32 or 64.
#pragma once

#include <cstdint>

#include "flashhip/platform/macros.h"

namespace flashhip {

#if FH_PLATFORM_CUDA
// The sync mask naming every lane of an NVIDIA warp; HIP's shuffles take no mask.
inline constexpr uint32_t kAllLanesMask = ~uint32_t{0};
#endif

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA

template <int WAVE>
FH_DEVICE FH_INLINE int lane_id() {
  return static_cast<int>(threadIdx.x) % WAVE;
}

// Butterfly exchange with the lane whose id differs by lane_mask (within groups of `width`).
template <int WAVE, typename T>
FH_DEVICE FH_INLINE T shfl_xor(T value, int lane_mask, int width = WAVE) {
#if FH_PLATFORM_HIP
  return __shfl_xor(value, lane_mask, width);
#else
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  return __shfl_xor_sync(kAllLanesMask, value, lane_mask, width);
#endif
}

// Shift up: lane i gets the value of lane i - delta (lanes below delta keep their own).
template <int WAVE, typename T>
FH_DEVICE FH_INLINE T shfl_up(T value, int delta) {
#if FH_PLATFORM_HIP
  return __shfl_up(value, delta, WAVE);
#else
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  return __shfl_up_sync(kAllLanesMask, value, delta, WAVE);
#endif
}

// Bit i of the result is `predicate` of lane i. All lanes of the wave must call it.
template <int WAVE>
FH_DEVICE FH_INLINE uint64_t ballot(bool predicate) {
#if FH_PLATFORM_HIP
  return static_cast<uint64_t>(__ballot(predicate));
#else
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  return __ballot_sync(kAllLanesMask, predicate);
#endif
}

// The lanes below this one, as a ballot-style mask.
template <int WAVE>
FH_DEVICE FH_INLINE uint64_t lanes_below_mask() {
  return (uint64_t{1} << lane_id<WAVE>()) - 1;
}

// Orders the wave's shared-memory accesses before the call against those after it (NVIDIA
// lanes may run apart; AMD waves run in lockstep but the compiler must not move accesses).
template <int WAVE>
FH_DEVICE FH_INLINE void wave_sync() {
#if FH_PLATFORM_HIP
  __builtin_amdgcn_fence(__ATOMIC_RELEASE, "wavefront");
  __builtin_amdgcn_wave_barrier();
  __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "wavefront");
#else
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  __syncwarp(kAllLanesMask);
#endif
}

// Sum over aligned groups of `group` lanes (a power of two <= WAVE); every lane gets its
// group's sum. All lanes of the wave must call it.
template <int WAVE>
FH_DEVICE FH_INLINE float group_reduce_sum(float value, int group = WAVE) {
#pragma unroll
  for (int offset = WAVE / 2; offset > 0; offset /= 2) {
    if (offset < group) value += shfl_xor<WAVE>(value, offset);
  }
  return value;
}

template <int WAVE>
FH_DEVICE FH_INLINE float group_reduce_max(float value, int group = WAVE) {
#pragma unroll
  for (int offset = WAVE / 2; offset > 0; offset /= 2) {
    if (offset < group) value = fmaxf(value, shfl_xor<WAVE>(value, offset));
  }
  return value;
}

#endif  // GPU

}  // namespace flashhip
