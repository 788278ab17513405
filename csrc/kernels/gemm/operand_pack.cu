// launch_pack_fp8_operands: one launch for both GEMM operands, a 1-D grid of one block per
// 128 x 128 tile (job 0's tiles first), each job on the vector transpose when its layout allows
// it and on the scalar path otherwise. launch_pack_row_scales: a 2-D grid of 32 x 32 tiles.
#include <climits>

#include "flashhip/kernels/gemm/operand_pack.h"
#include "flashhip/kernels/gemm/operand_pack_kernels.cuh"
#include "flashhip/platform/runtime.h"
#include "flashhip/platform/vec.h"

namespace flashhip::kernels {

LaunchStatus launch_pack_fp8_operands(const Fp8PackJob* jobs, int count, StreamHandle handle) {
  using namespace operand_pack_detail;
  if (jobs == nullptr || count < 1 || count > 2) return {static_cast<int>(gpuErrorInvalidValue)};
  PackBatch batch{};
  uint64_t tiles[2] = {0, 0};
  for (int i = 0; i < count; ++i) {
    const Fp8PackJob& in = jobs[i];
    if (in.rows < 0 || in.cols < 0) return {static_cast<int>(gpuErrorInvalidValue)};
    if (in.rows == 0 || in.cols == 0) continue;  // nothing to copy: no tiles
    const uint64_t tiles_r = (static_cast<uint64_t>(in.rows) + kTile - 1) / kTile;
    const uint64_t tiles_c = (static_cast<uint64_t>(in.cols) + kTile - 1) / kTile;
    tiles[i] = tiles_r * tiles_c;
    PackJob& job = batch.job[i];
    job.dst = in.dst, job.src = in.src;
    job.rows = in.rows, job.cols = in.cols, job.stride_row = in.stride_row, job.stride_col = in.stride_col;
    job.tiles_r = static_cast<uint32_t>(tiles_r);
    // Whole 16-byte chunks along rows (source) and cols (dst), every chunk aligned.
    job.fast = in.stride_row == 1 && in.rows % kChunk == 0 && in.cols % kChunk == 0 && in.stride_col % kChunk == 0 &&
               is_aligned(in.src, kChunk) && is_aligned(in.dst, kChunk);
  }
  const uint64_t total = tiles[0] + tiles[1];
  if (total == 0) return {};
  // Tile indices are 32-bit in the kernel (2^32 tiles would be 2^46 bytes).
  if (total > UINT32_MAX) return {static_cast<int>(gpuErrorInvalidValue)};
  batch.tiles0 = static_cast<uint32_t>(tiles[0]);
  batch.total = static_cast<uint32_t>(total);
  // 1-D: gridDim.x takes 2^31 - 1 blocks (gridDim.y only 65535); past that the blocks loop.
  const unsigned grid = static_cast<unsigned>(total < static_cast<uint64_t>(INT_MAX) ? total : INT_MAX);
  pack_fp8_operands_kernel<<<grid, kThreads, 0, static_cast<gpuStream_t>(handle)>>>(batch);
  return {static_cast<int>(gpuGetLastError())};
}

LaunchStatus launch_pack_row_scales(float* dst, const float* src, int64_t m, int64_t k_blocks, int64_t stride_m,
                                    int64_t stride_kb, int64_t m_padded, StreamHandle handle) {
  using namespace operand_pack_detail;
  if (m < 0 || k_blocks < 0 || m_padded < m) return {static_cast<int>(gpuErrorInvalidValue)};
  if (m == 0 || k_blocks == 0) return {};
  const int64_t tiles_rows = (m_padded + kScaleTile - 1) / kScaleTile;
  const int64_t tiles_kb = (k_blocks + kScaleTile - 1) / kScaleTile;
  if (tiles_rows > INT_MAX || tiles_kb > 65535) return {static_cast<int>(gpuErrorInvalidValue)};  // grid limits
  const dim3 grid(static_cast<unsigned>(tiles_rows), static_cast<unsigned>(tiles_kb));
  const dim3 block(kScaleTile, kScaleTileThreadsY);
  // An ordinary launch, as measured (the GEMM after it is a programmatic dependent; making this
  // one a dependent too, so the GEMM's set-up overlaps it, is not yet measured).
  pack_row_scales_kernel<<<grid, block, 0, static_cast<gpuStream_t>(handle)>>>(dst, src, m, k_blocks, stride_m,
                                                                             stride_kb, m_padded);
  return {static_cast<int>(gpuGetLastError())};
}

}  // namespace flashhip::kernels
