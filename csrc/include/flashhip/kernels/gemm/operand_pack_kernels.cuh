// Operand pack kernels (torch-free): fp8 [rows, cols] at any strides -> dense rows, for GEMM
// operands that are not K-contiguous. One launch packs one or two operands (A and B): the grid
// is 1-D over tiles, the first job's tiles first. A tile is kTile x kTile bytes of the operand.
//
// Fast path (the M/N-contiguous layout: stride_row == 1, sizes and stride_col multiples of 16,
// 16-byte aligned pointers): the source is kTile-byte "lines" (one per col c, rows contiguous).
// Each thread loads four 16-byte chunks (4 lines, the same 16 rows), all issued before any is
// used, so a 256-thread block has its whole 16 KB tile in flight at once (one 16-byte load a
// thread was latency-bound at ~1.2 TB/s on H200). It transposes the four 4x4 byte blocks in
// registers, stores the 16 words (16 rows x 4 cols each) to shared memory, and after the barrier
// reads 16-byte chunks of dst rows back: no byte-wide shared-memory access anywhere.
// Scalar path (anything else): one byte a thread, read along whichever dimension is contiguous.
#pragma once

#include <cstdint>

#include "flashhip/platform/macros.h"
#include "flashhip/platform/vec.h"

namespace flashhip::kernels {
namespace operand_pack_detail {

inline constexpr int kTile = 128;     // rows and cols (bytes) of a tile
inline constexpr int kThreads = 256;  // per block
inline constexpr int kChunk = 16;     // bytes of one vector access
inline constexpr int kChunksPerLine = kTile / kChunk;                  // 8
inline constexpr int kLinesPerThread = 4;                              // fast path: 4 cols a thread
inline constexpr int kWordsPerRow = kTile / 4;                         // 32 words of smem a tile row
inline constexpr int kStoresPerThread = kTile * kChunksPerLine / kThreads;  // 4 dst chunks a thread
static_assert(kChunksPerLine * (kTile / kLinesPerThread) == kThreads, "one thread per (16 rows, 4 cols)");
static_assert(kStoresPerThread * kThreads * kChunk == kTile * kTile, "the threads' dst chunks cover the tile");

// One job as the kernel sees it (the launcher fills the tiling).
struct PackJob {
  uint8_t* dst;        // [rows, cols] dense
  const uint8_t* src;  // [rows, cols] at (stride_row, stride_col)
  int64_t rows, cols, stride_row, stride_col;
  uint32_t tiles_r;    // tiles along rows; tile t covers rows (t % tiles_r) * kTile, cols (t / tiles_r) * kTile
  bool fast;           // the vector transpose applies
};

// Both jobs, by value: tiles [0, tiles0) are job[0]'s, [tiles0, total) job[1]'s.
struct PackBatch {
  PackJob job[2];
  uint32_t tiles0, total;
};

// 4x4 byte transpose. in[i] holds elements (row b, col i) as byte b; out[b] gets (row b, col i)
// as byte i. Shifts and masks only (each vendor's compiler turns them into byte permutes).
FH_DEVICE FH_INLINE void transpose_bytes_4x4(const uint32_t (&in)[4], uint32_t (&out)[4]) {
  // (row, col) of bytes 0..3:
  const uint32_t lo01 = (in[0] & 0x00ff00ffu) | ((in[1] << 8) & 0xff00ff00u);  // (0,0) (0,1) (2,0) (2,1)
  const uint32_t hi01 = ((in[0] >> 8) & 0x00ff00ffu) | (in[1] & 0xff00ff00u);  // (1,0) (1,1) (3,0) (3,1)
  const uint32_t lo23 = (in[2] & 0x00ff00ffu) | ((in[3] << 8) & 0xff00ff00u);  // (0,2) (0,3) (2,2) (2,3)
  const uint32_t hi23 = ((in[2] >> 8) & 0x00ff00ffu) | (in[3] & 0xff00ff00u);  // (1,2) (1,3) (3,2) (3,3)
  out[0] = (lo01 & 0xffffu) | (lo23 << 16);
  out[1] = (hi01 & 0xffffu) | (hi23 << 16);
  out[2] = (lo01 >> 16) | (lo23 & 0xffff0000u);
  out[3] = (hi01 >> 16) | (hi23 & 0xffff0000u);
}

// Shared-memory layout of the fast path: tile row r (0..127) is 32 words = 8 chunks of 16 bytes;
// logical chunk j (cols 16j..16j+15) sits at physical chunk j ^ (r / 16). Words within a chunk
// keep their order, so a chunk is still one aligned 16-byte access.
//
// Why a swizzle, not padding: a thread holds 16 consecutive rows of one word column (4 cols), and
// the 8 lanes of a warp that share a word column are 16 rows apart, so with a row pitch of P
// words they are 16 * P banks apart; 16 * P mod 32 is 0 or 16 for every P, at least a 4-way
// conflict whatever the padding. XOR-ing the chunk with r / 16 costs no space. Bank arithmetic
// (32 banks of 4 bytes; a row is 32 words, so bank = physical word within the row):
// - Store (32-bit, one instruction per row offset k in 0..15): lane l of warp w has
//   part = l % 8 (rows 16 * part + k), quad = 4w + l / 8 (word quad of the row, logical chunk w,
//   word l / 8), so bank = 4 * (w ^ part) + l / 8: part takes 8 values, w ^ part 8 distinct
//   chunks, l / 8 the 4 words of each -> 32 distinct banks.
// - Load (128-bit, serviced a quarter-warp of 8 lanes at a time): the 8 lanes share a row r and
//   take j = 0..7 -> physical chunks j ^ (r / 16) are 8 distinct chunks = all 32 banks once.
// (CDNA's LDS also has 32 four-byte banks, so the same mapping applies per 32 lanes; not profiled there.)
FH_DEVICE FH_INLINE int swizzled_word(int row, int chunk) { return row * kWordsPerRow + ((chunk ^ (row >> 4)) << 2); }

FH_DEVICE FH_INLINE void pack_tile_vector(const PackJob& job, int64_t r0, int64_t c0, uint32_t* tile) {
  const int t = static_cast<int>(threadIdx.x);
  // Loads: part is the thread's 16-byte chunk of a line (rows 16 * part..), quad its 4 lines
  // (cols 4 * quad..). A warp's load instruction covers 4 lines x 128 contiguous bytes.
  const int part = t % kChunksPerLine, quad = t / kChunksPerLine;
  const int64_t row = r0 + part * kChunk;
  uint32_t w[kLinesPerThread][4];
#pragma unroll
  for (int i = 0; i < kLinesPerThread; ++i) {
    const int64_t col = c0 + quad * kLinesPerThread + i;
    uint4 v = make_uint4(0, 0, 0, 0);  // outside the operand: zeros, never written out
    if (row < job.rows && col < job.cols)
      v = load_word<CachePolicy::kStreaming>(reinterpret_cast<const uint4*>(job.src + col * job.stride_col + row));
    w[i][0] = v.x, w[i][1] = v.y, w[i][2] = v.z, w[i][3] = v.w;
  }
  // Word q of line i holds rows 16 * part + 4q + b (byte b); after the transpose out[b] holds
  // cols 4 * quad + i (byte i) of that row.
  const int word = (((quad >> 2) ^ part) << 2) | (quad & 3);  // row >> 4 == part for all 16 rows
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const uint32_t in[4] = {w[0][q], w[1][q], w[2][q], w[3][q]};
    uint32_t out[4];
    transpose_bytes_4x4(in, out);
#pragma unroll
    for (int b = 0; b < 4; ++b) tile[(part * kChunk + 4 * q + b) * kWordsPerRow + word] = out[b];
  }
  __syncthreads();
  // Stores: 8 consecutive lanes write one dst row's 8 chunks, so a warp instruction writes 4 rows
  // x 128 contiguous bytes: whole 32-byte sectors (whole 128-byte lines when cols % 128 == 0).
#pragma unroll
  for (int s = 0; s < kStoresPerThread; ++s) {
    const int idx = s * kThreads + t, r = idx / kChunksPerLine, j = idx % kChunksPerLine;
    const int64_t out_row = r0 + r, out_col = c0 + j * kChunk;
    if (out_row < job.rows && out_col < job.cols) {  // cols % 16 == 0: a chunk is all in or all out
      const uint4 v = *reinterpret_cast<const uint4*>(tile + swizzled_word(r, j));
      store_word<CachePolicy::kDefault>(reinterpret_cast<uint4*>(job.dst + out_row * job.cols + out_col), v);
    }
  }
}

// Any strides: one byte a thread, read along the source's smaller stride (coalesced when it is
// 1), written along dst rows. tile[r][(c + r) % kTile]: the rotation spreads both a tile column
// (the reads when rows are contiguous) and a tile row over the banks. A thread keeps one index
// of the fast dimension and steps the other by kThreads / kTile, so its addresses are a base and
// a stride (few registers), and it issues 8 loads before storing any.
FH_DEVICE FH_INLINE void pack_tile_scalar(const PackJob& job, int64_t r0, int64_t c0, uint8_t* tile) {
  constexpr int kSteps = kTile * kTile / kThreads, kStep = kThreads / kTile;  // 64 steps of 2
  const int t = static_cast<int>(threadIdx.x), a = t % kTile, b0 = t / kTile;
  const int64_t sr = job.stride_row < 0 ? -job.stride_row : job.stride_row;
  const int64_t sc = job.stride_col < 0 ? -job.stride_col : job.stride_col;
  const bool rows_fast = sr < sc;
  // Read (r, c) = rows_fast ? (a, b) : (b, a).
  const int64_t fast_stride = rows_fast ? job.stride_row : job.stride_col;
  const int64_t slow_stride = rows_fast ? job.stride_col : job.stride_row;
  const bool a_in = rows_fast ? r0 + a < job.rows : c0 + a < job.cols;
  const int64_t b_end = rows_fast ? job.cols - c0 : job.rows - r0;
  const uint8_t* src = job.src + r0 * job.stride_row + c0 * job.stride_col + a * fast_stride + b0 * slow_stride;
  constexpr int kInFlight = 8;
#pragma unroll 1  // fully unrolled, hipcc held all 64 addresses at once (180 VGPRs)
  for (int k0 = 0; k0 < kSteps; k0 += kInFlight) {
    uint8_t v[kInFlight];
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int k = k0 + u;
      v[u] = a_in && b0 + k * kStep < b_end ? src[k * kStep * slow_stride] : uint8_t(0);
    }
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int b = b0 + (k0 + u) * kStep, r = rows_fast ? a : b, c = rows_fast ? b : a;
      tile[r * kTile + ((c + r) & (kTile - 1))] = v[u];
    }
  }
  __syncthreads();
  // Write (r, c) = (b, a): a warp writes 32 consecutive bytes of a dst row.
  const bool c_in = c0 + a < job.cols;
  const int64_t r_end = job.rows - r0;
  uint8_t* dst = job.dst + (r0 + b0) * job.cols + c0 + a;
