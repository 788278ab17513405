// NeoX (rotate-half) rope with the angles computed from the position (no cos|sin cache).
#include "flashhip/kernels/rope/rope_launch.cuh"

namespace flashhip::kernels {

gpuError_t launch_rope_computed_neox(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info) {
  return rope_detail::launch_rope_style<false, true>(p, stream, info);
}

}  // namespace flashhip::kernels
