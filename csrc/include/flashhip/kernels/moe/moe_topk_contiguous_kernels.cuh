// ---- MoE routing, contiguous layout: lane l holds experts [l * EXPERTS_PER_LANE,
//      (l + 1) * EXPERTS_PER_LANE) ----
// For grouped calls with experts == WAVE * EXPERTS_PER_LANE whose groups are whole runs of lanes
// (DeepSeek-V3: 8 experts a lane, 4 lanes a group on 32 lanes; 4 and 8 on 64). One wave per
// token. Adjacent experts load up to 16 bytes at a time; each lane sorts its keys first, so a
// group's score is a butterfly of (best, second) pairs and a round's winner is the lowest lane
// holding the best head.
// The float ops are the strided kernel's (moe_topk_kernels.cuh): sigmoid calls agree bit for bit.
// FixedShape compiles DeepSeek-V3's shape in, unrolling the group loops and the rounds.
#pragma once

#include "flashhip/kernels/moe/moe_topk_common.cuh"
#include "flashhip/platform/vec.h"

namespace flashhip::kernels::moe_topk_detail {

// Elements of T one load moves when a lane reads its EXPERTS_PER_LANE adjacent ones (at most 16
// bytes); the launcher checks that the rows allow it.
template <int EXPERTS_PER_LANE, typename T>
inline constexpr int kExpertsPerLoad = EXPERTS_PER_LANE < kWideVecElems<T> ? EXPERTS_PER_LANE : kWideVecElems<T>;

// The item nibbles of a list in item order (nibble m holds m): a dropped group's list.
constexpr uint32_t nibbles_in_order(int experts_per_lane) {
  uint32_t nibbles = 0;
  for (int m = 0; m < experts_per_lane; ++m) nibbles |= static_cast<uint32_t>(m) << (4 * m);
  return nibbles;
}

// EXPERTS_PER_LANE adjacent elements as floats: WIDE in loads of kExpertsPerLoad elements
// (aligned: the launcher checked), else one element a load.
template <int EXPERTS_PER_LANE, bool WIDE, typename T>
FH_DEVICE FH_INLINE void load_adjacent(const T* ptr /* [EXPERTS_PER_LANE] */, float (&out)[EXPERTS_PER_LANE]) {
  if constexpr (WIDE) {
    constexpr int kVec = kExpertsPerLoad<EXPERTS_PER_LANE, T>;
#pragma unroll
    for (int c = 0; c < EXPERTS_PER_LANE / kVec; ++c) {
      const Vec<T, kVec> v = Vec<T, kVec>::load(ptr + c * kVec);
#pragma unroll
      for (int e = 0; e < kVec; ++e) out[c * kVec + e] = to_float(v[e]);
    }
  } else {
#pragma unroll
    for (int i = 0; i < EXPERTS_PER_LANE; ++i) out[i] = to_float(ptr[i]);
  }
}

// The call's shape where the launcher fixed it at compile time: lanes a group spans, groups and
// k (the params hold the same values). RuntimeShape reads them from the params.
template <int GROUP_LANES_LOG2, int NUM_GROUPS, int K>
struct FixedShape {
  static constexpr bool kFixed = true;
  static constexpr int kK = K;
  FH_DEVICE FH_INLINE static int group_lanes_log2(int) { return GROUP_LANES_LOG2; }
  FH_DEVICE FH_INLINE static int num_groups(const MoeTopkParams&) { return NUM_GROUPS; }
  FH_DEVICE FH_INLINE static int k(const MoeTopkParams&) { return K; }
};
struct RuntimeShape {
  static constexpr bool kFixed = false;
  static constexpr int kK = 0;
  FH_DEVICE FH_INLINE static int group_lanes_log2(int from_launcher) { return from_launcher; }
  FH_DEVICE FH_INLINE static int num_groups(const MoeTopkParams& p) { return p.num_groups; }
  FH_DEVICE FH_INLINE static int k(const MoeTopkParams& p) { return p.k; }
};

// Round j's drop when k is fixed: entries at or past k - 1 - j can no longer reach the head (one
// moves up a place per round), so they stay where they are.
template <int EXPERTS_PER_LANE, int K>
FH_DEVICE FH_INLINE void drop_head_fixed(uint32_t (&head_key)[EXPERTS_PER_LANE], uint32_t& head_nibbles, int j) {
#pragma unroll
  for (int i = 0; i + 1 < EXPERTS_PER_LANE; ++i) {
    if (i < K - 1 - j) head_key[i] = head_key[i + 1];  // j is a constant once the rounds unroll
  }
  if (EXPERTS_PER_LANE - 1 < K - 1 - j) head_key[EXPERTS_PER_LANE - 1] = 0;
  head_nibbles >>= 4;
}

// Grouped calls only (p.grouped()); experts == WAVE * EXPERTS_PER_LANE; a group is
// 2^group_lanes_log2 lanes.
template <int WAVE, int EXPERTS_PER_LANE, typename TIn, bool WIDE, typename Shape>
__global__ void FH_LAUNCH_BOUNDS(WAVE * kWavesPerBlock)
    moe_topk_contiguous_kernel(const MoeTopkParams p, const int group_lanes_log2_arg) {
  const int group_lanes_log2 = Shape::group_lanes_log2(group_lanes_log2_arg);
  const int num_groups = Shape::num_groups(p);
  const int k = Shape::k(p);
  static_assert(EXPERTS_PER_LANE >= 2 && EXPERTS_PER_LANE <= 8 && (EXPERTS_PER_LANE & (EXPERTS_PER_LANE - 1)) == 0,
                "a lane's top two come from its list; the items travel as the nibbles of one word");
  const int wave = static_cast<int>(threadIdx.x / WAVE);
  const int lane = lane_id<WAVE>();
  const uint32_t token = blockIdx.x * kWavesPerBlock + wave;  // tokens <= kMoeMaxTokens (launcher)
  if (token >= p.tokens) return;  // the whole wave: no lane of it takes part in anything below
  const TIn* lane_logits =
      static_cast<const TIn*>(p.gating) + token * p.gating_row_stride + lane * EXPERTS_PER_LANE;  // [EXPERTS_PER_LANE]
  const bool biased = p.correction_bias != nullptr;
  // This lane's output slots, held from here to the end (see kept_in_register).
  float* weight_slot = kept_in_register(p.topk_weights + token * p.weights_row_stride + lane);
  int32_t* id_slot = kept_in_register(p.topk_ids + token * p.ids_row_stride + lane);

  float logit[EXPERTS_PER_LANE];
  float bias[EXPERTS_PER_LANE];
  load_adjacent<EXPERTS_PER_LANE, WIDE>(lane_logits, logit);
  if (biased) {
    load_adjacent<EXPERTS_PER_LANE, WIDE>(p.correction_bias + lane * EXPERTS_PER_LANE, bias);  // [EXPERTS_PER_LANE]
  } else {
#pragma unroll
    for (int i = 0; i < EXPERTS_PER_LANE; ++i) bias[i] = 0.0f;
  }

  float score[EXPERTS_PER_LANE];
  bool real[EXPERTS_PER_LANE];
  // experts == WAVE * EXPERTS_PER_LANE: no slot is past them.
#pragma unroll
  for (int i = 0; i < EXPERTS_PER_LANE; ++i) real[i] = true;
  score_experts<WAVE, EXPERTS_PER_LANE>(p, logit, real, score);
  // The wave's scores in shared memory, for the epilogue's look-up of the chosen ones.
  __shared__ float wave_scores[kWavesPerBlock][WAVE * EXPERTS_PER_LANE];
#pragma unroll
  for (int i = 0; i < EXPERTS_PER_LANE; ++i) wave_scores[wave][lane * EXPERTS_PER_LANE + i] = score[i];

  // Rank keys of the selection values, sorted: head_key[0] is this lane's best.
  uint32_t key[EXPERTS_PER_LANE];
#pragma unroll
  for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
    key[i] = biased ? moe_rank::float_key_not_minus_zero(score[i] + bias[i]) : moe_rank::float_key(logit[i]);
  }
  uint32_t head_key[EXPERTS_PER_LANE];
  uint32_t head_nibbles;
  sorted_heads<EXPERTS_PER_LANE>(key, head_key, head_nibbles);