#pragma unroll 8
  for (int k = 0; k < kSteps; ++k) {
    const int r = b0 + k * kStep;
    if (c_in && r < r_end) dst[k * kStep * job.cols] = tile[r * kTile + ((a + r) & (kTile - 1))];
  }
}

__global__ void FH_LAUNCH_BOUNDS(kThreads) pack_fp8_operands_kernel(const PackBatch batch) {
  __shared__ uint32_t tile[kTile * kWordsPerRow];  // 16 KB: [kTile rows][kTile bytes], layouts above
  // Normally one tile a block; the loop only covers grids the launcher had to cap.
  for (uint32_t t = blockIdx.x; t < batch.total; t += gridDim.x) {
    const bool second = t >= batch.tiles0;
    const PackJob job = second ? batch.job[1] : batch.job[0];  // block-uniform: the branches below are too
    const uint32_t local = second ? t - batch.tiles0 : t;
    const int64_t r0 = static_cast<int64_t>(local % job.tiles_r) * kTile;
    const int64_t c0 = static_cast<int64_t>(local / job.tiles_r) * kTile;
    if (job.fast) {
      pack_tile_vector(job, r0, c0, tile);
    } else {
      pack_tile_scalar(job, r0, c0, reinterpret_cast<uint8_t*>(tile));
    }
    __syncthreads();  // the next tile overwrites the buffer
  }
}

