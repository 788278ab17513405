// MoE block alignment as a stable counting sort, no host synchronisation:
// - moe_align_count (only with more than one tile): each block counts its tile's pairs per
//   expert into the workspace row of its tile.
// - moe_align_scatter (one block per tile): counts its tile per wave, derives every expert's
//   padded start (a scan over experts) and the offset of each (wave, expert) from the counts of
//   the tiles and waves before it, then places WAVE pairs at a time: a pair's rank among the
//   batch's pairs of its expert comes from ballots over the expert's bits. Tiles, waves,
//   batches and lanes all run in ascending pair order, so each expert's run is in ascending
//   order. The blocks share out the padding and the block labels.
#pragma once

#include "flashhip/kernels/moe/moe_align.h"
#include "flashhip/platform/wave.h"

namespace flashhip::kernels::moe_align_detail {

inline constexpr int kThreads = 256;

// The (local) expert of pair q, or -1 when the pair is left out.
template <typename TId>
FH_DEVICE FH_INLINE int expert_of(const MoeAlignParams& p, int64_t q) {
  const int64_t row = q / p.k;
  const int64_t id = static_cast<const TId*>(p.topk_ids)[row * p.ids_row_stride + (q - row * p.k)];
  if (id < 0 || id >= p.experts) return -1;
  const int local = p.expert_map != nullptr ? p.expert_map[id] : static_cast<int>(id);
  return local >= 0 && local < p.experts ? local : -1;
}

template <typename TId>
__global__ void __launch_bounds__(kThreads) moe_align_count(const MoeAlignParams p, int64_t tile_pairs) {
  extern __shared__ int32_t tile_count[];  // [experts]
  for (int e = threadIdx.x; e < p.experts; e += blockDim.x) tile_count[e] = 0;
  __syncthreads();
  const int64_t pairs = p.rows * p.k;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * tile_pairs;
  const int64_t end = begin + tile_pairs < pairs ? begin + tile_pairs : pairs;
  for (int64_t q = begin + threadIdx.x; q < end; q += blockDim.x) {
    const int e = expert_of<TId>(p, q);
    if (e >= 0) atomicAdd(&tile_count[e], 1);
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
__global__ void __launch_bounds__(kThreads) moe_align_scatter(const MoeAlignParams p, int64_t tile_pairs,
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
  const int64_t pairs = p.rows * p.k;
  const int tile = static_cast<int>(blockIdx.x);
  const int64_t tile_begin = tile * tile_pairs < pairs ? tile * tile_pairs : pairs;
  const int64_t tile_end = tile_begin + tile_pairs < pairs ? tile_begin + tile_pairs : pairs;
  const int64_t wave_pairs = (tile_pairs + kWaves - 1) / kWaves;
  const int64_t wave_begin = tile_begin + wave * wave_pairs < tile_end ? tile_begin + wave * wave_pairs : tile_end;
  const int64_t wave_end = wave_begin + wave_pairs < tile_end ? wave_begin + wave_pairs : tile_end;
  const int32_t pad = static_cast<int32_t>(pairs);

  // 1. Count this tile per (wave, expert).
  for (int i = tid; i < kWaves * E; i += kThreads) wave_offset[i] = 0;
  __syncthreads();
  for (int64_t q = wave_begin + lane; q < wave_end; q += WAVE) {
    const int e = expert_of<TId>(p, q);
    if (e >= 0) atomicAdd(&wave_offset[wave * E + e], 1);
  }
  __syncthreads();

  // 2. Each expert's total and the pairs of it in earlier tiles; padded sizes, scanned.
  const int32_t block_size = p.block_size;
  for (int e = tid; e < E; e += kThreads) {
    int32_t total = 0, before = 0;
    if (num_tiles == 1) {
      for (int w = 0; w < kWaves; ++w) total += wave_offset[w * E + e];
    } else {
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

  // 4. Place the pairs, WAVE at a time. Lanes with the same expert find each other by
  //    agreeing on every bit of it; the lowest of them moves the expert's offset on.
  int expert_bits = 0;
  while ((1 << expert_bits) < E) ++expert_bits;
  int32_t* my_offset = wave_offset + wave * E;  // [experts]
  for (int64_t batch = wave_begin; batch < wave_end; batch += WAVE) {  // uniform across the wave
    const int64_t q = batch + lane;
    const int e = q < wave_end ? expert_of<TId>(p, q) : -1;
    const bool has = e >= 0;
    uint64_t peers = ballot<WAVE>(has);
    for (int bit = 0; bit < expert_bits; ++bit) {
      const bool set = has && ((e >> bit) & 1);
      const uint64_t with_bit = ballot<WAVE>(set);
      peers &= set ? with_bit : ~with_bit;
    }
    const uint64_t peers_below = peers & lanes_below_mask<WAVE>();
    if (has) p.sorted_token_ids[my_offset[e] + __popcll(peers_below)] = static_cast<int32_t>(q);
    wave_sync<WAVE>();
    if (has && peers_below == 0) my_offset[e] += __popcll(peers);
    wave_sync<WAVE>();
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
  for (int64_t b = padded_total / block_size + thread; b < p.expert_ids_capacity; b += grid_threads) p.expert_ids[b] = -1;
  if (tile == 0 && tid == 0) *p.num_tokens_post_pad = padded_total;
}

}  // namespace flashhip::kernels::moe_align_detail
