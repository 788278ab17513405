// launch_rope_quant: routes a call to the translation unit that holds the kernels of its rotation style.
#include "flashhip/kernels/rope/rope_quant_launch.cuh"

namespace flashhip::kernels {

LaunchStatus launch_rope_quant(const RopeQuantParams& p, StreamHandle stream, RopeQuantLaunchInfo* info) {
  if (p.nnz == 0 || p.num_q_heads + p.num_k_heads == 0) return {};
  const auto s = static_cast<gpuStream_t>(stream);
  return {static_cast<int>(p.interleave ? launch_rope_quant_interleaved(p, s, info) : launch_rope_quant_neox(p, s, info))};
}

}  // namespace flashhip::kernels
