// launch_moe_align: the launcher's entry point; its variants and kernels are in
// flashhip/kernels/moe/moe_align_launch.cuh.
#include "flashhip/kernels/moe/moe_align_launch.cuh"

namespace flashhip::kernels {

LaunchStatus launch_moe_align(const MoeAlignParams& p, StreamHandle handle, MoeAlignLaunchInfo* info) {
  using namespace moe_align_detail;
  if (p.experts < 1 || p.experts > kMoeAlignMaxExperts || p.block_size < 1) return {static_cast<int>(gpuErrorInvalidValue)};
  const auto stream = static_cast<gpuStream_t>(handle);
  const gpuError_t err = dispatch_device_wave([&](const DeviceTraits&, auto wave) {
    constexpr int kWave = decltype(wave)::value;
    return p.ids_int64 ? launch_typed<kWave, int64_t>(p, stream, info) : launch_typed<kWave, int32_t>(p, stream, info);
  });
  return {static_cast<int>(err)};
}

}  // namespace flashhip::kernels
