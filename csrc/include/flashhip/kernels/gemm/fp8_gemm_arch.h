// The per-architecture entry points behind launch_fp8_gemm (fp8_gemm.cu picks one by the device).
// Each is defined in its arch-named shard; in a build for the other vendor it is a stub that
// supports no device.
#pragma once

#include <cstddef>

#include "flashhip/kernels/gemm/fp8_gemm.h"

namespace flashhip::kernels {

// Hopper (sm_90a): TMA + warp-specialised fp8 wgmma (fp8_gemm_sm90.cu).
bool fp8_gemm_sm90_supports_current_device();
size_t fp8_gemm_workspace_bytes_sm90(const Fp8GemmParams& params);
LaunchStatus launch_fp8_gemm_sm90(const Fp8GemmParams& params, StreamHandle stream, Fp8GemmLaunchInfo* info);

// CDNA3 (gfx942/gfx940): fp8 MFMA with LDS double buffering (fp8_gemm_cdna3.cu).
size_t fp8_gemm_workspace_bytes_cdna3(const Fp8GemmParams& params);
LaunchStatus launch_fp8_gemm_cdna3(const Fp8GemmParams& params, StreamHandle stream, Fp8GemmLaunchInfo* info);

}  // namespace flashhip::kernels
