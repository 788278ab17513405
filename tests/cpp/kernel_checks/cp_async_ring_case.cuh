// The fp8 GEMM's scale ring in miniature, for compute-sanitizer racecheck: a producer warp fills
// ring slots with cp.async and reports each slot on its "full" mbarrier with
// cp.async.mbarrier.arrive.noinc; a consumer warpgroup waits on full, every lane reads the slot,
// and one lane per warp arrives on "empty" (after a __syncwarp, or without one when
// `warp_sync` is false, which is what the GEMM did before). Values are checked, so the case also
// fails on a real race that corrupts data. A racecheck report here, on this protocol alone, says
// whether the tool models cp.async completion through an mbarrier.
//   flashhip_kernel_checks ring_case [nosync]
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "flashhip/platform/memory/cp_async_sm80.h"
#include "flashhip/platform/memory/tma_sm90.h"
#include "flashhip/platform/mma/wgmma_sm90.h"

namespace cp_async_ring_case {

constexpr int kStages = 4, kSlotFloats = 128, kRounds = 64, kConsumerWarps = 4;
constexpr int kWarp = flashhip::sm90::kWarpThreads;

__global__ void ring_kernel(const float* src,  // [kRounds][kSlotFloats]
                            float* sums,       // [kConsumerWarps * kWarp]: what each consumer lane read, summed
                            bool warp_sync) {
#if FH_ARCH_SM90A
  __shared__ float slots[kStages][kSlotFloats];
  __shared__ uint64_t full[kStages], empty[kStages];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      flashhip::sm90::mbar_init(&full[s], kWarp);
      flashhip::sm90::mbar_init(&empty[s], kConsumerWarps);
    }
    flashhip::sm90::fence_barrier_init();
  }
  __syncthreads();
  if (warp == 0) {  // producer
    for (int round = 0; round < kRounds; ++round) {
      const int s = round % kStages;
      const uint32_t phase = (round / kStages) & 1;
      flashhip::sm90::mbar_wait(&empty[s], phase ^ 1);
      for (int i = lane; i < kSlotFloats; i += kWarp)
        flashhip::sm80::cp_async_4(flashhip::sm90::smem_addr(&slots[s][i]), src + round * kSlotFloats + i);
      flashhip::sm80::cp_async_arrive_on(flashhip::sm90::smem_addr(&full[s]));
    }
  } else {  // consumers: warps 1..kConsumerWarps
    const int t = threadIdx.x - kWarp;
    float sum = 0.f;
    for (int round = 0; round < kRounds; ++round) {
      const int s = round % kStages;
      const uint32_t phase = (round / kStages) & 1;
      flashhip::sm90::mbar_wait(&full[s], phase);
      sum += slots[s][t % kSlotFloats] + slots[s][(t * 7 + round) % kSlotFloats];
      if (warp_sync) __syncwarp();
      if (lane == 0) flashhip::sm90::mbar_arrive(&empty[s]);
    }
    sums[t] = sum;
  }
#endif
}

// Returns the number of failures (wrong sums).
inline int run(bool warp_sync) {
  std::vector<float> src(kRounds * kSlotFloats);
  for (size_t i = 0; i < src.size(); ++i) src[i] = float(i % 1000) * 0.25f;
  float *d_src, *d_sums;
  cudaMalloc(&d_src, src.size() * 4);
  cudaMalloc(&d_sums, kConsumerWarps * kWarp * 4);
  cudaMemcpy(d_src, src.data(), src.size() * 4, cudaMemcpyHostToDevice);
  ring_kernel<<<1, kWarp * (1 + kConsumerWarps)>>>(d_src, d_sums, warp_sync);
  std::vector<float> sums(kConsumerWarps * kWarp);
  cudaMemcpy(sums.data(), d_sums, sums.size() * 4, cudaMemcpyDeviceToHost);
  int failures = cudaGetLastError() != cudaSuccess;
  for (int t = 0; t < kConsumerWarps * kWarp; ++t) {
    float want = 0.f;
    for (int round = 0; round < kRounds; ++round)
      want += src[round * kSlotFloats + t % kSlotFloats] + src[round * kSlotFloats + (t * 7 + round) % kSlotFloats];
    failures += sums[t] != want;
  }
  std::printf("%s cp.async ring case (%s): %d wrong sums\n", failures ? "FAIL" : "ok  ",
              warp_sync ? "__syncwarp before the empty arrival" : "no __syncwarp", failures);
  cudaFree(d_src), cudaFree(d_sums);
  return failures;
}

}  // namespace cp_async_ring_case
