// Element types as the kernels see them: 16-bit and fp8 storage types with explicit conversions
// to and from float, and the DType tag launchers receive. Kept here rather than taken from the
// toolkit because old HIP (ROCm 5.2) has no __hip_bfloat16 and no hip_fp8.h.
#pragma once

#include <cstdint>
#include <cstring>

#include "flashhip/platform/macros.h"

#if FH_PLATFORM_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace flashhip {

// The dtype of a buffer handed to a launcher.
enum class DType : int8_t {
  kFloat32,
  kFloat16,
  kBFloat16,
  kFloat8E4M3FN,    // OCP e4m3: bias 7, no inf, NaN 0x7f/0xff (NVIDIA, gfx950)
  kFloat8E4M3FNUZ,  // e4m3 "fnuz": bias 8, no inf, no -0, NaN 0x80 (gfx940/gfx942)
  kFloat8E5M2,      // OCP e5m2: bias 15, inf 0x7c, NaN 0x7d..0x7f (torch.float8_e5m2)
};

struct alignas(2) half_t {
  uint16_t bits;
};
struct alignas(2) bf16_t {
  uint16_t bits;
};

FH_HOST_DEVICE FH_INLINE float bits_to_float(uint32_t u) {
#if FH_DEVICE_PASS
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

FH_HOST_DEVICE FH_INLINE uint32_t float_to_bits(float f) {
#if FH_DEVICE_PASS
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

// ---- float <-> element conversions; to_float is exact, from_float rounds to nearest even ----

FH_HOST_DEVICE FH_INLINE float to_float(float x) { return x; }

FH_HOST_DEVICE FH_INLINE float to_float(bf16_t x) { return bits_to_float(uint32_t{x.bits} << 16); }

FH_HOST_DEVICE FH_INLINE bf16_t bf16_from_float(float f) {
#if FH_ARCH_SM80
  return bf16_t{__bfloat16_as_ushort(__float2bfloat16_rn(f))};
#else
  const uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t{static_cast<uint16_t>((u >> 16) | 0x40u)};
  const uint32_t round_bias = 0x7fffu + ((u >> 16) & 1u);  // ties to even
  return bf16_t{static_cast<uint16_t>((u + round_bias) >> 16)};
#endif
}

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
FH_DEVICE FH_INLINE float to_float(half_t x) {
#if FH_PLATFORM_CUDA
  return __half2float(__ushort_as_half(x.bits));
#else
  return static_cast<float>(__builtin_bit_cast(_Float16, x.bits));
#endif
}

FH_DEVICE FH_INLINE half_t half_from_float(float f) {
#if FH_PLATFORM_CUDA
  return half_t{__half_as_ushort(__float2half_rn(f))};
#else
  return half_t{__builtin_bit_cast(uint16_t, static_cast<_Float16>(f))};
#endif
}
#endif

// from_float<T>(f): the generic spelling kernels use.
template <typename T>
struct FromFloat;
template <>
struct FromFloat<float> {
  FH_HOST_DEVICE FH_INLINE static float apply(float f) { return f; }
};
template <>
struct FromFloat<bf16_t> {
  FH_HOST_DEVICE FH_INLINE static bf16_t apply(float f) { return bf16_from_float(f); }
};
#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
template <>
struct FromFloat<half_t> {
  FH_DEVICE FH_INLINE static half_t apply(float f) { return half_from_float(f); }
};
#endif

template <typename T>
FH_HOST_DEVICE FH_INLINE T from_float(float f) {
  return FromFloat<T>::apply(f);
}

#if FH_PLATFORM_HIP || FH_PLATFORM_CUDA
// Calls f(T{}) with the storage type of an activation dtype (fp32, fp16, bf16); returns
// `unsupported` for any other dtype. Launchers use it to instantiate per element type.
template <typename R, typename F>
R dispatch_activation_dtype(DType dtype, R unsupported, F&& f) {
  switch (dtype) {
    case DType::kFloat32: return f(float{});
    case DType::kFloat16: return f(half_t{});
    case DType::kBFloat16: return f(bf16_t{});
    default: return unsupported;
  }
}
#endif

}  // namespace flashhip
