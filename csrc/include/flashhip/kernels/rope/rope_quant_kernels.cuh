// RoPE + fp8 quantisation kernel (rope_quant.h). Memory-bound: every input element is read once
// and its fp8 value written once; nothing is shared between threads, so the kernel needs no
// cross-lane operations and is not instantiated per wave width.
//
// Work split: each head of a token (q heads, then k heads) is cut into chunks: rotary chunks of
// VEC pairs of its rope row (two loads of VEC elements, as the rope kernel's), then the nope row's
// VEC-element pieces, nope_unroll of them a thread (piece n, n + T, ..., for T nope threads a
// head). One thread per (token, head, chunk); consecutive threads take consecutive pieces of one
// head, so a warp reads a nope row as whole 16-byte pieces. With one piece a thread (24 bytes of
// traffic) the kernel ran at 0.47 of a copy on the H200 (DeepSeek MLA, 8192 tokens): too little
// work per thread; four pieces a thread keep four loads in flight each. The
// rotation is the rope kernel's fp32 arithmetic (rotated_pairs); the rotated value is scaled and
// converted to fp8 directly, with no rounding to the input dtype between.
#pragma once

#include "flashhip/kernels/rope/rope_kernels.cuh"
#include "flashhip/kernels/rope/rope_quant.h"
#include "flashhip/platform/fp8.h"

namespace flashhip::kernels::rope_quant_detail {

using rope_detail::kBlockThreads;
using rope_detail::kMinResidentBlocks;

// The launcher's split of one head's work over threads.
struct RopeQuantGrid {
  int rotary_chunks = 0;    // chunks of VEC rotary pairs
  int nope_threads = 0;     // threads a head's nope row is split over
  int nope_unroll = 1;      // VEC-element pieces each nope thread converts, 1..kMaxNopeUnroll
  int chunks_per_head = 0;  // rotary_chunks + nope_threads
  int num_heads = 0;        // q heads + k heads
};

inline constexpr int kMaxNopeUnroll = 4;

// The input and output rows [dim] of head `head` (q heads first, then k heads) in one part.
template <typename T, typename TOut>
FH_DEVICE FH_INLINE void part_rows(const RopeQuantParams& p, const RopeQuantPart& part, int64_t token, int head,
                                   const T*& in, TOut*& out) {
  if (head < p.num_q_heads) {
    in = static_cast<const T*>(part.q) + token * part.q_token_stride + head * part.q_head_stride;
    out = static_cast<TOut*>(part.q_out) + token * part.q_out_token_stride + head * part.q_out_head_stride;
  } else {
    const int64_t kh = head - p.num_q_heads;
    in = static_cast<const T*>(part.k) + token * part.k_token_stride + kh * part.k_head_stride;
    out = static_cast<TOut*>(part.k_out) + token * part.k_out_token_stride + kh * part.k_out_head_stride;
  }
}

// VEC floats multiplied by `scale`, converted to saturated fp8 and stored at `dst` [VEC].
template <int VEC, typename TOut>
FH_DEVICE FH_INLINE void store_scaled(float (&values)[VEC], float scale, TOut* dst) {
#pragma unroll
  for (int i = 0; i < VEC; ++i) values[i] *= scale;
  Vec<TOut, VEC> converted;
  convert_floats(values, converted.data);
  converted.store_global(dst);
}

template <int VEC, bool INTERLEAVE, typename T, typename TOut, typename TPos>
__global__ void FH_LAUNCH_BOUNDS(kBlockThreads, kMinResidentBlocks)
    rope_quant_heads(const RopeQuantParams p, const RopeQuantGrid g) {
  using TVec = Vec<T, VEC>;
  int chunk, head;
  int64_t token;
  rope_detail::split_thread(static_cast<int64_t>(blockIdx.x) * kBlockThreads + threadIdx.x, g.chunks_per_head,
                            g.num_heads, token, head, chunk);
  if (token >= p.nnz) return;

  const int64_t position = static_cast<int64_t>(static_cast<const TPos*>(p.positions)[token * p.positions_stride]);
  // Device-side guard (no host sync): an out-of-range position leaves the token's rows untouched.
  // Tested after the thread's data loads are issued, so they do not wait for the position's.
  const bool in_cache = position >= 0 && position < p.max_positions;
  const float scale = head < p.num_q_heads ? p.quant_scale_q : p.quant_scale_kv;

  if (chunk >= g.rotary_chunks) {  // nope pieces of VEC elements: scaled and quantised only
    const int first_piece = chunk - g.rotary_chunks;
    const T* in;
    TOut* out;
    part_rows(p, p.nope, token, head, in, out);
    TVec x[kMaxNopeUnroll];
#pragma unroll
    for (int u = 0; u < kMaxNopeUnroll; ++u) {  // every load issued before any is used
      if (u < g.nope_unroll) x[u] = TVec::load(in + (first_piece + u * g.nope_threads) * VEC);
    }
    if (!in_cache) return;
#pragma unroll
    for (int u = 0; u < kMaxNopeUnroll; ++u) {
      if (u < g.nope_unroll) {
        float values[VEC];
#pragma unroll
        for (int i = 0; i < VEC; ++i) values[i] = to_float(x[u][i]);
        store_scaled(values, scale, out + (first_piece + u * g.nope_threads) * VEC);
      }
    }
    return;
  }

  // VEC rotary pairs: element offsets of this chunk's two vectors within the rope row.
  const int half = p.rope_dim / 2;
  const int first = INTERLEAVE ? 2 * chunk * VEC : chunk * VEC;
  const int second = INTERLEAVE ? first + VEC : first + half;
  const T* in;
  TOut* out;
  part_rows(p, p.rope, token, head, in, out);
  TVec a = TVec::load(in + first);
  TVec b = TVec::load(in + second);
  if (!in_cache) return;
  const float* cache_row = p.cos_sin_cache + position * p.cache_row_stride;  // [rope_dim]
  float pair_cos[VEC], pair_sin[VEC];
  rope_detail::load_floats<VEC>(cache_row + chunk * VEC, pair_cos);
  rope_detail::load_floats<VEC>(cache_row + half + chunk * VEC, pair_sin);
  float rotated_a[VEC], rotated_b[VEC];
  rope_detail::rotated_pairs<INTERLEAVE>(a, b, pair_cos, pair_sin, rotated_a, rotated_b);
  store_scaled(rotated_a, scale, out + first);
  store_scaled(rotated_b, scale, out + second);
}

}  // namespace flashhip::kernels::rope_quant_detail
