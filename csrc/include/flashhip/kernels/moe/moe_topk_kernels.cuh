// MoE routing kernel: one wave per token. Lane l holds experts i * WAVE + l (ITEMS of them,
// loads coalesced across the wave) as 32-bit rank keys.
// - Groups whose size divides the wave, at most WAVE of them, are reduced across lanes: a group
//   that is a whole item (size == WAVE: DeepSeek-V3 on NVIDIA) with two redux.sync and ranked in
//   registers; a run of lanes (DeepSeek-V3 on a 64-lane wave) by a segmented butterfly, its
//   score staged in shared memory for the ranking. Either way one ballot gives the kept
//   groups. Any other layout stages the selection values in shared memory and reduces there.
// - Selection: each lane sorts its (key, item) pairs once; then k rounds each take the wave's
//   best list head (two redux.sync on NVIDIA) and its owner shifts its list. Packing the item
//   below the key makes every pair distinct, so ties go to the lower expert as on the CPU.
#pragma once

#include <cmath>

#include "flashhip/kernels/moe/moe_topk.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/wave.h"

namespace flashhip::kernels::moe_topk_detail {

inline constexpr int kWavesPerBlock = 4;

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

// Rank keys below float_key(-inf) (taken, masked, NaN) count as -inf in a group's score.
inline constexpr uint32_t kNegInfKey = 0x007fffffu;  // moe_rank::float_key(-INFINITY)

// The float a rank key came from (keys of at least kNegInfKey).
FH_DEVICE FH_INLINE float key_to_float(uint32_t key) {
  return bits_to_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
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

// Batcher's odd-even merge sort network for N (a power of two) elements, built at compile
// time: compare-exchange c orders elements first[c] and second[c] (19 of them for N = 8).
template <int N>
struct SortNetwork {
  static constexpr int log2(int n) { return n <= 1 ? 0 : 1 + log2(n / 2); }
  // At most N/4 * log2(N) * (log2(N) + 1) compare-exchanges.
  static constexpr int kMaxSize = N * log2(N) * (log2(N) + 1) / 4 + 1;
  int size = 0;
  int first[kMaxSize] = {};
  int second[kMaxSize] = {};
  constexpr SortNetwork() {
    for (int run = 1; run < N; run *= 2) {
      for (int gap = run; gap >= 1; gap /= 2) {
        for (int j = gap % run; j + gap < N; j += 2 * gap) {
          for (int i = 0; i < gap && i + j + gap < N; ++i) {
            if ((i + j) / (2 * run) == (i + j + gap) / (2 * run)) {
              first[size] = i + j;
              second[size] = i + j + gap;
              ++size;
            }
          }
        }
      }
    }
  }
};

// Sorts N keys in registers, largest first.
template <int N>
FH_DEVICE FH_INLINE void sort_descending(uint64_t (&v)[N]) {
  constexpr SortNetwork<N> kNetwork{};
#pragma unroll
  for (int c = 0; c < kNetwork.size; ++c) {
    const int a = kNetwork.first[c], b = kNetwork.second[c];
    const uint64_t hi = v[a] > v[b] ? v[a] : v[b];
    const uint64_t lo = v[a] > v[b] ? v[b] : v[a];
    v[a] = hi;
    v[b] = lo;
  }
}

template <int WAVE, int ITEMS, typename TIn>
__global__ void __launch_bounds__(WAVE * kWavesPerBlock) moe_topk_kernel(const MoeTopkParams p, const GroupPlan plan) {
  extern __shared__ float group_smem[];  // grouped calls: kWavesPerBlock x grouped_smem_floats
  const int wave = static_cast<int>(threadIdx.x) / WAVE;
  const int lane = lane_id<WAVE>();
  const int64_t token = static_cast<int64_t>(blockIdx.x) * kWavesPerBlock + wave;
  if (token >= p.tokens) return;  // the whole wave: no lane of it takes part in anything below
  // This lane's experts sit WAVE apart from here: one address, constant offsets.
  const TIn* lane_logits = static_cast<const TIn*>(p.gating) + token * p.gating_row_stride + lane;  // [ITEMS] stride WAVE
  const bool biased = p.correction_bias != nullptr;
  const float* lane_bias = p.correction_bias + lane;  // [ITEMS] stride WAVE, biased calls only

  float logit[ITEMS];
  float bias[ITEMS];
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const bool real = i * WAVE + lane < p.experts;
    logit[i] = real ? to_float(lane_logits[i * WAVE]) : -INFINITY;
    bias[i] = biased && real ? lane_bias[i * WAVE] : 0.0f;
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
    // The hardware exp2 and reciprocal (a few ulp) rather than the IEEE sequences, whose
    // division alone took a third of this kernel's instructions.
#pragma unroll
    for (int i = 0; i < ITEMS; ++i) score[i] = __fdividef(1.0f, 1.0f + __expf(-logit[i]));
  }

  // Rank keys of the selection values; 0 for slots past the experts.
  uint32_t key[ITEMS];
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const bool real = i * WAVE + lane < p.experts;
    key[i] = real ? moe_rank::float_key(biased ? score[i] + bias[i] : logit[i]) : 0u;
  }

