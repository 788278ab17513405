// Launcher of the CDNA3 (MI300) fp8 GEMM: device check, layout and variant choice, launch.
// On a CUDA build this file holds only a refusing stub (the path is AMD's).
#include "flashhip/kernels/gemm/fp8_gemm_arch.h"

#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "flashhip/platform/runtime.h"

#if FH_PLATFORM_HIP
#include "flashhip/kernels/gemm/fp8_gemm_mfma_cdna3.cuh"
#endif

namespace flashhip::kernels {

size_t fp8_gemm_workspace_bytes_cdna3(const Fp8GemmParams&) { return 0; }

namespace {
LaunchStatus refuse(Fp8GemmLaunchInfo* info, const char* why) {
  if (info != nullptr) info->variant = why;
  return LaunchStatus{static_cast<int>(gpuErrorInvalidValue)};
}
}  // namespace

#if !FH_PLATFORM_HIP

LaunchStatus launch_fp8_gemm_cdna3(const Fp8GemmParams&, StreamHandle, Fp8GemmLaunchInfo* info) {
  return refuse(info, "unsupported: the CDNA3 fp8 GEMM is built only for AMD GPUs");
}

#else

namespace {

enum class AmdArch : int { kUnknown = 0, kCdna2, kCdna3, kCdna4, kOther };

// The current device's generation, from hipDeviceProp_t::gcnArchName ("gfx942:sramecc+:xnack-"),
// read once per device.
gpuError_t current_amd_arch(AmdArch* out) {
  constexpr int kMaxDevices = 64;
  static std::mutex mutex;
  static AmdArch cached[kMaxDevices] = {};
  int device = 0;
  FH_RETURN_IF_ERROR(gpuGetDevice(&device));
  if (device < 0 || device >= kMaxDevices) return gpuErrorInvalidValue;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (cached[device] != AmdArch::kUnknown) {
      *out = cached[device];
      return gpuSuccess;
    }
  }
  hipDeviceProp_t prop;
  FH_RETURN_IF_ERROR(hipGetDeviceProperties(&prop, device));
  const char* name = prop.gcnArchName;
  const auto starts = [name](const char* prefix) { return std::strncmp(name, prefix, std::strlen(prefix)) == 0; };
  AmdArch arch = AmdArch::kOther;
  if (starts("gfx940") || starts("gfx941") || starts("gfx942")) {
    arch = AmdArch::kCdna3;
  } else if (starts("gfx950")) {
    arch = AmdArch::kCdna4;
  } else if (starts("gfx90a")) {
    arch = AmdArch::kCdna2;
  }
  std::lock_guard<std::mutex> lock(mutex);
  cached[device] = arch;
  *out = arch;
  return gpuSuccess;
}

using cdna3::Fp8GemmCdna3Args;

template <typename OutT, int kBM, bool kAKContig, bool kBKContig>
gpuError_t launch_variant(const Fp8GemmCdna3Args& args, gpuStream_t stream) {
  const int tiles = args.tiles_m * args.tiles_n;
  cdna3::fp8_gemm_mfma_cdna3_kernel<OutT, kBM, kAKContig, kBKContig>
      <<<dim3(tiles), dim3(cdna3::kGemmThreads), 0, stream>>>(args);
  return gpuGetLastError();
}

template <typename OutT, int kBM>
gpuError_t launch_layouts(const Fp8GemmCdna3Args& args, bool a_kcontig, bool b_kcontig, gpuStream_t stream) {
  if (a_kcontig) {
    return b_kcontig ? launch_variant<OutT, kBM, true, true>(args, stream)
                     : launch_variant<OutT, kBM, true, false>(args, stream);
  }
  return b_kcontig ? launch_variant<OutT, kBM, false, true>(args, stream)
                   : launch_variant<OutT, kBM, false, false>(args, stream);
}

bool aligned(const void* p, int64_t stride, int bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0 && stride % bytes == 0;
}

}  // namespace

