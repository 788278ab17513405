// Tokens in parallel (at::parallel_for). The same arithmetic as the GPU kernel: each rotary pair
// rotated in fp32, every value multiplied by its scale in fp32 and converted once to fp8 by the
// platform layer's saturating round-to-nearest-even conversion (the routine the GPU kernels fall
// back to, and what their hardware conversions compute), so the two devices agree bit for bit
// wherever their fp32 rotations do.
#include "rope_quant.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "dispatch.h"
#include "flashhip/platform/fp8.h"

namespace flashhip::cpu {
namespace {

using kernels::IndexType;
using kernels::RopeQuantParams;

template <typename TOut>
void store_scaled(float value, float scale, TOut* dst) {
  *dst = from_float<TOut>(value * scale);
}

// One rope row [rope_dim]: rotated by (cos, sin) [rope_dim / 2], scaled, quantised.
template <typename T, typename TOut>
void rope_row(const T* in, TOut* out, const float* cos, const float* sin, float scale, const RopeQuantParams& p) {
  const int half = p.rope_dim / 2;
  for (int i = 0; i < half; ++i) {
    const int first = p.interleave ? 2 * i : i;
    const int second = p.interleave ? 2 * i + 1 : i + half;
    const float x1 = static_cast<float>(in[first]);
    const float x2 = static_cast<float>(in[second]);
    store_scaled(x1 * cos[i] - x2 * sin[i], scale, out + first);
    store_scaled(x2 * cos[i] + x1 * sin[i], scale, out + second);
  }
}

// One nope row [nope_dim]: scaled, quantised.
template <typename T, typename TOut>
void nope_row(const T* in, TOut* out, float scale, int nope_dim) {
  for (int d = 0; d < nope_dim; ++d) store_scaled(static_cast<float>(in[d]), scale, out + d);
}

template <typename T, typename TOut, typename TPos>
void rope_quant_tokens(const RopeQuantParams& p) {
  const auto* positions = static_cast<const TPos*>(p.positions);  // [nnz]
  const kernels::RopeQuantPart& rope = p.rope;
  const kernels::RopeQuantPart& nope = p.nope;
  const int half = p.rope_dim / 2;
  at::parallel_for(0, p.nnz, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t position = static_cast<int64_t>(positions[t * p.positions_stride]);
      const float* cos = p.cos_sin_cache + position * p.cache_row_stride;  // [rope_dim / 2]
      const float* sin = cos + half;                                      // [rope_dim / 2]
      for (int head = 0; head < p.num_q_heads + p.num_k_heads; ++head) {
        const bool is_q = head < p.num_q_heads;
        const int h = is_q ? head : head - p.num_q_heads;
        const float scale = is_q ? p.quant_scale_q : p.quant_scale_kv;
        // Element offsets of this head's rows: [rope_dim] in the rope part, [nope_dim] in the nope part.
        const auto row = [&](const kernels::RopeQuantPart& part, bool out) {
          return out ? (is_q ? t * part.q_out_token_stride + h * part.q_out_head_stride
                             : t * part.k_out_token_stride + h * part.k_out_head_stride)
                     : (is_q ? t * part.q_token_stride + h * part.q_head_stride
                             : t * part.k_token_stride + h * part.k_head_stride);
        };
        const auto* rope_in = static_cast<const T*>(is_q ? rope.q : rope.k);
        auto* rope_out = static_cast<TOut*>(is_q ? rope.q_out : rope.k_out);
        const auto* nope_in = static_cast<const T*>(is_q ? nope.q : nope.k);
        auto* nope_out = static_cast<TOut*>(is_q ? nope.q_out : nope.k_out);
        rope_row(rope_in + row(rope, false), rope_out + row(rope, true), cos, sin, scale, p);
        nope_row(nope_in + row(nope, false), nope_out + row(nope, true), scale, p.nope_dim);
      }
    }
  });
}

}  // namespace

void rope_quant(const RopeQuantParams& p) {
  if (p.nnz == 0) return;
  dispatch_activation("flashhip.rope_quantize_fp8", p.dtype, [&](auto element) {
    using T = decltype(element);
    const bool known = dispatch_fp8_dtype(p.out_dtype, false, [&](auto quantised) {
      using TOut = decltype(quantised);
      if (p.positions_type == IndexType::kInt32) {
        rope_quant_tokens<T, TOut, int32_t>(p);
      } else {
        rope_quant_tokens<T, TOut, int64_t>(p);
      }
      return true;
    });
    TORCH_INTERNAL_ASSERT(known, "flashhip.rope_quantize_fp8: no CPU implementation for output dtype ",
                          static_cast<int>(p.out_dtype));
  });
}

}  // namespace flashhip::cpu
