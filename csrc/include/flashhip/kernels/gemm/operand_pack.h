// Packing fp8 GEMM operands into dense rows: the copy fp8_gemm makes of an operand whose rows are
// not K-contiguous (the M/N-contiguous layout, odd row strides) before its main loop can read it;
// and the copy of per-row scales into the M-major layout the main loop reads them in.
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

// Per-row GEMM scales made M-major: src [m, k_blocks] fp32 at (stride_m, stride_kb) elements ->
// dst [k_blocks, m_padded] dense (m_padded >= m; rows m .. m_padded - 1 repeat row m - 1, so every
// value is one of the inputs). One K block's scales are then one contiguous run, which the
// GEMM's scale warp copies 16 bytes at a time instead of one 32-byte sector per row. The source
// and destination must not overlap. Returns the launch's error code.
LaunchStatus launch_pack_row_scales(float* dst, const float* src, int64_t m, int64_t k_blocks, int64_t stride_m,
                                    int64_t stride_kb, int64_t m_padded, StreamHandle stream);

}  // namespace flashhip::kernels
