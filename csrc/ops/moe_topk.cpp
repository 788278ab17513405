// Torch wrapper of MoE routing: argument checks (all before anything is written), then the CPU
// implementation or the GPU launcher on the caller's current stream.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include "checks.h"
#include "cpu/moe_topk.h"
#include "flashhip/kernels/moe/moe_topk.h"
#include "dev_overrides.h"
#include "kernel_log.h"
#include "run_on_device.h"

namespace flashhip::ops {
namespace {

using kernels::MoeScoring;
using kernels::MoeTopkParams;

constexpr const char* kOp = "flashhip.moe_topk";

MoeScoring parse_scoring(const std::string& scoring_func) {
  if (scoring_func == "softmax") return MoeScoring::kSoftmax;
  if (scoring_func == "sigmoid") return MoeScoring::kSigmoid;
  TORCH_CHECK(false, kOp, ": argument 'scoring_func' must be 'softmax' or 'sigmoid', got '", scoring_func, "'");
}

// An output [tokens, k] with a contiguous innermost dimension.
void check_output(const char* arg, const at::Tensor& out, const at::Tensor& gating, at::ScalarType dtype,
                  int64_t tokens) {
  check_same_device(kOp, arg, out, gating);
  check_dtype(kOp, arg, out, {dtype});
  TORCH_CHECK(out.dim() == 2 && out.size(0) == tokens, kOp, ": argument '", arg, "' must have shape [", tokens,
              ", k] (tokens of 'gating_output', k experts per token), got ", out.sizes());
  TORCH_CHECK(out.stride(1) == 1 || out.size(1) <= 1, kOp, ": argument '", arg,
              "' must be contiguous in its innermost dimension (stride 1), got stride ", out.stride(1));
  check_writable(kOp, arg, out);
}

std::string describe(const kernels::MoeTopkLaunchInfo& info, const MoeTopkParams& p, at::ScalarType dtype) {
  return std::string("wave-per-token (") + c10::toString(dtype) + ", " + std::to_string(p.experts) + " experts, " +
         std::to_string(info.experts_per_lane) + " per lane" +
         (info.contiguous ? std::string(info.wide_loads ? " contiguous, wide loads" : " contiguous, scalar loads") +
                                (info.fixed_shape ? ", DeepSeek-V3 shape compiled in" : "")
                          : std::string(" strided")) +
         ", wave " + std::to_string(info.wave) + ", " +
         std::to_string(info.tokens_per_block) + " tokens/block" +
         (p.grouped() ? (info.groups_in_registers ? ", groups across lanes" : ", groups in shared memory") : "") + ")";
}

void moe_topk(at::Tensor& topk_weights, at::Tensor& topk_ids, const at::Tensor& gating_output,
              const std::optional<at::Tensor>& correction_bias, c10::string_view scoring_func,
              int64_t num_expert_group, int64_t topk_group, bool renormalize, double routed_scaling_factor) {
  check_device(kOp, "gating_output", gating_output);
  check_dtype(kOp, "gating_output", gating_output, {at::kFloat, at::kHalf, at::kBFloat16});
  TORCH_CHECK(gating_output.dim() == 2, kOp, ": argument 'gating_output' must be 2-D [tokens, experts], got shape ",
              gating_output.sizes());
  const int64_t tokens = gating_output.size(0);
  const int64_t experts = gating_output.size(1);
  TORCH_CHECK(experts >= 1 && experts <= kernels::kMoeMaxExperts, kOp,
              ": argument 'gating_output' must have 1 to ", kernels::kMoeMaxExperts, " experts, got ", experts);
  TORCH_CHECK(gating_output.stride(1) == 1 || experts == 1, kOp,
              ": argument 'gating_output' must be contiguous in its innermost dimension (stride 1), got stride ",
              gating_output.stride(1));
  check_output("topk_weights", topk_weights, gating_output, at::kFloat, tokens);
  check_output("topk_ids", topk_ids, gating_output, at::kInt, tokens);
  const int64_t k = topk_weights.size(1);
  check_same_shape(kOp, "topk_ids", topk_ids, topk_weights, "topk_weights");
  TORCH_CHECK(k >= 1 && k <= kernels::kMoeMaxTopk, kOp, ": argument 'topk_weights' asks for k = ", k,
              " experts per token; k must be 1 to ", kernels::kMoeMaxTopk);
  TORCH_CHECK(k <= experts, kOp, ": argument 'topk_weights' asks for k = ", k, " experts per token but 'gating_output' has ",
              experts);
  check_separate(kOp, "topk_weights", topk_weights, "gating_output", gating_output);
  check_separate(kOp, "topk_ids", topk_ids, "gating_output", gating_output);
  check_separate(kOp, "topk_ids", topk_ids, "topk_weights", topk_weights);
  const MoeScoring scoring = parse_scoring(std::string(scoring_func));
  TORCH_CHECK(num_expert_group >= 1 && experts % num_expert_group == 0, kOp, ": argument 'num_expert_group' (",
              num_expert_group, ") must be >= 1 and divide the expert count (", experts, ")");
  TORCH_CHECK(topk_group >= 1 && topk_group <= num_expert_group, kOp, ": argument 'topk_group' (", topk_group,
              ") must be 1 to num_expert_group (", num_expert_group, ")");
  const int64_t kept_experts = topk_group * (experts / num_expert_group);
  TORCH_CHECK(k <= kept_experts, kOp, ": argument 'topk_group' keeps ", topk_group, " groups of ",
              experts / num_expert_group, " experts (", kept_experts, "), fewer than k = ", k);
  TORCH_CHECK(std::isfinite(routed_scaling_factor), kOp, ": argument 'routed_scaling_factor' must be finite, got ",
              routed_scaling_factor);
  if (correction_bias.has_value()) {
    check_same_device(kOp, "correction_bias", *correction_bias, gating_output);
    check_dtype(kOp, "correction_bias", *correction_bias, {at::kFloat});
    check_shape(kOp, "correction_bias", *correction_bias, {experts});
    check_contiguous(kOp, "correction_bias", *correction_bias);
    check_separate(kOp, "topk_weights", topk_weights, "correction_bias", *correction_bias);
    check_separate(kOp, "topk_ids", topk_ids, "correction_bias", *correction_bias);
  }

  MoeTopkParams p;
  p.topk_weights = topk_weights.data_ptr<float>();
  p.topk_ids = topk_ids.data_ptr<int32_t>();
  p.gating = gating_output.data_ptr();
  p.correction_bias = correction_bias.has_value() ? correction_bias->data_ptr<float>() : nullptr;
  p.weights_row_stride = topk_weights.stride(0);
  p.ids_row_stride = topk_ids.stride(0);
  p.gating_row_stride = gating_output.stride(0);
  p.tokens = tokens;
  p.experts = static_cast<int>(experts);
  p.k = static_cast<int>(k);
  p.num_groups = static_cast<int>(num_expert_group);
  p.topk_group = static_cast<int>(topk_group);
  p.scoring = scoring;
  p.renormalize = renormalize;
  p.routed_scaling_factor = static_cast<float>(routed_scaling_factor);
  p.gating_dtype = kernel_dtype(gating_output.scalar_type());
  if (tokens == 0) return;

  apply_dev_overrides(p);
  kernels::MoeTopkLaunchInfo info;
  run_on_device(
      kOp, gating_output,
      [&] {
        cpu::moe_topk(p);
        return [&] { return cpu_variant(gating_output.scalar_type()); };
      },
      [&](auto stream) {
        return std::make_pair(kernels::launch_moe_topk(p, stream, &info),
                              [&] { return describe(info, p, gating_output.scalar_type()); });
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) { m.impl("moe_topk", &moe_topk); }

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) { m.impl("moe_topk", &moe_topk); }
#endif

}  // namespace flashhip::ops
