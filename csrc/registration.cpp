// Every schema of the flashhip library, and nothing else. Engine-facing ops write into arguments
// marked (a!) and return nothing, so they capture into CUDA graphs and trace under torch.compile
// without allocating.
#include <torch/library.h>

TORCH_LIBRARY(flashhip, m) {
  // ---- Normalisation (OPS.md §1) ----
  m.def("rmsnorm(Tensor(a!) out, Tensor input, Tensor weight, float eps, bool gemma) -> ()");
  // fp32_sum: normalise the fp32 sum input + residual (FlashInfer's fused_add_rmsnorm) instead of
  // the residual as rounded to its dtype (the default); the residual written is the rounded sum
  // either way.
  m.def(
      "fused_add_rmsnorm(Tensor(a!) input, Tensor(b!) residual, Tensor weight, float eps, bool gemma, "
      "bool fp32_sum=False) -> ()");
  m.def("layernorm(Tensor(a!) out, Tensor input, Tensor weight, Tensor? bias, float eps) -> ()");
  m.def("rmsnorm_quant(Tensor(a!) out, Tensor input, Tensor weight, Tensor scale, float eps, bool gemma) -> ()");
  // fp32_sum as fused_add_rmsnorm's: the row quantised is rmsnorm of the fp32 sum input + residual
  // (FlashInfer's fused_add_rmsnorm_quant) instead of the rounded residual (the default).
  m.def(
      "fused_add_rmsnorm_quant(Tensor(a!) out, Tensor input, Tensor(b!) residual, Tensor weight, Tensor scale, "
      "float eps, bool gemma, bool fp32_sum=False) -> ()");
  // layernorm then rmsnorm_quant's fp8 quantisation: saturate((layernorm(input) * weight + bias) / scale).
  m.def(
      "layernorm_quant(Tensor(a!) out, Tensor input, Tensor weight, Tensor? bias, Tensor scale, float eps) -> ()");

  // ---- FP8 GEMM, DeepSeek-V3 blockwise scaling (OPS.md §4) ----
  // out [M, N] = a [M, K] x b [N, K]^T with 1x128 scales of a and 128x128 scales of b.
  m.def("fp8_gemm(Tensor(a!) out, Tensor a, Tensor b, Tensor a_scale, Tensor b_scale) -> ()");
  // 1 x group_size fp8 quantisation of activations; scale [M, K / group_size], M-major when
  // scale_m_major (strides (1, M), DeepGEMM's layout).
  m.def(
      "per_token_group_quant_fp8(Tensor(a!) out, Tensor(b!) scale, Tensor input, int group_size, float eps, "
      "bool scale_m_major) -> ()");

  // ---- Mixture of experts (OPS.md §5) ----
  m.def(
      "moe_topk(Tensor(a!) topk_weights, Tensor(b!) topk_ids, Tensor gating_output, Tensor? correction_bias, "
      "str scoring_func, int num_expert_group, int topk_group, bool renormalize, float routed_scaling_factor) -> ()");
  // expert_map (optional): int32 [num_experts] global -> local expert id, -1 for experts on
  // other ranks (their pairs are left out). label_unused_blocks: expert_ids past the used blocks
  // get -1 (true) or are left as they were (false: sgl-kernel's behaviour).
  m.def(
      "moe_align_block_size(Tensor topk_ids, int num_experts, int block_size, Tensor(a!) sorted_token_ids, "
      "Tensor(b!) expert_ids, Tensor(c!) num_tokens_post_pad, Tensor? expert_map=None, "
      "bool label_unused_blocks=True) -> ()");
  // The combine after the experts: output [T, H] = sum over the topk slots of input [T, topk, H].
  m.def("moe_sum(Tensor(a!) output, Tensor input) -> ()");
  // ---- Rotary embedding (OPS.md §2) ----
  m.def(
      "rope(Tensor(a!) q_out, Tensor(b!) k_out, Tensor q, Tensor k, Tensor cos_sin_cache, Tensor positions, "
      "bool interleave) -> ()");
  // The same rotation with cos/sin computed from pos_ids in fp32 instead of read from a cache
  // (FlashInfer's apply_rope_pos_ids / apply_llama31_rope_pos_ids): pair i turns by
  // pos * rope_theta^(-2i/rotary_dim) / rope_scale, with Llama-3.1's blend of the scaled and
  // unscaled frequencies when llama31 (the three factors are read only then).
  m.def(
      "rope_pos_ids(Tensor(a!) q_out, Tensor(b!) k_out, Tensor q, Tensor k, Tensor pos_ids, int rotary_dim, "
      "bool interleave, float rope_scale=1., float rope_theta=10000., bool llama31=False, float low_freq_factor=1., "
      "float high_freq_factor=4., float old_context_len=8192.) -> ()");
  // rope, and each token's rotated k heads and its v heads stored into row cache_loc[t] of the
  // KV cache [cache_slots, num_k_heads, head_dim] (sgl-kernel's apply_rope_with_cos_sin_cache_inplace
  // with a FusedSetKVBufferArg, SGLang's set_kv_buffer done by the rope kernel).
  m.def(
      "rope_set_kv_buffer(Tensor(a!) q_out, Tensor(b!) k_out, Tensor(c!) k_cache, Tensor(d!) v_cache, Tensor q, "
      "Tensor k, Tensor v, Tensor cos_sin_cache, Tensor positions, Tensor cache_loc, bool interleave) -> ()");
  // RoPE then fp8 quantisation, the producer side of an fp8 KV cache (FlashInfer's
  // rope_quantize_fp8 / mla_rope_quantize_fp8): q_rope [nnz, Hq, rope_dim] and k_rope (MLA:
  // [nnz, rope_dim]; GQA/MHA: [nnz, Hk, rope_dim]) turned by cos_sin_cache[pos_ids], then every
  // element of the rope and nope parts multiplied by quant_scale_q (q) or quant_scale_kv (k) and
  // stored as saturated fp8 (the outputs' dtype: e4m3fn, e4m3fnuz or e5m2).
  m.def(
      "rope_quantize_fp8(Tensor(a!) q_rope_out, Tensor(b!) k_rope_out, Tensor(c!) q_nope_out, "
      "Tensor(d!) k_nope_out, Tensor q_rope, Tensor k_rope, Tensor q_nope, Tensor k_nope, Tensor cos_sin_cache, "
      "Tensor pos_ids, bool interleave, float quant_scale_q=1., float quant_scale_kv=1.) -> ()");
}
