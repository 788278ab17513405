// Torch wrappers of the normalisation family: argument checks, then the CPU implementation or
// the GPU launcher on the caller's current stream. One function per op serves both devices.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <algorithm>
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

// Dimensions [begin, end) of t as one dimension of `*size` elements `*stride` apart: each
// dimension (but those of size 1) must step over whole blocks of the ones inside it.
bool collapse(const at::Tensor& t, int64_t begin, int64_t end, int64_t* size, int64_t* stride) {
  *size = 1;
  *stride = -1;
  for (int64_t d = end - 1; d >= begin; --d) {
    if (t.size(d) == 1) continue;
    if (*stride < 0) {
      *stride = t.stride(d);
    } else if (t.stride(d) != *stride * *size) {
      return false;
    }
    *size *= t.size(d);
  }
  if (*stride < 0) *stride = 0;
  return true;
}

// One tensor's rows in the NormParams: its strides, and where they are written.
struct RowsArg {
  const char* name;
  const at::Tensor* t;
  int64_t* row_stride;
  int64_t* head_stride;
};

// The family's [..., hidden] tensors (all of one shape; the input first) as rows: the leading
// dimensions as one row dimension, or else as [tokens, heads] with a stride each (the per-head
// qk-norm of q or k viewed out of a fused qkv buffer, whose heads are not a token apart). The
// same split into tokens and heads must fit every tensor; the first that fits none is named.
void set_rows(const char* op, NormParams& p, std::initializer_list<RowsArg> args) {
  const int64_t lead = args.begin()->t->dim() - 1;
  auto fits = [&](const at::Tensor& t, int64_t split) {
    int64_t n, stride;
    return collapse(t, 0, split, &n, &stride) && collapse(t, split, lead, &n, &stride);
  };
  for (int64_t split = 0; split < std::max<int64_t>(lead, 1); ++split) {
    bool all = true;
    for (const auto& a : args) all = all && fits(*a.t, split);
    if (!all) continue;
    for (const auto& a : args) {
      int64_t tokens, token_stride, heads, head_stride;
      collapse(*a.t, 0, split, &tokens, &token_stride);
      collapse(*a.t, split, lead, &heads, &head_stride);
      if (tokens > 1 && heads > 1) {
        p.heads = heads;
        *a.row_stride = token_stride;
        *a.head_stride = head_stride;
      } else {
        p.heads = 1;
        *a.row_stride = tokens > 1 ? token_stride : heads > 1 ? head_stride : a.t->size(-1);
        *a.head_stride = 0;
      }
    }
    return;
  }
  for (const auto& a : args) {
    bool any = false;
    for (int64_t split = 0; split < std::max<int64_t>(lead, 1); ++split) any = any || fits(*a.t, split);
    TORCH_CHECK(any, op, ": argument '", a.name,
                "' has leading dimensions that cannot be viewed as one row dimension, nor as [tokens, heads] "
                "with one stride each (sizes ",
                a.t->sizes(), ", strides ", a.t->strides(), ")");
  }
  TORCH_CHECK(false, op, ": the leading dimensions of '", (args.end() - 1)->name, "' (strides ",
              (args.end() - 1)->t->strides(), ") and 'input' (strides ", args.begin()->t->strides(),
              ") split into [tokens, heads] at no common place");
}

// Checks shared by the family: input [..., hidden] in an activation dtype, a writable output of
// the same shape, weight [hidden]. Returns the input's rows and hidden size (strides: set_rows).
RowView check_common(const char* op, const at::Tensor& out, const char* out_name, const at::Tensor& input,
                     const at::Tensor& weight, double eps) {
  check_device(op, "input", input);
  check_dtype(op, "input", input, kActivationDtypes);
  const RowView in = rows_and_hidden(op, "input", input);
  check_same_device(op, out_name, out, input);
  rows_and_hidden(op, out_name, out);
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
  rows_and_hidden(op, "residual", residual);
  check_separate(op, "residual", residual, "input", input);
}

// The quantising forms' fp8 output, weight and scale.
void set_quant_output(const char* op, NormParams& p, const at::Tensor& out, const at::Tensor& weight,
                      const at::Tensor& scale) {
  p.out = out.data_ptr();
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
  set_rows(op, p, {{"input", &input, &p.input_row_stride, &p.input_head_stride},
                   {"out", &out, &p.out_row_stride, &p.out_head_stride}});
  p.out = out.data_ptr();
  p.weight = weight.data_ptr();
  run(op, p, input);
}

void fused_add_rmsnorm(at::Tensor& input, at::Tensor& residual, const at::Tensor& weight, double eps, bool gemma,
                       bool fp32_sum) {
  constexpr const char* op = "flashhip.fused_add_rmsnorm";
  const RowView in = check_common(op, input, "input", input, weight, eps);
  check_residual(op, residual, input);
  check_same_dtype(op, "weight", weight, input, "input");
  check_apart(op, {{"input", &input}, {"residual", &residual}}, {{"weight", &weight}});
  NormParams p = params_for(NormKind::kFusedAddRms, in, input, eps, gemma);
  set_rows(op, p, {{"input", &input, &p.input_row_stride, &p.input_head_stride},
                   {"residual", &residual, &p.residual_row_stride, &p.residual_head_stride}});
  p.out = input.data_ptr();
  p.out_row_stride = p.input_row_stride;
  p.out_head_stride = p.input_head_stride;
  p.residual = residual.data_ptr();
  p.fp32_sum = fp32_sum;
  p.weight = weight.data_ptr();
  run(op, p, input);
}

