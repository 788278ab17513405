// Blockwise-scaled fp8 GEMM main loop for Hopper (sm_90a): TMA into a ring of shared-memory
// stages, a producer warpgroup (one thread issuing the operand copies, one warp gathering each
// stage's scales with cp.async) and one or two consumer warpgroups, fp8 wgmma, and the scales
// applied per 128-wide K block by promoting each block's wgmma sum into fp32 registers; optionally
// in 2-CTA clusters whose CTAs share one operand's tile through TMA multicast.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "flashhip/kernels/common/tile_scheduler.cuh"
#include "flashhip/kernels/gemm/fp8_gemm.h"
#include "flashhip/kernels/gemm/fp8_gemm_plan_sm90.h"
#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/cluster_sm90.h"
#include "flashhip/platform/grid_dependency.h"
#include "flashhip/platform/memory/cp_async_sm80.h"
#include "flashhip/platform/memory/gpu_flag.h"
#include "flashhip/platform/memory/tma_sm90.h"
#include "flashhip/platform/mma/wgmma_sm90.h"

namespace flashhip::kernels::sm90_gemm {

using Mma = sm90::WgmmaF32E4M3M64N128K32;

inline constexpr int kWarpgroup = sm90::kWarpgroupThreads;
static_assert(Mma::kM == kSubtileRows, "a consumer's subtile is one wgmma's M");
static_assert(kBlockK % Mma::kK == 0, "a K block is a whole number of wgmma steps");

// What the kernel writes and how the scales are laid out (all strides in elements).
struct KernelArgs {
  void* out = nullptr;  // [m, n] OutT; with split-K, [split_k, m, n] fp32 partials
  int64_t out_stride_m = 0;
  int64_t out_stride_split = 0;
  const float* a_scale = nullptr;  // [m, k_blocks] at the strides below (M-major for long K loops)
  int64_t a_scale_stride_m = 0, a_scale_stride_kb = 0;
  const float* b_scale = nullptr;  // [ceil(n / 128), k_blocks]
  int64_t b_scale_stride_nb = 0, b_scale_stride_kb = 0;
  int m = 0, n = 0;
  const uint8_t* b_rows = nullptr;  // the decode kernel's weights for its cp.async copy: [n, k] fp8
  int64_t b_row_stride = 0;         // bytes between rows of b_rows (a multiple of 16)
  bool paired_stores = true;  // out rows are 2-element aligned: store column pairs at once
  bool vector_stores = true;  // out and its rows are 16-byte aligned: the staged epilogue
  bool a_scale_columns_aligned = false;  // a_scale M-major, every K block's column 16-byte aligned
  TileScheduler<kGroupM> scheduler;
  // Stream-K (scheduler.stream_k_ctas > 0): each CTA's helper piece, as its consumer threads hold
  // it ([ctas][consumers][subtiles][accumulators / 4][128 threads] float4), and its ready flags
  // ([ctas][consumers], zero at launch).
  float* stream_k_partials = nullptr;
  int* stream_k_flags = nullptr;
};

// The epilogue stages a consumer warpgroup's [64 x 128] OutT subtile in shared memory one
// [64 x 64] half at a time, so that global stores are whole 16-byte vectors of consecutive
// columns instead of the accumulator layout's 4-byte pieces spread over 8 rows (half a subtile
// keeps the staging small enough for the ring's scale slots). Units of 8*sizeof(OutT) bytes (16
// for 16-bit types, 32 for fp32) are XOR-swizzled by row % 8: the accumulator writes (8 rows x 4
// lanes per chunk) and the 16-byte row reads then both hit 32 distinct banks.
template <typename OutT>
struct EpilogueTile {
  static constexpr int kRows = Mma::kM;
  static constexpr int kCols = kBlockN / 2;
  static constexpr int kRowBytes = kCols * static_cast<int>(sizeof(OutT));
  static constexpr int kUnitBytes = 8 * static_cast<int>(sizeof(OutT));
  static constexpr int kBytes = kRows * kRowBytes;
  static constexpr int kChunksPerRow = kRowBytes / 16;  // 16-byte vectors of a row
  static_assert(kRowBytes / kUnitBytes >= 8, "a row holds the 8 units the swizzle permutes");
  FH_HOST_DEVICE static constexpr int offset(int row, int byte_in_row) {
    return row * kRowBytes + (((byte_in_row / kUnitBytes) ^ (row % 8)) * kUnitBytes) + byte_in_row % kUnitBytes;
  }
};

// kClusterM (kClusterN) = 2: the kernel runs in 2-CTA clusters of M- (N-) neighbouring tiles,
// which share their B (A) tile: each CTA copies half of its rows into both CTAs' shared memory.
// kTileN: kBlockN, or kWideBlockN (128 rows, no clusters; the epilogue stores from the registers).
template <int kBlockM, int kStages, typename OutT, int kClusterM = 1, int kClusterN = 1, int kTileN = kBlockN>
struct Config {
  using Mma = sm90::WgmmaF32E4M3M64K32<kTileN>;
  static constexpr bool kOneScaleBlock = kTileN == kBlockN;  // else two b_scale blocks, no staged epilogue
  static_assert(kOneScaleBlock || (kTileN == kWideBlockN && kBlockM == 128 && kClusterM * kClusterN == 1),
                "wide tiles are 128 rows, without clusters");
  static constexpr int kCluster = kClusterM * kClusterN;
  static_assert(kCluster <= 2, "at most one operand is shared, by two CTAs");
  static constexpr int kABoxRows = kBlockM / kClusterN;  // rows of A (B) each CTA copies a stage
  static constexpr int kBBoxRows = kTileN / kClusterM;
  static_assert(kABoxRows % 8 == 0 && kBBoxRows % 8 == 0, "a copied part is whole 1024-byte swizzle atoms");
  static constexpr int kConsumers = main_loop_consumers(kBlockM);
  static constexpr int kSubtiles = kBlockM / (Mma::kM * kConsumers);  // 64-row subtiles per consumer
  static constexpr int kThreads = kWarpgroup * (1 + kConsumers);
  static constexpr int kABytes = kBlockM * kBlockK;  // fp8: one byte an element
  static constexpr int kBBytes = kTileN * kBlockK;
  static constexpr int kStageBytes = kABytes + kBBytes;
  static constexpr int kScaleFloats = scale_slot_floats(kBlockM);
  static constexpr int kEpilogueBytes = kOneScaleBlock ? kConsumers * EpilogueTile<OutT>::kBytes : 0;
  // Operand stages, scale slots, the epilogue tiles, then the full/empty barriers; 1 KB slack to
  // align the ring to the swizzle atom.
  static constexpr int kSmemBytes =
      kStages * (kStageBytes + kScaleFloats * 4) + kEpilogueBytes + 2 * kStages * 8 + 1024;
  // Producers keep a few registers; consumers hold one wgmma sum (64 registers for 128 columns)
  // and an fp32 accumulator of the same size per subtile.
  static constexpr int kProducerRegisters = 40;
  static constexpr int kConsumerRegisters = kConsumers == 2 ? 232 : 240;
  static_assert(kBlockM == 64 || kBlockM == 128 || kBlockM == 256, "64, 128 or 256 rows a tile");
  static_assert(kSubtiles * Mma::kAccumulators + Mma::kAccumulators + 32 <= kConsumerRegisters,
                "the accumulators leave room for addresses and scales");
  static_assert(kStageBytes % 1024 == 0, "every stage starts on a 1024-byte swizzle atom");
  static_assert(kSmemBytes <= kMaxSmemBytes, "the ring fits in a block's 227 KB of shared memory");
  // setmaxnreg only moves registers within the block's launch allocation (65536 / kThreads per
  // thread, rounded down to 8): asking for more makes the consumers' claim wait forever.
  static constexpr int kLaunchRegisters = 65536 / kThreads / 8 * 8;
  static_assert(kProducerRegisters * kWarpgroup + kConsumerRegisters * kWarpgroup * kConsumers <=
                    kLaunchRegisters * kThreads,
                "the warpgroups' budgets fit in the block's launch allocation");
};

// ---- the ring's barriers, set up by thread 0 before any role starts ----
// full[s]: the producer's expect_tx arrival plus the stage's bytes (and, in the main kernel, one
// arrival per scale-loading lane once its copies have landed); empty[s]: one arrival per consumer
// warp once its wgmmas and scale reads are done with the stage.
// In a cluster of cluster_ctas, every CTA's consumer warps arrive on empty[s] of each CTA that
// copies into their stage, and the barriers are initialised cluster-wide before anyone copies.
FH_DEVICE FH_INLINE void init_ring(uint64_t* full, uint64_t* empty, int stages, int consumer_warpgroups,
                                   const CUtensorMap* map_a, const CUtensorMap* map_b, int full_arrivals = 1,
                                   int cluster_ctas = 1) {
  if (threadIdx.x == 0) {
    sm90::prefetch_tensor_map(map_a);
    sm90::prefetch_tensor_map(map_b);
    for (int s = 0; s < stages; ++s) {
      sm90::mbar_init(&full[s], full_arrivals);
      sm90::mbar_init(&empty[s], consumer_warpgroups * sm90::kWarpgroupWarps * cluster_ctas);
    }
    sm90::fence_barrier_init();
  }
  if (cluster_ctas > 1) {
    sm90::cluster_sync();
  } else {
    __syncthreads();
  }
  // Launched as a dependent: the set-up above overlapped the previous kernel's tail; its outputs
  // (operands packed into the workspace, scales, a quantised A) are complete from here on.
  grid_dependency_wait();
  grid_dependents_launch();
}

// f(integral_constant<int, 0>{}), ..., f(integral_constant<int, N - 1>{}): a loop whose index
// is a compile-time constant in the body, so that register arrays it indexes stay in registers
// (a #pragma unroll left to the compiler's judgement put them on the stack).
template <typename F, int... I>
FH_DEVICE FH_INLINE void unrolled_impl(F& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, typename F>
FH_DEVICE FH_INLINE void unrolled(F&& f) {
  unrolled_impl(f, std::make_integer_sequence<int, N>{});
}

// ---- epilogue: one thread's accumulators into out (bounds-checked) ----
template <typename OutT>
FH_DEVICE FH_INLINE void store_pair(OutT* p, float x, float y, bool paired, bool second_ok) {
  if constexpr (sizeof(OutT) == 4) {
    if (paired && second_ok) {
      *reinterpret_cast<float2*>(p) = make_float2(x, y);
    } else {
      p[0] = x;
      if (second_ok) p[1] = y;
    }
  } else {
    const OutT lo = from_float<OutT>(x), hi = from_float<OutT>(y);
    if (paired && second_ok) {
      *reinterpret_cast<uint32_t*>(p) = static_cast<uint32_t>(lo.bits) | (static_cast<uint32_t>(hi.bits) << 16);
    } else {
      p[0] = lo;
      if (second_ok) p[1] = hi;
    }
  }
}

// kScaleColumnsAligned is KernelArgs::a_scale_columns_aligned, as a constant: the launcher picks
// the instantiation. (Taken at run time, the second copy loop in the scale warp made the kernel
// 5-8% slower at 8192^3 and 1024x1536x7168 on the H200 with the aligned path running.)
template <int kBlockM, int kStages, typename OutT, int kClusterM, int kClusterN, int kTileN, bool kScaleColumnsAligned>
__global__ void FH_LAUNCH_BOUNDS((Config<kBlockM, kStages, OutT, kClusterM, kClusterN, kTileN>::kThreads), 1)
    fp8_gemm_wgmma_kernel(const __grid_constant__ CUtensorMap map_a,  // a [m, k] fp8, K-contiguous; box kABoxRows x 128
                          const __grid_constant__ CUtensorMap map_b,  // b [n, k] fp8, K-contiguous; box kBBoxRows x 128
                          const KernelArgs args) {
#if FH_ARCH_SM90A
  using Cfg = Config<kBlockM, kStages, OutT, kClusterM, kClusterN, kTileN>;
  using Mma = typename Cfg::Mma;
  constexpr int kCluster = Cfg::kCluster;
  using Epi = EpilogueTile<OutT>;
  constexpr int kSub = Cfg::kSubtiles;
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* smem_a = smem;                           // [kStages][kBlockM][128] fp8, swizzled
  uint8_t* smem_b = smem + kStages * Cfg::kABytes;  // [kStages][kTileN][128] fp8, swizzled
  float* smem_scales = reinterpret_cast<float*>(smem + kStages * Cfg::kStageBytes);  // [kStages][kScaleFloats]
  uint8_t* smem_epi = reinterpret_cast<uint8_t*>(smem_scales + kStages * Cfg::kScaleFloats);  // [kConsumers][64][64] OutT (wide tiles)
  uint64_t* full = reinterpret_cast<uint64_t*>(smem_epi + Cfg::kEpilogueBytes);  // [kStages]
  uint64_t* empty = full + kStages;                                              // [kStages]

  const int warpgroup = threadIdx.x / kWarpgroup;
  const int wg_thread = threadIdx.x % kWarpgroup;
  const int lane = wg_thread % sm90::kWarpThreads;
  const auto& sched = args.scheduler;
  // The scheduler hands out work to clusters (single CTAs without multicast); a cluster's piece
  // covers kClusterM x kClusterN neighbouring tiles, this CTA's by its rank.
  const int rank = kCluster > 1 ? static_cast<int>(sm90::cluster_cta_rank()) : 0;
  const int cluster_id = blockIdx.x / kCluster, clusters = gridDim.x / kCluster;
  auto next_piece = [&](int i, TileCoord* c) {
    return sched.cluster_work(cluster_id, clusters, rank, kClusterM, kClusterN, i, c);
  };

  // full[s] completes on the operands' bytes (the peer's multicast half included), the TMA
  // thread's arrival and one arrival per lane of the scale warp.
  init_ring(full, empty, kStages, Cfg::kConsumers, &map_a, &map_b, 1 + sm90::kWarpThreads, kCluster);

  if (warpgroup == 0) {
    sm90::release_registers<Cfg::kProducerRegisters>();
    const int warp = wg_thread / sm90::kWarpThreads;
    if (warp == 0 && lane == 0) {
      // ---- producer: one thread streams every unit's K blocks into the ring ----
      int stage = 0;
      uint32_t phase = 0;
      TileCoord c;
      // A shared tile: this CTA copies rows [rank * box, (rank + 1) * box) of it into both CTAs
      // (empty[stage] counts both CTAs' consumers, so both have freed the stage).
      constexpr uint16_t kAllCtas = (1u << kCluster) - 1;
      const int a_part = kClusterN > 1 ? rank : 0, b_part = kClusterM > 1 ? rank : 0;
      // A box wholly past the edge (a cluster's second tile, or the second half of a 64-column
      // last tile) is moved back over the last rows: no copy is wholly out of bounds, and what it
      // brings feeds only outputs that are never stored.
      auto inside = [](int row, int rows, int box) { return row < rows ? row : max(rows - box, 0); };
      for (int i = 0; next_piece(i, &c); ++i) {
        const int a_row = inside(c.m_tile * kBlockM + a_part * Cfg::kABoxRows, args.m, Cfg::kABoxRows);
        const int b_row = inside(c.n_tile * kTileN + b_part * Cfg::kBBoxRows, args.n, Cfg::kBBoxRows);
        for (int kb = c.kb_begin; kb < c.kb_end; ++kb) {
          sm90::mbar_wait(&empty[stage], phase ^ 1);
          sm90::mbar_arrive_expect_tx(&full[stage], Cfg::kStageBytes);
          uint8_t* a_dst = smem_a + stage * Cfg::kABytes + a_part * Cfg::kABoxRows * kBlockK;
          uint8_t* b_dst = smem_b + stage * Cfg::kBBytes + b_part * Cfg::kBBoxRows * kBlockK;
          if constexpr (kClusterN > 1) {
            sm90::tma_load_2d_multicast(a_dst, &map_a, kb * kBlockK, a_row, &full[stage], kAllCtas);
          } else {
            sm90::tma_load_2d(a_dst, &map_a, kb * kBlockK, a_row, &full[stage]);
          }
          if constexpr (kClusterM > 1) {
            sm90::tma_load_2d_multicast(b_dst, &map_b, kb * kBlockK, b_row, &full[stage], kAllCtas);
          } else {
            sm90::tma_load_2d(b_dst, &map_b, kb * kBlockK, b_row, &full[stage]);
          }
          if (++stage == kStages) stage = 0, phase ^= 1;
        }
      }
    } else if (warp == 1) {
      // ---- scales: a warp copies each stage's a_scale column and b_scale with cp.async ----
      int stage = 0;
      uint32_t phase = 0;
      TileCoord c;
      // kScaleColumnsAligned (M-major, 16-byte aligned K-block columns: what the launcher
      // passes unless the K loop is short): a lane copies 4 rows at once, one contiguous run a
      // stage (slots and m0 are 16-byte aligned); otherwise one row a lane. Rows past m read row
      // m - 1: finite, and their products are never stored.
      // b_scale blocks of the tile's first and (wide tiles) last column; a cluster's second
      // tile may lie past n.
      const int last_n_block = (args.n - 1) / kBlockN;
      auto b_scale_column = [&](int col) {
        return args.b_scale + static_cast<int64_t>(min(col / kBlockN, last_n_block)) * args.b_scale_stride_nb;
      };
      for (int i = 0; next_piece(i, &c); ++i) {
        const int m0 = c.m_tile * kBlockM;
        const float* b_col = b_scale_column(c.n_tile * kTileN + (Cfg::kOneScaleBlock || lane == 0 ? 0 : kTileN - 1));
        for (int kb = c.kb_begin; kb < c.kb_end; ++kb) {
          sm90::mbar_wait(&empty[stage], phase ^ 1);
          const uint32_t slot = sm90::smem_addr(smem_scales + stage * Cfg::kScaleFloats);
          if constexpr (kScaleColumnsAligned) {
            const float* column = args.a_scale + kb * args.a_scale_stride_kb;
#pragma unroll 1
            for (int r = 4 * lane; r < kBlockM; r += 4 * sm90::kWarpThreads) {  // a loop: the producer has 40 registers
              if (m0 + r + 4 <= args.m) {
                sm80::cp_async_16(slot + 4 * r, column + m0 + r);
              } else {
                for (int e = 0; e < 4; ++e) sm80::cp_async_4(slot + 4 * (r + e), column + min(m0 + r + e, args.m - 1));
              }
            }
          } else {
#pragma unroll 1
            for (int r = lane; r < kBlockM; r += sm90::kWarpThreads) {
              const int64_t row = min(m0 + r, args.m - 1);
              sm80::cp_async_4(slot + 4 * r, args.a_scale + row * args.a_scale_stride_m + kb * args.a_scale_stride_kb);
            }
          }
          if (lane < (Cfg::kOneScaleBlock ? 1 : 2)) sm80::cp_async_4(slot + 4 * (kBlockM + lane), b_col + kb * args.b_scale_stride_kb);
          sm80::cp_async_arrive_on(sm90::smem_addr(&full[stage]));
          if (++stage == kStages) stage = 0, phase ^= 1;
        }
      }
    }
  } else {
    // ---- consumers: warpgroup w owns the tile's 64-row subtiles w-1, w-1 + kConsumers, ... ----
    sm90::claim_registers<Cfg::kConsumerRegisters>();
    const int consumer = warpgroup - 1;
    const int acc_row0 = Mma::acc_row(wg_thread, 0);  // the thread's rows acc_row0 and acc_row0 + 8 of a subtile
    auto subtile_row0 = [&](int j) { return (j * Cfg::kConsumers + consumer) * Mma::kM; };  // within the tile
    uint8_t* epi = smem_epi + consumer * Epi::kBytes;
    const int epi_barrier = 1 + consumer;  // this warpgroup's own hardware barrier

    int stage = 0;
    uint32_t phase = 0;
    TileCoord c;
    for (int piece = 0; next_piece(piece, &c); ++piece) {
      const int m0 = c.m_tile * kBlockM, n0 = c.n_tile * kTileN;
      // Columns of the tile in its first b_scale block (a wide tile's 8-column chunks past them
      // take the second block's scale; n0 % 64 == 0, so no chunk straddles).
      const int first_block_cols = Cfg::kOneScaleBlock ? kTileN : kBlockN - n0 % kBlockN;

      float acc[kSub][Mma::kAccumulators];
#pragma unroll
      for (int j = 0; j < kSub; ++j)
#pragma unroll
        for (int i = 0; i < Mma::kAccumulators; ++i) acc[j][i] = 0.f;

      // One block's sum at a time: wait for its wgmmas, scale it into acc, then the next subtile;
      // the stage is freed after the last. The scales are read from the stage's slot while the
      // wgmmas run. (Tried and not kept: two sums in flight, which made ptxas serialise the
      // wgmmas (C7514); two shorter accumulation chains per block, 15% slower for a few elements
      // fewer outside the Hopper bound.) The other consumer warpgroup's wgmmas fill this one's
      // scaling time.
      for (int kb = c.kb_begin; kb < c.kb_end; ++kb) {
        sm90::mbar_wait(&full[stage], phase);
        const float* slot = smem_scales + stage * Cfg::kScaleFloats;
        unrolled<kSub>([&](auto sub) {
          constexpr int j = decltype(sub)::value;
          const uint32_t a_addr = sm90::smem_addr(smem_a + stage * Cfg::kABytes + subtile_row0(j) * kBlockK);
          const uint32_t b_addr = sm90::smem_addr(smem_b + stage * Cfg::kBBytes);
          float part[Mma::kAccumulators];
          sm90::wgmma_fence();
#pragma unroll
          for (int kk = 0; kk < kBlockK / Mma::kK; ++kk) {
            Mma::mma(part, sm90::smem_desc_k_major_sw128(a_addr + kk * Mma::kK),
                     sm90::smem_desc_k_major_sw128(b_addr + kk * Mma::kK), kk > 0);
          }
          sm90::wgmma_commit();
          const float sb = slot[kBlockM], sb_next = Cfg::kOneScaleBlock ? sb : slot[kBlockM + 1];
          const float a0 = slot[subtile_row0(j) + acc_row0], a1 = slot[subtile_row0(j) + acc_row0 + 8];
          const float s0 = a0 * sb, s1 = a1 * sb;
          const float s0_next = a0 * sb_next, s1_next = a1 * sb_next;
          sm90::wgmma_wait<0>();
          sm90::fence_registers(part);
          if (j == kSub - 1) {
            // Every lane's scale reads are ordered before its warp's one arrival (lane 0's
            // release covers only its own accesses without this).
            __syncwarp();
            if (lane == 0) {  // the stage may be refilled (by both CTAs of a cluster)
              if constexpr (kCluster > 1) {
#pragma unroll
                for (int r = 0; r < kCluster; ++r) sm90::mbar_arrive_cluster(&empty[stage], r);
              } else {
                sm90::mbar_arrive(&empty[stage]);
              }
            }
            if (++stage == kStages) stage = 0, phase ^= 1;
          }
          // Promotion: the block's sum, scaled, into fp32 (wgmma's own fp8 accumulation is narrower).
#pragma unroll
          for (int i = 0; i < Mma::kAccumulators; ++i) {
            const bool first_block = Cfg::kOneScaleBlock || 8 * (i / 4) < first_block_cols;
            const float s = (i & 2) ? (first_block ? s1 : s1_next) : (first_block ? s0 : s0_next);
            acc[j][i] = fmaf(part[i], s, acc[j][i]);
          }
        });
      }

      // ---- stream-K: a helper piece leaves its sum for the tile's owner, who adds it ----
      constexpr int kQuads = Mma::kAccumulators / 4;
      auto stream_k_slot = [&](int cta) {
        return reinterpret_cast<float4*>(args.stream_k_partials) +
               (static_cast<int64_t>(cta) * Cfg::kConsumers + consumer) * (kSub * kQuads * kWarpgroup) + wg_thread;
      };
      // Stream-K's parties are clusters; CTA `rank` of one adds the partials of the same rank.
      auto cta_of = [&](int cluster) { return cluster * kCluster + rank; };
      if (sched.is_helper(c)) {
        float4* slot = stream_k_slot(cta_of(cluster_id));
        unrolled<kSub>([&](auto sub) {
          constexpr int j = decltype(sub)::value;
#pragma unroll
          for (int q = 0; q < kQuads; ++q)
            slot[(j * kQuads + q) * kWarpgroup] =
                make_float4(acc[j][4 * q], acc[j][4 * q + 1], acc[j][4 * q + 2], acc[j][4 * q + 3]);
        });
        __threadfence();
        sm90::warpgroup_sync(epi_barrier);  // the warpgroup's partial is written before the flag rises
        if (wg_thread == 0) flag_store_release(args.stream_k_flags + cta_of(cluster_id) * Cfg::kConsumers + consumer, 1);
        continue;
      }
      if (sched.waits_for_helpers(c)) {  // in CTA order: the sum is the same every run
        for (int helper = cluster_id + 1, last = sched.last_helper(c); helper <= last; ++helper) {
          if (wg_thread == 0) flag_wait_equal(args.stream_k_flags + cta_of(helper) * Cfg::kConsumers + consumer, 1);
          sm90::warpgroup_sync(epi_barrier);  // the acquire above orders the whole warpgroup's reads
          const float4* slot = stream_k_slot(cta_of(helper));
          unrolled<kSub>([&](auto sub) {
            constexpr int j = decltype(sub)::value;
#pragma unroll
            for (int q = 0; q < kQuads; ++q) {
              const float4 v = __ldcg(slot + (j * kQuads + q) * kWarpgroup);
              acc[j][4 * q] += v.x, acc[j][4 * q + 1] += v.y, acc[j][4 * q + 2] += v.z, acc[j][4 * q + 3] += v.w;
            }
          });
        }
      }

      // ---- epilogue, one subtile at a time ----
      OutT* out = static_cast<OutT*>(args.out) + c.split * args.out_stride_split;
      unrolled<kSub>([&](auto sub) {
        constexpr int j = decltype(sub)::value;
        const int tile_row0 = m0 + subtile_row0(j);
        if (Cfg::kOneScaleBlock && args.vector_stores) {
          if constexpr (Cfg::kOneScaleBlock) {  // (wide tiles have no staging tile)
            unrolled<2>([&](auto half_index) {
              constexpr int half = decltype(half_index)::value;
              sm90::warpgroup_sync(epi_barrier);  // every thread has read the previous half out of epi
              // Registers i with 8 * (i / 4) in this half's 64 columns.
#pragma unroll
              for (int i = half * Mma::kAccumulators / 2; i < (half + 1) * Mma::kAccumulators / 2; i += 2) {
                const int r = Mma::acc_row(wg_thread, i), col = Mma::acc_col(wg_thread, i) - half * Epi::kCols;
                uint8_t* p = epi + Epi::offset(r, col * static_cast<int>(sizeof(OutT)));
                if constexpr (sizeof(OutT) == 4) {
                  *reinterpret_cast<float2*>(p) = make_float2(acc[j][i], acc[j][i + 1]);
                } else {
                  const OutT lo = from_float<OutT>(acc[j][i]), hi = from_float<OutT>(acc[j][i + 1]);
                  *reinterpret_cast<uint32_t*>(p) = static_cast<uint32_t>(lo.bits) | (static_cast<uint32_t>(hi.bits) << 16);
                }
              }
              sm90::warpgroup_sync(epi_barrier);  // the half is whole in epi
              constexpr int kChunkElems = 16 / static_cast<int>(sizeof(OutT));
#pragma unroll
              for (int idx = wg_thread; idx < Mma::kM * Epi::kChunksPerRow; idx += kWarpgroup) {
                const int r = idx / Epi::kChunksPerRow, q = idx % Epi::kChunksPerRow;
                const int row = tile_row0 + r, col = n0 + half * Epi::kCols + q * kChunkElems;
                if (row < args.m && col < args.n) {
                  const uint4 v = *reinterpret_cast<const uint4*>(epi + Epi::offset(r, q * 16));
                  *reinterpret_cast<uint4*>(out + static_cast<int64_t>(row) * args.out_stride_m + col) = v;
                }
              }
            });
          }
        } else {  // wide tiles, or rows not 16-byte aligned: straight from the accumulators
#pragma unroll
          for (int i = 0; i < Mma::kAccumulators; i += 2) {
            const int row = tile_row0 + Mma::acc_row(wg_thread, i);
            const int col = n0 + Mma::acc_col(wg_thread, i);
            if (row < args.m && col < args.n) {
              store_pair(out + static_cast<int64_t>(row) * args.out_stride_m + col, acc[j][i], acc[j][i + 1],
                         args.paired_stores, col + 1 < args.n);
            }
          }
        }
      });
    }
  }
  // A CTA's shared memory must outlive its peer's last arrivals on its empty barriers.
  if constexpr (kCluster > 1) sm90::cluster_sync();
#endif  // FH_ARCH_SM90A
}


// ---- decode: the same product with A and B swapped (out^T = b * a^T) ----
// Hardware barrier of the decode kernel's two consumer warpgroups before the cluster split's sums.
inline constexpr int kSwapReduceBarrier = 1;

// The decode kernel's cluster split: consumer `consumer`'s accumulator i of thread t, in the
// CTA's shared memory ([consumers][kSwapMaxAccumulators][128 threads] floats at the ring's start).
inline constexpr int kSwapMaxAccumulators = 32;  // m64n64: the widest decode wgmma
FH_DEVICE FH_INLINE float* swap_cluster_sum_slot(uint8_t* smem, int consumer, int i, int thread) {
  return reinterpret_cast<float*>(smem) + (consumer * kSwapMaxAccumulators + i) * kWarpgroup + thread;
}

// Stores the decode kernel's accumulator i of thread t (one weight row, one token), bounds-checked,
// at element offset `base` of args.out (split-K: the split's partials).
template <typename SwapMma, typename OutT>
FH_DEVICE FH_INLINE void swap_store(const KernelArgs& args, int64_t base, int m0, int n0, int consumer, int thread, int i,
                                    float value) {
  const int n = n0 + consumer * SwapMma::kM + SwapMma::acc_row(thread, i);
  const int tok = m0 + SwapMma::acc_col(thread, i);
  if (tok < args.m && n < args.n) {
    OutT* out = static_cast<OutT*>(args.out) + base;
    if constexpr (sizeof(OutT) == 4) {
      out[static_cast<int64_t>(tok) * args.out_stride_m + n] = value;
    } else {
      out[static_cast<int64_t>(tok) * args.out_stride_m + n] = from_float<OutT>(value);
    }
  }
}
// For M <= 64 a 64-row tile would spend tensor time on zero rows: here each wgmma's M is 64 rows
// of weights and its N the kTokens tokens, so a tile is 128 weight rows (one b_scale block, two
// consumer warpgroups) by kTokens tokens, and the kernel is bound by streaming the weights.
// A ring stage holds kBlocks consecutive K blocks, so each weight row is fetched kBlocks * 128
// contiguous bytes at a time.
template <int kTokens, int kStages, int kBlocks>
struct SwapConfig {
  static constexpr int kConsumers = 2;
  static constexpr int kThreads = kWarpgroup * (1 + kConsumers);
  static constexpr int kWBlockBytes = kBlockN * kBlockK;  // weights [128][128] of one K block
  static constexpr int kTBlockBytes = kTokens * kBlockK;  // tokens [kTokens][128] of one K block
  static constexpr int kWBytes = kBlocks * kWBlockBytes;
  static constexpr int kTBytes = kBlocks * kTBlockBytes;
  static constexpr int kStageBytes = kWBytes + kTBytes;
  // A stage's scales: for each of its K blocks the kTokens a_scale values, then the b_scale, padded.
  static constexpr int kBlockScaleFloats = kTokens + 4;
  static constexpr int kScaleFloats = kBlocks * kBlockScaleFloats;
  static constexpr int kSmemBytes = kStages * (kStageBytes + kScaleFloats * 4) + 2 * kStages * 8 + 1024;
  static_assert(kTokens % 8 == 0 && kTokens <= 64, "tokens come in whole 8-row core matrices");
  static_assert(kTBytes % 1024 == 0 && kWBytes % 1024 == 0, "every tile starts on a 1024-byte swizzle atom");
  static_assert(kSmemBytes <= kMaxSmemBytes, "the ring fits in a block's 227 KB of shared memory");
  static_assert(kStages * kStageBytes >= kConsumers * kSwapMaxAccumulators * kWarpgroup * 4,
                "the ring holds the cluster split's sums");
};

// kRowCopy: two producer warps copy the weights with cp.async, a warp's lanes one row's run of
// the stage's K blocks at a time (kBlocks * 128 contiguous bytes), into the layout the TMA's
// 128-byte swizzle gives; else the TMA copies them as 128-row x 128-byte boxes (the default:
// the row copy measured slower, fp8_gemm_plan_sm90.h).
// kClusterSplit: split-K summed inside clusters of split_k CTAs, no fp32 partials in global memory
// and no second kernel. The grid is tiles x split_k CTAs, all resident (the launcher checks);
// cluster t runs tile t, its CTA of rank r the tile's split r. Each CTA leaves its sum in its own
// shared memory (the ring, done with by then); after a cluster barrier, rank r adds every CTA's
// value of the accumulators i with i % split_k == r, in rank order (the same bits every run),
// and stores them; a second barrier keeps every CTA's shared memory alive until all have read it.
template <int kTokens, int kStages, int kBlocks, typename OutT, bool kRowCopy, bool kClusterSplit = false>
__global__ void FH_LAUNCH_BOUNDS((SwapConfig<kTokens, kStages, kBlocks>::kThreads), 1)
    fp8_gemm_wgmma_swap_kernel(const __grid_constant__ CUtensorMap map_a,  // a [m, k] fp8, K-contiguous
                               const __grid_constant__ CUtensorMap map_b,  // b [n, k] fp8, K-contiguous
                               const KernelArgs args) {
#if FH_ARCH_SM90A
  using Cfg = SwapConfig<kTokens, kStages, kBlocks>;
  using SwapMma = sm90::WgmmaF32E4M3M64K32<kTokens>;
  constexpr int kPairs = kTokens / 4;  // distinct tokens a thread holds: two per 8-column chunk
  static_assert(SwapMma::kAccumulators <= kSwapMaxAccumulators, "a thread's sums fit their cluster-split slots");
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* smem_w = smem;                          // [kStages][kBlocks][128][128] fp8, swizzled
  uint8_t* smem_t = smem + kStages * Cfg::kWBytes;  // [kStages][kBlocks][kTokens][128] fp8, swizzled
  float* smem_scales = reinterpret_cast<float*>(smem + kStages * Cfg::kStageBytes);  // [kStages][kBlocks][kTokens + 4]
  uint64_t* full = reinterpret_cast<uint64_t*>(smem_scales + kStages * Cfg::kScaleFloats);  // [kStages]
  uint64_t* empty = full + kStages;                                                          // [kStages]

  const int warpgroup = threadIdx.x / kWarpgroup;
  const int wg_thread = threadIdx.x % kWarpgroup;
  const int lane = wg_thread % sm90::kWarpThreads;
  const auto& sched = args.scheduler;  // tiles_m counts token tiles, tiles_n weight tiles
  const uint32_t rank = kClusterSplit ? sm90::cluster_cta_rank() : 0;
  // Piece i of this CTA's work: split-K units handed out in turn, or (kClusterSplit) its one unit.
  auto next_piece = [&](int i, TileCoord* c) -> bool {
    if constexpr (kClusterSplit) {
      if (i > 0) return false;
      *c = sched.coord(static_cast<int>(rank) * sched.tiles() + static_cast<int>(blockIdx.x) / sched.split_k);
      return true;
    } else {
      return sched.work(blockIdx.x, gridDim.x, i, c);
    }
  };

  // full[s]: the TMA's bytes, the TMA thread's arrival and one per lane of the scale warp (and
  // of the two weight-copying warps).
  constexpr int kRowCopyThreads = kRowCopy ? 2 * sm90::kWarpThreads : 0;
  init_ring(full, empty, kStages, Cfg::kConsumers, &map_a, &map_b, 1 + sm90::kWarpThreads + kRowCopyThreads);

  if (warpgroup == 0) {
    // ---- producer: one thread copies the operands, warp 1 the scales ----
    const int warp = wg_thread / sm90::kWarpThreads;
    if (warp == 1) {
      // Each stage's scales land in its slot with the operands: the consumers read them from
      // shared memory instead of loading them from global memory one K block ahead, a round
      // trip per K block on their path (H200: 1x4608x7168 15.4 -> 14.2 us, 64x4608x7168 18.6 -> 17).
      // Tokens past m read token m - 1: finite, and their products are never stored.
      int stage = 0;
      uint32_t phase = 0;
      TileCoord c;
      for (int i = 0; next_piece(i, &c); ++i) {
        const float* b_row = args.b_scale + static_cast<int64_t>(c.n_tile) * args.b_scale_stride_nb;
        for (int kb = c.kb_begin; kb < c.kb_end; kb += kBlocks) {
          const int blocks = min(kBlocks, c.kb_end - kb);
          sm90::mbar_wait(&empty[stage], phase ^ 1);
          const uint32_t slot = sm90::smem_addr(smem_scales + stage * Cfg::kScaleFloats);
#pragma unroll 1
          for (int e = lane; e < blocks * (kTokens + 1); e += sm90::kWarpThreads) {
            const int j = e / (kTokens + 1), t = e % (kTokens + 1);
            const float* src = t < kTokens ? args.a_scale + static_cast<int64_t>(min(c.m_tile * kTokens + t, args.m - 1)) *
                                                                args.a_scale_stride_m + (kb + j) * args.a_scale_stride_kb
                                           : b_row + (kb + j) * args.b_scale_stride_kb;
            sm80::cp_async_4(slot + 4 * (j * Cfg::kBlockScaleFloats + t), src);
          }
          sm80::cp_async_arrive_on(sm90::smem_addr(&full[stage]));
          if (++stage == kStages) stage = 0, phase ^= 1;
        }
      }
    } else if (kRowCopy && warp >= 2) {
      // Chunk e of a stage: 16 bytes of row e / kRowChunks, K block (e % kRowChunks) / 8, piece
      // e % 8 of its 128 bytes, stored where the 128-byte swizzle puts it (piece ^ row % 8).
      // Rows past n read row n - 1: finite, and their products are never stored.
      constexpr int kRowChunks = kBlocks * (kBlockK / 16);
      const int t = wg_thread - 2 * sm90::kWarpThreads;
      int stage = 0;
      uint32_t phase = 0;
      TileCoord c;
      for (int i = 0; next_piece(i, &c); ++i) {
        const int n0 = c.n_tile * kBlockN;
        for (int kb = c.kb_begin; kb < c.kb_end; kb += kBlocks) {
          const int blocks = min(kBlocks, c.kb_end - kb);
          sm90::mbar_wait(&empty[stage], phase ^ 1);
          const uint32_t w_stage = sm90::smem_addr(smem_w + stage * Cfg::kWBytes);
          const uint8_t* src0 = args.b_rows + static_cast<int64_t>(kb) * kBlockK;
#pragma unroll 4
          for (int e = t; e < kBlockN * kRowChunks; e += kRowCopyThreads) {
            const int row = e / kRowChunks, j = (e % kRowChunks) / 8, piece = e % 8;
            if (j < blocks) {
              const uint8_t* src = src0 + min(n0 + row, args.n - 1) * args.b_row_stride + j * kBlockK + piece * 16;
              sm80::cp_async_16(w_stage + j * Cfg::kWBlockBytes + row * kBlockK + ((piece ^ (row % 8)) * 16), src);
            }
          }
          sm80::cp_async_arrive_on(sm90::smem_addr(&full[stage]));
          if (++stage == kStages) stage = 0, phase ^= 1;
        }
      }
    } else if (wg_thread == 0) {
      int stage = 0;
      uint32_t phase = 0;
      TileCoord c;
      constexpr int kTmaBlockBytes = (kRowCopy ? 0 : Cfg::kWBlockBytes) + Cfg::kTBlockBytes;
      for (int i = 0; next_piece(i, &c); ++i) {
        for (int kb = c.kb_begin; kb < c.kb_end; kb += kBlocks) {
          const int blocks = min(kBlocks, c.kb_end - kb);
          sm90::mbar_wait(&empty[stage], phase ^ 1);
          sm90::mbar_arrive_expect_tx(&full[stage], blocks * kTmaBlockBytes);
          for (int j = 0; j < blocks; ++j) {
            if constexpr (!kRowCopy)
              sm90::tma_load_2d(smem_w + stage * Cfg::kWBytes + j * Cfg::kWBlockBytes, &map_b, (kb + j) * kBlockK,
                                c.n_tile * kBlockN, &full[stage]);
            sm90::tma_load_2d(smem_t + stage * Cfg::kTBytes + j * Cfg::kTBlockBytes, &map_a, (kb + j) * kBlockK,
                              c.m_tile * kTokens, &full[stage]);
          }
          if (++stage == kStages) stage = 0, phase ^= 1;
        }
      }
    }
  } else {
    // ---- consumers: warpgroup w owns weight rows 64*(w-1).. of each tile ----
    const int consumer = warpgroup - 1;
    // Token j of this thread's pairs: column 8*(j/2) + 2*(t%4) + j%2 of the wgmma's D.
    int tok_of_pair[kPairs];
#pragma unroll
    for (int j = 0; j < kPairs; ++j) tok_of_pair[j] = SwapMma::acc_col(wg_thread, 4 * (j / 2) + j % 2);
    int stage = 0;
    uint32_t phase = 0;
    TileCoord c;
    for (int i = 0; next_piece(i, &c); ++i) {  // split-K units only (no stream-K)
      const int m0 = c.m_tile * kTokens, n0 = c.n_tile * kBlockN;
      float acc[SwapMma::kAccumulators];
#pragma unroll
      for (int i = 0; i < SwapMma::kAccumulators; ++i) acc[i] = 0.f;
      for (int kb0 = c.kb_begin; kb0 < c.kb_end; kb0 += kBlocks) {
        const int blocks = min(kBlocks, c.kb_end - kb0);
        sm90::mbar_wait(&full[stage], phase);
        // cp.async wrote the weights through the generic proxy; the wgmmas read them through the async one.
        if constexpr (kRowCopy) sm90::fence_proxy_async_shared();
        const float* slot = smem_scales + stage * Cfg::kScaleFloats;
#pragma unroll
        for (int j = 0; j < kBlocks; ++j) {
          if (j < blocks) {
            const uint32_t w_addr = sm90::smem_addr(smem_w + stage * Cfg::kWBytes + j * Cfg::kWBlockBytes +
                                                    consumer * SwapMma::kM * kBlockK);
            const uint32_t t_addr = sm90::smem_addr(smem_t + stage * Cfg::kTBytes + j * Cfg::kTBlockBytes);
            float part[SwapMma::kAccumulators];
            sm90::wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < kBlockK / SwapMma::kK; ++kk) {
              SwapMma::mma(part, sm90::smem_desc_k_major_sw128(w_addr + kk * SwapMma::kK),
                           sm90::smem_desc_k_major_sw128(t_addr + kk * SwapMma::kK), kk > 0);
            }
            sm90::wgmma_commit();
            // a_scale * b_scale of each of the thread's tokens, read while the wgmmas run.
            const float* block_slot = slot + j * Cfg::kBlockScaleFloats;
            const float sb = block_slot[kTokens];
            float block_scale[kPairs];
#pragma unroll
            for (int q = 0; q < kPairs; ++q) block_scale[q] = block_slot[tok_of_pair[q]] * sb;
            sm90::wgmma_wait<0>();
            sm90::fence_registers(part);
#pragma unroll
            for (int i = 0; i < SwapMma::kAccumulators; ++i)
              acc[i] = fmaf(part[i], block_scale[2 * (i / 4) + i % 2], acc[i]);
          }
        }
        if (lane == 0) sm90::mbar_arrive(&empty[stage]);
        if (++stage == kStages) stage = 0, phase ^= 1;
      }

      // ---- epilogue: D is out^T; each register is one (weight row, token) element ----
      if constexpr (kClusterSplit) {
        // Both consumer warpgroups are past their last wgmma: the ring is free for the sums.
        sm90::named_barrier_sync(kSwapReduceBarrier, Cfg::kConsumers * kWarpgroup);
#pragma unroll
        for (int i = 0; i < SwapMma::kAccumulators; ++i) swap_cluster_sum_slot(smem, consumer, i, wg_thread)[0] = acc[i];
      } else {
#pragma unroll
        for (int i = 0; i < SwapMma::kAccumulators; ++i)
          swap_store<SwapMma, OutT>(args, c.split * args.out_stride_split, m0, n0, consumer, wg_thread, i, acc[i]);
      }
    }
  }
  if constexpr (kClusterSplit) {
    sm90::cluster_sync();  // every CTA's sums are in its shared memory
    if (warpgroup > 0) {
      const int consumer = warpgroup - 1, split = sched.split_k;
      const TileCoord c = sched.coord(static_cast<int>(blockIdx.x) / split);
      for (int i = static_cast<int>(rank); i < SwapMma::kAccumulators; i += split) {
        const float* slot = swap_cluster_sum_slot(smem, consumer, i, wg_thread);
        float sum = 0.f;
        for (int r = 0; r < split; ++r) sum += sm90::ld_shared_cluster_f32(slot, static_cast<uint32_t>(r));
        swap_store<SwapMma, OutT>(args, 0, c.m_tile * kTokens, c.n_tile * kBlockN, consumer, wg_thread, i, sum);
      }
    }
    sm90::cluster_sync();  // no CTA leaves while another may still read its shared memory
  }
#endif  // FH_ARCH_SM90A
}

}  // namespace flashhip::kernels::sm90_gemm
