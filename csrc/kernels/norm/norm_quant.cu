// rmsnorm_quant and fused_add_rmsnorm_quant: fp8 output of either e4m3 flavour or e5m2.
#include "flashhip/kernels/norm/norm_launch.cuh"

namespace flashhip::kernels {
using namespace norm_detail;

template <NormKind KIND>
static gpuError_t launch_quant(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  if (p.weight_dtype != p.act_dtype) return gpuErrorNoVariant;
  return dispatch_activation(p.act_dtype, [&](auto act) {
    using T = decltype(act);
    return dispatch_fp8_output(p.out_dtype, [&](auto out) {
      return launch_norm_on_device<KIND, T, T, decltype(out)>(p, stream, info);
    });
  });
}

gpuError_t launch_rms_norm_quant(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  return launch_quant<NormKind::kRmsQuant>(p, stream, info);
}

gpuError_t launch_fused_add_rms_norm_quant(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  return launch_quant<NormKind::kFusedAddRmsQuant>(p, stream, info);
}

}  // namespace flashhip::kernels
