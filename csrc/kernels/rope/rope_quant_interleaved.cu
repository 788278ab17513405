// GPT-J (interleaved) rope + fp8 quantisation: pairs (2i, 2i + 1).
#include "flashhip/kernels/rope/rope_quant_launch.cuh"

namespace flashhip::kernels {

gpuError_t launch_rope_quant_interleaved(const RopeQuantParams& p, gpuStream_t stream, RopeQuantLaunchInfo* info) {
  return rope_quant_detail::launch_style<true>(p, stream, info);
}

}  // namespace flashhip::kernels
