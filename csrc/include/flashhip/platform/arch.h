// Architecture traits: what the target being compiled has (device pass), and what the current
// device is (host side, read from the runtime once per device).
#pragma once

#include <utility>

#include "flashhip/platform/runtime.h"

namespace flashhip {

// Host side facts about a device that launchers choose variants by.
struct DeviceTraits {
  int wave_size = 0;        // 64 on CDNA, 32 on NVIDIA and RDNA
  int multiprocessors = 0;  // SMs / CUs
};

// Reads the current device's traits; cached per device (the values never change).
gpuError_t current_device_traits(DeviceTraits* out);

// Calls f(std::integral_constant<int, W>{}) with the wave width W of the device. Only widths
// the build's targets can have are instantiated: 32 on NVIDIA; 64 on AMD, plus 32 when the build
// holds an RDNA target (CMake defines FLASHHIP_HIP_WAVE32 then).
template <typename F>
gpuError_t dispatch_wave_size(int wave_size, F&& f) {
#if FH_PLATFORM_HIP
  if (wave_size == 64) return f(std::integral_constant<int, 64>{});
#if defined(FLASHHIP_HIP_WAVE32) && FLASHHIP_HIP_WAVE32
  if (wave_size == 32) return f(std::integral_constant<int, 32>{});
#endif
#else
  if (wave_size == 32) return f(std::integral_constant<int, 32>{});
#endif
  return gpuErrorInvalidValue;
}

}  // namespace flashhip
