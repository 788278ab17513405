#include "flashhip/api.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace flashhip {
void rmsnorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps, bool gemma) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::rmsnorm", "")
                             .typed<void(at::Tensor&, const at::Tensor&, const at::Tensor&, double, bool)>();
  op.call(out, input, weight, eps, gemma);
}

void fused_add_rmsnorm(at::Tensor& input, at::Tensor& residual, const at::Tensor& weight, double eps, bool gemma) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::fused_add_rmsnorm", "")
                             .typed<void(at::Tensor&, at::Tensor&, const at::Tensor&, double, bool)>();
  op.call(input, residual, weight, eps, gemma);
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
                             const at::Tensor& scale, double eps, bool gemma) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::fused_add_rmsnorm_quant", "")
                             .typed<void(at::Tensor&, const at::Tensor&, at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, double, bool)>();
  op.call(out, input, residual, weight, scale, eps, gemma);
}

void rope(at::Tensor& q_out, at::Tensor& k_out, const at::Tensor& q, const at::Tensor& k,
          const at::Tensor& cos_sin_cache, const at::Tensor& positions, bool interleave) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("flashhip::rope", "")
                             .typed<void(at::Tensor&, at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, const at::Tensor&, bool)>();
  op.call(q_out, k_out, q, k, cos_sin_cache, positions, interleave);
}

}  // namespace flashhip
