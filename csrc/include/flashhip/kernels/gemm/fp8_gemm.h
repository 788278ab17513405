// Blockwise-scaled fp8 GEMM (DeepSeek-V3 style) and the activation quantiser that feeds it.
// Host-only header, no torch: the torch wrappers, the CPU code and the GPU launchers meet here.
//
//   out[m, n] = sum_kb a_scale[m, kb] * b_scale[n / 128, kb] * sum_{k in kb} a[m, k] * b[n, k]
//
// with kb the 128-wide K blocks, accumulated in fp32 and rounded once to out_dtype.
#pragma once

#include <cstddef>
#include <cstdint>

#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/launch.h"

namespace flashhip::kernels {

inline constexpr int kFp8ScaleBlock = 128;  // K block of both scales; N block of b_scale

// Element (i, j) of every operand sits at base + i * stride_0 + j * stride_1 (elements). Either
// stride of a and b may be 1: K-contiguous (the usual) or M/N-contiguous (the AMD challenge).
struct Fp8GemmParams {
  void* out = nullptr;              // [m, n] out_dtype, inner stride 1
  const void* a = nullptr;          // [m, k] fp8_dtype
  const void* b = nullptr;          // [n, k] fp8_dtype
  const float* a_scale = nullptr;   // [m, k / 128]
  const float* b_scale = nullptr;   // [ceil(n / 128), k / 128]
  int64_t m = 0, n = 0, k = 0;      // k % 128 == 0, n % 64 == 0 (checked by the caller)
  int64_t out_stride_m = 0;
  int64_t a_stride_m = 0, a_stride_k = 1;
  int64_t b_stride_n = 0, b_stride_k = 1;
  int64_t a_scale_stride_m = 0, a_scale_stride_kb = 1;
  int64_t b_scale_stride_nb = 0, b_scale_stride_kb = 1;
  DType fp8_dtype = DType::kFloat8E4M3FN;
  DType out_dtype = DType::kBFloat16;  // kBFloat16, kFloat16 or kFloat32
  // Scratch the launcher may use (split-K partials, K-contiguous copies of M/N-contiguous
  // operands): at least fp8_gemm_workspace_bytes(params) bytes, 256-byte aligned, or null when
  // that is 0. Its contents need not be initialised.
  void* workspace = nullptr;
  size_t workspace_size = 0;
  // Tuning: 0 lets the launcher's heuristic choose; tests and benchmarks force variants here.
  int force_block_m = 0;  // 64, 128, or 256 (16-bit out, no split-K)
  int force_split_k = 0;  // K blocks split among this many CTAs per output tile
  int force_stage_k_blocks = 0;  // decode kernel (M <= 64): K blocks per ring stage, 1 or wide (> 1)
  // Decode kernel: how the weights reach shared memory. 1: TMA boxes of 128 rows x 128 bytes,
  // 2: cp.async by two producer warps, each row's K blocks of a stage as one contiguous run.
  int force_decode_weight_copy = 0;
  // Decode kernel with split-K: 1 sums the splits inside clusters of split_k CTAs (distributed
  // shared memory, no second kernel) where the split is 2..16 and the units fit one wave.
  // Not yet run on a GPU (compiled for sm_90a; its device-check cases wait for the next run).
  int force_decode_cluster_split = 0;
  int force_stream_k = 0;  // 1: stream-K (main kernel, no split-K), -1: never
  int force_block_n = 0;  // main kernel: 128, or 192 (128-row tiles, data-parallel only)
  // Main kernel in 2-CTA clusters sharing one operand tile through TMA multicast: 1 pairs
  // M-neighbours sharing B, 2 pairs N-neighbours sharing A, -1 never.
  int force_multicast = 0;
};

// What the launcher chose, for logging and benchmarks.
struct Fp8GemmLaunchInfo {
  const char* variant = "";  // e.g. "wgmma_sm90", "mfma_cdna3", "simt"
  int block_m = 0, block_n = 0, block_k = 0;
  int stages = 0;
  int stage_k_blocks = 1;  // K blocks a ring stage holds
  int split_k = 1;
  bool stream_k = false;  // the tiles' K blocks shared out among the CTAs (tile_scheduler.cuh)
  bool cluster_split = false;  // decode: split-K summed inside clusters (no second kernel)
  int cluster_m = 1, cluster_n = 1;  // 2-CTA clusters: M-neighbours share B / N-neighbours share A
  int grid = 0;
  bool transposed_a = false, transposed_b = false;
};

// Scratch bytes launch_fp8_gemm needs for these params on the current device (0 if none).
size_t fp8_gemm_workspace_bytes(const Fp8GemmParams& params);

// Enqueues the GEMM on `stream`. Argument validation is the caller's. Returns
// gpuErrorInvalidValue if no kernel for this device/dtype combination was built.
LaunchStatus launch_fp8_gemm(const Fp8GemmParams& params, StreamHandle stream, Fp8GemmLaunchInfo* info = nullptr);

// ---- per-token-group fp8 quantisation ----
//   scale[m, g] = max(max_{j in group g} |input[m, j]|, eps) / fp8_max
//   out[m, j]   = saturate(input[m, j] / scale[m, j / group_size])
struct GroupQuantParams {
  void* out = nullptr;            // [m, k] fp8_dtype, row stride out_stride_m, inner stride 1
  float* scale = nullptr;         // [m, k / group_size]; (i, g) at i * scale_stride_m + g * scale_stride_g
  const void* input = nullptr;    // [m, k] in_dtype (fp16/bf16/fp32), inner stride 1
  int64_t m = 0, k = 0;
  int64_t input_stride_m = 0, out_stride_m = 0;
  int64_t scale_stride_m = 0, scale_stride_g = 1;
  int group_size = 128;           // divides k
  float eps = 1e-10f;
  DType in_dtype = DType::kBFloat16;
  DType fp8_dtype = DType::kFloat8E4M3FN;
  // Tuning (0: the launcher's heuristic); benchmarks and tests force variants here.
  int force_groups_in_flight = 0;  // groups each thread of the vector kernel keeps loading: 4 or 8
};

// What the launcher chose, for logging and benchmarks.
struct GroupQuantLaunchInfo {
  const char* variant = "";   // "vector" (16-byte accesses, a group's lanes reduce) or "scalar" (any alignment)
  int groups_in_flight = 0;   // vector: groups each thread has loading while it quantises one
  int wave = 0;
};

LaunchStatus launch_group_quant_fp8(const GroupQuantParams& params, StreamHandle stream,
                                    GroupQuantLaunchInfo* info = nullptr);

}  // namespace flashhip::kernels
