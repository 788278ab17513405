// A stable counting sort in three passes: count per expert, padded starts, place in pair order.
#include "moe_align.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace flashhip::cpu {
namespace {

template <typename TId>
void align(const kernels::MoeAlignParams& p) {
  const int64_t pairs = p.rows * p.k;
  const int E = p.experts;
  const int32_t pad = static_cast<int32_t>(pairs);
  std::vector<int32_t> local(static_cast<size_t>(pairs));  // the expert of each pair, -1 if left out
  for (int64_t r = 0; r < p.rows; ++r) {
    const TId* row = static_cast<const TId*>(p.topk_ids) + r * p.ids_row_stride;  // [k]
    for (int64_t j = 0; j < p.k; ++j) {
      const int64_t id = row[j];
      local[r * p.k + j] = p.expert_map != nullptr ? p.expert_map[id] : static_cast<int32_t>(id);
    }
  }
  std::vector<int64_t> count(E, 0), start(E + 1, 0);
  for (const int32_t e : local) {
    if (e >= 0) ++count[e];
  }
  for (int e = 0; e < E; ++e) start[e + 1] = start[e] + (count[e] + p.block_size - 1) / p.block_size * p.block_size;
  for (int64_t i = 0; i < p.sorted_capacity; ++i) p.sorted_token_ids[i] = pad;
  if (p.label_unused_blocks) {
    for (int64_t b = start[E] / p.block_size; b < p.expert_ids_capacity; ++b) p.expert_ids[b] = -1;
  }
  std::vector<int64_t> next(start.begin(), start.end() - 1);
  for (int64_t q = 0; q < pairs; ++q) {
    if (local[q] >= 0) p.sorted_token_ids[next[local[q]]++] = static_cast<int32_t>(q);
  }
  for (int e = 0; e < E; ++e) {
    for (int64_t b = start[e] / p.block_size; b < start[e + 1] / p.block_size; ++b) p.expert_ids[b] = e;
  }
  *p.num_tokens_post_pad = static_cast<int32_t>(start[E]);
}

}  // namespace

void moe_align(const kernels::MoeAlignParams& p) {
  if (p.ids_int64) {
    align<int64_t>(p);
  } else {
    align<int32_t>(p);
  }
}

}  // namespace flashhip::cpu
