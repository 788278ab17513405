// MoE routing kernel: one wave per token. Lane l holds experts l, l + WAVE, ... (ITEMS of them,
// loads coalesced across the wave); the k winners come from k rounds of a wave argmax over
// packed (rank key, expert) integers, so ties resolve to the lower index exactly as on the CPU.
// Groups: each wave stages its selection values in shared memory, reduces each group's top two
// with a few lanes per group, ranks the groups and masks the dropped ones.
#pragma once

#include <cmath>

#include "flashhip/kernels/moe/moe_topk.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/wave.h"

namespace flashhip::kernels::moe_topk_detail {

inline constexpr int kWavesPerBlock = 4;

// Shared floats one wave needs when grouping: selection values, group scores, kept flags.
FH_HOST_DEVICE FH_INLINE int grouped_smem_floats(int experts, int num_groups) { return experts + 2 * num_groups; }

// Largest power of two L with L * num_groups <= wave (at least 1): lanes sharing one group.
FH_HOST_DEVICE FH_INLINE int lanes_per_group(int wave, int num_groups) {
  int lanes = 1;
  while (lanes * 2 * num_groups <= wave) lanes *= 2;
  return lanes;
}

// Every lane ends with the largest key of the wave and the score that came with it.
template <int WAVE>
FH_DEVICE FH_INLINE void wave_argmax(uint64_t& key, float& score) {
  int owner = 0;
  key = wave_max_u64<WAVE>(key, &owner);
  score = shfl<WAVE>(score, owner);
}

// Keeps the two largest values seen (a multiset: equal values count twice).
FH_DEVICE FH_INLINE void push_top2(float v, float& best, float& second) {
  if (v > best) {
    second = best;
    best = v;
  } else if (v > second) {
    second = v;
  }
}

// Writes kept[g] (1 or 0) for every group of this wave's token. `sel` holds the token's
// selection values with NaN already turned into -inf.
template <int WAVE>
FH_DEVICE FH_INLINE void rank_groups(const MoeTopkParams& p, const float* sel /* [experts] */,
                                     float* group_score /* [num_groups] */, float* kept /* [num_groups] */) {
  const int lane = lane_id<WAVE>();
  const int group_size = p.experts / p.num_groups;
  const bool top_two = p.correction_bias != nullptr && group_size >= 2;
  const int lanes = lanes_per_group(WAVE, p.num_groups);
  const int groups_per_pass = WAVE / lanes;
  for (int first = 0; first < p.num_groups; first += groups_per_pass) {  // uniform across the wave
    const int g = first + lane / lanes;
    const int sub = lane % lanes;
    float best = -INFINITY, second = -INFINITY;
    if (g < p.num_groups) {
      for (int e = g * group_size + sub; e < (g + 1) * group_size; e += lanes) push_top2(sel[e], best, second);
    }
    for (int offset = 1; offset < lanes; offset *= 2) {
      const float other_best = shfl_xor<WAVE>(best, offset);
      const float other_second = shfl_xor<WAVE>(second, offset);
      const float hi = fmaxf(best, other_best);
      second = fmaxf(fminf(best, other_best), fmaxf(second, other_second));
      best = hi;
    }
    if (g < p.num_groups && sub == 0) group_score[g] = top_two ? best + second : best;
  }
  wave_sync<WAVE>();
  for (int g = lane; g < p.num_groups; g += WAVE) {
    const float score = group_score[g];
    int rank = 0;
    for (int h = 0; h < p.num_groups; ++h) rank += moe_rank::group_ranks_before(group_score[h], h, score, g);
    kept[g] = rank < p.topk_group ? 1.0f : 0.0f;
  }
  wave_sync<WAVE>();
}

template <int WAVE, int ITEMS, typename TIn>
__global__ void __launch_bounds__(WAVE * kWavesPerBlock) moe_topk_kernel(const MoeTopkParams p) {
  // Grouped calls only: kWavesPerBlock x [experts selection values | group scores | kept flags].
  extern __shared__ float group_smem[];
  const int wave = static_cast<int>(threadIdx.x) / WAVE;
  const int lane = lane_id<WAVE>();
  const int64_t token = static_cast<int64_t>(blockIdx.x) * kWavesPerBlock + wave;
  if (token >= p.tokens) return;  // the whole wave: no lane of it takes part in anything below
  const TIn* logits = static_cast<const TIn*>(p.gating) + token * p.gating_row_stride;  // [experts]
  const bool biased = p.correction_bias != nullptr;

  float logit[ITEMS];
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int e = i * WAVE + lane;
    logit[i] = e < p.experts ? to_float(logits[e]) : -INFINITY;
  }

