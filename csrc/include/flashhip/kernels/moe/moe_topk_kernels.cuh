// ---- MoE routing, strided layout: lane l holds experts i * WAVE + l as 32-bit rank keys ----
// One wave per token; loads coalesce across the wave. Groups are ranked by one of three plans
// (a whole item per group, a run of lanes per group, or staged in shared memory); then each lane
// sorts its (key, item) pairs and k rounds take the wave's best list head. The item packed below
// the key makes every pair distinct, so ties go to the lower expert as on the CPU.
#pragma once

#include <cmath>

#include "flashhip/kernels/moe/moe_topk_common.cuh"

namespace flashhip::kernels::moe_topk_detail {

// How a call groups experts, decided by the launcher.
struct GroupPlan {
  int group_size = 1;         // experts / num_groups
  bool lane_aligned = false;  // group_size divides WAVE and num_groups <= WAVE
  int group_lanes_log2 = 0;   // lane_aligned: log2(group_size)
};

// Shared floats one wave needs: lane-aligned groups keep only their scores; other layouts also
// the selection values and the kept flags.
FH_HOST_DEVICE FH_INLINE int grouped_smem_floats(const MoeTopkParams& p, const GroupPlan& plan) {
  if (!p.grouped()) return 0;
  return plan.lane_aligned ? p.num_groups : p.experts + 2 * p.num_groups;
}

// num_groups <= WAVE: lane g ranks group g; bit g of the result says whether it is kept.
template <int WAVE>
FH_DEVICE FH_INLINE uint64_t kept_groups_ballot(const MoeTopkParams& p, const float* group_score /* [num_groups] */) {
  const int g = lane_id<WAVE>();
  bool kept = false;
  if (g < p.num_groups) {
    const float score = group_score[g];
    int rank = 0;
    for (int h = 0; h < p.num_groups; ++h) rank += moe_rank::group_ranks_before(group_score[h], h, score, g);
    kept = rank < p.topk_group;
  }
  return ballot<WAVE>(kept);
}

// Any layout: writes kept[g] (1 or 0) for every group of this wave's token. `sel` holds the
// token's selection values with NaN already turned into -inf.
template <int WAVE>
FH_DEVICE FH_INLINE void rank_groups_in_smem(const MoeTopkParams& p, int group_size, const float* sel /* [experts] */,
                                             float* group_score /* [num_groups] */, float* kept /* [num_groups] */) {
  const int lane = lane_id<WAVE>();
  const bool top_two = p.correction_bias != nullptr && group_size >= 2;
  int lanes = 1;  // lanes sharing one group: the largest power of two with lanes * groups <= WAVE
  while (lanes * 2 * p.num_groups <= WAVE) lanes *= 2;
  const int groups_per_pass = WAVE / lanes;
  for (int first = 0; first < p.num_groups; first += groups_per_pass) {  // uniform across the wave
    const int g = first + lane / lanes;
    const int sub = lane % lanes;
    float best = -INFINITY, second = -INFINITY;
    if (g < p.num_groups) {
      for (int e = g * group_size + sub; e < (g + 1) * group_size; e += lanes) {
        moe_rank::push_top2(sel[e], best, second);
      }
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

template <int WAVE, int EXPERTS_PER_LANE, typename TIn>
__global__ void FH_LAUNCH_BOUNDS(WAVE * kWavesPerBlock) moe_topk_kernel(const MoeTopkParams p, const GroupPlan plan) {
  extern __shared__ float group_smem[];  // grouped calls: kWavesPerBlock x grouped_smem_floats
  const int wave = static_cast<int>(threadIdx.x / WAVE);
  const int lane = lane_id<WAVE>();
  const uint32_t token = blockIdx.x * kWavesPerBlock + wave;  // tokens <= kMoeMaxTokens (launcher)
  if (token >= p.tokens) return;  // the whole wave: no lane of it takes part in anything below
  // This lane's experts sit WAVE apart from here: one address, constant offsets.
  const TIn* lane_logits =
      static_cast<const TIn*>(p.gating) + token * p.gating_row_stride + lane;  // [EXPERTS_PER_LANE] stride WAVE
  const bool biased = p.correction_bias != nullptr;
  const float* lane_bias = p.correction_bias + lane;  // [EXPERTS_PER_LANE] stride WAVE, biased calls only

  float logit[EXPERTS_PER_LANE];
  float bias[EXPERTS_PER_LANE];
#pragma unroll
  for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
    const bool real = i * WAVE + lane < p.experts;
    logit[i] = real ? to_float(lane_logits[i * WAVE]) : -INFINITY;
    bias[i] = biased && real ? lane_bias[i * WAVE] : 0.0f;
  }

  float score[EXPERTS_PER_LANE];
  bool real[EXPERTS_PER_LANE];
#pragma unroll
  for (int i = 0; i < EXPERTS_PER_LANE; ++i) real[i] = i * WAVE + lane < p.experts;
  score_experts<WAVE, EXPERTS_PER_LANE>(p, logit, real, score);

  // Rank keys of the selection values; 0 for slots past the experts.
  uint32_t key[EXPERTS_PER_LANE];
#pragma unroll
  for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
    const uint32_t selection_key =
        biased ? moe_rank::float_key_not_minus_zero(score[i] + bias[i]) : moe_rank::float_key(logit[i]);
    key[i] = real[i] ? selection_key : 0u;
  }

  if (p.grouped()) {
    const int group_size = plan.group_size;
    const bool top_two = biased && group_size >= 2;
    float* wave_smem = group_smem + wave * grouped_smem_floats(p, plan);
    if (plan.lane_aligned && group_size == WAVE) {
      // Group i is item i across the whole wave: every lane gets every group's score, and lane
      // g ranks group g in registers.
      float group_score[EXPERTS_PER_LANE];
#pragma unroll
      for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
        uint32_t best, second;
        segment_top2_u32<WAVE>(max(key[i], kNegInfKey), WAVE, &best, &second);
        group_score[i] = top_two ? key_to_float(best) + key_to_float(second) : key_to_float(best);
      }
      float mine = -INFINITY;
#pragma unroll
      for (int i = 0; i < EXPERTS_PER_LANE; ++i) mine = i == lane ? group_score[i] : mine;
      int rank = 0;
#pragma unroll
      for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
        rank += i < p.num_groups && moe_rank::group_ranks_before(group_score[i], i, mine, lane);
      }
      const LaneMask<WAVE> kept = ballot<WAVE>(lane < p.num_groups && rank < p.topk_group);
#pragma unroll
      for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
        if (key[i] != 0u && !((kept >> i) & 1u)) key[i] = moe_rank::kMaskedKey;
      }
    } else if (plan.lane_aligned) {
      // Group of (item i, lane) = i * groups_per_item + segment; segments of group_size lanes.
      const int groups_per_item = WAVE >> plan.group_lanes_log2;
      const int segment = lane >> plan.group_lanes_log2;
      float* group_score = wave_smem;  // [num_groups]
#pragma unroll
      for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
        uint32_t best, second;
        segment_top2_u32<WAVE>(max(key[i], kNegInfKey), group_size, &best, &second);
        const int g = i * groups_per_item + segment;
        if ((lane & (group_size - 1)) == 0 && g < p.num_groups) {
          group_score[g] = top_two ? key_to_float(best) + key_to_float(second) : key_to_float(best);
        }
      }
      wave_sync<WAVE>();
      const uint64_t kept = kept_groups_ballot<WAVE>(p, group_score) >> segment;
#pragma unroll
      for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
        if (key[i] != 0u && !((kept >> (i * groups_per_item)) & 1u)) key[i] = moe_rank::kMaskedKey;
      }
    } else {
      float* sel_smem = wave_smem;                          // [experts]
      float* group_score = sel_smem + p.experts;            // [num_groups]
      float* kept_smem = group_score + p.num_groups;        // [num_groups]
#pragma unroll
      for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
        const int e = i * WAVE + lane;
        if (e < p.experts) sel_smem[e] = key_to_float(max(key[i], kNegInfKey));
      }
      wave_sync<WAVE>();
      rank_groups_in_smem<WAVE>(p, group_size, sel_smem, group_score, kept_smem);
