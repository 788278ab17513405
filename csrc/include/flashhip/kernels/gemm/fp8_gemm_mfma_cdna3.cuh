// Blockwise-scaled fp8 GEMM, CDNA3 (MI300, gfx940/941/942) main loop on v_mfma_f32_32x32x16_fp8_fp8.
// Compiles for CDNA4 too (same instruction, which reads OCP e4m3 there); on every other target the
// kernel body is a trap and the launcher never launches it.
//
//   out[m, n] = sum_kb a_scale[m, kb] * b_scale[n / 128, kb] * sum_{k in kb} a[m, k] * b[n, k]
//
// Block: 256 threads = 4 waves of 64. Tile kBM x 128 (kBM = 128: 2 x 2 waves of 64 x 64;
// kBM = 64: 1 x 4 waves of 64 x 32), K step 128 = one scale block. Per K block:
//   1. the next K block's A and B tiles are loaded from global memory into registers (issued
//      first, so their latency hides behind step 2);
//   2. each wave runs its MFMAs on the current tiles in LDS into a zeroed fp32 partial, then
//      promotes it: acc += partial * (a_scale[row, kb] * b_scale[n0 / 128, kb]) — one multiply
//      per accumulator and K block; the tile's 128 columns share one b_scale (n0 % 128 == 0);
//   3. barrier, the registers are written into LDS (the one LDS buffer; the registers are the
//      second stage), barrier.
// LDS: kBM * 128 + 128 * 128 bytes (32 KB for kBM = 128), so two blocks share a CU's 64 KB.
//
// Operands in LDS are K-major, 128 bytes per row, the 16-byte chunks XOR-swizzled per row
// (lds_chunk below): the MFMA fragment reads (ds_read_b128, 32 consecutive rows, one chunk) and
// both kinds of writes are free of bank conflicts beyond the unavoidable. A K-contiguous operand
// is copied 16 bytes at a time; an M/N-contiguous one (stride 1 along rows) is read 4 k-columns
// of kW consecutive rows at a time and transposed in registers into 4-byte K-major words, so no
// separate transpose pass is needed. Tails: rows of A past M and of B past N read as zero and
// outputs past M/N are not written; an unaligned operand (pointer or stride) takes a byte path.
//
// Fragments: one 16-byte LDS read of a row gives the 8 bytes of two consecutive 32x32x16 MFMAs.
// Lane l takes k = 16 * (l / 32) + 8 * h + i of a 32-wide K chunk for instruction h and byte i,
// the same for A and B, so the two instructions sum over the chunk's 32 k exactly once
// (tests/cpp/test_mma_layouts.cpp, KernelKPermutationCoversChunk).
#pragma once

#include <cstdint>

#include "flashhip/kernels/common/tile_scheduler.cuh"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/macros.h"
#include "flashhip/platform/mma/mfma_cdna3.h"
#include "flashhip/platform/vec.h"
#include "flashhip/platform/wave.h"

namespace flashhip::kernels::cdna3 {

inline constexpr int kGemmThreads = 256;  // 4 waves of 64
inline constexpr int kGemmBlockN = 128;
inline constexpr int kGemmBlockK = 128;   // = kFp8ScaleBlock
inline constexpr int kGemmRowBytes = kGemmBlockK;  // one LDS row of a tile: 128 fp8
inline constexpr int kGemmGroupM = 8;     // rasterisation band, in tile-rows
// 2 blocks per CU (one wave per SIMD each): FH_LAUNCH_BOUNDS turns that into 2 waves per SIMD,
// which caps the VGPRs+AGPRs of a wave at 512 / 2 = 256.
inline constexpr int kGemmMinBlocksPerCu = 2;

struct Fp8GemmCdna3Args {
  const uint8_t* a;
  const uint8_t* b;
  const float* a_scale;
  const float* b_scale;
  void* out;
  int m, n, k;
  int tiles_m, tiles_n;
  int64_t out_stride_m;
  int64_t a_stride_m, a_stride_k;
  int64_t b_stride_n, b_stride_k;
  int64_t a_scale_stride_m, a_scale_stride_kb;
  int64_t b_scale_stride_nb, b_scale_stride_kb;
  bool a_vector;  // pointer and stride allow the wide global loads of a's layout
  bool b_vector;
};

// Physical 16-byte chunk of logical chunk c (0..7) of LDS row r. Rows 8q..8q+7 get 8 distinct
// chunks (fragment reads); rows r0 + kW * e for kW = 8 or 16 and e = 0..7 too (the transposing
// writes of M/N-contiguous operands).
FH_DEVICE FH_INLINE int lds_chunk(int r, int c) { return c ^ ((r ^ (r >> 3) ^ (r >> 4)) & 7); }

// The same value, opaque to the optimiser. Lane-derived addresses computed from it inside the
// K loop stay there (a few VALU ops per K block beside 32 MFMAs) instead of being hoisted out of
// the loop, where ~80 of them (LDS fragment and copy addresses, bpermute lanes, global row
// offsets) held registers across the loop and pushed the kernel past 256 VGPRs into scratch.
FH_DEVICE FH_INLINE int opaque_vgpr(int v) {
  asm volatile("" : "+v"(v));
  return v;
}

FH_DEVICE FH_INLINE int lds_offset(int r, int byte_in_row) {
  return r * kGemmRowBytes + lds_chunk(r, byte_in_row >> 4) * 16 + (byte_in_row & 15);
}

// Global -> registers -> LDS copy of one kRows x 128 operand tile (rows = M of a or N of b).
// kKContig: element (row, k) at base[row * stride_row + k]; otherwise at base[row + k * stride_k].
template <int kRows, bool kKContig>
struct TileCopy;

template <int kRows>
struct TileCopy<kRows, true> {
  static constexpr int kUnits = kRows * (kGemmRowBytes / 16) / kGemmThreads;  // 16-byte pieces per thread
  static_assert(kUnits >= 1 && kRows * (kGemmRowBytes / 16) % kGemmThreads == 0, "tile too small");
  uint4 words[kUnits];

