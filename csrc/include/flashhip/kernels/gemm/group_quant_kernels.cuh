// per_token_group_quant_fp8 kernels (torch-free). Memory-bound: each lane moves one 16-byte
// vector of a group, the group's lanes (group_size / vector elements, a power of two <= WAVE)
// reduce its amax with wave shuffles, and every lane writes its quantised vector; a lane per
// group writes the scale. Each thread owns GROUPS slots (4 or 8, the launcher picks from the
// device's bandwidth) and keeps them loading all the time: software-pipelined, a slot's load for the next
// iteration is issued as soon as its vector is in registers, before the group is reduced,
// quantised and stored, so GROUPS loads stay in flight while the thread computes. A scalar
// kernel (one thread per group) covers group sizes and alignments the vector kernel does not take.
//
//   scale = max(amax, eps) / fp8_max,  out = rne(saturate(x / scale))
// The codes are those of the IEEE quotient, found by Fp8Quotient (platform/fp8_quotient.h) from
// two multiplies an element. With eps / fp8_max >= 2^-80 every scale is in its range (a finite
// amax gives at most 2^121, an infinite one an infinite scale, which it takes too), so the vector
// kernel decides once; with a smaller eps (0, denormal) a group's scale may not be, and that
// launch divides.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "flashhip/kernels/gemm/fp8_gemm.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/fp8.h"
#include "flashhip/platform/fp8_quotient.h"
#include "flashhip/platform/vec.h"
#include "flashhip/platform/wave.h"

namespace flashhip::kernels {
namespace group_quant_detail {

inline constexpr int kThreads = 256;
// The vector kernel's GROUPS variants (group_quant.cu picks one per device).
inline constexpr int kGroupsInFlightFew = 4;
inline constexpr int kGroupsInFlightMany = 8;
// Resident blocks per SM/CU each variant is compiled for. 4 x 256 = 1024 threads caps registers at
// 64 a thread on NVIDIA (65536 per SM): the 4-slot kernel needs 46-64 with Fp8Quotient's
// bracket (a cap of 5 blocks' 51 made the bf16 kernel spill and run 5% slower on the H200). The
// 8-slot one holds 32 registers of loads alone: at a cap of 64 nvcc spilled loaded slots to local
// memory in the loop (waiting on the loads it meant to overlap); at 3 blocks' cap of 80 the bf16
// kernels spill 8-56 bytes (the H200 and H100 take 4 slots). On AMD this asks for 3-4 waves per SIMD, no cap below what the kernel uses.
constexpr int vector_min_blocks(int groups) { return groups > kGroupsInFlightFew ? 3 : 4; }

template <typename TOut>
FH_HOST_DEVICE FH_INLINE constexpr float fp8_max() {
  return Fp8Traits<TOut>::kMaxFinite;
}

// Whether every group's scale max(amax, eps) / fp8_max is in Fp8Quotient's bracket range: it is
// at least eps / fp8_max, a finite amax gives at most 2^121 and an infinite one an infinite scale,
// which the bracket takes too. False for a NaN eps.
template <typename TOut>
FH_HOST_DEVICE FH_INLINE bool codes_by_bracket(float eps) {
  return eps / fp8_max<TOut>() >= 0x1p-80f;
}

// n / d for n < 2^31 by a divisor fixed for the launch, without a division instruction:
// l = ceil(log2 d), mul = floor(2^32 (2^l - d) / d) + 1, then n / d = (umulhi(n, mul) + n) >> l
// (the sum stays below 2^32 for n < 2^31). Built on the host; a division by a runtime value
// costs ~20 instructions on the GPU, this one three.
struct UintDivider {
  uint32_t d = 1, mul = 1, shift = 0;
  static UintDivider make(uint32_t divisor) {
    UintDivider f;
    f.d = divisor;
    while (f.shift < 32 && (uint64_t{1} << f.shift) < divisor) ++f.shift;
    f.mul = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << f.shift) - divisor)) / divisor + 1);
    return f;
  }
#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
  FH_DEVICE FH_INLINE uint32_t div(uint32_t n) const { return (__umulhi(n, mul) + n) >> shift; }
#endif
};

// A 16-byte word of TIn as floats, exactly, from the word as loaded: bf16 by moving each half
// into a float's top bits (one instruction each), fp16 through to_float on each half (copying
// the word into a Vec of half_t instead put it on the stack on gfx940), fp32 as it is.
template <typename TIn>
FH_DEVICE FH_INLINE void widen(const uint4& w, float (&x)[kWideVecElems<TIn>]) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
  if constexpr (std::is_same_v<TIn, float>) {
#pragma unroll
    for (int k = 0; k < 4; ++k) x[k] = bits_to_float(words[k]);
  } else if constexpr (std::is_same_v<TIn, bf16_t>) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      x[2 * k] = bits_to_float(words[k] << 16);
      x[2 * k + 1] = bits_to_float(words[k] & 0xffff0000u);
    }
  } else {
    static_assert(sizeof(TIn) == 2, "16-bit input");
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      x[2 * k] = to_float(TIn{static_cast<uint16_t>(words[k] & 0xffffu)});
      x[2 * k + 1] = to_float(TIn{static_cast<uint16_t>(words[k] >> 16)});
    }
  }
}

