// The RoPE + fp8 quantisation launcher (op rope_quantize_fp8, FlashInfer's rope_quantize_fp8 /
// mla_rope_quantize_fp8): the producer side of an fp8 KV cache. q and k arrive split into their
// rotary part (q_rope, k_rope) and their pass-through part (q_nope, k_nope); the rotary part is
// turned by the angles of each token's position, read from a cos|sin cache, then both parts are
// multiplied by a scale (quant_scale_q for q, quant_scale_kv for k) and stored as saturated fp8.
// Host-only header, no torch.
#pragma once

#include <cstdint>

#include "flashhip/kernels/rope/rope.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/launch.h"

namespace flashhip::kernels {

// One part of q and k (the rotary part, or the pass-through "nope" part): element (t, h, d) of
// q lives at q + t * q_token_stride + h * q_head_stride + d (innermost dimension contiguous, the
// other two strides free: views of a fused buffer); the same for k, q_out and k_out. MLA's k
// tensors [nnz, dim] are one head (num_k_heads 1, head stride 0). Outputs and inputs do not
// overlap.
struct RopeQuantPart {
  const void* q = nullptr;  // [nnz, num_q_heads, dim] dtype
  const void* k = nullptr;  // [nnz, num_k_heads, dim] dtype
  void* q_out = nullptr;    // [nnz, num_q_heads, dim] out_dtype
  void* k_out = nullptr;    // [nnz, num_k_heads, dim] out_dtype
  int64_t q_token_stride = 0, q_head_stride = 0;
  int64_t k_token_stride = 0, k_head_stride = 0;
  int64_t q_out_token_stride = 0, q_out_head_stride = 0;
  int64_t k_out_token_stride = 0, k_out_head_stride = 0;
};

struct RopeQuantParams {
  RopeQuantPart rope;                    // dim rope_dim: rotated, then quantised
  RopeQuantPart nope;                    // dim nope_dim: quantised only
  const float* cos_sin_cache = nullptr;  // [max_positions, rope_dim]: cos | sin halves
  const void* positions = nullptr;       // [nnz] positions_type
  int64_t cache_row_stride = 0;  // elements between consecutive positions of the cache
  int64_t positions_stride = 1;  // elements between consecutive tokens' positions
  int64_t nnz = 0;               // tokens
  int64_t max_positions = 0;     // rows of the cache
  int num_q_heads = 0;
  int num_k_heads = 0;
  int rope_dim = 0;              // even, > 0: rotated, the cache's row length
  int nope_dim = 0;              // >= 0: quantised unrotated
  bool interleave = false;       // false: NeoX pairs (i, i + rope_dim/2); true: GPT-J pairs (2i, 2i+1)
  // The quantised value is saturate(x * scale): a multiply, as FlashInfer's quant_scale is.
  float quant_scale_q = 1.0f;
  float quant_scale_kv = 1.0f;
  DType dtype = DType::kBFloat16;          // of the four inputs: fp16 or bf16
  DType out_dtype = DType::kFloat8E4M3FN;  // of the four outputs: e4m3fn, e4m3fnuz or e5m2
  IndexType positions_type = IndexType::kInt64;
};

// What the launcher chose, for logging and benchmarks.
struct RopeQuantLaunchInfo {
  const char* variant = "";  // "vector" (16-byte loads) or "scalar" (any alignment)
  int vec = 0;               // input elements per load (rotary: VEC pairs as two loads)
  int chunks_per_head = 0;   // threads sharing one head: rotary chunks + nope threads
};

// Enqueues the kernel on `stream`. Argument validation is the caller's. Positions are not checked
// on the host (a device-to-host copy): a token whose position is outside [0, max_positions) is
// skipped on the device, its output rows left as they were. An invalid-value error comes back
// only for a dtype pair no kernel was built for.
LaunchStatus launch_rope_quant(const RopeQuantParams& params, StreamHandle stream,
                               RopeQuantLaunchInfo* info = nullptr);

}  // namespace flashhip::kernels
