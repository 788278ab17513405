#include "dev_overrides.h"

#include <cstdlib>
#include <string_view>

namespace flashhip::ops {

namespace {

struct DevOverrides {
  int norm_threads_per_row = 0;
  kernels::NormGrid norm_grid = kernels::NormGrid::kAuto;
  int rope_heads_per_thread = 0;
  kernels::MoeTopkLayout moe_topk_layout = kernels::MoeTopkLayout::kAuto;
  int quant_groups_in_flight = 0;
  int gemm_stream_k = 0, gemm_split_k = 0, gemm_block_m = 0, gemm_decode_weight_copy = 0, gemm_decode_cluster_split = 0;
};

int env_int(const char* name) {
  const char* env = std::getenv(name);
  return env != nullptr ? std::atoi(env) : 0;
}

std::string_view env_str(const char* name) {
  const char* env = std::getenv(name);
  return env != nullptr ? std::string_view(env) : std::string_view();
}

const DevOverrides& dev_overrides() {
  static const DevOverrides o = [] {
    DevOverrides d;
    d.norm_threads_per_row = env_int("FLASHHIP_DEV_NORM_THREADS_PER_ROW");
    const std::string_view grid = env_str("FLASHHIP_DEV_NORM_GRID");
    if (grid == "rows") d.norm_grid = kernels::NormGrid::kRowGroups;
    if (grid == "resident") d.norm_grid = kernels::NormGrid::kResident;
    d.rope_heads_per_thread = env_int("FLASHHIP_DEV_ROPE_HEADS_PER_THREAD");
    const std::string_view layout = env_str("FLASHHIP_DEV_MOE_TOPK_LAYOUT");
    if (layout == "strided") d.moe_topk_layout = kernels::MoeTopkLayout::kStrided;
    if (layout == "contiguous") d.moe_topk_layout = kernels::MoeTopkLayout::kContiguousRuntimeShape;
    d.quant_groups_in_flight = env_int("FLASHHIP_DEV_QUANT_GROUPS_IN_FLIGHT");
    const std::string_view stream_k = env_str("FLASHHIP_DEV_GEMM_STREAM_K");
    if (stream_k == "on") d.gemm_stream_k = 1;
    if (stream_k == "off") d.gemm_stream_k = -1;
    d.gemm_split_k = env_int("FLASHHIP_DEV_GEMM_SPLIT_K");
    d.gemm_block_m = env_int("FLASHHIP_DEV_GEMM_BLOCK_M");
    const std::string_view weight_copy = env_str("FLASHHIP_DEV_GEMM_DECODE_COPY");
    if (weight_copy == "tma") d.gemm_decode_weight_copy = 1;
    if (weight_copy == "rows") d.gemm_decode_weight_copy = 2;
    if (env_str("FLASHHIP_DEV_GEMM_DECODE_CLUSTER") == "on") d.gemm_decode_cluster_split = 1;
    return d;
  }();
  return o;
}

}  // namespace

void apply_dev_overrides(kernels::GroupQuantParams& p) {
  if (dev_overrides().quant_groups_in_flight != 0) p.force_groups_in_flight = dev_overrides().quant_groups_in_flight;
}

void apply_dev_overrides(kernels::Fp8GemmParams& p) {
  const DevOverrides& o = dev_overrides();
  if (o.gemm_stream_k != 0) p.force_stream_k = o.gemm_stream_k;
  if (o.gemm_split_k != 0) p.force_split_k = o.gemm_split_k;
  if (o.gemm_block_m != 0) p.force_block_m = o.gemm_block_m;
  if (o.gemm_decode_weight_copy != 0) p.force_decode_weight_copy = o.gemm_decode_weight_copy;
  if (o.gemm_decode_cluster_split != 0) p.force_decode_cluster_split = o.gemm_decode_cluster_split;
}

void apply_dev_overrides(kernels::NormParams& p) {
  const DevOverrides& o = dev_overrides();
  if (o.norm_threads_per_row != 0) p.threads_per_row = o.norm_threads_per_row;
  if (o.norm_grid != kernels::NormGrid::kAuto) p.grid = o.norm_grid;
}

void apply_dev_overrides(kernels::RopeParams& p) {
  if (dev_overrides().rope_heads_per_thread != 0) p.max_heads_per_thread = dev_overrides().rope_heads_per_thread;
}

void apply_dev_overrides(kernels::MoeTopkParams& p) {
  if (dev_overrides().moe_topk_layout != kernels::MoeTopkLayout::kAuto) p.layout = dev_overrides().moe_topk_layout;
}

}  // namespace flashhip::ops