  // The group's score from the two best of each of its lanes (NaN counts as -inf): their sum
  // with a bias (group_size >= EXPERTS_PER_LANE >= 2 here), the best without.
  uint32_t best = max(head_key[0], kNegInfKey);
  uint32_t second = max(head_key[1], kNegInfKey);
  const int group_lanes = 1 << group_lanes_log2;
  segment_merge_top2_u32<WAVE>(&best, &second, group_lanes);
  const float group_score = biased ? key_to_float(best) + key_to_float(second) : key_to_float(best);

  // The groups ranking before this lane's: the group's lanes share the comparisons (sub-lane s
  // takes groups s, s + group_lanes, ...; group h's score from its first lane), then add up.
  const int group = lane >> group_lanes_log2;
  const int sub = lane & (group_lanes - 1);
  int before = 0;
  for (int first = 0; first < num_groups; first += group_lanes) {  // uniform across the wave
    const int h = first + sub;
    const float other = shfl<WAVE>(group_score, (h << group_lanes_log2) & (WAVE - 1));
    before += h < num_groups && moe_rank::group_ranks_before(other, h, group_score, group);
  }
#pragma unroll
  for (int offset = 1; offset < WAVE; offset *= 2) {
    if (offset < group_lanes) before += shfl_xor<WAVE>(before, offset);  // uniform across the wave
  }
  if (before >= p.topk_group) {
    // Dropped: every expert masked, so the list is the masked key in item order; masked experts
    // stay selectable below every kept one, lower experts first (as on the CPU).
#pragma unroll
    for (int m = 0; m < EXPERTS_PER_LANE; ++m) head_key[m] = moe_rank::kMaskedKey;
    head_nibbles = nibbles_in_order(EXPERTS_PER_LANE);
  }

