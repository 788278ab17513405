// Torch wrapper of MoE block alignment: argument checks (ids and map values too, on the CPU
// where that is cheap), then the CPU implementation or the GPU launcher on the caller's current
// stream, with its workspace from the caching allocator (no host synchronisation).
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <utility>

#include "checks.h"
#include "cpu/moe_align.h"
#include "flashhip/kernels/moe/moe_align.h"
#include "kernel_log.h"
#include "run_on_device.h"

namespace flashhip::ops {
namespace {

using kernels::MoeAlignParams;

constexpr const char* kOp = "flashhip.moe_align_block_size";

void check_int32_vector(const char* arg, const at::Tensor& t, const at::Tensor& ref) {
  check_same_device(kOp, arg, t, ref);
  check_dtype(kOp, arg, t, {at::kInt});
  TORCH_CHECK(t.dim() == 1 && t.is_contiguous(), kOp, ": argument '", arg, "' must be a contiguous 1-D tensor, got shape ",
              t.sizes(), " and strides ", t.strides());
  check_writable(kOp, arg, t);
}

void moe_align_block_size(const at::Tensor& topk_ids, int64_t num_experts, int64_t block_size,
                          at::Tensor& sorted_token_ids, at::Tensor& expert_ids, at::Tensor& num_tokens_post_pad,
                          const std::optional<at::Tensor>& expert_map, bool label_unused_blocks) {
  check_device(kOp, "topk_ids", topk_ids);
  check_dtype(kOp, "topk_ids", topk_ids, {at::kInt, at::kLong});
  const RowView ids = row_view(kOp, "topk_ids", topk_ids);
  TORCH_CHECK(num_experts >= 1 && num_experts <= kernels::kMoeAlignMaxExperts, kOp, ": argument 'num_experts' must be 1 to ",
              kernels::kMoeAlignMaxExperts, ", got ", num_experts);
  TORCH_CHECK(block_size >= 1 && block_size <= (1 << 20), kOp, ": argument 'block_size' must be 1 to 2^20, got ",
              block_size);
  const int64_t pairs = ids.rows * ids.hidden;
  const int64_t max_padded = kernels::moe_align_max_padded(pairs, static_cast<int>(num_experts), static_cast<int>(block_size));
  TORCH_CHECK(max_padded < (int64_t{1} << 31), kOp, ": 'topk_ids' has ", pairs, " pairs; with ", num_experts,
              " experts padded to ", block_size, " that may need ", max_padded, " slots, more than int32 indexes");
  check_int32_vector("sorted_token_ids", sorted_token_ids, topk_ids);
  TORCH_CHECK(sorted_token_ids.numel() >= max_padded, kOp, ": argument 'sorted_token_ids' must hold at least ", max_padded,
              " elements (topk_ids.numel() + num_experts * (block_size - 1)), got ", sorted_token_ids.numel());
  check_int32_vector("expert_ids", expert_ids, topk_ids);
  // The padded total is a multiple of block_size and at most max_padded: the floor is enough.
  const int64_t max_blocks =
      kernels::moe_align_max_blocks(pairs, static_cast<int>(num_experts), static_cast<int>(block_size));
  TORCH_CHECK(expert_ids.numel() >= max_blocks, kOp, ": argument 'expert_ids' must hold at least ", max_blocks,
              " elements ((topk_ids.numel() + num_experts * (block_size - 1)) // block_size, one per block the "
              "padded pairs may fill), got ", expert_ids.numel());
  check_same_device(kOp, "num_tokens_post_pad", num_tokens_post_pad, topk_ids);
  check_dtype(kOp, "num_tokens_post_pad", num_tokens_post_pad, {at::kInt});
  TORCH_CHECK(num_tokens_post_pad.numel() == 1, kOp, ": argument 'num_tokens_post_pad' must hold one int32 (shape [1]), got shape ",
              num_tokens_post_pad.sizes());
  check_separate(kOp, "sorted_token_ids", sorted_token_ids, "expert_ids", expert_ids);
  check_separate(kOp, "sorted_token_ids", sorted_token_ids, "num_tokens_post_pad", num_tokens_post_pad);
  check_separate(kOp, "expert_ids", expert_ids, "num_tokens_post_pad", num_tokens_post_pad);
  for (const auto& [name, out] : {std::pair<const char*, const at::Tensor*>{"sorted_token_ids", &sorted_token_ids},
                                  {"expert_ids", &expert_ids}, {"num_tokens_post_pad", &num_tokens_post_pad}}) {
    check_separate(kOp, name, *out, "topk_ids", topk_ids);
    if (expert_map.has_value()) check_separate(kOp, name, *out, "expert_map", *expert_map);
  }
  if (expert_map.has_value()) {
    check_same_device(kOp, "expert_map", *expert_map, topk_ids);
    check_dtype(kOp, "expert_map", *expert_map, {at::kInt});
    check_shape(kOp, "expert_map", *expert_map, {num_experts});
    check_contiguous(kOp, "expert_map", *expert_map);
  }
  if (topk_ids.is_cpu()) {  // value checks: cheap here, a synchronisation on a GPU
    if (pairs > 0) {
      const auto [lo, hi] = at::aminmax(topk_ids);
      TORCH_CHECK(lo.item<int64_t>() >= 0 && hi.item<int64_t>() < num_experts, kOp,
                  ": argument 'topk_ids' holds ids outside 0..", num_experts - 1, " (min ", lo.item<int64_t>(), ", max ",
                  hi.item<int64_t>(), ")");
    }
    if (expert_map.has_value()) {
      const auto [lo, hi] = at::aminmax(*expert_map);
      TORCH_CHECK(lo.item<int32_t>() >= -1 && hi.item<int32_t>() < num_experts, kOp,
                  ": argument 'expert_map' holds values outside -1..", num_experts - 1, " (min ", lo.item<int32_t>(),
                  ", max ", hi.item<int32_t>(), ")");
    }
  }

  MoeAlignParams p;
  p.topk_ids = topk_ids.data_ptr();
  p.expert_map = expert_map.has_value() ? expert_map->data_ptr<int32_t>() : nullptr;
  p.sorted_token_ids = sorted_token_ids.data_ptr<int32_t>();
  p.expert_ids = expert_ids.data_ptr<int32_t>();
  p.num_tokens_post_pad = num_tokens_post_pad.data_ptr<int32_t>();
  p.rows = ids.rows;
  p.k = ids.hidden;
  p.ids_row_stride = ids.row_stride;
  p.experts = static_cast<int>(num_experts);
  p.block_size = static_cast<int>(block_size);
  p.sorted_capacity = sorted_token_ids.numel();
  p.expert_ids_capacity = expert_ids.numel();
  p.ids_int64 = topk_ids.scalar_type() == at::kLong;
  p.label_unused_blocks = label_unused_blocks;

  at::Tensor workspace;  // GPU only; lives until the launch is enqueued
  kernels::MoeAlignLaunchInfo info;
  run_on_device(
      kOp, topk_ids,
      [&] {
        cpu::moe_align(p);
        return [] { return std::string("cpu counting sort"); };
      },
      [&](auto stream) {
        const int64_t workspace_elems = kernels::moe_align_workspace_elems(pairs, p.experts);
        if (workspace_elems > 0) {
          workspace = at::empty({workspace_elems}, topk_ids.options().dtype(at::kInt));
          p.workspace = workspace.data_ptr<int32_t>();
        }
        return std::make_pair(kernels::launch_moe_align(p, stream, &info), [&] {
          return "counting sort (" + std::to_string(info.kernels) + " kernels, " + std::to_string(info.tiles) +
                 " tiles of " + std::to_string(info.tile_pairs) + " pairs, wave " + std::to_string(info.wave) + ")";
        });
      });
}

}  // namespace

TORCH_LIBRARY_IMPL(flashhip, CPU, m) { m.impl("moe_align_block_size", &moe_align_block_size); }

#ifdef FLASHHIP_WITH_GPU
TORCH_LIBRARY_IMPL(flashhip, CUDA, m) { m.impl("moe_align_block_size", &moe_align_block_size); }
#endif

}  // namespace flashhip::ops
