// Torch wrapper of the blockwise-scaled fp8 GEMM (OPS.md §4): argument checks, then the CPU
// implementation or the GPU launcher on the caller's current stream.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include "checks.h"
#include "dev_overrides.h"
#include "cpu/fp8_gemm.h"
#include "flashhip/kernels/gemm/fp8_gemm.h"
#include "flashhip/kernels/gemm/fp8_gemm_arch.h"
#include "run_on_device.h"

namespace flashhip::ops {
namespace {

using kernels::Fp8GemmParams;
using kernels::kFp8ScaleBlock;

constexpr int64_t kNMultiple = 64;

// The fp8 flavour the device's matrix cores compute in: OCP e4m3fn on NVIDIA and gfx950, FNUZ on
// gfx940/941/942. The CPU computes both.
at::ScalarType native_fp8(const at::Tensor& t) {
  if (!t.is_cuda() || !at::detail::getCUDAHooks().hasROCM()) return at::kFloat8_e4m3fn;
#ifdef USE_ROCM  // torch declares the arch query in ROCm builds only
  if (at::detail::getCUDAHooks().isGPUArch({"gfx950"}, t.device().index())) return at::kFloat8_e4m3fn;
#endif
  return at::kFloat8_e4m3fnuz;
}

// (stride of the row dimension, stride of K) of an fp8 operand that is K-contiguous (stride 1
// along K) or M/N-contiguous (stride 1 along rows); a dimension of size 1 counts as contiguous.
std::pair<int64_t, int64_t> operand_strides(const char* op, const char* arg, const at::Tensor& t) {
  const int64_t s0 = t.size(0) <= 1 ? 1 : t.stride(0);
  const int64_t s1 = t.size(1) <= 1 ? 1 : t.stride(1);
  if (s1 == 1) return {t.size(0) <= 1 ? t.size(1) : t.stride(0), 1};
  TORCH_CHECK(s0 == 1, op, ": argument '", arg, "' must have stride 1 along K (K-contiguous) or along its first ",
              "dimension (", arg[0] == 'a' ? "M" : "N", "-contiguous, e.g. a transposed view); got strides ", t.strides());
  return {1, t.stride(1)};
}

std::string describe(const kernels::Fp8GemmLaunchInfo& info, const Fp8GemmParams& p) {
  return std::string(info.variant) + " (block " + std::to_string(info.block_m) + "x" + std::to_string(info.block_n) +
         "x" + std::to_string(info.block_k) + ", " + std::to_string(info.stages) + " stages, split-K " +
         std::to_string(info.split_k) + (info.stream_k ? ", stream-K" : "") +
         (info.cluster_m > 1 ? ", 2-CTA clusters sharing B" : info.cluster_n > 1 ? ", 2-CTA clusters sharing A" : "") +
         ", grid " + std::to_string(info.grid) + (info.transposed_a ? ", a transposed" : "") +
         (info.transposed_b ? ", b transposed" : "") + "; M-class " + (p.m <= 128 ? "decode" : "prefill") + ")";
}

void fp8_gemm(at::Tensor& out, const at::Tensor& a, const at::Tensor& b, const at::Tensor& a_scale,
              const at::Tensor& b_scale) {
  constexpr const char* op = "flashhip.fp8_gemm";
  check_device(op, "a", a);
  check_dtype(op, "a", a, {at::kFloat8_e4m3fn, at::kFloat8_e4m3fnuz});
  check_same_device(op, "b", b, a);
  TORCH_CHECK(b.scalar_type() == a.scalar_type(), op, ": argument 'b' must have the fp8 flavour of 'a' (",
              a.scalar_type(), "), got ", b.scalar_type(), "; mixed flavours are not supported");
  if (a.is_cuda()) {
    const auto native = native_fp8(a);
    TORCH_CHECK(a.scalar_type() == native, op, ": argument 'a' is ", a.scalar_type(), " but this GPU's matrix cores take ",
                native, " (OCP e4m3fn on NVIDIA and gfx950, e4m3fnuz on gfx940/gfx942); convert the operands first");
  }
  TORCH_CHECK(a.dim() == 2, op, ": argument 'a' must be 2-D [M, K], got shape ", a.sizes());
  TORCH_CHECK(b.dim() == 2, op, ": argument 'b' must be 2-D [N, K], got shape ", b.sizes());
  const int64_t m = a.size(0), k = a.size(1), n = b.size(0);
  TORCH_CHECK(b.size(1) == k, op, ": argument 'b' must be [N, K] with the K of 'a' (", k, "), got shape ", b.sizes());
  TORCH_CHECK(k > 0 && k % kFp8ScaleBlock == 0, op, ": K (the second dimension of 'a' and 'b') must be a positive ",
              "multiple of ", kFp8ScaleBlock, ", got ", k);
  TORCH_CHECK(n > 0 && n % kNMultiple == 0, op, ": N (the first dimension of 'b') must be a positive multiple of ",
              kNMultiple, ", got ", n);
  const auto [a_stride_m, a_stride_k] = operand_strides(op, "a", a);
  const auto [b_stride_n, b_stride_k] = operand_strides(op, "b", b);
  const int64_t kb = k / kFp8ScaleBlock, nb = (n + kFp8ScaleBlock - 1) / kFp8ScaleBlock;
  check_same_device(op, "a_scale", a_scale, a);
  check_dtype(op, "a_scale", a_scale, {at::kFloat});
  check_shape(op, "a_scale", a_scale, {m, kb});
  check_same_device(op, "b_scale", b_scale, a);
  check_dtype(op, "b_scale", b_scale, {at::kFloat});
  check_shape(op, "b_scale", b_scale, {nb, kb});
  check_same_device(op, "out", out, a);
  check_dtype(op, "out", out, {at::kBFloat16, at::kHalf, at::kFloat});
  check_shape(op, "out", out, {m, n});
  TORCH_CHECK(out.stride(1) == 1, op, ": argument 'out' must have stride 1 along N, got strides ", out.strides());
  check_writable(op, "out", out);
  check_separate(op, "out", out, "a", a);
  check_separate(op, "out", out, "b", b);
  check_separate(op, "out", out, "a_scale", a_scale);
  check_separate(op, "out", out, "b_scale", b_scale);
  if (m == 0) return;

  Fp8GemmParams p;
  p.out = out.data_ptr();
  p.a = a.data_ptr();
  p.b = b.data_ptr();
  p.a_scale = a_scale.data_ptr<float>();
  p.b_scale = b_scale.data_ptr<float>();
  p.m = m;
  p.n = n;
  p.k = k;
  p.out_stride_m = m == 1 ? n : out.stride(0);
  p.a_stride_m = a_stride_m;
  p.a_stride_k = a_stride_k;
  p.b_stride_n = b_stride_n;
  p.b_stride_k = b_stride_k;
  p.a_scale_stride_m = a_scale.stride(0);
  p.a_scale_stride_kb = a_scale.stride(1);
  p.b_scale_stride_nb = b_scale.stride(0);
  p.b_scale_stride_kb = b_scale.stride(1);
  p.fp8_dtype = kernel_dtype(a.scalar_type());
  p.out_dtype = kernel_dtype(out.scalar_type());
  apply_dev_overrides(p);

  run_on_device(
      op, a,
      [&] {
        cpu::fp8_gemm(p);
        return [&] { return std::string("cpu (dequantise + fp32 mm, ") + c10::toString(out.scalar_type()) + " out)"; };
      },
      [&](StreamHandle stream) {
        const size_t bytes = kernels::fp8_gemm_workspace_bytes(p);
        at::Tensor workspace;
        if (bytes > 0) {
          // The caching allocator hands out memory ordered on the current stream: graph-safe.
          workspace = at::empty({static_cast<int64_t>(bytes)}, a.options().dtype(at::kByte));
          p.workspace = workspace.data_ptr();
          p.workspace_size = bytes;
        }
        kernels::Fp8GemmLaunchInfo info;
        const LaunchStatus status = kernels::launch_fp8_gemm(p, stream, &info);
        // A refusal says why (e.g. "gfx90a (CDNA2) has no fp8 MFMA"); any failure names the call.
        TORCH_CHECK(status.ok(), op, ": ",
                    kernels::fp8_gemm_variant_is_unsupported(info.variant) ? info.variant + 13 : "kernel launch failed",
                    " (", launch_error_string(status), "; ", a.scalar_type(), " a ", a.sizes(), " strides ", a.strides(),
                    ", b ", b.sizes(), " strides ", b.strides(), ", ", out.scalar_type(), " out, on ", a.device(), ")");
        return std::make_pair(status, [info, p] { return describe(info, p); });
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) { m.impl("fp8_gemm", &fp8_gemm); }

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) { m.impl("fp8_gemm", &fp8_gemm); }
#endif

}  // namespace flashhip::ops
