// MoE block alignment: the T*k (token, slot) pairs of topk_ids grouped by expert for a grouped
// GEMM that works in blocks of block_size rows. Torch-free; the launcher and the CPU
// implementation take the same parameters.
//
// Semantics (OPS.md §5):
// - pair q = t * k + j (the flat index into topk_ids) belongs to expert topk_ids[t, j], or with
//   an expert map to expert_map[topk_ids[t, j]]; a map value of -1 (an expert on another rank)
//   leaves the pair out. Experts are numbered 0..experts-1 before and after the map.
// - each expert's pairs, in ascending q (stable), then padding up to a multiple of block_size;
//   experts follow each other in ascending order. The padding index is T * k.
// - sorted_token_ids: every element is written; those not holding a pair hold the padding
//   index (also beyond the padded total). Capacity >= T*k + experts*(block_size - 1).
// - expert_ids[b]: the expert of block b for b < padded total / block_size; beyond, -1 when
//   label_unused_blocks (every element written), else left as it was (sgl-kernel does so).
//   Capacity >= floor(sorted capacity bound / block_size): the padded total is a multiple of
//   block_size no larger than the bound, so the floor always holds its blocks.
// - num_tokens_post_pad[0]: the padded total.
// GPU only: ids (or map values) outside 0..experts-1 leave the pair out; the op checks them on
// the CPU, where it is cheap.
#pragma once

#include <cstdint>

#include "flashhip/platform/launch.h"

namespace flashhip::kernels {

inline constexpr int kMoeAlignMaxExperts = 1024;

struct MoeAlignParams {
  const void* topk_ids = nullptr;       // [rows, k] int32 or int64 (ids_int64)
  const int32_t* expert_map = nullptr;  // [experts], or null
  int32_t* sorted_token_ids = nullptr;  // [sorted_capacity]
  int32_t* expert_ids = nullptr;        // [expert_ids_capacity]
  int32_t* num_tokens_post_pad = nullptr;  // [1]
  int32_t* workspace = nullptr;  // [moe_align_num_tiles(pairs), experts] when that is more than 1
  int64_t rows = 0;
  int64_t k = 0;
  int64_t ids_row_stride = 0;
  int experts = 0;
  int block_size = 0;
  int64_t sorted_capacity = 0;
  int64_t expert_ids_capacity = 0;
  bool ids_int64 = false;
  bool label_unused_blocks = true;  // expert_ids past the used blocks: -1, or left as they were
};

// Worst-case padded length: every expert may need block_size - 1 padding slots.
inline int64_t moe_align_max_padded(int64_t pairs, int experts, int block_size) {
  return pairs + static_cast<int64_t>(experts) * (block_size - 1);
}

// Blocks expert_ids must hold: the padded total is a multiple of block_size and at most
// moe_align_max_padded, so the floor of that over block_size is enough.
inline int64_t moe_align_max_blocks(int64_t pairs, int experts, int block_size) {
  return moe_align_max_padded(pairs, experts, block_size) / block_size;
}

// The GPU splits the pairs into tiles (one block each, at most kMoeAlignMaxTiles of them) so
// that each block's stable offsets come from the counts of the tiles before it.
inline constexpr int64_t kMoeAlignMinTilePairs = 2048;
inline constexpr int64_t kMoeAlignMaxTiles = 64;

inline int64_t moe_align_tile_pairs(int64_t pairs) {
  const int64_t spread = (pairs + kMoeAlignMaxTiles - 1) / kMoeAlignMaxTiles;
  return spread > kMoeAlignMinTilePairs ? spread : kMoeAlignMinTilePairs;
}

// Tiles of a call (1 for no pairs: the outputs are still written).
inline int64_t moe_align_num_tiles(int64_t pairs) {
  const int64_t tile = moe_align_tile_pairs(pairs);
  const int64_t tiles = (pairs + tile - 1) / tile;
  return tiles > 1 ? tiles : 1;
}

// Workspace elements the launcher needs (0: none).
inline int64_t moe_align_workspace_elems(int64_t pairs, int experts) {
  const int64_t tiles = moe_align_num_tiles(pairs);
  return tiles > 1 ? tiles * experts : 0;
}

struct MoeAlignLaunchInfo {
  int wave = 0;
  int64_t tiles = 0;
  int64_t tile_pairs = 0;
  int kernels = 0;  // 1 (one tile) or 2 (count, then scatter)
};

LaunchStatus launch_moe_align(const MoeAlignParams& params, StreamHandle stream, MoeAlignLaunchInfo* info = nullptr);

}  // namespace flashhip::kernels
