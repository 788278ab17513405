// Runtime aliases shared by CUDA and HIP, and the one error-check macro kernels' launchers use.
#pragma once

#include <map>
#include <mutex>
#include <utility>

#include "flashhip/platform/macros.h"

#if FH_PLATFORM_HIP
#include <hip/hip_runtime.h>
#else
#include <cuda_runtime.h>
#endif

namespace flashhip {

#if FH_PLATFORM_HIP
using gpuStream_t = hipStream_t;
using gpuError_t = hipError_t;
inline constexpr gpuError_t gpuSuccess = hipSuccess;
inline constexpr gpuError_t gpuErrorInvalidValue = hipErrorInvalidValue;
inline gpuError_t gpuGetLastError() { return hipGetLastError(); }
inline const char* gpuGetErrorString(gpuError_t e) { return hipGetErrorString(e); }
inline gpuError_t gpuGetDevice(int* d) { return hipGetDevice(d); }
inline gpuError_t gpuWarpSizeOf(int device, int* out) {
  return hipDeviceGetAttribute(out, hipDeviceAttributeWarpSize, device);
}
inline gpuError_t gpuMultiProcessorCountOf(int device, int* out) {
  return hipDeviceGetAttribute(out, hipDeviceAttributeMultiprocessorCount, device);
}
template <typename Kernel>
inline gpuError_t gpuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, Kernel kernel, int threads, size_t smem) {
  return hipOccupancyMaxActiveBlocksPerMultiprocessor(blocks, kernel, threads, smem);
}
#else
using gpuStream_t = cudaStream_t;
using gpuError_t = cudaError_t;
inline constexpr gpuError_t gpuSuccess = cudaSuccess;
inline constexpr gpuError_t gpuErrorInvalidValue = cudaErrorInvalidValue;
inline gpuError_t gpuGetLastError() { return cudaGetLastError(); }
inline const char* gpuGetErrorString(gpuError_t e) { return cudaGetErrorString(e); }
inline gpuError_t gpuGetDevice(int* d) { return cudaGetDevice(d); }
inline gpuError_t gpuWarpSizeOf(int device, int* out) {
  return cudaDeviceGetAttribute(out, cudaDevAttrWarpSize, device);
}
inline gpuError_t gpuMultiProcessorCountOf(int device, int* out) {
  return cudaDeviceGetAttribute(out, cudaDevAttrMultiProcessorCount, device);
}
template <typename Kernel>
inline gpuError_t gpuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, Kernel kernel, int threads, size_t smem) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, kernel, threads, smem);
}
#endif

namespace runtime_detail {
struct ResidentBlocksCache {
  std::mutex mutex;
  std::map<std::pair<const void*, int>, int> blocks;  // (kernel, threads per block) -> blocks
};
inline ResidentBlocksCache& resident_blocks_cache() {
  static ResidentBlocksCache cache;
  return cache;
}
}  // namespace runtime_detail

// Blocks of `threads` threads of `kernel` (no dynamic shared memory) that fit on one
// multiprocessor at once, or 0 if the runtime cannot say. Asked once per kernel and block size,
// then cached: launchers size persistent grids with it on every call. The key is the kernel
// itself, not its type: kernels of one signature differ in registers and so in occupancy.
template <typename Kernel>
int resident_blocks_per_multiprocessor(Kernel kernel, int threads) {
  auto& cache = runtime_detail::resident_blocks_cache();
  const auto key = std::make_pair(reinterpret_cast<const void*>(kernel), threads);
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    const auto found = cache.blocks.find(key);
    if (found != cache.blocks.end()) return found->second;
  }
  int blocks = 0;
  if (gpuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, 0) != gpuSuccess) {
    (void)gpuGetLastError();  // cleared, so that the caller's launch check does not report it
    return 0;
  }
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.blocks[key] = blocks;
  return blocks;
}

}  // namespace flashhip

// Launchers return gpuError_t; this returns early from one on the first failing runtime call.
#define FH_RETURN_IF_ERROR(expr)                       \
  do {                                                 \
    const ::flashhip::gpuError_t fh_err_ = (expr);     \
    if (fh_err_ != ::flashhip::gpuSuccess) return fh_err_; \
  } while (0)
