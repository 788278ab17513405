// fused add + rmsnorm_quant normalising the fp32 sum input + residual (NormParams::fp32_sum,
// FlashInfer's fused_add_rmsnorm_quant), with the quantising forms' fp8 outputs, in its own
// translation unit so that it compiles beside the others.
#include "flashhip/kernels/norm/norm_launch.cuh"

namespace flashhip::kernels {
using namespace norm_detail;

gpuError_t launch_fused_add_rms_norm_quant_fp32_sum(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  if (p.weight_dtype != p.act_dtype) return gpuErrorNoVariant;
  return dispatch_activation(p.act_dtype, [&](auto act) {
    using T = decltype(act);
    return dispatch_fp8_output(p.out_dtype, [&](auto out) {
      return launch_norm_on_device<NormKind::kFusedAddRmsQuant, T, T, decltype(out), true>(p, stream, info);
    });
  });
}

}  // namespace flashhip::kernels
