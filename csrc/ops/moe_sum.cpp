// Torch wrapper of the MoE combine (sgl-kernel's moe_sum): argument checks (all before anything
// is written), then the CPU implementation or the GPU launcher on the caller's current stream.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <string>

#include "checks.h"
#include "cpu/moe_sum.h"
#include "flashhip/kernels/moe/moe_sum.h"
#include "kernel_log.h"
#include "op_support.h"
#include "run_on_device.h"

namespace flashhip::ops {
namespace {

constexpr const char* kOp = "flashhip.moe_sum";

void moe_sum(at::Tensor& output, const at::Tensor& input) {
  check_device(kOp, "input", input);
  check_dtype(kOp, "input", input, {at::kFloat, at::kHalf, at::kBFloat16});
  TORCH_CHECK(input.dim() == 3, kOp, ": argument 'input' must be 3-D [tokens, topk, hidden], got shape ", input.sizes());
  const int64_t tokens = input.size(0), topk = input.size(1), hidden = input.size(2);
  TORCH_CHECK(input.stride(2) == 1 || hidden <= 1, kOp,
              ": argument 'input' must be contiguous in its innermost dimension (stride 1), got stride ", input.stride(2));
  check_same_device(kOp, "output", output, input);
  check_same_dtype(kOp, "output", output, input, "input");
  TORCH_CHECK(output.dim() == 2 && output.size(0) == tokens && output.size(1) == hidden, kOp,
              ": argument 'output' must have shape [", tokens, ", ", hidden,
              "] ([tokens, hidden] of 'input' [tokens, topk, hidden]), got ", output.sizes());
  TORCH_CHECK(output.stride(1) == 1 || hidden <= 1, kOp,
              ": argument 'output' must be contiguous in its innermost dimension (stride 1), got stride ", output.stride(1));
  check_writable(kOp, "output", output);
  check_separate(kOp, "output", output, "input", input);

  kernels::MoeSumParams p;
  p.out = output.data_ptr();
  p.input = input.data_ptr();
  p.tokens = tokens;
  p.topk = topk;
  p.hidden = hidden;
  p.out_row_stride = output.stride(0);
  p.input_token_stride = input.stride(0);
  p.input_slot_stride = input.stride(1);
  p.dtype = kernel_dtype(input.scalar_type());
  if (tokens == 0 || hidden == 0) return;

  kernels::MoeSumLaunchInfo info;
  run_on_device(
      kOp, input,
      [&] {
        cpu::moe_sum(p);
        return [&] { return cpu_variant(input.scalar_type()); };
      },
      [&](auto stream) {
        return std::make_pair(kernels::launch_moe_sum(p, stream, &info), [&] {
          return std::string("grid-stride (") + c10::toString(input.scalar_type()) + ", " +
                 std::to_string(info.vector) + " per thread, " + std::to_string(info.threads) + " threads, wave " +
                 std::to_string(info.wave) + ", " + std::to_string(info.blocks) + " blocks)";
        });
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) { m.impl("moe_sum", &moe_sum); }

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) { m.impl("moe_sum", &moe_sum); }
#endif

}  // namespace flashhip::ops
