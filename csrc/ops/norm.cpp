// Torch wrappers of the normalisation family: argument checks, then the CPU implementation or
// the GPU launcher on the caller's current stream. One function per op serves both devices.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <cmath>
#include <initializer_list>
#include <utility>

#include "checks.h"
#include "cpu/norm.h"
#include "flashhip/kernels/norm/norm.h"
#include "dev_overrides.h"
#include "kernel_log.h"
#include "run_on_device.h"

namespace flashhip::ops {
namespace {

using kernels::NormKind;
using kernels::NormParams;

constexpr std::initializer_list<at::ScalarType> kActivationDtypes = {at::kHalf, at::kBFloat16, at::kFloat};
constexpr std::initializer_list<at::ScalarType> kFp8Dtypes = {at::kFloat8_e4m3fn, at::kFloat8_e4m3fnuz,
                                                              at::kFloat8_e5m2};

// Checks shared by the family: input [..., hidden] in an activation dtype, a writable output of
// the same shape, weight [hidden]. Returns the input's row view.
RowView check_common(const char* op, const at::Tensor& out, const char* out_name, const at::Tensor& input,
                     const at::Tensor& weight, double eps) {
  check_device(op, "input", input);
  check_dtype(op, "input", input, kActivationDtypes);
  const RowView in = row_view(op, "input", input);
  check_same_device(op, out_name, out, input);
  check_same_shape(op, out_name, out, input, "input");
  check_writable(op, out_name, out);
  check_same_device(op, "weight", weight, input);
  check_shape(op, "weight", weight, {in.hidden});
  check_contiguous(op, "weight", weight);
  TORCH_CHECK(in.rows == 0 || in.hidden > 0, op, ": argument 'input' has an empty hidden dimension");
  TORCH_CHECK(eps >= 0.0 && std::isfinite(eps), op, ": argument 'eps' must be finite and >= 0, got ", eps);
  return in;
}

void check_scale(const char* op, const at::Tensor& scale, const at::Tensor& input) {
  check_same_device(op, "scale", scale, input);
  check_dtype(op, "scale", scale, {at::kFloat});
  TORCH_CHECK(scale.numel() == 1, op, ": argument 'scale' must hold one fp32 value (shape [1], [] or [1, 1]), got shape ",
              scale.sizes());
  // The value is checked where reading it costs no device synchronisation (OPS.md §3).
  if (scale.is_cpu()) {
    const float v = scale.item<float>();
    TORCH_CHECK(std::isfinite(v) && v > 0.0f, op, ": argument 'scale' must be finite and positive, got ", v);
  }
}

std::string describe(const kernels::NormLaunchInfo& info, at::ScalarType act) {
  return std::string(info.variant) + " (" + c10::toString(act) + ", vec " + std::to_string(info.vec) + ", items " +
         std::to_string(info.vecs_per_thread) + ", " + std::to_string(info.threads_per_row) + " threads/row, " +
         std::to_string(info.rows_per_block) + " rows/block, wave " + std::to_string(info.wave) + ")";
}

void run(const char* op, NormParams p, const at::Tensor& input) {
  apply_dev_overrides(p);
  kernels::NormLaunchInfo info;
  run_on_device(
      op, input,
      [&] {
        cpu::norm(p);
        return [&] { return cpu_variant(input.scalar_type()); };
      },
      [&](auto stream) {
        return std::make_pair(kernels::launch_norm(p, stream, &info), [&] { return describe(info, input.scalar_type()); });
      });
}

NormParams params_for(NormKind kind, const RowView& in, const at::Tensor& input, double eps, bool gemma) {
  NormParams p;
  p.kind = kind;
  p.input = input.data_ptr();
  p.input_row_stride = in.row_stride;
  p.rows = in.rows;
  p.hidden = in.hidden;
  p.eps = static_cast<float>(eps);
  p.gemma = gemma;
  p.act_dtype = kernel_dtype(input.scalar_type());
  p.weight_dtype = p.act_dtype;
  p.out_dtype = p.act_dtype;
  return p;
}

// The fused forms' residual: read and written, beside input but never the same tensor.
void check_residual(const char* op, const at::Tensor& residual, const at::Tensor& input) {
  check_same_device(op, "residual", residual, input);
  check_same_shape(op, "residual", residual, input, "input");
  check_same_dtype(op, "residual", residual, input, "input");
  check_writable(op, "residual", residual);
  check_separate(op, "residual", residual, "input", input);
}

// Every output against every argument it may not alias (in-place pairs are checked where allowed).
void check_apart(const char* op, std::initializer_list<std::pair<const char*, const at::Tensor*>> outputs,
                 std::initializer_list<std::pair<const char*, const at::Tensor*>> others) {
  for (const auto& [out_name, out] : outputs)
    for (const auto& [other_name, other] : others) check_separate(op, out_name, *out, other_name, *other);
}

// The quantising forms' fp8 output, weight and scale.
void set_quant_output(const char* op, NormParams& p, const at::Tensor& out, const at::Tensor& weight,
                      const at::Tensor& scale) {
  p.out = out.data_ptr();
  p.out_row_stride = row_view(op, "out", out).row_stride;
  p.out_dtype = kernel_dtype(out.scalar_type());
  p.weight = weight.data_ptr();
  p.scale = scale.data_ptr<float>();
}

void rmsnorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps, bool gemma) {
  constexpr const char* op = "flashhip.rmsnorm";
  const RowView in = check_common(op, out, "out", input, weight, eps);
  check_same_dtype(op, "out", out, input, "input");
  check_same_dtype(op, "weight", weight, input, "input");
  check_in_place_or_separate(op, "out", out, "input", input);
  check_apart(op, {{"out", &out}}, {{"weight", &weight}});
  NormParams p = params_for(NormKind::kRms, in, input, eps, gemma);
  p.out = out.data_ptr();
  p.out_row_stride = row_view(op, "out", out).row_stride;
  p.weight = weight.data_ptr();
  run(op, p, input);
}

void fused_add_rmsnorm(at::Tensor& input, at::Tensor& residual, const at::Tensor& weight, double eps, bool gemma) {
  constexpr const char* op = "flashhip.fused_add_rmsnorm";
  const RowView in = check_common(op, input, "input", input, weight, eps);
  check_residual(op, residual, input);
  check_same_dtype(op, "weight", weight, input, "input");
  check_apart(op, {{"input", &input}, {"residual", &residual}}, {{"weight", &weight}});
  NormParams p = params_for(NormKind::kFusedAddRms, in, input, eps, gemma);
  p.out = input.data_ptr();
  p.out_row_stride = in.row_stride;
  p.residual = residual.data_ptr();
  p.residual_row_stride = row_view(op, "residual", residual).row_stride;
  p.weight = weight.data_ptr();
  run(op, p, input);
}

void layernorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
               double eps) {
  constexpr const char* op = "flashhip.layernorm";
  const RowView in = check_common(op, out, "out", input, weight, eps);
  check_same_dtype(op, "out", out, input, "input");
  check_in_place_or_separate(op, "out", out, "input", input);
  check_apart(op, {{"out", &out}}, {{"weight", &weight}});
  if (bias.has_value()) check_apart(op, {{"out", &out}}, {{"bias", &*bias}});
  TORCH_CHECK(weight.scalar_type() == input.scalar_type() || weight.scalar_type() == at::kFloat, op,
              ": argument 'weight' must have the dtype of 'input' (", input.scalar_type(), ") or float32, got ",
              weight.scalar_type());
  NormParams p = params_for(NormKind::kLayer, in, input, eps, false);
  if (bias.has_value()) {
    check_same_device(op, "bias", *bias, input);
    check_shape(op, "bias", *bias, {in.hidden});
    check_same_dtype(op, "bias", *bias, weight, "weight");
    check_contiguous(op, "bias", *bias);
    p.bias = bias->data_ptr();
  }
  p.out = out.data_ptr();
  p.out_row_stride = row_view(op, "out", out).row_stride;
  p.weight = weight.data_ptr();
  p.weight_dtype = kernel_dtype(weight.scalar_type());
  run(op, p, input);
}

