// launch_rope: routes a call to the translation unit that holds the kernels of its rotation style,
// cos/sin source (a cache, or computed from the position when there is none) and KV-cache write.
#include "flashhip/kernels/rope/rope_launch.cuh"

namespace flashhip::kernels {

LaunchStatus launch_rope(const RopeParams& p, StreamHandle stream, RopeLaunchInfo* info) {
  if (p.nnz == 0 || p.num_q_heads + p.num_k_heads == 0) return {};
  const auto s = static_cast<gpuStream_t>(stream);
  if (p.kv.k_cache != nullptr) {
    if (p.cos_sin_cache == nullptr) return {static_cast<int>(gpuErrorInvalidValue)};  // not built (rope.h)
    return {static_cast<int>(p.interleave ? launch_rope_kv_interleaved(p, s, info) : launch_rope_kv_neox(p, s, info))};
  }
  if (p.cos_sin_cache == nullptr) {
    return {static_cast<int>(p.interleave ? launch_rope_computed_interleaved(p, s, info)
                                          : launch_rope_computed_neox(p, s, info))};
  }
  return {static_cast<int>(p.interleave ? launch_rope_interleaved(p, s, info) : launch_rope_neox(p, s, info))};
}

}  // namespace flashhip::kernels
