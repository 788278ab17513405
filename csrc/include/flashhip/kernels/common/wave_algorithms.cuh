// Wave-level selection algorithms built on the platform's primitives (reductions, shuffles,
// ballots): keyed maxima with their owner lane and top-2 merges over lane segments. Used by the
// MoE routing kernels; no vendor code here (targets differ only through
// kWaveReduceIsOneInstruction).
#pragma once

#include <cstdint>

#include "flashhip/platform/wave.h"

namespace flashhip::kernels {

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA

// The largest 64-bit key over the wave; *owner is the lowest lane holding it. With one-instruction
// reductions: two of them (high word, then the low word among the lanes that hold the high
// maximum); otherwise a butterfly of log2(WAVE) rounds of two shuffles.
template <int WAVE>
FH_DEVICE FH_INLINE uint64_t wave_max_u64(uint64_t key, int* owner) {
  uint64_t max_key = key;
  if constexpr (kWaveReduceIsOneInstruction) {
    const uint32_t hi = static_cast<uint32_t>(key >> 32);
    const uint32_t max_hi = wave_max_u32<WAVE>(hi);
    const uint32_t max_lo = wave_max_u32<WAVE>(hi == max_hi ? static_cast<uint32_t>(key) : 0u);
    max_key = (static_cast<uint64_t>(max_hi) << 32) | max_lo;
  } else {
#pragma unroll
    for (int offset = WAVE / 2; offset > 0; offset /= 2) {
      const uint32_t lo = shfl_xor<WAVE>(static_cast<uint32_t>(max_key), offset);
      const uint32_t hi = shfl_xor<WAVE>(static_cast<uint32_t>(max_key >> 32), offset);
      const uint64_t other = (static_cast<uint64_t>(hi) << 32) | lo;
      if (other > max_key) max_key = other;
    }
  }
  *owner = lowest_lane(ballot<WAVE>(key == max_key));
  return max_key;
}

// Merges each lane's (best, second) pair (the two largest of a multiset it holds, best >=
// second) over aligned segments of `lanes` lanes (a power of two <= WAVE): every lane ends with
// the two largest of its segment's multisets together. log2(lanes) butterfly steps.
template <int WAVE>
FH_DEVICE FH_INLINE void segment_merge_top2_u32(uint32_t* best, uint32_t* second, int lanes) {
  uint32_t hi = *best, lo = *second;
#pragma unroll
  for (int offset = 1; offset < WAVE; offset *= 2) {
    if (offset < lanes) {  // uniform across the wave
      const uint32_t other_hi = shfl_xor<WAVE>(hi, offset);
      const uint32_t other_lo = shfl_xor<WAVE>(lo, offset);
      lo = max(min(hi, other_hi), max(lo, other_lo));
      hi = max(hi, other_hi);
    }
  }
  *best = hi;
  *second = lo;
}

// The two largest values (a multiset: a value two lanes hold counts twice) over aligned
// segments of `lanes` lanes (a power of two <= WAVE); every lane gets its segment's. A segment
// of one lane has `second` 0. A whole wave with one-instruction reductions: two reductions and a
// ballot; otherwise a butterfly of log2(lanes) steps merges (best, second) pairs.
template <int WAVE>
FH_DEVICE FH_INLINE void segment_top2_u32(uint32_t value, int lanes, uint32_t* best, uint32_t* second) {
  if constexpr (kWaveReduceIsOneInstruction) {
    if (lanes == WAVE) {
      const uint32_t top = wave_max_u32<WAVE>(value);
      const auto holders = ballot<WAVE>(value == top);
      const uint32_t below_top = wave_max_u32<WAVE>(value == top ? 0u : value);
      *best = top;
      *second = lane_count(holders) > 1 ? top : below_top;
      return;
    }
  }
  *best = value;
  *second = 0;
  segment_merge_top2_u32<WAVE>(best, second, lanes);
}

// The largest key over the wave; among the lanes holding it, *tag_out is their smallest tag
// and *owner the lowest lane holding both. With one-instruction reductions: one reduction when
// one lane holds the largest key (a shuffle fetches its tag) and a second only on a tie;
// otherwise (key, ~tag) goes through wave_max_u64.
template <int WAVE>
FH_DEVICE FH_INLINE uint32_t wave_max_key_min_tag(uint32_t key, uint32_t tag, int* owner, uint32_t* tag_out) {
  if constexpr (kWaveReduceIsOneInstruction) {
    const uint32_t max_key = wave_max_u32<WAVE>(key);
    const auto holders = ballot<WAVE>(key == max_key);
    if (lane_count(holders) == 1) {  // uniform across the wave
      *owner = lowest_lane(holders);
      *tag_out = shfl<WAVE>(tag, *owner);
    } else {
      const uint32_t min_tag = wave_min_u32<WAVE>(key == max_key ? tag : ~uint32_t{0});
      *owner = lowest_lane(ballot<WAVE>(key == max_key && tag == min_tag));
      *tag_out = min_tag;
    }
    return max_key;
  } else {
    const uint64_t packed = (static_cast<uint64_t>(key) << 32) | ~tag;
    const uint64_t best = wave_max_u64<WAVE>(packed, owner);
    *tag_out = ~static_cast<uint32_t>(best);
    return static_cast<uint32_t>(best >> 32);
  }
}

#endif  // GPU

}  // namespace flashhip::kernels
