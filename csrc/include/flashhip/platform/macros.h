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

// ---- Launch bounds with one meaning on both vendors ----
// FH_LAUNCH_BOUNDS(threads) or FH_LAUNCH_BOUNDS(threads, min_blocks): at most `threads` per block
// and, optionally, `min_blocks` blocks resident per SM/CU, which caps registers per thread.
// CUDA's __launch_bounds__ means exactly that. hipcc maps __launch_bounds__'s second argument to
// amdgpu_waves_per_eu (minimum waves per SIMD), not to blocks per CU, so on AMD the blocks are
// converted: waves/EU = ceil(min_blocks * threads / wave / SIMDs per CU), capped at the most
// waves a SIMD holds.
#if FH_PLATFORM_HIP
#if defined(__AMDGCN_WAVEFRONT_SIZE)
#define FH_AMD_WAVE_SIZE __AMDGCN_WAVEFRONT_SIZE
#else
#define FH_AMD_WAVE_SIZE 64  // host pass: the attribute is not used there
#endif
#define FH_AMD_SIMDS_PER_CU 4
#define FH_AMD_MAX_WAVES_PER_EU 8  // CDNA2/CDNA3/CDNA4
#define FH_AMD_WAVES_PER_EU(threads, min_blocks)                                                        \
  (((min_blocks) * (threads) + FH_AMD_WAVE_SIZE * FH_AMD_SIMDS_PER_CU - 1) /                             \
               (FH_AMD_WAVE_SIZE * FH_AMD_SIMDS_PER_CU) >                                                \
           FH_AMD_MAX_WAVES_PER_EU                                                                       \
       ? FH_AMD_MAX_WAVES_PER_EU                                                                         \
       : ((min_blocks) * (threads) + FH_AMD_WAVE_SIZE * FH_AMD_SIMDS_PER_CU - 1) /                       \
             (FH_AMD_WAVE_SIZE * FH_AMD_SIMDS_PER_CU))
#define FH_LAUNCH_BOUNDS_1(threads) __attribute__((amdgpu_flat_work_group_size(1, threads)))
#define FH_LAUNCH_BOUNDS_2(threads, min_blocks) \
  __attribute__((amdgpu_flat_work_group_size(1, threads), amdgpu_waves_per_eu(FH_AMD_WAVES_PER_EU(threads, min_blocks))))
#elif FH_PLATFORM_CUDA
#define FH_LAUNCH_BOUNDS_1(threads) __launch_bounds__(threads)
#define FH_LAUNCH_BOUNDS_2(threads, min_blocks) __launch_bounds__(threads, min_blocks)
#else
#define FH_LAUNCH_BOUNDS_1(threads)
#define FH_LAUNCH_BOUNDS_2(threads, min_blocks)
#endif
#define FH_LAUNCH_BOUNDS_PICK(_1, _2, name, ...) name
#define FH_LAUNCH_BOUNDS(...) FH_LAUNCH_BOUNDS_PICK(__VA_ARGS__, FH_LAUNCH_BOUNDS_2, FH_LAUNCH_BOUNDS_1, unused)(__VA_ARGS__)

// ---- The device target of this pass: one set of arch families (all 0 on the host pass) ----
// NVIDIA families are feature levels: FH_ARCH_SM80 is 1 on sm_80 and newer, FH_ARCH_SM89 on sm_89
// and newer (hardware OCP fp8 conversion); FH_ARCH_SM90A only on sm_90a, whose wgmma/TMA
// instructions are arch-specific. AMD families are generations: CDNA2 gfx90a (MI200), CDNA3
// gfx940/941/942 (MI300), CDNA4 gfx950 (MI350), RDNA gfx10/11/12. Code outside platform/ asks
// these macros, never __CUDA_ARCH__ or __gfx*__ directly.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
#define FH_ARCH_SM70 1
#else
#define FH_ARCH_SM70 0
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define FH_ARCH_SM80 1
#else
#define FH_ARCH_SM80 0
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
#define FH_ARCH_SM89 1
#else
#define FH_ARCH_SM89 0
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FH_ARCH_SM90A 1
#else
#define FH_ARCH_SM90A 0
#endif
#if defined(__gfx90a__)
#define FH_ARCH_CDNA2 1
#else
#define FH_ARCH_CDNA2 0
#endif
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
#if defined(__GFX10__) || defined(__GFX11__) || defined(__GFX12__)
#define FH_ARCH_RDNA 1
#else
#define FH_ARCH_RDNA 0
#endif
