// MoE block alignment as a stable counting sort, no host synchronisation:
// - moe_align_count (only with more than one tile): each block counts its tile's pairs per
//   expert into the workspace row of its tile.
// - moe_align_scatter (one block per tile; a few for a single tile): counts its tile per wave,
//   derives every expert's padded start (a scan over experts) and the offset of each (wave,
//   expert) from the counts of the tiles and waves before it, then places WAVE pairs at a
//   time: a pair's rank among the batch's pairs of its expert comes from the lanes that share
//   it (wave.h match_any). Tiles, waves, batches and lanes all run in ascending pair order, so
//   each expert's run is in ascending order. The blocks share out the padding and the block
//   labels.
#pragma once

#include "flashhip/kernels/moe/moe_align.h"
#include "flashhip/platform/wave.h"

namespace flashhip::kernels::moe_align_detail {

inline constexpr int kThreads = 256;
// Blocks of a one-tile call (see moe_align_scatter).
inline constexpr int kOneTileScatterBlocks = 16;

// Pairs each lane loads before it uses any of them, so that their latencies overlap.
inline constexpr int kPairsPerLane = 8;

// The (local) expert of pair q, or -1 when the pair is left out. Pair counts fit int32 (the op
// checks), so rows come from a 32-bit division, and none at all when rows are contiguous.
template <typename TId>
FH_DEVICE FH_INLINE int expert_of(const MoeAlignParams& p, int32_t q) {
  const auto k = static_cast<int32_t>(p.k);
  int64_t index = q;
  if (p.ids_row_stride != p.k) {
    const int32_t row = q / k;
    index = static_cast<int64_t>(row) * p.ids_row_stride + (q - row * k);
  }
  const int64_t id = static_cast<const TId*>(p.topk_ids)[index];
  if (id < 0 || id >= p.experts) return -1;
  const int local = p.expert_map != nullptr ? p.expert_map[id] : static_cast<int>(id);
  return local >= 0 && local < p.experts ? local : -1;
}

// expert[j] <- the expert of pair first + j * stride, or -1 from `end` on.
template <typename TId>
FH_DEVICE FH_INLINE void load_experts(const MoeAlignParams& p, int32_t first, int32_t stride, int32_t end,
                                      int (&expert)[kPairsPerLane]) {
#pragma unroll
  for (int j = 0; j < kPairsPerLane; ++j) {
    const int32_t q = first + j * stride;
    expert[j] = q < end ? expert_of<TId>(p, q) : -1;
  }
}

template <typename TId>
__global__ void FH_LAUNCH_BOUNDS(kThreads) moe_align_count(const MoeAlignParams p, int64_t tile_pairs) {
  extern __shared__ int32_t tile_count[];  // [experts]
  for (int e = threadIdx.x; e < p.experts; e += blockDim.x) tile_count[e] = 0;
  __syncthreads();
  const auto pairs = static_cast<int32_t>(p.rows * p.k);
  const auto begin = static_cast<int32_t>(blockIdx.x * tile_pairs);
  const int32_t end = begin + tile_pairs < pairs ? static_cast<int32_t>(begin + tile_pairs) : pairs;
  for (int32_t first = begin + static_cast<int32_t>(threadIdx.x); first < end; first += kPairsPerLane * kThreads) {
    int expert[kPairsPerLane];
    load_experts<TId>(p, first, kThreads, end, expert);
#pragma unroll
    for (int j = 0; j < kPairsPerLane; ++j) {
      if (expert[j] >= 0) atomicAdd(&tile_count[expert[j]], 1);
    }
  }
  __syncthreads();
  int32_t* row = p.workspace + static_cast<int64_t>(blockIdx.x) * p.experts;  // [experts]
  for (int e = threadIdx.x; e < p.experts; e += blockDim.x) row[e] = tile_count[e];
}

// Shared ints the scatter kernel needs.
FH_HOST_DEVICE FH_INLINE int scatter_smem_ints(int experts, int waves) { return (waves + 3) * experts + 1; }

// In place: start[e] <- sum of start[0..e); start[experts] <- the total. One wave does it.
template <int WAVE>
FH_DEVICE FH_INLINE void exclusive_scan_by_one_wave(int32_t* start /* [experts + 1] */, int experts) {
  const int lane = lane_id<WAVE>();
  const int per_lane = (experts + WAVE - 1) / WAVE;
  const int lo = lane * per_lane < experts ? lane * per_lane : experts;
  const int hi = lo + per_lane < experts ? lo + per_lane : experts;
  int32_t local = 0;
  for (int e = lo; e < hi; ++e) local += start[e];
  int32_t inclusive = local;
#pragma unroll
  for (int offset = 1; offset < WAVE; offset *= 2) {
    const int32_t below = shfl_up<WAVE>(inclusive, offset);
    if (lane >= offset) inclusive += below;
  }
  int32_t running = inclusive - local;
  for (int e = lo; e < hi; ++e) {
    const int32_t count = start[e];
    start[e] = running;
    running += count;
  }
  if (lane == WAVE - 1) start[experts] = inclusive;
}

template <int WAVE, typename TId>
__global__ void FH_LAUNCH_BOUNDS(kThreads) moe_align_scatter(const MoeAlignParams p, int64_t tile_pairs,
                                                              int num_tiles) {
  constexpr int kWaves = kThreads / WAVE;
  extern __shared__ int32_t smem[];
  const int E = p.experts;
  int32_t* wave_offset = smem;                     // [kWaves, experts]: counts, then offsets
  int32_t* tile_before = wave_offset + kWaves * E;  // [experts] pairs of earlier tiles
  int32_t* expert_total = tile_before + E;         // [experts] pairs of each expert
  int32_t* expert_start = expert_total + E;        // [experts + 1] padded starts, then the total

  const int tid = static_cast<int>(threadIdx.x);
  const int wave = tid / WAVE;
  const int lane = lane_id<WAVE>();
  const auto pairs = static_cast<int32_t>(p.rows * p.k);
  const int tile = static_cast<int>(blockIdx.x);
  // One-tile calls run extra blocks that count the tile too but place nothing: they share the
  // padding and block labels, which one block alone writes slowly (a latency-bound loop).
  const int counted_tile = num_tiles == 1 ? 0 : tile;
  const bool places = tile < num_tiles;
  const int32_t tile_begin = counted_tile * tile_pairs < pairs ? static_cast<int32_t>(counted_tile * tile_pairs) : pairs;
  const int32_t tile_end = tile_begin + tile_pairs < pairs ? static_cast<int32_t>(tile_begin + tile_pairs) : pairs;
  const auto wave_pairs = static_cast<int32_t>((tile_pairs + kWaves - 1) / kWaves);
  const int32_t wave_begin = tile_begin + wave * wave_pairs < tile_end ? tile_begin + wave * wave_pairs : tile_end;
  const int32_t wave_end = wave_begin + wave_pairs < tile_end ? wave_begin + wave_pairs : tile_end;
  const int32_t pad = pairs;
  // A wave walks its pairs in chunks of kPairsPerLane batches of WAVE consecutive pairs; the
  // experts of its first chunk (usually its only one) stay in registers from step 1 to step 4.
  constexpr int32_t kChunk = kPairsPerLane * WAVE;
  int first_chunk[kPairsPerLane];

  // 1. Count this tile per (wave, expert).
  for (int i = tid; i < kWaves * E; i += kThreads) wave_offset[i] = 0;
  __syncthreads();
  for (int32_t chunk = wave_begin; chunk < wave_end; chunk += kChunk) {  // uniform across the wave
    int expert[kPairsPerLane];
    load_experts<TId>(p, chunk + lane, WAVE, wave_end, expert);
#pragma unroll
    for (int j = 0; j < kPairsPerLane; ++j) {
      if (expert[j] >= 0) atomicAdd(&wave_offset[wave * E + expert[j]], 1);
      if (chunk == wave_begin) first_chunk[j] = expert[j];
    }
  }
  __syncthreads();

  // 2. Each expert's total and the pairs of it in earlier tiles; padded sizes, scanned.
  const int32_t block_size = p.block_size;
  for (int e = tid; e < E; e += kThreads) {
    int32_t total = 0, before = 0;
    if (num_tiles == 1) {
      for (int w = 0; w < kWaves; ++w) total += wave_offset[w * E + e];
    } else {
#pragma unroll 4
      for (int t = 0; t < num_tiles; ++t) {
        const int32_t count = p.workspace[static_cast<int64_t>(t) * E + e];
        total += count;
        before += t < tile ? count : 0;
      }
    }
    expert_total[e] = total;
    tile_before[e] = before;
    expert_start[e] = (total + block_size - 1) / block_size * block_size;
  }
  __syncthreads();
  if (wave == 0) exclusive_scan_by_one_wave<WAVE>(expert_start, E);
  __syncthreads();

  // 3. Where each wave's first pair of each expert goes.
  for (int e = tid; e < E; e += kThreads) {
    int32_t running = expert_start[e] + tile_before[e];
    for (int w = 0; w < kWaves; ++w) {
      const int32_t count = wave_offset[w * E + e];
      wave_offset[w * E + e] = running;
      running += count;
    }
  }
  __syncthreads();

  // 4. Place the pairs, WAVE at a time. Lanes with the same expert find each other (one
  //    instruction on NVIDIA, a ballot per bit of the expert elsewhere); the lowest of them
  //    moves the expert's offset on.
  int expert_bits = 0;
  while ((1 << expert_bits) < E) ++expert_bits;
  int32_t* my_offset = wave_offset + wave * E;  // [experts]
  for (int32_t chunk = wave_begin; places && chunk < wave_end; chunk += kChunk) {  // uniform across the wave
    int expert[kPairsPerLane];
    if (chunk == wave_begin) {
#pragma unroll
      for (int j = 0; j < kPairsPerLane; ++j) expert[j] = first_chunk[j];
    } else {
      load_experts<TId>(p, chunk + lane, WAVE, wave_end, expert);
    }
#pragma unroll
    for (int j = 0; j < kPairsPerLane; ++j) {
      const int e = expert[j];
      const bool has = e >= 0;
      const uint64_t peers = match_any<WAVE>(has ? e : 0, expert_bits) & ballot<WAVE>(has);
      const uint64_t peers_below = peers & lanes_below_mask<WAVE>();
      if (has) p.sorted_token_ids[my_offset[e] + __popcll(peers_below)] = chunk + j * WAVE + lane;
      wave_sync<WAVE>();
      if (has && peers_below == 0) my_offset[e] += __popcll(peers);
      wave_sync<WAVE>();
    }
  }

  // 5. Padding and block labels, shared out over the grid: each expert's padding (one wave per
  //    expert), then everything past the padded total.
  const int32_t padded_total = expert_start[E];
  const int global_wave = tile * kWaves + wave;
  const int grid_waves = static_cast<int>(gridDim.x) * kWaves;
  for (int e = global_wave; e < E; e += grid_waves) {
    const int32_t start = expert_start[e];
    const int32_t end = expert_start[e + 1];
    for (int32_t pos = start + expert_total[e] + lane; pos < end; pos += WAVE) p.sorted_token_ids[pos] = pad;
    for (int32_t b = start / block_size + lane; b < end / block_size; b += WAVE) p.expert_ids[b] = e;
  }
  const int64_t thread = static_cast<int64_t>(tile) * kThreads + tid;
  const int64_t grid_threads = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t pos = padded_total + thread; pos < p.sorted_capacity; pos += grid_threads) p.sorted_token_ids[pos] = pad;
  if (p.label_unused_blocks) {
    for (int64_t b = padded_total / block_size + thread; b < p.expert_ids_capacity; b += grid_threads) p.expert_ids[b] = -1;
  }
  if (tile == 0 && tid == 0) *p.num_tokens_post_pad = padded_total;
}

}  // namespace flashhip::kernels::moe_align_detail
