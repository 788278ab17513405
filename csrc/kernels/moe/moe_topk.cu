// launch_moe_topk: the launcher's entry point; its variants and kernels are in
// flashhip/kernels/moe/moe_topk_launch.cuh.
#include "flashhip/kernels/moe/moe_topk_launch.cuh"

namespace flashhip::kernels {

LaunchStatus launch_moe_topk(const MoeTopkParams& p, StreamHandle handle, MoeTopkLaunchInfo* info) {
  using namespace moe_topk_detail;
  if (p.tokens == 0) return {};
  // The kernels index tokens in 32 bits (far more rows than any device holds).
  if (p.tokens > kMoeMaxTokens) return {static_cast<int>(gpuErrorInvalidValue)};
  const auto stream = static_cast<gpuStream_t>(handle);
  const gpuError_t err = dispatch_activation_dtype(p.gating_dtype, gpuErrorNoVariant, [&](auto element) {
    return launch_on_device<decltype(element)>(p, stream, info);
  });
  return {static_cast<int>(err)};
}

}  // namespace flashhip::kernels