#pragma unroll
      for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
        const int e = i * WAVE + lane;
        if (e < p.experts && kept_smem[e / group_size] == 0.0f) key[i] = moe_rank::kMaskedKey;
      }
    }
  }

  // Each lane sorts its (key, item) pairs once (moe_topk_common.cuh). Round j: the wave's best
  // head goes to slot j (held by lane j); its owner drops its head. Among lanes tied on (key,
  // item), the lowest lane is the lowest expert.
  int chosen_item = 0;
  int chosen_lane = 0;
  if constexpr (EXPERTS_PER_LANE <= 8) {
    // The rounds shift 32-bit keys; the items ride along as the nibbles of one word, head_nibbles.
    uint32_t head_key[EXPERTS_PER_LANE];
    uint32_t head_nibbles;
    sorted_heads<EXPERTS_PER_LANE>(key, head_key, head_nibbles);
    for (int j = 0; j < p.k; ++j) {
      int owner = 0;
      uint32_t item = 0;
      wave_max_key_min_tag<WAVE>(head_key[0], head_nibbles & 0xfu, &owner, &item);
      if (lane == j) {
        chosen_item = static_cast<int>(item);
        chosen_lane = owner;
      }
      if (lane == owner) drop_head<EXPERTS_PER_LANE>(head_key, head_nibbles);
    }
  } else {
    uint64_t list[EXPERTS_PER_LANE];
    sorted_list<EXPERTS_PER_LANE>(key, list);
    for (int j = 0; j < p.k; ++j) {
      int owner = 0;
      const uint64_t winner = wave_max_u64<WAVE>(list[0], &owner);
      if (lane == j) {
        chosen_item = EXPERTS_PER_LANE - 1 - static_cast<int>(static_cast<uint32_t>(winner));
        chosen_lane = owner;
      }
      if (lane == owner) {
#pragma unroll
        for (int i = 0; i + 1 < EXPERTS_PER_LANE; ++i) list[i] = list[i + 1];
        list[EXPERTS_PER_LANE - 1] = 0;
      }
    }
  }

  write_choices<WAVE, EXPERTS_PER_LANE, TIn>(p, token, score, chosen_lane, chosen_item, chosen_item * WAVE + chosen_lane);
}

}  // namespace flashhip::kernels::moe_topk_detail
