// Rotary embedding kernel. Memory-bound: every q/k element is read once and written once, and
// each thread loads the cos/sin of its rotary pairs once per token and reuses them for all the
// heads it walks.
//
// Work split (chosen by the launcher, see rope_launch.cuh): a token's heads are cut along
// head_dim into chunks of VEC rotary pairs (plus, when the output is not the input, chunks of
// VEC pass-through elements past rotary_dim). Consecutive threads take consecutive chunks of
// one head, so a group of threads reads a head as whole 16-byte pieces; `head_lanes` such
// groups share a token and each walks every head_lanes-th head of q then k.
//
// The cos/sin of a thread's pairs come from the cache row of the token's position, or, with
// COMPUTE_ANGLES (no cache), from the position and the pair's frequency (rope_frequencies.h).
//
// With KV_WRITE (rope_set_kv_buffer) the walk covers the v heads too, after the k heads: a k
// head's rotated vectors are also stored into the token's KV-cache row, a v head's are copied
// there unrotated, and the pass-through chunks exist whenever rotary_dim < head_dim (the cache
// takes whole heads). Without it those branches compile away.
#pragma once

#include <cstring>
#include <type_traits>

#include "flashhip/kernels/rope/rope.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/fp8.h"
#include "flashhip/platform/vec.h"