  // Rows row0 .. row0 + kRows of the operand, k0 .. k0 + 127; rows >= rows_total read as zero.
  FH_DEVICE FH_INLINE void load(const uint8_t* base, int64_t stride_row, int64_t stride_k, int row0, int rows_total,
                                int64_t k0, bool vector, int tid) {
#pragma unroll
    for (int u = 0; u < kUnits; ++u) {
      const int piece = tid + u * kGemmThreads;
      const int row = row0 + piece / 8;
      const int64_t k = k0 + (piece % 8) * 16;
      uint4 w = make_uint4(0, 0, 0, 0);
      if (row < rows_total) {
        const uint8_t* p = base + static_cast<int64_t>(row) * stride_row + k * stride_k;
        if (vector) {
          w = load_word<CachePolicy::kDefault>(reinterpret_cast<const uint4*>(p));
        } else {
          uint32_t v[4];
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            v[j] = 0;
#pragma unroll
            for (int b = 0; b < 4; ++b) v[j] |= uint32_t{p[(4 * j + b) * stride_k]} << (8 * b);
          }
          w = make_uint4(v[0], v[1], v[2], v[3]);
        }
      }
      words[u] = w;
    }
  }

  FH_DEVICE FH_INLINE void store(uint8_t* lds, int tid) const {
#pragma unroll
    for (int u = 0; u < kUnits; ++u) {
      const int piece = tid + u * kGemmThreads;
      const int r = piece / 8;
      *reinterpret_cast<uint4*>(lds + lds_offset(r, (piece % 8) * 16)) = words[u];
    }
  }
};

template <int kRows>
struct TileCopy<kRows, false> {
  // Thread t: rows kW * (t % 8) + (0 .. kW-1), k = 4 * (t / 8) + (0..3): four kW-byte loads
  // along the rows, one per k, transposed into kW words of 4 consecutive k.
  static constexpr int kW = kRows / 8;
  static_assert(kW == 8 || kW == 16, "M/N-contiguous copy is written for 64- and 128-row tiles");
  static_assert((kGemmRowBytes / 4) * 8 == kGemmThreads, "one (row group, 4-k group) per thread");
  using Word = typename MemoryWord<kW>::type;
  uint32_t cols[4][kW / 4];  // cols[j][w]: rows 4w..4w+3 of k-column j

