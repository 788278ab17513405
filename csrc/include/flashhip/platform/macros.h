// Compiler and platform detection, function attributes. No torch, no runtime calls.
#pragma once

// Exactly one of these is 1 in a GPU translation unit; both are 0 in plain C++ (CPU, host-only).
#if defined(__HIPCC__)
#define FH_PLATFORM_HIP 1
#define FH_PLATFORM_CUDA 0
#elif defined(__CUDACC__)
#define FH_PLATFORM_HIP 0
#define FH_PLATFORM_CUDA 1
#else
#define FH_PLATFORM_HIP 0
#define FH_PLATFORM_CUDA 0
#endif

// True while the compiler generates device code (both toolchains compile each file twice).
#if defined(__HIP_DEVICE_COMPILE__) || defined(__CUDA_ARCH__)
#define FH_DEVICE_PASS 1
#else
#define FH_DEVICE_PASS 0
#endif

// HIP's attribute keywords (__device__, __forceinline__, ...) come from its runtime header;
// nvcc knows them built in.
#if FH_PLATFORM_HIP
#include <hip/hip_runtime.h>
#endif

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
#define FH_HOST_DEVICE __host__ __device__
#define FH_DEVICE __device__
#define FH_INLINE __forceinline__
#else
#define FH_HOST_DEVICE
#define FH_DEVICE
#define FH_INLINE inline
#endif

#define FH_RESTRICT __restrict__

// ---- The device target of this pass (all 0 on the host pass) ----
// Which AMD generation this device pass compiles for. gfx940/941/942 are CDNA3 (MI300), gfx950
// is CDNA4 (MI350), gfx90a is CDNA2 (MI200).
#if defined(__gfx940__) || defined(__gfx941__) || defined(__gfx942__)
#define FH_ARCH_CDNA3 1
#else
#define FH_ARCH_CDNA3 0
#endif
#if defined(__gfx950__)
#define FH_ARCH_CDNA4 1
#else
#define FH_ARCH_CDNA4 0
#endif

// Hopper/Ada and newer have a hardware float -> OCP fp8 conversion.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
#define FH_ARCH_SM89_PLUS 1
#else
#define FH_ARCH_SM89_PLUS 0
#endif
