#include "flashhip/api.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace flashhip {
void rmsnorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps, bool gemma) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::rmsnorm", "")
                             .typed<void(at::Tensor&, const at::Tensor&, const at::Tensor&, double, bool)>();
  op.call(out, input, weight, eps, gemma);
}

void fused_add_rmsnorm(at::Tensor& input, at::Tensor& residual, const at::Tensor& weight, double eps, bool gemma,
                       bool fp32_sum) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::fused_add_rmsnorm", "")
                             .typed<void(at::Tensor&, at::Tensor&, const at::Tensor&, double, bool, bool)>();
  op.call(input, residual, weight, eps, gemma, fp32_sum);
}

void layernorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight,
               const std::optional<at::Tensor>& bias, double eps) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("flashhip::layernorm", "")
          .typed<void(at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, double)>();
  op.call(out, input, weight, bias, eps);
}

void rmsnorm_quant(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                   double eps, bool gemma) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("flashhip::rmsnorm_quant", "")
          .typed<void(at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double, bool)>();
  op.call(out, input, weight, scale, eps, gemma);
}

void fused_add_rmsnorm_quant(at::Tensor& out, const at::Tensor& input, at::Tensor& residual, const at::Tensor& weight,
                             const at::Tensor& scale, double eps, bool gemma, bool fp32_sum) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::fused_add_rmsnorm_quant", "")
                             .typed<void(at::Tensor&, const at::Tensor&, at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, double, bool, bool)>();
  op.call(out, input, residual, weight, scale, eps, gemma, fp32_sum);
}

void layernorm_quant(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias, const at::Tensor& scale, double eps) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::layernorm_quant", "")
                             .typed<void(at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const std::optional<at::Tensor>&, const at::Tensor&, double)>();
  op.call(out, input, weight, bias, scale, eps);
}

void fp8_gemm(at::Tensor& out, const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_scale,
              const at::Tensor& b_scale) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::fp8_gemm", "")
                             .typed<void(at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&)>();
  op.call(out, a, b, a_scale, b_scale);
}

void per_token_group_quant_fp8(at::Tensor& out, at::Tensor& scale, const at::Tensor& input, int64_t group_size,
                               double eps, bool scale_m_major) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::per_token_group_quant_fp8", "")
                             .typed<void(at::Tensor&, at::Tensor&, const at::Tensor&, int64_t, double, bool)>();
  op.call(out, scale, input, group_size, eps, scale_m_major);
}

void moe_topk(at::Tensor& topk_weights, at::Tensor& topk_ids, const at::Tensor& gating_output,
              const std::optional<at::Tensor>& correction_bias, const std::string& scoring_func,
              int64_t num_expert_group, int64_t topk_group, bool renormalize, double routed_scaling_factor) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::moe_topk", "")
                             .typed<void(at::Tensor&, at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                         c10::string_view, int64_t, int64_t, bool, double)>();
  op.call(topk_weights, topk_ids, gating_output, correction_bias, scoring_func, num_expert_group, topk_group,
          renormalize, routed_scaling_factor);
}

void moe_align_block_size(const at::Tensor& topk_ids, int64_t num_experts, int64_t block_size,
                          at::Tensor& sorted_token_ids, at::Tensor& expert_ids, at::Tensor& num_tokens_post_pad,
                          const std::optional<at::Tensor>& expert_map, bool label_unused_blocks) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::moe_align_block_size", "")
                             .typed<void(const at::Tensor&, int64_t, int64_t, at::Tensor&, at::Tensor&, at::Tensor&,
                                         const std::optional<at::Tensor>&, bool)>();
  op.call(topk_ids, num_experts, block_size, sorted_token_ids, expert_ids, num_tokens_post_pad, expert_map,
          label_unused_blocks);
}

void moe_sum(at::Tensor& output, const at::Tensor& input) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::moe_sum", "")
                             .typed<void(at::Tensor&, const at::Tensor&)>();
  op.call(output, input);
}

void rope(at::Tensor& q_out, at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
          const at::Tensor& cos_sin_cache, const at::Tensor& positions, bool interleave) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::rope", "")
                             .typed<void(at::Tensor&, at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, const at::Tensor&, bool)>();
  op.call(q_out, k_out, q, k, cos_sin_cache, positions, interleave);
}

void rope_pos_ids(at::Tensor& q_out, at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
                  const at::Tensor& pos_ids, int64_t rotary_dim, bool interleave, double rope_scale, double rope_theta,
                  bool llama31, double low_freq_factor, double high_freq_factor, double old_context_len) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::rope_pos_ids", "")
                             .typed<void(at::Tensor&, at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, int64_t, bool, double, double, bool, double, double,
                                         double)>();
  op.call(q_out, k_out, q, k, pos_ids, rotary_dim, interleave, rope_scale, rope_theta, llama31, low_freq_factor,
          high_freq_factor, old_context_len);
}

void rope_set_kv_buffer(at::Tensor& q_out, at::Tensor& k_out, at::Tensor& k_cache, at::Tensor& v_cache,
                        const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos_sin_cache,
                        const at::Tensor& positions, const at::Tensor& cache_loc, bool interleave) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::rope_set_kv_buffer", "")
                             .typed<void(at::Tensor&, at::Tensor&, at::Tensor&, at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, bool)>();
  op.call(q_out, k_out, k_cache, v_cache, q, k, v, cos_sin_cache, positions, cache_loc, interleave);
}

void rope_quantize_fp8(at::Tensor& q_rope_out, at::Tensor& k_rope_out, at::Tensor& q_nope_out, at::Tensor& k_nope_out,
                       const at::Tensor& q_rope, const at::Tensor& k_rope, const at::Tensor& q_nope,
                       const at::Tensor& k_nope, const at::Tensor& cos_sin_cache, const at::Tensor& pos_ids,
                       bool interleave, double quant_scale_q, double quant_scale_kv) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::rope_quantize_fp8", "")
                             .typed<void(at::Tensor&, at::Tensor&, at::Tensor&, at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, bool, double, double)>();
  op.call(q_rope_out, k_rope_out, q_nope_out, k_nope_out, q_rope, k_rope, q_nope, k_nope, cos_sin_cache, pos_ids,
          interleave, quant_scale_q, quant_scale_kv);
}

}  // namespace flashhip