// ---- per-row scales, [m, k_blocks] at any strides -> M-major [k_blocks, m_padded] ----
// A block moves a kScaleTile x kScaleTile tile through shared memory: it reads along K blocks
// (contiguous in the usual [m, k_blocks] layout) and writes along rows. The extra column keeps
// the transposed reads of the tile off a single bank.
inline constexpr int kScaleTile = 32;         // rows and K blocks of a tile
inline constexpr int kScaleTileThreadsY = 8;  // blockDim (kScaleTile, kScaleTileThreadsY)

__global__ void FH_LAUNCH_BOUNDS(kScaleTile * kScaleTileThreadsY)
    pack_row_scales_kernel(float* __restrict__ dst,        // [k_blocks, m_padded] dense
                           const float* __restrict__ src,  // [m, k_blocks] at (stride_m, stride_kb)
                           int64_t m, int64_t k_blocks, int64_t stride_m, int64_t stride_kb, int64_t m_padded) {
  __shared__ float tile[kScaleTile][kScaleTile + 1];
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kScaleTile;
  const int64_t kb0 = static_cast<int64_t>(blockIdx.y) * kScaleTile;
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  for (int i = ty; i < kScaleTile; i += kScaleTileThreadsY) {
    const int64_t row = row0 + i < m ? row0 + i : m - 1;  // padding rows repeat the last
    const int64_t kb = kb0 + tx;
    if (kb < k_blocks) tile[i][tx] = src[row * stride_m + kb * stride_kb];
  }
  __syncthreads();
  for (int i = ty; i < kScaleTile; i += kScaleTileThreadsY) {
    const int64_t kb = kb0 + i, row = row0 + tx;
    if (kb < k_blocks && row < m_padded) dst[kb * m_padded + row] = tile[tx][i];
  }
}

}  // namespace operand_pack_detail
}  // namespace flashhip::kernels