  float score[ITEMS];
  if (p.scoring == MoeScoring::kSoftmax) {
    float local_max = -INFINITY;
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) local_max = fmaxf(local_max, logit[i]);
    const float row_max = group_reduce_max<WAVE>(local_max);
    float local_sum = 0.0f;
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      score[i] = i * WAVE + lane < p.experts ? expf(logit[i] - row_max) : 0.0f;
      local_sum += score[i];
    }
    const float row_sum = group_reduce_sum<WAVE>(local_sum);
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) score[i] = score[i] / row_sum;
  } else {
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) score[i] = 1.0f / (1.0f + expf(-logit[i]));
  }

  float sel[ITEMS];  // the value experts are chosen by
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int e = i * WAVE + lane;
    sel[i] = biased && e < p.experts ? score[i] + p.correction_bias[e] : logit[i];
  }

  const float* kept = nullptr;  // [num_groups], grouped calls only
  const int group_size = p.experts / p.num_groups;
  if (p.grouped()) {
    float* sel_smem = group_smem + wave * grouped_smem_floats(p.experts, p.num_groups);  // [experts]
    float* group_score = sel_smem + p.experts;                                            // [num_groups]
    float* kept_smem = group_score + p.num_groups;                                        // [num_groups]
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) {
      const int e = i * WAVE + lane;
      if (e < p.experts) sel_smem[e] = sel[i] != sel[i] ? -INFINITY : sel[i];
    }
    wave_sync<WAVE>();
    rank_groups<WAVE>(p, sel_smem, group_score, kept_smem);
    kept = kept_smem;
  }

  uint64_t key[ITEMS];
  uint64_t best_key = 0;  // this lane's best remaining expert
  float best_score = 0.0f;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const int e = i * WAVE + lane;
    if (e < p.experts) {
      const bool masked = kept != nullptr && kept[e / group_size] == 0.0f;
      key[i] = moe_rank::pack(masked ? moe_rank::kMaskedKey : moe_rank::float_key(sel[i]), e);
    } else {
      key[i] = 0;
    }
    if (key[i] > best_key) {
      best_key = key[i];
      best_score = score[i];
    }
  }

  // Round j: the wave's best remaining expert goes to slot j (held by lane j); its owner
  // takes it out and finds its own next best.
  int chosen_expert = 0;
  float chosen_score = 0.0f;
  for (int j = 0; j < p.k; ++j) {
    uint64_t winner = best_key;
    float winner_score = best_score;
    wave_argmax<WAVE>(winner, winner_score);
    if (lane == j) {
      chosen_expert = moe_rank::unpack_expert(winner);
      chosen_score = winner_score;
    }
    if (winner == best_key) {
      best_key = 0;
      best_score = 0.0f;
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) {
        if (key[i] == winner) key[i] = 0;
        if (key[i] > best_key) {
          best_key = key[i];
          best_score = score[i];
        }
      }
    }
  }

  const bool writes = lane < p.k;
  const float chosen_sum = group_reduce_sum<WAVE>(writes ? chosen_score : 0.0f);
  float weight = chosen_score;
  if (p.renormalize && chosen_sum > 0.0f) weight = weight / chosen_sum;
  weight *= p.routed_scaling_factor;
  if (writes) {
    p.topk_weights[token * p.weights_row_stride + lane] = weight;
    p.topk_ids[token * p.ids_row_stride + lane] = chosen_expert;
  }
}

}  // namespace flashhip::kernels::moe_topk_detail
