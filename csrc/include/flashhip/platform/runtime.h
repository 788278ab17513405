// Runtime aliases shared by CUDA and HIP, and the one error-check macro kernels' launchers use.
#pragma once

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

}  // namespace flashhip

// Launchers return gpuError_t; this returns early from one on the first failing runtime call.
#define FH_RETURN_IF_ERROR(expr)                       \
  do {                                                 \
    const ::flashhip::gpuError_t fh_err_ = (expr);     \
    if (fh_err_ != ::flashhip::gpuSuccess) return fh_err_; \
  } while (0)
