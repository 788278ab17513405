// launch_norm: routes a call to the translation unit that holds its kind's kernels.
#include "flashhip/kernels/norm/norm_launch.cuh"

namespace flashhip::kernels {

static gpuError_t route(const NormParams& p, gpuStream_t stream, NormLaunchInfo* info) {
  switch (p.kind) {
    case NormKind::kRms: return launch_rms_norm(p, stream, info);
    case NormKind::kFusedAddRms:
      return p.fp32_sum ? launch_fused_add_rms_norm_fp32_sum(p, stream, info) : launch_fused_add_rms_norm(p, stream, info);
    case NormKind::kLayer: return launch_layer_norm(p, stream, info);
    case NormKind::kRmsQuant: return launch_rms_norm_quant(p, stream, info);
    case NormKind::kFusedAddRmsQuant:
      return p.fp32_sum ? launch_fused_add_rms_norm_quant_fp32_sum(p, stream, info)
                        : launch_fused_add_rms_norm_quant(p, stream, info);
    case NormKind::kLayerQuant: return launch_layer_norm_quant(p, stream, info);
  }
  return gpuErrorNoVariant;
}

LaunchStatus launch_norm(const NormParams& p, StreamHandle stream, NormLaunchInfo* info) {
  if (p.rows == 0) return {};
  return {static_cast<int>(route(p, static_cast<gpuStream_t>(stream), info))};
}

}  // namespace flashhip::kernels
