// launch_fp8_gemm: picks the architecture's path for the current device.
#include "flashhip/kernels/gemm/fp8_gemm_arch.h"

namespace flashhip::kernels {

size_t fp8_gemm_workspace_bytes(const Fp8GemmParams& params) {
  return fp8_gemm_sm90_supports_current_device() ? fp8_gemm_workspace_bytes_sm90(params)
                                                 : fp8_gemm_workspace_bytes_cdna3(params);
}

LaunchStatus launch_fp8_gemm(const Fp8GemmParams& params, StreamHandle stream, Fp8GemmLaunchInfo* info) {
  return fp8_gemm_sm90_supports_current_device() ? launch_fp8_gemm_sm90(params, stream, info)
                                                 : launch_fp8_gemm_cdna3(params, stream, info);
}

}  // namespace flashhip::kernels
