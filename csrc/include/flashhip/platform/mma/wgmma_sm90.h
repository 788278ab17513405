// Hopper's warpgroup matrix instructions (wgmma, sm_90a): shared-memory operand descriptors, the
// fence/commit/wait protocol, and the fp8 m64n128k32 instruction with its accumulator layout.
#pragma once

#include <cstdint>

#include "flashhip/platform/memory/tma_sm90.h"

namespace flashhip::sm90 {

// A warpgroup is 4 consecutive warps of 32 threads (NVIDIA's fixed warp width).
inline constexpr int kWarpThreads = 32;
inline constexpr int kWarpgroupWarps = 4;
inline constexpr int kWarpgroupThreads = kWarpThreads * kWarpgroupWarps;

// The fp8 instruction for each N the kernels use (one PTX spelling per N).
template <int N>
FH_DEVICE FH_INLINE void wgmma_e4m3_m64k32(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, int accumulate);
template <>
FH_DEVICE FH_INLINE void wgmma_e4m3_m64k32<8>(float (&d)[4], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#if FH_ARCH_SM90A
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %6, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3\n"
      " {%0, %1, %2, %3},\n %4, %5, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#endif
}
template <>
FH_DEVICE FH_INLINE void wgmma_e4m3_m64k32<16>(float (&d)[8], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#if FH_ARCH_SM90A
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %10, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n16k32.f32.e4m3.e4m3\n"
      " {%0, %1, %2, %3, %4, %5, %6, %7},\n %8, %9, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#endif
}
template <>
FH_DEVICE FH_INLINE void wgmma_e4m3_m64k32<32>(float (&d)[16], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#if FH_ARCH_SM90A
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %18, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3\n"
      " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15},\n %16, %17, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#endif
}
template <>
FH_DEVICE FH_INLINE void wgmma_e4m3_m64k32<64>(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#if FH_ARCH_SM90A
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %34, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3\n"
      " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31},\n %32, %33, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#endif
}
template <>
FH_DEVICE FH_INLINE void wgmma_e4m3_m64k32<128>(float (&d)[64], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#if FH_ARCH_SM90A
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %66, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3\n"
      " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63},\n %64, %65, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#endif
}

template <>
FH_DEVICE FH_INLINE void wgmma_e4m3_m64k32<192>(float (&d)[96], uint64_t desc_a, uint64_t desc_b, int accumulate) {
#if FH_ARCH_SM90A
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %98, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n192k32.f32.e4m3.e4m3\n"
      " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95},\n %96, %97, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
          "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
          "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
          "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
          "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
#endif
}

// D = A * B (+ D) with A [64 x 32] and B [32 x N] e4m3 in shared memory, both K-major (the only
// layout wgmma reads fp8 in), D [64 x N] fp32 in the registers of the 128 threads of a warpgroup.
template <int N>
struct WgmmaF32E4M3M64K32 {
  static constexpr int kM = 64, kN = N, kK = 32;
  static constexpr int kThreads = kWarpgroupThreads;
  static constexpr int kAccumulators = kM * kN / kThreads;  // N / 2 fp32 registers per thread
  static_assert(N % 8 == 0 && N >= 8 && N <= 256, "wgmma's N is a multiple of 8 up to 256");

  // Accumulator register r of thread t (0..127 within the warpgroup): warp t/32 owns rows
  // 16*(t/32)..+15; each 8-column chunk r/4 gives a lane two neighbouring columns in two rows.
  FH_HOST_DEVICE static constexpr int acc_row(int t, int r) {
    return 16 * (t / kWarpThreads) + (t % kWarpThreads) / 4 + 8 * ((r / 2) % 2);
  }
  FH_HOST_DEVICE static constexpr int acc_col(int t, int r) { return 8 * (r / 4) + 2 * (t % 4) + (r % 2); }

  // accumulate == false overwrites d instead of adding to it.
  FH_DEVICE FH_INLINE static void mma(float (&d)[kAccumulators], uint64_t desc_a, uint64_t desc_b, bool accumulate) {
    wgmma_e4m3_m64k32<N>(d, desc_a, desc_b, static_cast<int>(accumulate));
  }
};
using WgmmaF32E4M3M64N128K32 = WgmmaF32E4M3M64K32<128>;

// Shared-memory matrix descriptor of a K-major tile whose rows are 128 bytes, written by TMA
// with the 128-byte swizzle: 8-row groups 1024 bytes apart (the tile must be 1024-byte aligned).
// Moving along K inside the 128-byte row is done by adding bytes to the start address.
FH_DEVICE FH_INLINE uint64_t smem_desc_k_major_sw128(uint32_t smem_byte_addr) {
  constexpr uint64_t kStrideBytes = 1024;  // between 8-row core-matrix groups
  constexpr uint64_t kSwizzle128B = 1;     // layout type in bits 62-63
  return static_cast<uint64_t>((smem_byte_addr & 0x3FFFF) >> 4) | ((kStrideBytes >> 4) << 32) | (kSwizzle128B << 62);
}

// Orders this warpgroup's register and shared-memory accesses before the wgmmas that follow.
FH_DEVICE FH_INLINE void wgmma_fence() {
#if FH_ARCH_SM90A
  asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#endif
}
FH_DEVICE FH_INLINE void wgmma_commit() {
#if FH_ARCH_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
#endif
}
// Waits until at most `kPending` committed groups are still running.
template <int kPending>
FH_DEVICE FH_INLINE void wgmma_wait() {
#if FH_ARCH_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(kPending) : "memory");
#endif
}
// Keeps the compiler from moving accumulator reads/writes across the asynchronous wgmma.
template <int N>
FH_DEVICE FH_INLINE void fence_registers(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Synchronises the 128 threads of one warpgroup on hardware barrier `id` (1..15; 0 is the
// whole block's __syncthreads), so that one warpgroup can stage data through shared memory
// without stopping the others.
FH_DEVICE FH_INLINE void warpgroup_sync(int id) {
#if FH_ARCH_SM90A
  asm volatile("bar.sync %0, %1;" ::"r"(id), "n"(kWarpgroupThreads) : "memory");
#endif
}

// Synchronises `threads` threads (whole warps) on hardware barrier `id` (1..15), e.g. several
// consumer warpgroups, without the rest of the block.
FH_DEVICE FH_INLINE void named_barrier_sync(int id, int threads) {
#if FH_ARCH_SM90A
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
#endif
}

// Hands registers between warpgroups (sm_90a): producers give theirs up, consumers take them.
template <int kRegisters>
FH_DEVICE FH_INLINE void release_registers() {
#if FH_ARCH_SM90A
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kRegisters));
#endif
}
template <int kRegisters>
FH_DEVICE FH_INLINE void claim_registers() {
#if FH_ARCH_SM90A
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kRegisters));
#endif
}

}  // namespace flashhip::sm90
