// Picks the rope kernel variant and work split for a call and launches it. Included by the
// per-style translation units (rope_neox.cu, rope_interleaved.cu; rope_computed_neox.cu,
// rope_computed_interleaved.cu for the angles computed without a cache; rope_kv_neox.cu,
// rope_kv_interleaved.cu for the rotation with the KV-cache write) so they compile in parallel.
#pragma once

#include <cstdint>

#include "flashhip/kernels/rope/rope_kernels.cuh"
#include "flashhip/platform/arch.h"

namespace flashhip::kernels::rope_detail {

// Most heads one thread walks with the same cos/sin: more amortises the cos/sin loads; fewer
// puts all of a thread's loads in flight at once (kHeadsInFlight) and fills the device when
// there are few tokens (2 measured best; see the commit history). params.max_heads_per_thread
// overrides it.
inline constexpr int kMaxHeadsPerThread = 2;

inline int max_heads_per_thread(const RopeParams& p) {
  return p.max_heads_per_thread >= 1 && p.max_heads_per_thread <= 64 ? p.max_heads_per_thread : kMaxHeadsPerThread;
}

// The same for the KV-cache write's v and cache rows (true without one).
template <typename T, int VEC>
bool kv_vectorisable(const RopeParams& p) {
  constexpr int bytes = static_cast<int>(sizeof(T)) * VEC;
  const RopeKvWrite& kv = p.kv;
  if (kv.k_cache == nullptr) return true;
  const int64_t strides[] = {kv.v_token_stride,      kv.v_head_stride,       kv.k_cache_slot_stride,
                             kv.k_cache_head_stride, kv.v_cache_slot_stride, kv.v_cache_head_stride};
  for (const int64_t s : strides) {
    if (s % VEC != 0) return false;
  }
  return is_aligned(kv.v, bytes) && is_aligned(kv.k_cache, bytes) && is_aligned(kv.v_cache, bytes);
}

// Whether every access of VEC elements (and the cos/sin loads) can be one 16-byte access.
template <typename T, int VEC>
bool vectorisable(const RopeParams& p) {
  constexpr int bytes = static_cast<int>(sizeof(T)) * VEC;
  const int64_t strides[] = {p.q_token_stride,     p.q_head_stride,     p.k_token_stride,     p.k_head_stride,
                             p.q_out_token_stride, p.q_out_head_stride, p.k_out_token_stride, p.k_out_head_stride};
  for (const int64_t s : strides) {
    if (s % VEC != 0) return false;
  }
  const bool pairs_fit = p.interleave ? p.rotary_dim % (2 * VEC) == 0 : (p.rotary_dim / 2) % VEC == 0;
  const bool cache_fits =
      p.cos_sin_cache == nullptr || (is_aligned(p.cos_sin_cache, 16) && p.cache_row_stride % 4 == 0);
  return pairs_fit && p.head_dim % VEC == 0 && is_aligned(p.q, bytes) && is_aligned(p.k, bytes) &&
         is_aligned(p.q_out, bytes) && is_aligned(p.k_out, bytes) && cache_fits && kv_vectorisable<T, VEC>(p);
}

// Heads a token's threads walk: q and k, and the v heads when the KV cache is written.
inline int walked_heads_of(const RopeParams& p) {
  return p.num_q_heads + (p.kv.k_cache != nullptr ? 2 : 1) * p.num_k_heads;
}

// The work split: chunks per head from the vector width, then as many heads per thread as
// keep the grid at least twice the resident threads (up to kMaxHeadsPerThread).
inline RopeGrid choose_grid(const RopeParams& p, int vec, const DeviceTraits& traits) {
  RopeGrid g;
  g.rotary_chunks = p.rotary_dim / 2 / vec;
  // The cache rows take whole k and v heads, so the KV write needs the pass-through chunks too.
  const bool any_tail_copy = p.copy_q_tail || p.copy_k_tail || p.kv.k_cache != nullptr;
  g.chunks_per_head = g.rotary_chunks + (any_tail_copy ? (p.head_dim - p.rotary_dim) / vec : 0);
  const int num_heads = walked_heads_of(p);
  const int64_t thread_heads = p.nnz * num_heads * g.chunks_per_head;
  // Threads the device keeps resident; if the runtime cannot say, what the launch bounds promise.
  const int64_t resident_per_multiprocessor = traits.max_threads_per_multiprocessor > 0
                                                  ? traits.max_threads_per_multiprocessor
                                                  : int64_t{kBlockThreads} * kMinResidentBlocks;
  const int64_t wanted_threads =
      2 * resident_per_multiprocessor * (traits.multiprocessors > 0 ? traits.multiprocessors : 1);
  int64_t heads_per_thread = thread_heads / wanted_threads;
  if (heads_per_thread < 1) heads_per_thread = 1;
  if (heads_per_thread > max_heads_per_thread(p)) heads_per_thread = max_heads_per_thread(p);
  g.head_lanes = static_cast<int>((num_heads + heads_per_thread - 1) / heads_per_thread);
  return g;
}

template <bool INTERLEAVE, bool COMPUTE_ANGLES, bool KV_WRITE, typename T, typename TPos>
gpuError_t launch_rope_typed(const RopeParams& p, gpuStream_t stream, const DeviceTraits& traits, RopeLaunchInfo* info) {
  constexpr int kVec = kWideVecElems<T>;
  const bool wide = vectorisable<T, kVec>(p);
  const int vec = wide ? kVec : 1;
  const RopeGrid g = choose_grid(p, vec, traits);
  const int64_t threads = p.nnz * g.head_lanes * g.chunks_per_head;
  const int64_t blocks = (threads + kBlockThreads - 1) / kBlockThreads;
  if (blocks > kMaxGridBlocks) return gpuErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(blocks));
  const dim3 block(kBlockThreads);
  if (info != nullptr) {
    const int num_heads = walked_heads_of(p);
    *info = RopeLaunchInfo{wide ? "vector" : "scalar", vec, g.chunks_per_head, g.head_lanes,
                           (num_heads + g.head_lanes - 1) / g.head_lanes, traits.wave_size};
  }
  if (wide) {
    rope_heads<kVec, INTERLEAVE, COMPUTE_ANGLES, KV_WRITE, T, TPos><<<grid, block, 0, stream>>>(p, g);
  } else {
    rope_heads<1, INTERLEAVE, COMPUTE_ANGLES, KV_WRITE, T, TPos><<<grid, block, 0, stream>>>(p, g);
  }
  return gpuGetLastError();
}

