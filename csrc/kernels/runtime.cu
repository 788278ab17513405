// Host side runtime facts: device traits (read once per device) and error strings.
#include <atomic>

#include "flashhip/platform/arch.h"
#include "flashhip/platform/launch.h"

namespace flashhip {

namespace {
constexpr int kMaxDevices = 64;
// 0 means not read yet; the values are the same whichever thread reads them first.
std::atomic<int> cached_wave_size[kMaxDevices];
std::atomic<int> cached_multiprocessors[kMaxDevices];
}  // namespace

gpuError_t current_device_traits(DeviceTraits* out) {
  int device = 0;
  FH_RETURN_IF_ERROR(gpuGetDevice(&device));
  if (device < 0 || device >= kMaxDevices) return gpuErrorInvalidValue;
  int wave = cached_wave_size[device].load(std::memory_order_relaxed);
  int sms = cached_multiprocessors[device].load(std::memory_order_relaxed);
  if (wave == 0 || sms == 0) {
    FH_RETURN_IF_ERROR(gpuWarpSizeOf(device, &wave));
    FH_RETURN_IF_ERROR(gpuMultiProcessorCountOf(device, &sms));
    cached_wave_size[device].store(wave, std::memory_order_relaxed);
    cached_multiprocessors[device].store(sms, std::memory_order_relaxed);
  }
  out->wave_size = wave;
  out->multiprocessors = sms;
  return gpuSuccess;
}

const char* launch_error_string(LaunchStatus status) {
  return gpuGetErrorString(static_cast<gpuError_t>(status.code));
}

}  // namespace flashhip
