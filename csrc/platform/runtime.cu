// Host side runtime facts: device traits (read once per device), the occupancy cache and error
// strings. The one place that reads device properties from the vendor runtime.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "flashhip/platform/arch.h"
#include "flashhip/platform/launch.h"

namespace flashhip {

namespace {

constexpr int kMaxDevices = 64;

// Peak DRAM bandwidth from the memory clock (kHz) and bus width (bits), double data rate; 0 when
// either attribute is missing (an error here is cleared: the traits stay usable without it).
double dram_bytes_per_s(gpuError_t clock_err, int clock_khz, gpuError_t bus_err, int bus_bits) {
  if (clock_err != gpuSuccess || bus_err != gpuSuccess) {
    (void)gpuGetLastError();
    return 0.0;
  }
  if (clock_khz <= 0 || bus_bits <= 0) return 0.0;
  return 2.0 * static_cast<double>(clock_khz) * 1000.0 * static_cast<double>(bus_bits) / 8.0;
}

#if FH_PLATFORM_HIP
ArchFamily family_of(const char* gcn_arch) {
  auto starts = [&](const char* prefix) { return std::strncmp(gcn_arch, prefix, std::strlen(prefix)) == 0; };
  if (starts("gfx90a")) return ArchFamily::kCdna2;
  if (starts("gfx940") || starts("gfx941") || starts("gfx942")) return ArchFamily::kCdna3;
  if (starts("gfx950")) return ArchFamily::kCdna4;
  if (starts("gfx10") || starts("gfx11") || starts("gfx12")) return ArchFamily::kRdna;
  return ArchFamily::kAmdOther;
}

gpuError_t read_traits(int device, DeviceTraits* t) {
  hipDeviceProp_t prop;
  FH_RETURN_IF_ERROR(hipGetDeviceProperties(&prop, device));
  // gcnArchName is e.g. "gfx942:sramecc+:xnack-": keep the processor name.
  std::snprintf(t->arch_name, sizeof t->arch_name, "%s", prop.gcnArchName);
  if (char* colon = std::strchr(t->arch_name, ':')) *colon = '\0';
  t->arch = family_of(t->arch_name);
  t->wave_size = prop.warpSize;
  t->multiprocessors = prop.multiProcessorCount;
  t->max_threads_per_multiprocessor = prop.maxThreadsPerMultiProcessor;
  t->smem_bytes_per_block = static_cast<int>(prop.sharedMemPerBlock);
  t->smem_bytes_per_multiprocessor = static_cast<int>(prop.maxSharedMemoryPerMultiProcessor);
  t->l2_bytes = prop.l2CacheSize;
  int clock_khz = 0, bus_bits = 0;
  const gpuError_t clock_err = hipDeviceGetAttribute(&clock_khz, hipDeviceAttributeMemoryClockRate, device);
  const gpuError_t bus_err = hipDeviceGetAttribute(&bus_bits, hipDeviceAttributeMemoryBusWidth, device);
  t->dram_bytes_per_s = dram_bytes_per_s(clock_err, clock_khz, bus_err, bus_bits);
  t->native_fp8 = t->arch == ArchFamily::kCdna3   ? NativeFp8::kE4M3FNUZ
                  : t->arch == ArchFamily::kCdna4 ? NativeFp8::kE4M3FN
                                                  : NativeFp8::kNone;
  t->has_mfma_fp8 = t->arch == ArchFamily::kCdna3 || t->arch == ArchFamily::kCdna4;
  return gpuSuccess;
}
#else
gpuError_t read_traits(int device, DeviceTraits* t) {
  cudaDeviceProp prop;
  FH_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, device));
  const int cc = prop.major * 10 + prop.minor;
  std::snprintf(t->arch_name, sizeof t->arch_name, "sm_%d", cc);
  t->arch = cc >= 80 && cc < 89 ? ArchFamily::kSm80
            : cc == 89          ? ArchFamily::kSm89
            : cc == 90          ? ArchFamily::kSm90
                                : ArchFamily::kNvidiaOther;
  t->wave_size = prop.warpSize;
  t->multiprocessors = prop.multiProcessorCount;
  t->max_threads_per_multiprocessor = prop.maxThreadsPerMultiProcessor;
  t->smem_bytes_per_block = static_cast<int>(prop.sharedMemPerBlockOptin);
  t->smem_bytes_per_multiprocessor = static_cast<int>(prop.sharedMemPerMultiprocessor);
  t->l2_bytes = prop.l2CacheSize;
  // Attributes, not cudaDeviceProp fields: CUDA 13 dropped cudaDeviceProp::memoryClockRate.
  int clock_khz = 0, bus_bits = 0;
  const gpuError_t clock_err = cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device);
  const gpuError_t bus_err = cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device);
  t->dram_bytes_per_s = dram_bytes_per_s(clock_err, clock_khz, bus_err, bus_bits);
  t->native_fp8 = cc >= 89 ? NativeFp8::kE4M3FN : NativeFp8::kNone;
  t->has_wgmma = cc == 90;
  t->has_tma = cc >= 90;
  return gpuSuccess;
}
#endif

// Filled once per device under the mutex; `ready` publishes it to readers without a lock.
std::mutex traits_mutex;
DeviceTraits cached_traits[kMaxDevices];
std::atomic<bool> traits_ready[kMaxDevices];

struct ResidentBlocksCache {
  std::shared_mutex mutex;
  std::map<std::pair<const void*, int>, int> blocks;  // (kernel, threads per block) -> blocks
};
ResidentBlocksCache& resident_blocks_cache() {
  static ResidentBlocksCache cache;
  return cache;
}

}  // namespace

gpuError_t current_device_traits(DeviceTraits* out) {
  int device = 0;
  FH_RETURN_IF_ERROR(gpuGetDevice(&device));
  if (device < 0 || device >= kMaxDevices) return gpuErrorInvalidValue;
  if (!traits_ready[device].load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(traits_mutex);
    if (!traits_ready[device].load(std::memory_order_relaxed)) {
      DeviceTraits t;
      FH_RETURN_IF_ERROR(read_traits(device, &t));
      cached_traits[device] = t;
      traits_ready[device].store(true, std::memory_order_release);
    }
  }
  *out = cached_traits[device];
  return gpuSuccess;
}

int resident_blocks_per_multiprocessor(const void* kernel, int threads) {
  auto& cache = resident_blocks_cache();
  const auto key = std::make_pair(kernel, threads);
  {
    std::shared_lock<std::shared_mutex> lock(cache.mutex);
    const auto found = cache.blocks.find(key);
    if (found != cache.blocks.end()) return found->second;
  }
  int blocks = 0;
#if FH_PLATFORM_HIP
  const gpuError_t err = hipOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, 0);
#else
  const gpuError_t err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, 0);
#endif
  if (err != gpuSuccess) {
    (void)gpuGetLastError();  // cleared, so that the caller's launch check does not report it
    return 0;
  }
  std::unique_lock<std::shared_mutex> lock(cache.mutex);
  cache.blocks[key] = blocks;
  return blocks;
}

const char* launch_error_string(LaunchStatus status) {
  if (status.no_variant()) {
    return "no kernel variant was built for this combination of dtypes, sizes and device (wave width)";
  }
  return gpuGetErrorString(static_cast<gpuError_t>(status.code));
}

}  // namespace flashhip