// The layernorm kinds' weight and optional bias: in the input's dtype or fp32 (FlashInfer passes
// fp32 gamma/beta), the bias in the weight's, neither written through the output.
void set_layer_affine(const char* op, NormParams& p, const RowView& in, const at::Tensor& out,
                      const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  check_apart(op, {{"out", &out}}, {{"weight", &weight}});
  if (bias.has_value()) check_apart(op, {{"out", &out}}, {{"bias", &*bias}});
  TORCH_CHECK(weight.scalar_type() == input.scalar_type() || weight.scalar_type() == at::kFloat, op,
              ": argument 'weight' must have the dtype of 'input' (", input.scalar_type(), ") or float32, got ",
              weight.scalar_type());
  if (bias.has_value()) {
    check_same_device(op, "bias", *bias, input);
    check_shape(op, "bias", *bias, {in.hidden});
    check_same_dtype(op, "bias", *bias, weight, "weight");
    check_contiguous(op, "bias", *bias);
    p.bias = bias->data_ptr();
  }
  p.weight = weight.data_ptr();
  p.weight_dtype = kernel_dtype(weight.scalar_type());
}

void layernorm(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
               double eps) {
  constexpr const char* op = "flashhip.layernorm";
  const RowView in = check_common(op, out, "out", input, weight, eps);
  check_same_dtype(op, "out", out, input, "input");
  check_in_place_or_separate(op, "out", out, "input", input);
  NormParams p = params_for(NormKind::kLayer, in, input, eps, false);
  set_layer_affine(op, p, in, out, input, weight, bias);
  set_rows(op, p, {{"input", &input, &p.input_row_stride, &p.input_head_stride},
                   {"out", &out, &p.out_row_stride, &p.out_head_stride}});
  p.out = out.data_ptr();
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
  set_rows(op, p, {{"input", &input, &p.input_row_stride, &p.input_head_stride},
                   {"out", &out, &p.out_row_stride, &p.out_head_stride}});
  set_quant_output(op, p, out, weight, scale);
  run(op, p, input);
}

void layernorm_quant(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight,
                     const std::optional<at::Tensor>& bias, const at::Tensor& scale, double eps) {
  constexpr const char* op = "flashhip.layernorm_quant";
  const RowView in = check_common(op, out, "out", input, weight, eps);
  check_dtype(op, "out", out, kFp8Dtypes);
  check_scale(op, scale, input);
  check_apart(op, {{"out", &out}}, {{"input", &input}, {"scale", &scale}});
  NormParams p = params_for(NormKind::kLayerQuant, in, input, eps, false);
  set_layer_affine(op, p, in, out, input, weight, bias);
  set_rows(op, p, {{"input", &input, &p.input_row_stride, &p.input_head_stride},
                   {"out", &out, &p.out_row_stride, &p.out_head_stride}});
  set_quant_output(op, p, out, weight, scale);
  run(op, p, input);
}

void fused_add_rmsnorm_quant(at::Tensor& out, const at::Tensor& input, at::Tensor& residual, const at::Tensor& weight,
                             const at::Tensor& scale, double eps, bool gemma, bool fp32_sum) {
  constexpr const char* op = "flashhip.fused_add_rmsnorm_quant";
  const RowView in = check_common(op, out, "out", input, weight, eps);
  check_dtype(op, "out", out, kFp8Dtypes);
  check_residual(op, residual, input);
  check_same_dtype(op, "weight", weight, input, "input");
  check_scale(op, scale, input);
  check_apart(op, {{"out", &out}, {"residual", &residual}}, {{"weight", &weight}, {"scale", &scale}});
  check_apart(op, {{"out", &out}}, {{"input", &input}, {"residual", &residual}});
  NormParams p = params_for(NormKind::kFusedAddRmsQuant, in, input, eps, gemma);
  set_rows(op, p, {{"input", &input, &p.input_row_stride, &p.input_head_stride},
                   {"out", &out, &p.out_row_stride, &p.out_head_stride},
                   {"residual", &residual, &p.residual_row_stride, &p.residual_head_stride}});
  set_quant_output(op, p, out, weight, scale);
  p.residual = residual.data_ptr();
  p.fp32_sum = fp32_sum;
  run(op, p, input);
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) {
  m.impl("rmsnorm", &rmsnorm);
  m.impl("fused_add_rmsnorm", &fused_add_rmsnorm);
  m.impl("layernorm", &layernorm);
  m.impl("rmsnorm_quant", &rmsnorm_quant);
  m.impl("fused_add_rmsnorm_quant", &fused_add_rmsnorm_quant);
  m.impl("layernorm_quant", &layernorm_quant);
}

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) {
  m.impl("rmsnorm", &rmsnorm);
  m.impl("fused_add_rmsnorm", &fused_add_rmsnorm);
  m.impl("layernorm", &layernorm);
  m.impl("rmsnorm_quant", &rmsnorm_quant);
  m.impl("fused_add_rmsnorm_quant", &fused_add_rmsnorm_quant);
  m.impl("layernorm_quant", &layernorm_quant);
}
#endif

}  // namespace flashhip::ops
