// layernorm: weight and bias in the activation dtype or fp32 (FlashInfer passes fp32 gamma/beta).
#include "flashhip/kernels/norm/norm_launch.cuh"

namespace flashhip::kernels {
using namespace norm_detail;

gpuError_t launch_layer_norm(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  if (p.out_dtype != p.act_dtype) return gpuErrorNoVariant;
  return dispatch_activation(p.act_dtype, [&](auto act) {
    using T = decltype(act);
    if (p.weight_dtype == DType::kFloat32) return launch_norm_on_device<NormKind::kLayer, T, float, T>(p, stream, info);
    if (p.weight_dtype != p.act_dtype) return gpuErrorNoVariant;
    return launch_norm_on_device<NormKind::kLayer, T, T, T>(p, stream, info);
  });
}

}  // namespace flashhip::kernels