LaunchStatus launch_fp8_gemm_cdna3(const Fp8GemmParams& p, StreamHandle stream, Fp8GemmLaunchInfo* info) {
  AmdArch arch = AmdArch::kUnknown;
  if (const gpuError_t err = current_amd_arch(&arch); err != gpuSuccess) return LaunchStatus{static_cast<int>(err)};
  if (arch == AmdArch::kCdna2) return refuse(info, "unsupported: gfx90a (CDNA2) has no fp8 MFMA");
  if (arch != AmdArch::kCdna3 && arch != AmdArch::kCdna4)
    return refuse(info, "unsupported: the fp8 MFMA GEMM needs a CDNA3/CDNA4 GPU (gfx940/941/942/950)");
  // The instruction reads the target's own e4m3 flavour.
  if (arch == AmdArch::kCdna3 && p.fp8_dtype != DType::kFloat8E4M3FNUZ)
    return refuse(info, "unsupported: gfx94x fp8 MFMAs read e4m3fnuz (torch.float8_e4m3fnuz); got another fp8 flavour");
  if (arch == AmdArch::kCdna4 && p.fp8_dtype != DType::kFloat8E4M3FN)
    return refuse(info, "unsupported: gfx950 fp8 MFMAs read OCP e4m3fn (torch.float8_e4m3fn); got another fp8 flavour");
  if (p.k % kFp8ScaleBlock != 0 || p.n % 64 != 0 || p.m < 0)
    return refuse(info, "unsupported: needs k % 128 == 0 and n % 64 == 0");
  if (p.m > INT_MAX || p.n > INT_MAX || p.k > INT_MAX) return refuse(info, "unsupported: a dimension above 2^31 - 1");

  const bool a_kcontig = p.a_stride_k == 1;
  const bool b_kcontig = p.b_stride_k == 1;
  if (!a_kcontig && p.a_stride_m != 1) return refuse(info, "unsupported: a needs stride 1 along k or along m");
  if (!b_kcontig && p.b_stride_n != 1) return refuse(info, "unsupported: b needs stride 1 along k or along n");

  const int block_m = p.force_block_m == 64 ? 64 : p.force_block_m == 128 ? 128 : (p.m <= 64 ? 64 : 128);
  const int64_t tiles_m = (p.m + block_m - 1) / block_m;
  const int64_t tiles_n = (p.n + cdna3::kGemmBlockN - 1) / cdna3::kGemmBlockN;
  if (tiles_m * tiles_n > INT_MAX) return refuse(info, "unsupported: too many output tiles");

  if (info != nullptr) {
    info->variant = "mfma_cdna3";
    info->block_m = block_m;
    info->block_n = cdna3::kGemmBlockN;
    info->block_k = cdna3::kGemmBlockK;
    info->stages = 2;  // one LDS buffer + one register stage
    info->split_k = 1;  // force_split_k is not implemented on this path
    info->grid = static_cast<int>(tiles_m * tiles_n);
    info->transposed_a = !a_kcontig;
    info->transposed_b = !b_kcontig;
  }
  if (p.m == 0) return LaunchStatus{};

  Fp8GemmCdna3Args args{};
  args.a = static_cast<const uint8_t*>(p.a);
  args.b = static_cast<const uint8_t*>(p.b);
  args.a_scale = p.a_scale;
  args.b_scale = p.b_scale;
  args.out = p.out;
  args.m = static_cast<int>(p.m);
  args.n = static_cast<int>(p.n);
  args.k = static_cast<int>(p.k);
  args.tiles_m = static_cast<int>(tiles_m);
  args.tiles_n = static_cast<int>(tiles_n);
  args.out_stride_m = p.out_stride_m;
  args.a_stride_m = p.a_stride_m;
  args.a_stride_k = p.a_stride_k;
  args.b_stride_n = p.b_stride_n;
  args.b_stride_k = p.b_stride_k;
  args.a_scale_stride_m = p.a_scale_stride_m;
  args.a_scale_stride_kb = p.a_scale_stride_kb;
  args.b_scale_stride_nb = p.b_scale_stride_nb;
  args.b_scale_stride_kb = p.b_scale_stride_kb;
  // Wide loads: 16 bytes along k for a K-contiguous operand; along m/n, kRows / 8 bytes.
  args.a_vector = a_kcontig ? aligned(p.a, p.a_stride_m, 16) : aligned(p.a, p.a_stride_k, block_m / 8);
  args.b_vector = b_kcontig ? aligned(p.b, p.b_stride_n, 16) : aligned(p.b, p.b_stride_k, cdna3::kGemmBlockN / 8);

  const auto s = static_cast<gpuStream_t>(stream);
  const gpuError_t err = dispatch_activation_dtype(p.out_dtype, gpuErrorInvalidValue, [&](auto out_tag) -> gpuError_t {
    using OutT = decltype(out_tag);
    return block_m == 64 ? launch_layouts<OutT, 64>(args, a_kcontig, b_kcontig, s)
                         : launch_layouts<OutT, 128>(args, a_kcontig, b_kcontig, s);
  });
  return LaunchStatus{static_cast<int>(err)};
}

#endif  // FH_PLATFORM_HIP

}  // namespace flashhip::kernels