namespace flashhip::kernels::rope_detail {

inline constexpr int kBlockThreads = 256;
// The grid's x dimension limit shared by CUDA and HIP.
inline constexpr int64_t kMaxGridBlocks = 0x7fffffff;
// Heads whose loads a thread issues before it computes on the first of them.
inline constexpr int kHeadsInFlight = 2;
// Blocks a multiprocessor must hold at once: caps registers at 64 per thread, so that 32 warps
// (each with two heads' loads in flight) keep memory busy; at 72 registers only 24 fit.
inline constexpr int kMinResidentBlocks = 4;

// The launcher's split of one token's work over threads.
struct RopeGrid {
  int chunks_per_head = 0;  // rotary_chunks + tail chunks
  int rotary_chunks = 0;    // chunks of VEC rotary pairs
  int head_lanes = 0;       // thread groups walking one token's heads
};

// Heads one token's threads walk: q heads, then k heads, then (KV_WRITE) v heads.
template <bool KV_WRITE>
FH_DEVICE FH_INLINE int walked_heads(const RopeParams& p) {
  return p.num_q_heads + (KV_WRITE ? 2 : 1) * p.num_k_heads;
}

template <bool KV_WRITE>
FH_DEVICE FH_INLINE bool is_v_head(const RopeParams& p, int head) {
  return KV_WRITE && head >= p.num_q_heads + p.num_k_heads;
}

// Head `head` of the token (q heads first, then k heads, then v heads): its input and output
// rows [head_dim], and whether its pass-through tail is to be written. Recomputed where needed
// rather than kept, which keeps registers for data in flight.
template <typename T, bool KV_WRITE>
FH_DEVICE FH_INLINE const T* head_input(const RopeParams& p, int64_t token, int head) {
  if (head < p.num_q_heads) return static_cast<const T*>(p.q) + token * p.q_token_stride + head * p.q_head_stride;
  if (is_v_head<KV_WRITE>(p, head)) {
    const int64_t vh = head - p.num_q_heads - p.num_k_heads;
    return static_cast<const T*>(p.kv.v) + token * p.kv.v_token_stride + vh * p.kv.v_head_stride;
  }
  const int64_t kh = head - p.num_q_heads;
  return static_cast<const T*>(p.k) + token * p.k_token_stride + kh * p.k_head_stride;
}

template <typename T>
FH_DEVICE FH_INLINE T* head_output(const RopeParams& p, int64_t token, int head) {
  if (head < p.num_q_heads) return static_cast<T*>(p.q_out) + token * p.q_out_token_stride + head * p.q_out_head_stride;
  const int64_t kh = head - p.num_q_heads;
  return static_cast<T*>(p.k_out) + token * p.k_out_token_stride + kh * p.k_out_head_stride;
}

// Not asked of v heads (they have no q_out/k_out row).
FH_DEVICE FH_INLINE bool copies_tail(const RopeParams& p, int head) {
  return head < p.num_q_heads ? p.copy_q_tail : p.copy_k_tail;
}

// The token's KV-cache row, or -1 where none is written (no KV write, or cache_loc[token]
// outside the cache). Rows fit in 32 bits (the op checks cache_slots): one register, not two.
template <bool KV_WRITE>
FH_DEVICE FH_INLINE int kv_slot(const RopeParams& p, int64_t token) {
  if constexpr (KV_WRITE) {
    const int64_t loc = p.kv.cache_loc[token * p.kv.cache_loc_stride];
    return loc >= 0 && loc < p.kv.cache_slots ? static_cast<int>(loc) : -1;
  } else {
    return -1;
  }
}

// The KV-cache row [head_dim] of a k or v head (head >= num_q_heads) at cache row `slot`.
template <typename T>
FH_DEVICE FH_INLINE T* kv_row(const RopeParams& p, int64_t slot, int head) {
  const int64_t kh = head - p.num_q_heads;
  if (kh < p.num_k_heads) {
    return static_cast<T*>(p.kv.k_cache) + slot * p.kv.k_cache_slot_stride + kh * p.kv.k_cache_head_stride;
  }
  const int64_t vh = kh - p.num_k_heads;
  return static_cast<T*>(p.kv.v_cache) + slot * p.kv.v_cache_slot_stride + vh * p.kv.v_cache_head_stride;
}

// A vector about to be stored to two places (its output row and its KV-cache row), as 32-bit
// words when it is a whole number of them: packed once for both stores. Packing per store kept
// the unpacked 16-bit elements live: at 64 registers the 16-bit vector kernels spilled 156 bytes
// (ptxas 13, sm_90a); with this and the row read late, 8 to 12 (none on gfx940).
template <typename T, int VEC>
FH_DEVICE FH_INLINE auto store_form(const Vec<T, VEC>& v) {
  if constexpr (sizeof(T) * VEC % sizeof(uint32_t) == 0) {
    Vec<uint32_t, sizeof(T) * VEC / sizeof(uint32_t)> words;
    memcpy(&words, &v, sizeof(words));
    return words;
  } else {
    return v;
  }
}

// Stores store_form's vector at `dst`, an element of T on the vector's alignment.
template <typename V, typename T>
FH_DEVICE FH_INLINE void store_to(const V& v, T* dst) {
  using Word = std::remove_cv_t<std::remove_reference_t<decltype(v[0])>>;
  v.store_global(reinterpret_cast<Word*>(dst));
}

// N consecutive floats of the cache: 16-byte pieces when N is a multiple of 4 (the launcher
// checked the alignment), single floats otherwise.
template <int N>
FH_DEVICE FH_INLINE void load_floats(const float* src, float (&dst)[N]) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N; i += 4) {
      const Vec<float, 4> piece = Vec<float, 4>::load(src + i);
#pragma unroll
      for (int j = 0; j < 4; ++j) dst[i + j] = piece[j];
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) dst[i] = src[i];
  }
}

// Element i of the 2*VEC elements held as a then b.
template <int VEC, typename T>
FH_DEVICE FH_INLINE T& element(Vec<T, VEC>& a, Vec<T, VEC>& b, int i) {
  return i < VEC ? a[i] : b[i - VEC];
}

// The VEC pairs held in two vectors, rotated in fp32 into rotated_a / rotated_b (a's and b's
// positions): NeoX pairs are (a[i], b[i]); GPT-J pairs are adjacent elements of a then b. Pair
// i turns by the angle whose cos/sin are pair_cos[i], pair_sin[i].
template <bool INTERLEAVE, int VEC, typename T>
FH_DEVICE FH_INLINE void rotated_pairs(Vec<T, VEC>& a, Vec<T, VEC>& b, const float (&pair_cos)[VEC],
                                       const float (&pair_sin)[VEC], float (&rotated_a)[VEC],
                                       float (&rotated_b)[VEC]) {
  float rotated[2 * VEC];  // a's elements, then b's
#pragma unroll
  for (int i = 0; i < VEC; ++i) {
    const int first = INTERLEAVE ? 2 * i : i;
    const int second = INTERLEAVE ? 2 * i + 1 : VEC + i;
    const float x1 = to_float(element(a, b, first));
    const float x2 = to_float(element(a, b, second));
    rotated[first] = x1 * pair_cos[i] - x2 * pair_sin[i];
    rotated[second] = x2 * pair_cos[i] + x1 * pair_sin[i];
  }
#pragma unroll
  for (int i = 0; i < VEC; ++i) {
    rotated_a[i] = rotated[i];
    rotated_b[i] = rotated[VEC + i];
  }
}

