// NeoX (rotate-half) rope + fp8 quantisation: pairs (i, i + rope_dim / 2).
#include "flashhip/kernels/rope/rope_quant_launch.cuh"

namespace flashhip::kernels {

gpuError_t launch_rope_quant_neox(const RopeQuantParams& p, gpuStream_t stream, RopeQuantLaunchInfo* info) {
  return rope_quant_detail::launch_style<false>(p, stream, info);
}

}  // namespace flashhip::kernels
