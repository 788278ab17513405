// Pieces both MoE routing kernels share (moe_topk_kernels.cuh: lane l holds experts i * WAVE + l;
// moe_topk_contiguous_kernels.cuh: lane l holds experts l * EXPERTS_PER_LANE + i; i, the item, is
// an expert's place among its lane's EXPERTS_PER_LANE): scoring, rank keys back to floats, the
// per-lane sort into list heads, a round's head drop, and the epilogue that weights and writes the
// k chosen experts. Each kernel keeps only what its layout decides.
#pragma once

#include <cmath>

#include "flashhip/kernels/common/sort_network.cuh"
#include "flashhip/kernels/common/wave_algorithms.cuh"
#include "flashhip/kernels/moe/moe_topk.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/fast_math.h"
#include "flashhip/platform/wave.h"

namespace flashhip::kernels::moe_topk_detail {

inline constexpr int kWavesPerBlock = 4;

// Rank keys below float_key(-inf) (taken, masked, NaN) count as -inf in a group's score.
inline constexpr uint32_t kNegInfKey = 0x007fffffu;  // moe_rank::float_key(-INFINITY)

// The float a rank key came from (keys of at least kNegInfKey).
FH_DEVICE FH_INLINE float key_to_float(uint32_t key) {
  return bits_to_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// 1 / (1 + e^-x) with the hardware exp2 and reciprocal (a few ulp) rather than the IEEE
// sequences, whose division alone took a third of this kernel's instructions. exp_approx flushes
// results below 2^-126 to 0 on NVIDIA, but such a term vanishes next to 1 either way (1 + it
// rounds to 1), so the score has the same bits for every x.
// Scores below the smallest normal float are flushed to 0, as on the CPU (moe_rank::flush_tiny_score):
// __fdividef already gives 0 there on NVIDIA; the select makes it so on every target.
FH_DEVICE FH_INLINE float sigmoid_approx(float x) {
  return moe_rank::flush_tiny_score(__fdividef(1.0f, 1.0f + exp_approx(-x)));
}

// Scores of this lane's EXPERTS_PER_LANE experts from their logits; `real` is false for a slot
// past the experts (its logit is -inf; softmax gives it 0 and leaves it out of the row sum).
template <int WAVE, int EXPERTS_PER_LANE>
FH_DEVICE FH_INLINE void score_experts(const MoeTopkParams& p, const float (&logit)[EXPERTS_PER_LANE],
                                       const bool (&real)[EXPERTS_PER_LANE], float (&score)[EXPERTS_PER_LANE]) {
  if (p.scoring == MoeScoring::kSoftmax) {
    float local_max = -INFINITY;
#pragma unroll
    for (int i = 0; i < EXPERTS_PER_LANE; ++i) local_max = fmaxf(local_max, logit[i]);
    const float row_max = group_reduce_max<WAVE>(local_max);
    float local_sum = 0.0f;
#pragma unroll
    for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
      score[i] = real[i] ? expf(logit[i] - row_max) : 0.0f;
      local_sum += score[i];
    }
    const float row_sum = group_reduce_sum<WAVE>(local_sum);
#pragma unroll
    for (int i = 0; i < EXPERTS_PER_LANE; ++i) score[i] = score[i] / row_sum;
  } else {
#pragma unroll
    for (int i = 0; i < EXPERTS_PER_LANE; ++i) score[i] = sigmoid_approx(logit[i]);
  }
}

// Sorts N (key, tag) pairs in registers, largest first: by key, then by tag (tags distinct).
// One 64-bit comparison picks both moves of a compare-exchange; written as a max and a min of
// packed 64-bit values, the compiler compared twice.
template <int N>
FH_DEVICE FH_INLINE void sort_descending(uint32_t (&key)[N], uint32_t (&tag)[N]) {
  constexpr SortNetwork<N> kNetwork{};
#pragma unroll
  for (int c = 0; c < kNetwork.size; ++c) {
    const int a = kNetwork.first[c], b = kNetwork.second[c];
    const uint32_t key_a = key[a], key_b = key[b], tag_a = tag[a], tag_b = tag[b];
    const bool swap = ((static_cast<uint64_t>(key_b) << 32) | tag_b) > ((static_cast<uint64_t>(key_a) << 32) | tag_a);
    key[a] = swap ? key_b : key_a;
    key[b] = swap ? key_a : key_b;
    tag[a] = swap ? tag_b : tag_a;
    tag[b] = swap ? tag_a : tag_b;
  }
}

// This lane's keys sorted best first, each with its item; the sort's tag is the item inverted, so
// that the lower item (the lower expert) wins a tie.
template <int EXPERTS_PER_LANE>
FH_DEVICE FH_INLINE void sort_keys(const uint32_t (&key)[EXPERTS_PER_LANE], uint32_t (&sorted_key)[EXPERTS_PER_LANE],
                                   uint32_t (&inverted_item)[EXPERTS_PER_LANE]) {
#pragma unroll
  for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
    sorted_key[i] = key[i];
    inverted_item[i] = static_cast<uint32_t>(EXPERTS_PER_LANE - 1 - i);
  }
  sort_descending<EXPERTS_PER_LANE>(sorted_key, inverted_item);
}