// Rotates VEC pairs held in two vectors, in place (rotated_pairs), with one rounding to T, two
// elements per conversion where the target has a paired instruction.
template <bool INTERLEAVE, int VEC, typename T>
FH_DEVICE FH_INLINE void rotate_pairs(Vec<T, VEC>& a, Vec<T, VEC>& b, const float (&pair_cos)[VEC],
                                    const float (&pair_sin)[VEC]) {
  float rotated_a[VEC], rotated_b[VEC];
  rotated_pairs<INTERLEAVE>(a, b, pair_cos, pair_sin, rotated_a, rotated_b);
  convert_floats(rotated_a, a.data);
  convert_floats(rotated_b, b.data);
}

// The cos/sin of pairs first_pair .. first_pair + VEC - 1 at `position`, in fp32. Precise sincosf:
// angles reach 1e5 rad and more, far outside the range of the hardware approximations.
template <int VEC>
FH_DEVICE FH_INLINE void compute_cos_sin(const RopeParams& p, int64_t position, int first_pair, float (&pair_cos)[VEC],
                                         float (&pair_sin)[VEC]) {
  const float pos = static_cast<float>(position);
#pragma unroll
  for (int i = 0; i < VEC; ++i) {
    sincosf(pos * rope_inv_freq(p.frequencies, first_pair + i, p.rotary_dim), &pair_sin[i], &pair_cos[i]);
  }
}

// Thread `thread`'s (token, lane, chunk) in a grid of `lanes` groups of `chunks` threads per
// token: 32-bit divisions (a few instructions) while the index fits, rather than 64-bit ones (a
// long sequence), which would delay the thread's first load.
FH_DEVICE FH_INLINE void split_thread(int64_t thread, int chunks, int lanes, int64_t& token, int& lane, int& chunk) {
  if ((thread >> 32) == 0) {
    const auto t = static_cast<uint32_t>(thread);
    const uint32_t token_lane = t / static_cast<uint32_t>(chunks);
    chunk = static_cast<int>(t - token_lane * static_cast<uint32_t>(chunks));
    const uint32_t token32 = token_lane / static_cast<uint32_t>(lanes);
    lane = static_cast<int>(token_lane - token32 * static_cast<uint32_t>(lanes));
    token = token32;
  } else {
    const int64_t token_lane = thread / chunks;
    chunk = static_cast<int>(thread - token_lane * chunks);
    token = token_lane / lanes;
    lane = static_cast<int>(token_lane - token * lanes);
  }
}