  FH_DEVICE FH_INLINE void load(const uint8_t* base, int64_t stride_row, int64_t stride_k, int row0, int rows_total,
                                int64_t k0, bool vector, int tid) {
    const int row = row0 + (tid % 8) * kW;
    const int64_t k = k0 + (tid / 8) * 4;
    const bool full = row + kW <= rows_total;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint8_t* p = base + static_cast<int64_t>(row) * stride_row + (k + j) * stride_k;
      if (vector && full) {
        const Word w = load_word<CachePolicy::kDefault>(reinterpret_cast<const Word*>(p));
        static_assert(sizeof(Word) == sizeof(cols[j]), "word size");
        __builtin_memcpy(cols[j], &w, sizeof w);
      } else {
#pragma unroll
        for (int w = 0; w < kW / 4; ++w) {
          uint32_t v = 0;
#pragma unroll
          for (int b = 0; b < 4; ++b) {
            const int e = 4 * w + b;
            if (row + e < rows_total) v |= uint32_t{p[static_cast<int64_t>(e) * stride_row]} << (8 * b);
          }
          cols[j][w] = v;
        }
      }
    }
  }

  FH_DEVICE FH_INLINE void store(uint8_t* lds, int tid) const {
    const int r0 = (tid % 8) * kW;
    const int kbyte = (tid / 8) * 4;
#pragma unroll
    for (int e = 0; e < kW; ++e) {
      const int w = e / 4, s = 8 * (e % 4);
      const uint32_t v = ((cols[0][w] >> s) & 0xffu) | (((cols[1][w] >> s) & 0xffu) << 8) |
                         (((cols[2][w] >> s) & 0xffu) << 16) | (((cols[3][w] >> s) & 0xffu) << 24);
      *reinterpret_cast<uint32_t*>(lds + lds_offset(r0 + e, kbyte)) = v;
    }
  }
};

