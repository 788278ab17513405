// launch_moe_sum: the launcher's entry point; its variants and kernel are in
// flashhip/kernels/moe/moe_sum_launch.cuh.
#include "flashhip/kernels/moe/moe_sum_launch.cuh"

namespace flashhip::kernels {

LaunchStatus launch_moe_sum(const MoeSumParams& p, StreamHandle handle, MoeSumLaunchInfo* info) {
  using namespace moe_sum_detail;
  if (p.tokens == 0 || p.hidden == 0) return {};
  if (p.tokens < 0 || p.hidden < 0 || p.topk < 0) return {static_cast<int>(gpuErrorInvalidValue)};
  const auto stream = static_cast<gpuStream_t>(handle);
  const gpuError_t err = dispatch_device_wave([&](const DeviceTraits&, auto wave) {
    constexpr int kWave = decltype(wave)::value;
    return dispatch_activation_dtype(p.dtype, gpuErrorNoVariant, [&](auto element) {
      return launch_typed<kWave, decltype(element)>(p, stream, info);
    });
  });
  return {static_cast<int>(err)};
}

}  // namespace flashhip::kernels