void rmsnorm_quant(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scale,
                   double eps, bool gemma) {
  constexpr const char* op = "flashhip.rmsnorm_quant";
  const RowView in = check_common(op, out, "out", input, weight, eps);
  check_dtype(op, "out", out, kFp8Dtypes);
  check_same_dtype(op, "weight", weight, input, "input");
  check_scale(op, scale, input);
  check_apart(op, {{"out", &out}}, {{"input", &input}, {"weight", &weight}, {"scale", &scale}});
  NormParams p = params_for(NormKind::kRmsQuant, in, input, eps, gemma);
  set_quant_output(op, p, out, weight, scale);
  run(op, p, input);
}

void fused_add_rmsnorm_quant(at::Tensor& out, const at::Tensor& input, at::Tensor& residual, const at::Tensor& weight,
                             const at::Tensor& scale, double eps, bool gemma) {
  constexpr const char* op = "flashhip.fused_add_rmsnorm_quant";
  const RowView in = check_common(op, out, "out", input, weight, eps);
  check_dtype(op, "out", out, kFp8Dtypes);
  check_residual(op, residual, input);
  check_same_dtype(op, "weight", weight, input, "input");
  check_scale(op, scale, input);
  check_apart(op, {{"out", &out}, {"residual", &residual}}, {{"weight", &weight}, {"scale", &scale}});
  check_apart(op, {{"out", &out}}, {{"input", &input}, {"residual", &residual}});
  NormParams p = params_for(NormKind::kFusedAddRmsQuant, in, input, eps, gemma);
  set_quant_output(op, p, out, weight, scale);
  p.residual = residual.data_ptr();
  p.residual_row_stride = row_view(op, "residual", residual).row_stride;
  run(op, p, input);
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) {
  m.impl("rmsnorm", &rmsnorm);
  m.impl("fused_add_rmsnorm", &fused_add_rmsnorm);
  m.impl("layernorm", &layernorm);
  m.impl("rmsnorm_quant", &rmsnorm_quant);
  m.impl("fused_add_rmsnorm_quant", &fused_add_rmsnorm_quant);
}

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) {
  m.impl("rmsnorm", &rmsnorm);
  m.impl("fused_add_rmsnorm", &fused_add_rmsnorm);
  m.impl("layernorm", &layernorm);
  m.impl("rmsnorm_quant", &rmsnorm_quant);
  m.impl("fused_add_rmsnorm_quant", &fused_add_rmsnorm_quant);
}
#endif

}  // namespace flashhip::ops
