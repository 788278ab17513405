// Tokens in parallel; per token the same steps and fp32 arithmetic as the GPU kernel, and the
// same ranking keys (moe_rank), so ties and masking resolve identically.
#include "moe_topk.h"

#include "dispatch.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

namespace flashhip::cpu {
namespace {

using kernels::MoeScoring;
using kernels::MoeTopkParams;
namespace moe_rank = kernels::moe_rank;

constexpr float kInf = std::numeric_limits<float>::infinity();

// kept[g] for every group: the topk_group best by score (top-two sum with a bias, else the
// best value), ties to the lower group.
void rank_groups(const MoeTopkParams& p, const std::vector<float>& sel, std::vector<char>& kept,
                 std::vector<float>& group_score) {
  const int group_size = p.experts / p.num_groups;
  const bool top_two = p.correction_bias != nullptr && group_size >= 2;
  for (int g = 0; g < p.num_groups; ++g) {
    float best = -kInf, second = -kInf;
    for (int e = g * group_size; e < (g + 1) * group_size; ++e) {
      moe_rank::push_top2(std::isnan(sel[e]) ? -kInf : sel[e], best, second);
    }
    group_score[g] = top_two ? best + second : best;
  }
  for (int g = 0; g < p.num_groups; ++g) {
    int rank = 0;
    for (int h = 0; h < p.num_groups; ++h) rank += moe_rank::group_ranks_before(group_score[h], h, group_score[g], g);
    kept[g] = rank < p.topk_group;
  }
}

template <typename TIn>
void route_tokens(const MoeTopkParams& p) {
  const int E = p.experts;
  const bool biased = p.correction_bias != nullptr;
  at::parallel_for(0, p.tokens, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> logit(E), score(E), sel(E), group_score(p.num_groups);
    std::vector<char> kept(p.num_groups, 1);
    std::vector<uint64_t> key(E);
    for (int64_t t = begin; t < end; ++t) {
      const TIn* row = static_cast<const TIn*>(p.gating) + t * p.gating_row_stride;  // [experts]
      for (int e = 0; e < E; ++e) logit[e] = static_cast<float>(row[e]);
      if (p.scoring == MoeScoring::kSoftmax) {
        float row_max = -kInf;
        for (int e = 0; e < E; ++e) row_max = std::fmax(row_max, logit[e]);
        float row_sum = 0.0f;
        for (int e = 0; e < E; ++e) {
          score[e] = std::exp(logit[e] - row_max);
          row_sum += score[e];
        }
        for (int e = 0; e < E; ++e) score[e] = score[e] / row_sum;
      } else {
        for (int e = 0; e < E; ++e) score[e] = moe_rank::flush_tiny_score(1.0f / (1.0f + std::exp(-logit[e])));
      }
      for (int e = 0; e < E; ++e) sel[e] = biased ? score[e] + p.correction_bias[e] : logit[e];
      if (p.grouped()) rank_groups(p, sel, kept, group_score);
      const int group_size = E / p.num_groups;
      for (int e = 0; e < E; ++e) {
        const bool masked = p.grouped() && !kept[e / group_size];
        key[e] = moe_rank::pack(masked ? moe_rank::kMaskedKey : moe_rank::float_key(sel[e]), e);
      }
      float* weights = p.topk_weights + t * p.weights_row_stride;  // [k]
      int32_t* ids = p.topk_ids + t * p.ids_row_stride;            // [k]
      float chosen_sum = 0.0f;
      for (int j = 0; j < p.k; ++j) {
        int winner = 0;
        for (int e = 1; e < E; ++e) winner = key[e] > key[winner] ? e : winner;
        key[winner] = 0;
        ids[j] = winner;
        weights[j] = score[winner];
        chosen_sum += score[winner];
      }
      if (p.renormalize && p.scoring == MoeScoring::kSigmoid && chosen_sum < moe_rank::kRescaleBelowSum) {
        // Tiny scores: the same ratios from the logits rescaled by the largest (moe_topk.h).
        float m = -kInf;
        for (int j = 0; j < p.k; ++j) m = std::fmax(m, logit[ids[j]]);
        if (m > -kInf) {
          chosen_sum = 0.0f;
          for (int j = 0; j < p.k; ++j) {
            weights[j] = moe_rank::rescaled_sigmoid(logit[ids[j]], m);
            chosen_sum += weights[j];
          }
        }
      }
      for (int j = 0; j < p.k; ++j) {
        float w = weights[j];
        if (p.renormalize && chosen_sum > 0.0f) w = w / chosen_sum;
        weights[j] = w * p.routed_scaling_factor;
      }
    }
  });
}

}  // namespace

void moe_topk(const MoeTopkParams& p) {
  dispatch_activation("flashhip.moe_topk", p.gating_dtype, [&](auto element) { route_tokens<decltype(element)>(p); });
}

}  // namespace flashhip::cpu
