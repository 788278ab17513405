// Architecture traits: what the target being compiled has (device pass, FH_ARCH_* in macros.h),
// and what the current device is (host side, read from the runtime once per device).
#pragma once

#include <utility>

#include "flashhip/platform/runtime.h"

namespace flashhip {

// The device's architecture family, as launchers and error messages name it.
enum class ArchFamily : int8_t {
  kUnknown,
  kNvidiaOther,  // NVIDIA before sm_80, or a newer one not listed
  kSm80,         // A100 (sm_80/86/87)
  kSm89,         // Ada (sm_89)
  kSm90,         // Hopper (sm_90; wgmma/TMA need an sm_90a build)
  kCdna2,        // MI200 (gfx90a)
  kCdna3,        // MI300 (gfx940/941/942)
  kCdna4,        // MI350 (gfx950)
  kRdna,         // gfx10/11/12
  kAmdOther,
};

// The fp8 e4m3 flavour the device converts to and multiplies in natively.
enum class NativeFp8 : int8_t { kNone, kE4M3FN, kE4M3FNUZ };

// Host side facts about a device that launchers choose variants and sizes by.
struct DeviceTraits {
  ArchFamily arch = ArchFamily::kUnknown;
  char arch_name[32] = {};                    // "sm_90", "gfx942", ...
  int wave_size = 0;                          // 64 on CDNA, 32 on NVIDIA and RDNA
  int multiprocessors = 0;                    // SMs / CUs
  int max_threads_per_multiprocessor = 0;     // resident threads an SM/CU holds
  int smem_bytes_per_block = 0;               // shared memory / LDS a block may use (opt-in limit on NVIDIA)
  int smem_bytes_per_multiprocessor = 0;
  int l2_bytes = 0;
  // Peak DRAM (HBM) bandwidth in bytes/s, reads and writes together, from the runtime's memory
  // clock (kHz) and bus width (bits): 2 * clock * 1000 * bus / 8; 0 if the runtime cannot say.
  // A lead for sizing what memory-bound launchers keep in flight, not a measured ceiling: the
  // H200 reads 3201 MHz x 6016 bits = 4.81e12 (seen on the lent one; a copy reaches 4.25e12),
  // the H100 SXM 2619 MHz x 5120 bits = 3.35e12. Caveat, not checked on a device here: ROCm
  // gives the MI300X's HBM3 clock as 1300 MHz x 8192 bits, and HBM3 moves 4 bits per pin per
  // clock, not 2, so this would read 2.66e12 there against a datasheet 5.3e12: heuristics using
  // it must hold either way.
  double dram_bytes_per_s = 0;
  NativeFp8 native_fp8 = NativeFp8::kNone;
  bool has_wgmma = false;                     // sm_90 (the kernels need an sm_90a build)
  bool has_tma = false;                       // sm_90+
  bool has_mfma_fp8 = false;                  // CDNA3, CDNA4
};

// Reads the current device's traits; cached per device (the values never change).
gpuError_t current_device_traits(DeviceTraits* out);

// Calls f(std::integral_constant<int, W>{}) with the wave width W of the device. Only widths
// the build's targets can have are instantiated: 32 on NVIDIA; 64 on AMD, plus 32 when the build
// holds an RDNA target (CMake defines FLASHHIP_HIP_WAVE32 then).
template <typename F>
gpuError_t dispatch_wave_size(int wave_size, F&& f) {
#if FH_PLATFORM_HIP
  if (wave_size == 64) return f(std::integral_constant<int, 64>{});
#if defined(FLASHHIP_HIP_WAVE32) && FLASHHIP_HIP_WAVE32
  if (wave_size == 32) return f(std::integral_constant<int, 32>{});
#endif
#else
  if (wave_size == 32) return f(std::integral_constant<int, 32>{});
#endif
  return gpuErrorNoVariant;
}

// The launchers' prologue: reads the current device's traits once and calls
// f(traits, std::integral_constant<int, W>{}) with its wave width.
template <typename F>
gpuError_t dispatch_device_wave(F&& f) {
  DeviceTraits traits;
  FH_RETURN_IF_ERROR(current_device_traits(&traits));
  return dispatch_wave_size(traits.wave_size, [&](auto wave) { return f(traits, wave); });
}

}  // namespace flashhip