  // ---- Rounds: slot j gets the wave's best head; its owner (the lowest lane holding it, whose
  // head is its lowest expert of that key) writes it to shared memory and drops its head ----
  __shared__ int32_t wave_choices[kWavesPerBlock][WAVE];  // slot j's expert, j < k
  const LaneMask<WAVE> lanes_below = lanes_below_mask<WAVE>();
  auto take_best = [&](int j) {
    const uint32_t top = wave_max_u32<WAVE>(head_key[0]);
    const bool holds_top = head_key[0] == top;
    const LaneMask<WAVE> lower_holders = ballot<WAVE>(holds_top) & lanes_below;
    const bool owns = holds_top && lower_holders == 0;
    if (owns) wave_choices[wave][j] = lane * EXPERTS_PER_LANE + static_cast<int>(head_nibbles & 0xfu);
    // The drop as selects: a branch around it made nvcc copy the whole list on both paths.
    uint32_t dropped_key[EXPERTS_PER_LANE];
    uint32_t dropped_nibbles = head_nibbles;
#pragma unroll
    for (int i = 0; i < EXPERTS_PER_LANE; ++i) dropped_key[i] = head_key[i];
    if constexpr (Shape::kFixed) {
      drop_head_fixed<EXPERTS_PER_LANE, Shape::kK>(dropped_key, dropped_nibbles, j);
    } else {
      drop_head<EXPERTS_PER_LANE>(dropped_key, dropped_nibbles);
    }
#pragma unroll
    for (int i = 0; i < EXPERTS_PER_LANE; ++i) head_key[i] = owns ? dropped_key[i] : head_key[i];
    head_nibbles = owns ? dropped_nibbles : head_nibbles;
  };
  if constexpr (Shape::kFixed) {
#pragma unroll
    for (int j = 0; j < Shape::kK; ++j) take_best(j);
  } else {
    for (int j = 0; j < k; ++j) take_best(j);
  }
  wave_sync<WAVE>();  // the scores and the choices, visible to every lane

  // The chosen scores added in slot order (as the CPU adds them), read back with broadcast loads;
  // lane j < k keeps slot j's.
  int chosen = 0;
  float chosen_score = 0.0f;
  float chosen_sum = 0.0f;
  auto add_choice = [&](int j) {
    const int expert = wave_choices[wave][j];
    const float score_j = wave_scores[wave][expert];
    chosen_sum += score_j;
    if (lane == j) {
      chosen = expert;
      chosen_score = score_j;
    }
  };
  if constexpr (Shape::kFixed) {
#pragma unroll
    for (int j = 0; j < Shape::kK; ++j) add_choice(j);
  } else {
    for (int j = 0; j < k; ++j) add_choice(j);
  }
  write_weighted<WAVE>(p, static_cast<const TIn*>(p.gating) + token * p.gating_row_stride, weight_slot, id_slot,
                       chosen_score, chosen_sum, chosen);
}

}  // namespace flashhip::kernels::moe_topk_detail
