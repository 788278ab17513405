// NeoX (rotate-half) rope: pairs (i, i + rotary_dim / 2).
#include "flashhip/kernels/rope/rope_launch.cuh"

namespace flashhip::kernels {

gpuError_t launch_rope_neox(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info) {
  return rope_detail::launch_rope_style<false, false>(p, stream, info);
}

}  // namespace flashhip::kernels