template <typename OutT, int kBM, bool kAKContig, bool kBKContig>
__global__ void FH_LAUNCH_BOUNDS(kGemmThreads, kGemmMinBlocksPerCu) fp8_gemm_mfma_cdna3_kernel(Fp8GemmCdna3Args args) {
#if FH_HAS_MFMA_FP8
  using Mma = mma::MfmaF32_32x32x16_Fp8;
  constexpr int kWave = Mma::kWave;
  constexpr int kWavesM = kBM / 64;
  constexpr int kWavesN = (kGemmThreads / kWave) / kWavesM;
  constexpr int kWaveN = kGemmBlockN / kWavesN;  // columns per wave: 64 or 32
  constexpr int kMT = 64 / Mma::kM;               // MFMA tiles per wave along M (2)
  constexpr int kNT = kWaveN / Mma::kN;           // ... along N (2 or 1)
  constexpr int kChunks = kGemmBlockK / (2 * Mma::kK);  // 32-wide K chunks per K block (4)
  static_assert(kWavesM * kWavesN * kWave == kGemmThreads, "wave grid");

  __shared__ __attribute__((aligned(16))) uint8_t lds_a[kBM * kGemmRowBytes];
  __shared__ __attribute__((aligned(16))) uint8_t lds_b[kGemmBlockN * kGemmRowBytes];

  const int tid = threadIdx.x;
  const int lane = tid % kWave;
  const int wave = tid / kWave;
  const int wm = wave / kWavesN, wn = wave % kWavesN;

  // Tile of this block, by the matrix-core kernels' shared rasterisation (bands of kGemmGroupM
  // tile-rows, down the band first, so that the blocks resident together share A rows and B
  // columns in L2): one block a tile here.
  const int k_blocks = args.k / kGemmBlockK;
  const TileCoord tile = TileScheduler<kGemmGroupM>{args.tiles_m, args.tiles_n, k_blocks}.tile(blockIdx.x);
  const int m0 = tile.m_tile * kBM;
  const int n0 = tile.n_tile * kGemmBlockN;
  const int nb = tile.n_tile;  // the b_scale row of the whole tile

  TileCopy<kBM, kAKContig> copy_a;
  TileCopy<kGemmBlockN, kBKContig> copy_b;
  const auto load_tiles = [&](int kb, int tid_now) {
    const int64_t k0 = static_cast<int64_t>(kb) * kGemmBlockK;
    copy_a.load(args.a, args.a_stride_m, args.a_stride_k, m0, args.m, k0, args.a_vector, tid_now);
    copy_b.load(args.b, args.b_stride_n, args.b_stride_k, n0, args.n, k0, args.b_vector, tid_now);
  };

  typename Mma::FragC acc[kMT][kNT];
#pragma unroll
  for (int i = 0; i < kMT; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int r = 0; r < Mma::kCPerLane; ++r) acc[i][j][r] = 0.0f;

  // First row of the wave's 64 rows of the tile.
  const int lane_row0 = m0 + wm * 64;

  if (k_blocks > 0) {  // k == 0: nothing to read, the output is written as zeros
    load_tiles(0, tid);
    copy_a.store(lds_a, tid);
    copy_b.store(lds_b, tid);
    __syncthreads();
  }

  for (int kb = 0; kb < k_blocks; ++kb) {
    const bool has_next = kb + 1 < k_blocks;
    const int tid_k = opaque_vgpr(tid);  // see opaque_vgpr
    const int lane_k = tid_k % kWave;
    if (has_next) load_tiles(kb + 1, tid_k);

    // This K block's scales. Lane l of a wave reads a_scale of the wave's row l (one coalesced
    // load when a_scale is M-contiguous, issued here so it lands during the MFMAs); the rows
    // each accumulator register needs are then fetched from the owning lane (ds_bpermute, no
    // LDS allocated). Loading the 32 per-register scales directly would hold 32 values and
    // their 64-bit addresses across the MFMAs: the kernel spilled that way.
    const float sb = args.b_scale[nb * args.b_scale_stride_nb + static_cast<int64_t>(kb) * args.b_scale_stride_kb];
    const int scale_row = lane_row0 + lane_k;
    const float sa_own = scale_row < args.m ? args.a_scale[static_cast<int64_t>(scale_row) * args.a_scale_stride_m +
                                                           static_cast<int64_t>(kb) * args.a_scale_stride_kb]
                                            : 0.0f;

    // One MFMA tile-row (i) at a time: its partial sums over the K block (kNT tiles), then their
    // promotion. Holding the partials of all kMT x kNT tiles at once as well as the accumulators
    // and the next tiles' registers overflowed the 256 registers of 2 waves per SIMD; the price
    // is that B's fragments are read from LDS kMT times.
#pragma unroll
    for (int i = 0; i < kMT; ++i) {
      typename Mma::FragC part[kNT];
#pragma unroll
      for (int j = 0; j < kNT; ++j)
#pragma unroll
        for (int r = 0; r < Mma::kCPerLane; ++r) part[j][r] = 0.0f;

#pragma unroll
      for (int q = 0; q < kChunks; ++q) {
        // The lane's k group of the instruction (a_coord(lane, i).col / 8) picks the 16-byte half.
        const int byte_in_row = q * 2 * Mma::kK + (Mma::a_coord(lane_k, 0).col / Mma::kAPerLane) * 16;
        const int ra = wm * 64 + i * Mma::kM + Mma::a_coord(lane_k, 0).row;
        const uint4 fa = *reinterpret_cast<const uint4*>(lds_a + lds_offset(ra, byte_in_row));
        uint4 fb[kNT];
#pragma unroll
        for (int j = 0; j < kNT; ++j) {
          const int rb = wn * kWaveN + j * Mma::kN + Mma::b_coord(lane_k, 0).col;
          fb[j] = *reinterpret_cast<const uint4*>(lds_b + lds_offset(rb, byte_in_row));
        }
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int j = 0; j < kNT; ++j) {
            const uint64_t a8 = h == 0 ? (uint64_t{fa.y} << 32 | fa.x) : (uint64_t{fa.w} << 32 | fa.z);
            const uint64_t b8 = h == 0 ? (uint64_t{fb[j].y} << 32 | fb[j].x) : (uint64_t{fb[j].w} << 32 | fb[j].z);
            Mma::mma(part[j], static_cast<typename Mma::FragA>(a8), static_cast<typename Mma::FragB>(b8));
          }
      }

      // Promotion of the partial sums with the block's scales.
#pragma unroll
      for (int r = 0; r < Mma::kCPerLane; ++r) {
        const float s = shfl<kWave>(sa_own, i * Mma::kM + Mma::c_coord(lane_k, r).row) * sb;
#pragma unroll
        for (int j = 0; j < kNT; ++j) acc[i][j][r] = __builtin_fmaf(part[j][r], s, acc[i][j][r]);
      }
    }

    if (has_next) {
      __syncthreads();  // every wave has read this block's tiles
      copy_a.store(lds_a, tid_k);
      copy_b.store(lds_b, tid_k);
      __syncthreads();
    }
  }

  // Epilogue: lane holds, per MFMA tile, 16 rows of one column; stores of a register are 32
  // consecutive columns of 2 rows.
  OutT* out = static_cast<OutT*>(args.out);
#pragma unroll
  for (int i = 0; i < kMT; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int r = 0; r < Mma::kCPerLane; ++r) {
        const mma::MmaCoord c = Mma::c_coord(lane, r);
        const int row = lane_row0 + i * Mma::kM + c.row;
        const int col = n0 + wn * kWaveN + j * Mma::kN + c.col;
        if (row < args.m && col < args.n)
          out[static_cast<int64_t>(row) * args.out_stride_m + col] = from_float<OutT>(acc[i][j][r]);
      }
#else
  // No fp8 MFMA on this target: the launcher refuses such devices before launching.
  (void)args;
  __builtin_trap();
#endif
}

}  // namespace flashhip::kernels::cdna3
