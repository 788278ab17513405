// Tokens in parallel (at::parallel_for); each rotary pair is read as two values, rotated in
// fp32 and rounded once, the same arithmetic as the GPU kernel. Reading both elements of a pair
// before writing either makes the in-place form safe. Without a cache, each token's cos/sin are
// computed from its position as the GPU kernel computes them (fp32, rope_frequencies.h). With
// the KV-cache write, a token's k_out heads (just written) and v heads are copied into its row.
#include "rope.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "dispatch.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

namespace flashhip::cpu {
namespace {

using kernels::IndexType;
using kernels::RopeParams;

template <typename T>
void rotate_head(const T* in, T* out, const float* cos, const float* sin, const RopeParams& p, bool copy_tail) {
  const int half = p.rotary_dim / 2;
  for (int i = 0; i < half; ++i) {
    const int first = p.interleave ? 2 * i : i;
    const int second = p.interleave ? 2 * i + 1 : i + half;
    const float x1 = static_cast<float>(in[first]);
    const float x2 = static_cast<float>(in[second]);
    out[first] = static_cast<T>(x1 * cos[i] - x2 * sin[i]);
    out[second] = static_cast<T>(x2 * cos[i] + x1 * sin[i]);
  }
  if (copy_tail) {
    for (int d = p.rotary_dim; d < p.head_dim; ++d) out[d] = in[d];
  }
}

// Token t's rotated k heads (its k_out rows, whole) and its v heads into KV-cache row cache_loc[t].
template <typename T>
void store_kv_row(const RopeParams& p, int64_t t) {
  const auto& kv = p.kv;
  const int64_t slot = kv.cache_loc[t * kv.cache_loc_stride];
  const auto* k_out = static_cast<const T*>(p.k_out);  // [nnz, num_k_heads, head_dim]
  const auto* v = static_cast<const T*>(kv.v);         // [nnz, num_k_heads, head_dim]
  auto* k_cache = static_cast<T*>(kv.k_cache);         // [cache_slots, num_k_heads, head_dim]
  auto* v_cache = static_cast<T*>(kv.v_cache);         // [cache_slots, num_k_heads, head_dim]
  const size_t head_bytes = sizeof(T) * static_cast<size_t>(p.head_dim);
  for (int h = 0; h < p.num_k_heads; ++h) {
    std::memcpy(k_cache + slot * kv.k_cache_slot_stride + h * kv.k_cache_head_stride,
                k_out + t * p.k_out_token_stride + h * p.k_out_head_stride, head_bytes);
    std::memcpy(v_cache + slot * kv.v_cache_slot_stride + h * kv.v_cache_head_stride,
                v + t * kv.v_token_stride + h * kv.v_head_stride, head_bytes);
  }
}

template <typename T, typename TPos>
void rope_tokens(const RopeParams& p) {
  const auto* positions = static_cast<const TPos*>(p.positions);  // [nnz]
  const auto* q = static_cast<const T*>(p.q);                      // [nnz, num_q_heads, head_dim]
  const auto* k = static_cast<const T*>(p.k);                      // [nnz, num_k_heads, head_dim]
  auto* q_out = static_cast<T*>(p.q_out);
  auto* k_out = static_cast<T*>(p.k_out);
  const int half = p.rotary_dim / 2;
  const bool compute_angles = p.cos_sin_cache == nullptr;
  std::vector<float> inv_freq(compute_angles ? half : 0);  // [rotary_dim / 2]
  for (int i = 0; i < static_cast<int>(inv_freq.size()); ++i) {
    inv_freq[i] = kernels::rope_inv_freq(p.frequencies, i, p.rotary_dim);
  }
  at::parallel_for(0, p.nnz, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> computed(compute_angles ? 2 * half : 0);  // [rotary_dim]: cos | sin of one token
    for (int64_t t = begin; t < end; ++t) {
      const int64_t position = static_cast<int64_t>(positions[t * p.positions_stride]);
      const float* cos = nullptr;  // [rotary_dim / 2]
      if (compute_angles) {
        for (int i = 0; i < half; ++i) {
          const float angle = static_cast<float>(position) * inv_freq[i];
          computed[i] = std::cos(angle);
          computed[half + i] = std::sin(angle);
        }
        cos = computed.data();
      } else {
        cos = p.cos_sin_cache + position * p.cache_row_stride;
      }
      const float* sin = cos + half;  // [rotary_dim / 2]
      for (int h = 0; h < p.num_q_heads; ++h) {
        rotate_head(q + t * p.q_token_stride + h * p.q_head_stride,
                    q_out + t * p.q_out_token_stride + h * p.q_out_head_stride, cos, sin, p, p.copy_q_tail);
      }
      for (int h = 0; h < p.num_k_heads; ++h) {
        rotate_head(k + t * p.k_token_stride + h * p.k_head_stride,
                    k_out + t * p.k_out_token_stride + h * p.k_out_head_stride, cos, sin, p, p.copy_k_tail);
      }
      if (p.kv.k_cache != nullptr) store_kv_row<T>(p, t);
    }
  });
}

template <typename T>
void rope_for_positions(const RopeParams& p) {
  if (p.positions_type == IndexType::kInt32) return rope_tokens<T, int32_t>(p);
  return rope_tokens<T, int64_t>(p);
}

}  // namespace

void rope(const RopeParams& p) {
  if (p.nnz == 0) return;
  dispatch_activation("flashhip.rope", p.dtype, [&](auto element) { rope_for_positions<decltype(element)>(p); });
}

}  // namespace flashhip::cpu
