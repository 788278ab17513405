// The rotary position embedding launcher: rotates the first rotary_dim elements of every q and
// k head of each token by the angles of that token's position, read from a cos|sin cache, and
// optionally stores the rotated k and the v of each token into a KV cache in the same pass.
// Host-only header, no torch.
#pragma once

#include <cstdint>

#include "flashhip/kernels/rope/rope_frequencies.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/launch.h"

namespace flashhip::kernels {

enum class IndexType : int8_t { kInt32, kInt64 };

// The KV-cache write fused into the rotation (op rope_set_kv_buffer: SGLang's set_kv_buffer
// done by the rope kernel): token t's rotated k heads (whole heads, the pass-through part past
// rotary_dim included) are stored into row cache_loc[t] of k_cache, and its v heads, unchanged,
// into the same row of v_cache. Rows no token names are not touched. Element (s, h, d) of
// k_cache lives at k_cache + s * k_cache_slot_stride + h * k_cache_head_stride + d (likewise
// v_cache, and v by token). Only with a cos|sin cache; k_cache null: no write.
struct RopeKvWrite {
  void* k_cache = nullptr;             // [cache_slots, num_k_heads, head_dim] dtype
  void* v_cache = nullptr;             // [cache_slots, num_k_heads, head_dim] dtype
  const void* v = nullptr;             // [nnz, num_k_heads, head_dim] dtype
  const int64_t* cache_loc = nullptr;  // [nnz]: the cache row of each token
  int64_t v_token_stride = 0, v_head_stride = 0;
  int64_t k_cache_slot_stride = 0, k_cache_head_stride = 0;
  int64_t v_cache_slot_stride = 0, v_cache_head_stride = 0;
  int64_t cache_loc_stride = 1;  // elements between consecutive tokens' rows
  int64_t cache_slots = 0;       // rows of k_cache and v_cache
};

// Element (t, h, d) of q lives at q + t * q_token_stride + h * q_head_stride + d: the innermost
// dimension is contiguous, the other two strides are free (views of a fused qkv buffer). The
// same holds for k, q_out and k_out. q_out may be q and k_out may be k (in place); otherwise
// outputs and inputs do not overlap.
struct RopeParams {
  void* q_out = nullptr;                  // [nnz, num_q_heads, head_dim] dtype
  void* k_out = nullptr;                  // [nnz, num_k_heads, head_dim] dtype
  const void* q = nullptr;                // [nnz, num_q_heads, head_dim] dtype
  const void* k = nullptr;                // [nnz, num_k_heads, head_dim] dtype
  const float* cos_sin_cache = nullptr;   // [max_positions, rotary_dim]: cos | sin halves; null: computed
  const void* positions = nullptr;        // [nnz] positions_type
  int64_t q_token_stride = 0, q_head_stride = 0;
  int64_t k_token_stride = 0, k_head_stride = 0;
  int64_t q_out_token_stride = 0, q_out_head_stride = 0;
  int64_t k_out_token_stride = 0, k_out_head_stride = 0;
  int64_t cache_row_stride = 0;   // elements between consecutive positions of the cache
  int64_t positions_stride = 1;   // elements between consecutive tokens' positions
  int64_t nnz = 0;                // tokens
  int64_t max_positions = 0;      // rows of the cache (unused when the angles are computed)
  int num_q_heads = 0;
  int num_k_heads = 0;
  int head_dim = 0;
  int rotary_dim = 0;             // even, <= head_dim; elements past it are copied unchanged
  bool copy_q_tail = false;       // q_out is not q: write q's elements past rotary_dim too
  bool copy_k_tail = false;       // k_out is not k
  bool interleave = false;        // false: NeoX pairs (i, i + rotary_dim/2); true: GPT-J pairs (2i, 2i+1)
  DType dtype = DType::kFloat32;  // of q, k, q_out, k_out
  IndexType positions_type = IndexType::kInt64;
  // With no cache, pair i of a token at position p turns by float(p) * rope_inv_freq(frequencies, i)
  // (sincosf in fp32), for any position, negative ones included.
  RopeFrequencies frequencies;
  RopeKvWrite kv;
  // Tuning (0: the launcher's heuristic); benchmarks and tests force variants here.
  int max_heads_per_thread = 0;  // most heads one thread rotates with the same cos/sin, 1..64
};

// What the launcher chose, for logging and benchmarks.
struct RopeLaunchInfo {
  const char* variant = "";  // "vector" (16-byte accesses) or "scalar" (any alignment)
  int vec = 0;               // rotary pairs (and tail elements) per thread and head
  int chunks_per_head = 0;   // threads sharing one head: rotary chunks + tail chunks
  int head_lanes = 0;        // threads sharing one token's heads (and its cos/sin row)
  int heads_per_thread = 0;  // at most; each thread reuses its cos/sin for all of them
  int wave = 0;
};

// Enqueues the kernel on `stream`. Argument validation is the caller's. With a cache, positions
// are not checked on the host (that would need a device-to-host copy): a token whose position is
// outside [0, max_positions) is skipped on the device, leaving its rows of q_out and k_out (and
// its KV-cache rows) as they were. Likewise cache_loc: a token whose row is outside
// [0, cache_slots) is rotated but writes no cache row. Two tokens naming one row race: the row
// ends up with either token's elements, which one unspecified. An invalid-value error comes
// back only for a dtype no kernel was built for, or a KV write without a cos|sin cache.
LaunchStatus launch_rope(const RopeParams& params, StreamHandle stream, RopeLaunchInfo* info = nullptr);

}  // namespace flashhip::kernels
