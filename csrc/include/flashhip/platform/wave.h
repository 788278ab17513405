// Wave (warp) intrinsics, generic over the wave width. Kernels take the width as a template
// parameter WAVE chosen by the launcher from the device; nothing here assumes 32 or 64.
#pragma once

#include <cstdint>
#include <type_traits>

#include "flashhip/platform/macros.h"

namespace flashhip {

#if FH_PLATFORM_CUDA
// The sync mask naming every lane of an NVIDIA warp; HIP's shuffles take no mask.
inline constexpr uint32_t kAllLanesMask = ~uint32_t{0};
#endif

// A ballot-style mask in the narrowest word that holds a lane of the wave: 32-bit mask
// arithmetic on NVIDIA warps, where a 64-bit AND or test costs two instructions.
template <int WAVE>
using LaneMask = std::conditional_t<(WAVE > 8 * static_cast<int>(sizeof(uint32_t))), uint64_t, uint32_t>;

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA

// The thread's rank in its block: x fastest, then y, then z, the order in which the hardware
// packs threads into waves.
FH_DEVICE FH_INLINE unsigned linear_thread_id() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

// The thread's lane in its wave: linear_thread_id() % WAVE for any block shape (a 2-D block
// whose x extent is not a multiple of WAVE packs rows into one wave). Read from the hardware
// (%laneid; mbcnt over all lanes on AMD) rather than computed from the thread and block indices:
// one instruction, and no index registers kept live for it.
template <int WAVE>
FH_DEVICE FH_INLINE int lane_id() {
#if FH_PLATFORM_HIP
  if constexpr (WAVE == 64) {
    return static_cast<int>(__builtin_amdgcn_mbcnt_hi(~0u, __builtin_amdgcn_mbcnt_lo(~0u, 0u)));
  } else {
    return static_cast<int>(__builtin_amdgcn_mbcnt_lo(~0u, 0u));
  }
#else
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  unsigned lane;
  asm("mov.u32 %0, %%laneid;" : "=r"(lane));
  return static_cast<int>(lane);
#endif
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
FH_DEVICE FH_INLINE LaneMask<WAVE> ballot(bool predicate) {
#if FH_PLATFORM_HIP
  return static_cast<LaneMask<WAVE>>(__ballot(predicate));
#else
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  return __ballot_sync(kAllLanesMask, predicate);
#endif
}

// Reads `value` from lane `src_lane` of the wave.
template <int WAVE, typename T>
FH_DEVICE FH_INLINE T shfl(T value, int src_lane) {
#if FH_PLATFORM_HIP
  return __shfl(value, src_lane, WAVE);
#else
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  return __shfl_sync(kAllLanesMask, value, src_lane, WAVE);
#endif
}

// The lanes whose `value` equals this lane's, as a ballot-style mask. `value_bits` bounds the
// bits in which values may differ (values must lie in [0, 2^value_bits)). NVIDIA sm_70+ has one
// instruction for it; elsewhere lanes agree bit by bit through value_bits ballots.
template <int WAVE>
FH_DEVICE FH_INLINE uint64_t match_any(int value, int value_bits) {
#if FH_ARCH_SM70
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  (void)value_bits;
  return __match_any_sync(kAllLanesMask, value);
#else
  uint64_t peers = ballot<WAVE>(true);
  for (int bit = 0; bit < value_bits; ++bit) {
    const bool set = (value >> bit) & 1;
    const uint64_t with_bit = ballot<WAVE>(set);
    peers &= set ? with_bit : ~with_bit;
  }
  return peers;
#endif
}

// The largest value over the wave, in every lane. NVIDIA sm_80+ has one instruction for it
// (redux.sync); elsewhere a butterfly of log2(WAVE) shuffles.
template <int WAVE>
FH_DEVICE FH_INLINE uint32_t wave_max_u32(uint32_t value) {
#if FH_ARCH_SM80
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  return __reduce_max_sync(kAllLanesMask, value);
#else
#pragma unroll
  for (int offset = WAVE / 2; offset > 0; offset /= 2) value = max(value, shfl_xor<WAVE>(value, offset));
  return value;
#endif
}

// The smallest value over the wave, in every lane (redux.sync on NVIDIA sm_80+).
template <int WAVE>
FH_DEVICE FH_INLINE uint32_t wave_min_u32(uint32_t value) {
#if FH_ARCH_SM80
  static_assert(WAVE == 32, "NVIDIA warps have 32 lanes");
  return __reduce_min_sync(kAllLanesMask, value);
#else
#pragma unroll
  for (int offset = WAVE / 2; offset > 0; offset /= 2) value = min(value, shfl_xor<WAVE>(value, offset));
  return value;
#endif
}

// Whether wave_max_u32/wave_min_u32 are one instruction on this target (redux.sync), so that an
// algorithm may prefer several 32-bit reductions to one butterfly over wider values.
inline constexpr bool kWaveReduceIsOneInstruction = FH_ARCH_SM80;

// The lowest set lane of a non-zero ballot-style mask.
FH_DEVICE FH_INLINE int lowest_lane(uint32_t mask) {
#if FH_PLATFORM_HIP
  return __builtin_ctz(mask);
#else
  return __ffs(static_cast<int>(mask)) - 1;
#endif
}
FH_DEVICE FH_INLINE int lowest_lane(uint64_t mask) {
#if FH_PLATFORM_HIP
  return __builtin_ctzll(mask);
#else
  return __ffsll(static_cast<long long>(mask)) - 1;
#endif
}

// Lanes set in a ballot-style mask.
FH_DEVICE FH_INLINE int lane_count(uint32_t mask) { return __popc(mask); }
FH_DEVICE FH_INLINE int lane_count(uint64_t mask) { return __popcll(mask); }

// The lanes below this one, as a ballot-style mask.
template <int WAVE>
FH_DEVICE FH_INLINE LaneMask<WAVE> lanes_below_mask() {
  return static_cast<LaneMask<WAVE>>((uint64_t{1} << lane_id<WAVE>()) - 1);
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
