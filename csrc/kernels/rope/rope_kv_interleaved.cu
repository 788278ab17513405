// GPT-J (interleaved) rope that also stores the rotated k and the v of each token into its
// KV-cache row (rope_set_kv_buffer).
#include "flashhip/kernels/rope/rope_launch.cuh"

namespace flashhip::kernels {

gpuError_t launch_rope_kv_interleaved(const RopeParams& p, gpuStream_t stream, RopeLaunchInfo* info) {
  return rope_detail::launch_rope_style<true, false, true>(p, stream, info);
}

}  // namespace flashhip::kernels
