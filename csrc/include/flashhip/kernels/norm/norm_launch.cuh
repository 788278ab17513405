// Picks the norm kernel variant for a call and launches it. Included by the per-kind
// translation units (norm_*.cu) so that their instantiations compile in parallel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "flashhip/kernels/norm/norm_kernels.cuh"
#include "flashhip/platform/arch.h"

namespace flashhip::kernels::norm_detail {

// Most vectors a thread keeps in registers; beyond kMaxVecsPerThread * VEC * kMaxRegisterThreads
// elements (32768 for 16-bit types) a row is streamed.
inline constexpr int kMaxVecsPerThread = 8;
// Threads per row the register variant aims for before holding more vectors per thread: enough
// loads in flight per thread while leaving several blocks per multiprocessor. Wider rows and
// the fused forms (which hold a row without prefetching the next) do better with 512 (measured:
// see the commit history). params.threads_per_row overrides it.
inline int target_threads_per_row(const NormParams& p, int64_t n_vec, bool fused_add) {
  if (p.threads_per_row >= 32 && p.threads_per_row <= kMaxRegisterThreads) return p.threads_per_row;
  return n_vec > 512 || (fused_add && n_vec == 512) ? 512 : 256;
}

// Whether prefetching kernels run a resident grid that walks the rows (the default) or one
// block per row group (params.grid = kRowGroups).
inline bool resident_grid(const NormParams& p) { return p.grid != NormGrid::kRowGroups; }

inline int next_pow2(int64_t n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

// Block shape for rows needing `threads_needed` threads: narrow rows share a block (a power of
// two of threads each, so shuffle groups stay aligned); wide rows get a whole block.
inline void choose_block(int64_t threads_needed, int target_threads, int wave, int* threads_per_row,
                         int* rows_per_block) {
  if (threads_needed <= wave) {
    *threads_per_row = next_pow2(threads_needed);
    *rows_per_block = std::max(1, target_threads / *threads_per_row);
  } else {
    *threads_per_row = static_cast<int>((threads_needed + wave - 1) / wave * wave);
    *rows_per_block = 1;
  }
}

// Rows per launch with strided heads: the kernels split a row index into token and head with a
// 32-bit division (row_offset), so larger calls go in chunks of whole tokens.
inline constexpr int64_t kMaxStridedHeadRows = 0x7fffffff;

template <NormKind KIND, int WAVE, typename TAct, typename TW, typename TOut, bool FP32_SUM>
gpuError_t launch_norm_typed(const NormParams& p, gpuStream_t stream, const DeviceTraits& traits,
                             NormLaunchInfo* info) {
  if (p.heads > 1 && p.rows > kMaxStridedHeadRows) {
    const int64_t tokens = p.rows / p.heads, chunk_tokens = kMaxStridedHeadRows / p.heads;
    if (chunk_tokens == 0) return gpuErrorInvalidValue;  // one token's heads past 32 bits
    for (int64_t t = 0; t < tokens; t += chunk_tokens) {
      NormParams chunk = p;
      chunk.rows = std::min(chunk_tokens, tokens - t) * p.heads;
      chunk.input = static_cast<const TAct*>(p.input) + t * p.input_row_stride;
      chunk.out = static_cast<TOut*>(p.out) + t * p.out_row_stride;
      if (p.residual != nullptr) chunk.residual = static_cast<TAct*>(p.residual) + t * p.residual_row_stride;
      const gpuError_t err = launch_norm_typed<KIND, WAVE, TAct, TW, TOut, FP32_SUM>(chunk, stream, traits, info);
      if (err != gpuSuccess) return err;
    }
    return gpuSuccess;
  }
  constexpr int kVec = kWideVecElems<TAct>;
  const bool vectorisable = p.hidden % kVec == 0 && p.input_row_stride % kVec == 0 &&
                            p.out_row_stride % kVec == 0 && p.residual_row_stride % kVec == 0 &&
                            p.input_head_stride % kVec == 0 && p.out_head_stride % kVec == 0 &&
                            p.residual_head_stride % kVec == 0 &&
                            is_aligned(p.input, sizeof(TAct) * kVec) && is_aligned(p.residual, sizeof(TAct) * kVec) &&
                            is_aligned(p.out, sizeof(TOut) * kVec) && is_aligned(p.weight, sizeof(TW) * kVec) &&
                            is_aligned(p.bias, sizeof(TW) * kVec);
  const int vec = vectorisable ? kVec : 1;
  const int64_t n_vec = p.hidden / vec;
  int vecs_per_thread = 1;
  const int target_threads = target_threads_per_row(p, n_vec, KindTraits<KIND>::kFusedAdd);
  while (vecs_per_thread < kMaxVecsPerThread && n_vec > static_cast<int64_t>(vecs_per_thread) * target_threads) {
    vecs_per_thread *= 2;
  }
  const int64_t threads_needed = (n_vec + vecs_per_thread - 1) / vecs_per_thread;
  const bool in_registers = vectorisable && threads_needed <= kMaxRegisterThreads;

  int threads_per_row = 0, rows_per_block = 0;
  choose_block(in_registers ? threads_needed : n_vec, target_threads, WAVE, &threads_per_row, &rows_per_block);
  if (threads_per_row > kMaxThreadsPerBlock) threads_per_row = kMaxThreadsPerBlock;
  const dim3 block(threads_per_row, rows_per_block);
  dim3 grid(static_cast<unsigned>((p.rows + rows_per_block - 1) / rows_per_block));

  if (info != nullptr) {
    *info = NormLaunchInfo{in_registers ? "registers" : "streaming", vec, in_registers ? vecs_per_thread : 0,
                           threads_per_row, rows_per_block, WAVE};
  }
  if (in_registers) {
    auto launch = [&](auto kernel, auto vecs_per_thread_constant) {
      // Prefetching kernels get as many blocks as stay resident at once: each walks rows.
      const int blocks_per_sm = prefetches_next_row(KIND, decltype(vecs_per_thread_constant)::value) && resident_grid(p)
                                    ? resident_blocks_per_multiprocessor(kernel, threads_per_row * rows_per_block)
                                    : 0;
      if (blocks_per_sm > 0) {
        const int64_t resident = static_cast<int64_t>(blocks_per_sm) * traits.multiprocessors;
        if (resident < grid.x) grid.x = static_cast<unsigned>(resident);
      }
      kernel<<<grid, block, 0, stream>>>(p);
    };
    switch (vecs_per_thread) {
      case 1: launch(norm_rows_in_registers<KIND, WAVE, kVec, 1, TAct, TW, TOut, FP32_SUM>, std::integral_constant<int, 1>{}); break;
      case 2: launch(norm_rows_in_registers<KIND, WAVE, kVec, 2, TAct, TW, TOut, FP32_SUM>, std::integral_constant<int, 2>{}); break;
      case 4: launch(norm_rows_in_registers<KIND, WAVE, kVec, 4, TAct, TW, TOut, FP32_SUM>, std::integral_constant<int, 4>{}); break;
      default:
        launch(norm_rows_in_registers<KIND, WAVE, kVec, kMaxVecsPerThread, TAct, TW, TOut, FP32_SUM>,
               std::integral_constant<int, kMaxVecsPerThread>{});
        break;
    }
  } else if (vectorisable) {
    norm_rows_streaming<KIND, WAVE, kVec, TAct, TW, TOut, FP32_SUM><<<grid, block, 0, stream>>>(p);
  } else {
    norm_rows_streaming<KIND, WAVE, 1, TAct, TW, TOut, FP32_SUM><<<grid, block, 0, stream>>>(p);
  }
  return gpuGetLastError();
}

// Resolves the wave width, then the element types of one kind.
template <NormKind KIND, typename TAct, typename TW, typename TOut, bool FP32_SUM = false>
gpuError_t launch_norm_on_device(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  return dispatch_device_wave([&](const DeviceTraits& traits, auto wave) {
    return launch_norm_typed<KIND, decltype(wave)::value, TAct, TW, TOut, FP32_SUM>(p, stream, traits, info);
  });
}

// Calls f(TAct{}) for the activation dtype; gpuErrorNoVariant for others.
template <typename F>
gpuError_t dispatch_activation(DType dtype, F&& f) {
  return dispatch_activation_dtype(dtype, gpuErrorNoVariant, std::forward<F>(f));
}

// Calls f(TOut{}) for the quantising forms' fp8 output dtype; gpuErrorNoVariant for others.
template <typename F>
gpuError_t dispatch_fp8_output(DType dtype, F&& f) {
  return dispatch_fp8_dtype(dtype, gpuErrorNoVariant, std::forward<F>(f));
}

}  // namespace flashhip::kernels::norm_detail

namespace flashhip::kernels {
// One entry per kind, defined in its own translation unit.
gpuError_t launch_rms_norm(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info);
gpuError_t launch_fused_add_rms_norm(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info);
gpuError_t launch_fused_add_rms_norm_fp32_sum(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info);
gpuError_t launch_layer_norm(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info);
gpuError_t launch_rms_norm_quant(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info);
gpuError_t launch_fused_add_rms_norm_quant(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info);
gpuError_t launch_fused_add_rms_norm_quant_fp32_sum(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info);
gpuError_t launch_layer_norm_quant(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info);
}  // namespace flashhip::kernels
