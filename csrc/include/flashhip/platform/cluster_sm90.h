// Thread-block clusters on Hopper (sm_90a): a CTA's rank in its cluster, the cluster-wide
// barrier, and arrivals on a barrier in another CTA's shared memory. With these, CTAs of one
// cluster can share a TMA copy (tma_load_2d_multicast, memory/tma_sm90.h): each loads a part of
// an operand tile into the shared memory of all of them. Device functions exist only in an
// sm_90a device pass.
#pragma once

#include <cstdint>

#include "flashhip/platform/macros.h"

#if FH_PLATFORM_CUDA
namespace flashhip::sm90 {

// This CTA's rank in its cluster (0 when launched without clusters).
FH_DEVICE FH_INLINE uint32_t cluster_cta_rank() {
  uint32_t rank = 0;
#if FH_ARCH_SM90A
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
#endif
  return rank;
}

// Every thread of every CTA of the cluster arrives, then waits for all the others: what each did
// to shared memory before (barrier initialisation included) is visible to the others after.
// Called by all threads of the CTA, not necessarily converged.
FH_DEVICE FH_INLINE void cluster_sync() {
#if FH_ARCH_SM90A
  asm volatile("barrier.cluster.arrive.release;\n\tbarrier.cluster.wait.acquire;" ::: "memory");
#endif
}

// One arrival on the mbarrier at `bar`'s offset in the shared memory of the cluster's CTA `rank`
// (this CTA's own included): a consumer frees a ring stage that a peer's multicast copies refill.
// The arrival has the default release.cta semantics: what it must order is the consumer's reads
// of its own shared memory, which its wgmma wait has already completed; release.cluster would
// put a GPU-wide memory barrier (MEMBAR.ALL.GPU) before every arrival, which made the clustered
// kernel take 1.4-2x the time (H200).
FH_DEVICE FH_INLINE void mbar_arrive_cluster(uint64_t* bar, uint32_t rank) {
#if FH_ARCH_SM90A
  const uint32_t local = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  asm volatile(
      "{\n .reg .b32 remote;\n mapa.shared::cluster.u32 remote, %0, %1;\n"
      " mbarrier.arrive.shared::cluster.b64 _, [remote];\n}" ::"r"(local),
      "r"(rank)
      : "memory");
#endif
}

// Reads the float at `local`'s offset in the shared memory of the cluster's CTA `rank` (this
// CTA's own included), through distributed shared memory.
FH_DEVICE FH_INLINE float ld_shared_cluster_f32(const float* local, uint32_t rank) {
  float value = 0.f;
#if FH_ARCH_SM90A
  const uint32_t address = static_cast<uint32_t>(__cvta_generic_to_shared(local));
  asm volatile(
      "{\n .reg .b32 remote;\n mapa.shared::cluster.u32 remote, %1, %2;\n"
      " ld.shared::cluster.f32 %0, [remote];\n}"
      : "=f"(value)
      : "r"(address), "r"(rank)
      : "memory");
#endif
  return value;
}

}  // namespace flashhip::sm90
#endif  // FH_PLATFORM_CUDA
