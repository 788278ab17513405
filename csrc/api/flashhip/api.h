// C++ front-end: one function per op, each calling through the PyTorch dispatcher (the path
// Python and TorchScript take), so CPU/GPU selection, autocast and tracing behave the same.
#pragma once

#include <optional>
#include <string>

#include <ATen/ATen.h>

namespace flashhip {

void rmsnorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps = 1e-6, bool gemma = false);
// fp32_sum: normalise the fp32 sum input + residual (FlashInfer's result) rather than the rounded
// residual (the default).
void fused_add_rmsnorm(at::Tensor& input, at::Tensor& residual, const at::Tensor& weight, double eps = 1e-6,
                       bool gemma = false, bool fp32_sum = false);
void layernorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight,
               const std::optional<at::Tensor>& bias, double eps = 1e-5);
void rmsnorm_quant(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                   double eps = 1e-6, bool gemma = false);
// fp32_sum as fused_add_rmsnorm's: quantise rmsnorm of the fp32 sum (FlashInfer's result).
void fused_add_rmsnorm_quant(at::Tensor& out, const at::Tensor& input, at::Tensor& residual, const at::Tensor& weight,
                             const at::Tensor& scale, double eps = 1e-6, bool gemma = false, bool fp32_sum = false);
void layernorm_quant(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias, const at::Tensor& scale, double eps = 1e-5);

// FP8 GEMM with DeepSeek-V3 blockwise scales (OPS.md §4): out [M, N] (bf16/fp16/fp32) =
// a [M, K] x b [N, K]^T, fp8 operands K- or M/N-contiguous, a_scale fp32 [M, K/128], b_scale
// fp32 [ceil(N/128), K/128] of any strides.
void fp8_gemm(at::Tensor& out, const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_scale,
              const at::Tensor& b_scale);
// 1 x group_size fp8 quantisation: scale [M, K/group_size] = max(amax, eps) / fp8_max (M-major
// strides (1, M) when scale_m_major), out [M, K] = saturate(input / scale).
void per_token_group_quant_fp8(at::Tensor& out, at::Tensor& scale, const at::Tensor& input, int64_t group_size = 128,
                               double eps = 1e-10, bool scale_m_major = false);

// Mixture of experts (OPS.md §5).
void moe_topk(at::Tensor& topk_weights, at::Tensor& topk_ids, const at::Tensor& gating_output,
              const std::optional<at::Tensor>& correction_bias, const std::string& scoring_func = "softmax",
              int64_t num_expert_group = 1, int64_t topk_group = 1, bool renormalize = false,
              double routed_scaling_factor = 1.0);
void moe_align_block_size(const at::Tensor& topk_ids, int64_t num_experts, int64_t block_size,
                          at::Tensor& sorted_token_ids, at::Tensor& expert_ids, at::Tensor& num_tokens_post_pad,
                          const std::optional<at::Tensor>& expert_map = std::nullopt,
                          bool label_unused_blocks = true);
// output [T, H] = the sum over the topk slots of input [T, topk, H], in fp32, rounded once.
void moe_sum(at::Tensor& output, const at::Tensor& input);
// Rotary embedding of q [nnz, Hq, D] and k [nnz, Hk, D] by the rows `positions` of an fp32
// cos|sin cache [max_positions, rotary_dim]; in place when q_out is q and k_out is k.
void rope(at::Tensor& q_out, at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
          const at::Tensor& cos_sin_cache, const at::Tensor& positions, bool interleave = false);
// The same rotation with cos/sin computed in fp32 from pos_ids [nnz] (no cache): pair i turns by
// pos * rope_theta^(-2i/rotary_dim) / rope_scale, blended with the unscaled frequency as
// Llama-3.1 does when llama31.
void rope_pos_ids(at::Tensor& q_out, at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
                  const at::Tensor& pos_ids, int64_t rotary_dim, bool interleave = false, double rope_scale = 1.0,
                  double rope_theta = 1e4, bool llama31 = false, double low_freq_factor = 1.0,
                  double high_freq_factor = 4.0, double old_context_len = 8192.0);
// rope, and token t's rotated k heads and its v heads [nnz, Hk, D] stored into row cache_loc[t]
// (int64 [nnz]) of k_cache and v_cache [cache_slots, Hk, D].
void rope_set_kv_buffer(at::Tensor& q_out, at::Tensor& k_out, at::Tensor& k_cache, at::Tensor& v_cache,
                        const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cos_sin_cache,
                        const at::Tensor& positions, const at::Tensor& cache_loc, bool interleave = false);
// q_rope [nnz, Hq, R] and k_rope ([nnz, R] for MLA, [nnz, Hk, R]) rotated by cos_sin_cache[pos_ids],
// then the rope and nope parts times quant_scale_q (q) / quant_scale_kv (k), saturated to the
// outputs' fp8 dtype.
void rope_quantize_fp8(at::Tensor& q_rope_out, at::Tensor& k_rope_out, at::Tensor& q_nope_out, at::Tensor& k_nope_out,
                       const at::Tensor& q_rope, const at::Tensor& k_rope, const at::Tensor& q_nope,
                       const at::Tensor& k_nope, const at::Tensor& cos_sin_cache, const at::Tensor& pos_ids,
                       bool interleave = false, double quant_scale_q = 1.0, double quant_scale_kv = 1.0);

}  // namespace flashhip
