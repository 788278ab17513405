// Hopper's bulk tensor copy engine (TMA) and the shared-memory barriers it completes on.
// Device functions exist only in an sm_90a device pass; the host side encodes tensor maps through
// the driver entry point the runtime hands out, so nothing links libcuda.
#pragma once

#include <cstdint>

#include "flashhip/platform/macros.h"

#if FH_PLATFORM_CUDA
#include <cuda.h>  // CUtensorMap and its enums (types only)
#include <cuda_runtime.h>
#endif


#if FH_PLATFORM_CUDA
namespace flashhip::sm90 {

// ---- shared-memory addresses and mbarriers ----
FH_DEVICE FH_INLINE uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

FH_DEVICE FH_INLINE void mbar_init(uint64_t* bar, uint32_t arrivals) {
#if FH_ARCH_SM90A
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(arrivals));
#endif
}

// Makes the initialised barriers visible to the copy engine before anyone waits on them.
FH_DEVICE FH_INLINE void fence_barrier_init() {
#if FH_ARCH_SM90A
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

FH_DEVICE FH_INLINE void mbar_arrive(uint64_t* bar) {
#if FH_ARCH_SM90A
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
#endif
}

// One arrival that also announces `bytes` of copies that will complete on this barrier.
FH_DEVICE FH_INLINE void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#if FH_ARCH_SM90A
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
#endif
}

// Waits until the phase of parity `parity` has completed. A fresh barrier counts its (virtual)
// previous phase, parity 1, as complete: producers start waiting on "empty" with parity 1.
FH_DEVICE FH_INLINE void mbar_wait(uint64_t* bar, uint32_t parity) {
#if FH_ARCH_SM90A
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!done);
#endif
}

// Makes this thread's view of shared memory (e.g. cp.async data it waited for) visible to its
// later async-proxy operations (wgmma operand reads, TMA stores).
FH_DEVICE FH_INLINE void fence_proxy_async_shared() {
#if FH_ARCH_SM90A
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}

// ---- TMA ----
FH_DEVICE FH_INLINE void prefetch_tensor_map(const CUtensorMap* map) {
#if FH_ARCH_SM90A
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#endif
}

// Copies the box at (inner, outer) of a 2-D tensor map into shared memory; completes on `bar`.
FH_DEVICE FH_INLINE void tma_load_2d(void* smem_dst, const CUtensorMap* map, int32_t inner, int32_t outer,
                                     uint64_t* bar) {
#if FH_ARCH_SM90A
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];" ::"r"(
          smem_addr(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(inner), "r"(outer)
      : "memory");
#endif
}

// The same copy, landing at smem_dst's offset in the shared memory of every CTA of the cluster
// whose bit is set in cta_mask, each completing on the barrier at bar's offset in its own shared
// memory (which must expect these bytes in its transaction count).
FH_DEVICE FH_INLINE void tma_load_2d_multicast(void* smem_dst, const CUtensorMap* map, int32_t inner, int32_t outer,
                                               uint64_t* bar, uint16_t cta_mask) {
#if FH_ARCH_SM90A
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%3, %4}], [%2], %5;" ::"r"(smem_addr(smem_dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(inner), "r"(outer), "h"(cta_mask)
      : "memory");
#endif
}

}  // namespace flashhip::sm90
#endif  // FH_PLATFORM_CUDA

#if FH_PLATFORM_CUDA
namespace flashhip::sm90 {

// ---- host: tensor maps ----
// A row-major 2-D tensor of 1-byte elements, `rows` x `cols` with `row_stride_bytes` between rows
// (a multiple of 16), copied in boxes of box_rows x box_cols (box_cols bytes <= 128 for the
// 128-byte swizzle). Out-of-range elements of a box read as zero.
inline cudaError_t encode_tensor_map_2d_u8(CUtensorMap* map, const void* base, uint64_t rows, uint64_t cols,
                                           uint64_t row_stride_bytes, uint32_t box_rows, uint32_t box_cols) {
  using EncodeFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  // The driver's encoder, looked up once through the runtime (12.0 is the ABI of this signature).
  static EncodeFn encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      return static_cast<EncodeFn>(nullptr);
    }
    return reinterpret_cast<EncodeFn>(fn);
  }();
  if (encode == nullptr) return cudaErrorNotSupported;
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {row_stride_bytes};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box,
                            element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

}  // namespace flashhip::sm90
#endif  // FH_PLATFORM_CUDA
