// GPT-J (interleaved) rope: pairs (2i, 2i + 1).
#include "flashhip/kernels/rope/rope_launch.cuh"

namespace flashhip::kernels {

gpuError_t launch_rope_interleaved(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info) {
  return rope_detail::launch_rope_style<true, false>(p, stream, info);
}

}  // namespace flashhip::kernels
