// launch_moe_align: one scatter kernel when the pairs fit one tile, else a count kernel first
// (its per-tile counts go to the caller's workspace). Both on the caller's stream.
#pragma once
#include "flashhip/kernels/moe/moe_align_kernels.cuh"
#include "flashhip/platform/arch.h"

namespace flashhip::kernels {
namespace moe_align_detail {

template <int WAVE, typename TId>
gpuError_t launch_typed(const MoeAlignParams& p, gpuStream_t stream, MoeAlignLaunchInfo* info) {
  const int64_t pairs = p.rows * p.k;
  const int64_t tile_pairs = moe_align_tile_pairs(pairs);
  const int num_tiles = static_cast<int>(moe_align_num_tiles(pairs));
  if (num_tiles > 1 && p.workspace == nullptr) return gpuErrorInvalidValue;
  if (info != nullptr) *info = MoeAlignLaunchInfo{WAVE, num_tiles, tile_pairs, num_tiles > 1 ? 2 : 1};
  if (num_tiles > 1) {
    moe_align_count<TId><<<num_tiles, kThreads, sizeof(int32_t) * p.experts, stream>>>(p, tile_pairs);
    FH_RETURN_IF_ERROR(gpuGetLastError());
  }
  const size_t smem = sizeof(int32_t) * scatter_smem_ints(p.experts, kThreads / WAVE);
  const int scatter_blocks = num_tiles > 1 ? num_tiles : kOneTileScatterBlocks;
  moe_align_scatter<WAVE, TId><<<scatter_blocks, kThreads, smem, stream>>>(p, tile_pairs, num_tiles);
  return gpuGetLastError();
}

}  // namespace moe_align_detail

}  // namespace flashhip::kernels