// Resolves the element type and the position type of one rotation style, cos/sin source and
// KV-cache write (or none).
template <bool INTERLEAVE, bool COMPUTE_ANGLES, bool KV_WRITE = false>
gpuError_t launch_rope_style(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info) {
  DeviceTraits traits;
  FH_RETURN_IF_ERROR(current_device_traits(&traits));
  auto with_types = [&](auto element, auto position) {
    return launch_rope_typed<INTERLEAVE, COMPUTE_ANGLES, KV_WRITE, decltype(element), decltype(position)>(
        p, stream, traits, info);
  };
  auto with_element = [&](auto element) -> gpuError_t {
    return p.positions_type == IndexType::kInt32 ? with_types(element, int32_t{}) : with_types(element, int64_t{});
  };
  return dispatch_activation_dtype(p.dtype, gpuErrorNoVariant, with_element);
}

}  // namespace flashhip::kernels::rope_detail

namespace flashhip::kernels {
// One entry per rotation style and cos/sin source, each in its own translation unit.
gpuError_t launch_rope_neox(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info);
gpuError_t launch_rope_interleaved(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info);
gpuError_t launch_rope_computed_neox(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info);
gpuError_t launch_rope_computed_interleaved(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info);
gpuError_t launch_rope_kv_neox(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info);
gpuError_t launch_rope_kv_interleaved(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info);
}  // namespace flashhip::kernels
