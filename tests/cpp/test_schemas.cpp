// Every op the library promises is registered with exactly its documented schema.
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace {

const std::vector<std::string> kExpectedSchemas = {
    "flashhip::rmsnorm(Tensor(a!) out, Tensor input, Tensor weight, float eps, bool gemma) -> ()",
    "flashhip::fused_add_rmsnorm(Tensor(a!) input, Tensor(b!) residual, Tensor weight, float eps, bool gemma, "
    "bool fp32_sum=False) -> ()",
    "flashhip::layernorm(Tensor(a!) out, Tensor input, Tensor weight, Tensor? bias, float eps) -> ()",
    "flashhip::rmsnorm_quant(Tensor(a!) out, Tensor input, Tensor weight, Tensor scale, float eps, bool gemma) -> ()",
    "flashhip::fused_add_rmsnorm_quant(Tensor(a!) out, Tensor input, Tensor(b!) residual, Tensor weight, "
    "Tensor scale, float eps, bool gemma, bool fp32_sum=False) -> ()",
    "flashhip::layernorm_quant(Tensor(a!) out, Tensor input, Tensor weight, Tensor? bias, Tensor scale, "
    "float eps) -> ()",
    "flashhip::fp8_gemm(Tensor(a!) out, Tensor a, Tensor b, Tensor a_scale, Tensor b_scale) -> ()",
    "flashhip::per_token_group_quant_fp8(Tensor(a!) out, Tensor(b!) scale, Tensor input, int group_size, "
    "float eps, bool scale_m_major) -> ()",
    "flashhip::moe_topk(Tensor(a!) topk_weights, Tensor(b!) topk_ids, Tensor gating_output, Tensor? correction_bias, "
    "str scoring_func, int num_expert_group, int topk_group, bool renormalize, float routed_scaling_factor) -> ()",
    "flashhip::moe_align_block_size(Tensor topk_ids, int num_experts, int block_size, Tensor(a!) sorted_token_ids, "
    "Tensor(b!) expert_ids, Tensor(c!) num_tokens_post_pad, Tensor? expert_map=None, bool label_unused_blocks=True) -> ()",
    "flashhip::moe_sum(Tensor(a!) output, Tensor input) -> ()",
    "flashhip::rope(Tensor(a!) q_out, Tensor(b!) k_out, Tensor q, Tensor k, Tensor cos_sin_cache, "
    "Tensor positions, bool interleave) -> ()",
    "flashhip::rope_pos_ids(Tensor(a!) q_out, Tensor(b!) k_out, Tensor q, Tensor k, Tensor pos_ids, int rotary_dim, "
    "bool interleave, float rope_scale=1., float rope_theta=10000., bool llama31=False, float low_freq_factor=1., "
    "float high_freq_factor=4., float old_context_len=8192.) -> ()",
    "flashhip::rope_set_kv_buffer(Tensor(a!) q_out, Tensor(b!) k_out, Tensor(c!) k_cache, Tensor(d!) v_cache, "
    "Tensor q, Tensor k, Tensor v, Tensor cos_sin_cache, Tensor positions, Tensor cache_loc, bool interleave) -> ()",
    "flashhip::rope_quantize_fp8(Tensor(a!) q_rope_out, Tensor(b!) k_rope_out, Tensor(c!) q_nope_out, "
    "Tensor(d!) k_nope_out, Tensor q_rope, Tensor k_rope, Tensor q_nope, Tensor k_nope, Tensor cos_sin_cache, "
    "Tensor pos_ids, bool interleave, float quant_scale_q=1., float quant_scale_kv=1.) -> ()",
};

std::string name_of(const std::string& schema) { return schema.substr(0, schema.find('(')); }

TEST(Schemas, EveryExpectedOpIsRegisteredWithItsSchema) {
  for (const auto& expected : kExpectedSchemas) {
    const auto handle = c10::Dispatcher::singleton().findSchema({name_of(expected), ""});
    ASSERT_TRUE(handle.has_value()) << "missing op " << name_of(expected);
    std::ostringstream actual;
    actual << handle->schema();
    EXPECT_EQ(actual.str(), expected);
  }
}

TEST(Schemas, EveryOpHasACpuKernel) {
  for (const auto& expected : kExpectedSchemas) {
    const auto handle = c10::Dispatcher::singleton().findSchema({name_of(expected), ""});
    ASSERT_TRUE(handle.has_value());
    EXPECT_TRUE(handle->hasKernelForDispatchKey(c10::DispatchKey::CPU)) << name_of(expected);
  }
}

}  // namespace