  if (p.grouped()) {
    const int group_size = plan.group_size;
    const bool top_two = biased && group_size >= 2;
    float* wave_smem = group_smem + wave * grouped_smem_floats(p, plan);
    if (plan.lane_aligned && group_size == WAVE) {
      // Group i is item i across the whole wave: every lane gets every group's score, and lane
      // g ranks group g in registers.
      float group_score[ITEMS];
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) {
        uint32_t best, second;
        segment_top2_u32<WAVE>(max(key[i], kNegInfKey), WAVE, &best, &second);
        group_score[i] = top_two ? key_to_float(best) + key_to_float(second) : key_to_float(best);
      }
      float mine = -INFINITY;
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) mine = i == lane ? group_score[i] : mine;
      int rank = 0;
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) rank += i < p.num_groups && moe_rank::group_ranks_before(group_score[i], i, mine, lane);
      const auto kept = static_cast<uint32_t>(ballot<WAVE>(lane < p.num_groups && rank < p.topk_group));
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) {
        if (key[i] != 0u && !((kept >> i) & 1u)) key[i] = moe_rank::kMaskedKey;
      }
    } else if (plan.lane_aligned) {
      // Group of (item i, lane) = i * groups_per_item + segment; segments of group_size lanes.
      const int groups_per_item = WAVE >> plan.group_lanes_log2;
      const int segment = lane >> plan.group_lanes_log2;
      float* group_score = wave_smem;  // [num_groups]
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) {
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
      for (int i = 0; i < ITEMS; ++i) {
        if (key[i] != 0u && !((kept >> (i * groups_per_item)) & 1u)) key[i] = moe_rank::kMaskedKey;
      }
    } else {
      float* sel_smem = wave_smem;                          // [experts]
      float* group_score = sel_smem + p.experts;            // [num_groups]
      float* kept_smem = group_score + p.num_groups;        // [num_groups]
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) {
        const int e = i * WAVE + lane;
        if (e < p.experts) sel_smem[e] = key_to_float(max(key[i], kNegInfKey));
      }
      wave_sync<WAVE>();
      rank_groups_in_smem<WAVE>(p, group_size, sel_smem, group_score, kept_smem);
#pragma unroll
      for (int i = 0; i < ITEMS; ++i) {
        const int e = i * WAVE + lane;
        if (e < p.experts && kept_smem[e / group_size] == 0.0f) key[i] = moe_rank::kMaskedKey;
      }
    }
  }

  // This lane's (key, item) pairs, best first; the item sits below the key, inverted so that
  // the lower item (the lower expert) wins a tie.
  uint64_t list[ITEMS];
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) list[i] = (static_cast<uint64_t>(key[i]) << 32) | static_cast<uint32_t>(ITEMS - 1 - i);
  sort_descending<ITEMS>(list);

  // Round j: the wave's best head goes to slot j (held by lane j); its owner drops its head.
  // Among lanes tied on (key, item), the lowest lane is the lowest expert.
  int chosen_item = 0;
  int chosen_lane = 0;
  if constexpr (ITEMS <= 8) {
    // The rounds shift 32-bit keys; the items ride along as the 4-bit fields of one word.
    uint32_t head_key[ITEMS];
    uint32_t items = 0;
#pragma unroll
    for (int m = 0; m < ITEMS; ++m) {
      head_key[m] = static_cast<uint32_t>(list[m] >> 32);
      items |= (ITEMS - 1 - static_cast<uint32_t>(list[m])) << (4 * m);
    }
    for (int j = 0; j < p.k; ++j) {
      int owner = 0;
      uint32_t item = 0;
      wave_max_key_min_tag<WAVE>(head_key[0], items & 0xfu, &owner, &item);
      if (lane == j) {
        chosen_item = static_cast<int>(item);
        chosen_lane = owner;
      }
      if (lane == owner) {
#pragma unroll
        for (int i = 0; i + 1 < ITEMS; ++i) head_key[i] = head_key[i + 1];
        head_key[ITEMS - 1] = 0;
        items >>= 4;
      }
    }
  } else {
    for (int j = 0; j < p.k; ++j) {
      int owner = 0;
      const uint64_t winner = wave_max_u64<WAVE>(list[0], &owner);
      if (lane == j) {
        chosen_item = ITEMS - 1 - static_cast<int>(static_cast<uint32_t>(winner));
        chosen_lane = owner;
      }
      if (lane == owner) {
#pragma unroll
        for (int i = 0; i + 1 < ITEMS; ++i) list[i] = list[i + 1];
        list[ITEMS - 1] = 0;
      }
    }
  }

  // Slot j's score lives in lane chosen_lane, item chosen_item.
  float chosen_score = 0.0f;
#pragma unroll
  for (int i = 0; i < ITEMS; ++i) {
    const float s = shfl<WAVE>(score[i], chosen_lane);
    if (i == chosen_item) chosen_score = s;
  }
  const bool writes = lane < p.k;
  const float chosen_sum = group_reduce_sum<WAVE>(writes ? chosen_score : 0.0f);
  float weight = chosen_score;
  if (p.renormalize && chosen_sum > 0.0f) weight = weight / chosen_sum;
  weight *= p.routed_scaling_factor;
  if (writes) {
    p.topk_weights[token * p.weights_row_stride + lane] = weight;
    p.topk_ids[token * p.ids_row_stride + lane] = chosen_item * WAVE + chosen_lane;
  }
}

}  // namespace flashhip::kernels::moe_topk_detail
