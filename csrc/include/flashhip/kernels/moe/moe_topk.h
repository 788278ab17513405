// MoE routing: per token, score the experts (softmax or sigmoid), optionally restrict the
// choice to the best expert groups, pick the top k and weight them. Torch-free; the launcher
// and the CPU implementation take the same parameters and share the ranking rule below.
//
// Semantics (OPS.md §5):
// - score s_e = softmax(logits)_e or sigmoid(logit_e), in fp32.
// - selection value: logit_e without a correction bias (the same order as s_e, and exact on
//   every device), s_e + bias_e with one (DeepSeek-V3: the bias steers selection only).
// - groups (num_groups > 1 and topk_group < num_groups): group score = sum of the group's top
//   two selection values when there is a bias (DeepSeek-V3), the group's best value without one
//   (DeepSeek-V2); the topk_group best groups are kept, the others' experts are masked (-inf). NaN selection values count as -inf here.
// - the k best experts by selection value, best first; ties go to the lower expert (or group)
//   index; NaN ranks below every number, masked experts below that.
// - sigmoid scores below the smallest normal fp32 (logits below about -87.3) are 0 on every
//   device (the GPU's fast sigmoid gives 0 there, the CPU flushes to match): with a bias, such
//   experts select by `bias` alone and tie to the lower index like any exact tie.
// - weights: s_e of the chosen experts, divided by their sum when `renormalize` (left as they are
//   if the sum is 0), then multiplied by routed_scaling_factor (always: pass 1 for none).
//   Sigmoid renormalisation of chosen scores summing to less than kRescaleBelowSum (every chosen
//   logit below about -44, where the scores lose precision and then underflow) divides
//   rescaled_sigmoid(x_e, m) instead, m the largest chosen logit: the same ratios, computed
//   without underflow, so [-95, -100] renormalises to [0.9933, 0.0067], not [0, 0].
#pragma once

#include <cmath>
#include <cstdint>

#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/launch.h"

namespace flashhip::kernels {

enum class MoeScoring : int8_t { kSoftmax, kSigmoid };

// Limits every device honours (checked by the op): a token's experts sit in registers across
// one wave, and the k chosen experts end up one per lane.
inline constexpr int kMoeMaxExperts = 1024;
inline constexpr int kMoeMaxTopk = 32;
// The GPU kernels index tokens in 32 bits; the launcher refuses more rows (no device holds their
// outputs: 2^31 rows of k >= 1 weights and ids take 16 GiB at the least).
inline constexpr int64_t kMoeMaxTokens = INT32_MAX;

// Which routing kernel grouped calls take.
enum class MoeTopkLayout : int8_t {
  kAuto,                    // the heuristic: contiguous where it fits, DeepSeek-V3's shape compiled in
  kStrided,                 // every call on the strided kernel
  kContiguousRuntimeShape,  // the contiguous kernel with its shape read at run time
};

struct MoeTopkParams {
  float* topk_weights = nullptr;        // [tokens, k]
  int32_t* topk_ids = nullptr;          // [tokens, k]
  const void* gating = nullptr;         // [tokens, experts] gating_dtype
  const float* correction_bias = nullptr;  // [experts], or null
  int64_t weights_row_stride = 0;
  int64_t ids_row_stride = 0;
  int64_t gating_row_stride = 0;
  int64_t tokens = 0;
  int experts = 0;
  int k = 0;
  int num_groups = 1;  // divides experts
  int topk_group = 1;  // groups kept, 1..num_groups
  MoeScoring scoring = MoeScoring::kSoftmax;
  bool renormalize = false;
  float routed_scaling_factor = 1.0f;
  DType gating_dtype = DType::kFloat32;
  MoeTopkLayout layout = MoeTopkLayout::kAuto;  // tuning; benchmarks and tests force variants here