// One thread per (token, head lane, chunk); see the file comment. The kernel needs no
// cross-lane operations, so it is not instantiated per wave width.
template <int VEC, bool INTERLEAVE, bool COMPUTE_ANGLES, bool KV_WRITE, typename T, typename TPos>
__global__ void FH_LAUNCH_BOUNDS(kBlockThreads, kMinResidentBlocks) rope_heads(const RopeParams p, const RopeGrid g) {
  static_assert(!(KV_WRITE && COMPUTE_ANGLES), "the KV-cache write is built with a cos|sin cache only");
  using TVec = Vec<T, VEC>;

  int chunk, head_lane;
  int64_t token;
  split_thread(static_cast<int64_t>(blockIdx.x) * kBlockThreads + threadIdx.x, g.chunks_per_head, g.head_lanes,
               token, head_lane, chunk);
  if (token >= p.nnz) return;

  const int64_t position = static_cast<int64_t>(static_cast<const TPos*>(p.positions)[token * p.positions_stride]);
  const int num_heads = walked_heads<KV_WRITE>(p);
  const int head_step = g.head_lanes;

  if (chunk >= g.rotary_chunks) {
    // Pass-through elements past rotary_dim (when an output is not its input, or for the cache).
    const int offset = p.rotary_dim + (chunk - g.rotary_chunks) * VEC;
    if (!COMPUTE_ANGLES && (position < 0 || position >= p.max_positions)) return;  // the row is left untouched
    const int slot = kv_slot<KV_WRITE>(p, token);
    const bool to_cache = slot >= 0;
    for (int head = head_lane; head < num_heads; head += head_step) {
      const bool to_output = !is_v_head<KV_WRITE>(p, head) && copies_tail(p, head);
      const bool to_row = to_cache && head >= p.num_q_heads;
      if (!to_output && !to_row) continue;
      const auto x = store_form(TVec::load(head_input<T, KV_WRITE>(p, token, head) + offset));
      if (to_output) store_to(x, head_output<T>(p, token, head) + offset);
      if (to_row) store_to(x, kv_row<T>(p, slot, head) + offset);
    }
    return;
  }

  // Element offsets of this chunk's two vectors within a head.
  const int half = p.rotary_dim / 2;
  const int first = INTERLEAVE ? 2 * chunk * VEC : chunk * VEC;
  const int second = INTERLEAVE ? first + VEC : first + half;

  TVec a[kHeadsInFlight], b[kHeadsInFlight];
  auto load_heads = [&](int head0) {
#pragma unroll
    for (int u = 0; u < kHeadsInFlight; ++u) {
      const int head = head0 + u * head_step;
      if (head < num_heads) {
        const T* in = head_input<T, KV_WRITE>(p, token, head);
        a[u] = TVec::load(in + first);
        b[u] = TVec::load(in + second);
      }
    }
  };

  // The first heads' loads go out before anything waits for the position.
  load_heads(head_lane);
  float pair_cos[VEC], pair_sin[VEC];
  if constexpr (COMPUTE_ANGLES) {
    compute_cos_sin<VEC>(p, position, chunk * VEC, pair_cos, pair_sin);
  } else {
    // Device-side guard (no host sync): an out-of-range position leaves the token's rows untouched.
    if (position < 0 || position >= p.max_positions) return;
    const float* cache_row = p.cos_sin_cache + position * p.cache_row_stride;  // [rotary_dim]
    load_floats<VEC>(cache_row + chunk * VEC, pair_cos);
    load_floats<VEC>(cache_row + half + chunk * VEC, pair_sin);
  }
  // Read only now, beside the cos/sin: held from the start, the row spilled at 64 registers.
  const int slot = kv_slot<KV_WRITE>(p, token);
  const bool to_cache = slot >= 0;

  for (int head0 = head_lane;;) {
#pragma unroll
    for (int u = 0; u < kHeadsInFlight; ++u) {
      const int head = head0 + u * head_step;
      if (head >= num_heads) break;
      if constexpr (KV_WRITE) {
        const bool v_head = is_v_head<KV_WRITE>(p, head);
        if (!v_head) rotate_pairs<INTERLEAVE>(a[u], b[u], pair_cos, pair_sin);
        const auto wa = store_form(a[u]), wb = store_form(b[u]);  // packed once for both stores
        if (!v_head) {
          T* out = head_output<T>(p, token, head);
          store_to(wa, out + first);
          store_to(wb, out + second);
        }
        if (to_cache && head >= p.num_q_heads) {  // k heads rotated, v heads as loaded
          T* row = kv_row<T>(p, slot, head);
          store_to(wa, row + first);
          store_to(wb, row + second);
        }
      } else {
        rotate_pairs<INTERLEAVE>(a[u], b[u], pair_cos, pair_sin);
        T* out = head_output<T>(p, token, head);
        a[u].store_global(out + first);
        b[u].store_global(out + second);
      }
    }
    head0 += kHeadsInFlight * head_step;
    if (head0 >= num_heads) break;
    load_heads(head0);
  }
}

}  // namespace flashhip::kernels::rope_detail
