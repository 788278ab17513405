// MoE combine: out[t, h] = sum over j < topk of input[t, j, h], added in fp32 in slot order
// (j = 0, 1, ...) and rounded once to the element type. Torch-free; the launcher and the CPU
// implementation take the same parameters and add in the same order (the same bits).
#pragma once

#include <cstdint>

#include "flashhip/platform/dtypes.h"
#include "flashhip/platform/launch.h"

namespace flashhip::kernels {

struct MoeSumParams {
  void* out = nullptr;          // [tokens, hidden] dtype
  const void* input = nullptr;  // [tokens, topk, hidden] dtype
  int64_t tokens = 0;
  int64_t topk = 0;
  int64_t hidden = 0;
  int64_t out_row_stride = 0;      // elements between tokens of out
  int64_t input_token_stride = 0;  // elements between tokens of input
  int64_t input_slot_stride = 0;   // elements between the slots of one token
  DType dtype = DType::kFloat32;
};

struct MoeSumLaunchInfo {
  int wave = 0;
  int threads = 0;       // per block
  int vector = 0;        // elements each thread moves at a time (16 bytes, or 1 when unaligned)
  int64_t blocks = 0;
};

LaunchStatus launch_moe_sum(const MoeSumParams& params, StreamHandle stream, MoeSumLaunchInfo* info = nullptr);

}  // namespace flashhip::kernels
