// The normalisation family's launcher: rmsnorm, fused add + rmsnorm, layernorm and the fp8
// quantising forms (of rmsnorm and layernorm), over rows of a [rows, hidden] view. Host-only header, no torch.
#pragma once

#include <cstdint>

#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/launch.h"

namespace flashhip::kernels {

enum class NormKind : int8_t {
  kRms,               // out = rmsnorm(input)
  kFusedAddRms,       // residual = input + residual; out = rmsnorm(residual) (or of the fp32 sum)
  kLayer,             // out = layernorm(input) (* weight + bias)
  kRmsQuant,          // out (fp8) = rmsnorm(input) / scale
  kFusedAddRmsQuant,  // residual = input + residual; out (fp8) = rmsnorm(residual) / scale (or of the
                      // fp32 sum with fp32_sum)
  kLayerQuant,        // out (fp8) = (layernorm(input) (* weight + bias)) / scale
};

// How the prefetching register kernels lay out their grid.
enum class NormGrid : int8_t {
  kAuto,       // the heuristic (today: a resident grid)
  kResident,   // as many blocks as stay resident, each walking rows
  kRowGroups,  // one block per row group
};

// Row r starts at base + r * row_stride elements, or, with heads > 1 (a [tokens, heads, hidden]
// view whose heads are strided apart, e.g. q or k out of a fused qkv buffer for a per-head
// qk-norm), at base + (r / heads) * row_stride + (r % heads) * head_stride. The innermost
// dimension is contiguous. out may alias input (in place).
struct NormParams {
  NormKind kind = NormKind::kRms;
  void* out = nullptr;             // [rows, hidden] out_dtype
  const void* input = nullptr;     // [rows, hidden] act_dtype
  void* residual = nullptr;        // [rows, hidden] act_dtype; fused forms only
  const void* weight = nullptr;    // [hidden] weight_dtype
  const void* bias = nullptr;      // [hidden] weight_dtype, or null; layernorm kinds only
  const float* scale = nullptr;    // [1]; quantising forms only
  int64_t out_row_stride = 0;
  int64_t input_row_stride = 0;
  int64_t residual_row_stride = 0;
  int64_t out_head_stride = 0;       // heads > 1 only
  int64_t input_head_stride = 0;
  int64_t residual_head_stride = 0;
  int64_t heads = 1;                 // rows per token; rows is tokens * heads
  int64_t rows = 0;
  int64_t hidden = 0;
  float eps = 1e-6f;
  bool gemma = false;  // scale by (1 + weight) instead of weight
  // The fused kinds (kFusedAddRms, kFusedAddRmsQuant) only: normalise the fp32 sum input + residual
  // (FlashInfer's arithmetic) rather than the residual as rounded to its dtype; the residual
  // written is the rounded sum either way.
  bool fp32_sum = false;
  DType act_dtype = DType::kFloat32;
  DType weight_dtype = DType::kFloat32;
  DType out_dtype = DType::kFloat32;
  // Tuning (0 / kAuto: the launcher's heuristic); benchmarks and tests force variants here.
  int threads_per_row = 0;  // target threads per row of the register kernels, 32..512
  NormGrid grid = NormGrid::kAuto;
};

// What the launcher chose, for logging and benchmarks.
struct NormLaunchInfo {
  const char* variant = "";  // "registers" (row held in registers) or "streaming" (re-read)
  int vec = 0;               // elements per memory access
  int vecs_per_thread = 0;   // vectors each thread holds (registers variant)
  int threads_per_row = 0;
  int rows_per_block = 0;
  int wave = 0;
};

// Enqueues the kernel on `stream`. Argument validation is the caller's; an invalid-value error
// comes back only for dtype combinations no kernel was built for.
LaunchStatus launch_norm(const NormParams& params, StreamHandle stream, NormLaunchInfo* info = nullptr);

}  // namespace flashhip::kernels
