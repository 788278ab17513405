// Runtime aliases shared by CUDA and HIP, and the one error-check macro kernels' launchers use.
#pragma once

#include "flashhip/platform/launch.h"
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
inline constexpr gpuError_t gpuErrorNoVariant = static_cast<gpuError_t>(kLaunchNoVariant);
inline gpuError_t gpuGetLastError() { return hipGetLastError(); }
inline const char* gpuGetErrorString(gpuError_t e) { return hipGetErrorString(e); }
inline gpuError_t gpuGetDevice(int* d) { return hipGetDevice(d); }
inline gpuError_t gpuMalloc(void** p, size_t bytes) { return hipMalloc(p, bytes); }
inline gpuError_t gpuFree(void* p) { return hipFree(p); }
inline gpuError_t gpuMemcpyToHost(void* dst, const void* src, size_t bytes) {
  return hipMemcpy(dst, src, bytes, hipMemcpyDeviceToHost);
}
inline gpuError_t gpuMemcpyToDevice(void* dst, const void* src, size_t bytes) {
  return hipMemcpy(dst, src, bytes, hipMemcpyHostToDevice);
}
inline gpuError_t gpuDeviceSynchronize() { return hipDeviceSynchronize(); }
#else
using gpuStream_t = cudaStream_t;
using gpuError_t = cudaError_t;
inline constexpr gpuError_t gpuSuccess = cudaSuccess;
inline constexpr gpuError_t gpuErrorInvalidValue = cudaErrorInvalidValue;
inline constexpr gpuError_t gpuErrorNoVariant = static_cast<gpuError_t>(kLaunchNoVariant);
inline gpuError_t gpuGetLastError() { return cudaGetLastError(); }
inline const char* gpuGetErrorString(gpuError_t e) { return cudaGetErrorString(e); }
inline gpuError_t gpuGetDevice(int* d) { return cudaGetDevice(d); }
inline gpuError_t gpuMalloc(void** p, size_t bytes) { return cudaMalloc(p, bytes); }
inline gpuError_t gpuFree(void* p) { return cudaFree(p); }
inline gpuError_t gpuMemcpyToHost(void* dst, const void* src, size_t bytes) {
  return cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
}
inline gpuError_t gpuMemcpyToDevice(void* dst, const void* src, size_t bytes) {
  return cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
}
inline gpuError_t gpuDeviceSynchronize() { return cudaDeviceSynchronize(); }
#endif

// Blocks of `threads` threads of `kernel` (no dynamic shared memory) that fit on one
// multiprocessor at once, or 0 if the runtime cannot say. Asked once per kernel and block size,
// then cached (csrc/platform/runtime.cu): launchers size persistent grids with it on every call.
// The key is the kernel itself, not its type: kernels of one signature differ in registers and
// so in occupancy.
int resident_blocks_per_multiprocessor(const void* kernel, int threads);
template <typename Kernel>
int resident_blocks_per_multiprocessor(Kernel kernel, int threads) {
  return resident_blocks_per_multiprocessor(reinterpret_cast<const void*>(kernel), threads);
}

// Launches kernel<<<grid, block, smem, stream>>>(args...) as a programmatic dependent of the
// kernel before it in the stream where the runtime has that (CUDA, sm_90): its launch and
// prologue then overlap that kernel's tail, so the kernel must call grid_dependency_wait()
// (platform/grid_dependency.h) before it touches global memory. Elsewhere an ordinary launch.
template <typename... Params, typename... Args>
gpuError_t launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem_bytes, gpuStream_t stream,
                            Args&&... args) {
#if FH_PLATFORM_HIP
  kernel<<<grid, block, smem_bytes, stream>>>(static_cast<Params>(args)...);
  return hipGetLastError();
#else
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
#endif
}

#if FH_PLATFORM_CUDA
// launch_dependent in thread-block clusters of `cluster` CTAs along x (sm_90; grid a multiple of
// it): the CTAs of a cluster run at once, on one GPC, and may share shared-memory copies.
template <typename... Params, typename... Args>
gpuError_t launch_dependent_clustered(void (*kernel)(Params...), int grid, int block, size_t smem_bytes,
                                      gpuStream_t stream, int cluster, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(grid);
  config.blockDim = dim3(block);
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attributes[2] = {};
  attributes[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attributes[0].val.programmaticStreamSerializationAllowed = 1;
  attributes[1].id = cudaLaunchAttributeClusterDimension;
  attributes[1].val.clusterDim.x = cluster;
  attributes[1].val.clusterDim.y = 1;
  attributes[1].val.clusterDim.z = 1;
  config.attrs = attributes;
  config.numAttrs = 2;
  return cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
}

// Clusters of `cluster` CTAs of `kernel` (block threads, smem_bytes of dynamic shared memory, its
// limit already raised) that can be resident at once on the whole device, or 0 if the runtime
// cannot say. GPCs hold whole clusters, so this can be less than multiprocessors / cluster.
template <typename... Params>
int max_resident_clusters(void (*kernel)(Params...), int block, size_t smem_bytes, int cluster) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(cluster);
  config.blockDim = dim3(block);
  config.dynamicSmemBytes = smem_bytes;
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = cluster;
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return clusters;
}
#endif

}  // namespace flashhip

// Launchers return gpuError_t; this returns early from one on the first failing runtime call.
#define FH_RETURN_IF_ERROR(expr)                       \
  do {                                                 \
    const ::flashhip::gpuError_t fh_err_ = (expr);     \
    if (fh_err_ != ::flashhip::gpuSuccess) return fh_err_; \
  } while (0)
