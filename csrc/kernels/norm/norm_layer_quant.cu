// layernorm_quant: layernorm's weight and bias (the activation dtype or fp32) with the quantising
// forms' fp8 outputs (either e4m3 flavour or e5m2), in its own translation unit so that it
// compiles beside the others.
#include "flashhip/kernels/norm/norm_launch.cuh"

namespace flashhip::kernels {
using namespace norm_detail;

gpuError_t launch_layer_norm_quant(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  return dispatch_activation(p.act_dtype, [&](auto act) {
    using T = decltype(act);
    return dispatch_fp8_output(p.out_dtype, [&](auto out) {
      using TOut = decltype(out);
      if (p.weight_dtype == DType::kFloat32) {
        return launch_norm_on_device<NormKind::kLayerQuant, T, float, TOut>(p, stream, info);
      }
      if (p.weight_dtype != p.act_dtype) return gpuErrorNoVariant;
      return launch_norm_on_device<NormKind::kLayerQuant, T, T, TOut>(p, stream, info);
    });
  });
}

}  // namespace flashhip::kernels
