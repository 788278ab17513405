// fused add + rmsnorm normalising the fp32 sum input + residual (NormParams::fp32_sum,
// FlashInfer's arithmetic), in its own translation unit so that it compiles beside the others.
#include "flashhip/kernels/norm/norm_launch.cuh"

namespace flashhip::kernels {
using namespace norm_detail;

gpuError_t launch_fused_add_rms_norm_fp32_sum(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  if (p.weight_dtype != p.act_dtype || p.out_dtype != p.act_dtype) return gpuErrorNoVariant;
  return dispatch_activation(p.act_dtype, [&](auto act) {
    using T = decltype(act);
    return launch_norm_on_device<NormKind::kFusedAddRms, T, T, T, true>(p, stream, info);
  });
}

}  // namespace flashhip::kernels
