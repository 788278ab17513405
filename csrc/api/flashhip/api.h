// C++ front-end: one function per op, each calling through the PyTorch dispatcher (the path
// Python and TorchScript take), so CPU/GPU selection, autocast and tracing behave the same.
#pragma once

#include <optional>

#include <ATen/ATen.h>

namespace flashhip {

void rmsnorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps = 1e-6, bool gemma = false);
void fused_add_rmsnorm(at::Tensor& input, at::Tensor& residual, const at::Tensor& weight, double eps = 1e-6,
                       bool gemma = false);
void layernorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight,
               const std::optional<at::Tensor>& bias, double eps = 1e-5);
void rmsnorm_quant(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                   double eps = 1e-6, bool gemma = false);
void fused_add_rmsnorm_quant(at::Tensor& out, const at::Tensor& input, at::Tensor& residual, const at::Tensor& weight,
                             const at::Tensor& scale, double eps = 1e-6, bool gemma = false);

// Rotary embedding of q [nnz, Hq, D] and k [nnz, Hk, D] by the rows `positions` of an fp32
// cos|sin cache [max_positions, rotary_dim]; in place when q_out is q and k_out is k.
void rope(at::Tensor& q_out, at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
          const at::Tensor& cos_sin_cache, const at::Tensor& positions, bool interleave = false);

}  // namespace flashhip
