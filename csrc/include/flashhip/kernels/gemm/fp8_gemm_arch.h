// The per-architecture fp8 GEMM launchers behind launch_fp8_gemm (fp8_gemm.cu picks one by the
// device). Same contract as launch_fp8_gemm (fp8_gemm.h). Each returns gpuErrorInvalidValue when
// its path cannot run this call (not built for this platform, device without the instructions,
// fp8 flavour not the device's, unsupported layout) and then sets info->variant to a text
// beginning "unsupported: " that says why, for the op layer's error message.
#pragma once

#include <cstddef>

#include "flashhip/kernels/gemm/fp8_gemm.h"

namespace flashhip::kernels {

// Hopper (sm_90a), wgmma. Defined in csrc/kernels/gemm/fp8_gemm_sm90.cu; fp8_gemm.cu routes to it
// when the device is an sm_90 one this build has the path for.
bool fp8_gemm_sm90_supports_current_device();
LaunchStatus launch_fp8_gemm_sm90(const Fp8GemmParams& params, StreamHandle stream, Fp8GemmLaunchInfo* info);
size_t fp8_gemm_workspace_bytes_sm90(const Fp8GemmParams& params);

// CDNA3 (MI300, gfx940/941/942; also gfx950 when built for it), MFMA fp8. Defined in
// csrc/kernels/gemm/fp8_gemm_cdna3.cu. Needs no workspace.
LaunchStatus launch_fp8_gemm_cdna3(const Fp8GemmParams& params, StreamHandle stream, Fp8GemmLaunchInfo* info);
size_t fp8_gemm_workspace_bytes_cdna3(const Fp8GemmParams& params);

// True when the text a launcher left in info->variant reports a refusal rather than a variant.
inline bool fp8_gemm_variant_is_unsupported(const char* variant) {
  const char* prefix = "unsupported: ";
  for (int i = 0; prefix[i] != '\0'; ++i)
    if (variant == nullptr || variant[i] != prefix[i]) return false;
  return true;
}

}  // namespace flashhip::kernels
