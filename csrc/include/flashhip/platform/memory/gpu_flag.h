// Flags one CTA raises for another on the same device (stream-K's "partial ready"): a store with
// release and a load with acquire, both at device scope, so that what the raiser wrote before is
// visible to the reader once it sees the flag. The raiser's other threads' writes are covered when
// they reach a block barrier with the raising thread before it raises.
#pragma once

#include "flashhip/platform/macros.h"

namespace flashhip {

#if FH_PLATFORM_CUDA || FH_PLATFORM_HIP
FH_DEVICE FH_INLINE void flag_store_release(int* flag, int value) {
#if FH_PLATFORM_HIP
  __hip_atomic_store(flag, value, __ATOMIC_RELEASE, __HIP_MEMORY_SCOPE_AGENT);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
  asm volatile("st.release.gpu.global.b32 [%0], %1;" ::"l"(flag), "r"(value) : "memory");
#endif
}

FH_DEVICE FH_INLINE int flag_load_acquire(const int* flag) {
  int value = 0;
#if FH_PLATFORM_HIP
  value = __hip_atomic_load(flag, __ATOMIC_ACQUIRE, __HIP_MEMORY_SCOPE_AGENT);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
  asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(value) : "l"(flag) : "memory");
#endif
  return value;
}

// Spins until *flag == value (backing off, so the spinning thread leaves the SM's issue slots to
// the other warpgroup).
FH_DEVICE FH_INLINE void flag_wait_equal(const int* flag, int value) {
  while (flag_load_acquire(flag) != value) {
#if FH_PLATFORM_CUDA
    __nanosleep(64);
#else
    __builtin_amdgcn_s_sleep(1);
#endif
  }
}
#endif

}  // namespace flashhip
