// Ampere's asynchronous global-to-shared copies (cp.async, sm_80+), with completion reported on
// an mbarrier: small gathers (per-row scales) that a TMA box cannot describe, issued by a
// producer without waiting on a register.
#pragma once

#include <cstdint>

#include "flashhip/platform/macros.h"

#if FH_PLATFORM_CUDA
namespace flashhip::sm80 {

// Copies 4 bytes; global_src must be 4-byte aligned.
FH_DEVICE FH_INLINE void cp_async_4(uint32_t smem_dst, const void* global_src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(smem_dst), "l"(global_src) : "memory");
#endif
}

// Copies 16 bytes, bypassing L1 (.cg); both addresses must be 16-byte aligned.
FH_DEVICE FH_INLINE void cp_async_16(uint32_t smem_dst, const void* global_src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_dst), "l"(global_src) : "memory");
#endif
}

// One arrival on the barrier once every cp.async this thread issued before has landed. The
// arrival is not added to the barrier's expected count (.noinc): it was counted at init.
FH_DEVICE FH_INLINE void cp_async_arrive_on(uint32_t smem_barrier) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_barrier) : "memory");
#endif
}

}  // namespace flashhip::sm80
#endif  // FH_PLATFORM_CUDA