  // Whether groups restrict the choice at all.
  FH_HOST_DEVICE bool grouped() const { return num_groups > 1 && topk_group < num_groups; }
};

struct MoeTopkLaunchInfo {
  int wave = 0;
  int experts_per_lane = 0;  // experts (selection values) each lane holds
  int tokens_per_block = 0;
  bool groups_in_registers = false;  // grouped only: each group an aligned run of lanes (else shared memory)
  // Lane l held experts [l * experts_per_lane, (l + 1) * experts_per_lane) (else i * wave + l for
  // i < experts_per_lane); layout = kStrided forces the latter.
  bool contiguous = false;
  bool wide_loads = false;  // contiguous only: a lane's logits and bias read up to 16 bytes at a time
  bool fixed_shape = false;  // contiguous only: DeepSeek-V3's shape (groups, k) compiled in
};

LaunchStatus launch_moe_topk(const MoeTopkParams& params, StreamHandle stream, MoeTopkLaunchInfo* info = nullptr);

// ---- The ranking rule, shared by the GPU kernel and the CPU implementation ----
namespace moe_rank {

// Rank keys: a larger key wins. Key 0 marks an expert already taken; masked experts and NaN
// sit just above it, below every number.
inline constexpr uint32_t kMaskedKey = 1;
inline constexpr uint32_t kNanKey = 2;

// float_key of a value that is not -0, which needs no fix-up: a score (sigmoid and softmax give
// +0 at the least) plus a bias, for one, since only -0 + -0 sums to -0.
FH_HOST_DEVICE FH_INLINE uint32_t float_key_not_minus_zero(float f) {
  const uint32_t u = float_to_bits(f);
  // A negative number flips every bit (a larger magnitude ranks lower), any other sets the sign
  // bit: one xor with a mask made from the sign (a shift and a logic op on the GPU, no branch).
  const uint32_t flip = static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u;
  return f != f ? kNanKey : u ^ flip;
}

// A float's order as an unsigned integer (-0 and +0 equal; -inf the smallest number).
FH_HOST_DEVICE FH_INLINE uint32_t float_key(float f) { return float_key_not_minus_zero(f + 0.0f); }

// (key, expert) in one integer: the larger key wins, then the lower expert index.
FH_HOST_DEVICE FH_INLINE uint64_t pack(uint32_t key, int expert) {
  return (static_cast<uint64_t>(key) << 32) | (0xffffffffu - static_cast<uint32_t>(expert));
}
FH_HOST_DEVICE FH_INLINE int unpack_expert(uint64_t packed) {
  return static_cast<int>(0xffffffffu - static_cast<uint32_t>(packed & 0xffffffffu));
}

// Sigmoid scores below this are 0 (see the semantics above); FLT_MIN.
inline constexpr float kSmallestScore = 1.17549435e-38f;
FH_HOST_DEVICE FH_INLINE float flush_tiny_score(float s) { return s < kSmallestScore ? 0.0f : s; }

// Renormalised sigmoid weights come from rescaled_sigmoid below this sum of the chosen scores.
inline constexpr float kRescaleBelowSum = 5.42101086e-20f;  // 2^-64

// e^-m * sigmoid(x) = 1 / (e^m + e^(m - x)), for the largest chosen logit m (m >= x, m < -44
// where it is used): near 1 for x = m, never overflowing, 0 only where e^(m - x) overflows
// (a ratio below 2^-128 to the best). Accurate expf on both devices (taken rarely).
FH_HOST_DEVICE FH_INLINE float rescaled_sigmoid(float x, float m) { return 1.0f / (expf(m) + expf(m - x)); }

FH_HOST_DEVICE FH_INLINE bool group_ranks_before(float score_a, int a, float score_b, int b) {
  return score_a > score_b || (score_a == score_b && a < b);
}

// Keeps the two largest values seen (a multiset: equal values count twice): a group's top two.
FH_HOST_DEVICE FH_INLINE void push_top2(float v, float& best, float& second) {
  if (v > best) {
    second = best;
    best = v;
  } else if (v > second) {
    second = v;
  }
}

}  // namespace moe_rank

}  // namespace flashhip::kernels
