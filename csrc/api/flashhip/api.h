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

}  // namespace flashhip
