// fp8_gemm on Hopper: the launch plan (tile shape, split-K or stream-K, ring stages, operand
// packing, workspace layout) as plain host arithmetic, so that the heuristic's choices can be
// tested on any machine (tests/cpp/test_fp8_gemm_plan.cpp). The launcher (fp8_gemm_sm90.cu) and
// the kernels' shared-memory layout (fp8_gemm_wgmma_sm90.cuh) both take their sizes from here.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "flashhip/kernels/gemm/fp8_gemm.h"

namespace flashhip::kernels::sm90_gemm {

inline constexpr int kBlockN = 128;  // = the b_scale block: one weight scale per tile and K block
// Wide tiles, forced only (Fp8GemmParams::force_block_n): 128 rows by 192 columns (m64n192
// wgmmas), the widest whose wgmma sum and fp32 accumulator (96 + 96 registers) fit a consumer.
// A 192-column tile straddles two b_scale blocks: the scale warp loads both and the consumers
// pick one per 8-column chunk. Measured no faster than the 128-column plans (below).
inline constexpr int kWideBlockN = 192;
inline constexpr int kBlockK = 128;  // = the scale block along K; one 128-byte swizzled row
inline constexpr int kSubtileRows = 64;  // one wgmma's M: a consumer warpgroup's subtile
inline constexpr int kGroupM = 8;  // rasterisation band (tile_scheduler.cuh)
inline constexpr int kMaxSmemBytes = 227 * 1024;  // sm_90's opt-in limit per block
static_assert(kBlockK == kFp8ScaleBlock && kBlockN == kFp8ScaleBlock, "a wide tile spans exactly one scale block");
// Tiles start at multiples of 64 columns into a scale block, so a 192-column tile ends in the next.
static_assert(kWideBlockN % 64 == 0 && kWideBlockN <= 2 * kBlockN - 64, "a wide tile touches at most two scale blocks");

// Consumer warpgroups of a tile: one for 64 rows, else two. A 256-row tile gives each of them two
// 64-row subtiles, one after the other on the same B stage: B is loaded and read from shared
// memory once per 256 rows instead of once per 128 (forced on the full-wave benchmark shapes, it
// took 0.84-0.92 of the 128-row tile's time: H200, random inputs).
constexpr int main_loop_consumers(int block_m) { return block_m == 64 ? 1 : 2; }

// A stage's scales: a_scale of its block_m rows, then b_scale (two for a wide tile: the blocks of
// its first and last columns), padded to 16 bytes.
constexpr int scale_slot_floats(int block_m) { return block_m + 4; }

// Stages of the ring (operands and their scales): as many as fit beside the epilogue tiles (one
// per consumer; wide tiles store from the registers and have none), the barriers and the
// alignment slack, at most 8.
constexpr int main_loop_stages(int block_m, int out_bytes, int block_n = kBlockN) {
  const int stage = (block_m + block_n) * kBlockK + scale_slot_floats(block_m) * 4 + 2 * 8;
  const int epilogue = block_n == kBlockN ? main_loop_consumers(block_m) * kSubtileRows * (kBlockN / 2) * out_bytes : 0;
  const int fit = (kMaxSmemBytes - 1024 - epilogue) / stage;
  return fit < 8 ? fit : 8;
}

inline constexpr size_t kWorkspaceAlign = 256;
// Wide decode stages measured 1-9% faster on 7 of 8 decode shapes (H200, device check at 6b2bd73;
// slower only at 8x7168x2048, 10.29 vs 9.95 us).
inline constexpr bool kDecodeWideByDefault = true;
// Decode weights copied by cp.async as one contiguous run per row and stage, instead of TMA
// boxes (each 128 rows x 128 bytes, a 128-byte piece of every row): measured slower on every
// decode shape tried (H200, same run: 1x4608x7168 15.3 against 14.2 us, 64x4608x7168 22.2
// against 17.1), so forced only.
inline constexpr bool kDecodeRowCopyByDefault = false;
inline size_t align_up(size_t x) { return (x + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign; }

// TMA reads an operand in place when its rows are K-contiguous and 16-byte aligned; otherwise
// (the M/N-contiguous layout, odd row strides) it is first packed into the workspace.
inline bool tma_readable(const void* base, int64_t rows, int64_t stride_row, int64_t stride_k) {
  if (rows > 1 && stride_k != 1) return false;
  const int64_t row_stride = rows > 1 ? stride_row : 16;
  return row_stride % 16 == 0 && reinterpret_cast<uintptr_t>(base) % 16 == 0;
}

// The main kernel's scale warp copies a K block's a_scale column 16 bytes a lane when a_scale is
// M-major and every column starts 16-byte aligned; otherwise one row a lane.
inline bool scale_columns_aligned(const float* base, int64_t stride_m, int64_t stride_kb) {
  return stride_m == 1 && stride_kb % 4 == 0 && reinterpret_cast<uintptr_t>(base) % 16 == 0;
}

// Decode ring: one K block a stage, as many stages as fit in 227 KB (up to 12); or "wide" stages
// of several K blocks, so that each weight row is requested 256-512 contiguous bytes at a time.
constexpr int swap_blocks(int tokens, bool wide) { return !wide ? 1 : tokens <= 16 ? 4 : 2; }
constexpr int swap_stages(int tokens, bool wide) {
  return !wide ? (tokens <= 16 ? 12 : tokens <= 32 ? 11 : 9) : (tokens <= 16 ? 3 : tokens <= 32 ? 5 : 4);
}

struct Plan {
  int block_m = 128, block_n = kBlockN, stages = 6, split_k = 1;
  int swap_tokens = 0;  // > 0: the decode kernel, tokens per tile (block_m is then the token tile)
  bool swap_wide = false;  // decode kernel with several K blocks a stage
  bool swap_row_copy = false;  // decode kernel: weights by cp.async row runs, not TMA boxes
  bool swap_cluster_split = false;  // decode kernel: split-K summed in clusters of split_k CTAs
  bool stream_k = false;  // the main kernel with stream-K (tile_scheduler.cuh)
  int whole_tiles = 0;    // stream-K: tiles done whole first (scheduled tiles)
  // 2-CTA clusters sharing a tile of one operand by TMA multicast (at most one of them is 2): the
  // scheduler then hands out pairs of tiles, sched_tiles_m x sched_tiles_n of them, to clusters.
  int cluster_m = 1, cluster_n = 1;
  int tiles_m = 0, tiles_n = 0, k_blocks = 0, grid = 0;
  int sched_tiles_m = 0, sched_tiles_n = 0;
  bool pack_a = false, pack_b = false;
  // The main kernel reads a_scale best M-major, each K block's column 16-byte aligned; for long
  // K loops another layout is first copied so into the workspace at a_scale_offset ([k_blocks,
  // a_scale_rows], M rounded up to 4 rows).
  bool pack_a_scale = false;
  int64_t a_scale_rows = 0;
  size_t a_offset = 0, b_offset = 0, a_scale_offset = 0, partials_offset = 0, flags_offset = 0, bytes = 0;
};

// K blocks of the CTA with the most of them: whole waves of units (tiles, or split-K's parts of
// them) at their K blocks each; with stream-K, an even share of all K blocks.
inline int64_t busiest_cta_k_blocks(const Plan& plan) {
  const int parties = std::max(1, plan.grid / (plan.cluster_m * plan.cluster_n));
  const int64_t units = static_cast<int64_t>(plan.sched_tiles_m) * plan.sched_tiles_n * plan.split_k;
  if (plan.stream_k) return (units * plan.k_blocks + parties - 1) / parties;
  const int64_t blocks_per_unit = (plan.k_blocks + plan.split_k - 1) / plan.split_k;
  return (units + parties - 1) / parties * blocks_per_unit;
}

// Below this many K blocks on the busiest CTA, [m, k_blocks] scales are read as they are (make_plan).
inline constexpr int64_t kPackScalesMinBlocks = 32;

// The heuristic, by shape class:
// - block_m: 64 rows when M <= 64 (decode: the tile's zero rows cost tensor time we have spare,
//   never bytes); else 128 or 256 rows (two consumer warpgroups share each B tile; at 256 each
//   takes two 64-row subtiles), whichever has the smaller estimated time below.
// - split-K (128-row tiles only): when the output tiles are fewer than the SMs, the K blocks of
//   each tile may be split among s CTAs, at least 4 K blocks each. (Down to 1 in the decode
//   kernel, tried: the kernel took about as long on half the blocks a CTA and the sum of twice
//   the splits ended later; H200, same run, span of the calls: 1x512x7168 28 splits 8.4 us
//   against 14's 7.1, 1x4096x512 4 against 1: 5.2 against 3.9, 64x512x7168 9.8 against 8.7.)
// The estimate is the busiest SM's time, waves * (K blocks per unit + 1 for the epilogue) *
// t_block, plus for s > 1 the fp32 partials' round trip through memory (s * M * N * 8 bytes at
// ~5 TB/s, much of it in L2), which a second kernel sums. t_block, one 128-deep K block of a tile
// on one SM, is ~0.6 us for 128 rows (4.2 MFLOP at an SM's share of the ~900 TFLOP/s the kernel
// sustains; streaming its 16 KB of weights from HBM takes about as long), ~0.5 us for 64
// (weight-bound), and kTile256BlockUs for 256 (less shared-memory traffic per flop). At least 4
// K blocks per split.
// - stages: as many as fit in 227 KB of shared memory beside the epilogue tiles (main kernel: 6
//   for 128 rows with 16-bit out, 5 with fp32 out or partials, 8 for 64 rows, 4 for 256).
// 0.88 of two 128-row blocks: 256- against 128-row tiles forced on the full-wave benchmark shapes
// took 0.84-0.92 of the time (H200, device check, random inputs).
inline constexpr double kTile256BlockUs = 1.05;
// - tile width: 128 columns. Forced on the 18 benchmark shapes (H200, device check), 128x192
//   tiles took 1.41x a 128x128 tile's K block for 1.5x its work (8192^3: 0.89 against 0.63 us),
//   still more per flop than a 256x128 tile (1.13 us for 2x), and with their waves no shape
//   beat its plan here (6144x1536x7168: 144-145 against stream-K's 141-146 us; 1024x3072x1536:
//   17.4 against 15.1; 6144x7168x2048: 230 against 183). 96-column tiles (tried, removed): a K
//   block took as long as a 128-column one, so the fuller waves they give (1024x1536x7168: 128
//   tiles instead of 96) made nothing faster (43-46 against 34.8 us).
// - stream-K (main kernel, no split-K, tile_scheduler.cuh), when its estimate is below
//   kStreamKMargin of the best above: with t tiles on s SMs, (t / s - 1) whole waves of whole
//   tiles (none when t < 2s), then the remaining 1-2 waves' K blocks cut evenly among the s CTAs.
//   Its estimate: the whole waves, the CTA's share of the shared K blocks plus one for the
//   epilogue and kStreamKFixupBlocks for the owner's wait and the partials' round trip, and
//   kStreamKExtraUs for the flags' memset and the overlap with the previous kernel it costs.
//   Measured (H200, device check and benchmark, forced on and off): after whole waves a shared
//   K block costs about what a data-parallel one does (6144x4608x7168 at 256 rows: 382-390 us
//   against 428; 6144x1536x7168: 141 against 169), and with none at 256 rows and at least a
//   wave of tiles too (1024x4608x7168: 76-80 against 104). Left out, as measured slower than
//   the plans above: stream-K with no whole waves at 128 rows (a shared block took ~1.4x a
//   data-parallel one: 1024x{512,576,1536}x7168 took 22, 24, 43 us against split-K's 15, 17
//   and DP's 40; 6144x512x7168 61-67 against 61) or with 256-row tiles fewer than the SMs, and
//   shares under k_blocks / 5, which split a tile among more than ~5 CTAs (128x512x7168, a tile
//   over 33 CTAs: 46 us). kStreamKFixupBlocks = 3 keeps the short-K shapes where the fix-ups
//   did not pay (1024x7168x2304: 45-50 us against 40) on the data-parallel plan.
inline constexpr double kStreamKFixupBlocks = 3.0;
inline constexpr double kStreamKExtraUs = 4.0;
inline constexpr double kStreamKMargin = 0.97;
inline int stream_k_whole_tiles(int64_t tiles, int sms) { return tiles >= 2 * sms ? static_cast<int>((tiles / sms - 1) * sms) : 0; }
// Stream-K's ready flags: one per consumer warpgroup of each CTA.
inline size_t stream_k_flag_bytes(const Plan& plan) {
  return static_cast<size_t>(plan.grid) * main_loop_consumers(plan.block_m) * sizeof(int);
}
// - multicast (main kernel): 2-CTA clusters, chosen by choose_multicast below; a cluster's two
//   CTAs work on neighbouring tiles in lockstep and each loads half of the tile they share.
//   cluster_slots: the 2-CTA clusters the device holds at once (GPCs hold whole clusters).
//   Off unless forced: on the H200 (device check, same run, 18 shapes, heuristic's tiles) no
//   shape gained more than ~3% (6144x512x7168 67.6 -> 65.4 us, within run-to-run spread) and
//   most lost: 1024x1536x7168 34.8 -> 44-45, 1024x7168x2048 35.1 -> 39-42, 6144x576x7168
//   57.8 -> 63.5 (sharing A) / 122 (sharing B, an odd tile count), 6144x4608x7168 387 -> 408-437,
//   8192^3 1141 -> 1139-1166. The pair's lockstep (each stage waits for both CTAs' consumers)
//   costs more than the halved L2 reads save: the L2 is not what bounds these tiles.
inline int choose_multicast(const Fp8GemmParams& p, const Plan& plan) {
  if (plan.swap_tokens || plan.block_n != kBlockN || p.force_multicast < 0) return 0;
  if (p.force_multicast > 0) return p.force_multicast;
  return 0;
}

// The decode kernel's split-K summed in clusters: at most this many CTAs a cluster.
inline constexpr int kMaxSplitCluster = 16;

inline Plan make_plan(const Fp8GemmParams& p, int sms, int cluster_slots = -1) {
  if (cluster_slots < 0) cluster_slots = sms / 2;
  Plan plan;
  plan.block_m = p.force_block_m ? p.force_block_m : (p.m <= 64 ? 64 : 128);
  if (!p.force_block_m && p.m <= 64) {  // decode: weights as wgmma's M, tokens as its N
    plan.swap_tokens = p.m <= 8 ? 8 : p.m <= 16 ? 16 : p.m <= 32 ? 32 : 64;
    plan.block_m = plan.swap_tokens;
    plan.swap_wide = p.force_stage_k_blocks > 1 || (p.force_stage_k_blocks == 0 && kDecodeWideByDefault);
    plan.stages = swap_stages(plan.swap_tokens, plan.swap_wide);
    plan.swap_row_copy = p.force_decode_weight_copy == 2 || (p.force_decode_weight_copy == 0 && kDecodeRowCopyByDefault);
  }
  plan.tiles_m = static_cast<int>((p.m + plan.block_m - 1) / plan.block_m);
  plan.tiles_n = static_cast<int>((p.n + kBlockN - 1) / kBlockN);
  plan.k_blocks = static_cast<int>(p.k / kBlockK);
  const int tiles = plan.tiles_m * plan.tiles_n;
  const auto estimate_us = [&](int64_t tile_count, int s, double block_us) {
    const int64_t waves = (tile_count * s + sms - 1) / sms;
    const double partial_us_per_split = static_cast<double>(p.m) * p.n * 8 / 5e6;
    return waves * ((plan.k_blocks + s - 1) / s + 1) * block_us + (s > 1 ? s * partial_us_per_split : 0);
  };
  double best_us = 1e300;
  if (p.force_split_k > 0) {
    plan.split_k = p.force_split_k;
  } else if (tiles < sms && plan.block_m != 256) {
    const double block_us = plan.swap_tokens || plan.block_m == 64 ? 0.5 : 0.6;
    for (int s = 1; s <= std::max(1, plan.k_blocks / 4); ++s) {
      const double us = estimate_us(tiles, s, block_us);
      if (us < best_us) best_us = us, plan.split_k = s;
    }
  } else {
    best_us = estimate_us(tiles, 1, plan.block_m == 64 ? 0.5 : 0.6);
  }
  // 256-row tiles: 16-bit outputs only (fp32 would leave the ring 3 stages), no split.
  const bool out16 = p.out_dtype != DType::kFloat32;
  const bool may_256 = !p.force_block_m && plan.block_m == 128 && out16 && p.force_split_k <= 1 && p.m > 128;
  const int64_t tiles256 = ((p.m + 255) / 256) * int64_t(plan.tiles_n);
  if (may_256) {
    const double us = estimate_us(tiles256, 1, kTile256BlockUs);
    if (us < best_us) {
      best_us = us;
      plan.block_m = 256, plan.split_k = 1;
      plan.tiles_m = static_cast<int>((p.m + 255) / 256);
    }
  }
  // Wide tiles (128 x 192, data-parallel), when forced.
  if (p.force_block_n == kWideBlockN && !plan.swap_tokens && p.force_split_k <= 1 && p.force_stream_k <= 0 &&
      (!p.force_block_m || p.force_block_m == 128)) {
    plan.block_m = 128, plan.block_n = kWideBlockN, plan.split_k = 1;
    plan.tiles_m = static_cast<int>((p.m + 127) / 128);
    plan.tiles_n = static_cast<int>((p.n + kWideBlockN - 1) / kWideBlockN);
  }
  // Stream-K, for the tile shapes allowed here (the 128/256 choice is made again with it);
  // 1e300 where the rules above leave it out.
  const auto stream_k_us = [&](int64_t tile_count, int block_m, double block_us) {
    const int64_t whole = stream_k_whole_tiles(tile_count, sms);
    const int64_t share = ((tile_count - whole) * plan.k_blocks + sms - 1) / sms;
    if (p.force_stream_k <= 0 && (share * 5 < plan.k_blocks || (whole == 0 && (block_m != 256 || tile_count < sms))))
      return 1e300;
    return (whole / sms) * (plan.k_blocks + 1) * block_us +
           (static_cast<double>(share) + 1 + kStreamKFixupBlocks) * block_us + kStreamKExtraUs;
  };
  if (!plan.swap_tokens && p.force_split_k <= 1 && p.force_stream_k >= 0 && p.force_block_n != kWideBlockN) {
    const int bm_now = plan.block_m;
    const double block_us = bm_now == 256 ? kTile256BlockUs : bm_now == 64 ? 0.5 : 0.6;
    const int64_t wide_tiles_n = (p.n + kBlockN - 1) / kBlockN;
    double sk_best = stream_k_us(((p.m + bm_now - 1) / bm_now) * wide_tiles_n, bm_now, block_us);
    int sk_block_m = bm_now;
    if (may_256 || (bm_now == 256 && !p.force_block_m)) {  // either tile height, by the estimate
      const int64_t tiles128 = ((p.m + 127) / 128) * wide_tiles_n;
      const double us128 = stream_k_us(tiles128, 128, 0.6), us256 = stream_k_us(tiles256, 256, kTile256BlockUs);
      sk_best = std::min(us128, us256), sk_block_m = us256 < us128 ? 256 : 128;
    }
    if (p.force_stream_k > 0 || sk_best < kStreamKMargin * best_us) {
      plan.stream_k = true, plan.split_k = 1, plan.block_m = sk_block_m, plan.block_n = kBlockN;
      plan.tiles_m = static_cast<int>((p.m + sk_block_m - 1) / sk_block_m);
      plan.tiles_n = static_cast<int>(wide_tiles_n);
    }
  }
  plan.split_k = std::max(1, std::min(plan.split_k, plan.k_blocks));
  if (!plan.swap_tokens) {  // the main kernel's ring shares shared memory with its epilogue tiles
    const int out_bytes = plan.split_k > 1 || p.out_dtype == DType::kFloat32 ? 4 : 2;
    plan.stages = main_loop_stages(plan.block_m, out_bytes, plan.block_n);
  }
  const int multicast = cluster_slots > 0 ? choose_multicast(p, plan) : 0;
  plan.cluster_m = multicast == 1 ? 2 : 1;
  plan.cluster_n = multicast == 2 ? 2 : 1;
  const int cluster = plan.cluster_m * plan.cluster_n;
  const int slots = cluster > 1 ? cluster_slots : sms;  // of clusters (of 1 CTA without multicast)
  plan.sched_tiles_m = (plan.tiles_m + plan.cluster_m - 1) / plan.cluster_m;
  plan.sched_tiles_n = (plan.tiles_n + plan.cluster_n - 1) / plan.cluster_n;
  const int sched_tiles = plan.sched_tiles_m * plan.sched_tiles_n;
  int clusters = std::min(sched_tiles * plan.split_k, slots);
  if (plan.stream_k) {  // every cluster needs at least one shared K block
    plan.whole_tiles = stream_k_whole_tiles(sched_tiles, slots);
    clusters = static_cast<int>(std::min<int64_t>(slots, int64_t(sched_tiles - plan.whole_tiles) * plan.k_blocks));
    if (plan.whole_tiles % clusters) plan.whole_tiles = 0;  // (fewer clusters than slots only when tiles < slots)
  }
  plan.grid = clusters * cluster;
  // The decode kernel's cluster split: every unit resident at once, clusters of at most
  // kMaxSplitCluster CTAs (past 8, Hopper's non-portable sizes; the launcher checks the device
  // holds them all).
  plan.swap_cluster_split = plan.swap_tokens && p.force_decode_cluster_split > 0 && plan.split_k >= 2 &&
                            plan.split_k <= kMaxSplitCluster && static_cast<int64_t>(sched_tiles) * plan.split_k <= sms;
  // (its grid is then every unit, tiles x split_k, as computed above)
  plan.pack_a = !tma_readable(p.a, p.m, p.a_stride_m, p.a_stride_k);
  plan.pack_b = !tma_readable(p.b, p.n, p.b_stride_n, p.b_stride_k);
  size_t bytes = 0;
  if (plan.pack_a) plan.a_offset = bytes, bytes = align_up(bytes + static_cast<size_t>(p.m * p.k));
  if (plan.pack_b) plan.b_offset = bytes, bytes = align_up(bytes + static_cast<size_t>(p.n * p.k));
  // The scale warp copies a stage's a_scale column: with rows k_blocks apart that is one 32-byte
  // sector a row (256 for a 256-row tile), which made the ring alone (no wgmma) take 827 us at
  // 8192^3 on the H200 against 627 without the scales; M-major, it is 16-byte copies of one
  // contiguous run. The copy is one more launch, ~2-3 us on the benchmark's shapes: it is made
  // only when the busiest CTA has at least kPackScalesMinBlocks K blocks to run (H200, same run,
  // with the copy against without: 1024x1536x7168 (56 blocks) 35.2 against 38.7 us, 6144x3072x1536
  // (48) 70.5 against 71.7, 1024x7168x2048 (32) 38.9 against 39.2; 6144x4096x512 (24) 43.4
  // against 41.6, 6144x7168x256 (20) 54.2 against 51.7, 1024x4096x512 (4) 15.0 against 11.8).
  // The decode kernel reads each token's scales itself.
  plan.pack_a_scale = !plan.swap_tokens && !scale_columns_aligned(p.a_scale, p.a_scale_stride_m, p.a_scale_stride_kb) &&
                      busiest_cta_k_blocks(plan) >= kPackScalesMinBlocks;
  if (plan.pack_a_scale) {
    plan.a_scale_rows = (p.m + 3) / 4 * 4;
    plan.a_scale_offset = bytes;
    bytes = align_up(bytes + static_cast<size_t>(plan.a_scale_rows) * plan.k_blocks * sizeof(float));
  }
  if (plan.split_k > 1) {
    plan.partials_offset = bytes;
    bytes = align_up(bytes + static_cast<size_t>(plan.split_k) * p.m * p.n * sizeof(float));
  }
  if (plan.stream_k) {  // one partial tile and one flag per consumer warpgroup of each CTA
    plan.partials_offset = bytes;
    bytes = align_up(bytes + static_cast<size_t>(plan.grid) * plan.block_m * plan.block_n * sizeof(float));
    plan.flags_offset = bytes;
    bytes = align_up(bytes + stream_k_flag_bytes(plan));
  }
  plan.bytes = bytes;
  return plan;
}

}  // namespace flashhip::kernels::sm90_gemm