// Work unit: one group of one row. `lanes` lanes of a wave share a group (LANES when it is not
// 0: the common case compiled in, so that the reduction's steps and the lane arithmetic are
// fixed); a block covers kThreads / lanes groups per step, GROUPS steps an iteration (one per
// slot), and blocks stride the grid. Groups are numbered along the scale's unit stride, so that
// consecutive groups write consecutive scales: row by row for a row-major scale, column by column
// (`by_column`, rows innermost) for an M-major one; `inner` divides by the groups of that
// innermost run. Either way each group's input is one contiguous run. total_groups < 2^31; the
// launcher also guarantees total_groups + 2 * (groups per iteration of the grid) < 2^32.
template <int WAVE, int GROUPS, int LANES, bool BY_BRACKET, typename TIn, typename TOut>
__global__ void FH_LAUNCH_BOUNDS(kThreads, vector_min_blocks(GROUPS))
    group_quant_vector(const GroupQuantParams p, int runtime_lanes, UintDivider inner, uint32_t total_groups,
                       bool by_column) {
  const int lanes = LANES > 0 ? LANES : runtime_lanes;
  constexpr int kVec = kWideVecElems<TIn>;
  static_assert(sizeof(TOut) == 1 && kVec % 4 == 0, "fp8 out, whole 32-bit words a vector");
  using InWord = typename MemoryWord<kMaxVectorBytes>::type;  // 16 bytes: a slot
  using OutWord = typename MemoryWord<kVec>::type;            // the vector's kVec fp8 codes
  const int sub = lane_id<WAVE>() % lanes;  // this lane's vector within its group
  const uint32_t groups_per_block_step = kThreads / lanes;
  const uint32_t step = groups_per_block_step * gridDim.x;  // between a thread's slots
  const uint32_t sweep = step * GROUPS;                     // between a slot's iterations
  const auto* input = static_cast<const TIn*>(p.input);
  auto* out = static_cast<TOut*>(p.out);

  // Group gidx's row and group column; done again at the store rather than held in registers
  // across the loads of the slots after it.
  auto locate = [&](uint32_t gidx, uint32_t& row, uint32_t& col) {
    const uint32_t outer = inner.div(gidx);
    const uint32_t within = gidx - outer * inner.d;
    row = by_column ? within : outer;
    col = by_column ? outer : within;
  };
  auto load = [&](uint32_t gidx, InWord& w) {
    if (gidx < total_groups) {
      uint32_t row, col;
      locate(gidx, row, col);
      const TIn* src = input + static_cast<int64_t>(row) * p.input_stride_m +
                       static_cast<int64_t>(col) * p.group_size + sub * kVec;
      w = load_word<CachePolicy::kStreaming>(reinterpret_cast<const InWord*>(src));
    }
  };

  // Prologue: every slot's first load. A slot past the end keeps stale data, which only its own
  // (dead) group's lanes reduce and nothing stores.
  const uint32_t local_group = threadIdx.x / lanes;
  const uint32_t block_first = blockIdx.x * groups_per_block_step;
  InWord slot[GROUPS] = {};
#pragma unroll
  for (int u = 0; u < GROUPS; ++u) load(block_first + local_group + u * step, slot[u]);

  // BY_BRACKET (codes_by_bracket(eps), chosen by the launcher): the bracket or the division, as
  // separate kernels, so that each gets its own registers.
  // The loop bound is the block's first group, the same for every thread: all lanes of a wave
  // take every iteration and join every shuffle; groups past the end are only masked.
  for (uint32_t block_base = block_first; block_base < total_groups; block_base += sweep) {
    const uint32_t base = block_base + local_group;
#pragma unroll
    for (int u = 0; u < GROUPS; ++u) {
      const uint32_t gidx = base + u * step;
      float x[kVec];
      widen<TIn>(slot[u], x);
      // The slot is free again: its next load goes out before this group's reduction, quantisation
      // and stores, and is waited for only GROUPS - 1 groups later.
      load(gidx + sweep, slot[u]);
      float amax = 0.0f;
#pragma unroll
      for (int i = 0; i < kVec; ++i) amax = fmaxf(amax, fabsf(x[i]));
      // A group's lanes share gidx, so each aligned segment of the reduction is all live or all
      // dead; dead lanes still join the shuffles.
      amax = group_reduce_max<WAVE>(amax, lanes);
      if (gidx >= total_groups) continue;
      const float scale = fmaxf(amax, p.eps) / fp8_max<TOut>();
      const Fp8Quotient quotient(scale);
      uint32_t codes[kVec / 4];
      quotient.codes<TOut, BY_BRACKET, kVec>([&](int i) { return x[i]; }, codes);
      OutWord word;
      memcpy(&word, codes, sizeof word);
      uint32_t row, col;
      locate(gidx, row, col);
      TOut* dst = out + static_cast<int64_t>(row) * p.out_stride_m + static_cast<int64_t>(col) * p.group_size + sub * kVec;
      store_word<CachePolicy::kStreaming>(reinterpret_cast<OutWord*>(dst), word);
      if (sub == 0) {
        p.scale[static_cast<int64_t>(row) * p.scale_stride_m + static_cast<int64_t>(col) * p.scale_stride_g] = scale;
      }
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
    const Fp8Quotient quotient(scale);
    for (int j = 0; j < p.group_size; ++j) dst[j] = quotient.code<TOut>(to_float(src[j]));
    p.scale[row * p.scale_stride_m + col * p.scale_stride_g] = scale;
  }
}

}  // namespace group_quant_detail
}  // namespace flashhip::kernels
