// Torch wrapper of per_token_group_quant_fp8 (OPS.md §4): argument checks, then the CPU
// implementation or the GPU launcher on the caller's current stream.
#include <cmath>

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include "checks.h"
#include "cpu/group_quant.h"
#include "dev_overrides.h"
#include "flashhip/kernels/gemm/fp8_gemm.h"
#include "run_on_device.h"

namespace flashhip::ops {
namespace {

using kernels::GroupQuantParams;

void per_token_group_quant_fp8(at::Tensor& out, at::Tensor& scale, const at::Tensor& input, int64_t group_size,
                               double eps, bool scale_m_major) {
  constexpr const char* op = "flashhip.per_token_group_quant_fp8";
  check_device(op, "input", input);
  check_dtype(op, "input", input, {at::kHalf, at::kBFloat16, at::kFloat});
  TORCH_CHECK(input.dim() == 2, op, ": argument 'input' must be 2-D [M, K], got shape ", input.sizes());
  const RowView in = row_view(op, "input", input);
  const int64_t m = in.rows, k = in.hidden;
  TORCH_CHECK(group_size > 0, op, ": argument 'group_size' must be positive, got ", group_size);
  TORCH_CHECK(k % group_size == 0, op, ": argument 'group_size' (", group_size, ") must divide K (the last dimension of ",
              "'input', ", k, ")");
  TORCH_CHECK(eps > 0.0 && std::isfinite(eps), op, ": argument 'eps' must be finite and > 0, got ", eps);
  check_same_device(op, "out", out, input);
  check_dtype(op, "out", out, {at::kFloat8_e4m3fn, at::kFloat8_e4m3fnuz});
  check_same_shape(op, "out", out, input, "input");
  const RowView o = row_view(op, "out", out);
  check_writable(op, "out", out);
  const int64_t groups = k / group_size;
  check_same_device(op, "scale", scale, input);
  check_dtype(op, "scale", scale, {at::kFloat});
  check_shape(op, "scale", scale, {m, groups});
  check_writable(op, "scale", scale);
  if (scale_m_major) {
    TORCH_CHECK(m <= 1 || scale.stride(0) == 1, op, ": 'scale_m_major' is true but argument 'scale' has strides ",
                scale.strides(), "; an M-major scale has stride 1 along M (e.g. torch.empty(K/g, M).t())");
  } else {
    TORCH_CHECK(groups <= 1 || scale.stride(1) == 1, op, ": 'scale_m_major' is false but argument 'scale' has strides ",
                scale.strides(), "; a row-major scale has stride 1 along K/group_size");
  }
  check_separate(op, "out", out, "input", input);
  check_separate(op, "scale", scale, "input", input);
  check_separate(op, "scale", scale, "out", out);
  if (m == 0 || k == 0) return;

  GroupQuantParams p;
  p.out = out.data_ptr();
  p.scale = scale.data_ptr<float>();
  p.input = input.data_ptr();
  p.m = m;
  p.k = k;
  p.input_stride_m = in.row_stride;
  p.out_stride_m = o.row_stride;
  p.scale_stride_m = scale.stride(0);
  p.scale_stride_g = scale.stride(1);
  p.group_size = static_cast<int>(group_size);
  p.eps = static_cast<float>(eps);
  p.in_dtype = kernel_dtype(input.scalar_type());
  p.fp8_dtype = kernel_dtype(out.scalar_type());

  apply_dev_overrides(p);
  auto describe = [&](const std::string& variant) {
    return variant + " (" + c10::toString(input.scalar_type()) + " -> " +
           c10::toString(out.scalar_type()) + ", group " + std::to_string(group_size) +
           (scale_m_major ? ", M-major scale)" : ", row-major scale)");
  };
  kernels::GroupQuantLaunchInfo info;
  run_on_device(
      op, input,
      [&] {
        cpu::group_quant_fp8(p);
        return [&] { return describe("cpu"); };
      },
      [&](StreamHandle stream) {
        return std::make_pair(kernels::launch_group_quant_fp8(p, stream, &info), [&] {
          std::string variant = std::string("group_quant ") + info.variant;
          if (info.groups_in_flight > 0) variant += ", " + std::to_string(info.groups_in_flight) + " groups in flight";
          return describe(variant + ", wave " + std::to_string(info.wave));
        });
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) { m.impl("per_token_group_quant_fp8", &per_token_group_quant_fp8); }

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) { m.impl("per_token_group_quant_fp8", &per_token_group_quant_fp8); }
#endif

}  // namespace flashhip::ops
