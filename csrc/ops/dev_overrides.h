// Development overrides of the launchers' tuning fields, for benchmark tools that compare
// kernel variants one process each (benchmarks/tools/sweep_knobs.py). Not a user feature: the
// defaults are the heuristics, and tests force variants through the params. The one place the
// FLASHHIP_DEV_* environment is read (once per process):
//   FLASHHIP_DEV_NORM_THREADS_PER_ROW=N          NormParams::threads_per_row
//   FLASHHIP_DEV_NORM_GRID=rows|resident         NormParams::grid
//   FLASHHIP_DEV_ROPE_HEADS_PER_THREAD=N         RopeParams::max_heads_per_thread
//   FLASHHIP_DEV_MOE_TOPK_LAYOUT=strided|contiguous   MoeTopkParams::layout
//   FLASHHIP_DEV_QUANT_GROUPS_IN_FLIGHT=4|8      GroupQuantParams::force_groups_in_flight
//   FLASHHIP_DEV_GEMM_STREAM_K=on|off            Fp8GemmParams::force_stream_k (1 | -1)
//   FLASHHIP_DEV_GEMM_SPLIT_K=N                  Fp8GemmParams::force_split_k
//   FLASHHIP_DEV_GEMM_BLOCK_M=64|128|256         Fp8GemmParams::force_block_m
//   FLASHHIP_DEV_GEMM_DECODE_COPY=tma|rows       Fp8GemmParams::force_decode_weight_copy (1 | 2)
//   FLASHHIP_DEV_GEMM_DECODE_CLUSTER=on          Fp8GemmParams::force_decode_cluster_split
#pragma once

#include "flashhip/kernels/gemm/fp8_gemm.h"
#include "flashhip/kernels/moe/moe_topk.h"
#include "flashhip/kernels/norm/norm.h"
#include "flashhip/kernels/rope/rope.h"

namespace flashhip::ops {

void apply_dev_overrides(kernels::NormParams& p);
void apply_dev_overrides(kernels::RopeParams& p);
void apply_dev_overrides(kernels::MoeTopkParams& p);
void apply_dev_overrides(kernels::GroupQuantParams& p);
void apply_dev_overrides(kernels::Fp8GemmParams& p);

}  // namespace flashhip::ops
