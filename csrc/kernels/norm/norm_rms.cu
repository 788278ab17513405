// rmsnorm and fused add + rmsnorm: weight and output in the activation dtype.
#include "flashhip/kernels/norm/norm_launch.cuh"

namespace flashhip::kernels {
using namespace norm_detail;

gpuError_t launch_rms_norm(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  if (p.weight_dtype != p.act_dtype || p.out_dtype != p.act_dtype) return gpuErrorNoVariant;
  return dispatch_activation(p.act_dtype, [&](auto act) {
    using T = decltype(act);
    return launch_norm_on_device<NormKind::kRms, T, T, T>(p, stream, info);
  });
}

gpuError_t launch_fused_add_rms_norm(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  if (p.weight_dtype != p.act_dtype || p.out_dtype != p.act_dtype) return gpuErrorNoVariant;
  return dispatch_activation(p.act_dtype, [&](auto act) {
    using T = decltype(act);
    return launch_norm_on_device<NormKind::kFusedAddRms, T, T, T>(p, stream, info);
  });
}

}  // namespace flashhip::kernels