// The sorted (key, item) pairs as 64-bit values (the key above the inverted item), best first.
template <int EXPERTS_PER_LANE>
FH_DEVICE FH_INLINE void sorted_list(const uint32_t (&key)[EXPERTS_PER_LANE], uint64_t (&list)[EXPERTS_PER_LANE]) {
  uint32_t sorted_key[EXPERTS_PER_LANE], inverted_item[EXPERTS_PER_LANE];
  sort_keys<EXPERTS_PER_LANE>(key, sorted_key, inverted_item);
#pragma unroll
  for (int i = 0; i < EXPERTS_PER_LANE; ++i) list[i] = (static_cast<uint64_t>(sorted_key[i]) << 32) | inverted_item[i];
}

// EXPERTS_PER_LANE <= 8: the sorted keys, and their items as the nibbles (4-bit fields) of one
// word, head_nibbles (nibble m: the item of head_key[m]), so that a round shifts 32-bit words.
template <int EXPERTS_PER_LANE>
FH_DEVICE FH_INLINE void sorted_heads(const uint32_t (&key)[EXPERTS_PER_LANE], uint32_t (&head_key)[EXPERTS_PER_LANE],
                                      uint32_t& head_nibbles) {
  static_assert(EXPERTS_PER_LANE <= 8, "the items travel as the nibbles of one 32-bit word");
  uint32_t inverted_item[EXPERTS_PER_LANE];
  sort_keys<EXPERTS_PER_LANE>(key, head_key, inverted_item);
  head_nibbles = 0;
#pragma unroll
  for (int m = 0; m < EXPERTS_PER_LANE; ++m) head_nibbles |= (EXPERTS_PER_LANE - 1 - inverted_item[m]) << (4 * m);
}

// The owner of a round's winner drops its head: the rest move up, key 0 (taken) fills the end.
template <int EXPERTS_PER_LANE>
FH_DEVICE FH_INLINE void drop_head(uint32_t (&head_key)[EXPERTS_PER_LANE], uint32_t& head_nibbles) {
#pragma unroll
  for (int i = 0; i + 1 < EXPERTS_PER_LANE; ++i) head_key[i] = head_key[i + 1];
  head_key[EXPERTS_PER_LANE - 1] = 0;
  head_nibbles >>= 4;
}

// Epilogue: lane j < k holds slot j's choice, expert `expert` with score `chosen_score`;
// `chosen_sum` (every lane) is the k chosen scores added in slot order, as the CPU adds them, so
// both kernels and any wave width give the same bits. Weights are renormalised by it and scaled.
// weight_slot and id_slot: this lane's slot of the token's output rows (written when lane < k);
// logits_row: the token's logits, read only to renormalise tiny sigmoid scores (moe_topk.h).
template <int WAVE, typename TIn>
FH_DEVICE FH_INLINE void write_weighted(const MoeTopkParams& p, const TIn* logits_row, float* weight_slot,
                                        int32_t* id_slot, float chosen_score, float chosen_sum, int expert) {
  const bool writes = lane_id<WAVE>() < p.k;
  // Uniform across the wave (chosen_sum is every lane's), and rare: all chosen logits below -44.
  if (p.renormalize && p.scoring == MoeScoring::kSigmoid && chosen_sum < moe_rank::kRescaleBelowSum) {
    const float x = writes ? to_float(logits_row[expert]) : -INFINITY;
    const float m = group_reduce_max<WAVE>(x);
    if (m > -INFINITY) {
      const float t = writes ? moe_rank::rescaled_sigmoid(x, m) : 0.0f;
      float sum = 0.0f;
      for (int j = 0; j < p.k; ++j) sum += shfl<WAVE>(t, j);  // slot order, as the CPU adds them
      chosen_score = t;
      chosen_sum = sum;
    }
  }
  // Only the writing lanes divide: 0 / sum (the other lanes' score) takes the division's slow path.
  if (writes) {
    float weight = chosen_score;
    if (p.renormalize && chosen_sum > 0.0f) weight = weight / chosen_sum;
    *weight_slot = weight * p.routed_scaling_factor;
    *id_slot = expert;
  }
}

// The same, with the chosen score fetched from item chosen_item of lane chosen_lane's `score`
// (one shuffle per item: a lane can only read another's register at an index all lanes share)
// and the slot-order sum taken with one broadcast per slot.
template <int WAVE, int EXPERTS_PER_LANE, typename TIn>
FH_DEVICE FH_INLINE void write_choices(const MoeTopkParams& p, int64_t token, const float (&score)[EXPERTS_PER_LANE],
                                       int chosen_lane, int chosen_item, int expert) {
  float chosen_score = 0.0f;
#pragma unroll
  for (int i = 0; i < EXPERTS_PER_LANE; ++i) {
    const float s = shfl<WAVE>(score[i], chosen_lane);
    if (i == chosen_item) chosen_score = s;
  }
  float chosen_sum = 0.0f;
  for (int j = 0; j < p.k; ++j) chosen_sum += shfl<WAVE>(chosen_score, j);
  const int lane = lane_id<WAVE>();
  write_weighted<WAVE>(p, static_cast<const TIn*>(p.gating) + token * p.gating_row_stride,
                       p.topk_weights + token * p.weights_row_stride + lane, p.topk_ids + token * p.ids_row_stride + lane,
                       chosen_score, chosen_sum, expert);
}

}  // namespace flashhip::kernels::moe_topk_detail
