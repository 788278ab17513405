// Picks the rope_quantize_fp8 kernel variant for a call and launches it. Included by the
// per-style translation units (rope_quant_neox.cu, rope_quant_interleaved.cu) so they compile in
// parallel.
#pragma once

#include <cstdint>

#include "flashhip/kernels/rope/rope_quant_kernels.cuh"
#include "flashhip/platform/runtime.h"

namespace flashhip::kernels::rope_quant_detail {

// Whether every input access of VEC elements can be one 16-byte load, every output access of
// VEC fp8 values one VEC-byte store, and the cos/sin loads 16-byte ones.
template <typename T, int VEC>
bool part_vectorisable(const RopeQuantPart& part) {
  const int64_t strides[] = {part.q_token_stride,     part.q_head_stride,     part.k_token_stride,
                             part.k_head_stride,      part.q_out_token_stride, part.q_out_head_stride,
                             part.k_out_token_stride, part.k_out_head_stride};
  for (const int64_t s : strides) {
    if (s % VEC != 0) return false;
  }
  constexpr int in_bytes = static_cast<int>(sizeof(T)) * VEC;
  constexpr int out_bytes = VEC;  // one byte an fp8 element
  return is_aligned(part.q, in_bytes) && is_aligned(part.k, in_bytes) && is_aligned(part.q_out, out_bytes) &&
         is_aligned(part.k_out, out_bytes);
}

// Whether every input access of VEC elements can be one 16-byte load, every output access of
// VEC fp8 values one VEC-byte store, and the cos/sin loads 16-byte ones.
template <typename T, int VEC>
bool vectorisable(const RopeQuantParams& p) {
  const bool cache_fits = is_aligned(p.cos_sin_cache, 16) && p.cache_row_stride % 4 == 0;
  return p.rope_dim % (2 * VEC) == 0 && p.nope_dim % VEC == 0 && cache_fits && part_vectorisable<T, VEC>(p.rope) &&
         part_vectorisable<T, VEC>(p.nope);
}

template <bool INTERLEAVE, typename T, typename TOut, typename TPos>
gpuError_t launch_typed(const RopeQuantParams& p, gpuStream_t stream, RopeQuantLaunchInfo* info) {
  constexpr int kVec = kWideVecElems<T>;
  const bool wide = vectorisable<T, kVec>(p);
  const int vec = wide ? kVec : 1;
  RopeQuantGrid g;
  g.rotary_chunks = p.rope_dim / 2 / vec;
  const int nope_pieces = p.nope_dim / vec;
  g.nope_unroll = kMaxNopeUnroll;  // the largest unroll that divides the pieces
  while (nope_pieces % g.nope_unroll != 0) g.nope_unroll /= 2;
  g.nope_threads = nope_pieces / g.nope_unroll;
  g.chunks_per_head = g.rotary_chunks + g.nope_threads;
  g.num_heads = p.num_q_heads + p.num_k_heads;
  const int64_t threads = p.nnz * g.num_heads * g.chunks_per_head;
  const int64_t blocks = (threads + kBlockThreads - 1) / kBlockThreads;
  if (blocks > rope_detail::kMaxGridBlocks) return gpuErrorInvalidValue;
  if (info != nullptr) *info = RopeQuantLaunchInfo{wide ? "vector" : "scalar", vec, g.chunks_per_head};
  const dim3 grid(static_cast<unsigned>(blocks));
  const dim3 block(kBlockThreads);
  if (wide) {
    rope_quant_heads<kVec, INTERLEAVE, T, TOut, TPos><<<grid, block, 0, stream>>>(p, g);
  } else {
    rope_quant_heads<1, INTERLEAVE, T, TOut, TPos><<<grid, block, 0, stream>>>(p, g);
  }
  return gpuGetLastError();
}

// Resolves the input, output and position types of one rotation style.
template <bool INTERLEAVE>
gpuError_t launch_style(const RopeQuantParams& p, gpuStream_t stream, RopeQuantLaunchInfo* info) {
  auto with_types = [&](auto element, auto quantised, auto position) {
    return launch_typed<INTERLEAVE, decltype(element), decltype(quantised), decltype(position)>(p, stream, info);
  };
  auto with_output = [&](auto element, auto quantised) -> gpuError_t {
    return p.positions_type == IndexType::kInt32 ? with_types(element, quantised, int32_t{})
                                                 : with_types(element, quantised, int64_t{});
  };
  auto with_element = [&](auto element) -> gpuError_t {
    return dispatch_fp8_dtype(p.out_dtype, gpuErrorNoVariant,
                              [&](auto quantised) { return with_output(element, quantised); });
  };
  switch (p.dtype) {  // fp16 and bf16 inputs, as FlashInfer's
    case DType::kFloat16: return with_element(half_t{});
    case DType::kBFloat16: return with_element(bf16_t{});
    default: return gpuErrorNoVariant;
  }
}

}  // namespace flashhip::kernels::rope_quant_detail

namespace flashhip::kernels {
// One entry per rotation style, each in its own translation unit.
gpuError_t launch_rope_quant_neox(const RopeQuantParams& p, gpuStream_t stream, RopeQuantLaunchInfo* info);
gpuError_t launch_rope_quant_interleaved(const RopeQuantParams& p, gpuStream_t stream, RopeQuantLaunchInfo* info);
}  // namespace flashhip::kernels
