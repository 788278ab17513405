// Tokens in parallel; per token the slots added into an fp32 row in slot order, as the GPU
// kernel adds them (the same bits), then rounded once.
#include "moe_sum.h"

#include <cstdint>
#include <vector>

#include <ATen/Parallel.h>

#include "dispatch.h"

namespace flashhip::cpu {
namespace {

template <typename T>
void sum_tokens(const kernels::MoeSumParams& p) {
  const T* input = static_cast<const T*>(p.input);
  T* out = static_cast<T*>(p.out);
  at::parallel_for(0, p.tokens, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(static_cast<size_t>(p.hidden));
    for (int64_t t = begin; t < end; ++t) {
      for (float& a : acc) a = 0.0f;
      for (int64_t j = 0; j < p.topk; ++j) {
        const T* row = input + t * p.input_token_stride + j * p.input_slot_stride;  // [hidden]
        for (int64_t h = 0; h < p.hidden; ++h) acc[h] += static_cast<float>(row[h]);
      }
      T* out_row = out + t * p.out_row_stride;  // [hidden]
      for (int64_t h = 0; h < p.hidden; ++h) out_row[h] = static_cast<T>(acc[h]);
    }
  });
}

}  // namespace

void moe_sum(const kernels::MoeSumParams& p) {
  if (p.tokens == 0 || p.hidden == 0) return;
  dispatch_activation("flashhip.moe_sum", p.dtype, [&](auto element) { sum_tokens<decltype(element)>(p); });
}

}  // namespace flashhip::cpu
