// Packing fp8 GEMM operands into dense rows: the copy fp8_gemm makes of an operand whose rows are
// not K-contiguous (the M/N-contiguous layout, odd row strides) before its main loop can read it.
// Host-only header, no torch: the GEMM launchers and the device checks meet here.
//
//   dst[r * cols + c] = src[r * stride_row + c * stride_col]   for r < rows, c < cols
#pragma once

#include <cstdint>

#include "flashhip/platform/launch.h"

namespace flashhip::kernels {

// One operand: element (r, c) at src + r * stride_row + c * stride_col (elements are bytes).
// The fast transpose needs stride_row == 1, rows, cols and stride_col multiples of 16 and both
// pointers 16-byte aligned (the M/N-contiguous operand in a 256-byte aligned workspace); any
// other job takes a scalar path, correct for any strides.
struct Fp8PackJob {
  uint8_t* dst = nullptr;        // [rows, cols] dense
  const uint8_t* src = nullptr;  // [rows, cols] at (stride_row, stride_col) elements
  int64_t rows = 0, cols = 0, stride_row = 0, stride_col = 0;
};

// Enqueues the packing of `count` (1 or 2) jobs on `stream` (a cudaStream_t / hipStream_t) as one
// launch. A job with no elements is skipped. The source and destination must not overlap.
// Returns the launch's error code (gpuErrorInvalidValue for a bad count or negative sizes).
LaunchStatus launch_pack_fp8_operands(const Fp8PackJob* jobs, int count, StreamHandle stream);

}  // namespace flashhip::kernels
